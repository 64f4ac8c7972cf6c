//! The tokenizer: never a panic; a SMILES it encodes is valid and starts and ends with the
//! special tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lipo::tokenizer::{SmilesTokenizer, BOS_ID, EOS_ID};
use std::sync::OnceLock;

static TOKENIZER: OnceLock<SmilesTokenizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let t = TOKENIZER.get_or_init(SmilesTokenizer::molformer);
    let _ = t.split(s);
    if let Ok(ids) = t.encode(s) {
        assert!(lipo::smiles::check(s).is_ok(), "{s:?} encoded but is not valid");
        assert_eq!(ids.first(), Some(&BOS_ID));
        assert_eq!(ids.last(), Some(&EOS_ID));
        assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
    }
});
