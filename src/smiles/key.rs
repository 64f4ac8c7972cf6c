//! The graph key: Weisfeiler–Lehman hashing of atoms (element, aromatic flag, charge) and
//! bonds (single, double, triple, quadruple, aromatic), which does not depend on atom order,
//! branch layout, ring-closure numbers, hydrogen notation, isotopes or stereo.
//!
//! What it cannot catch: Kekulé vs aromatic writing of the same ring, tautomers, different
//! protonation or salt forms; in principle two different graphs that WL refinement cannot
//! tell apart would collide (rare for drug-like molecules). Keys come from Rust's
//! `DefaultHasher`: compare them within one program run, do not store them.

use super::Molecule;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

fn h64<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

impl Molecule {
    /// The bond order code of the graph key: order × 2, aromatic = 3. An implicit bond is
    /// aromatic between two aromatic atoms, single otherwise; `/` and `\` are single.
    pub(super) fn key_order(&self, bond: usize) -> u8 {
        let b = &self.bonds[bond];
        match b.symbol {
            Some('=') => 4,
            Some('#') => 6,
            Some('$') => 8,
            Some(':') => 3,
            Some(_) => 2,
            None if self.atoms[b.from].aromatic && self.atoms[b.to].aromatic => 3,
            None => 2,
        }
    }

    /// The order-independent graph key of this molecule (see the module documentation):
    /// equal for two SMILES of the same molecular graph, whatever the writing.
    pub fn graph_key(&self) -> u64 {
        let n = self.atoms.len();
        let orders: Vec<u8> = (0..self.bonds.len()).map(|b| self.key_order(b)).collect();
        let mut labels: Vec<u64> = self
            .atoms
            .iter()
            .map(|a| h64(&(a.symbol, a.aromatic, a.charge as i32)))
            .collect();
        let mut next = vec![0u64; n];
        let mut neighbours: Vec<(u8, u64)> = Vec::new();
        for _ in 0..6 {
            for (i, slot) in next.iter_mut().enumerate() {
                neighbours.clear();
                neighbours.extend(
                    self.atom_bonds(i)
                        .iter()
                        .map(|&b| (orders[b], labels[self.bonds[b].other(i)])),
                );
                neighbours.sort_unstable();
                *slot = h64(&(labels[i], &neighbours));
            }
            std::mem::swap(&mut labels, &mut next);
        }
        labels.sort_unstable();
        h64(&(labels, self.bonds.len()))
    }
}
