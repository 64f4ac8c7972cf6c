//! Atom and bond features of a molecule for the directed message-passing network (D-MPNN,
//! chemprop-style), computed from lipo's own SMILES graph ([`crate::smiles::Molecule`]) with
//! no RDKit.
//!
//! # Nodes
//!
//! Every atom written in the SMILES is a node, in written order, except explicit hydrogen
//! atoms that RDKit's `MolFromSmiles` would remove: an `[H]` (or `[H:n]`) with no isotope, no
//! charge, no chirality mark, no hydrogens of its own and exactly one bond, to an atom that is
//! neither a hydrogen nor `*`. Such a hydrogen is added to its neighbour's hydrogen count and
//! its bond is dropped. `[2H]`, `[H+]`, `[H][H]` and `*[H]` stay nodes.
//!
//! Every feature depends on the molecule only, not on how it is written: atom order, branch
//! layout, ring numbers and which bonds carry the `/` `\` marks of a double bond all change
//! with the writing, so the chirality and bond-stereo blocks say only *that* an atom is a
//! stereocentre or a double bond is stereo, not which way (a logD model should give two
//! enantiomers one value anyway). [`FEATURES_VERSION`] names this layout; model folders and
//! bundles record it and a different one is refused.
//!
//! # Atom features ([`ATOM_FEATURES`] = 43 columns)
//!
//! | columns | block | values |
//! |---|---|---|
//! | 0–13 | element | H, B, C, N, O, F, Si, P, S, Cl, Se, Br, I, other (incl. `*`) |
//! | 14–20 | degree | 0, 1, 2, 3, 4, 5, other |
//! | 21–26 | formal charge | −2, −1, 0, +1, +2, other |
//! | 27–29 | chirality | none, tetrahedral stereocentre (`@`, `@@`, `@TH1`, `@TH2`), other |
//! | 30–35 | total hydrogens | 0, 1, 2, 3, 4, other |
//! | 36–39 | hybridisation | sp, sp2, sp3, other |
//! | 40 | aromatic as written | 1 bit |
//! | 41 | in a ring | 1 bit |
//! | 42 | mass / 100 | scalar |
//!
//! - **Degree** is the number of the atom's bonds that are kept in the graph: heavy
//!   neighbours, plus any hydrogen kept as a node (RDKit's `GetDegree` after `RemoveHs`).
//! - **Chirality** says whether the atom carries a tetrahedral mark, not which: `@` and `@@`
//!   swap when the neighbours are written in another order (RDKit's chiral tag, which
//!   chemprop uses, has the same dependence on atom order).
//! - **Total hydrogens** is [`Molecule::hydrogen_count`] plus the merged `[H]` neighbours
//!   (RDKit's `GetTotalNumHs`).
//! - **Hybridisation** follows RDKit's `setHybridization` on the bonds as read here (see
//!   *Bond features*: aromaticity as written). With `n` = degree + total hydrogens, the
//!   valence `v` = the sum of bond orders (aromatic 1.5) plus the hydrogens (rounded up; for an
//!   aromatic atom above its default valence, lowered as RDKit does: `[nH]` 3, a fused `c` 4),
//!   and the element's outer electrons `e`, the lone pairs are `⌊(e − v − charge) / 2⌋` (below
//!   the octet an odd electron takes an orbital of its own), and `n` + lone pairs = 2 is `sp`,
//!   3 is `sp2`, 4 is `sp3` — or `sp2` when `n` ≤ 3 and the atom has a conjugated bond (amide
//!   N, phenol O, `[nH]`, furan O) — and anything else is `other`. A `@`/`@@` atom with four
//!   neighbours is `sp3`. Hydrogen (RDKit's `S`), `*` and elements outside the element list
//!   are `other`. So: C≡N both `sp`; C=O both `sp2`; nitro N and its O⁻ `sp2`; amine N,
//!   halogens, sulfonyl S and phosphate P `sp3`.
//! - **Mass** is the written isotope's mass number when there is one, else the standard atomic
//!   weight of the listed elements; 0 for `*` and elements outside the list. Divided by 100.
//!
//! # Bond features ([`BOND_FEATURES`] = 8 columns, the same for both directions)
//!
//! | columns | block | values |
//! |---|---|---|
//! | 0–3 | order | single, double, triple, aromatic (a quadruple `$` bond sets none) |
//! | 4 | conjugated | 1 bit |
//! | 5 | in a ring | 1 bit |
//! | 6–7 | stereo | none, stereo double bond |
//!
//! - **Order**: `-` single, `=` double, `#` triple, `:` aromatic. An implicit, `/` or `\` bond
//!   between two atoms written aromatic is aromatic when it lies in a ring of atoms written
//!   aromatic (a cycle of such bonds), else single, as RDKit reads it: the bond between the
//!   rings of biphenyl written `c1ccccc1c1ccccc1` is single, and so is the bond joining the
//!   two benzene rings of phenanthrenequinone `O=C1C(=O)c2ccccc2c2ccccc12`, which lies only in
//!   the non-aromatic middle ring. Aromaticity is as written: a ring written in Kekulé form
//!   keeps its single and double bonds.
//! - **Conjugated** follows RDKit's `setConjugation` on these bonds: aromatic bonds are
//!   conjugated; and at every conjugation candidate `X` with two or three neighbours
//!   (counting hydrogens), each double, triple or aromatic bond `b` of `X` to a candidate,
//!   together with each other bond of `X` to a candidate, is conjugated. A candidate has at
//!   most three neighbours, a default valence `dv` above 1 (so no H, halogen), electrons to
//!   offer (`dv − n + max(e − dv − charge, 0) > 0`: C with a double bond, N, O, `[O-]`, the
//!   `[N+]` of nitro; not an sp3 C), is not hypervalent when uncharged (valence above `dv`:
//!   sulfonyl S, `P=O`, a nitro N written `N(=O)=O`), and is not P, S or Se with two or more
//!   neighbours. So `C=CC=C`, amides, esters and anilines are conjugated, `C=CCC=C`, `CC=O`
//!   and sulfonyl groups not.
//! - **Stereo**: *stereo double bond* for a double bond both of whose atoms have another bond
//!   written `/` or `\` (counting bonds to removed `[H]` atoms); *none* otherwise (which
//!   single bonds carry the marks depends on the writing).
//!
//! # Directed bonds
//!
//! Bond `i` of the graph (the molecule's bonds in reading order, less those of removed `[H]`
//! atoms) gives directed bonds `2i` (from → to) and `2i + 1` (to → from), so the reverse of
//! directed bond `d` is `d ^ 1`.

use crate::error::Error;
use crate::smiles::{Chirality, Molecule};

/// Width of one atom's feature vector.
pub const ATOM_FEATURES: usize = MASS + 1;

/// Width of one directed bond's own feature vector.
pub const BOND_FEATURES: usize = STEREO + 2;

/// The version of the feature layout (the tables of the module documentation); graph model
/// folders and bundles record it, and a model made with another layout is refused.
pub const FEATURES_VERSION: u32 = 2;

/// One element with a column of its own.
struct Element {
    symbol: &'static str,
    /// Standard atomic weight.
    mass: f32,
    /// Outer-shell electrons.
    outer: i32,
    /// RDKit's allowed valences, the default first.
    valences: &'static [i32],
}

const fn el(symbol: &'static str, mass: f32, outer: i32, valences: &'static [i32]) -> Element {
    Element {
        symbol,
        mass,
        outer,
        valences,
    }
}

/// The elements with a column of their own.
const ELEMENTS: [Element; 13] = [
    el("H", 1.008, 1, &[1]),
    el("B", 10.81, 3, &[3]),
    el("C", 12.011, 4, &[4]),
    el("N", 14.007, 5, &[3]),
    el("O", 15.999, 6, &[2]),
    el("F", 18.998, 7, &[1]),
    el("Si", 28.085, 4, &[4]),
    el("P", 30.974, 5, &[3, 5]),
    el("S", 32.06, 6, &[2, 4, 6]),
    el("Cl", 35.45, 7, &[1]),
    el("Se", 78.971, 6, &[2, 4, 6]),
    el("Br", 79.904, 7, &[1]),
    el("I", 126.904, 7, &[1, 3, 5]),
];

/// Index in [`ELEMENTS`] of the first element after the second period (Si).
const THIRD_PERIOD: usize = 6;

// Atom block offsets.
const ELEMENT: usize = 0;
const DEGREE: usize = ELEMENT + ELEMENTS.len() + 1;
const CHARGE: usize = DEGREE + 7;
const CHIRALITY: usize = CHARGE + 6;
const HYDROGENS: usize = CHIRALITY + 3;
const HYBRIDISATION: usize = HYDROGENS + 6;
const AROMATIC: usize = HYBRIDISATION + 4;
const ATOM_RING: usize = AROMATIC + 1;
const MASS: usize = ATOM_RING + 1;

// Bond block offsets.
const ORDER: usize = 0;
const CONJUGATED: usize = ORDER + 4;
const BOND_RING: usize = CONJUGATED + 1;
const STEREO: usize = BOND_RING + 1;

// Hybridisation slots.
const SP: usize = 0;
const SP2: usize = 1;
const SP3: usize = 2;
const OTHER: usize = 3;

/// One molecule as the D-MPNN reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MolGraph {
    /// Heavy atoms (and any atom that is kept as a node), in written order.
    pub atoms: usize,
    /// `atoms × ATOM_FEATURES`, row-major, 0/1 one-hots (plus any scalar you add, scaled to
    /// ~[0,1]).
    pub atom_features: Vec<f32>,
    /// Directed bonds: bond i of the molecule gives directed bonds 2i (from→to) and 2i+1
    /// (to→from), so the reverse of directed bond d is d ^ 1. `2·bonds × BOND_FEATURES`,
    /// row-major.
    pub bond_features: Vec<f32>,
    /// For each directed bond, the atom it leaves (node index, 0-based).
    pub bond_src: Vec<i64>,
    /// For each directed bond, the atom it enters.
    pub bond_dst: Vec<i64>,
}

/// Bond order as read (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Single,
    Double,
    Triple,
    Quadruple,
    Aromatic,
}

impl Order {
    /// Twice the bond order (aromatic 3).
    fn twice(self) -> i32 {
        match self {
            Order::Single => 2,
            Order::Double => 4,
            Order::Triple => 6,
            Order::Quadruple => 8,
            Order::Aromatic => 3,
        }
    }
}

/// The order of every bond of `m` (see the module documentation).
fn orders(m: &Molecule) -> Vec<Order> {
    let atoms = m.atoms();
    let bonds = m.bonds();
    let both_aromatic =
        |b: usize| atoms[bonds[b].from()].aromatic() && atoms[bonds[b].to()].aromatic();
    let mut orders: Vec<Order> = bonds
        .iter()
        .map(|bond| match bond.symbol() {
            Some('=') => Order::Double,
            Some('#') => Order::Triple,
            Some('$') => Order::Quadruple,
            Some(':') => Order::Aromatic,
            _ => Order::Single,
        })
        .collect();
    // Bonds between aromatic atoms that are not written `-`, `=`, `#`, `$`: aromatic when
    // they lie on a cycle of such bonds.
    let aromatic_edges: Vec<usize> = (0..bonds.len())
        .filter(|&b| both_aromatic(b) && matches!(bonds[b].symbol(), None | Some(':' | '/' | '\\')))
        .collect();
    let on_cycle = cycle_edges(atoms.len(), &aromatic_edges, |b| {
        (bonds[b].from(), bonds[b].to())
    });
    for (&b, on_cycle) in aromatic_edges.iter().zip(on_cycle) {
        if on_cycle {
            orders[b] = Order::Aromatic;
        }
    }
    orders
}

/// For each of `edges` (an edge list over `n` vertices, each edge's ends given by `ends`),
/// whether it lies on a cycle of these edges (is not a bridge); an iterative Tarjan search.
fn cycle_edges(n: usize, edges: &[usize], ends: impl Fn(usize) -> (usize, usize)) -> Vec<bool> {
    const UNSEEN: usize = usize::MAX;
    let mut adjacency: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (k, &e) in edges.iter().enumerate() {
        let (u, v) = ends(e);
        adjacency[u].push((v, k));
        adjacency[v].push((u, k));
    }
    let mut on_cycle = vec![true; edges.len()];
    let mut order = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut time = 0usize;
    // Depth-first stack: (vertex, edge it was reached by, next position in its list).
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    for root in 0..n {
        if order[root] != UNSEEN || adjacency[root].is_empty() {
            continue;
        }
        order[root] = time;
        low[root] = time;
        time += 1;
        stack.push((root, UNSEEN, 0));
        while let Some(top) = stack.last_mut() {
            let (v, via, next) = *top;
            if let Some(&(w, k)) = adjacency[v].get(next) {
                top.2 += 1;
                if k == via {
                    continue;
                }
                if order[w] == UNSEEN {
                    order[w] = time;
                    low[w] = time;
                    time += 1;
                    stack.push((w, k, 0));
                } else {
                    low[v] = low[v].min(order[w]);
                }
            } else {
                stack.pop();
                if let Some(&(parent, _, _)) = stack.last() {
                    low[parent] = low[parent].min(low[v]);
                    if low[v] > order[parent] {
                        on_cycle[via] = false;
                    }
                }
            }
        }
    }
    on_cycle
}

/// Whether atom `a` is an `[H]` that RDKit's `MolFromSmiles` removes (see the module
/// documentation).
fn removable_hydrogen(m: &Molecule, a: usize) -> bool {
    let atom = &m.atoms()[a];
    if atom.symbol() != "H"
        || atom.isotope().is_some()
        || atom.charge() != 0
        || atom.chirality().is_some()
        || atom.hydrogens().unwrap_or(0) != 0
    {
        return false;
    }
    let bonds = m.atom_bonds(a);
    if bonds.len() != 1 {
        return false;
    }
    let other = m.bonds()[bonds[0]].other(a);
    !matches!(m.atoms()[other].symbol(), "H" | "*")
}

/// What the conjugation and hybridisation rules need to know of one node.
struct Node {
    /// Index in [`ELEMENTS`], if listed.
    element: Option<usize>,
    /// The kept bonds (indices into the molecule's bonds).
    bonds: Vec<usize>,
    /// Total hydrogens.
    hydrogens: usize,
    /// Degree + total hydrogens.
    neighbours: i32,
    /// RDKit's total valence (see [`valence`]).
    valence: i32,
    charge: i32,
}

impl Node {
    /// Outer electrons and default valence, when the element is listed (and not `*`).
    fn shell(&self) -> Option<(i32, i32)> {
        self.element
            .map(|e| (ELEMENTS[e].outer, ELEMENTS[e].valences[0]))
    }

    /// Whether this atom can take part in conjugation (RDKit's `isAtomConjugCand`: see the
    /// module documentation).
    fn conjugation_candidate(&self) -> bool {
        let Some((outer, default)) = self.shell() else {
            return false;
        };
        if self.charge == 0 && self.valence > default {
            return false; // hypervalent: sulfonyl S, phosphoryl P, uncharged nitro N
        }
        let late = self.element.is_some_and(|e| e >= THIRD_PERIOD);
        if late && (outer == 5 || outer == 6) && self.neighbours >= 2 {
            return false;
        }
        default > 1
            && self.neighbours <= 3
            && (default - self.neighbours) + (outer - default - self.charge).max(0) > 0
    }
}

/// RDKit's valence from twice the sum of bond orders and hydrogens: rounded up, but for an
/// aromatic atom above its default valence first lowered to the largest allowed valence
/// below it when within 1.5 (`[nH]`, `n` with a substituent, a `c` of three aromatic rings).
fn valence(element: Option<usize>, aromatic: bool, twice: i32) -> i32 {
    let mut twice = twice;
    if let Some(e) = element.filter(|_| aromatic) {
        let list = ELEMENTS[e].valences;
        if twice > 2 * list[0] {
            let below = list
                .iter()
                .rev()
                .find(|&&v| 2 * v <= twice)
                .unwrap_or(&list[0]);
            if twice - 2 * below <= 3 {
                twice = 2 * below;
            }
        }
    }
    (twice + 1) / 2
}

/// Sets column `offset + min(value, slots - 1)` of `row`: a one-hot whose last slot is
/// "other".
fn one_hot(row: &mut [f32], offset: usize, slots: usize, value: Option<usize>) {
    let k = value.map_or(slots - 1, |v| v.min(slots - 1));
    row[offset + k] = 1.0;
}

/// Features of a parsed molecule.
pub fn featurize(m: &Molecule) -> MolGraph {
    let orders = orders(m);
    let g = graph_nodes(m, &orders);
    let conjugated = conjugated_bonds(m, &g, &orders);
    let atom_features = atom_rows(m, &g, &conjugated);
    let (bond_features, bond_src, bond_dst) = bond_rows(m, &g, &orders, &conjugated);
    MolGraph {
        atoms: g.kept.len(),
        atom_features,
        bond_features,
        bond_src,
        bond_dst,
    }
}

/// The graph's nodes: the molecule's atoms in written order, less the removable hydrogens
/// (counted on their neighbour), and the bonds between kept atoms.
struct GraphNodes {
    /// Kept atoms, in node order.
    kept: Vec<usize>,
    /// Node index of each atom (`usize::MAX` for a removed hydrogen).
    node_of: Vec<usize>,
    /// Bonds between kept atoms.
    graph_bonds: Vec<usize>,
    /// Per molecule atom (removed hydrogens get an empty one, never read).
    nodes: Vec<Node>,
}

fn graph_nodes(m: &Molecule, orders: &[Order]) -> GraphNodes {
    let atoms = m.atoms();
    let bonds = m.bonds();
    let removed: Vec<bool> = (0..atoms.len()).map(|a| removable_hydrogen(m, a)).collect();
    let kept: Vec<usize> = (0..atoms.len()).filter(|&a| !removed[a]).collect();
    let mut node_of = vec![usize::MAX; atoms.len()];
    for (i, &a) in kept.iter().enumerate() {
        node_of[a] = i;
    }
    let mut merged_h = vec![0usize; atoms.len()];
    for a in (0..atoms.len()).filter(|&a| removed[a]) {
        merged_h[bonds[m.atom_bonds(a)[0]].other(a)] += 1;
    }
    let bond_kept = |b: usize| !removed[bonds[b].from()] && !removed[bonds[b].to()];
    let graph_bonds: Vec<usize> = (0..bonds.len()).filter(|&b| bond_kept(b)).collect();
    let nodes: Vec<Node> = (0..atoms.len())
        .map(|a| {
            let atom = &atoms[a];
            let own: Vec<usize> = if removed[a] {
                Vec::new()
            } else {
                m.atom_bonds(a)
                    .iter()
                    .copied()
                    .filter(|&b| bond_kept(b))
                    .collect()
            };
            let hydrogens = usize::from(m.hydrogen_count(a)) + merged_h[a];
            let twice = own.iter().map(|&b| orders[b].twice()).sum::<i32>() + 2 * hydrogens as i32;
            let aromatic = atom.aromatic() || own.iter().any(|&b| orders[b] == Order::Aromatic);
            let element = ELEMENTS.iter().position(|e| e.symbol == atom.symbol());
            Node {
                element,
                neighbours: (own.len() + hydrogens) as i32,
                bonds: own,
                hydrogens,
                valence: valence(element, aromatic, twice),
                charge: i32::from(atom.charge()),
            }
        })
        .collect();
    GraphNodes {
        kept,
        node_of,
        graph_bonds,
        nodes,
    }
}

/// Which bonds are conjugated (RDKit's `setConjugation`).
fn conjugated_bonds(m: &Molecule, g: &GraphNodes, orders: &[Order]) -> Vec<bool> {
    let bonds = m.bonds();
    let nodes = &g.nodes;
    let mut conjugated: Vec<bool> = orders.iter().map(|&o| o == Order::Aromatic).collect();
    for &a in &g.kept {
        let x = &nodes[a];
        if !x.conjugation_candidate() || x.neighbours < 2 {
            continue;
        }
        for &b1 in x.bonds.iter().filter(|&&b| {
            orders[b] != Order::Single && nodes[bonds[b].other(a)].conjugation_candidate()
        }) {
            for &b2 in x.bonds.iter().filter(|&&b| b != b1) {
                if nodes[bonds[b2].other(a)].conjugation_candidate() {
                    conjugated[b1] = true;
                    conjugated[b2] = true;
                }
            }
        }
    }
    conjugated
}

/// The atom feature rows, one per node.
fn atom_rows(m: &Molecule, g: &GraphNodes, conjugated: &[bool]) -> Vec<f32> {
    let atoms = m.atoms();
    let mut atom_features = vec![0f32; g.kept.len() * ATOM_FEATURES];
    for (row, &a) in atom_features.chunks_exact_mut(ATOM_FEATURES).zip(&g.kept) {
        let atom = &atoms[a];
        let node = &g.nodes[a];
        one_hot(row, ELEMENT, ELEMENTS.len() + 1, node.element);
        one_hot(row, DEGREE, 7, Some(node.bonds.len()));
        let charge = match atom.charge() {
            c @ -2..=2 => Some((c + 2) as usize),
            _ => None,
        };
        one_hot(row, CHARGE, 6, charge);
        let chirality = match atom.chirality() {
            None => Some(0),
            Some(
                Chirality::Anticlockwise
                | Chirality::Clockwise
                | Chirality::Tetrahedral(1)
                | Chirality::Tetrahedral(2),
            ) => Some(1),
            Some(_) => None,
        };
        one_hot(row, CHIRALITY, 3, chirality);
        one_hot(row, HYDROGENS, 6, Some(node.hydrogens));
        let has_conjugated = node.bonds.iter().any(|&b| conjugated[b]);
        let tetrahedral = chirality == Some(1);
        let hybrid = hybridisation(node, has_conjugated, tetrahedral);
        one_hot(row, HYBRIDISATION, 4, Some(hybrid));
        row[AROMATIC] = f32::from(u8::from(atom.aromatic()));
        row[ATOM_RING] = f32::from(u8::from(m.atom_in_ring(a)));
        let mass = match atom.isotope() {
            Some(isotope) => f32::from(isotope),
            None => node.element.map_or(0.0, |e| ELEMENTS[e].mass),
        };
        row[MASS] = mass / 100.0;
    }
    atom_features
}

/// The bond feature rows (each bond twice, one per direction) and the directed bonds'
/// source and destination nodes.
fn bond_rows(
    m: &Molecule,
    g: &GraphNodes,
    orders: &[Order],
    conjugated: &[bool],
) -> (Vec<f32>, Vec<i64>, Vec<i64>) {
    let bonds = m.bonds();
    let (graph_bonds, node_of) = (&g.graph_bonds, &g.node_of);
    let directional = |b: usize| matches!(bonds[b].symbol(), Some('/' | '\\'));
    let mut bond_features = vec![0f32; 2 * graph_bonds.len() * BOND_FEATURES];
    let mut bond_src = Vec::with_capacity(2 * graph_bonds.len());
    let mut bond_dst = Vec::with_capacity(2 * graph_bonds.len());
    for (pair, &b) in bond_features
        .chunks_exact_mut(2 * BOND_FEATURES)
        .zip(graph_bonds)
    {
        let (from, to) = (bonds[b].from(), bonds[b].to());
        let (row, reverse) = pair.split_at_mut(BOND_FEATURES);
        let order = match orders[b] {
            Order::Single => Some(0),
            Order::Double => Some(1),
            Order::Triple => Some(2),
            Order::Aromatic => Some(3),
            Order::Quadruple => None,
        };
        if let Some(k) = order {
            row[ORDER + k] = 1.0;
        }
        row[CONJUGATED] = f32::from(u8::from(conjugated[b]));
        row[BOND_RING] = f32::from(u8::from(m.bond_in_ring(b)));
        // Marks on the atoms' other bonds, those to removed hydrogens included.
        let marked = |a: usize| m.atom_bonds(a).iter().any(|&o| o != b && directional(o));
        let stereo = usize::from(orders[b] == Order::Double && marked(from) && marked(to));
        row[STEREO + stereo] = 1.0;
        reverse.copy_from_slice(row);
        let (u, v) = (node_of[from] as i64, node_of[to] as i64);
        bond_src.extend([u, v]);
        bond_dst.extend([v, u]);
    }
    (bond_features, bond_src, bond_dst)
}

/// The hybridisation slot of `node` (RDKit's `setHybridization`: see the module
/// documentation), given whether it has a conjugated bond and a `@`/`@@` mark.
fn hybridisation(node: &Node, has_conjugated: bool, tetrahedral: bool) -> usize {
    let Some((outer, _)) = node.shell() else {
        return OTHER;
    };
    if tetrahedral && node.neighbours == 4 {
        return SP3;
    }
    let orbitals = if node.element == Some(0) {
        node.neighbours
    } else {
        let free = outer - (node.valence + node.charge);
        if node.valence + outer - node.charge < 8 {
            // Below the octet: an odd electron takes an orbital of its own.
            node.neighbours + free / 2 + i32::from(free % 2 == 1)
        } else {
            node.neighbours + free / 2
        }
    };
    match orbitals {
        2 => SP,
        3 => SP2,
        4 if node.neighbours <= 3 && has_conjugated => SP2,
        4 => SP3,
        _ => OTHER,
    }
}

/// Parses and featurises; error naming the SMILES and position when it is not valid.
pub fn featurize_smiles(smiles: &str) -> crate::Result<MolGraph> {
    let molecule = Molecule::parse(smiles).map_err(|e| Error::InvalidSmiles {
        smiles: smiles.to_string(),
        reason: e.to_string(),
    })?;
    Ok(featurize(&molecule))
}

#[cfg(test)]
mod tests;
