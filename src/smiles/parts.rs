//! Canonical ranks part by part: each connected part of a molecule (`CC(=O)[O-].[Na+]` has
//! two) is ranked on its own (`canon.rs`), and the parts are ordered by a canonical form of
//! each, larger parts first. So ties never have to be broken across parts: many copies of
//! one part (`O.O.O`, a salt written twice) are interchangeable, and the stereo tie-break of
//! each part stays within that part's size.

use std::cmp::Reverse;

use super::{Bond, Molecule};

/// A part's canonical form, which orders the parts: larger first, then its atoms in rank
/// order (text without chirality mark, hydrogens, tetrahedral sign) and its bonds (ranks of
/// both atoms, label, cis/trans sign).
pub(super) type PartKey = (
    Reverse<usize>,
    Vec<(String, u8, u8)>,
    Vec<(usize, usize, u8, u8)>,
);

impl Molecule {
    /// Canonical ranks of the atoms: `ranks[atom]` is a number in `0..atoms().len()`, all
    /// different, that does not depend on atom order, branch layout or ring numbers of the
    /// SMILES (see the module documentation of [`crate::smiles`]). Two writings of one
    /// molecule (same atom texts, bonds and stereo) give ranks that put corresponding atoms
    /// in the same places, except where refinement cannot tell non-equivalent atoms apart
    /// (some highly regular graphs). Connected parts get consecutive ranks, larger parts
    /// first.
    pub fn canonical_ranks(&self) -> Vec<usize> {
        let parts = self.connected_parts();
        // With a `.` inside a branch parts interleave in the SMILES: rank them as one graph.
        if parts.len() < 2 || self.dot_in_branch {
            return self.graph_ranks();
        }
        let mut local = vec![0; self.atoms.len()];
        for part in &parts {
            for (i, &a) in part.iter().enumerate() {
                local[a] = i;
            }
        }
        let mut ranked: Vec<(PartKey, &[usize], Vec<usize>)> = parts
            .iter()
            .map(|atoms| {
                let part = self.part(atoms, &local);
                let ranks = part.graph_ranks();
                (part.part_key(&ranks), atoms.as_slice(), ranks)
            })
            .collect();
        ranked.sort_by(|a, b| a.0.cmp(&b.0));
        let mut ranks = vec![0; self.atoms.len()];
        let mut offset = 0;
        for (_, atoms, part_ranks) in &ranked {
            for (&a, &r) in atoms.iter().zip(part_ranks) {
                ranks[a] = offset + r;
            }
            offset += atoms.len();
        }
        ranks
    }

    /// The connected parts, each a sorted list of atoms, by their first atom.
    fn connected_parts(&self) -> Vec<Vec<usize>> {
        let mut seen = vec![false; self.atoms.len()];
        let mut parts = Vec::new();
        for root in 0..self.atoms.len() {
            if seen[root] {
                continue;
            }
            seen[root] = true;
            let mut part = vec![root];
            let mut next = 0;
            while next < part.len() {
                let a = part[next];
                next += 1;
                for &b in self.atom_bonds(a) {
                    let x = self.bonds[b].other(a);
                    if !seen[x] {
                        seen[x] = true;
                        part.push(x);
                    }
                }
            }
            part.sort_unstable();
            parts.push(part);
        }
        parts
    }

    /// The connected part made of `atoms` (sorted) as a molecule of its own, read from the
    /// stretch of the SMILES that holds it; `local[a]` is atom `a`'s index in its part.
    fn part(&self, atoms: &[usize], local: &[usize]) -> Molecule {
        let lo = atoms
            .iter()
            .map(|&a| self.atoms[a].start)
            .min()
            .unwrap_or(0);
        let hi = atoms.iter().map(|&a| self.atoms[a].end).max().unwrap_or(lo);
        let part_atoms = atoms
            .iter()
            .map(|&a| {
                let mut atom = self.atoms[a].clone();
                atom.start -= lo;
                atom.end -= lo;
                atom.chirality_at = atom.chirality_at.saturating_sub(lo);
                atom
            })
            .collect();
        let mut bond_ids: Vec<usize> = atoms
            .iter()
            .flat_map(|&a| self.atom_bonds(a).iter().copied())
            .collect();
        bond_ids.sort_unstable();
        bond_ids.dedup();
        let bonds = bond_ids
            .iter()
            .map(|&k| {
                let b = &self.bonds[k];
                Bond {
                    from: local[b.from],
                    to: local[b.to],
                    from_at: b.from_at - lo,
                    to_at: b.to_at - lo,
                    ..b.clone()
                }
            })
            .collect();
        let mut part = Molecule::from_parts(&self.smiles[lo..hi], part_atoms, bonds, false);
        part.implicit_h = atoms.iter().map(|&a| self.implicit_h[a]).collect();
        part
    }

    /// The canonical form of this (connected) molecule under its canonical `ranks`.
    pub(super) fn part_key(&self, ranks: &[usize]) -> PartKey {
        let mut by_rank = vec![0; ranks.len()];
        for (a, &r) in ranks.iter().enumerate() {
            by_rank[r] = a;
        }
        let atoms = by_rank
            .iter()
            .map(|&a| {
                let text = self.text_without_mark(a);
                (
                    text,
                    self.hydrogen_count(a),
                    self.tetrahedral_sign(a, ranks),
                )
            })
            .collect();
        let labels = self.bond_labels();
        let mut bonds: Vec<(usize, usize, u8, u8)> = (0..self.bonds.len())
            .map(|k| {
                let b = &self.bonds[k];
                let (x, y) = (ranks[b.from], ranks[b.to]);
                let sign = self.double_bond_sign(k, ranks);
                (x.min(y), x.max(y), labels[k], sign)
            })
            .collect();
        bonds.sort_unstable();
        (Reverse(ranks.len()), atoms, bonds)
    }
}
