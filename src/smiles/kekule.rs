//! Kekulé structures: pairing up, along aromatic bonds, the aromatic atoms that need a double
//! bond, in each fused ring system.
//!
//! A fused ring system is what RDKit kekulizes as one: rings that share a bond, which is a
//! block (biconnected component) of the ring bonds. Which atoms need a double bond is decided
//! in `valence.rs` (RDKit's rule); here every such atom of a system must get exactly one
//! double bond to another such atom, over a bond that may be double (aromatic, or touching
//! `*`). `*` atoms may take one or not. That is a matching in a general graph (aromatic
//! systems have odd rings, so it is not bipartite) that covers every required atom.
//!
//! The matching: a greedy start (atoms with one free neighbour first), then for each
//! required atom left over one search of Edmonds' blossom algorithm for an alternating path
//! from it to a free atom, or to a `*` that may give up its double bond. A search that fails
//! proves there is no Kekulé structure (the atoms already paired stay paired in any larger
//! pairing found by alternating paths, and every pairing covering them and the new atom
//! differs from the current one by such a path). Each search costs O(E log V) (blossom
//! bases in a union-find), and there is at most one per atom the greedy start left
//! unpaired, so the worst case is O(V·E·log V); in practice the greedy start leaves few.

use super::Molecule;
use std::collections::VecDeque;

const NONE: usize = usize::MAX;

/// An atom's part in the Kekulé structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Takes no double bond in its ring systems.
    No,
    /// Must take exactly one double bond in each of its ring systems.
    Required,
    /// May take one (`*`).
    Optional,
}

/// No Kekulé structure: the first atom of the ring system, and the atom left without a
/// double bond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NoKekule {
    pub(super) first_atom: usize,
    pub(super) atom: usize,
}

/// The blocks (biconnected components) of the graph of ring bonds, each as its bonds: the
/// fused ring systems. An iterative Tarjan search.
pub(super) fn ring_blocks(m: &Molecule) -> Vec<Vec<usize>> {
    let n = m.atoms.len();
    let mut order = vec![NONE; n];
    let mut low = vec![0usize; n];
    let mut time = 0usize;
    // Depth-first stack: (atom, bond it was reached by, next position in its bond list).
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    let mut edges: Vec<usize> = Vec::new();
    let mut blocks = Vec::new();
    for root in 0..n {
        if order[root] != NONE || !m.atom_in_ring(root) {
            continue;
        }
        order[root] = time;
        low[root] = time;
        time += 1;
        stack.push((root, NONE, 0));
        while let Some(&(v, via, next)) = stack.last() {
            let bonds = m.atom_bonds(v);
            if next < bonds.len() {
                if let Some(top) = stack.last_mut() {
                    top.2 += 1;
                }
                let b = bonds[next];
                if b == via || !m.in_ring[b] {
                    continue;
                }
                let w = m.bonds[b].other(v);
                if order[w] == NONE {
                    edges.push(b);
                    order[w] = time;
                    low[w] = time;
                    time += 1;
                    stack.push((w, b, 0));
                } else if order[w] < order[v] {
                    edges.push(b);
                    low[v] = low[v].min(order[w]);
                }
            } else {
                stack.pop();
                if let Some(&(parent, _, _)) = stack.last() {
                    low[parent] = low[parent].min(low[v]);
                    if low[v] >= order[parent] {
                        let mut block = Vec::new();
                        while let Some(e) = edges.pop() {
                            block.push(e);
                            if e == via {
                                break;
                            }
                        }
                        blocks.push(block);
                    }
                }
            }
        }
    }
    blocks
}

/// Picks the double bonds of a Kekulé structure of the ring systems `blocks` (bond lists):
/// in each, every `Required` atom gets one double bond to another `Required` or `Optional`
/// atom of the system, over a bond for which `may_be_double` holds. Returns those bonds, or
/// the first atom found that cannot get one.
pub(super) fn assign(
    m: &Molecule,
    blocks: &[&Vec<usize>],
    roles: &[Role],
    may_be_double: impl Fn(usize) -> bool,
) -> Result<Vec<usize>, NoKekule> {
    // One vertex per (system, atom taking part); an atom in two systems gets two.
    let mut atom_of: Vec<usize> = Vec::new();
    let mut block_of: Vec<usize> = Vec::new();
    let mut optional: Vec<bool> = Vec::new();
    let mut vertex = vec![NONE; m.atoms.len()];
    let mut seen_in = vec![NONE; m.atoms.len()];
    let mut edges: Vec<(usize, usize)> = Vec::new();
    let mut edge_bond: Vec<usize> = Vec::new();
    let mut first_atom: Vec<usize> = Vec::new();
    for (k, block) in blocks.iter().enumerate() {
        let mut first = NONE;
        for &b in block.iter() {
            let bond = &m.bonds[b];
            for a in [bond.from, bond.to] {
                first = first.min(a);
                if seen_in[a] != k && roles[a] != Role::No {
                    seen_in[a] = k;
                    vertex[a] = atom_of.len();
                    atom_of.push(a);
                    block_of.push(k);
                    optional.push(roles[a] == Role::Optional);
                }
            }
        }
        first_atom.push(first);
        for &b in block.iter() {
            let bond = &m.bonds[b];
            if roles[bond.from] != Role::No && roles[bond.to] != Role::No && may_be_double(b) {
                edges.push((vertex[bond.from], vertex[bond.to]));
                edge_bond.push(b);
            }
        }
    }
    match cover(atom_of.len(), &edges, &optional) {
        Ok(paired) => Ok(paired.into_iter().map(|e| edge_bond[e]).collect()),
        Err(v) => Err(NoKekule {
            first_atom: first_atom[block_of[v]],
            atom: atom_of[v],
        }),
    }
}

/// A matching of the graph with `n` vertices and `edges` that covers every vertex not marked
/// `optional`: the indices of its edges, or a vertex that no such matching covers (there is
/// then none at all).
pub(super) fn cover(
    n: usize,
    edges: &[(usize, usize)],
    optional: &[bool],
) -> Result<Vec<usize>, usize> {
    let mut g = Matching::new(n, edges, optional.to_vec());
    g.greedy();
    for v in 0..n {
        if !g.optional[v] && g.mate[v] == NONE && !g.search(v) {
            return Err(v);
        }
    }
    Ok((0..n)
        .filter(|&v| g.mate[v] != NONE && v < g.mate[v])
        .filter_map(|v| g.edge_between(v, g.mate[v]))
        .collect())
}

const UNSEEN: u8 = 0;
const EVEN: u8 = 1;
const ODD: u8 = 2;

/// A matching in a general graph, grown by Edmonds' blossom searches.
struct Matching {
    /// Neighbours of `v`: `adj[start[v]..start[v + 1]]`, with the index of each edge.
    start: Vec<usize>,
    adj: Vec<(usize, usize)>,
    optional: Vec<bool>,
    mate: Vec<usize>,
    // State of one search, reset through `touched`.
    label: Vec<u8>,
    /// For an odd vertex, the even vertex it was reached from; for an even vertex in a
    /// blossom, the vertex across the edge that closed it (the way around the blossom).
    link: Vec<usize>,
    /// Union-find of blossom bases.
    base: Vec<usize>,
    mark: Vec<u64>,
    stamp: u64,
    queue: VecDeque<usize>,
    touched: Vec<usize>,
}

impl Matching {
    fn new(n: usize, edges: &[(usize, usize)], optional: Vec<bool>) -> Matching {
        let mut start = vec![0usize; n + 1];
        for &(u, v) in edges {
            start[u + 1] += 1;
            start[v + 1] += 1;
        }
        for v in 0..n {
            start[v + 1] += start[v];
        }
        let mut fill = start.clone();
        let mut adj = vec![(0, 0); 2 * edges.len()];
        for (e, &(u, v)) in edges.iter().enumerate() {
            adj[fill[u]] = (v, e);
            fill[u] += 1;
            adj[fill[v]] = (u, e);
            fill[v] += 1;
        }
        Matching {
            start,
            adj,
            optional,
            mate: vec![NONE; n],
            label: vec![UNSEEN; n],
            link: vec![NONE; n],
            base: (0..n).collect(),
            mark: vec![0; n],
            stamp: 0,
            queue: VecDeque::new(),
            touched: Vec::new(),
        }
    }

    fn neighbours(&self, v: usize) -> impl Iterator<Item = usize> + '_ {
        self.adj[self.start[v]..self.start[v + 1]]
            .iter()
            .map(|&(w, _)| w)
    }

    fn edge_between(&self, v: usize, w: usize) -> Option<usize> {
        self.adj[self.start[v]..self.start[v + 1]]
            .iter()
            .find(|&&(x, _)| x == w)
            .map(|&(_, b)| b)
    }

    /// A greedy start: vertices with a single free neighbour are paired with it first, then
    /// each required vertex with its free neighbour that has the fewest free neighbours.
    fn greedy(&mut self) {
        let n = self.mate.len();
        let mut free_degree: Vec<usize> =
            (0..n).map(|v| self.start[v + 1] - self.start[v]).collect();
        let mut ones: Vec<usize> = (0..n)
            .filter(|&v| free_degree[v] == 1 && !self.optional[v])
            .collect();
        for v in 0..n {
            loop {
                let u = match ones.pop() {
                    Some(u) => u,
                    None if self.mate[v] == NONE && !self.optional[v] => v,
                    None => break,
                };
                if self.mate[u] == NONE {
                    let best = self
                        .neighbours(u)
                        .filter(|&w| self.mate[w] == NONE)
                        .min_by_key(|&w| (self.optional[w], free_degree[w]));
                    if let Some(w) = best {
                        self.pair(&mut free_degree, &mut ones, u, w);
                    }
                }
                if u == v {
                    break;
                }
            }
        }
    }

    /// Pairs `u` with `w`, updating the free degrees and the vertices left with one.
    fn pair(&mut self, free_degree: &mut [usize], ones: &mut Vec<usize>, u: usize, w: usize) {
        self.mate[u] = w;
        self.mate[w] = u;
        for x in [u, w] {
            for k in self.start[x]..self.start[x + 1] {
                let y = self.adj[k].0;
                if self.mate[y] == NONE {
                    free_degree[y] -= 1;
                    if free_degree[y] == 1 && !self.optional[y] {
                        ones.push(y);
                    }
                }
            }
        }
    }

    fn find(&mut self, v: usize) -> usize {
        let mut root = v;
        while self.base[root] != root {
            root = self.base[root];
        }
        let mut x = v;
        while self.base[x] != root {
            let next = self.base[x];
            self.base[x] = root;
            x = next;
        }
        root
    }

    fn touch(&mut self, v: usize, label: u8) {
        self.label[v] = label;
        self.touched.push(v);
    }

    /// One search from the free vertex `root`: pairs it by flipping an alternating path that
    /// ends at a free vertex or at an optional vertex (which gives up its pair). False when
    /// there is none; the matching is then unchanged.
    fn search(&mut self, root: usize) -> bool {
        self.queue.clear();
        self.touch(root, EVEN);
        self.queue.push_back(root);
        let mut found = false;
        'search: while let Some(v) = self.queue.pop_front() {
            if v != root && self.optional[v] {
                // An even alternating path from the root ends at `v`, with `v`'s pair edge:
                // flip it, leaving `v` free.
                let m = self.mate[v];
                self.mate[v] = NONE;
                self.mate[m] = NONE;
                self.augment(m);
                found = true;
                break;
            }
            for k in self.start[v]..self.start[v + 1] {
                let w = self.adj[k].0;
                if self.mate[v] == w || self.find(v) == self.find(w) {
                    continue;
                }
                match self.label[w] {
                    UNSEEN => {
                        self.touch(w, ODD);
                        self.link[w] = v;
                        let m = self.mate[w];
                        if m == NONE {
                            self.augment(w);
                            found = true;
                            break 'search;
                        }
                        self.touch(m, EVEN);
                        self.queue.push_back(m);
                    }
                    EVEN => {
                        let b = self.lca(v, w);
                        self.blossom(v, w, b);
                        self.blossom(w, v, b);
                    }
                    _ => {}
                }
            }
        }
        for k in 0..self.touched.len() {
            let t = self.touched[k];
            self.label[t] = UNSEEN;
            self.link[t] = NONE;
            self.base[t] = t;
        }
        self.touched.clear();
        found
    }

    /// Flips the alternating path that ends at `w` (reached from `link[w]`) back to the root.
    fn augment(&mut self, w: usize) {
        let mut x = w;
        while x != NONE {
            let p = self.link[x];
            let next = self.mate[p];
            self.mate[x] = p;
            self.mate[p] = x;
            x = next;
        }
    }

    /// The base of the smallest blossom holding the even vertices `v` and `w`: walks up from
    /// both in turn, so the cost is about the size of the blossom found.
    fn lca(&mut self, v: usize, w: usize) -> usize {
        self.stamp += 1;
        let mut x = self.find(v);
        let mut y = self.find(w);
        loop {
            if x != NONE {
                if self.mark[x] == self.stamp {
                    return x;
                }
                self.mark[x] = self.stamp;
                x = match self.mate[x] {
                    NONE => NONE,
                    m => {
                        let up = self.link[m];
                        self.find(up)
                    }
                };
            }
            std::mem::swap(&mut x, &mut y);
        }
    }

    /// Contracts the half of a blossom from `v` up to its base `b`, `child` being the vertex
    /// across the edge that closed it; its odd vertices become even.
    fn blossom(&mut self, mut v: usize, mut child: usize, b: usize) {
        while self.find(v) != b {
            self.link[v] = child;
            let m = self.mate[v];
            if self.label[m] == ODD {
                self.label[m] = EVEN;
                self.queue.push_back(m);
            }
            let bv = self.find(v);
            self.base[bv] = b;
            let bm = self.find(m);
            self.base[bm] = b;
            child = m;
            v = self.link[m];
        }
    }
}
