//! The graph key: the same molecule written differently has one key, different molecules
//! have different keys.

use std::collections::HashSet;

use super::super::*;

#[test]
fn same_molecule_written_differently() {
    let pairs = [
        ("CCO", "OCC"),
        ("c1ccccc1O", "Oc1ccccc1"),
        ("CC(=O)Nc1ccc(O)cc1", "Oc1ccc(NC(C)=O)cc1"),
        ("C1CC1C(=O)O", "OC(=O)C1CC1"),
        ("c1ccc2[nH]ccc2c1", "c1ccc2c(c1)cc[nH]2"),
        ("C[C@H](N)C(=O)O", "N[C@@H](C)C(O)=O"),
        ("[NH4+].[Cl-]", "[Cl-].[NH4+]"),
        ("C1CCCCC1CC2CC2", "C%10CC%10CC1CCCCC1"),
        ("ClC", "[Cl]C"),
        ("C1CC=1", "C=1CC1"),
    ];
    for (a, b) in pairs {
        assert_eq!(graph_key(a), graph_key(b), "{a} vs {b}");
        assert!(graph_key(a).is_some(), "{a}");
    }
}

#[test]
fn different_molecules_differ() {
    let mols = [
        "CCO", "CCN", "CC=O", "C=CO", "c1ccccc1", "c1ccncc1", "CC(C)O", "CCCO", "[O-]C", "OC",
        "C1CC1", "CCC", "CCl", "CBr", "CB",
    ];
    let keys: HashSet<_> = mols.iter().map(|m| graph_key(m).unwrap()).collect();
    assert_eq!(keys.len(), mols.len());
}

#[test]
fn graph_key_levels() {
    assert_eq!(graph_key("C/C=C/C"), graph_key("CC=CC"));
    assert_eq!(graph_key("Clc1ccccc1"), graph_key("c1ccccc1Cl"));
    assert_ne!(graph_key("CCN"), graph_key("CCO"));
    assert_eq!(graph_key("C1CC"), None);
}
