//! Random SMILES of the same molecule ("SMILES enumeration"), for training-time
//! augmentation.
//!
//! The molecule is written again by a depth-first walk from a random atom that visits
//! neighbours in random order, keeping atoms and bond symbols as written. The result is the
//! same molecule for any SMILES reader:
//! - implicit bonds stay implicit, so aromatic-aromatic and single bonds keep their meaning;
//! - tetrahedral centres (`@`, `@@`) are flipped when the new neighbour order is an odd
//!   permutation of the written one (the implicit hydrogen of `[C@H]` counted as OpenSMILES
//!   says: right after the preceding atom, or first);
//! - `/` and `\` on chain bonds are flipped when the bond is written in the other direction.
//!
//! Declined ([`Molecule::random_smiles`] returns `None`): directional bonds on ring
//! closures, extended chirality (`@TH1`, `@SP2`, …), a `.` inside a branch, and writings
//! that would need more than 99 ring closures open at once.
//!
//! The random stream is part of the contract: for the same seed the output is the same, byte
//! for byte, as the writer this replaces (resumed training runs depend on it). Do not change
//! the order of random draws: one shuffle of all atoms, then one shuffle of each atom's bond
//! list (in bond order) when the walk enters it.

use super::reader::is_directional;
use super::{Chirality, Molecule};
use crate::rng::SplitMix64;

/// A neighbour slot of an atom, in the order the SMILES lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The bond with this index.
    Bond(usize),
    /// The implicit hydrogen of a bracket atom such as `[C@H]`.
    H,
}

impl Molecule {
    /// Whether [`Molecule::random_smiles`] can rewrite this molecule (see the module
    /// documentation of the writer; a writing may still need too many ring numbers).
    pub fn randomizable(&self) -> bool {
        !self.dot_in_branch
            && self
                .atoms
                .iter()
                .all(|a| a.chirality.is_none_or(Chirality::is_tetrahedral_shorthand))
            && self
                .bonds
                .iter()
                .all(|b| !(b.ring_closure && b.symbol.is_some_and(is_directional)))
    }

    /// A SMILES of the same molecule starting at a random atom, with neighbours visited in
    /// random order (disconnected parts in random order too). `None`, without drawing from
    /// `rng`, when the molecule is not [`Molecule::randomizable`]; `None` after drawing when
    /// the writing would need more than 99 ring closures open at once.
    pub fn random_smiles(&self, rng: &mut SplitMix64) -> Option<String> {
        if !self.randomizable() {
            return None;
        }
        let n = self.atoms.len();
        let mut walk = Walk {
            m: self,
            visited: vec![false; n],
            parent_bond: vec![None; n],
            children: vec![vec![]; n],
            closes: vec![vec![]; n],
            opens: vec![vec![]; n],
            ring_bond: vec![false; self.bonds.len()],
        };
        // Roots of the parts, in random order.
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let mut roots = vec![];
        for &start in &order {
            if !walk.visited[start] {
                walk.visit(start, rng);
                roots.push(start);
            }
        }
        let mut out = String::with_capacity(self.smiles.len() + 8);
        let mut numbers = RingNumbers {
            in_use: Vec::new(),
            of_bond: vec![0; self.bonds.len()],
        };
        for (k, &root) in roots.iter().enumerate() {
            if k > 0 {
                out.push('.');
            }
            walk.write(root, &mut numbers, &mut out)?;
        }
        Some(out)
    }

    /// The neighbour slots of atom `atom` in written order: its bonds by where the SMILES
    /// lists them at this atom, with the implicit hydrogen of `[C@H]` right after the bond
    /// from the preceding atom (or first).
    pub(crate) fn written_slots(&self, atom: usize) -> Vec<Slot> {
        let mut listed: Vec<(usize, usize)> = self
            .atom_bonds(atom)
            .iter()
            .map(|&k| {
                let b = &self.bonds[k];
                (if b.from == atom { b.from_at } else { b.to_at }, k)
            })
            .collect();
        listed.sort_unstable();
        let mut slots: Vec<Slot> = listed.iter().map(|&(_, k)| Slot::Bond(k)).collect();
        if self.chiral_h(atom) {
            let b = listed.first().map(|&(_, k)| &self.bonds[k]);
            let after_incoming = b.is_some_and(|b| b.to == atom && !b.ring_closure);
            slots.insert(usize::from(after_incoming), Slot::H);
        }
        slots
    }

    /// Whether atom `atom` is a `[C@H]`-style centre whose hydrogen counts as a neighbour.
    fn chiral_h(&self, atom: usize) -> bool {
        let a = &self.atoms[atom];
        a.chirality.is_some() && a.hydrogens.unwrap_or(0) > 0
    }
}

/// Ring-closure numbers in use while writing.
struct RingNumbers {
    in_use: Vec<bool>,
    /// The number each open ring bond was given.
    of_bond: Vec<usize>,
}

impl RingNumbers {
    /// The lowest free number for `bond`, or `None` past 99.
    fn open(&mut self, bond: usize) -> Option<usize> {
        let k = match self.in_use.iter().skip(1).position(|u| !u) {
            Some(p) => p + 1,
            None => {
                self.in_use.resize(self.in_use.len().max(1), false);
                self.in_use.push(false);
                self.in_use.len() - 1
            }
        };
        if k > 99 {
            return None;
        }
        self.in_use[k] = true;
        self.of_bond[bond] = k;
        Some(k)
    }

    fn close(&mut self, bond: usize) -> usize {
        let k = self.of_bond[bond];
        self.in_use[k] = false;
        k
    }
}

fn push_ring_label(out: &mut String, k: usize) {
    if k < 10 {
        out.push(char::from(b'0' + k as u8));
    } else {
        out.push('%');
        out.push(char::from(b'0' + (k / 10) as u8));
        out.push(char::from(b'0' + (k % 10) as u8));
    }
}

/// Parity of the permutation taking `from` to `to` (same elements): true when odd.
pub(crate) fn odd_permutation(from: &[Slot], to: &[Slot]) -> bool {
    let index: Vec<usize> = to
        .iter()
        .map(|s| from.iter().position(|f| f == s).unwrap_or(0))
        .collect();
    let mut inversions = 0;
    for a in 0..index.len() {
        for b in a + 1..index.len() {
            if index[a] > index[b] {
                inversions += 1;
            }
        }
    }
    inversions % 2 == 1
}

/// One random depth-first walk: the spanning tree and ring closures it chose.
struct Walk<'a> {
    m: &'a Molecule,
    visited: Vec<bool>,
    parent_bond: Vec<Option<usize>>,
    /// Tree bonds to children, in visiting order.
    children: Vec<Vec<usize>>,
    /// Ring bonds that close at this atom (the other end was written earlier).
    closes: Vec<Vec<usize>>,
    /// Ring bonds that open at this atom.
    opens: Vec<Vec<usize>>,
    ring_bond: Vec<bool>,
}

impl Walk<'_> {
    fn visit(&mut self, start: usize, rng: &mut SplitMix64) {
        // Iterative depth-first search: (atom, its shuffled bonds, next bond to look at).
        let mut stack: Vec<(usize, Vec<usize>, usize)> = vec![];
        let enter = |w: &mut Self, atom: usize, rng: &mut SplitMix64| {
            w.visited[atom] = true;
            let mut bonds = w.m.atom_bonds(atom).to_vec();
            rng.shuffle(&mut bonds);
            (atom, bonds, 0)
        };
        let first = enter(self, start, rng);
        stack.push(first);
        while let Some(top) = stack.last_mut() {
            let (atom, ref bonds, ref mut next) = *top;
            if *next == bonds.len() {
                stack.pop();
                continue;
            }
            let bond = bonds[*next];
            *next += 1;
            if Some(bond) == self.parent_bond[atom] || self.ring_bond[bond] {
                continue;
            }
            let other = self.m.bonds[bond].other(atom);
            if self.visited[other] {
                // A ring bond back to an atom already written: it opens there.
                self.ring_bond[bond] = true;
                self.opens[other].push(bond);
                self.closes[atom].push(bond);
            } else {
                self.parent_bond[other] = Some(bond);
                self.children[atom].push(bond);
                let entered = enter(self, other, rng);
                stack.push(entered);
            }
        }
    }

    fn push_bond_symbol(&self, bond: usize, written_from: usize, out: &mut String) {
        let b = &self.m.bonds[bond];
        let symbol = match b.symbol {
            Some('/') if b.from != written_from => Some('\\'),
            Some('\\') if b.from != written_from => Some('/'),
            s => s,
        };
        if let Some(s) = symbol {
            out.push(s);
        }
    }

    fn push_atom_text(&self, atom: usize, out: &mut String) {
        let a = &self.m.atoms[atom];
        let text = self.m.atom_text(atom);
        let Some(chirality) = a.chirality else {
            out.push_str(text);
            return;
        };
        // The neighbour order this writing gives, in OpenSMILES' counting.
        let mut slots = vec![];
        if let Some(p) = self.parent_bond[atom] {
            slots.push(Slot::Bond(p));
        }
        if self.m.chiral_h(atom) {
            slots.push(Slot::H);
        }
        slots.extend(self.closes[atom].iter().map(|&b| Slot::Bond(b)));
        slots.extend(self.opens[atom].iter().map(|&b| Slot::Bond(b)));
        slots.extend(self.children[atom].iter().map(|&b| Slot::Bond(b)));
        let flip = odd_permutation(&self.m.written_slots(atom), &slots);
        let mark = match (chirality, flip) {
            (Chirality::Anticlockwise, false) | (Chirality::Clockwise, true) => "@",
            _ => "@@",
        };
        let mark_len = if chirality == Chirality::Clockwise {
            2
        } else {
            1
        };
        let at = a.chirality_at - a.start;
        out.push_str(&text[..at]);
        out.push_str(mark);
        out.push_str(&text[at + mark_len..]);
    }

    /// Writes the part rooted at `root`; `None` when it needs more than 99 ring numbers.
    fn write(&self, root: usize, numbers: &mut RingNumbers, out: &mut String) -> Option<()> {
        enum Item {
            Atom(usize),
            Text(char),
        }
        let mut todo = vec![Item::Atom(root)];
        while let Some(item) = todo.pop() {
            let atom = match item {
                Item::Text(t) => {
                    out.push(t);
                    continue;
                }
                Item::Atom(a) => a,
            };
            if let Some(p) = self.parent_bond[atom] {
                let from = self.m.bonds[p].other(atom);
                self.push_bond_symbol(p, from, out);
            }
            self.push_atom_text(atom, out);
            for &bond in &self.closes[atom] {
                push_ring_label(out, numbers.close(bond));
            }
            for &bond in &self.opens[atom] {
                self.push_bond_symbol(bond, atom, out);
                push_ring_label(out, numbers.open(bond)?);
            }
            // Children: all but the last in parentheses; pushed in reverse for the stack.
            let kids = &self.children[atom];
            for (k, &bond) in kids.iter().enumerate().rev() {
                let child = self.m.bonds[bond].other(atom);
                if k + 1 == kids.len() {
                    todo.push(Item::Atom(child));
                } else {
                    todo.push(Item::Text(')'));
                    todo.push(Item::Atom(child));
                    todo.push(Item::Text('('));
                }
            }
        }
        Some(())
    }
}
