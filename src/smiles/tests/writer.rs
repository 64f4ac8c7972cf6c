//! The random writer: the same graph, stereo marks kept, what it declines, and the limit of
//! 99 ring numbers.

use std::collections::HashSet;

use super::super::write::{odd_permutation, Slot};
use super::super::*;
use super::MOLECULES;
use crate::rng::SplitMix64;

#[test]
fn random_smiles_are_the_same_graph() {
    let mut rng = SplitMix64::new(7);
    for smiles in MOLECULES {
        let m = Molecule::parse(smiles).unwrap_or_else(|e| panic!("{smiles}: {e}"));
        let key = m.graph_key();
        let mut seen = HashSet::new();
        for _ in 0..50 {
            let r = m.random_smiles(&mut rng).expect("writes");
            assert_eq!(graph_key(&r), Some(key), "{smiles} → {r}");
            seen.insert(r);
        }
        // Symmetric molecules such as cyclohexane have few writings.
        if m.atoms().len() > 4 && m.atoms().iter().any(|a| a.symbol() != "C") {
            assert!(seen.len() > 3, "{smiles}: only {seen:?}");
        }
    }
}

#[test]
fn random_smiles_pass_check_and_keep_the_key() {
    for smiles in MOLECULES {
        let m = Molecule::parse(smiles).unwrap();
        let key = m.graph_key();
        for seed in 0..200 {
            let mut rng = SplitMix64::new(seed);
            let r = m.random_smiles(&mut rng).unwrap();
            let again = Molecule::parse(&r).unwrap_or_else(|e| panic!("{smiles} → {r}: {e}"));
            assert_eq!(again.graph_key(), key, "{smiles} → {r}");
            assert_eq!(again.atoms().len(), m.atoms().len());
            assert_eq!(again.bonds().len(), m.bonds().len());
        }
    }
}

/// The handedness of the chirality mark of atom `atom` as a sign that does not depend on
/// the writing: the mark (true for `@@`) combined with the parity of the written neighbour
/// order against the neighbours sorted by `name` (the implicit hydrogen is `Slot::H`).
/// Neighbours must have distinct names.
pub(super) fn chirality_sign<T: Ord>(m: &Molecule, atom: usize, name: impl Fn(Slot) -> T) -> bool {
    let written = m.written_slots(atom);
    let mut sorted = written.clone();
    sorted.sort_by_key(|&s| name(s));
    let odd = odd_permutation(&written, &sorted);
    (m.atoms()[atom].chirality() == Some(Chirality::Clockwise)) ^ odd
}

/// The chirality of `[C@@H](F)(Cl)Br`-style centres as a canonical sign: the parity of the
/// written neighbour order (by atom text) combined with the mark.
fn centre_sign(smiles: &str) -> bool {
    let m = Molecule::parse(smiles).expect("parses");
    let i = m
        .atoms()
        .iter()
        .position(|a| a.chirality().is_some())
        .expect("a chiral atom");
    chirality_sign(&m, i, |s| match s {
        Slot::H => "H".to_string(),
        Slot::Bond(b) => m.atom_text(m.bonds()[b].other(i)).to_string(),
    })
}

#[test]
fn tetrahedral_centres_keep_their_handedness() {
    let mut rng = SplitMix64::new(11);
    for smiles in [
        "[C@@H](F)(Cl)Br",
        "F[C@](Cl)(Br)I",
        "Br[C@H]1CCO1",
        "N[C@@](C)(O)S",
    ] {
        let want = centre_sign(smiles);
        let m = Molecule::parse(smiles).unwrap();
        for _ in 0..40 {
            let r = m.random_smiles(&mut rng).unwrap();
            if smiles.contains('1') {
                // Ring neighbours share a name; only check the graph.
                assert_eq!(graph_key(&r), graph_key(smiles), "{r}");
            } else {
                assert_eq!(centre_sign(&r), want, "{smiles} → {r}");
            }
        }
    }
    // The two enantiomers stay apart.
    assert_ne!(
        centre_sign("F[C@](Cl)(Br)I"),
        centre_sign("F[C@@](Cl)(Br)I")
    );
    assert_eq!(
        centre_sign("F[C@](Cl)(Br)I"),
        centre_sign("Cl[C@@](F)(Br)I")
    );
    // The implicit hydrogen counts right after the preceding atom, or first.
    assert_eq!(centre_sign("F[C@H](Cl)Br"), centre_sign("[C@@H](F)(Cl)Br"));
}

/// Whether `F` and `Cl` are on opposite sides of the double bond of a `F/C=C/Cl`-style
/// SMILES: `A/B` puts B above A, `A\\B` below.
fn trans(smiles: &str) -> bool {
    let m = Molecule::parse(smiles).expect("parses");
    let double = m
        .bonds()
        .iter()
        .find(|b| b.symbol() == Some('='))
        .expect("C=C");
    let up = |name: &str| -> bool {
        let b = m
            .bonds()
            .iter()
            .find(|b| m.atom_text(b.from()) == name || m.atom_text(b.to()) == name)
            .expect("substituent");
        let carbon_first = b.from() == double.from() || b.from() == double.to();
        (b.symbol() == Some('/')) == carbon_first
    };
    up("F") != up("Cl")
}

#[test]
fn double_bond_marks_follow_the_writing_direction() {
    assert!(trans("F/C=C/Cl"));
    assert!(trans("C(\\F)=C/Cl"));
    assert!(!trans("F/C=C\\Cl"));
    assert!(!trans("C(/F)=C/Cl"));
    let mut rng = SplitMix64::new(3);
    for smiles in ["F/C=C/Cl", "F/C=C\\Cl", "Cl\\C=C/F"] {
        let want = trans(smiles);
        let m = Molecule::parse(smiles).unwrap();
        let mut seen = HashSet::new();
        for _ in 0..40 {
            let r = m.random_smiles(&mut rng).unwrap();
            assert_eq!(trans(&r), want, "{smiles} → {r}");
            seen.insert(r);
        }
        assert!(seen.len() >= 4, "{seen:?}");
    }
}

#[test]
fn declines_what_it_cannot_rewrite_without_drawing() {
    for smiles in ["F[C@TH1](Cl)(Br)I", "F[C@SP1](Cl)(Br)I", "C(.C)C"] {
        let m = Molecule::parse(smiles).unwrap_or_else(|e| panic!("{smiles}: {e}"));
        assert!(!m.randomizable(), "{smiles}");
        let mut rng = SplitMix64::new(5);
        assert_eq!(m.random_smiles(&mut rng), None, "{smiles}");
        assert_eq!(rng.state(), 5, "{smiles} drew from the stream");
    }
    assert!(Molecule::parse("C/C=C/C").unwrap().randomizable());
    for smiles in ["C1CC", "C(C", "Xx", ""] {
        assert!(Molecule::parse(smiles).is_err(), "{smiles}");
    }
}

/// A wheel: a hub atom bonded to every atom of a ring of `rim` atoms, written with few
/// ring numbers open (`*(C91)(C12)(C21)…(C19)`); any depth-first writing of it needs about
/// `rim / 2` or more ring closures open at once.
pub(crate) fn wheel(rim: usize) -> String {
    let mut s = String::from("*(C91)");
    for k in 1..rim {
        let (close, open) = if k % 2 == 1 { ('1', '2') } else { ('2', '1') };
        s.push_str("(C");
        s.push(close);
        s.push(if k + 1 == rim { '9' } else { open });
        s.push(')');
    }
    s
}

#[test]
fn never_writes_more_than_99_ring_numbers() {
    // Needs at least 125 open at once: always declined.
    let big = Molecule::parse(&wheel(250)).unwrap();
    assert_eq!(big.atoms().len(), 251);
    assert!(big.randomizable());
    for seed in 0..10 {
        assert_eq!(big.random_smiles(&mut SplitMix64::new(seed)), None);
    }
    // Needs 50 to 100 depending on the walk: some written, all valid.
    let mid = Molecule::parse(&wheel(100)).unwrap();
    let key = mid.graph_key();
    let (mut written, mut declined) = (0, 0);
    for seed in 0..60 {
        match mid.random_smiles(&mut SplitMix64::new(seed)) {
            Some(r) => {
                written += 1;
                let again = Molecule::parse(&r).unwrap_or_else(|e| panic!("{r}: {e}"));
                assert_eq!(again.graph_key(), key);
            }
            None => declined += 1,
        }
    }
    assert!(
        written > 0 && declined > 0,
        "{written} written, {declined} declined"
    );
}

#[test]
fn random_writings_are_pinned() {
    // The random stream is part of the contract (resumed training runs depend on it): the
    // same seed gives these writings, byte for byte.
    let pinned = [
        (
            "CC(=O)Nc1ccc(O)cc1",
            "O=C(C)Nc1ccc(O)cc1",
            "O=C(C)Nc1ccc(cc1)O",
        ),
        ("C[C@H](N)C(=O)O", "O=C(O)[C@H](C)N", "C[C@H](N)C(=O)O"),
        ("F/C=C/Cl", "C(/Cl)=C\\F", "Cl\\C=C\\F"),
        ("[Na+].[O-]C(=O)C", "[O-]C(C)=O.[Na+]", "C(=O)([O-])C.[Na+]"),
        (
            "C12C3C4C1C5C2C3C45",
            "C12C3C4C5C3C2C5C41",
            "C12C3C4C2C2C4C3C21",
        ),
    ];
    for (smiles, first, second) in pinned {
        let m = Molecule::parse(smiles).unwrap();
        let mut rng = SplitMix64::new(42);
        assert_eq!(
            m.random_smiles(&mut rng).as_deref(),
            Some(first),
            "{smiles}"
        );
        assert_eq!(
            m.random_smiles(&mut rng).as_deref(),
            Some(second),
            "{smiles}"
        );
    }
}
