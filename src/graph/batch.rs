//! Many molecules as one disconnected graph: their atom and directed-bond arrays stacked,
//! with indices shifted, the reverse of every directed bond, and the molecule of every atom.
//! Plain arrays, so that tch (training) and ONNX Runtime (inference) read the same batch.

use super::features::{MolGraph, ATOM_FEATURES, BOND_FEATURES};

/// A batch of molecule graphs as flat arrays (row-major).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphArrays {
    /// Molecules in the batch.
    pub molecules: usize,
    /// `atoms × ATOM_FEATURES`.
    pub atom_features: Vec<f32>,
    /// `bonds × BOND_FEATURES` (directed bonds).
    pub bond_features: Vec<f32>,
    /// The atom each directed bond leaves.
    pub bond_src: Vec<i64>,
    /// The atom each directed bond enters.
    pub bond_dst: Vec<i64>,
    /// The reverse of each directed bond.
    pub bond_rev: Vec<i64>,
    /// The molecule of each atom.
    pub atom_mol: Vec<i64>,
    /// Atoms of each molecule (as a float, the divisor of a mean).
    pub mol_atoms: Vec<f32>,
}

impl GraphArrays {
    /// Stacks `graphs` into one batch.
    pub fn new(graphs: &[&MolGraph]) -> GraphArrays {
        let atoms: usize = graphs.iter().map(|g| g.atoms).sum();
        let bonds: usize = graphs.iter().map(|g| g.bond_src.len()).sum();
        let mut b = GraphArrays {
            molecules: graphs.len(),
            atom_features: Vec::with_capacity(atoms * ATOM_FEATURES),
            bond_features: Vec::with_capacity(bonds * BOND_FEATURES),
            bond_src: Vec::with_capacity(bonds),
            bond_dst: Vec::with_capacity(bonds),
            bond_rev: Vec::with_capacity(bonds),
            atom_mol: Vec::with_capacity(atoms),
            mol_atoms: Vec::with_capacity(graphs.len()),
        };
        for (m, g) in graphs.iter().enumerate() {
            let atom0 = b.atom_mol.len() as i64;
            let bond0 = b.bond_src.len() as i64;
            b.atom_features.extend_from_slice(&g.atom_features);
            b.bond_features.extend_from_slice(&g.bond_features);
            b.bond_src.extend(g.bond_src.iter().map(|&a| a + atom0));
            b.bond_dst.extend(g.bond_dst.iter().map(|&a| a + atom0));
            b.bond_rev
                .extend((0..g.bond_src.len() as i64).map(|d| bond0 + (d ^ 1)));
            b.atom_mol.extend(std::iter::repeat_n(m as i64, g.atoms));
            b.mol_atoms.push(g.atoms as f32);
        }
        b
    }

    /// Atoms in the batch.
    pub fn atoms(&self) -> usize {
        self.atom_mol.len()
    }

    /// Directed bonds in the batch.
    pub fn bonds(&self) -> usize {
        self.bond_src.len()
    }
}

#[cfg(feature = "train")]
pub use tensors::GraphBatch;

#[cfg(feature = "train")]
mod tensors {
    use tch::{Device, Tensor};

    use super::super::features::{ATOM_FEATURES, BOND_FEATURES};
    use super::GraphArrays;

    /// A batch of molecule graphs as tensors on one device.
    #[derive(Debug)]
    pub struct GraphBatch {
        /// Molecules.
        pub molecules: i64,
        /// `[atoms, ATOM_FEATURES]` float.
        pub atom_x: Tensor,
        /// `[bonds, BOND_FEATURES]` float.
        pub bond_x: Tensor,
        /// `[bonds]` int64: source atom.
        pub src: Tensor,
        /// `[bonds]` int64: destination atom.
        pub dst: Tensor,
        /// `[bonds]` int64: reverse bond.
        pub rev: Tensor,
        /// `[atoms]` int64: molecule of the atom.
        pub atom_mol: Tensor,
        /// `[molecules]` float: atoms per molecule.
        pub mol_atoms: Tensor,
    }

    impl GraphBatch {
        /// The arrays of `a` as tensors on `device`.
        pub fn new(a: &GraphArrays, device: Device) -> GraphBatch {
            let atoms = a.atoms() as i64;
            let bonds = a.bonds() as i64;
            let t = |v: &[i64]| Tensor::from_slice(v).to_device(device);
            GraphBatch {
                molecules: a.molecules as i64,
                atom_x: Tensor::from_slice(&a.atom_features)
                    .view([atoms, ATOM_FEATURES as i64])
                    .to_device(device),
                bond_x: Tensor::from_slice(&a.bond_features)
                    .view([bonds, BOND_FEATURES as i64])
                    .to_device(device),
                src: t(&a.bond_src),
                dst: t(&a.bond_dst),
                rev: t(&a.bond_rev),
                atom_mol: t(&a.atom_mol),
                mol_atoms: Tensor::from_slice(&a.mol_atoms).to_device(device),
            }
        }
    }
}
