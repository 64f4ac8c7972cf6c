//! Canonical atom ranks: a numbering of the atoms that does not depend on how the molecule
//! was written, for the canonical writer ([`Molecule::canonical_smiles`]).
//!
//! Weininger/Morgan-style refinement: atoms start in classes of equal invariants (heavy
//! degree, element, aromatic flag, isotope, charge, hydrogen count, and the atom's text
//! without its chirality mark, so that atoms written differently never tie); each round
//! splits classes by the sorted list of (bond label, neighbour class), where the bond label
//! is the graph key's bond order plus whether the bond carries `/` or `\`. All comparisons
//! sort values, never hashes. When rounds stop splitting, stereo splits further: the sign of
//! each `@`/`@@` centre relative to its neighbours' classes, and cis/trans of each marked
//! double bond relative to the lowest-class substituents (both only where those classes are
//! distinct). Remaining ties are broken one at a time: one atom of the lowest tied class is
//! promoted ahead of the others and refinement runs again, until all ranks differ. With
//! stereo marks in the molecule, each candidate of the tied class is tried and the one whose
//! stereo signs come out smallest is kept, so that mirror-related choices (the two ring
//! sides of `C[C@H]1CC[C@@H](C)CC1`) do not depend on atom order either.
//!
//! Limits: refinement cannot tell apart some non-equivalent atoms of highly regular graphs
//! (then the tie-break is by atom order and the writing may depend on the input); the stereo
//! tie-break is greedy, one tied class at a time.

use super::reader::is_directional;
use super::write::{odd_permutation, Slot};
use super::{Chirality, Molecule};

/// The stereo invariant of an atom: its tetrahedral sign (0 none, 1 or 2), and how many of
/// its double bonds are cis and trans.
type StereoSign = (u8, u8, u8);

/// Dense ranks of `keys`: equal keys share a rank, ranks run 0.. in key order.
fn dense_ranks<K: Ord>(keys: &[K]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let mut ranks = vec![0; keys.len()];
    let mut rank = 0;
    for (k, &i) in order.iter().enumerate() {
        if k > 0 && keys[order[k - 1]] != keys[i] {
            rank += 1;
        }
        ranks[i] = rank;
    }
    ranks
}

/// The number of distinct classes in dense ranks.
fn class_count(classes: &[usize]) -> usize {
    classes.iter().max().map_or(0, |&c| c + 1)
}

/// The lowest class held by more than one atom, if any.
fn lowest_tied(classes: &[usize]) -> Option<usize> {
    let mut counts = vec![0usize; class_count(classes)];
    for &c in classes {
        counts[c] += 1;
    }
    counts.iter().position(|&n| n > 1)
}

/// `classes` with `atom` moved ahead of the other atoms of its class.
fn promote(classes: &[usize], atom: usize) -> Vec<usize> {
    let keys: Vec<(usize, bool)> = classes
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i != atom))
        .collect();
    dense_ranks(&keys)
}

/// The invariant an atom starts from; compared as a tuple, field by field.
type AtomInvariant<'a> = (usize, &'a str, bool, Option<u16>, i8, u8, String);

impl Molecule {
    /// Canonical ranks of the atoms: `ranks[atom]` is a number in `0..atoms().len()`, all
    /// different, that does not depend on atom order, branch layout or ring numbers of the
    /// SMILES (see the `canon` module documentation for the method and its limits). Two
    /// writings of one molecule (same atoms texts, bonds and stereo) give ranks that put
    /// corresponding atoms in the same places.
    pub fn canonical_ranks(&self) -> Vec<usize> {
        let labels = self.bond_labels();
        let stereo = self.has_stereo_marks();
        let initial = self.initial_classes();
        let mut classes = self.refine(initial, &labels, stereo);
        while let Some(tied) = lowest_tied(&classes) {
            let candidates: Vec<usize> =
                (0..classes.len()).filter(|&a| classes[a] == tied).collect();
            classes = if stereo {
                self.best_promotion(&classes, &candidates, &labels)
            } else {
                self.refine(promote(&classes, candidates[0]), &labels, false)
            };
        }
        classes
    }

    /// Each bond's label for refinement: the graph key's order code (single, aromatic,
    /// double, …) times two, plus one when the bond is written `/` or `\`.
    fn bond_labels(&self) -> Vec<u8> {
        (0..self.bonds.len())
            .map(|b| {
                let directional = self.bonds[b].symbol.is_some_and(is_directional);
                self.key_order(b) * 2 + u8::from(directional)
            })
            .collect()
    }

    /// Whether any atom has a chirality mark or any bond a `/` or `\`.
    fn has_stereo_marks(&self) -> bool {
        self.atoms.iter().any(|a| a.chirality.is_some())
            || self
                .bonds
                .iter()
                .any(|b| b.symbol.is_some_and(is_directional))
    }

    /// The text of atom `atom` without its `@`/`@@` (which the writer recomputes); extended
    /// chirality marks stay.
    fn text_without_mark(&self, atom: usize) -> String {
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

    /// The classes of equal starting invariants.
    fn initial_classes(&self) -> Vec<usize> {
        let keys: Vec<AtomInvariant<'_>> = (0..self.atoms.len())
            .map(|a| self.atom_invariant(a))
            .collect();
        dense_ranks(&keys)
    }

    /// Refines `classes` until no class splits: by neighbours, then (with `stereo`) by the
    /// stereo signs, again and again.
    fn refine(&self, mut classes: Vec<usize>, labels: &[u8], stereo: bool) -> Vec<usize> {
        loop {
            let before = class_count(&classes);
            classes = self.refine_by_neighbours(classes, labels);
            if stereo {
                let signs = self.stereo_signs(&classes);
                let keys: Vec<(usize, StereoSign)> = classes.iter().copied().zip(signs).collect();
                classes = dense_ranks(&keys);
            }
            if class_count(&classes) == before {
                return classes;
            }
        }
    }

    /// Splits classes by the sorted (bond label, neighbour class) lists until they stop
    /// splitting.
    fn refine_by_neighbours(&self, mut classes: Vec<usize>, labels: &[u8]) -> Vec<usize> {
        loop {
            let before = class_count(&classes);
            let keys: Vec<(usize, Vec<(u8, usize)>)> = (0..classes.len())
                .map(|a| {
                    let mut around: Vec<(u8, usize)> = self
                        .atom_bonds(a)
                        .iter()
                        .map(|&b| (labels[b], classes[self.bonds[b].other(a)]))
                        .collect();
                    around.sort_unstable();
                    (classes[a], around)
                })
                .collect();
            classes = dense_ranks(&keys);
            if class_count(&classes) == before {
                return classes;
            }
        }
    }

    /// Of the atoms `candidates` (one tied class), the promotion whose refined classes give
    /// the smallest stereo signature; the first such candidate on a tie.
    fn best_promotion(&self, classes: &[usize], candidates: &[usize], labels: &[u8]) -> Vec<usize> {
        let mut best: Option<(Vec<(usize, StereoSign)>, Vec<usize>)> = None;
        for &atom in candidates {
            let refined = self.refine(promote(classes, atom), labels, true);
            let mut signature: Vec<(usize, StereoSign)> = refined
                .iter()
                .copied()
                .zip(self.stereo_signs(&refined))
                .collect();
            signature.sort_unstable();
            if best.as_ref().is_none_or(|(s, _)| signature < *s) {
                best = Some((signature, refined));
            }
        }
        best.map(|(_, c)| c).unwrap_or_else(|| classes.to_vec())
    }

    /// The stereo invariant of every atom under `classes`.
    fn stereo_signs(&self, classes: &[usize]) -> Vec<StereoSign> {
        let mut signs: Vec<StereoSign> = (0..self.atoms.len())
            .map(|a| (self.tetrahedral_sign(a, classes), 0, 0))
            .collect();
        for (k, b) in self.bonds.iter().enumerate() {
            if b.symbol != Some('=') {
                continue;
            }
            let (from, to) = (
                self.reference_side(b.from, k, classes),
                self.reference_side(b.to, k, classes),
            );
            if let (Some(x), Some(y)) = (from, to) {
                for atom in [b.from, b.to] {
                    if x == y {
                        signs[atom].1 += 1;
                    } else {
                        signs[atom].2 += 1;
                    }
                }
            }
        }
        signs
    }

    /// The sign of an `@`/`@@` centre with neighbours listed by class (its hydrogen first):
    /// 1 for `@`, 2 for `@@`, or 0 when it has no such mark or two neighbours share a class.
    fn tetrahedral_sign(&self, atom: usize, classes: &[usize]) -> u8 {
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
