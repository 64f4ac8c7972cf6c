//! Robustness: hostile inputs (deep nesting, long chains, many digits), random and mutated
//! strings, and every SMILES of the reference data when `LIPO_DATA` names its folder.

use super::super::*;
use super::{assert_round_trip, data_smiles, error_at, MOLECULES};
use crate::rng::SplitMix64;

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

pub(super) fn random_string(rng: &mut SplitMix64) -> String {
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
pub(super) fn mutated(rng: &mut SplitMix64) -> String {
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
