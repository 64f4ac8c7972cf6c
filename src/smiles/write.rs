//! The writers: random SMILES of the same molecule ("SMILES enumeration") for
//! training-time augmentation, and the canonical SMILES that every writing of a molecule
//! shares.
//!
//! Both write the molecule again by one depth-first walk, keeping atoms and bond symbols as
//! written; only the order differs (`WalkOrder`): the random writer starts from a random
//! atom and visits neighbours in random order, the canonical writer starts each part at its
//! lowest canonical rank ([`Molecule::canonical_ranks`]) and visits neighbours in rank order.
//! The result is the same molecule for any SMILES reader:
//! - implicit bonds stay implicit, so aromatic-aromatic and single bonds keep their meaning;
//! - tetrahedral centres (`@`, `@@`) are flipped when the new neighbour order is an odd
//!   permutation of the written one (the implicit hydrogen of `[C@H]` counted as OpenSMILES
//!   says: right after the preceding atom, or first);
//! - `/` and `\` on chain bonds are flipped when the bond is written in the other direction.
//!
//! The canonical writer also drops bond symbols that say what the implicit bond says (`-`
//! unless both atoms are aromatic, `:` between two aromatic atoms), and writes the first
//! `/` or `\` of each double-bond system as `/` (turning the system's other marks with it,
//! which keeps the molecule), so that `F/C=C/F` and `F\C=C\F` give one string.
//!
//! A `/` or `\` on a ring closure is written at the opening label, read from the opening
//! atom (the parser stores a mark written at the closing label flipped, as RDKit reads it).
//!
//! Declined ([`Molecule::random_smiles`] and [`Molecule::canonical_smiles`] return `None`):
//! extended chirality (`@TH1`, `@SP2`, …), a `.` inside a branch, and writings that would
//! need more than 99 ring closures open at once.
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

/// The order of a writing: where parts start and in which order neighbours are visited.
pub(crate) trait WalkOrder {
    /// All atoms, in the order they are tried as the start of the next part.
    fn atoms(&mut self, n: usize) -> Vec<usize>;
    /// Puts `bonds` (the bonds of `atom`, in bond order) in visiting order; called once
    /// per atom, when the walk enters it.
    fn bonds(&mut self, m: &Molecule, atom: usize, bonds: &mut [usize]);
}

/// The random writer's order: one shuffle of all atoms, then one shuffle of each atom's
/// bonds when the walk enters it.
impl WalkOrder for SplitMix64 {
    fn atoms(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        self.shuffle(&mut order);
        order
    }

    fn bonds(&mut self, _: &Molecule, _: usize, bonds: &mut [usize]) {
        self.shuffle(bonds);
    }
}

/// The canonical writer's order: atoms by rank; bonds with `/` or `\` first (so that they
/// tend to be chain bonds, which the writers can rewrite), then by the rank of the atom they
/// lead to.
struct RankOrder<'r> {
    ranks: &'r [usize],
}

impl WalkOrder for RankOrder<'_> {
    fn atoms(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&a| self.ranks[a]);
        order
    }

    fn bonds(&mut self, m: &Molecule, atom: usize, bonds: &mut [usize]) {
        bonds.sort_by_key(|&b| {
            let marked = m.bonds[b].symbol.is_some_and(is_directional);
            (!marked, self.ranks[m.bonds[b].other(atom)])
        });
    }
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
    }

    /// A SMILES of the same molecule starting at a random atom, with neighbours visited in
    /// random order (disconnected parts in random order too). `None`, without drawing from
    /// `rng`, when the molecule is not [`Molecule::randomizable`]; `None` after drawing when
    /// the writing would need more than 99 ring closures open at once.
    pub fn random_smiles(&self, rng: &mut SplitMix64) -> Option<String> {
        if !self.randomizable() {
            return None;
        }
        self.write_walk(rng, false).map(|(smiles, _)| smiles)
    }

    /// The canonical SMILES of this molecule: the same string for every writing of it (same
    /// atom texts, bonds and stereo; see the module documentation of [`crate::smiles`]).
    /// Each part starts at its lowest [`Molecule::canonical_ranks`] atom, parts in the order
    /// of their lowest ranks (larger parts first), neighbours visited in rank order (bonds
    /// with `/` or `\` first); atom texts stay as written (with `@`/`@@` recomputed), `-`
    /// between atoms that are not both aromatic and `:` between aromatic atoms are dropped,
    /// each double-bond system's first mark is written `/`, and a centre whose mark means
    /// nothing (two alike end atoms: `C[C@@H](C)O`) is written `@`. `None` when the
    /// molecule is not [`Molecule::randomizable`], or when the writing would need more than 99
    /// ring numbers.
    pub fn canonical_smiles(&self) -> Option<String> {
        self.canonical_writing().map(|(smiles, _)| smiles)
    }

    /// The canonical SMILES and, for each atom it writes in turn, the atom of this molecule
    /// it is (see [`Molecule::canonical_smiles`]).
    pub(crate) fn canonical_writing(&self) -> Option<(String, Vec<usize>)> {
        if !self.randomizable() {
            return None;
        }
        let ranks = self.canonical_ranks();
        self.write_walk(&mut RankOrder { ranks: &ranks }, true)
    }

    /// One depth-first writing in the order `order` gives: the SMILES and its atoms in
    /// written order, or `None` past 99 ring numbers. When `tidy` (the canonical writer), bond
    /// symbols the implicit bond means anyway are dropped.
    fn write_walk(&self, order: &mut impl WalkOrder, tidy: bool) -> Option<(String, Vec<usize>)> {
        let n = self.atoms.len();
        let mut walk = Walk {
            m: self,
            tidy,
            visited: vec![false; n],
            parent_bond: vec![None; n],
            children: vec![vec![]; n],
            closes: vec![vec![]; n],
            opens: vec![vec![]; n],
            ring_bond: vec![false; self.bonds.len()],
        };
        // Roots of the parts: the first atom of each part in the strategy's atom order.
        let mut roots = vec![];
        for start in order.atoms(n) {
            if !walk.visited[start] {
                walk.visit(start, order);
                roots.push(start);
            }
        }
        let mut out = String::with_capacity(self.smiles.len() + 8);
        let mut written = Vec::with_capacity(n);
        let mut numbers = RingNumbers {
            in_use: Vec::new(),
            of_bond: vec![0; self.bonds.len()],
        };
        let mut marks = MarkPolarity::new(self, tidy);
        for (k, &root) in roots.iter().enumerate() {
            if k > 0 {
                out.push('.');
            }
            walk.write(root, (&mut numbers, &mut marks), &mut out, &mut written)?;
        }
        Some((out, written))
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

/// How the canonical writer turns `/` and `\` around: all marks of one double-bond system
/// (the marked bonds around its double bonds, joined through conjugation) may be flipped
/// together without changing the molecule, so each system is written with its first mark as
/// `/`. The random writer keeps marks as written (no systems).
struct MarkPolarity {
    /// The system of each bond (a representative bond), or empty for the random writer.
    system: Vec<usize>,
    /// Per system, whether its marks are flipped; decided at its first written mark.
    flip: Vec<Option<bool>>,
}

/// The representative of `k` in the union-find forest `system`.
fn root(system: &mut [usize], mut k: usize) -> usize {
    while system[k] != k {
        system[k] = system[system[k]];
        k = system[k];
    }
    k
}

impl MarkPolarity {
    fn new(m: &Molecule, canonical: bool) -> Self {
        if !canonical {
            return MarkPolarity {
                system: vec![],
                flip: vec![],
            };
        }
        let mut system: Vec<usize> = (0..m.bonds.len()).collect();
        for b in m.bonds.iter().filter(|b| b.symbol == Some('=')) {
            let mut marked = m
                .atom_bonds(b.from)
                .iter()
                .chain(m.atom_bonds(b.to))
                .filter(|&&k| m.bonds[k].symbol.is_some_and(is_directional));
            if let Some(&first) = marked.next() {
                for &k in marked {
                    let (x, y) = (root(&mut system, first), root(&mut system, k));
                    system[y] = x;
                }
            }
        }
        let system: Vec<usize> = (0..m.bonds.len()).map(|k| root(&mut system, k)).collect();
        MarkPolarity {
            flip: vec![None; system.len()],
            system,
        }
    }

    /// The mark to write for `bond` where the writing gives `symbol`.
    fn apply(&mut self, bond: usize, symbol: char) -> char {
        let Some(&system) = self.system.get(bond) else {
            return symbol;
        };
        let flip = *self.flip[system].get_or_insert(symbol == '\\');
        match (symbol, flip) {
            ('/', true) => '\\',
            ('\\', true) => '/',
            (s, _) => s,
        }
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

/// One depth-first walk: the spanning tree and ring closures it chose.
struct Walk<'a> {
    m: &'a Molecule,
    /// Drop bond symbols that the implicit bond means anyway (the canonical writer).
    tidy: bool,
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
    /// Marks `atom` visited and orders its bonds: the new top of the walk's stack.
    fn enter(&mut self, atom: usize, order: &mut impl WalkOrder) -> (usize, Vec<usize>, usize) {
        self.visited[atom] = true;
        let mut bonds = self.m.atom_bonds(atom).to_vec();
        order.bonds(self.m, atom, &mut bonds);
        (atom, bonds, 0)
    }

    fn visit(&mut self, start: usize, order: &mut impl WalkOrder) {
        // Iterative depth-first search: (atom, its ordered bonds, next bond to look at).
        let first = self.enter(start, order);
        let mut stack: Vec<(usize, Vec<usize>, usize)> = vec![first];
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
                let entered = self.enter(other, order);
                stack.push(entered);
            }
        }
    }

    /// The symbol of `bond` to write: as written, or none where `tidy` drops it.
    fn bond_symbol(&self, bond: usize) -> Option<char> {
        let b = &self.m.bonds[bond];
        let both_aromatic = self.m.atoms[b.from].aromatic && self.m.atoms[b.to].aromatic;
        match b.symbol {
            Some('-') if self.tidy && !both_aromatic => None,
            Some(':') if self.tidy && both_aromatic => None,
            s => s,
        }
    }

    fn push_bond_symbol(
        &self,
        bond: usize,
        written_from: usize,
        marks: &mut MarkPolarity,
        out: &mut String,
    ) {
        let b = &self.m.bonds[bond];
        let symbol = match self.bond_symbol(bond) {
            Some('/') if b.from != written_from => Some('\\'),
            Some('\\') if b.from != written_from => Some('/'),
            s => s,
        };
        match symbol {
            Some(s) if is_directional(s) => out.push(marks.apply(bond, s)),
            Some(s) => out.push(s),
            None => {}
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
            // A mark that means nothing: the canonical writer fixes it.
            _ if self.tidy && self.m.idle_centre(atom) => "@",
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

    /// Writes the part rooted at `root`, adding its atoms to `written` in written order;
    /// `None` when it needs more than 99 ring numbers.
    fn write(
        &self,
        root: usize,
        (numbers, marks): (&mut RingNumbers, &mut MarkPolarity),
        out: &mut String,
        written: &mut Vec<usize>,
    ) -> Option<()> {
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
                self.push_bond_symbol(p, from, marks, out);
            }
            self.push_atom_text(atom, out);
            written.push(atom);
            for &bond in &self.closes[atom] {
                push_ring_label(out, numbers.close(bond));
            }
            for &bond in &self.opens[atom] {
                self.push_bond_symbol(bond, atom, marks, out);
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
