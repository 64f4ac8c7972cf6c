//! Random SMILES of the same molecule ("SMILES enumeration"), for training-time augmentation.
//!
//! A SMILES is parsed into its atoms (kept as written: `C`, `Cl`, `c`, `[nH]`, `[C@@H]`) and
//! bonds (kept as written: none, `-`, `=`, `#`, `$`, `:`, `/`, `\`), and written again by a
//! depth-first walk from a random atom that visits neighbours in random order. The result
//! is the same molecule for any SMILES reader:
//! - implicit bonds stay implicit, so aromatic-aromatic and single bonds keep their meaning;
//! - tetrahedral centres (`@`, `@@`) are flipped when the new neighbour order is an odd
//!   permutation of the written one (the implicit hydrogen of `[C@H]` counted as OpenSMILES
//!   says: right after the preceding atom, or first);
//! - `/` and `\` on chain bonds are flipped when the bond is written in the other direction.
//!
//! Molecules this writer does not handle are left as they are ([`MolGraph::parse`] returns
//! `None`): directional bonds on ring closures, extended chirality (`@TH1`, `@SP2`, …),
//! and anything the small parser does not understand.

use crate::error::Result;
use crate::rng::SplitMix64;
use crate::tokenizer::SmilesTokenizer;
use std::collections::HashMap;

/// A neighbour slot of an atom, in the order the SMILES lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The bond with this index.
    Bond(usize),
    /// The implicit hydrogen of a bracket atom such as `[C@H]`.
    H,
}

/// Tetrahedral chirality as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chirality {
    /// `@`: the neighbours after the first are anticlockwise.
    Anticlockwise,
    /// `@@`: clockwise.
    Clockwise,
}

#[derive(Debug, Clone)]
struct Atom {
    /// The text before the chirality mark (the whole token when there is none).
    head: String,
    /// The text after the chirality mark (empty when there is none).
    tail: String,
    chirality: Option<Chirality>,
    /// A bracket hydrogen directly after the chirality mark (`[C@H]`).
    chiral_h: bool,
    /// Neighbour slots in written order.
    slots: Vec<Slot>,
}

#[derive(Debug, Clone)]
struct Bond {
    /// The atom written first.
    from: usize,
    /// The atom written second.
    to: usize,
    /// The bond symbol, if one was written.
    symbol: Option<char>,
}

/// A SMILES as atoms and bonds, ready to be written again in random atom orders.
#[derive(Debug, Clone)]
pub struct MolGraph {
    atoms: Vec<Atom>,
    bonds: Vec<Bond>,
    /// Bond indices of each atom.
    adjacent: Vec<Vec<usize>>,
}

fn is_directional(symbol: Option<char>) -> bool {
    matches!(symbol, Some('/') | Some('\\'))
}

/// Splits a bracket atom's inner text around its chirality mark.
fn bracket_atom(inner: &str) -> Option<Atom> {
    let token = format!("[{inner}]");
    let Some(at) = inner.find('@') else {
        return Some(Atom {
            head: token,
            tail: String::new(),
            chirality: None,
            chiral_h: false,
            slots: vec![],
        });
    };
    let (chirality, len) = if inner[at..].starts_with("@@") {
        (Chirality::Clockwise, 2)
    } else {
        (Chirality::Anticlockwise, 1)
    };
    let rest = &inner[at + len..];
    if rest.starts_with(|c: char| c.is_ascii_uppercase() && c != 'H') {
        return None; // @TH1, @AL1, @SP1, @TB1, @OH1: not handled
    }
    Some(Atom {
        head: format!("[{}", &inner[..at]),
        tail: format!("{rest}]"),
        chirality: Some(chirality),
        chiral_h: rest.starts_with('H') && !rest.starts_with("H0"),
        slots: vec![],
    })
}

impl MolGraph {
    /// Parses a SMILES; `None` when it uses something the writer cannot reproduce faithfully
    /// (see the module documentation) or is not valid.
    pub fn parse(smiles: &str) -> Option<MolGraph> {
        let b = smiles.as_bytes();
        let mut g = MolGraph {
            atoms: vec![],
            bonds: vec![],
            adjacent: vec![],
        };
        let mut stack: Vec<Option<usize>> = vec![];
        let mut prev: Option<usize> = None;
        let mut pending: Option<char> = None;
        // Open ring closures: number → (atom, slot index in that atom, bond symbol).
        let mut open: HashMap<u32, (usize, usize, Option<char>)> = HashMap::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i] as char;
            let atom = match c {
                '(' => {
                    stack.push(prev);
                    prev?;
                    i += 1;
                    continue;
                }
                ')' => {
                    prev = stack.pop()?;
                    i += 1;
                    continue;
                }
                '.' => {
                    if pending.is_some() || !stack.is_empty() {
                        return None;
                    }
                    prev = None;
                    i += 1;
                    continue;
                }
                '-' | '=' | '#' | '$' | ':' | '/' | '\\' => {
                    if pending.is_some() {
                        return None;
                    }
                    pending = Some(c);
                    i += 1;
                    continue;
                }
                '0'..='9' | '%' => {
                    let (number, len) = if c == '%' {
                        let digits = smiles.get(i + 1..i + 3)?;
                        if !digits.bytes().all(|d| d.is_ascii_digit()) {
                            return None;
                        }
                        (digits.parse().ok()?, 3)
                    } else {
                        (c as u32 - '0' as u32, 1)
                    };
                    let here = prev?;
                    let symbol = pending.take();
                    if is_directional(symbol) {
                        return None;
                    }
                    match open.remove(&number) {
                        Some((other, slot, other_symbol)) => {
                            if other == here || is_directional(other_symbol) {
                                return None;
                            }
                            let symbol = match (symbol, other_symbol) {
                                (Some(x), Some(y)) if x != y => return None,
                                (x, y) => x.or(y),
                            };
                            let bond = g.bonds.len();
                            g.bonds.push(Bond {
                                from: other,
                                to: here,
                                symbol,
                            });
                            g.adjacent[other].push(bond);
                            g.adjacent[here].push(bond);
                            g.atoms[other].slots[slot] = Slot::Bond(bond);
                            g.atoms[here].slots.push(Slot::Bond(bond));
                        }
                        None => {
                            let slot = g.atoms[here].slots.len();
                            // A placeholder until the ring closes.
                            g.atoms[here].slots.push(Slot::H);
                            open.insert(number, (here, slot, symbol));
                        }
                    }
                    i += len;
                    continue;
                }
                '[' => {
                    let end = i + smiles[i..].find(']')?;
                    let atom = bracket_atom(&smiles[i + 1..end])?;
                    i = end + 1;
                    atom
                }
                _ => {
                    let two = smiles.get(i..i + 2);
                    let len = if matches!(two, Some("Cl") | Some("Br")) {
                        2
                    } else if "BCNOPSFIbcnops*".contains(c) {
                        1
                    } else {
                        return None;
                    };
                    let token = smiles[i..i + len].to_string();
                    i += len;
                    Atom {
                        head: token,
                        tail: String::new(),
                        chirality: None,
                        chiral_h: false,
                        slots: vec![],
                    }
                }
            };
            let index = g.atoms.len();
            g.atoms.push(atom);
            g.adjacent.push(vec![]);
            if let Some(p) = prev {
                let bond = g.bonds.len();
                g.bonds.push(Bond {
                    from: p,
                    to: index,
                    symbol: pending.take(),
                });
                g.adjacent[p].push(bond);
                g.adjacent[index].push(bond);
                g.atoms[p].slots.push(Slot::Bond(bond));
                g.atoms[index].slots.push(Slot::Bond(bond));
            } else if pending.is_some() {
                return None;
            }
            if g.atoms[index].chiral_h {
                g.atoms[index].slots.push(Slot::H);
            }
            prev = Some(index);
        }
        if !open.is_empty() || !stack.is_empty() || pending.is_some() || g.atoms.is_empty() {
            return None;
        }
        Some(g)
    }

    /// Number of atoms (bracket hydrogens excluded).
    pub fn atom_count(&self) -> usize {
        self.atoms.len()
    }

    fn other_end(&self, bond: usize, atom: usize) -> usize {
        let b = &self.bonds[bond];
        if b.from == atom {
            b.to
        } else {
            b.from
        }
    }

    /// A SMILES of the same molecule starting at a random atom, with neighbours visited in
    /// random order (disconnected parts in random order too).
    pub fn random_smiles(&self, rng: &mut SplitMix64) -> String {
        let n = self.atoms.len();
        let mut walk = Walk {
            g: self,
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
        let mut out = String::new();
        let mut numbers = RingNumbers::default();
        for (k, &root) in roots.iter().enumerate() {
            if k > 0 {
                out.push('.');
            }
            walk.write(root, &mut numbers, &mut out);
        }
        out
    }
}

/// Ring-closure numbers in use while writing.
#[derive(Default)]
struct RingNumbers {
    in_use: Vec<bool>,
    of_bond: HashMap<usize, usize>,
}

impl RingNumbers {
    fn open(&mut self, bond: usize) -> usize {
        let k = match self.in_use.iter().skip(1).position(|u| !u) {
            Some(p) => p + 1,
            None => {
                self.in_use.resize(self.in_use.len().max(1), false);
                self.in_use.push(false);
                self.in_use.len() - 1
            }
        };
        self.in_use[k] = true;
        self.of_bond.insert(bond, k);
        k
    }

    fn close(&mut self, bond: usize) -> usize {
        let k = self
            .of_bond
            .remove(&bond)
            .expect("ring bond opened before closing");
        self.in_use[k] = false;
        k
    }
}

fn ring_label(k: usize) -> String {
    if k < 10 {
        k.to_string()
    } else {
        format!("%{k:02}")
    }
}

/// Parity of the permutation taking `from` to `to` (same elements): true when odd.
fn odd_permutation(from: &[Slot], to: &[Slot]) -> bool {
    let index: Vec<usize> = to
        .iter()
        .map(|s| from.iter().position(|f| f == s).expect("same neighbours"))
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
    g: &'a MolGraph,
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
            let mut bonds = w.g.adjacent[atom].clone();
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
            let other = self.g.other_end(bond, atom);
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

    fn bond_symbol(&self, bond: usize, written_from: usize) -> Option<char> {
        let b = &self.g.bonds[bond];
        match b.symbol {
            Some('/') if b.from != written_from => Some('\\'),
            Some('\\') if b.from != written_from => Some('/'),
            s => s,
        }
    }

    fn atom_text(&self, atom: usize) -> String {
        let a = &self.g.atoms[atom];
        let Some(chirality) = a.chirality else {
            return a.head.clone();
        };
        // The neighbour order this writing gives, in OpenSMILES' counting.
        let mut slots = vec![];
        if let Some(p) = self.parent_bond[atom] {
            slots.push(Slot::Bond(p));
        }
        if a.chiral_h {
            slots.push(Slot::H);
        }
        slots.extend(self.closes[atom].iter().map(|&b| Slot::Bond(b)));
        slots.extend(self.opens[atom].iter().map(|&b| Slot::Bond(b)));
        slots.extend(self.children[atom].iter().map(|&b| Slot::Bond(b)));
        let flip = odd_permutation(&a.slots, &slots);
        let mark = match (chirality, flip) {
            (Chirality::Anticlockwise, false) | (Chirality::Clockwise, true) => "@",
            _ => "@@",
        };
        format!("{}{mark}{}", a.head, a.tail)
    }

    fn write(&self, root: usize, numbers: &mut RingNumbers, out: &mut String) {
        enum Item {
            Atom(usize),
            Text(&'static str),
        }
        let mut todo = vec![Item::Atom(root)];
        while let Some(item) = todo.pop() {
            let atom = match item {
                Item::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Item::Atom(a) => a,
            };
            if let Some(p) = self.parent_bond[atom] {
                let from = self.g.other_end(p, atom);
                if let Some(s) = self.bond_symbol(p, from) {
                    out.push(s);
                }
            }
            out.push_str(&self.atom_text(atom));
            for &bond in &self.closes[atom] {
                out.push_str(&ring_label(numbers.close(bond)));
            }
            for &bond in &self.opens[atom] {
                if let Some(s) = self.bond_symbol(bond, atom) {
                    out.push(s);
                }
                out.push_str(&ring_label(numbers.open(bond)));
            }
            // Children: all but the last in parentheses; pushed in reverse for the stack.
            let kids = &self.children[atom];
            for (k, &bond) in kids.iter().enumerate().rev() {
                let child = self.g.other_end(bond, atom);
                if k + 1 == kids.len() {
                    todo.push(Item::Atom(child));
                } else {
                    todo.push(Item::Text(")"));
                    todo.push(Item::Atom(child));
                    todo.push(Item::Text("("));
                }
            }
        }
    }
}

/// A random SMILES of `smiles`' molecule, or `None` when [`MolGraph::parse`] declines it.
pub fn randomize(smiles: &str, rng: &mut SplitMix64) -> Option<String> {
    MolGraph::parse(smiles).map(|g| g.random_smiles(rng))
}

/// The seed of test-time augmentation's random SMILES, wherever a model predicts.
pub const TTA_SEED: u64 = 0;

/// Test-time augmentation's inputs: `smiles` itself, then `k` random SMILES of its molecule
/// (none when the writer declines it). The random SMILES depend only on `seed` and the
/// SMILES, so a molecule gets the same variants whatever else is predicted with it.
pub fn variants(smiles: &str, k: usize, seed: u64) -> Vec<String> {
    let mut out = vec![smiles.to_string()];
    if k > 0 {
        if let Some(g) = MolGraph::parse(smiles) {
            let mut rng = SplitMix64::derive(seed, &format!("tta {smiles}"));
            out.extend((0..k).map(|_| g.random_smiles(&mut rng)));
        }
    }
    out
}

/// Test-time augmentation's encoded inputs: for each SMILES its own token ids (it must
/// encode), then those of its `k` random SMILES ([`variants`] with [`TTA_SEED`]) that encode
/// without unknown tokens. `owner[j]` is the index of the SMILES that row `j` belongs to.
pub fn encoded_variants<S: AsRef<str>>(
    smiles: &[S],
    k: usize,
    tokenizer: &SmilesTokenizer,
) -> Result<(Vec<Vec<u32>>, Vec<usize>)> {
    let mut seqs = Vec::new();
    let mut owner = Vec::new();
    for (i, s) in smiles.iter().enumerate() {
        let s = s.as_ref();
        seqs.push(tokenizer.encode(s)?);
        owner.push(i);
        for v in variants(s, k, TTA_SEED).into_iter().skip(1) {
            if let Ok(ids) = tokenizer.encode(&v) {
                if !ids.contains(&tokenizer.unk_id()) {
                    seqs.push(ids);
                    owner.push(i);
                }
            }
        }
    }
    Ok((seqs, owner))
}

/// The mean of `values` per owner (`0..n`), as [`encoded_variants`] groups them.
pub fn mean_by_owner(values: &[f64], owner: &[usize], n: usize) -> Vec<f64> {
    let mut sum = vec![0.0; n];
    let mut count = vec![0usize; n];
    for (&v, &i) in values.iter().zip(owner) {
        sum[i] += v;
        count[i] += 1;
    }
    sum.iter().zip(&count).map(|(s, &c)| s / c as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::graph_key;

    const MOLECULES: &[&str] = &[
        "CCO",
        "c1ccccc1O",
        "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
        "COc1cc(OC)c(cc1NC(=O)CSCC(=O)O)S(=O)(=O)N2C(C)CCc3ccccc23",
        "O=C(Nc1ccc2[nH]ncc2c1)C1CC1",
        "C[C@H](N)C(=O)O",
        "F/C=C/F",
        "C1CC2CCC1CC2",
        "[O-][N+](=O)c1ccccc1.Cl",
        "C12C3C4C1C5C2C3C45",
    ];

    #[test]
    fn random_smiles_are_the_same_graph() {
        let mut rng = SplitMix64::new(7);
        for smiles in MOLECULES {
            let g = MolGraph::parse(smiles).unwrap_or_else(|| panic!("{smiles} parses"));
            let key = graph_key(smiles).expect("key");
            let mut seen = std::collections::HashSet::new();
            for _ in 0..50 {
                let r = g.random_smiles(&mut rng);
                assert_eq!(graph_key(&r), Some(key), "{smiles} → {r}");
                seen.insert(r);
            }
            if g.atom_count() > 3 {
                assert!(seen.len() > 3, "{smiles}: only {seen:?}");
            }
        }
    }

    /// The chirality of `[C@@H](F)(Cl)Br`-style centres as a canonical sign: the parity of
    /// the written neighbour order (by atom text) combined with the mark.
    fn centre_sign(smiles: &str) -> bool {
        let g = MolGraph::parse(smiles).expect("parses");
        let (i, a) = g
            .atoms
            .iter()
            .enumerate()
            .find(|(_, a)| a.chirality.is_some())
            .expect("a chiral atom");
        let names: Vec<String> = a
            .slots
            .iter()
            .map(|s| match s {
                Slot::H => "H".to_string(),
                Slot::Bond(b) => g.atoms[g.other_end(*b, i)].head.clone(),
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        let as_slots = |v: &[String]| -> Vec<Slot> {
            v.iter()
                .map(|n| Slot::Bond(names.iter().position(|m| m == n).unwrap()))
                .collect()
        };
        let odd = odd_permutation(&as_slots(&names), &as_slots(&sorted));
        (a.chirality == Some(Chirality::Clockwise)) ^ odd
    }

    #[test]
    fn tetrahedral_centres_keep_their_handedness() {
        let mut rng = SplitMix64::new(11);
        for smiles in [
            "[C@@H](F)(Cl)Br",
            "F[C@](Cl)(Br)I",
            "Br[C@H]1CCO1",
            "N[C@@](C)(O)S",
        ] {
            let want = centre_sign(smiles);
            let g = MolGraph::parse(smiles).unwrap();
            for _ in 0..40 {
                let r = g.random_smiles(&mut rng);
                if smiles.contains('1') {
                    // Ring neighbours share a name; only check the graph.
                    assert_eq!(graph_key(&r), graph_key(smiles), "{r}");
                } else {
                    assert_eq!(centre_sign(&r), want, "{smiles} → {r}");
                }
            }
        }
        // The two enantiomers stay apart.
        assert_ne!(
            centre_sign("F[C@](Cl)(Br)I"),
            centre_sign("F[C@@](Cl)(Br)I")
        );
        assert_eq!(
            centre_sign("F[C@](Cl)(Br)I"),
            centre_sign("Cl[C@@](F)(Br)I")
        );
    }

    /// Whether `F` and `Cl` are on opposite sides of the double bond of a `F/C=C/Cl`-style
    /// SMILES: `A/B` puts B above A, `A\\B` below.
    fn trans(smiles: &str) -> bool {
        let g = MolGraph::parse(smiles).expect("parses");
        let double = g.bonds.iter().find(|b| b.symbol == Some('=')).expect("C=C");
        let up = |name: &str| -> bool {
            let b = g
                .bonds
                .iter()
                .find(|b| g.atoms[b.from].head == name || g.atoms[b.to].head == name)
                .expect("substituent");
            let carbon_first = b.from == double.from || b.from == double.to;
            (b.symbol == Some('/')) == carbon_first
        };
        up("F") != up("Cl")
    }

    #[test]
    fn double_bond_marks_follow_the_writing_direction() {
        assert!(trans("F/C=C/Cl"));
        assert!(trans("C(\\F)=C/Cl"));
        assert!(!trans("F/C=C\\Cl"));
        assert!(!trans("C(/F)=C/Cl"));
        let mut rng = SplitMix64::new(3);
        for smiles in ["F/C=C/Cl", "F/C=C\\Cl", "Cl\\C=C/F"] {
            let want = trans(smiles);
            let g = MolGraph::parse(smiles).unwrap();
            let mut seen = std::collections::HashSet::new();
            for _ in 0..40 {
                let r = g.random_smiles(&mut rng);
                assert_eq!(trans(&r), want, "{smiles} → {r}");
                seen.insert(r);
            }
            assert!(seen.len() >= 4, "{seen:?}");
        }
    }

    #[test]
    fn variants_start_with_the_smiles_and_repeat() {
        let v = variants("CC(=O)Nc1ccc(O)cc1", 4, 0);
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], "CC(=O)Nc1ccc(O)cc1");
        assert_eq!(v, variants("CC(=O)Nc1ccc(O)cc1", 4, 0));
        assert_ne!(v, variants("CC(=O)Nc1ccc(O)cc1", 4, 1));
        assert_eq!(
            variants("C/1=C/CCCCC1", 4, 0),
            vec!["C/1=C/CCCCC1".to_string()]
        );
        assert_eq!(variants("CCO", 0, 0).len(), 1);
    }

    #[test]
    fn declines_what_it_cannot_rewrite() {
        assert!(MolGraph::parse("C/1=C/CCCCC1").is_none());
        assert!(MolGraph::parse("F[C@TH1](Cl)(Br)I").is_none());
        assert!(MolGraph::parse("C1CC").is_none());
        assert!(MolGraph::parse("C(C").is_none());
        assert!(MolGraph::parse("Xx").is_none());
        assert!(MolGraph::parse("").is_none());
    }
}
