use super::*;

fn graph(smiles: &str) -> MolGraph {
    featurize_smiles(smiles).unwrap_or_else(|e| panic!("{smiles}: {e}"))
}

fn atom_row(g: &MolGraph, a: usize) -> &[f32] {
    &g.atom_features[a * ATOM_FEATURES..(a + 1) * ATOM_FEATURES]
}

fn bond_row(g: &MolGraph, d: usize) -> &[f32] {
    &g.bond_features[d * BOND_FEATURES..(d + 1) * BOND_FEATURES]
}

/// The slot set in the one-hot block at `offset` of width `slots`.
fn slot(row: &[f32], offset: usize, slots: usize) -> usize {
    let set: Vec<usize> = (0..slots).filter(|&k| row[offset + k] == 1.0).collect();
    assert_eq!(set.len(), 1, "block at {offset}: {row:?}");
    set[0]
}

fn hydrogens(g: &MolGraph) -> Vec<usize> {
    (0..g.atoms)
        .map(|a| slot(atom_row(g, a), HYDROGENS, 6))
        .collect()
}

fn charges(g: &MolGraph) -> Vec<i64> {
    (0..g.atoms)
        .map(|a| slot(atom_row(g, a), CHARGE, 6) as i64 - 2)
        .collect()
}

fn elements(g: &MolGraph) -> Vec<&'static str> {
    (0..g.atoms)
        .map(|a| {
            let k = slot(atom_row(g, a), ELEMENT, ELEMENTS.len() + 1);
            ELEMENTS.get(k).map_or("other", |e| e.symbol)
        })
        .collect()
}

fn atom_bits(g: &MolGraph, column: usize) -> Vec<bool> {
    (0..g.atoms)
        .map(|a| atom_row(g, a)[column] == 1.0)
        .collect()
}

/// For each undirected bond: its two nodes and its feature row.
fn undirected(g: &MolGraph) -> Vec<(i64, i64, Vec<f32>)> {
    (0..g.bond_src.len() / 2)
        .map(|i| {
            let d = 2 * i;
            (g.bond_src[d], g.bond_dst[d], bond_row(g, d).to_vec())
        })
        .collect()
}

/// The bond between nodes `u` and `v`.
fn bond_between(g: &MolGraph, u: i64, v: i64) -> Vec<f32> {
    let found: Vec<_> = undirected(g)
        .into_iter()
        .filter(|(s, d, _)| (*s, *d) == (u, v) || (*s, *d) == (v, u))
        .collect();
    assert_eq!(found.len(), 1, "bond {u}-{v}");
    found[0].2.clone()
}

#[test]
fn shapes_and_reverse_rule() {
    for smiles in crate::smiles::tests::MOLECULES {
        let m = Molecule::parse(smiles).unwrap();
        let g = featurize(&m);
        let directed = g.bond_src.len();
        assert_eq!(directed % 2, 0, "{smiles}");
        assert_eq!(g.bond_dst.len(), directed, "{smiles}");
        assert_eq!(g.atom_features.len(), g.atoms * ATOM_FEATURES, "{smiles}");
        assert_eq!(g.bond_features.len(), directed * BOND_FEATURES, "{smiles}");
        for d in 0..directed {
            let r = d ^ 1;
            assert_eq!(g.bond_src[d], g.bond_dst[r], "{smiles} bond {d}");
            assert_eq!(g.bond_dst[d], g.bond_src[r], "{smiles} bond {d}");
            assert_ne!(g.bond_src[d], g.bond_dst[d], "{smiles} bond {d}");
            assert!((0..g.atoms as i64).contains(&g.bond_src[d]), "{smiles}");
            assert_eq!(bond_row(&g, d), bond_row(&g, r), "{smiles} bond {d}");
            let row = bond_row(&g, d);
            slot(row, STEREO, 2);
            assert!(row.iter().all(|&x| x == 0.0 || x == 1.0), "{smiles}");
        }
        for a in 0..g.atoms {
            let row = atom_row(&g, a);
            for (offset, slots) in [
                (ELEMENT, ELEMENTS.len() + 1),
                (DEGREE, 7),
                (CHARGE, 6),
                (CHIRALITY, 3),
                (HYDROGENS, 6),
                (HYBRIDISATION, 4),
            ] {
                slot(row, offset, slots);
            }
            assert!((0.0..=2.6).contains(&row[MASS]), "{smiles}: {row:?}");
        }
        // Without explicit [H] atoms, the graph is the molecule.
        if !m.atoms().iter().any(|a| a.symbol() == "H") {
            assert_eq!(g.atoms, m.atoms().len(), "{smiles}");
            assert_eq!(directed, 2 * m.bonds().len(), "{smiles}");
        }
    }
    assert_eq!(ATOM_FEATURES, 43);
    assert_eq!(BOND_FEATURES, 8);
}

#[test]
fn degree_chirality_mass_and_hybridisation() {
    let g = graph("N[C@@H](C)C#N");
    let degree: Vec<usize> = (0..g.atoms)
        .map(|a| slot(atom_row(&g, a), DEGREE, 7))
        .collect();
    assert_eq!(degree, [1, 3, 1, 2, 1]);
    let chirality: Vec<usize> = (0..g.atoms)
        .map(|a| slot(atom_row(&g, a), CHIRALITY, 3))
        .collect();
    assert_eq!(chirality, [0, 1, 0, 0, 0]);
    // Both marks are one stereocentre: the mark flips with the writing.
    let flipped = graph("N[C@H](C#N)C");
    assert_eq!(slot(atom_row(&flipped, 1), CHIRALITY, 3), 1);
    let hybrid: Vec<usize> = (0..g.atoms)
        .map(|a| slot(atom_row(&g, a), HYBRIDISATION, 4))
        .collect();
    assert_eq!(hybrid, [SP3, SP3, SP3, SP, SP]);
    assert!((atom_row(&g, 0)[MASS] - 0.14007).abs() < 1e-6);
    // Sulfonyl S with four neighbours is sp3; its O and aromatic atoms are sp2.
    let g = graph("CS(=O)(=O)c1ccccc1");
    let hybrid: Vec<usize> = (0..g.atoms)
        .map(|a| slot(atom_row(&g, a), HYBRIDISATION, 4))
        .collect();
    assert_eq!(hybrid, [SP3, SP3, SP2, SP2, SP2, SP2, SP2, SP2, SP2, SP2]);
    // Isotopes give their mass number; `*` is "other" with mass 0.
    let g = graph("[2H]C*");
    assert_eq!(elements(&g), ["H", "C", "other"]);
    assert!((atom_row(&g, 0)[MASS] - 0.02).abs() < 1e-6);
    assert_eq!(atom_row(&g, 2)[MASS], 0.0);
    assert_eq!(slot(atom_row(&g, 0), HYBRIDISATION, 4), OTHER);
}

#[test]
fn hydrogens_of_molecules() {
    assert_eq!(hydrogens(&graph("CCO")), [3, 2, 1]);
    assert_eq!(hydrogens(&graph("c1cc[nH]c1")), [1, 1, 1, 1, 1]);
    let g = graph("[NH4+]");
    assert_eq!(hydrogens(&g), [4]);
    assert_eq!(charges(&g), [1]);
    let g = graph("C[N+](=O)[O-]");
    assert_eq!(hydrogens(&g), [3, 0, 0, 0]);
    assert_eq!(charges(&g), [0, 1, 0, -1]);
    assert_eq!(hydrogens(&graph("OC(=O)C")), [1, 0, 0, 3]);
    // An explicit [H] is merged into its neighbour and its bond dropped.
    let g = graph("[H]OC");
    assert_eq!(g.atoms, 2);
    assert_eq!(elements(&g), ["O", "C"]);
    assert_eq!(hydrogens(&g), [1, 3]);
    assert_eq!(
        (g.bond_src.clone(), g.bond_dst.clone()),
        (vec![0, 1], vec![1, 0])
    );
    assert_eq!(slot(atom_row(&g, 0), DEGREE, 7), 1);
    let g = graph("C([H])([H])([H])[H]");
    assert_eq!((g.atoms, hydrogens(&g), g.bond_src.len()), (1, vec![4], 0));
    // Same features as the molecule written without [H].
    assert_eq!(graph("[H]OC"), graph("OC"));
    // Isotopic hydrogen and H2 stay nodes.
    let g = graph("[2H]OC");
    assert_eq!(elements(&g), ["H", "O", "C"]);
    assert_eq!(hydrogens(&g), [0, 0, 3]);
    let g = graph("[H][H]");
    assert_eq!(
        (g.atoms, hydrogens(&g), g.bond_src.len()),
        (2, vec![0, 0], 2)
    );
    // As RDKit 2026.09 reads them: a hydrogen on `*` or without a bond stays, a mapped
    // one, one carrying a `/` mark and one on a stereocentre go.
    assert_eq!(elements(&graph("*[H]")), ["other", "H"]);
    assert_eq!(elements(&graph("[H+]")), ["H"]);
    assert_eq!(hydrogens(&graph("[H:1]C")), [4]);
    assert_eq!(hydrogens(&graph("[H]/C(F)=C/F")), [1, 0, 1, 0]);
    assert_eq!(hydrogens(&graph("[H][C@](F)(Cl)Br")), [1, 0, 0, 0]);
    assert_eq!(hydrogens(&graph("[H][N+](C)(C)C")), [1, 3, 3, 3]);
}

#[test]
fn ring_bits_fused_and_bridged() {
    // Naphthalene: every atom and bond, the fusion bond included, is in a ring.
    let g = graph("c1ccc2ccccc2c1");
    assert!(atom_bits(&g, ATOM_RING).iter().all(|&x| x));
    assert_eq!(undirected(&g).len(), 11);
    assert!(undirected(&g).iter().all(|(_, _, r)| r[BOND_RING] == 1.0));
    assert!(undirected(&g).iter().all(|(_, _, r)| r[ORDER + 3] == 1.0));
    // Bridged bicycle (norbornane): all in rings.
    let g = graph("C1CC2CCC1C2");
    assert!(atom_bits(&g, ATOM_RING).iter().all(|&x| x));
    assert!(undirected(&g).iter().all(|(_, _, r)| r[BOND_RING] == 1.0));
    // Bicyclopropyl: the bridge (graph bridge) between the rings is not in a ring, its
    // atoms are; a methyl substituent is not.
    let g = graph("C1CC1C1CC1C");
    assert_eq!(
        atom_bits(&g, ATOM_RING),
        [true, true, true, true, true, true, false]
    );
    assert_eq!(bond_between(&g, 2, 3)[BOND_RING], 0.0);
    assert_eq!(bond_between(&g, 5, 6)[BOND_RING], 0.0);
    assert_eq!(bond_between(&g, 0, 2)[BOND_RING], 1.0);
    assert_eq!(bond_between(&g, 3, 5)[BOND_RING], 1.0);
}

#[test]
fn biphenyl_link_is_single() {
    let g = graph("c1ccccc1c1ccccc1");
    let link = bond_between(&g, 5, 6);
    assert_eq!(&link[ORDER..ORDER + 4], [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(link[BOND_RING], 0.0);
    assert_eq!(link[CONJUGATED], 1.0);
    let ring = bond_between(&g, 0, 1);
    assert_eq!(&ring[ORDER..ORDER + 4], [0.0, 0.0, 0.0, 1.0]);
    // A written `:` is aromatic; `-` between aromatic ring atoms is single.
    let g = graph("c1ccccc1:c1ccccc1");
    assert_eq!(bond_between(&g, 5, 6)[ORDER + 3], 1.0);
    let g = graph("c1ccccc1-c1ccccc1");
    assert_eq!(bond_between(&g, 5, 6)[ORDER], 1.0);
    // Phenanthrenequinone: the bond joining the benzene rings lies in a ring, but not in a
    // ring of aromatic atoms, so it is single.
    let g = graph("O=C1C(=O)c2ccccc2c2ccccc12");
    let link = bond_between(&g, 9, 10);
    assert_eq!(&link[ORDER..ORDER + 4], [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(link[BOND_RING], 1.0);
    assert_eq!(bond_between(&g, 10, 15)[ORDER + 3], 1.0);
    assert_eq!(bond_between(&g, 1, 15)[ORDER], 1.0);
}

#[test]
fn conjugation_and_stereo() {
    let conjugated = |smiles: &str| -> Vec<bool> {
        undirected(&graph(smiles))
            .iter()
            .map(|(_, _, r)| r[CONJUGATED] == 1.0)
            .collect()
    };
    assert_eq!(conjugated("C=CC=C"), [true, true, true]);
    assert_eq!(conjugated("C=CCC=C"), [false, false, false, false]);
    assert_eq!(conjugated("CC=O"), [false, false]);
    assert_eq!(conjugated("C=Cc1ccccc1")[..2], [true, true]);
    // Lone pairs conjugate (amide, phenol), a sulfonyl group does not.
    assert_eq!(conjugated("CC(=O)N"), [false, true, true]);
    assert!(conjugated("Oc1ccccc1")[0]);
    assert_eq!(conjugated("CS(=O)(=O)c1ccccc1")[..4], [false; 4]);
    let hybrid = |smiles: &str| -> Vec<usize> {
        let g = graph(smiles);
        (0..g.atoms)
            .map(|a| slot(atom_row(&g, a), HYBRIDISATION, 4))
            .collect()
    };
    assert_eq!(hybrid("CC(=O)N"), [SP3, SP2, SP2, SP2]);
    assert_eq!(hybrid("CCN"), [SP3, SP3, SP3]);
    assert_eq!(hybrid("C[N+](=O)[O-]"), [SP3, SP2, SP2, SP2]);
    assert_eq!(hybrid("CCl"), [SP3, SP3]);
    assert_eq!(hybrid("c1cc[nH]c1"), [SP2; 5]);
    assert_eq!(hybrid("OB(O)c1ccccc1")[..3], [SP3, SP2, SP3]);
    assert_eq!(hybrid("C=C=C"), [SP2, SP, SP2]);
    let stereo = |smiles: &str| -> Vec<usize> {
        let g = graph(smiles);
        (0..g.bond_src.len() / 2)
            .map(|i| slot(bond_row(&g, 2 * i), STEREO, 2))
            .collect()
    };
    assert_eq!(stereo("F/C=C/F"), [0, 1, 0]);
    assert_eq!(stereo("F/C=CF"), [0, 0, 0]);
    assert_eq!(stereo("FC=CF"), [0, 0, 0]);
    // A mark on a removed [H] still makes the double bond a stereo one.
    assert_eq!(stereo("[H]/C(F)=C/F"), [0, 1, 0]);
}

/// Sorted feature rows of the atoms, and of the bonds as (atom row, bond row, atom row).
fn multisets(g: &MolGraph) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let bits = |r: &[f32]| r.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let mut atoms: Vec<Vec<u32>> = (0..g.atoms).map(|a| bits(atom_row(g, a))).collect();
    atoms.sort();
    let mut bonds: Vec<Vec<u32>> = (0..g.bond_src.len())
        .map(|d| {
            let mut v = bits(atom_row(g, g.bond_src[d] as usize));
            v.extend(bits(bond_row(g, d)));
            v.extend(bits(atom_row(g, g.bond_dst[d] as usize)));
            v
        })
        .collect();
    bonds.sort();
    (atoms, bonds)
}

#[test]
fn independent_of_writing() {
    for (a, b) in [
        ("OCC", "CCO"),
        ("c1ccccc1O", "Oc1ccccc1"),
        ("c1ccccc1O", "c1cc(O)ccc1"),
        ("C[N+](=O)[O-]", "[O-][N+](C)=O"),
        ("CC(=O)Nc1ccc(O)cc1", "Oc1ccc(NC(C)=O)cc1"),
        ("c1ccc2[nH]ccc2c1", "c12ccccc1cc[nH]2"),
        ("C1CC2CCC1C2", "C1C2CCC1CC2"),
        ("[H]OC", "CO"),
        ("C/C=C/C", "C(/C)=C/C"),
        (
            "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
            "Clc1ccc(cc1)N1CCN(Cc2nc3ccccc3n2C)CC1",
        ),
    ] {
        let (ga, gb) = (graph(a), graph(b));
        assert_eq!(ga.atoms, gb.atoms, "{a} / {b}");
        assert_eq!(multisets(&ga), multisets(&gb), "{a} / {b}");
    }
}

#[test]
fn invalid_smiles_is_an_error_naming_it() {
    for smiles in ["C1CC", "C(C", "CXC", ""] {
        let err = featurize_smiles(smiles).unwrap_err();
        assert!(
            matches!(err, Error::InvalidSmiles { .. }),
            "{smiles}: {err}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("{smiles:?}")), "{message}");
        assert!(message.contains("position"), "{message}");
    }
}
