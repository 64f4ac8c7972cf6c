//! The SMILES grammar check and the random writer: never a panic; a string the check accepts
//! is rewritten (when the writer can) into a string the check accepts, of the same graph.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lipo::rng::SplitMix64;
use lipo::smiles::Molecule;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Molecule::parse(s) else {
        return;
    };
    let key = m.graph_key();
    let mut rng = SplitMix64::new(data.len() as u64);
    if let Some(r) = m.random_smiles(&mut rng) {
        let again = Molecule::parse(&r).unwrap_or_else(|e| panic!("{s} → {r}: {e}"));
        assert_eq!(again.graph_key(), key, "{s} → {r}");
    }
});
