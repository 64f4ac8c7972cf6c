//! Tests of the SMILES reader: the grammar (`grammar`), the graph key (`key`), the random
//! writer (`writer`), the canonical writer (`canonical`), valences and Kekulé structures
//! (`valence`), hostile and random inputs and the reference data (`robustness`).

mod canonical;
mod grammar;
mod key;
mod robustness;
mod valence;
mod writer;

use super::*;
use crate::rng::SplitMix64;

/// Diverse valid molecules: rings, `%nn`, stereo, charges, dots, bracket atoms.
pub(crate) const MOLECULES: &[&str] = &[
    "CCO",
    "c1ccccc1O",
    "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
    "COc1cc(OC)c(cc1NC(=O)CSCC(=O)O)S(=O)(=O)N2C(C)CCc3ccccc23",
    "O=C(Nc1ccc2[nH]ncc2c1)C1CC1",
    "C[C@H](N)C(=O)O",
    "N[C@@H](C)C(=O)O",
    "F/C=C/F",
    "F/C=C\\F",
    "C(\\F)=C/Cl",
    "CC/C=C/C(=O)O",
    "C1CC2CCC1CC2",
    "[O-][N+](=O)c1ccccc1.Cl",
    "C12C3C4C1C5C2C3C45",
    "C%10CC%10CC1CCCCC1",
    "C%12CCCCC%12",
    "[NH4+].[Cl-]",
    "[Na+].[O-]C(=O)C",
    "O.O.CCO",
    "C1.C1",
    "[13CH4]",
    "[2H]C([2H])([2H])O",
    "[CH3:1]C",
    "*c1ccccc1",
    "C=1CCCCC1",
    "C1CCCCC=1",
    "C#N",
    "C$C",
    "c1ccc2c(c1)cc[nH]2",
    "[C@@H](F)(Cl)Br",
    "F[C@](Cl)(Br)I",
    "Br[C@H]1CCO1",
    "N[C@@](C)(O)S",
    "[C@@H]1(O)CCCC1",
    "O[C@H]1CC[C@@](O)(C)CC1",
    "C[C@]12CCC[C@H]1CCC2",
    "C1CCC2(CC1)CCCC2",
    "[NH3+][C@@H](Cc1ccccc1)C(=O)[O-]",
    "C[S@@](=O)c1ccccc1",
    "[Fe+3].[O-2].[O--]",
    "CC(C)(C)C",
    "Clc1cc(Br)ccc1I",
    "O=C1OC(=O)c2ccccc21",
    "c1cc[se]c1",
    "[te]1cccc1",
    "O.O.O.CC(=O)O[C@@]12CO[C@@H]1C[C@H](O)[C@]3(C)[C@@H]2[C@H](OC(=O)c4ccccc4)[C@]5(O)C[C@H](OC(=O)[C@H](O)[C@@H](NC(=O)OC(C)(C)C)c6ccccc6)C(=C([C@@H](O)C3=O)C5(C)C)C",
];

/// The position of `smiles`'s error, checking that its message names it.
pub(crate) fn error_at(smiles: &str) -> usize {
    match check(smiles) {
        Ok(()) => panic!("{smiles:?} should be invalid"),
        Err(e) => {
            assert!(
                e.reason.contains(&format!("position {}", e.position)),
                "{smiles:?}: {e} does not name position {}",
                e.position
            );
            e.position
        }
    }
}

/// Whether `smiles` parses; when it does, its random writing parses to the same graph.
pub(crate) fn assert_round_trip(smiles: &str, rng: &mut SplitMix64) -> bool {
    let Ok(m) = Molecule::parse(smiles) else {
        return false;
    };
    if let Some(r) = m.random_smiles(rng) {
        let again = Molecule::parse(&r).unwrap_or_else(|e| panic!("{smiles} → {r}: {e}"));
        assert_eq!(again.graph_key(), m.graph_key(), "{smiles} → {r}");
    }
    true
}

// ---- the reference data, when LIPO_DATA names its folder ----

/// The SMILES of `lipophilicity.csv` (column `smiles`) and `external.csv` (column `SMILES`)
/// in the folder `LIPO_DATA` names, or `None` when it is not set.
pub(crate) fn data_smiles() -> Option<Vec<(String, Vec<String>)>> {
    let dir = std::env::var_os("LIPO_DATA")?;
    let dir = std::path::PathBuf::from(dir);
    let mut out = vec![];
    for (file, column) in [("lipophilicity.csv", "smiles"), ("external.csv", "SMILES")] {
        let text = std::fs::read_to_string(dir.join(file)).expect("reads the data file");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let col = header
            .iter()
            .position(|h| h.trim() == column)
            .expect("column");
        let smiles = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').nth(col).expect("field").to_string())
            .collect();
        out.push((file.to_string(), smiles));
    }
    Some(out)
}
