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
    let atoms = m.atoms();
    let bonds = m.bonds();
    let orders = orders(m);

    // Nodes: written order, less the removed hydrogens, which go to their neighbour's count.
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

    // Nodes indexed by molecule atom (removed hydrogens get an empty one, never read).
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

    // Conjugation (RDKit's `setConjugation`).
    let mut conjugated: Vec<bool> = orders.iter().map(|&o| o == Order::Aromatic).collect();
    for &a in &kept {
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

    let mut atom_features = vec![0f32; kept.len() * ATOM_FEATURES];
    for (row, &a) in atom_features.chunks_exact_mut(ATOM_FEATURES).zip(&kept) {
        let atom = &atoms[a];
        let node = &nodes[a];
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

    let directional = |b: usize| matches!(bonds[b].symbol(), Some('/' | '\\'));
    let mut bond_features = vec![0f32; 2 * graph_bonds.len() * BOND_FEATURES];
    let mut bond_src = Vec::with_capacity(2 * graph_bonds.len());
    let mut bond_dst = Vec::with_capacity(2 * graph_bonds.len());
    for (pair, &b) in bond_features
        .chunks_exact_mut(2 * BOND_FEATURES)
        .zip(&graph_bonds)
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

    MolGraph {
        atoms: kept.len(),
        atom_features,
        bond_features,
        bond_src,
        bond_dst,
    }
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
mod tests {
    use super::*;

    fn graph(smiles: &str) -> MolGraph {
        featurize_smiles(smiles).unwrap_or_else(|e| panic!("{smiles}: {e}"))
    }

    fn atom_row(g: &MolGraph, a: usize) -> &[f32] {
        &g.atom_features[a * ATOM_FEATURES..(a + 1) * ATOM_FEATURES]
    }

    fn bond_row(g: &MolGraph, d: usize) -> &[f32] {
        &g.bond_features[d * BOND_FEATURES..(d + 1) * BOND_FEATURES]
    }

    /// The slot set in the one-hot block at `offset` of width `slots`.
    fn slot(row: &[f32], offset: usize, slots: usize) -> usize {
        let set: Vec<usize> = (0..slots).filter(|&k| row[offset + k] == 1.0).collect();
        assert_eq!(set.len(), 1, "block at {offset}: {row:?}");
        set[0]
    }

    fn hydrogens(g: &MolGraph) -> Vec<usize> {
        (0..g.atoms)
            .map(|a| slot(atom_row(g, a), HYDROGENS, 6))
            .collect()
    }

    fn charges(g: &MolGraph) -> Vec<i64> {
        (0..g.atoms)
            .map(|a| slot(atom_row(g, a), CHARGE, 6) as i64 - 2)
            .collect()
    }

    fn elements(g: &MolGraph) -> Vec<&'static str> {
        (0..g.atoms)
            .map(|a| {
                let k = slot(atom_row(g, a), ELEMENT, ELEMENTS.len() + 1);
                ELEMENTS.get(k).map_or("other", |e| e.symbol)
            })
            .collect()
    }

    fn atom_bits(g: &MolGraph, column: usize) -> Vec<bool> {
        (0..g.atoms)
            .map(|a| atom_row(g, a)[column] == 1.0)
            .collect()
    }

    /// For each undirected bond: its two nodes and its feature row.
    fn undirected(g: &MolGraph) -> Vec<(i64, i64, Vec<f32>)> {
        (0..g.bond_src.len() / 2)
            .map(|i| {
                let d = 2 * i;
                (g.bond_src[d], g.bond_dst[d], bond_row(g, d).to_vec())
            })
            .collect()
    }

    /// The bond between nodes `u` and `v`.
    fn bond_between(g: &MolGraph, u: i64, v: i64) -> Vec<f32> {
        let found: Vec<_> = undirected(g)
            .into_iter()
            .filter(|(s, d, _)| (*s, *d) == (u, v) || (*s, *d) == (v, u))
            .collect();
        assert_eq!(found.len(), 1, "bond {u}-{v}");
        found[0].2.clone()
    }

    #[test]
    fn shapes_and_reverse_rule() {
        for smiles in crate::smiles::tests::MOLECULES {
            let m = Molecule::parse(smiles).unwrap();
            let g = featurize(&m);
            let directed = g.bond_src.len();
            assert_eq!(directed % 2, 0, "{smiles}");
            assert_eq!(g.bond_dst.len(), directed, "{smiles}");
            assert_eq!(g.atom_features.len(), g.atoms * ATOM_FEATURES, "{smiles}");
            assert_eq!(g.bond_features.len(), directed * BOND_FEATURES, "{smiles}");
            for d in 0..directed {
                let r = d ^ 1;
                assert_eq!(g.bond_src[d], g.bond_dst[r], "{smiles} bond {d}");
                assert_eq!(g.bond_dst[d], g.bond_src[r], "{smiles} bond {d}");
                assert_ne!(g.bond_src[d], g.bond_dst[d], "{smiles} bond {d}");
                assert!((0..g.atoms as i64).contains(&g.bond_src[d]), "{smiles}");
                assert_eq!(bond_row(&g, d), bond_row(&g, r), "{smiles} bond {d}");
                let row = bond_row(&g, d);
                slot(row, STEREO, 2);
                assert!(row.iter().all(|&x| x == 0.0 || x == 1.0), "{smiles}");
            }
            for a in 0..g.atoms {
                let row = atom_row(&g, a);
                for (offset, slots) in [
                    (ELEMENT, ELEMENTS.len() + 1),
                    (DEGREE, 7),
                    (CHARGE, 6),
                    (CHIRALITY, 3),
                    (HYDROGENS, 6),
                    (HYBRIDISATION, 4),
                ] {
                    slot(row, offset, slots);
                }
                assert!((0.0..=2.6).contains(&row[MASS]), "{smiles}: {row:?}");
            }
            // Without explicit [H] atoms, the graph is the molecule.
            if !m.atoms().iter().any(|a| a.symbol() == "H") {
                assert_eq!(g.atoms, m.atoms().len(), "{smiles}");
                assert_eq!(directed, 2 * m.bonds().len(), "{smiles}");
            }
        }
        assert_eq!(ATOM_FEATURES, 43);
        assert_eq!(BOND_FEATURES, 8);
    }

    #[test]
    fn degree_chirality_mass_and_hybridisation() {
        let g = graph("N[C@@H](C)C#N");
        let degree: Vec<usize> = (0..g.atoms)
            .map(|a| slot(atom_row(&g, a), DEGREE, 7))
            .collect();
        assert_eq!(degree, [1, 3, 1, 2, 1]);
        let chirality: Vec<usize> = (0..g.atoms)
            .map(|a| slot(atom_row(&g, a), CHIRALITY, 3))
            .collect();
        assert_eq!(chirality, [0, 1, 0, 0, 0]);
        // Both marks are one stereocentre: the mark flips with the writing.
        let flipped = graph("N[C@H](C#N)C");
        assert_eq!(slot(atom_row(&flipped, 1), CHIRALITY, 3), 1);
        let hybrid: Vec<usize> = (0..g.atoms)
            .map(|a| slot(atom_row(&g, a), HYBRIDISATION, 4))
            .collect();
        assert_eq!(hybrid, [SP3, SP3, SP3, SP, SP]);
        assert!((atom_row(&g, 0)[MASS] - 0.14007).abs() < 1e-6);
        // Sulfonyl S with four neighbours is sp3; its O and aromatic atoms are sp2.
        let g = graph("CS(=O)(=O)c1ccccc1");
        let hybrid: Vec<usize> = (0..g.atoms)
            .map(|a| slot(atom_row(&g, a), HYBRIDISATION, 4))
            .collect();
        assert_eq!(hybrid, [SP3, SP3, SP2, SP2, SP2, SP2, SP2, SP2, SP2, SP2]);
        // Isotopes give their mass number; `*` is "other" with mass 0.
        let g = graph("[2H]C*");
        assert_eq!(elements(&g), ["H", "C", "other"]);
        assert!((atom_row(&g, 0)[MASS] - 0.02).abs() < 1e-6);
        assert_eq!(atom_row(&g, 2)[MASS], 0.0);
        assert_eq!(slot(atom_row(&g, 0), HYBRIDISATION, 4), OTHER);
    }

    #[test]
    fn hydrogens_of_molecules() {
        assert_eq!(hydrogens(&graph("CCO")), [3, 2, 1]);
        assert_eq!(hydrogens(&graph("c1cc[nH]c1")), [1, 1, 1, 1, 1]);
        let g = graph("[NH4+]");
        assert_eq!(hydrogens(&g), [4]);
        assert_eq!(charges(&g), [1]);
        let g = graph("C[N+](=O)[O-]");
        assert_eq!(hydrogens(&g), [3, 0, 0, 0]);
        assert_eq!(charges(&g), [0, 1, 0, -1]);
        assert_eq!(hydrogens(&graph("OC(=O)C")), [1, 0, 0, 3]);
        // An explicit [H] is merged into its neighbour and its bond dropped.
        let g = graph("[H]OC");
        assert_eq!(g.atoms, 2);
        assert_eq!(elements(&g), ["O", "C"]);
        assert_eq!(hydrogens(&g), [1, 3]);
        assert_eq!(
            (g.bond_src.clone(), g.bond_dst.clone()),
            (vec![0, 1], vec![1, 0])
        );
        assert_eq!(slot(atom_row(&g, 0), DEGREE, 7), 1);
        let g = graph("C([H])([H])([H])[H]");
        assert_eq!((g.atoms, hydrogens(&g), g.bond_src.len()), (1, vec![4], 0));
        // Same features as the molecule written without [H].
        assert_eq!(graph("[H]OC"), graph("OC"));
        // Isotopic hydrogen and H2 stay nodes.
        let g = graph("[2H]OC");
        assert_eq!(elements(&g), ["H", "O", "C"]);
        assert_eq!(hydrogens(&g), [0, 0, 3]);
        let g = graph("[H][H]");
        assert_eq!(
            (g.atoms, hydrogens(&g), g.bond_src.len()),
            (2, vec![0, 0], 2)
        );
        // As RDKit 2026.09 reads them: a hydrogen on `*` or without a bond stays, a mapped
        // one, one carrying a `/` mark and one on a stereocentre go.
        assert_eq!(elements(&graph("*[H]")), ["other", "H"]);
        assert_eq!(elements(&graph("[H+]")), ["H"]);
        assert_eq!(hydrogens(&graph("[H:1]C")), [4]);
        assert_eq!(hydrogens(&graph("[H]/C(F)=C/F")), [1, 0, 1, 0]);
        assert_eq!(hydrogens(&graph("[H][C@](F)(Cl)Br")), [1, 0, 0, 0]);
        assert_eq!(hydrogens(&graph("[H][N+](C)(C)C")), [1, 3, 3, 3]);
    }

    #[test]
    fn ring_bits_fused_and_bridged() {
        // Naphthalene: every atom and bond, the fusion bond included, is in a ring.
        let g = graph("c1ccc2ccccc2c1");
        assert!(atom_bits(&g, ATOM_RING).iter().all(|&x| x));
        assert_eq!(undirected(&g).len(), 11);
        assert!(undirected(&g).iter().all(|(_, _, r)| r[BOND_RING] == 1.0));
        assert!(undirected(&g).iter().all(|(_, _, r)| r[ORDER + 3] == 1.0));
        // Bridged bicycle (norbornane): all in rings.
        let g = graph("C1CC2CCC1C2");
        assert!(atom_bits(&g, ATOM_RING).iter().all(|&x| x));
        assert!(undirected(&g).iter().all(|(_, _, r)| r[BOND_RING] == 1.0));
        // Bicyclopropyl: the bridge (graph bridge) between the rings is not in a ring, its
        // atoms are; a methyl substituent is not.
        let g = graph("C1CC1C1CC1C");
        assert_eq!(
            atom_bits(&g, ATOM_RING),
            [true, true, true, true, true, true, false]
        );
        assert_eq!(bond_between(&g, 2, 3)[BOND_RING], 0.0);
        assert_eq!(bond_between(&g, 5, 6)[BOND_RING], 0.0);
        assert_eq!(bond_between(&g, 0, 2)[BOND_RING], 1.0);
        assert_eq!(bond_between(&g, 3, 5)[BOND_RING], 1.0);
    }

    #[test]
    fn biphenyl_link_is_single() {
        let g = graph("c1ccccc1c1ccccc1");
        let link = bond_between(&g, 5, 6);
        assert_eq!(&link[ORDER..ORDER + 4], [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(link[BOND_RING], 0.0);
        assert_eq!(link[CONJUGATED], 1.0);
        let ring = bond_between(&g, 0, 1);
        assert_eq!(&ring[ORDER..ORDER + 4], [0.0, 0.0, 0.0, 1.0]);
        // A written `:` is aromatic; `-` between aromatic ring atoms is single.
        let g = graph("c1ccccc1:c1ccccc1");
        assert_eq!(bond_between(&g, 5, 6)[ORDER + 3], 1.0);
        let g = graph("c1ccccc1-c1ccccc1");
        assert_eq!(bond_between(&g, 5, 6)[ORDER], 1.0);
        // Phenanthrenequinone: the bond joining the benzene rings lies in a ring, but not in a
        // ring of aromatic atoms, so it is single.
        let g = graph("O=C1C(=O)c2ccccc2c2ccccc12");
        let link = bond_between(&g, 9, 10);
        assert_eq!(&link[ORDER..ORDER + 4], [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(link[BOND_RING], 1.0);
        assert_eq!(bond_between(&g, 10, 15)[ORDER + 3], 1.0);
        assert_eq!(bond_between(&g, 1, 15)[ORDER], 1.0);
    }

    #[test]
    fn conjugation_and_stereo() {
        let conjugated = |smiles: &str| -> Vec<bool> {
            undirected(&graph(smiles))
                .iter()
                .map(|(_, _, r)| r[CONJUGATED] == 1.0)
                .collect()
        };
        assert_eq!(conjugated("C=CC=C"), [true, true, true]);
        assert_eq!(conjugated("C=CCC=C"), [false, false, false, false]);
        assert_eq!(conjugated("CC=O"), [false, false]);
        assert_eq!(conjugated("C=Cc1ccccc1")[..2], [true, true]);
        // Lone pairs conjugate (amide, phenol), a sulfonyl group does not.
        assert_eq!(conjugated("CC(=O)N"), [false, true, true]);
        assert!(conjugated("Oc1ccccc1")[0]);
        assert_eq!(conjugated("CS(=O)(=O)c1ccccc1")[..4], [false; 4]);
        let hybrid = |smiles: &str| -> Vec<usize> {
            let g = graph(smiles);
            (0..g.atoms)
                .map(|a| slot(atom_row(&g, a), HYBRIDISATION, 4))
                .collect()
        };
        assert_eq!(hybrid("CC(=O)N"), [SP3, SP2, SP2, SP2]);
        assert_eq!(hybrid("CCN"), [SP3, SP3, SP3]);
        assert_eq!(hybrid("C[N+](=O)[O-]"), [SP3, SP2, SP2, SP2]);
        assert_eq!(hybrid("CCl"), [SP3, SP3]);
        assert_eq!(hybrid("c1cc[nH]c1"), [SP2; 5]);
        assert_eq!(hybrid("OB(O)c1ccccc1")[..3], [SP3, SP2, SP3]);
        assert_eq!(hybrid("C=C=C"), [SP2, SP, SP2]);
        let stereo = |smiles: &str| -> Vec<usize> {
            let g = graph(smiles);
            (0..g.bond_src.len() / 2)
                .map(|i| slot(bond_row(&g, 2 * i), STEREO, 2))
                .collect()
        };
        assert_eq!(stereo("F/C=C/F"), [0, 1, 0]);
        assert_eq!(stereo("F/C=CF"), [0, 0, 0]);
        assert_eq!(stereo("FC=CF"), [0, 0, 0]);
        // A mark on a removed [H] still makes the double bond a stereo one.
        assert_eq!(stereo("[H]/C(F)=C/F"), [0, 1, 0]);
    }

    /// Sorted feature rows of the atoms, and of the bonds as (atom row, bond row, atom row).
    fn multisets(g: &MolGraph) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
        let bits = |r: &[f32]| r.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let mut atoms: Vec<Vec<u32>> = (0..g.atoms).map(|a| bits(atom_row(g, a))).collect();
        atoms.sort();
        let mut bonds: Vec<Vec<u32>> = (0..g.bond_src.len())
            .map(|d| {
                let mut v = bits(atom_row(g, g.bond_src[d] as usize));
                v.extend(bits(bond_row(g, d)));
                v.extend(bits(atom_row(g, g.bond_dst[d] as usize)));
                v
            })
            .collect();
        bonds.sort();
        (atoms, bonds)
    }

    #[test]
    fn independent_of_writing() {
        for (a, b) in [
            ("OCC", "CCO"),
            ("c1ccccc1O", "Oc1ccccc1"),
            ("c1ccccc1O", "c1cc(O)ccc1"),
            ("C[N+](=O)[O-]", "[O-][N+](C)=O"),
            ("CC(=O)Nc1ccc(O)cc1", "Oc1ccc(NC(C)=O)cc1"),
            ("c1ccc2[nH]ccc2c1", "c12ccccc1cc[nH]2"),
            ("C1CC2CCC1C2", "C1C2CCC1CC2"),
            ("[H]OC", "CO"),
            ("C/C=C/C", "C(/C)=C/C"),
            (
                "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
                "Clc1ccc(cc1)N1CCN(Cc2nc3ccccc3n2C)CC1",
            ),
        ] {
            let (ga, gb) = (graph(a), graph(b));
            assert_eq!(ga.atoms, gb.atoms, "{a} / {b}");
            assert_eq!(multisets(&ga), multisets(&gb), "{a} / {b}");
        }
    }

    #[test]
    fn invalid_smiles_is_an_error_naming_it() {
        for smiles in ["C1CC", "C(C", "CXC", ""] {
            let err = featurize_smiles(smiles).unwrap_err();
            assert!(
                matches!(err, Error::InvalidSmiles { .. }),
                "{smiles}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains(&format!("{smiles:?}")), "{message}");
            assert!(message.contains("position"), "{message}");
        }
    }
}
