//! TEMPORARY: the writer before the refactor, to check byte-identical output.
#![allow(dead_code, missing_docs)]
use super::super::write::Slot;
use super::super::*;
use crate::rng::SplitMix64;

fn chiral_h(m: &Molecule, atom: usize) -> bool {
    let a = &m.atoms[atom];
    a.chirality.is_some() && a.hydrogens.unwrap_or(0) > 0
}

pub(crate) fn old_random_smiles(m: &Molecule, rng: &mut SplitMix64) -> Option<String> {
    let self_ = m;
    if !self_.randomizable() {
        return None;
    }
    let n = self_.atoms.len();
    let mut walk = Walk {
        m: self_,
        visited: vec![false; n],
        parent_bond: vec![None; n],
        children: vec![vec![]; n],
        closes: vec![vec![]; n],
        opens: vec![vec![]; n],
        ring_bond: vec![false; self_.bonds.len()],
    };
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut roots = vec![];
    for &start in &order {
        if !walk.visited[start] {
            walk.visit(start, rng);
            roots.push(start);
        }
    }
    let mut out = String::with_capacity(self_.smiles.len() + 8);
    let mut numbers = RingNumbers {
        in_use: Vec::new(),
        of_bond: vec![0; self_.bonds.len()],
    };
    for (k, &root) in roots.iter().enumerate() {
        if k > 0 {
            out.push('.');
        }
        walk.write(root, &mut numbers, &mut out)?;
    }
    Some(out)
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
fn odd_permutation(from: &[Slot], to: &[Slot]) -> bool {
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
        if chiral_h(self.m, atom) {
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

#[test]
fn refactored_random_writer_is_byte_identical() {
    let mut inputs: Vec<String> = super::MOLECULES.iter().map(|s| s.to_string()).collect();
    inputs.push(super::writer::wheel(100));
    inputs.push(super::writer::wheel(250));
    let mut g = SplitMix64::new(77);
    for _ in 0..3000 {
        inputs.push(super::robustness::mutated(&mut g));
        inputs.push(super::robustness::random_string(&mut g));
    }
    let mut compared = 0;
    for s in &inputs {
        let Ok(m) = Molecule::parse(s) else { continue };
        for seed in 0..20 {
            let (mut a, mut b) = (SplitMix64::new(seed), SplitMix64::new(seed));
            assert_eq!(
                old_random_smiles(&m, &mut a),
                m.random_smiles(&mut b),
                "{s} {seed}"
            );
            assert_eq!(a.state(), b.state());
            compared += 1;
        }
        let (mut a, mut b) = (SplitMix64::new(5), SplitMix64::new(5));
        for _ in 0..10 {
            assert_eq!(
                old_random_smiles(&m, &mut a),
                m.random_smiles(&mut b),
                "{s}"
            );
        }
    }
    eprintln!("{compared} compared");
}

#[test]
#[ignore]
fn stress_canonical() {
    let mut g = SplitMix64::new(std::env::var("STRESS_SEED").map_or(1, |s| s.parse().unwrap()));
    let (mut fails, mut total, mut declined) = (0, 0, 0);
    for i in 0..20000 {
        let s = match i % 3 {
            0 => super::canonical::generated(&mut g, 0),
            1 => super::robustness::mutated(&mut g),
            _ => super::robustness::random_string(&mut g),
        };
        let Ok(m) = Molecule::parse(&s) else { continue };
        if !m.randomizable() {
            continue;
        }
        let Some(want) = m.canonical_smiles() else {
            declined += 1;
            if declined < 5 {
                eprintln!("declined {s}");
            }
            continue;
        };
        total += 1;
        let mut bad = canonical(&want).unwrap() != want;
        for seed in 0..20 {
            let r = m.random_smiles(&mut SplitMix64::new(seed)).unwrap();
            if !Molecule::parse(&r).unwrap().randomizable() {
                continue;
            }
            if canonical(&r).unwrap() != want {
                if fails < 15 {
                    eprintln!("FAIL {s} → {r}: {} vs {want}", canonical(&r).unwrap());
                }
                bad = true;
                break;
            }
        }
        if bad {
            fails += 1;
        }
    }
    eprintln!("{fails} of {total} fail, {declined} declined");
}

#[test]
#[ignore]
fn show_declined_data() {
    let Some(files) = super::data_smiles() else {
        return;
    };
    for (_, smiles) in files {
        for s in smiles {
            let m = Molecule::parse(&s).unwrap();
            if m.canonical_smiles().is_none() {
                eprintln!("{} {s}", m.randomizable());
            }
        }
    }
}

#[test]
#[ignore]
fn debug_one() {
    for s in std::env::var("DBG").unwrap().split(' ') {
        let m = Molecule::parse(s).unwrap();
        let r = m.canonical_ranks();
        for a in 0..m.atoms.len() {
            eprintln!(
                "{s} atom {a} {} rank {} h {} deg {}",
                m.atom_text(a),
                r[a],
                m.hydrogen_count(a),
                m.atom_bonds(a).len()
            );
        }
        for b in &m.bonds {
            eprintln!(
                "  bond {}-{} {:?} ring {}",
                b.from, b.to, b.symbol, b.ring_closure
            );
        }
        eprintln!("  -> {:?}", m.canonical_smiles());
    }
}

#[test]
#[ignore]
fn timing_canonical() {
    let taxol = super::MOLECULES.last().unwrap().to_string();
    let chain = "C".repeat(2000);
    let ez = format!("C{}C", "/C=C/C".repeat(200));
    let stereo_chain = format!("C{}C", "[C@H](O)".repeat(100));
    for s in [
        taxol,
        super::writer::wheel(100),
        chain,
        ez,
        stereo_chain,
        "C1CCCCC1.C1CC1.C1CC1".to_string(),
    ] {
        let m = Molecule::parse(&s).unwrap();
        let t = std::time::Instant::now();
        let c = m.canonical_smiles();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..20 {
            if let Some(r) = m.random_smiles(&mut SplitMix64::new(seed)) {
                seen.insert(canonical(&r).unwrap());
            }
        }
        eprintln!(
            "{} atoms: {:?} ({} distinct from 20 writings) {:?}",
            m.atoms.len(),
            t.elapsed(),
            seen.len(),
            c.map(|c| c.chars().take(60).collect::<String>())
        );
    }
}

#[test]
#[ignore]
fn timing_each() {
    for s in std::env::var("DBG").unwrap().split(' ') {
        let m = Molecule::parse(s).unwrap();
        let t = std::time::Instant::now();
        let r = m.canonical_ranks();
        let t1 = t.elapsed();
        let c = m.canonical_smiles();
        eprintln!(
            "{} atoms: ranks {:?} total {:?} {}",
            m.atoms.len(),
            t1,
            t.elapsed(),
            c.is_some()
        );
        let _ = r;
    }
}
