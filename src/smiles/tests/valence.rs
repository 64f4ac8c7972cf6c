//! Tests of the chemistry checks (`valence.rs`, `kekule.rs`): allowed valences, Kekulé
//! structures, implicit hydrogens. Expected verdicts and hydrogen counts are RDKit
//! 2026.09.1's (`Chem.MolFromSmiles` with sanitization, `GetTotalNumHs`).

use crate::rng::SplitMix64;
use crate::smiles::kekule::cover;
use crate::smiles::*;

/// The error of a SMILES that must be rejected, checked to name its position.
fn rejected(smiles: &str) -> SmilesError {
    match Molecule::parse(smiles) {
        Ok(_) => panic!("{smiles:?} should be rejected"),
        Err(e) => {
            assert!(
                e.reason.contains(&format!("position {}", e.position)),
                "{smiles:?}: {e} does not name position {}",
                e.position
            );
            e
        }
    }
}

fn accepted(smiles: &str) -> Molecule {
    Molecule::parse(smiles).unwrap_or_else(|e| panic!("{smiles:?}: {e}"))
}

#[test]
fn valence_violations_name_the_atom() {
    let cases: &[(&str, &str)] = &[
        (
            "CN(C)(C)C",
            "atom 'N' at position 2 has 4 bonds; nitrogen allows 3",
        ),
        (
            "FC(F)(F)(F)F",
            "atom 'C' at position 2 has 5 bonds; carbon allows 4",
        ),
        (
            "ClClCl",
            "atom 'Cl' at position 3 has 2 bonds; chlorine allows 1",
        ),
        (
            "CCCC(C)(C)(C)(C)C",
            "atom 'C' at position 4 has 6 bonds; carbon allows 4",
        ),
        (
            "C=N(C)(C)C",
            "atom 'N' at position 3 has 5 bonds; nitrogen allows 3",
        ),
        (
            "CC(=O)=O",
            "atom 'C' at position 2 has 5 bonds; carbon allows 4",
        ),
        (
            "O=O=O",
            "atom 'O' at position 3 has 4 bonds; oxygen allows 2",
        ),
        (
            "C#CF=C",
            "atom 'F' at position 4 has 3 bonds; fluorine allows 1",
        ),
        (
            "CP(C)(C)(C)(C)C",
            "atom 'P' at position 2 has 6 bonds; phosphorus allows at most 5",
        ),
        (
            "CS(C)(C)(C)(C)(C)C",
            "atom 'S' at position 2 has 7 bonds; sulfur allows at most 6",
        ),
        (
            "[NH5+]",
            "atom '[NH5+]' at position 1 has 5 bonds; nitrogen with charge +1 allows 4",
        ),
        (
            "C[O-]C",
            "atom '[O-]' at position 2 has 2 bonds; oxygen with charge -1 allows 1",
        ),
        (
            "[S-](C)(C)(C)(C)(C)C",
            "atom '[S-]' at position 1 has 6 bonds; sulfur with charge -1 allows at most 5",
        ),
        (
            "[H]1CC1",
            "atom '[H]' at position 1 has 2 bonds; hydrogen allows 1",
        ),
        (
            "C[Cs]C",
            "atom '[Cs]' at position 2 has 2 bonds; caesium allows 1",
        ),
        // After kekulization: an `o` without aromatic bonds is plain oxygen.
        (
            "Co1CCCC1",
            "atom 'o' at position 2 has 3 bonds; oxygen allows 2",
        ),
    ];
    for &(smiles, reason) in cases {
        assert_eq!(rejected(smiles).reason, reason, "{smiles}");
    }
}

#[test]
fn charges_follow_the_isoelectronic_element() {
    // N+ like C, O+ like N, N- like O, O- like F, C- like N, C+ like B, B- like C.
    let ok = [
        "C[N+](C)(C)C",
        "[NH4+]",
        "[OH3+]",
        "C[O+](C)C",
        "[NH2-]",
        "C[N-]C",
        "[O-]C",
        "[CH3-]",
        "[CH3+]",
        "[BH4-]",
        "[S-](C)(C)(C)(C)C",
        "CS(=O)(=O)C",
        "CS(C)(C)(C)(C)C",
        "CP(C)(C)(C)C",
        "CI(C)C",
        "CI(C)(C)(C)C",
        "ClCl",
        "[H][H]",
        "[H]C([H])([H])[H]",
        "[H-]",
        "[H+]",
        "[Na+].[Cl-]",
        "[Cs]C",
        "[N-3]",
        "[O--]",
        // Clean-up as RDKit does it: nitro, nitrate, azide, perchlorate.
        "CN(=O)=O",
        "[O-]N(=O)=O",
        "CN=N#N",
        "OCl(=O)(=O)=O",
        "O=n1ccccc1",
        // No valence list: metals and `*` are never rejected.
        "[Fe](C)(C)(C)(C)(C)(C)(C)C",
        "[U](F)(F)(F)(F)(F)(F)(F)F",
        "*(C)(C)(C)(C)(C)C",
    ];
    for s in ok {
        accepted(s);
    }
    let bad = [
        "[CH4+]",
        "[CH4-]",
        "[BH5-]",
        "[OH4+]",
        "[NH3-]",
        "[OH2-]",
        "OCl(O)O",
        "C[N+](C)(C)(C)C",
    ];
    for s in bad {
        rejected(s);
    }
}

#[test]
fn kekule_structures() {
    let ok = [
        "c1ccccc1",
        "c1ccc1",
        "[nH]1cccc1",
        "c1ccc2ccccc2c1",
        "c1ccc2cccc2cc1",
        "o1cccc1",
        "O=c1cccc[nH]1",
        "Cc1ccccc1",
        "c1ccccc1c1ccccc1",
        "c1ccc2c(c1)cc[nH]2",
        "Cn1cccc1",
        "c1ccn2cncc2c1",
        "[O-][n+]1ccccc1",
        "c1cc[se]c1",
        "[te]1cccc1",
        "[cH-]1cccc1",
        "c1ccbcc1",
        "p1ccccc1",
        "[asH]1cccc1",
        "C1:C:C:C:C:C1",
        "c1cc*cc1",
        "*1ccccc1",
        "c1ccc#cc1",
        "c1ccccc/1",
        "O=c1ccs(=O)cc1",
        "c1ccc2c(c1)c1ccccc12",
    ];
    for s in ok {
        accepted(s);
    }
    let bad: &[(&str, usize)] = &[
        ("c1cccc1", 1),
        ("n1cccc1", 1),
        ("c1ccccc1=C", 1),
        ("c1ccs(=O)cc1", 1),
        ("[as]1cccc1", 1),
        ("c1ccpc1", 1),
        ("c1cc[c-]c1", 1),
        ("B1ccccc1", 1),
        ("c1ccCcc1", 1),
        ("CCc1cccc1", 3),
        ("c1ccccc1.c1cccc1", 10),
    ];
    for &(s, ring) in bad {
        let e = rejected(s);
        assert!(
            e.reason.starts_with(&format!(
                "aromatic ring at position {ring} has no Kekulé structure (atom '"
            )),
            "{s}: {e}"
        );
        assert!(e.reason.ends_with("is left without a double bond)"), "{e}");
    }
    let e = rejected("CCc1cccc1");
    assert_eq!(
        e.reason,
        format!(
            "aromatic ring at position 3 has no Kekulé structure (atom 'c' at position {} is \
             left without a double bond)",
            e.position
        )
    );
    assert!((3..=7).contains(&e.position));
}

#[test]
fn implicit_hydrogens_as_rdkit_counts_them() {
    let cases: &[(&str, &[u8])] = &[
        ("CCO", &[3, 2, 1]),
        ("c1ccccc1O", &[1, 1, 1, 1, 1, 0, 1]),
        ("Cc1ccccc1", &[3, 0, 1, 1, 1, 1, 1]),
        ("c1ccc2ccccc2c1", &[1, 1, 1, 0, 1, 1, 1, 1, 0, 1]),
        ("c1ccc2cccc2cc1", &[1, 1, 1, 0, 1, 1, 1, 0, 1, 1]),
        ("O=c1cccc[nH]1", &[0, 0, 1, 1, 1, 1, 1]),
        ("CS(=O)(=O)C", &[3, 0, 0, 0, 3]),
        ("CI(C)C", &[3, 0, 3, 3]),
        ("CS(C)C", &[3, 1, 3, 3]),
        ("CN(=O)=O", &[3, 0, 0, 0]),
        ("CP(C)C", &[3, 0, 3, 3]),
        ("B(C)C", &[1, 3, 3]),
        ("C[N+](C)(C)C", &[3, 0, 3, 3, 3]),
        ("o1cccc1", &[0, 1, 1, 1, 1]),
        ("c1cc[se]c1", &[1, 1, 1, 0, 1]),
        ("Cs1CCCC1", &[3, 1, 2, 2, 2, 2]),
        ("c1ccc#cc1", &[1, 1, 1, 0, 0, 1]),
        ("C=C=C", &[2, 0, 2]),
        ("C#N", &[1, 0]),
        ("[CH2]C", &[2, 3]),
        ("c1ccccc1c1ccccc1", &[1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1]),
        ("Cn1cccc1", &[3, 0, 1, 1, 1, 1]),
        ("c1cc(=C)cc[nH]1", &[1, 1, 0, 2, 1, 1, 1]),
        ("C:C", &[2, 2]),
        ("N#N=N", &[0, 0, 1]),
        ("Clc1ccc(Br)cc1I", &[0, 0, 1, 1, 0, 0, 1, 0, 0]),
        ("[O-]c1ccccc1", &[0, 0, 1, 1, 1, 1, 1]),
        ("c1ccbcc1", &[1, 1, 1, 0, 1, 1]),
        ("p1ccccc1", &[0, 1, 1, 1, 1, 1]),
    ];
    for &(smiles, expected) in cases {
        let m = accepted(smiles);
        let got: Vec<u8> = (0..m.atoms().len()).map(|a| m.hydrogen_count(a)).collect();
        assert_eq!(got, expected, "{smiles}");
        for (a, atom) in m.atoms().iter().enumerate() {
            let implicit = m.implicit_hydrogens(a);
            match atom.hydrogens() {
                Some(h) => assert_eq!((implicit, m.hydrogen_count(a)), (0, h), "{smiles}"),
                None => assert_eq!(implicit, m.hydrogen_count(a), "{smiles}"),
            }
        }
    }
}

#[test]
fn random_writings_keep_verdicts_and_hydrogens() {
    let mut extra = vec![
        "O=c1cccc[nH]1",
        "c1ccc2cccc2cc1",
        "[O-][N+](=O)c1ccc2c(c1)c1ccccc1n2C",
        "CN(=O)=O",
        "c1ccc#cc1",
        "c1cc*cc1",
        "Cs1CCCC1",
    ];
    extra.extend(tests::MOLECULES);
    let mut rng = SplitMix64::new(7);
    for smiles in extra {
        let m = accepted(smiles);
        let mut counts: Vec<(&str, bool, u8)> = (0..m.atoms().len())
            .map(|a| {
                (
                    m.atoms()[a].symbol(),
                    m.atoms()[a].aromatic(),
                    m.hydrogen_count(a),
                )
            })
            .collect();
        counts.sort_unstable();
        for _ in 0..20 {
            let Some(r) = m.random_smiles(&mut rng) else {
                continue;
            };
            let again = accepted(&r);
            let mut c: Vec<(&str, bool, u8)> = (0..again.atoms().len())
                .map(|a| {
                    let atom = &again.atoms()[a];
                    (atom.symbol(), atom.aromatic(), again.hydrogen_count(a))
                })
                .collect();
            c.sort_unstable();
            assert_eq!(c, counts, "{smiles} → {r}");
        }
    }
}

/// Whether a matching of `edges` covers every non-optional vertex, by exhaustive search.
fn coverable(n: usize, edges: &[(usize, usize)], optional: &[bool], used: &mut [bool]) -> bool {
    let Some(v) = (0..n).find(|&v| !used[v] && !optional[v]) else {
        return true;
    };
    used[v] = true;
    for &(a, b) in edges {
        let w = if a == v {
            b
        } else if b == v {
            a
        } else {
            continue;
        };
        if !used[w] {
            used[w] = true;
            if coverable(n, edges, optional, used) {
                used[v] = false;
                used[w] = false;
                return true;
            }
            used[w] = false;
        }
    }
    used[v] = false;
    false
}

#[test]
fn matching_agrees_with_exhaustive_search() {
    let mut rng = SplitMix64::new(11);
    let (mut yes, mut no) = (0, 0);
    for _ in 0..6000 {
        let n = 1 + rng.below(12) as usize;
        let density = 1 + rng.below(4);
        let mut edges = Vec::new();
        for u in 0..n {
            for v in u + 1..n {
                if rng.below(10) < density + u64::from(v == u + 1) * 4 {
                    edges.push((u, v));
                }
            }
        }
        let optional: Vec<bool> = (0..n).map(|_| rng.below(8) == 0).collect();
        let expected = coverable(n, &edges, &optional, &mut vec![false; n]);
        match cover(n, &edges, &optional) {
            Ok(chosen) => {
                assert!(expected, "{n} {edges:?} {optional:?}");
                let mut covered = vec![false; n];
                for e in chosen {
                    let (u, v) = edges[e];
                    assert!(!covered[u] && !covered[v], "{edges:?}: not a matching");
                    covered[u] = true;
                    covered[v] = true;
                }
                assert!((0..n).all(|v| covered[v] || optional[v]), "{edges:?}");
                yes += 1;
            }
            Err(v) => {
                assert!(!expected, "{n} {edges:?} {optional:?}: fails at {v}");
                assert!(v < n && !optional[v]);
                no += 1;
            }
        }
    }
    assert!(yes > 1000 && no > 1000, "{yes} {no}");
}

/// A SMILES of a graph of aromatic carbons: atoms in `order`, consecutive ones bonded in
/// the chain when they are bonded, others joined by `.`, every other bond a ring closure.
fn aromatic_graph(order: &[usize], edges: &[(usize, usize)]) -> String {
    let n = order.len();
    let mut at = vec![0; n];
    for (i, &v) in order.iter().enumerate() {
        at[v] = i;
    }
    let mut later: Vec<Vec<usize>> = vec![vec![]; n];
    for &(u, v) in edges {
        let (u, v) = if at[u] < at[v] { (u, v) } else { (v, u) };
        later[u].push(v);
    }
    let mut open: std::collections::HashMap<(usize, usize), usize> = Default::default();
    let mut free: Vec<usize> = (1..100).rev().collect();
    let mut s = String::new();
    let label = |k: usize| {
        if k < 10 {
            k.to_string()
        } else {
            format!("%{k}")
        }
    };
    for (i, &v) in order.iter().enumerate() {
        if i > 0 && !later[order[i - 1]].contains(&v) {
            s.push('.');
        }
        s.push('c');
        let mut closing: Vec<usize> = open
            .keys()
            .filter(|&&(_, w)| w == v)
            .map(|&(u, _)| u)
            .collect();
        closing.sort_unstable();
        for u in closing {
            let k = open.remove(&(u, v)).unwrap();
            s.push_str(&label(k));
            free.push(k);
            free.sort_unstable_by(|a, b| b.cmp(a));
        }
        for &w in &later[v] {
            if i + 1 < n && order[i + 1] == w {
                continue;
            }
            let k = free.pop().expect("at most 99 ring bonds open");
            open.insert((v, w), k);
            s.push_str(&label(k));
        }
    }
    s
}

/// A hexagonal ("brick wall") sheet of `rows` × `cols` carbons, written column by column.
fn sheet(rows: usize, cols: usize) -> (Vec<usize>, Vec<(usize, usize)>) {
    let id = |r: usize, c: usize| r * cols + c;
    let mut edges = vec![];
    for r in 0..rows {
        for c in 0..cols {
            if c + 1 < cols {
                edges.push((id(r, c), id(r, c + 1)));
            }
            if r + 1 < rows && (r + c) % 2 == 0 {
                edges.push((id(r, c), id(r + 1, c)));
            }
        }
    }
    let mut order = vec![];
    for c in 0..cols {
        for k in 0..rows {
            order.push(id(if c % 2 == 0 { k } else { rows - 1 - k }, c));
        }
    }
    (order, edges)
}

#[test]
fn large_aromatic_systems() {
    for (rows, cols) in [(2, 8001), (10, 1201)] {
        let (order, mut edges) = sheet(rows, cols);
        let s = aromatic_graph(&order, &edges);
        let t = std::time::Instant::now();
        let m = accepted(&s);
        let ok = t.elapsed();
        assert_eq!(m.atoms().len(), rows * cols);
        // One more atom in a far ring: an odd count, so no Kekulé structure.
        let n = rows * cols;
        let (u, v) = (n - 2, n - 1);
        edges.retain(|&e| e != (u, v));
        edges.extend([(u, n), (n, v)]);
        let mut order = order;
        let at = order.iter().position(|&x| x == v).unwrap();
        order.insert(at, n);
        let odd = aromatic_graph(&order, &edges);
        let t = std::time::Instant::now();
        let e = rejected(&odd);
        eprintln!(
            "{rows}x{cols} sheet, {} chars: accepted in {ok:?}; {} chars: rejected in {:?}",
            s.len(),
            odd.len(),
            t.elapsed()
        );
        assert!(e.reason.contains("has no Kekulé structure"), "{e}");
    }
    // A ring of 100,001 aromatic carbons (odd), and 100,000 closed by a single bond.
    let odd = format!("c1{}c1", "c".repeat(99_999));
    assert!(rejected(&odd).reason.contains("no Kekulé structure"));
    let even = format!("c1{}c-1", "c".repeat(99_998));
    assert_eq!(accepted(&even).hydrogen_count(0), 1);
}
