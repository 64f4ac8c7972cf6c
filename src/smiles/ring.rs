//! The graph around the parsed atoms and bonds: per-atom bond lists and ring membership
//! (a bond lies in a ring when it is not a bridge; found by an iterative Tarjan search).

use super::{Atom, Bond, Molecule};

impl Molecule {
    /// Assembles a molecule from the parser's atoms and bonds.
    pub(super) fn from_parts(
        smiles: &str,
        atoms: Vec<Atom>,
        bonds: Vec<Bond>,
        dot_in_branch: bool,
    ) -> Molecule {
        let n = atoms.len();
        // Bond lists in bond order (counting sort by atom, stable in bond index).
        let mut adjacency_start = vec![0usize; n + 1];
        for b in &bonds {
            adjacency_start[b.from + 1] += 1;
            adjacency_start[b.to + 1] += 1;
        }
        for a in 0..n {
            adjacency_start[a + 1] += adjacency_start[a];
        }
        let mut fill = adjacency_start.clone();
        let mut adjacency = vec![0usize; 2 * bonds.len()];
        for (k, b) in bonds.iter().enumerate() {
            adjacency[fill[b.from]] = k;
            fill[b.from] += 1;
            adjacency[fill[b.to]] = k;
            fill[b.to] += 1;
        }
        let mut m = Molecule {
            smiles: smiles.to_string(),
            atoms,
            bonds,
            adjacency_start,
            adjacency,
            in_ring: vec![],
            dot_in_branch,
            implicit_h: Vec::new(),
        };
        m.in_ring = m.ring_bonds();
        m
    }

    /// For each bond, whether it lies in a ring (is not a bridge).
    fn ring_bonds(&self) -> Vec<bool> {
        const UNSEEN: usize = usize::MAX;
        let n = self.atoms.len();
        let mut in_ring = vec![true; self.bonds.len()];
        let mut order = vec![UNSEEN; n];
        let mut low = vec![0usize; n];
        let mut time = 0usize;
        // Depth-first stack: (atom, bond it was reached by, next position in its bond list).
        let mut stack: Vec<(usize, usize, usize)> = Vec::new();
        for root in 0..n {
            if order[root] != UNSEEN {
                continue;
            }
            order[root] = time;
            low[root] = time;
            time += 1;
            stack.push((root, UNSEEN, self.adjacency_start[root]));
            while let Some(top) = stack.last_mut() {
                let (atom, via, next) = *top;
                if next < self.adjacency_start[atom + 1] {
                    top.2 += 1;
                    let bond = self.adjacency[next];
                    if bond == via {
                        continue;
                    }
                    let other = self.bonds[bond].other(atom);
                    if order[other] == UNSEEN {
                        order[other] = time;
                        low[other] = time;
                        time += 1;
                        stack.push((other, bond, self.adjacency_start[other]));
                    } else {
                        low[atom] = low[atom].min(order[other]);
                    }
                } else {
                    stack.pop();
                    if let Some(&(parent, _, _)) = stack.last() {
                        low[parent] = low[parent].min(low[atom]);
                        if low[atom] > order[parent] {
                            in_ring[via] = false;
                        }
                    }
                }
            }
        }
        in_ring
    }
}
