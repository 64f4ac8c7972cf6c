//! Canonical atom ranks: a numbering of the atoms that does not depend on how the molecule
//! was written, for the canonical writer ([`Molecule::canonical_smiles`]).
//!
//! Weininger/Morgan-style refinement: atoms start in classes of equal invariants (heavy
//! degree, element, aromatic flag, isotope, charge, hydrogen count, and the atom's text
//! without its chirality mark, so that atoms written differently never tie); classes split
//! by their atoms' (bond label, neighbour class) lists until no class splits, where the
//! bond label is the graph key's bond order plus whether the bond carries `/` or `\`
//! (`partition.rs` does this one splitter class at a time, which gives the same classes as
//! rounds over all atoms but stays fast on long chains). All comparisons sort values, never
//! hashes. Then stereo splits further: the sign of each `@`/`@@` centre relative to its
//! neighbours' classes, and cis/trans of each marked double bond relative to the
//! lowest-class substituents (both only where those classes are distinct); and refinement
//! runs again. Remaining ties are broken one at a time: one atom of the lowest tied class
//! is split off and refinement runs again, until all ranks differ. While a stereo element
//! is still undetermined, the choice can decide how stereo is written, so each atom of the
//! tied class is tried (depth first, within a budget) and the completion with the smallest
//! canonical form is kept: mirror-related choices (the two ring sides of
//! `C[C@H]1CC[C@@H](C)CC1`, the two methyls of `C[C@H](C)O`) do not depend on atom order
//! either.
//!
//! A centre whose mark means nothing because two of its neighbours are alike end atoms
//! (`C[C@H](C)O`) is no stereo element at all: the writer gives it a fixed mark.
//!
//! Limits: refinement cannot tell apart some non-equivalent atoms of highly regular graphs
//! (cage-like ring systems whose atoms all look alike locally); there the tie-break is by
//! atom order and the writing may depend on the input. Beyond the stereo search budget
//! (thousands of tries for drug-like sizes) stereo ties are broken by atom order too.

use super::partition::Partition;
use super::parts::PartKey;
use super::reader::is_directional;
use super::write::{odd_permutation, Slot};
use super::{Chirality, Molecule};

/// The stereo invariant of an atom: its tetrahedral sign (0 none, 1 or 2), and how many of
/// its double bonds are cis and trans.
type StereoSign = (u8, u8, u8);

/// The invariant an atom starts from; compared as a tuple, field by field.
type AtomInvariant<'a> = (usize, &'a str, bool, Option<u16>, i8, u8, String);

/// The stereo tie-break tries at most this many splits divided by the atom count (a few
/// thousand for drug-like molecules; hostile inputs stay fast, and their ties beyond it are
/// broken by atom order).
const SEARCH_BUDGET: usize = 200_000;

/// The stereo elements of a molecule (`@`/`@@` centres and double bonds with `/` or `\` at
/// both ends) and what the classes have settled of their signs so far.
#[derive(Debug, Clone)]
struct Stereo {
    /// The atoms of all elements, sorted, without repeats.
    atoms: Vec<usize>,
    /// The sign of each atom of `atoms` so far.
    signs: Vec<StereoSign>,
    /// The centres whose sign is still open (two neighbours in one class).
    open_centres: Vec<usize>,
    /// The double bonds whose sign is still open.
    open_doubles: Vec<usize>,
}

impl Stereo {
    /// Whether some element's sign is still open.
    fn open(&self) -> bool {
        !self.open_centres.is_empty() || !self.open_doubles.is_empty()
    }

    /// Where `atom` stands in `atoms`.
    fn index(&self, atom: usize) -> usize {
        self.atoms.partition_point(|&x| x < atom)
    }
}

/// The refinement state: the classes and the stereo signs they settle.
#[derive(Debug, Clone)]
struct State {
    p: Partition,
    stereo: Stereo,
}

impl Molecule {
    /// Canonical ranks of the atoms of a molecule taken as one graph (see the module
    /// documentation; `parts.rs` ranks each connected part on its own).
    pub(super) fn graph_ranks(&self) -> Vec<usize> {
        let labels = self.bond_labels();
        let invariants: Vec<AtomInvariant<'_>> = (0..self.atoms.len())
            .map(|a| self.atom_invariant(a))
            .collect();
        let mut state = State {
            p: Partition::new(&invariants),
            stereo: self.stereo_elements(),
        };
        self.refine(&mut state, &labels);
        let mut budget = SEARCH_BUDGET / self.atoms.len().max(1);
        let done = self.break_ties(state, &labels, &mut budget);
        done.p.positions().to_vec()
    }

    /// Breaks the ties left after refinement, one lowest tied class at a time: split off
    /// one atom, refine again. While a stereo sign is still open, the choice of atom can
    /// decide how the stereo comes out, so every atom of the class is tried (depth first,
    /// while `budget` lasts: one unit per try) and the completion with the smallest
    /// canonical form (`part_key`) is kept.
    fn break_ties(&self, mut state: State, labels: &[u8], budget: &mut usize) -> State {
        let mut from = 0;
        while let Some(s) = state.p.first_tied(from) {
            from = s;
            let size = state.p.cell_size(s);
            if state.stereo.open() && *budget >= size {
                *budget -= size;
                return self.best_completion(&state, s, labels, budget);
            }
            let atom = state.p.first_atom(s);
            state.p.individualize(atom);
            self.refine(&mut state, labels);
        }
        state
    }

    /// Of the completions that split off each atom of the tied class starting at `s`, the
    /// one with the smallest canonical form (the first, by atom number, on a tie).
    fn best_completion(&self, state: &State, s: usize, labels: &[u8], budget: &mut usize) -> State {
        let mut best: Option<(PartKey, State)> = None;
        for atom in state.p.cell(s) {
            let mut next = state.clone();
            next.p.individualize(atom);
            self.refine(&mut next, labels);
            let done = self.break_ties(next, labels, budget);
            let key = self.part_key(done.p.positions());
            if best.as_ref().is_none_or(|(b, _)| key < *b) {
                best = Some((key, done));
            }
        }
        best.map_or_else(|| state.clone(), |(_, done)| done)
    }

    /// Each bond's label for refinement: the graph key's order code (single, aromatic,
    /// double, …) times two, plus one when the bond is written `/` or `\`.
    pub(super) fn bond_labels(&self) -> Vec<u8> {
        (0..self.bonds.len()).map(|b| self.bond_label(b)).collect()
    }

    /// The label of bond `bond` (see [`Molecule::bond_labels`]).
    fn bond_label(&self, bond: usize) -> u8 {
        let directional = self.bonds[bond].symbol.is_some_and(is_directional);
        self.key_order(bond) * 2 + u8::from(directional)
    }

    /// Whether atom `atom` has an `@`/`@@` that means nothing: two of its neighbours are end
    /// atoms (one bond each, no mark of their own) alike in text, hydrogens and bond, so
    /// that swapping them changes nothing but the mark (`C[C@H](C)O`, `F[C@](F)(F)C`).
    /// Such a centre is no stereo element, and the canonical writer writes it `@`.
    pub(crate) fn idle_centre(&self, atom: usize) -> bool {
        let shorthand = self.atoms[atom]
            .chirality
            .is_some_and(Chirality::is_tetrahedral_shorthand);
        if !shorthand {
            return false;
        }
        let mut ends: Vec<(String, u8, u8)> = self
            .atom_bonds(atom)
            .iter()
            .filter_map(|&b| {
                let x = self.bonds[b].other(atom);
                let end = self.atom_bonds(x).len() == 1 && self.atoms[x].chirality.is_none();
                end.then(|| {
                    (
                        self.atom_text(x).to_string(),
                        self.hydrogen_count(x),
                        self.bond_label(b),
                    )
                })
            })
            .collect();
        ends.sort_unstable();
        ends.windows(2).any(|w| w[0] == w[1])
    }

    /// The text of atom `atom` without its `@`/`@@` (which the writer recomputes); extended
    /// chirality marks stay.
    pub(super) fn text_without_mark(&self, atom: usize) -> String {
        let a = &self.atoms[atom];
        let text = self.atom_text(atom);
        let len = match a.chirality {
            Some(Chirality::Anticlockwise) => 1,
            Some(Chirality::Clockwise) => 2,
            _ => return text.to_string(),
        };
        let at = a.chirality_at - a.start;
        format!("{}{}", &text[..at], &text[at + len..])
    }

    /// The starting invariant of atom `atom`.
    fn atom_invariant(&self, atom: usize) -> AtomInvariant<'_> {
        let a = &self.atoms[atom];
        (
            self.atom_bonds(atom).len(),
            a.symbol,
            a.aromatic,
            a.isotope,
            a.charge,
            self.hydrogen_count(atom),
            self.text_without_mark(atom),
        )
    }

    /// The `@`/`@@` centres and the double bonds with a `/` or `\` at both ends, all open.
    fn stereo_elements(&self) -> Stereo {
        let centres: Vec<usize> = (0..self.atoms.len())
            .filter(|&a| {
                let shorthand = self.atoms[a]
                    .chirality
                    .is_some_and(Chirality::is_tetrahedral_shorthand);
                shorthand && !self.idle_centre(a)
            })
            .collect();
        let marked = |atom: usize, double: usize| {
            self.atom_bonds(atom)
                .iter()
                .any(|&k| k != double && self.bonds[k].symbol.is_some_and(is_directional))
        };
        let doubles: Vec<usize> = (0..self.bonds.len())
            .filter(|&k| {
                let b = &self.bonds[k];
                b.symbol == Some('=') && marked(b.from, k) && marked(b.to, k)
            })
            .collect();
        let mut atoms = centres.clone();
        atoms.extend(
            doubles
                .iter()
                .flat_map(|&k| [self.bonds[k].from, self.bonds[k].to]),
        );
        atoms.sort_unstable();
        atoms.dedup();
        Stereo {
            signs: vec![(0, 0, 0); atoms.len()],
            atoms,
            open_centres: centres,
            open_doubles: doubles,
        }
    }

    /// Refines until no class splits, by neighbours and then by stereo signs.
    fn refine(&self, state: &mut State, labels: &[u8]) {
        loop {
            state.p.refine(self, labels);
            if !self.split_by_stereo(state) {
                return;
            }
        }
    }

    /// Settles the open stereo signs the classes now determine and splits classes by them
    /// (the atoms whose sign did not change first); whether any class split. A class holds
    /// atoms of one sign before, so only the atoms whose sign changed can split it.
    fn split_by_stereo(&self, state: &mut State) -> bool {
        let changed = self.settle_signs(&mut state.stereo, state.p.classes());
        let classes = state.p.classes();
        let mut touched: Vec<(usize, StereoSign, usize)> = changed
            .iter()
            .map(|&i| {
                let a = state.stereo.atoms[i];
                (classes[a], state.stereo.signs[i], a)
            })
            .collect();
        touched.sort_unstable();
        let mut split = false;
        let mut i = 0;
        while i < touched.len() {
            let c = touched[i].0;
            let j = i + touched[i..].iter().take_while(|t| t.0 == c).count();
            let uniform = state.p.cell_size(c) == j - i && touched[i].1 == touched[j - 1].1;
            if !uniform {
                let keyed: Vec<(StereoSign, usize)> = touched[i..j]
                    .iter()
                    .map(|&(_, sign, a)| (sign, a))
                    .collect();
                state.p.split(c, &keyed);
                split = true;
            }
            i = j;
        }
        split
    }

    /// Settles the open centres and double bonds whose sign `classes` determine; the
    /// indices (in `stereo.atoms`) of the atoms whose sign changed.
    fn settle_signs(&self, stereo: &mut Stereo, classes: &[usize]) -> Vec<usize> {
        let mut settled: Vec<(usize, u8)> = Vec::new();
        stereo.open_centres.retain(|&a| {
            let sign = self.tetrahedral_sign(a, classes);
            if sign != 0 {
                settled.push((a, sign));
            }
            sign == 0
        });
        let mut changed = Vec::new();
        for (a, sign) in settled {
            let i = stereo.index(a);
            stereo.signs[i].0 = sign;
            changed.push(i);
        }
        let mut settled: Vec<(usize, u8)> = Vec::new();
        stereo.open_doubles.retain(|&k| {
            let code = self.double_bond_sign(k, classes);
            if code != 0 {
                settled.push((k, code));
            }
            code == 0
        });
        for (k, code) in settled {
            for atom in [self.bonds[k].from, self.bonds[k].to] {
                let i = stereo.index(atom);
                if code == 1 {
                    stereo.signs[i].1 += 1;
                } else {
                    stereo.signs[i].2 += 1;
                }
                changed.push(i);
            }
        }
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// Cis (1) or trans (2) of the lowest-class substituents across the double bond
    /// `double` under `classes`, or 0 when not determined.
    pub(super) fn double_bond_sign(&self, double: usize, classes: &[usize]) -> u8 {
        let b = &self.bonds[double];
        let from = self.reference_side(b.from, double, classes);
        let to = self.reference_side(b.to, double, classes);
        match (from, to) {
            (Some(x), Some(y)) => 1 + u8::from(x != y),
            _ => 0,
        }
    }

    /// The sign of an `@`/`@@` centre with neighbours listed by class (its hydrogen first):
    /// 1 for `@`, 2 for `@@`, or 0 when it has no such mark or two neighbours share a class.
    pub(super) fn tetrahedral_sign(&self, atom: usize, classes: &[usize]) -> u8 {
        let Some(chirality) = self.atoms[atom].chirality else {
            return 0;
        };
        if !chirality.is_tetrahedral_shorthand() {
            return 0;
        }
        let key = |s: &Slot| match *s {
            Slot::H => 0,
            Slot::Bond(b) => 1 + classes[self.bonds[b].other(atom)],
        };
        let written = self.written_slots(atom);
        let mut sorted = written.clone();
        sorted.sort_by_key(key);
        if sorted.windows(2).any(|w| key(&w[0]) == key(&w[1])) {
            return 0;
        }
        let clockwise = chirality == Chirality::Clockwise;
        1 + u8::from(clockwise ^ odd_permutation(&written, &sorted))
    }

    /// The side (true: up) of the lowest-class substituent of `atom` across the double bond
    /// `double`, from the `/`, `\` marks: its own, or the opposite of another substituent's.
    /// `None` when unmarked or when two substituents share the lowest class.
    fn reference_side(&self, atom: usize, double: usize, classes: &[usize]) -> Option<bool> {
        let class_of = |k: usize| classes[self.bonds[k].other(atom)];
        let others: Vec<usize> = self
            .atom_bonds(atom)
            .iter()
            .copied()
            .filter(|&k| k != double)
            .collect();
        let lowest = *others.iter().min_by_key(|&&k| class_of(k))?;
        if others
            .iter()
            .filter(|&&k| class_of(k) == class_of(lowest))
            .count()
            > 1
        {
            return None;
        }
        if let Some(side) = self.bond_side(atom, lowest) {
            return Some(side);
        }
        others
            .iter()
            .filter(|&&k| k != lowest)
            .find_map(|&k| self.bond_side(atom, k))
            .map(|side| !side)
    }

    /// Whether the other atom of bond `bond` lies above `atom` (`A/B`: B above A), or `None`
    /// when the bond has no `/` or `\`.
    fn bond_side(&self, atom: usize, bond: usize) -> Option<bool> {
        let b = &self.bonds[bond];
        let symbol = b.symbol.filter(|&c| is_directional(c))?;
        Some((symbol == '/') == (b.from == atom))
    }
}
