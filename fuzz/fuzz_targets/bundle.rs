//! A bundle whose ONNX metadata (task, label statistics, tta, vocabulary hash, ...) comes
//! from arbitrary bytes, as `key=value` lines, on the graph of the bundle in
//! LIPO_FUZZ_BUNDLE: opening it never panics or allocates without bound, and a bundle that
//! opens predicts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protobuf::Message;
use std::path::PathBuf;
use std::sync::OnceLock;

static BASE: OnceLock<(PathBuf, onnx_protobuf::ModelProto)> = OnceLock::new();

fn base() -> &'static (PathBuf, onnx_protobuf::ModelProto) {
    BASE.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os("LIPO_FUZZ_BUNDLE").expect("LIPO_FUZZ_BUNDLE"));
        let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
        (dir, onnx_protobuf::ModelProto::parse_from_bytes(&bytes).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (dir, model) = base();
    let mut m = model.clone();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if let Some(p) = m.metadata_props.iter_mut().find(|p| p.key == k) {
                p.value = v.to_string();
            } else {
                let mut p = onnx_protobuf::StringStringEntryProto::new();
                p.key = k.to_string();
                p.value = v.to_string();
                m.metadata_props.push(p);
            }
        }
    }
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("model.onnx"), m.write_to_bytes().unwrap()).unwrap();
    std::fs::copy(dir.join("tokenizer.json"), out.path().join("tokenizer.json")).unwrap();
    let opts = lipo::infer::PredictorOptions::default();
    if let Ok(p) = lipo::infer::Predictor::open(out.path(), &opts) {
        assert!(p.info().tta <= lipo::model::MAX_TTA);
        let _ = p.predict(&["CCO", "c1ccccc1O"]);
    }
});
