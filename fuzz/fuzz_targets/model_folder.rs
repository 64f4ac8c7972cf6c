//! A model folder's files (config.json, lipo.json, tokenizer.json) from arbitrary bytes, cut
//! at 0xFF bytes: reading the folder never panics, and what it accepts is within bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff);
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "lipo.json", "tokenizer.json"] {
        if let Some(p) = parts.next() {
            std::fs::write(dir.path().join(name), p).unwrap();
        }
    }
    std::fs::write(dir.path().join("model.safetensors"), b"").unwrap();
    if let Ok((config, _, tokenizer, meta)) = lipo::model::read_folder(dir.path()) {
        assert!(config.hidden_size <= 8192 && config.pad_token_id < config.vocab_size);
        assert!(tokenizer.vocab_size() <= config.vocab_size);
        if let Some(m) = meta {
            assert!(m.tta <= lipo::model::MAX_TTA);
        }
    }
});
