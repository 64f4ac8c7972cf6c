//! The canonical writer: one string for every writing of a molecule, idempotent, the same
//! graph and stereo, symmetric molecules, notation that converges, and pinned outputs.

use std::collections::HashSet;

use super::super::write::Slot;
use super::super::*;
use super::robustness::{mutated, random_string};
use super::writer::{chirality_sign, wheel};
use super::MOLECULES;
use crate::rng::SplitMix64;

/// Drug-like molecules: rings, fused aromatics, charges, `[nH]`, stereo (also on symmetric
/// and meso centres), `/` and `\`, salts, isotopes.
const DRUGS: &[&str] = &[
    "CC(=O)Oc1ccccc1C(=O)O",
    "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "CC(=O)Nc1ccc(O)cc1",
    "c1ccc2c(c1)ccc1ccccc12",
    "c1ccc2cc3ccccc3cc2c1",
    "O=C(O)[C@@H]1CCCN1",
    "N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O",
    "C[C@H]1CC[C@@H](C)CC1",
    "C[C@H]1CC[C@H](C)CC1",
    "C[C@@H]1C[C@H]1C",
    "O[C@H]([C@@H](O)C(=O)O)C(=O)O",
    "O[C@@H]([C@@H](O)C(=O)O)C(=O)O",
    "C/C=C/C=C/C(=O)O",
    "C/C=C\\C",
    "CC/C=C(/C)C(=O)O",
    "C/C=C/C(C)/C=C\\C",
    "[Na+].[O-]C(=O)c1ccccc1",
    "Cl.CN(C)CCCN1c2ccccc2CCc2ccccc21",
    "[NH3+]CC(=O)[O-]",
    "[2H]c1c([2H])c([2H])c([2H])c([2H])c1[2H]",
    "[13CH3]C(=O)O",
    "C[N+](C)(C)C.[Br-]",
    "O=[N+]([O-])c1ccc(cc1)S(=O)(=O)N",
    "c1ccc(cc1)-c1ccccc1",
    "COc1ccc2[nH]cc(CCN(C)C)c2c1",
    "OC[C@H]1O[C@@H](O)[C@H](O)[C@@H](O)[C@@H]1O",
    "C[C@]12CC[C@H]3[C@@H](CCc4cc(O)ccc34)[C@@H]1CC[C@@H]2O",
    "CC1=C(C(=O)OC)[C@@H](c2ccccc2[N+](=O)[O-])C(C(=O)OC)=C(C)N1",
    "C[C@H](N)C(=O)N[C@@H](C)C(=O)O",
    "CC(C)[C@@H]1CC[C@@H](C)C[C@H]1O",
    "C[n+]1ccccc1.[I-]",
    "OC(=O)C[C@](O)(CC(=O)O)C(=O)O",
    "C[C@@H](C)O",
    "C1CC[C@H]2CCCC[C@@H]2C1",
    "C1CC[C@H]2CCCC[C@H]2C1",
    "Cc1cc(-c2ccc(F)cc2)n[nH]1",
    "F/C=C/c1ccccc1.F/C=C\\c1ccccc1",
    "C1CC/C=C\\CCC1",
    "O[C@H]1CC[C@@](C)(C)CC1",
    "OC1CCC/C=C/CCC1",
];

/// Random molecules from a small grammar: chains of atoms and ring fragments with branches,
/// stereo marks (often on centres with equal substituents) and `/`, `\` double bonds.
pub(super) fn generated(rng: &mut SplitMix64, depth: usize) -> String {
    const PIECES: &[&str] = &[
        "C",
        "C",
        "C",
        "N",
        "O",
        "Cl",
        "c1ccccc1",
        "C1CC1",
        "[C@H]",
        "[C@@H]",
        "[C@]",
        "C(=O)",
        "[NH3+]",
        "[O-]",
        "C1CCNCC1",
        "/C=C/",
        "\\C=C/",
        "c1cc[nH]c1",
        "[13CH2]",
    ];
    let mut s = String::new();
    for _ in 0..1 + rng.below(5) {
        s.push_str(PIECES[rng.below(PIECES.len() as u64) as usize]);
        if depth < 3 {
            for _ in 0..rng.below(3) {
                s.push('(');
                s.push_str(&generated(rng, depth + 1));
                s.push(')');
            }
        }
    }
    s
}

/// Valid molecules the writer can rewrite: [`DRUGS`], [`MOLECULES`], generated ones and
/// valid mutants and random strings of the robustness tests.
fn test_molecules() -> Vec<String> {
    let mut out: Vec<String> = DRUGS
        .iter()
        .chain(MOLECULES)
        .map(|s| s.to_string())
        .collect();
    let mut rng = SplitMix64::new(4242);
    let mut made = 0;
    while made < 600 {
        let s = match made % 3 {
            0 => generated(&mut rng, 0),
            1 => mutated(&mut rng),
            _ => random_string(&mut rng),
        };
        if Molecule::parse(&s).is_ok_and(|m| m.randomizable()) {
            out.push(s);
            made += 1;
        }
    }
    out
}

fn canon(smiles: &str) -> String {
    canonical(smiles).unwrap_or_else(|e| panic!("{smiles}: {e}"))
}

#[test]
fn every_writing_gives_one_string() {
    let mut checked = 0;
    for smiles in test_molecules() {
        let m = Molecule::parse(&smiles).unwrap();
        let Some(want) = m.canonical_smiles() else {
            continue;
        };
        assert_eq!(canon(&smiles), want);
        for seed in 0..20 {
            let Some(r) = m.random_smiles(&mut SplitMix64::new(seed)) else {
                continue;
            };
            assert_eq!(canon(&r), want, "{smiles} → {r} (seed {seed})");
            checked += 1;
        }
    }
    assert!(checked > 5000, "{checked}");
}

#[test]
fn canonical_of_canonical_is_itself() {
    for smiles in test_molecules() {
        let once = canon(&smiles);
        assert_eq!(canon(&once), once, "{smiles}");
    }
}

/// Whether substituent `a` of `x` and `c` of `y` lie on opposite sides of the double bond
/// `x=y` by the `/`, `\` marks (own marks, or the opposite of a sibling's); `None` unmarked.
fn trans(m: &Molecule, x: usize, y: usize, a: usize, c: usize) -> Option<bool> {
    let side = |atom: usize, other: usize, sub: usize| -> Option<bool> {
        let mark = |n: usize| -> Option<bool> {
            let b = m
                .atom_bonds(atom)
                .iter()
                .map(|&k| &m.bonds()[k])
                .find(|b| b.other(atom) == n)?;
            let s = b.symbol().filter(|&s| s == '/' || s == '\\')?;
            Some((s == '/') == (b.from() == atom))
        };
        mark(sub).or_else(|| {
            m.atom_bonds(atom)
                .iter()
                .map(|&k| m.bonds()[k].other(atom))
                .filter(|&n| n != other && n != sub)
                .find_map(mark)
                .map(|s| !s)
        })
    };
    Some(side(x, y, a)? != side(y, x, c)?)
}

/// Checks that `c` (written with `order`: its atom `k` is atom `order[k]` of `m`) keeps the
/// handedness of every tetrahedral centre and the cis/trans of every marked double bond.
fn assert_same_stereo(m: &Molecule, c: &Molecule, order: &[usize]) {
    let mut back = vec![0; order.len()];
    for (k, &a) in order.iter().enumerate() {
        back[a] = k;
    }
    for k in 0..c.atoms().len() {
        let a = order[k];
        if m.atoms()[a].chirality().is_none() || m.idle_centre(a) {
            continue;
        }
        let before = chirality_sign(m, a, |s| match s {
            Slot::H => None,
            Slot::Bond(b) => Some(m.bonds()[b].other(a)),
        });
        let after = chirality_sign(c, k, |s| match s {
            Slot::H => None,
            Slot::Bond(b) => Some(order[c.bonds()[b].other(k)]),
        });
        assert_eq!(before, after, "{} → {}: atom {a}", m.smiles(), c.smiles());
    }
    for b in m.bonds().iter().filter(|b| b.symbol() == Some('=')) {
        let (x, y) = (b.from(), b.to());
        for &p in m.atom_bonds(x) {
            for &q in m.atom_bonds(y) {
                let (a, d) = (m.bonds()[p].other(x), m.bonds()[q].other(y));
                if a == y || d == x {
                    continue;
                }
                let before = trans(m, x, y, a, d);
                let after = trans(c, back[x], back[y], back[a], back[d]);
                assert_eq!(before, after, "{} → {}", m.smiles(), c.smiles());
            }
        }
    }
}

#[test]
fn canonical_is_the_same_molecule() {
    for smiles in test_molecules() {
        let m = Molecule::parse(&smiles).unwrap();
        let (s, order) = m.canonical_writing().expect("writes");
        let c = Molecule::parse(&s).unwrap_or_else(|e| panic!("{smiles} → {s}: {e}"));
        assert_eq!(c.graph_key(), m.graph_key(), "{smiles} → {s}");
        assert_eq!(c.atoms().len(), m.atoms().len());
        assert_eq!(c.bonds().len(), m.bonds().len());
        let mut seen = order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..m.atoms().len()).collect::<Vec<_>>(), "{smiles}");
        for (k, &a) in order.iter().enumerate() {
            assert_eq!(
                c.atoms()[k].symbol(),
                m.atoms()[a].symbol(),
                "{smiles} → {s}"
            );
            assert_eq!(c.hydrogen_count(k), m.hydrogen_count(a), "{smiles} → {s}");
        }
        assert_same_stereo(&m, &c, &order);
    }
}

#[test]
fn ranks_do_not_depend_on_atom_order() {
    // The atoms listed by rank look the same from every writing.
    let by_rank = |m: &Molecule| -> Vec<(String, usize, u8)> {
        let ranks = m.canonical_ranks();
        let mut atoms: Vec<usize> = (0..m.atoms().len()).collect();
        atoms.sort_by_key(|&a| ranks[a]);
        atoms
            .iter()
            .map(|&a| {
                let text = m.atom_text(a).replace('@', "");
                (text, m.atom_bonds(a).len(), m.hydrogen_count(a))
            })
            .collect()
    };
    for smiles in DRUGS.iter().chain(MOLECULES) {
        let m = Molecule::parse(smiles).unwrap();
        let ranks = m.canonical_ranks();
        let mut sorted = ranks.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..ranks.len()).collect::<Vec<_>>(), "{smiles}");
        let want = by_rank(&m);
        for seed in 0..10 {
            let r = m.random_smiles(&mut SplitMix64::new(seed)).unwrap();
            assert_eq!(
                by_rank(&Molecule::parse(&r).unwrap()),
                want,
                "{smiles} → {r}"
            );
        }
    }
}

#[test]
fn symmetric_molecules_have_one_string() {
    let groups: &[&[&str]] = &[
        &["c1ccccc1", "c1ccc(cc1)", "c%11ccccc%11"],
        &["C1CCCCC1", "C1CCC(CC1)", "C1CC(CCC1)"],
        &["CC(C)(C)C", "C(C)(C)(C)C"],
        &["C1C2CC3CC1CC(C2)C3", "C1C3CC2CC(CC1C2)C3"],
        &["C12C3C4C1C5C2C3C45", "C1(C2C3C14)C5C2C3C45"],
    ];
    for writings in groups {
        let mut seen = HashSet::new();
        for smiles in *writings {
            let m = Molecule::parse(smiles).unwrap_or_else(|e| panic!("{smiles}: {e}"));
            assert_eq!(m.graph_key(), graph_key(writings[0]).unwrap(), "{smiles}");
            seen.insert(canon(smiles));
            for seed in 0..50 {
                let r = m.random_smiles(&mut SplitMix64::new(seed)).unwrap();
                seen.insert(canon(&r));
            }
        }
        assert_eq!(seen.len(), 1, "{writings:?}: {seen:?}");
    }
}

#[test]
fn notation_only_differences_converge() {
    let same = [
        ("C-C-O", "OCC"),
        ("c1:c:c:c:c:c1", "c1ccccc1"),
        ("c1ccccc1-C", "Cc1ccccc1"),
        ("C1CCCCC-1", "C1CCCCC1"),
        ("[Na+].[Cl-]", "[Cl-].[Na+]"),
        ("N[C@@H](C)C(=O)O", "C[C@H](N)C(O)=O"),
        ("F/C=C/F", "F\\C=C\\F"),
        ("C(/F)=C/F", "F\\C=C/F"),
    ];
    for (a, b) in same {
        assert_eq!(canon(a), canon(b), "{a} vs {b}");
    }
    // A mark that means nothing (two alike end atoms) is written one way.
    assert_eq!(canon("C[C@@H](C)O"), canon("C[C@H](C)O"));
    assert_eq!(canon("F[C@@](F)(F)C"), canon("F[C@](F)(F)C"));
    let different = [
        ("N[C@@H](C)C(=O)O", "N[C@H](C)C(=O)O"),
        ("F/C=C/F", "F/C=C\\F"),
        ("C[C@H]1CC[C@@H](C)CC1", "C[C@H]1CC[C@H](C)CC1"),
        ("c1ccccc1", "C1=CC=CC=C1"),
    ];
    for (a, b) in different {
        assert_ne!(canon(a), canon(b), "{a} vs {b}");
    }
    // `-` between two aromatic atoms means single: it stays.
    assert!(canon("c1ccc(cc1)-c1ccccc1").contains('-'));
}

#[test]
fn declined_molecules_come_back_unchanged() {
    for smiles in ["F[C@TH1](Cl)(Br)I", "C(.C)C"] {
        assert_eq!(canon(smiles), smiles);
        assert_eq!(Molecule::parse(smiles).unwrap().canonical_smiles(), None);
    }
    assert_eq!(
        Molecule::parse(&wheel(250)).unwrap().canonical_smiles(),
        None
    );
    assert!(canonical("C1CC").is_err());
    assert!(canonical("").is_err());
}

#[test]
fn pinned_canonical_writings() {
    let pinned = [
        ("OCC", "CCO"),
        ("c1ccccc1O", "Oc1ccccc1"),
        ("OC(=O)C(N)C", "CC(N)C(=O)O"),
        ("N[C@@H](C)C(=O)O", "C[C@H](N)C(=O)O"),
        ("[Na+].OC(=O)C", "CC(=O)O.[Na+]"),
        ("c1ccc(cc1)-c1ccccc1", "c1ccccc1-c1ccccc1"),
        ("F\\C=C\\F", "F/C=C/F"),
        ("C1CCCCC1C", "CC1CCCCC1"),
        ("c1ccc2[nH]ccc2c1", "c1c[nH]c2ccccc12"),
        ("C12C3C4C1C5C2C3C45", "C12C3C4C1C1C2C3C41"),
        ("C/C=C/C(C)/C=C\\C", "C/C=C/C(/C=C\\C)C"),
        ("O[C@@H](C)C", "C[C@H](C)O"),
    ];
    for (input, want) in pinned {
        assert_eq!(canon(input), want, "{input}");
    }
}

#[test]
fn reference_data_has_one_string_per_molecule() {
    let Some(files) = super::data_smiles() else {
        eprintln!("LIPO_DATA not set: skipped");
        return;
    };
    for (file, smiles) in files {
        let mut failures = vec![];
        let mut declined = 0;
        for s in &smiles {
            let m = Molecule::parse(s).unwrap();
            let Some((want, order)) = m.canonical_writing() else {
                declined += 1;
                continue;
            };
            let c = Molecule::parse(&want).unwrap_or_else(|e| panic!("{s} → {want}: {e}"));
            assert_eq!(c.graph_key(), m.graph_key(), "{s} → {want}");
            assert_same_stereo(&m, &c, &order);
            assert_eq!(canon(&want), want, "{s}");
            for seed in 0..10 {
                let r = m.random_smiles(&mut SplitMix64::new(seed)).unwrap();
                let got = canon(&r);
                if got != want && Molecule::parse(&r).unwrap().randomizable() {
                    failures.push(format!("{s} → {r}: {got} vs {want}"));
                }
            }
        }
        eprintln!(
            "{file}: {} SMILES, {declined} declined, {} failures",
            smiles.len(),
            failures.len()
        );
        assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    }
}

#[test]
fn hostile_inputs_stay_fast() {
    let n = 100_000;
    let mut nested = "C(".repeat(n / 2);
    nested.push('C');
    nested.push_str(&")".repeat(n / 2));
    let waters = format!("C[C@H](C)O{}", ".O".repeat(n / 4));
    for smiles in [
        "C".repeat(n),
        nested,
        format!("c1{}c1", "c".repeat(n - 2)),
        format!("C{}C", "/C=C/C".repeat(n / 10)),
        waters,
        vec!["N[C@@H](C)C(=O)O"; n / 20].join("."),
        vec!["C[C@H](C)O"; n / 20].join("."),
    ] {
        let m = Molecule::parse(&smiles).unwrap();
        let ranks = m.canonical_ranks();
        let mut seen = vec![false; ranks.len()];
        for &r in &ranks {
            seen[r] = true;
        }
        assert!(seen.iter().all(|&s| s), "ranks are a permutation");
        let c = m.canonical_smiles().expect("writes");
        assert!(canon(&c) == c, "not idempotent ({} characters)", c.len());
    }
}

/// Writings with `/` or `\` on a ring closure (an exocyclic double bond of a tricyclic drug,
/// a macrocycle's ring double bonds, as `lipo enumerate` wrote them; RDKit reads each group
/// as one molecule) give the canonical string of the molecule as first written.
#[test]
fn marks_on_ring_closures_canonicalise() {
    for (given, writings) in [
        (
            r"CN(C)S(=O)(=O)c1ccc2Sc3ccccc3\C(=C\CCN4CCN(C)CC4)\c2c1",
            vec![
                r"c1cccc2Sc3c(/C(/c12)=C\CCN1CCN(CC1)C)cc(S(N(C)C)(=O)=O)cc3",
                r"C(C/C=C/1\c2cc(ccc2Sc2ccccc21)S(=O)(N(C)C)=O)N1CCN(CC1)C",
                r"c1cccc2c1\C(\c1cc(ccc1S2)S(N(C)C)(=O)=O)=C\CCN1CCN(CC1)C",
                r"c1cccc2c1\C(=C\CCN1CCN(C)CC1)\c1cc(S(N(C)C)(=O)=O)ccc1S2",
                r"C1N(CCN(C)C1)CC/C=C\1/c2c(Sc3ccc(cc13)S(N(C)C)(=O)=O)cccc2",
                r"N1(CCN(C)CC1)CC/C=C\1/c2c(Sc3ccc(S(=O)(=O)N(C)C)cc13)cccc2",
            ],
        ),
        (
            r"COC1\C=C\OC2(C)Oc3c(C)c(O)c4C(=O)C(=CC(=O)c4c3C2=O)NC(=O)\C(=C/C=C/C(C)C(O)C(C)C(O)C(C)C(OC(=O)C)C1C)\C",
            vec![
                r"C/C=1/C(NC2=CC(=O)c3c4C(=O)C(Oc4c(C)c(c3C2=O)O)(C)O/C=C/C(C(C)C(C(C(O)C(C)C(O)C(C)\C=C\C1)C)OC(=O)C)OC)=O",
                r"O=C1c2c3c(O)c(C)c4OC(O/C=C/C(C(C)C(OC(C)=O)C(C)C(C(C(C(C)\C=C\C=C(/C(=O)NC(C3=O)=C1)\C)O)C)O)OC)(C)C(c42)=O",
                r"C=1(/C(=O)NC=2C(c3c(O)c(c4c(C(=O)C(O/C=C/C(C(C(OC(=O)C)C(C(O)C(C)C(O)C(C)\C=C\C1)C)C)OC)(O4)C)c3C(=O)C2)C)=O)\C",
                r"C\1(C)C(O)C(C)C(O)C(C)C(OC(C)=O)C(C(OC)\C=C\OC2(C(=O)c3c4c(c(c(C)c3O2)O)C(=O)C(=CC4=O)NC(=O)\C(\C)=C/C=C1)C)C",
            ],
        ),
    ] {
        let want = canon(given);
        for w in writings {
            assert_eq!(canon(w), want, "{w}");
        }
    }
    // A mark at the closing label reads from the closing atom (as RDKit reads it).
    assert_eq!(canon("F/C=C1.C/1"), canon(r"C/C=C\F"));
    assert_eq!(canon(r"F/C=C1.C\1"), canon("C/C=C/F"));
    assert_eq!(canon(r"F/C=C/1.C\1"), canon("C/C=C/F"));
    // Marks at both labels: the closing one counts.
    assert_eq!(canon("F/C=C/1.C/1"), canon(r"C/C=C\F"));
}
