//! The C ABI: a thin skin over the Rust API for C, C++ and other languages. The header
//! `include/lipo.h` is generated from this module by cbindgen (`tests/header.rs` fails when
//! it is stale; `LIPO_BLESS=1 cargo test --release --test header` rewrites it).
//!
//! Conventions, in the style of the SQLite and ONNX Runtime C APIs:
//! - every function that can fail returns a [`LipoStatus`]; [`lipo_last_error`] gives the
//!   message of the most recent failure on the calling thread;
//! - objects are opaque handles created by `lipo_*_open` and released by the matching
//!   `lipo_*_close`; strings the library returns are released with [`lipo_string_free`];
//! - NULL pointers and strings that are not UTF-8 are reported as
//!   [`LipoStatus::InvalidArgument`], never dereferenced;
//! - no panic crosses the boundary: one is caught and returned as [`LipoStatus::Internal`].
//!
//! Functions whose part of lipo a build leaves out (training in an inference-only build,
//! for instance) exist in every build and return [`LipoStatus::Unsupported`].

mod model;
mod train;

pub use model::*;
pub use train::*;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// Version of the C ABI described by `lipo.h`. It changes when a function's signature or
/// meaning changes; compare it with `lipo_abi_version()` at run time.
pub const LIPO_ABI_VERSION: u32 = 1;

/// Outcome of a call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LipoStatus {
    /// Success.
    Ok = 0,
    /// A NULL pointer, a string that is not UTF-8, or a parameter lipo cannot use.
    InvalidArgument = 1,
    /// A SMILES string that cannot be tokenized.
    InvalidSmiles = 2,
    /// A data or configuration file that cannot be used (its path and line are in the
    /// message).
    Data = 3,
    /// A file could not be read or written.
    Io = 4,
    /// A model folder or bundle is missing pieces or does not fit its configuration.
    Model = 5,
    /// ONNX Runtime, libtorch or the tokenizer failed.
    Runtime = 6,
    /// Training failed (for example a non-finite loss).
    Training = 7,
    /// A long job was cancelled by its callback; its checkpoint is kept.
    Cancelled = 8,
    /// This build of lipo leaves out the part the call needs.
    Unsupported = 9,
    /// A bug in lipo (a caught panic); the message says where.
    Internal = 10,
}

impl LipoStatus {
    fn of(e: &Error) -> LipoStatus {
        match e {
            Error::InvalidParameter { .. } => LipoStatus::InvalidArgument,
            Error::InvalidSmiles { .. } => LipoStatus::InvalidSmiles,
            Error::BadRow { .. } | Error::BadFile { .. } | Error::Json { .. } => LipoStatus::Data,
            Error::Io { .. } => LipoStatus::Io,
            Error::Model { .. } => LipoStatus::Model,
            Error::OnnxRuntime(_) | Error::Tokenizer(_) => LipoStatus::Runtime,
            #[cfg(feature = "train")]
            Error::Torch(_) => LipoStatus::Runtime,
            Error::Training(_) => LipoStatus::Training,
            Error::Cancelled(_) => LipoStatus::Cancelled,
            Error::Unsupported(_) => LipoStatus::Unsupported,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NUL bytes cannot be represented in a C string; show them visibly instead.
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs the body of an exported function: clears the thread's last error, turns an error
/// into its status and message, and stops a panic at the boundary.
fn guard(body: impl FnOnce() -> crate::Result<()>) -> LipoStatus {
    set_last_error("");
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => LipoStatus::Ok,
        Ok(Err(e)) => {
            set_last_error(&e.to_string());
            LipoStatus::of(&e)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!(
                "internal error in lipo (please report it): {what}"
            ));
            LipoStatus::Internal
        }
    }
}

/// The UTF-8 string behind `ptr`; `name` is the parameter's name for error messages.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the returned slice.
unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> crate::Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::param(name, "is NULL"));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map_err(|e| Error::param(name, format!("is not valid UTF-8 ({e})")))
}

/// Checks that an output pointer is not NULL.
fn out_arg<T>(ptr: *mut T, name: &str) -> crate::Result<()> {
    if ptr.is_null() {
        Err(Error::param(
            name,
            "is NULL (an output pointer is required)",
        ))
    } else {
        Ok(())
    }
}

/// A string handed to the caller, who releases it with [`lipo_string_free`].
fn owned_string(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', "\\0"))
        .unwrap_or_default()
        .into_raw()
}

/// lipo's version, e.g. "0.1.0". The string is static: do not free it.
#[no_mangle]
pub extern "C" fn lipo_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// The ABI version of the loaded library; equal to `LIPO_ABI_VERSION` of the header a
/// program was compiled with when the two fit.
#[no_mangle]
pub extern "C" fn lipo_abi_version() -> u32 {
    LIPO_ABI_VERSION
}

/// The UTF-8 message of the most recent failed call on this thread ("" when the most recent
/// call succeeded). The string belongs to the library and stays valid until the next lipo
/// call on the same thread; do not free it.
#[no_mangle]
pub extern "C" fn lipo_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A short English name of a status, e.g. "invalid SMILES"; "unknown status" for an integer
/// that is not a status. It takes a plain integer, so any value a host passes is defined.
/// Static: do not free it.
#[no_mangle]
pub extern "C" fn lipo_status_name(status: c_int) -> *const c_char {
    let s: &'static str = match status {
        0 => "ok\0",
        1 => "invalid argument\0",
        2 => "invalid SMILES\0",
        3 => "unusable data\0",
        4 => "I/O error\0",
        5 => "unusable model\0",
        6 => "runtime error\0",
        7 => "training failed\0",
        8 => "cancelled\0",
        9 => "not supported by this build\0",
        10 => "internal error\0",
        _ => "unknown status\0",
    };
    s.as_ptr().cast()
}

/// Releases a string returned by lipo (for example a report). NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string lipo returned that has not been freed yet.
#[no_mangle]
pub unsafe extern "C" fn lipo_string_free(s: *mut c_char) {
    if !s.is_null() {
        drop(CString::from_raw(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        unsafe { CStr::from_ptr(lipo_last_error()) }
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn panics_and_errors_become_statuses_with_messages() {
        assert_eq!(guard(|| panic!("boom")), LipoStatus::Internal);
        assert!(last().contains("boom"), "{}", last());
        assert_eq!(
            guard(|| Err(Error::param("smiles", "is NULL"))),
            LipoStatus::InvalidArgument
        );
        assert!(last().contains("smiles"));
        assert_eq!(guard(|| Ok(())), LipoStatus::Ok);
        assert_eq!(last(), "");
    }

    #[test]
    fn null_and_non_utf8_strings_are_rejected() {
        let e = unsafe { str_arg(std::ptr::null(), "path") }.unwrap_err();
        assert!(e.to_string().contains("path"));
        let bad = [0xffu8, 0xfe, 0];
        let e = unsafe { str_arg(bad.as_ptr().cast(), "smiles") }.unwrap_err();
        assert!(e.to_string().contains("UTF-8"));
    }

    #[test]
    fn any_integer_has_a_status_name() {
        let name = |k: c_int| {
            unsafe { CStr::from_ptr(lipo_status_name(k)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(name(LipoStatus::InvalidSmiles as c_int), "invalid SMILES");
        assert_eq!(name(LipoStatus::Internal as c_int), "internal error");
        for k in [-1, 11, 100_000, c_int::MIN, c_int::MAX] {
            assert_eq!(name(k), "unknown status");
        }
    }

    #[test]
    fn version_is_the_crate_version() {
        let v = unsafe { CStr::from_ptr(lipo_version()) };
        assert_eq!(v.to_str().unwrap(), crate::VERSION);
        assert_eq!(lipo_abi_version(), LIPO_ABI_VERSION);
    }
}
