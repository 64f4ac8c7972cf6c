//! Finding the same molecule written differently, without a cheminformatics toolkit.
//!
//! Three levels, from strict to loose:
//! 1. the exact SMILES string;
//! 2. the string with stereo marks (`@`, `/`, `\`) removed;
//! 3. a graph key: the SMILES is parsed into atoms (element, aromaticity, charge) and bonds
//!    (single, double, triple, aromatic), and hashed with Weisfeiler–Lehman refinement, which
//!    does not depend on atom order, branch layout, ring-closure numbers, hydrogen notation
//!    or stereo.
//!
//! What the graph key cannot catch: Kekulé vs aromatic writing of the same ring, tautomers,
//! different protonation or salt forms, and isotopes are ignored; in principle two different
//! graphs that WL refinement cannot tell apart would collide (rare for drug-like molecules).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// How two SMILES were found to be the same molecule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Identical strings.
    Exact,
    /// Identical after removing stereo marks.
    StereoStripped,
    /// Same molecular graph key.
    Graph,
}

/// The stereo-stripped form of a SMILES (`@` and `/`, `\` removed; `[C@@H]` → `[CH]`).
pub fn strip_stereo(smiles: &str) -> String {
    smiles
        .chars()
        .filter(|c| !matches!(c, '@' | '/' | '\\'))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Atom {
    element: String,
    aromatic: bool,
    charge: i32,
}

/// A bond `(i, j, order×2)`, aromatic = 3.
type Bond = (usize, usize, u8);

/// Parses a SMILES into atoms and bonds. `None` when the string is not parseable by this
/// small parser.
fn parse(smiles: &str) -> Option<(Vec<Atom>, Vec<Bond>)> {
    let b = smiles.as_bytes();
    let mut atoms: Vec<Atom> = Vec::new();
    let mut bonds = Vec::new();
    let mut stack: Vec<Option<usize>> = Vec::new();
    let mut prev: Option<usize> = None;
    let mut pending: Option<u8> = None;
    let mut rings: HashMap<u32, (usize, Option<u8>)> = HashMap::new();
    let mut i = 0;
    let bond_between = |atoms: &Vec<Atom>, a: usize, c: usize, explicit: Option<u8>| -> u8 {
        explicit.unwrap_or(if atoms[a].aromatic && atoms[c].aromatic {
            3
        } else {
            2
        })
    };
    while i < b.len() {
        let c = b[i] as char;
        let mut new_atom: Option<Atom> = None;
        match c {
            '(' => {
                stack.push(prev);
                i += 1;
                continue;
            }
            ')' => {
                prev = stack.pop()?;
                i += 1;
                continue;
            }
            '.' => {
                prev = None;
                i += 1;
                continue;
            }
            '-' | '/' | '\\' => pending = Some(2),
            '=' => pending = Some(4),
            '#' => pending = Some(6),
            '$' => pending = Some(8),
            ':' => pending = Some(3),
            '0'..='9' | '%' => {
                let (num, len) = if c == '%' {
                    let s = smiles.get(i + 1..i + 3)?;
                    (s.parse::<u32>().ok()?, 3)
                } else {
                    (c.to_digit(10)?, 1)
                };
                let cur = prev?;
                match rings.remove(&num) {
                    Some((other, bond)) => {
                        let order = bond_between(&atoms, cur, other, pending.or(bond));
                        bonds.push((cur, other, order));
                    }
                    None => {
                        rings.insert(num, (cur, pending));
                    }
                }
                pending = None;
                i += len;
                continue;
            }
            '[' => {
                let end = i + smiles[i..].find(']')?;
                new_atom = Some(parse_bracket(&smiles[i + 1..end])?);
                i = end;
            }
            _ => {
                let two = smiles.get(i..i + 2);
                let (element, aromatic, len) = match (two, c) {
                    (Some("Cl"), _) => ("Cl", false, 2),
                    (Some("Br"), _) => ("Br", false, 2),
                    (_, 'B' | 'C' | 'N' | 'O' | 'P' | 'S' | 'F' | 'I') => {
                        (&smiles[i..i + 1], false, 1)
                    }
                    (_, 'b' | 'c' | 'n' | 'o' | 'p' | 's') => (&smiles[i..i + 1], true, 1),
                    (_, '*') => ("*", false, 1),
                    _ => return None,
                };
                new_atom = Some(Atom {
                    element: element.to_ascii_uppercase(),
                    aromatic,
                    charge: 0,
                });
                i += len - 1;
            }
        }
        if let Some(atom) = new_atom {
            atoms.push(atom);
            let cur = atoms.len() - 1;
            if let Some(p) = prev {
                let order = bond_between(&atoms, p, cur, pending);
                bonds.push((p, cur, order));
            }
            pending = None;
            prev = Some(cur);
        }
        i += 1;
    }
    if !rings.is_empty() || !stack.is_empty() || atoms.is_empty() {
        return None;
    }
    Some((atoms, bonds))
}

fn parse_bracket(inner: &str) -> Option<Atom> {
    let s = inner.trim_start_matches(|c: char| c.is_ascii_digit());
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    let mut end = first.len_utf8();
    if first.is_ascii_uppercase() {
        if let Some((j, c)) = chars.next() {
            if c.is_ascii_lowercase() && !matches!(c, 'h') {
                end = j + 1;
            }
        }
    } else if first.is_ascii_lowercase() {
        // aromatic: se, as, te or one letter
        if let Some(two) = s.get(0..2) {
            if matches!(two, "se" | "as" | "te") {
                end = 2;
            }
        }
    } else if first != '*' {
        return None;
    }
    let symbol = &s[..end];
    let rest = &s[end..];
    let aromatic = symbol.chars().next()?.is_ascii_lowercase();
    let mut charge = 0i32;
    if let Some(p) = rest.find(['+', '-']) {
        let sign = if rest[p..].starts_with('+') { 1 } else { -1 };
        let tail = &rest[p + 1..];
        let digits: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
        let repeats = tail
            .chars()
            .take_while(|&c| c == if sign > 0 { '+' } else { '-' })
            .count();
        charge = sign
            * if !digits.is_empty() {
                digits.parse().ok()?
            } else {
                1 + repeats as i32
            };
    }
    let mut element = symbol.to_string();
    if aromatic {
        let mut c = element.chars();
        element = c.next()?.to_ascii_uppercase().to_string() + c.as_str();
    }
    Some(Atom {
        element,
        aromatic,
        charge,
    })
}

fn h64<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// The order-independent graph key of a SMILES, or `None` when it cannot be parsed.
pub fn graph_key(smiles: &str) -> Option<u64> {
    let (atoms, bonds) = parse(smiles)?;
    let n = atoms.len();
    let mut adj: Vec<Vec<(usize, u8)>> = vec![vec![]; n];
    for &(a, b, o) in &bonds {
        adj[a].push((b, o));
        adj[b].push((a, o));
    }
    let mut labels: Vec<u64> = atoms.iter().map(h64).collect();
    for _ in 0..6 {
        labels = (0..n)
            .map(|i| {
                let mut nb: Vec<(u8, u64)> = adj[i].iter().map(|&(j, o)| (o, labels[j])).collect();
                nb.sort_unstable();
                h64(&(labels[i], nb))
            })
            .collect();
    }
    let mut sorted = labels;
    sorted.sort_unstable();
    Some(h64(&(sorted, bonds.len())))
}

/// Index of molecules by exact string, stereo-stripped string and graph key.
#[derive(Debug, Default)]
pub struct MoleculeIndex {
    exact: HashMap<String, usize>,
    stripped: HashMap<String, usize>,
    graph: HashMap<u64, usize>,
}

impl MoleculeIndex {
    /// Indexes `smiles` (the value stored is the position in the slice).
    pub fn new<S: AsRef<str>>(smiles: &[S]) -> Self {
        let mut idx = MoleculeIndex::default();
        for (i, s) in smiles.iter().enumerate() {
            let s = s.as_ref();
            idx.exact.entry(s.to_string()).or_insert(i);
            idx.stripped.entry(strip_stereo(s)).or_insert(i);
            if let Some(k) = graph_key(s) {
                idx.graph.entry(k).or_insert(i);
            }
        }
        idx
    }

    /// The first indexed molecule equal to `smiles`, and how it matched.
    pub fn find(&self, smiles: &str) -> Option<(usize, MatchKind)> {
        if let Some(&i) = self.exact.get(smiles) {
            return Some((i, MatchKind::Exact));
        }
        if let Some(&i) = self.stripped.get(&strip_stereo(smiles)) {
            return Some((i, MatchKind::StereoStripped));
        }
        graph_key(smiles)
            .and_then(|k| self.graph.get(&k))
            .map(|&i| (i, MatchKind::Graph))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_molecule_written_differently() {
        let pairs = [
            ("CCO", "OCC"),
            ("c1ccccc1O", "Oc1ccccc1"),
            ("CC(=O)Nc1ccc(O)cc1", "Oc1ccc(NC(C)=O)cc1"),
            ("C1CC1C(=O)O", "OC(=O)C1CC1"),
            ("c1ccc2[nH]ccc2c1", "c1ccc2c(c1)cc[nH]2"),
            ("C[C@H](N)C(=O)O", "N[C@@H](C)C(O)=O"),
            ("[NH4+].[Cl-]", "[Cl-].[NH4+]"),
            ("C1CCCCC1CC2CC2", "C%10CC%10CC1CCCCC1"),
        ];
        for (a, b) in pairs {
            assert_eq!(graph_key(a), graph_key(b), "{a} vs {b}");
            assert!(graph_key(a).is_some(), "{a}");
        }
    }

    #[test]
    fn different_molecules_differ() {
        let mols = [
            "CCO", "CCN", "CC=O", "C=CO", "c1ccccc1", "c1ccncc1", "CC(C)O", "CCCO", "[O-]C", "OC",
            "C1CC1", "CCC",
        ];
        let keys: std::collections::HashSet<_> =
            mols.iter().map(|m| graph_key(m).unwrap()).collect();
        assert_eq!(keys.len(), mols.len());
    }

    #[test]
    fn index_reports_the_level() {
        let idx = MoleculeIndex::new(&["C/C=C/C", "CCO", "c1ccccc1Cl"]);
        assert_eq!(idx.find("CCO"), Some((1, MatchKind::Exact)));
        assert_eq!(idx.find("CC=CC"), Some((0, MatchKind::StereoStripped)));
        assert_eq!(idx.find("Clc1ccccc1"), Some((2, MatchKind::Graph)));
        assert_eq!(idx.find("CCN"), None);
        assert_eq!(graph_key("C1CC"), None);
    }
}
