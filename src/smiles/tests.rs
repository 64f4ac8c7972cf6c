use super::write::{odd_permutation, Slot};
use super::*;
use crate::rng::SplitMix64;
use std::collections::HashSet;

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

fn error_at(smiles: &str) -> usize {
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

#[test]
fn invalid_smiles_are_errors_at_the_right_position() {
    let cases: &[(&str, usize)] = &[
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
    let mut wrong = vec![];
    for &(smiles, want) in cases {
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

#[test]
fn valid_smiles_pass() {
    let valid = [
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
        "[as]1cccc1",
        "O=C=O",
        "C$C",
        "CC(C)(C)C",
        "C(C)(C)",
        "C(=O)(O)",
        "C(C(C(C)))",
        "CCCC(C)(C)(C)(C)C",
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
    for s in valid {
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
    let ext = Molecule::parse("F[C@TB12](Cl)(Br)(I)N").unwrap();
    assert_eq!(
        ext.atoms()[1].chirality(),
        Some(Chirality::TrigonalBipyramidal(12))
    );
}

// ---- graph key (from dedupe.rs) ----

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

// ---- random writer (from augment.rs) ----

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

/// The chirality of `[C@@H](F)(Cl)Br`-style centres as a canonical sign: the parity of the
/// written neighbour order (by atom text) combined with the mark.
fn centre_sign(smiles: &str) -> bool {
    let m = Molecule::parse(smiles).expect("parses");
    let i = m
        .atoms()
        .iter()
        .position(|a| a.chirality().is_some())
        .expect("a chiral atom");
    let names: Vec<String> = m
        .written_slots(i)
        .iter()
        .map(|s| match s {
            Slot::H => "H".to_string(),
            Slot::Bond(b) => m.atom_text(m.bonds()[*b].other(i)).to_string(),
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    let as_slots = |v: &[String]| -> Vec<Slot> {
        v.iter()
            .map(|n| Slot::Bond(names.iter().position(|m| m == n).unwrap()))
            .collect()
    };
    let odd = odd_permutation(&as_slots(&names), &as_slots(&sorted));
    (m.atoms()[i].chirality() == Some(Chirality::Clockwise)) ^ odd
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
    for smiles in [
        "C/1=C/CCCCC1",
        "C1=C/CCCCC/1",
        "F[C@TH1](Cl)(Br)I",
        "F[C@SP1](Cl)(Br)I",
        "C(.C)C",
    ] {
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
/// ring numbers open (`C(C91)(C12)(C21)…(C19)`); any depth-first writing of it needs about
/// `rim / 2` or more ring closures open at once.
pub(crate) fn wheel(rim: usize) -> String {
    let mut s = String::from("C(C91)");
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

// ---- robustness ----

#[test]
fn hostile_inputs_do_not_overflow_or_hang() {
    let n = 100_000;
    let opens = "(".repeat(n);
    assert_eq!(error_at(&opens), 1);
    let mut nested = String::new();
    for _ in 0..n / 2 {
        nested.push_str("C(");
    }
    nested.push('C');
    assert_eq!(error_at(&nested), 2);
    for _ in 0..n / 2 {
        nested.push(')');
    }
    let m = Molecule::parse(&nested).unwrap();
    assert_eq!(m.atoms().len(), n / 2 + 1);
    let mut rng = SplitMix64::new(1);
    let r = m.random_smiles(&mut rng).unwrap();
    assert_eq!(Molecule::parse(&r).unwrap().graph_key(), m.graph_key());
    let chain = "C".repeat(n);
    let m = Molecule::parse(&chain).unwrap();
    assert!(m.random_smiles(&mut rng).is_some());
    let ring = format!("c1{}c1", "c".repeat(n));
    assert!(Molecule::parse(&ring).unwrap().atom_in_ring(n / 2));
    let closes = "C1CC1".repeat(n / 5);
    assert!(check(&closes).is_ok());
    let digits = format!("C{}", "1".repeat(n));
    assert_eq!(error_at(&digits), 3);
}

fn random_string(rng: &mut SplitMix64) -> String {
    const PIECES: &[&str] = &[
        "C", "c", "N", "n", "O", "o", "S", "s", "Cl", "Br", "F", "(", ")", "(", ")", "[", "]", "=",
        "#", "-", "/", "\\", ":", "$", ".", "%", "1", "2", "3", "1", "2", "0", "@", "@@", "H", "+",
        "-", "*", "[nH]", "[C@H]", "[O-]", "é", "→", " ", "x", "\u{0}", "%12",
    ];
    let len = 1 + rng.below(25) as usize;
    (0..len)
        .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
        .collect()
}

/// A valid molecule with one character deleted, duplicated or replaced.
fn mutated(rng: &mut SplitMix64) -> String {
    const CHARS: &[char] = &[
        'C', 'c', 'N', '(', ')', '[', ']', '=', '#', '1', '2', '%', '.', '@', 'H', '+', '/', 'é',
    ];
    let base = MOLECULES[rng.below(MOLECULES.len() as u64) as usize];
    let mut chars: Vec<char> = base.chars().collect();
    let at = rng.below(chars.len() as u64) as usize;
    match rng.below(3) {
        0 => {
            chars.remove(at);
        }
        1 => chars.insert(at, chars[at]),
        _ => chars[at] = CHARS[rng.below(CHARS.len() as u64) as usize],
    }
    chars.into_iter().collect()
}

fn assert_round_trip(smiles: &str, rng: &mut SplitMix64) -> bool {
    let Ok(m) = Molecule::parse(smiles) else {
        return false;
    };
    if let Some(r) = m.random_smiles(rng) {
        let again = Molecule::parse(&r).unwrap_or_else(|e| panic!("{smiles} → {r}: {e}"));
        assert_eq!(again.graph_key(), m.graph_key(), "{smiles} → {r}");
    }
    true
}

#[test]
fn random_strings_never_panic() {
    let mut rng = SplitMix64::new(2024);
    let mut valid = 0;
    for _ in 0..4000 {
        let s = random_string(&mut rng);
        if assert_round_trip(&s, &mut rng) {
            valid += 1;
        }
        if let Err(e) = check(&s) {
            assert!(
                e.position >= 1 && e.position <= s.chars().count().max(1),
                "{s:?}: {e}"
            );
        }
    }
    let mut valid_mutants = 0;
    for _ in 0..4000 {
        let s = mutated(&mut rng);
        if assert_round_trip(&s, &mut rng) {
            valid_mutants += 1;
        }
        if let Err(e) = check(&s) {
            assert!(
                e.position >= 1 && e.position <= s.chars().count().max(1),
                "{s:?}: {e}"
            );
        }
    }
    // Raw bytes, valid UTF-8 or not (lossy), must not panic either.
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.below(20)).map(|_| rng.next_u64() as u8).collect();
        let s = String::from_utf8_lossy(&bytes);
        let _ = check(&s);
    }
    assert!(valid > 20, "{valid}");
    assert!(valid_mutants > 500, "{valid_mutants}");
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

#[test]
fn reference_data_all_pass() {
    let Some(files) = data_smiles() else {
        eprintln!("LIPO_DATA not set: skipped");
        return;
    };
    for (file, smiles) in files {
        let failures: Vec<String> = smiles
            .iter()
            .filter_map(|s| check(s).err().map(|e| format!("{s}: {e}")))
            .collect();
        eprintln!("{file}: {} SMILES, {} fail", smiles.len(), failures.len());
        assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
        for (k, s) in smiles.iter().enumerate() {
            let mut rng = SplitMix64::new(k as u64);
            assert!(assert_round_trip(s, &mut rng));
        }
    }
}

#[test]
#[ignore = "timing, run by hand"]
fn parse_timing() {
    let s = MOLECULES.iter().max_by_key(|s| s.len()).unwrap();
    let n = 20_000;
    let t = std::time::Instant::now();
    let mut atoms = 0;
    for _ in 0..n {
        atoms += Molecule::parse(s).unwrap().atoms().len();
    }
    let per = t.elapsed() / n;
    let m = Molecule::parse(s).unwrap();
    let t = std::time::Instant::now();
    let mut rng = SplitMix64::new(0);
    for _ in 0..n / 10 {
        atoms += m.random_smiles(&mut rng).unwrap().len();
    }
    let write = t.elapsed() / (n / 10);
    let t = std::time::Instant::now();
    for _ in 0..n / 10 {
        atoms += m.graph_key() as usize & 1;
    }
    let key = t.elapsed() / (n / 10);
    eprintln!(
        "{} chars: parse {per:?}, random_smiles {write:?}, graph_key {key:?} ({atoms})",
        s.len()
    );
}
