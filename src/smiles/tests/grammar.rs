//! The grammar: invalid strings with the position of their error, the messages, valid
//! strings, and the atoms and bonds as written.

use super::super::*;
use super::error_at;

/// Invalid SMILES and the 1-based position their error names.
const INVALID: &[(&str, usize)] = &[
    ("", 1),
    (" ", 1),
    ("\t", 1),
    ("C C", 2),
    ("CC\n", 3),
    ("C)C(", 2),
    ("CC(C", 3),
    ("((((", 1),
    ("1", 1),
    ("c1ccccc", 2),
    ("C1CC", 2),
    ("[Xx]", 2),
    ("[X]", 2),
    ("Xx", 1),
    ("H", 1),
    ("C==C", 3),
    ("CC(=O", 3),
    ("N#", 2),
    ("=C", 1),
    ("C.", 2),
    ("C(", 2),
    ("C)", 2),
    ("C()C", 2),
    ("C(C))", 5),
    ("C((C))", 3),
    ("[C", 1),
    ("[Fe+3", 1),
    ("C]", 2),
    ("[]", 1),
    ("%1", 1),
    ("C%1", 2),
    ("C%1C", 2),
    ("CC%123", 3),
    ("c", 1),
    ("cc", 1),
    ("Cc1ccccc1c", 10),
    ("C[nH]C", 2),
    (".C", 1),
    ("C..C", 3),
    ("C.=C", 3),
    ("C=.C", 2),
    ("C-", 2),
    ("-C", 1),
    ("C=(O)C", 2),
    ("C(=1)", 3),
    ("C=1CC-1", 6),
    ("C#1CC=1", 6),
    ("C11", 3),
    ("C12CC12", 7),
    ("C1C1", 4),
    ("C(C)1CC1", 5),
    ("C1CC(1)", 6),
    ("[C@TH3]", 3),
    ("[C@TB21]", 3),
    ("[C@TB0]", 3),
    ("[C@OH05]", 3),
    ("[C@XY]", 3),
    ("[C@T]", 3),
    ("[CH@]", 4),
    ("[C+++]", 5),
    ("[C:]", 3),
    ("[13]", 4),
    ("[1234C]", 2),
    ("[si]1cccc1", 2),
    ("[Cx]", 2),
    ("[C[", 3),
    ("[CH10]", 5),
    ("Q", 1),
    ("C+", 2),
    ("C@", 2),
    ("Cé", 2),
    ("éC", 1),
    ("CCé1", 3),
    ("C→C", 2),
    ("[Cé]", 3),
    ("ééé)", 1),
    ("C1CCCCC1)", 9),
];

#[test]
fn invalid_smiles_are_errors_at_the_right_position() {
    let mut wrong = vec![];
    for &(smiles, want) in INVALID {
        let got = error_at(smiles);
        if got != want {
            wrong.push(format!(
                "{smiles:?}: want {want}, got {got}: {:?}",
                check(smiles)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn error_messages_name_the_token() {
    let msg = |s: &str| check(s).unwrap_err().to_string();
    assert_eq!(msg("C1CC"), "unclosed ring bond 1 opened at position 2");
    assert_eq!(msg("CC%123"), "unclosed ring bond %12 opened at position 3");
    assert!(msg("CC=").starts_with("'=' at position 3 is not followed by an atom"));
    assert!(msg("C==C").contains("'=' at position 3"));
    assert_eq!(msg("c"), "aromatic atom 'c' at position 1 is not in a ring");
    assert_eq!(
        msg("C[nH]C"),
        "aromatic atom '[nH]' at position 2 is not in a ring"
    );
    assert_eq!(msg("[Xx]"), "unknown element 'Xx' at position 2");
    assert!(msg("C C").contains("whitespace ' '"));
    assert!(msg("Cé").contains("'é' at position 2"));
    assert!(msg("C=(O)C").contains("C(=O)C"));
    let e = check("C)").unwrap_err();
    let dynamic: &dyn std::error::Error = &e;
    assert_eq!(dynamic.to_string(), "')' at position 2 has no matching '('");
}

/// Valid SMILES that exercise each part of the grammar.
const VALID: &[&str] = &[
    "C1.C1",
    "C1CC=1",
    "[13C@@H](F)(Cl)Br",
    "[13C@@H]",
    "[Fe+3]",
    "[NH4+]",
    "[2H]",
    "[nH]1cccc1",
    "[Na+].[Cl-]",
    "C/C=C\\C",
    "C%00CCCCC%00",
    "C1CCCCC%01",
    "C(.C)C",
    "[C@TH1](F)(Cl)(Br)I",
    "[C@SP3](F)(Cl)(Br)I",
    "[Fe@OH30](F)(F)(F)(F)(F)F",
    "[Fe@TB20](F)(F)(F)(F)F",
    "[Fe++]",
    "[O--]",
    "[Cu+12]",
    "[N-3]",
    "[CH3:7]",
    "[CH4:123456]",
    "*C",
    "[*]",
    "[H][H]",
    "[H+]",
    "[999U]",
    "[Og]",
    "c1ccc2ccccc2c1",
    "C=1CCCCC=1",
    "c1cc[se]c1",
    "[asH]1cccc1",
    "O=C=O",
    "C$C",
    "CC(C)(C)C",
    "C(C)(C)",
    "C(=O)(O)",
    "C(C(C(C)))",
    "CCCC(C)(C)C",
    "C:C",
    "c1:c:c:c:c:c1",
    "C12CCCCC1CCCC2",
    "C1CC2.C1.C2",
    "C/1CCCC/1",
    "C/1CCCC\\1",
    "N1CC1",
    "[C@H]1(O)CC1",
    "ClBr",
    "BrCl",
    "[Sc]",
    "Sc1ccccc1",
];

#[test]
fn valid_smiles_pass() {
    for s in VALID {
        if let Err(e) = check(s) {
            panic!("{s:?}: {e}");
        }
    }
}

#[test]
fn atoms_and_bonds_as_written() {
    let m = Molecule::parse("[13C@@H:4](Cl)([O-])c1cc[nH]c1C=1CC1").unwrap();
    let a = &m.atoms()[0];
    assert_eq!(a.symbol(), "C");
    assert!(a.bracket());
    assert_eq!(a.isotope(), Some(13));
    assert_eq!(a.hydrogens(), Some(1));
    assert_eq!(a.chirality(), Some(Chirality::Clockwise));
    assert_eq!(a.class(), Some(4));
    assert_eq!(a.position(), 1);
    assert_eq!(m.atom_text(0), "[13C@@H:4]");
    assert_eq!(m.atom_text(1), "Cl");
    assert_eq!(m.atoms()[1].symbol(), "Cl");
    assert_eq!(m.atoms()[1].hydrogens(), None);
    assert_eq!(m.atoms()[2].charge(), -1);
    assert!(m.atoms()[3].aromatic());
    let nh = &m.atoms()[6];
    assert_eq!(
        (nh.symbol(), nh.aromatic(), nh.hydrogens()),
        ("N", true, Some(1))
    );
    assert_eq!(nh.span(), 24..28);
    // Bonds: chain bonds in reading order, ring closures when they close.
    let b: Vec<(usize, usize, Option<char>, bool)> = m
        .bonds()
        .iter()
        .map(|b| (b.from(), b.to(), b.symbol(), b.ring_closure()))
        .collect();
    assert_eq!(b[0], (0, 1, None, false));
    assert!(b.contains(&(3, 7, None, true)));
    assert!(b.contains(&(8, 10, Some('='), true)));
    // Rings: the pyrrole and the cyclopropane; the links between are bridges.
    for atom in 3..=7 {
        assert!(m.atom_in_ring(atom));
    }
    assert!(!m.atom_in_ring(0) && !m.atom_in_ring(1) && !m.atom_in_ring(2));
    assert!(m.atom_in_ring(8));
    let bridge = m.bonds().iter().position(|b| (b.from(), b.to()) == (7, 8));
    assert!(!m.bond_in_ring(bridge.unwrap()));
    assert_eq!(m.atom_bonds(7).len(), 3);
    assert_eq!(m.smiles(), "[13C@@H:4](Cl)([O-])c1cc[nH]c1C=1CC1");
    let ext = Molecule::parse("F[P@TB12](Cl)(Br)(I)N").unwrap();
    assert_eq!(
        ext.atoms()[1].chirality(),
        Some(Chirality::TrigonalBipyramidal(12))
    );
}
