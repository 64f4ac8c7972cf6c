//! An ordered partition of a molecule's atoms into cells of atoms not yet told apart, and
//! its refinement by neighbour counts (colour refinement), for the canonical ranks.
//!
//! Cells are ranges of one atom order; an atom's class is the start of its cell, so cells
//! keep their place when their neighbours split. Refinement takes one cell at a time from a
//! queue as a splitter and splits every cell by the bonds (labels, counted) its atoms have
//! into the splitter; the atoms without such bonds stay first and keep the cell's start, the
//! others follow, ordered by what they have. A cell that splits queues its new parts; when
//! it was not queued itself, all but its largest part (Hopcroft's rule: the counts into that
//! part follow from the others). Each step only touches the splitter's neighbours, so a
//! refinement costs about (atoms + bonds) × log(atoms), even on long chains that need many
//! rounds of the plain Morgan iteration. The result is the coarsest refinement in which
//! atoms of one cell have the same counts into every cell; all choices depend on cell order
//! and bond labels only, never on atom numbers.

use std::collections::VecDeque;

use super::Molecule;

/// The ordered partition.
#[derive(Debug, Clone)]
pub(super) struct Partition {
    /// Atoms grouped by cell, cells in order.
    order: Vec<usize>,
    /// Where each atom stands in `order`.
    pos: Vec<usize>,
    /// The start of each atom's cell: the atom's class.
    start: Vec<usize>,
    /// The end (exclusive) of the cell starting at each position (meaningful at starts).
    end: Vec<usize>,
    /// Whether the cell starting at each position waits in `queue`.
    queued: Vec<bool>,
    queue: VecDeque<usize>,
}

impl Partition {
    /// Cells of equal `keys`, in key order, all queued.
    pub(super) fn new<K: Ord>(keys: &[K]) -> Partition {
        let n = keys.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let mut p = Partition {
            pos: vec![0; n],
            start: vec![0; n],
            end: vec![n; n],
            queued: vec![false; n],
            queue: VecDeque::new(),
            order,
        };
        let mut s = 0;
        for i in 0..n {
            let atom = p.order[i];
            p.pos[atom] = i;
            if i > 0 && keys[p.order[i - 1]] != keys[atom] {
                p.end[s] = i;
                p.enqueue(s);
                s = i;
            }
            p.start[atom] = s;
        }
        if n > 0 {
            p.end[s] = n;
            p.enqueue(s);
        }
        p
    }

    fn enqueue(&mut self, s: usize) {
        if !self.queued[s] {
            self.queued[s] = true;
            self.queue.push_back(s);
        }
    }

    /// The class of each atom (the start of its cell).
    pub(super) fn classes(&self) -> &[usize] {
        &self.start
    }

    /// The position of each atom in the cell order: its rank once all cells are single.
    pub(super) fn positions(&self) -> &[usize] {
        &self.pos
    }

    /// The first cell, from position `from` on, with more than one atom: its start.
    pub(super) fn first_tied(&self, from: usize) -> Option<usize> {
        let mut i = from;
        while i < self.order.len() {
            if self.end[i] - i > 1 {
                return Some(i);
            }
            i = self.end[i];
        }
        None
    }

    /// The number of atoms in the cell starting at `s`.
    pub(super) fn cell_size(&self, s: usize) -> usize {
        self.end[s] - s
    }

    /// The atom standing first in the cell starting at `s` (which one depends only on the
    /// molecule as read, so a fixed choice for a given input).
    pub(super) fn first_atom(&self, s: usize) -> usize {
        self.order[s]
    }

    /// The atoms of the cell starting at `s`, by atom number.
    pub(super) fn cell(&self, s: usize) -> Vec<usize> {
        let mut atoms = self.order[s..self.end[s]].to_vec();
        atoms.sort_unstable();
        atoms
    }

    /// Splits off `atom` from its cell, as a cell of its own after the others.
    pub(super) fn individualize(&mut self, atom: usize) {
        let s = self.start[atom];
        self.split(s, &[(0u8, atom)]);
    }

    /// Splits the cell starting at `s`: the atoms of `touched` (each with its key, sorted by
    /// key) move to the end of the cell, one new cell per key in key order; the other atoms
    /// keep the start. Queues the new cells (all but the largest when the cell was not
    /// queued).
    pub(super) fn split<K: Ord + Copy>(&mut self, s: usize, touched: &[(K, usize)]) {
        let e = self.end[s];
        let mut back = e;
        for &(_, x) in touched {
            back -= 1;
            let y = self.order[back];
            let px = self.pos[x];
            self.order[px] = y;
            self.pos[y] = px;
            self.order[back] = x;
            self.pos[x] = back;
        }
        let mut cells = Vec::with_capacity(touched.len() + 1);
        if back > s {
            self.end[s] = back;
            cells.push(s);
        }
        for (k, &(key, x)) in touched.iter().enumerate() {
            let at = back + k;
            self.order[at] = x;
            self.pos[x] = at;
            if k == 0 || touched[k - 1].0 != key {
                if let Some(&last) = cells.last() {
                    self.end[last] = at;
                }
                cells.push(at);
            }
            self.start[x] = *cells.last().unwrap_or(&s);
        }
        if let Some(&last) = cells.last() {
            self.end[last] = e;
        }
        self.queue_parts(s, &cells);
    }

    /// Queues the parts `cells` of the cell that started at `s` (see [`Partition::split`]).
    fn queue_parts(&mut self, s: usize, cells: &[usize]) {
        if cells.len() < 2 {
            return;
        }
        let skip = if self.queued[s] {
            None
        } else {
            let size = |c: &usize| self.end[*c] - *c;
            let largest = cells.iter().map(size).max().unwrap_or(0);
            cells.iter().position(|c| size(c) == largest)
        };
        for (k, &c) in cells.iter().enumerate() {
            if Some(k) != skip {
                self.enqueue(c);
            }
        }
    }

    /// Refines until no queued cell splits another (`labels`: each bond's label).
    pub(super) fn refine(&mut self, m: &Molecule, labels: &[u8]) {
        while let Some(s) = self.queue.pop_front() {
            self.queued[s] = false;
            self.split_by(s, m, labels);
        }
    }

    /// Splits every cell by the labels of its atoms' bonds into the cell starting at `s`.
    fn split_by(&mut self, s: usize, m: &Molecule, labels: &[u8]) {
        let mut touched: Vec<(usize, usize, u8)> = Vec::new();
        for &a in &self.order[s..self.end[s]] {
            for &b in m.atom_bonds(a) {
                let x = m.bonds()[b].other(a);
                touched.push((self.start[x], x, labels[b]));
            }
        }
        touched.sort_unstable();
        // Each touched atom once, with its labels into the splitter: (cell, labels, atom).
        let mut keyed: Vec<(usize, Vec<u8>, usize)> = Vec::new();
        for &(c, x, label) in &touched {
            match keyed.last_mut() {
                Some((_, key, last)) if *last == x => key.push(label),
                _ => keyed.push((c, vec![label], x)),
            }
        }
        keyed.sort_unstable();
        let mut i = 0;
        while i < keyed.len() {
            let c = keyed[i].0;
            let j = i + keyed[i..].iter().take_while(|k| k.0 == c).count();
            self.split_keyed(c, &keyed[i..j]);
            i = j;
        }
    }

    /// Splits the cell starting at `c` by the sorted (cell, key, atom) list of its touched
    /// atoms, unless all its atoms are touched alike.
    fn split_keyed(&mut self, c: usize, keyed: &[(usize, Vec<u8>, usize)]) {
        let size = self.end[c] - c;
        if keyed.len() == size && keyed[0].1 == keyed[keyed.len() - 1].1 {
            return;
        }
        let mut rank = 0u32;
        let touched: Vec<(u32, usize)> = keyed
            .iter()
            .enumerate()
            .map(|(k, (_, key, x))| {
                if k > 0 && keyed[k - 1].1 != *key {
                    rank += 1;
                }
                (rank, *x)
            })
            .collect();
        self.split(c, &touched);
    }
}
