//! `lipo_predict` and `lipo_predict_batch` through the C ABI on the bundle in
//! LIPO_FUZZ_BUNDLE, with arbitrary bytes as SMILES (cut at NUL as C strings are): never a
//! crash; a status for every molecule; a number only for a valid SMILES.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lipo::ffi::*;
use std::ffi::{c_char, CString};
use std::sync::OnceLock;

struct Handle(*mut LipoModel);
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

static MODEL: OnceLock<Handle> = OnceLock::new();

fn model() -> *const LipoModel {
    MODEL
        .get_or_init(|| {
            let path = std::env::var("LIPO_FUZZ_BUNDLE").expect("LIPO_FUZZ_BUNDLE");
            let path = CString::new(path).unwrap();
            let mut m = std::ptr::null_mut();
            let status = unsafe { lipo_model_open(path.as_ptr(), &mut m) };
            assert_eq!(status, LipoStatus::Ok);
            Handle(m)
        })
        .0
}

fuzz_target!(|data: &[u8]| {
    let m = model();
    let pieces: Vec<CString> = data
        .split(|&b| b == 0 || b == b'\n')
        .map(|p| CString::new(p).unwrap())
        .collect();
    let mut value = 0.0;
    let status = unsafe { lipo_predict(m, pieces[0].as_ptr(), &mut value) };
    let valid = pieces[0]
        .to_str()
        .is_ok_and(|s| lipo::smiles::check(s).is_ok());
    if status == LipoStatus::Ok {
        assert!(valid && value.is_finite());
    } else {
        assert!(value.is_nan());
    }
    let ptrs: Vec<*const c_char> = pieces.iter().map(|p| p.as_ptr()).collect();
    let mut values = vec![0.0; ptrs.len()];
    let mut statuses = vec![LipoStatus::Internal; ptrs.len()];
    unsafe {
        lipo_predict_batch(
            m,
            ptrs.as_ptr(),
            ptrs.len(),
            values.as_mut_ptr(),
            statuses.as_mut_ptr(),
        )
    };
    assert!(statuses.iter().all(|&s| s != LipoStatus::Internal));
});
