//! Tokenizer snapshots: ids of tricky SMILES (stereo, charges, two-digit ring closures,
//! Br/Cl, dots, cis/trans slashes). A change in tokenization shows up as a snapshot diff.

use lipo::tokenizer::SmilesTokenizer;

const TRICKY: [&str; 10] = [
    r"F/C=C\F",
    r"C/C=C/C(=O)O",
    "C[C@@H](N)C(=O)O",
    "C[C@H]1CC[C@@H](C)CC1",
    "[NH4+].[Cl-]",
    "[O-][N+](=O)c1ccccc1",
    "C1CCC2CC%10CCC%10CC2C1",
    "BrCCCl",
    "c1ccc2[nH]ccc2c1",
    "CC(C)(C)OC(=O)N1CCN(CC1)c1ncccn1",
];

#[test]
fn tricky_smiles_ids() {
    let t = SmilesTokenizer::molformer();
    let rows: Vec<String> = TRICKY
        .iter()
        .map(|s| {
            let ids = t.encode(s).unwrap();
            let toks: Vec<String> = ids.iter().map(|&i| t.id_to_token(i).unwrap()).collect();
            format!("{s}  =>  {ids:?}  {}", toks.join(" "))
        })
        .collect();
    insta::assert_snapshot!(rows.join("\n"));
}

#[test]
fn tokenizer_json_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tokenizer.json");
    let t = SmilesTokenizer::molformer();
    t.save(&p).unwrap();
    let back = SmilesTokenizer::load(&p).unwrap();
    assert_eq!(back.vocab_size(), 2362);
    assert_eq!(back.vocab_hash(), t.vocab_hash());
    for s in TRICKY {
        assert_eq!(back.encode(s).unwrap(), t.encode(s).unwrap(), "{s}");
    }
    // The saved file is a standard tokenizers file: the pattern keeps the single backslash.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(json["model"]["type"], "WordLevel");
    assert_eq!(
        json["pre_tokenizer"]["pattern"]["Regex"],
        lipo::tokenizer::SMILES_PATTERN
    );
}

#[test]
fn nothing_is_dropped() {
    let t = SmilesTokenizer::molformer();
    // Every character of a valid SMILES lands in exactly one token.
    for s in TRICKY {
        let pieces = t.split(s).unwrap();
        assert_eq!(pieces.concat(), s);
    }
    for bad in ["C C", "CC&C", "C1CC%1", "<mask>"] {
        assert!(t.encode(bad).is_err(), "{bad} must be rejected");
    }
}
