//! Finding the same molecule written differently, without a cheminformatics toolkit.
//!
//! Three levels, from strict to loose:
//! 1. the exact SMILES string;
//! 2. the string with stereo marks (`@`, `/`, `\`) removed;
//! 3. a graph key: the SMILES is parsed into atoms (element, aromaticity, charge) and bonds
//!    (single, double, triple, aromatic), and hashed with Weisfeiler–Lehman refinement, which
//!    does not depend on atom order, branch layout, ring-closure numbers, hydrogen notation
//!    or stereo.
//!
//! What the graph key cannot catch: Kekulé vs aromatic writing of the same ring, tautomers,
//! different protonation or salt forms, and isotopes are ignored; in principle two different
//! graphs that WL refinement cannot tell apart would collide (rare for drug-like molecules).

use std::collections::HashMap;

/// How two SMILES were found to be the same molecule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Identical strings.
    Exact,
    /// Identical after removing stereo marks.
    StereoStripped,
    /// Same molecular graph key.
    Graph,
}

/// The stereo-stripped form of a SMILES (`@` and `/`, `\` removed; `[C@@H]` → `[CH]`).
pub fn strip_stereo(smiles: &str) -> String {
    smiles
        .chars()
        .filter(|c| !matches!(c, '@' | '/' | '\\'))
        .collect()
}

/// The order-independent graph key of a SMILES, or `None` when it is not a valid SMILES
/// (see [`crate::smiles::graph_key`]).
pub fn graph_key(smiles: &str) -> Option<u64> {
    crate::smiles::graph_key(smiles)
}

/// Index of molecules by exact string, stereo-stripped string and graph key.
#[derive(Debug, Default)]
pub struct MoleculeIndex {
    exact: HashMap<String, usize>,
    stripped: HashMap<String, usize>,
    graph: HashMap<u64, usize>,
}

impl MoleculeIndex {
    /// Indexes `smiles` (the value stored is the position in the slice).
    pub fn new<S: AsRef<str>>(smiles: &[S]) -> Self {
        let mut idx = MoleculeIndex::default();
        for (i, s) in smiles.iter().enumerate() {
            let s = s.as_ref();
            idx.exact.entry(s.to_string()).or_insert(i);
            idx.stripped.entry(strip_stereo(s)).or_insert(i);
            if let Some(k) = graph_key(s) {
                idx.graph.entry(k).or_insert(i);
            }
        }
        idx
    }

    /// The first indexed molecule equal to `smiles`, and how it matched.
    pub fn find(&self, smiles: &str) -> Option<(usize, MatchKind)> {
        if let Some(&i) = self.exact.get(smiles) {
            return Some((i, MatchKind::Exact));
        }
        if let Some(&i) = self.stripped.get(&strip_stereo(smiles)) {
            return Some((i, MatchKind::StereoStripped));
        }
        graph_key(smiles)
            .and_then(|k| self.graph.get(&k))
            .map(|&i| (i, MatchKind::Graph))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_reports_the_level() {
        let idx = MoleculeIndex::new(&["C/C=C/C", "CCO", "c1ccccc1Cl"]);
        assert_eq!(idx.find("CCO"), Some((1, MatchKind::Exact)));
        assert_eq!(idx.find("CC=CC"), Some((0, MatchKind::StereoStripped)));
        assert_eq!(idx.find("Clc1ccccc1"), Some((2, MatchKind::Graph)));
        assert_eq!(idx.find("CCN"), None);
        assert_eq!(graph_key("C1CC"), None);
    }
}
