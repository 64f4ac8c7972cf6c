//! Reading a SMILES: one left-to-right pass over the bytes with an explicit branch stack
//! (no recursion), a fixed table of the 100 ring numbers, then ring membership and the
//! aromatic-atoms-in-rings rule. Each kind of token has its own step; ring-closure labels are
//! read in `closure`, bracket atoms in `bracket`, and messages are written in `message`.

use super::bracket::bracket_atom;
use super::closure::unclosed_ring;
use super::message::{bond_not_followed, dot_not_followed, error, quoted, unexpected};
use super::reader::{Last, Reader};
use super::{Atom, Bond, Molecule, SmilesError};

/// Reads `smiles` into a [`Molecule`], or says where it is not valid.
pub(super) fn parse(s: &str) -> Result<Molecule, SmilesError> {
    if s.is_empty() {
        return Err(SmilesError::new(
            1,
            "empty SMILES: an atom must come at position 1".to_string(),
        ));
    }
    let mut reader = Reader::new(s);
    let mut i = 0usize;
    while i < s.len() {
        i = reader.token(i)?;
    }
    reader.finish()
}

impl<'s> Reader<'s> {
    fn new(s: &'s str) -> Self {
        Reader {
            s,
            atoms: Vec::with_capacity(s.len() / 2 + 1),
            bonds: Vec::with_capacity(s.len() / 2 + 1),
            branches: Vec::new(),
            rings: [None; 100],
            open_rings: 0,
            prev: None,
            pending: None,
            last: Last::Start,
            dot_in_branch: false,
            incoming: None,
            first_closure: 0,
        }
    }

    /// Reads the token at byte offset `i`; returns the offset after it.
    fn token(&mut self, i: usize) -> Result<usize, SmilesError> {
        let c = self.s.as_bytes()[i];
        match c {
            b'(' => self.open_branch(i),
            b')' => self.close_branch(i),
            b'.' => self.dot(i),
            b'-' | b'=' | b'#' | b'$' | b':' | b'/' | b'\\' => self.bond(i, c),
            b'0'..=b'9' | b'%' => self.ring_bond(i, c),
            _ => self.atom(i, c),
        }
    }

    fn open_branch(&mut self, i: usize) -> Result<usize, SmilesError> {
        let s = self.s;
        match self.last {
            Last::Atom | Last::Ring | Last::Close => {}
            Last::Bond { at, .. } => return Err(bond_not_followed(s, at)),
            Last::Start | Last::Dot(_) => {
                return Err(error(
                    s,
                    i,
                    format!("'(' at position {} does not follow an atom", i + 1),
                ))
            }
            Last::Open(_) => {
                return Err(error(
                    s,
                    i,
                    format!(
                        "'(' at position {} opens a branch where an atom must come",
                        i + 1
                    ),
                ))
            }
        }
        self.branches.push((self.prev, i));
        self.last = Last::Open(i);
        Ok(i + 1)
    }

    fn close_branch(&mut self, i: usize) -> Result<usize, SmilesError> {
        let s = self.s;
        match self.last {
            Last::Bond { at, .. } => return Err(bond_not_followed(s, at)),
            Last::Open(at) => {
                return Err(error(
                    s,
                    at,
                    format!("empty branch '()' at position {}", at + 1),
                ))
            }
            Last::Dot(at) => return Err(dot_not_followed(s, at)),
            _ => {}
        }
        let Some((p, _)) = self.branches.pop() else {
            return Err(error(
                s,
                i,
                format!("')' at position {} has no matching '('", i + 1),
            ));
        };
        self.prev = p;
        self.last = Last::Close;
        Ok(i + 1)
    }

    fn dot(&mut self, i: usize) -> Result<usize, SmilesError> {
        let s = self.s;
        match self.last {
            Last::Atom | Last::Ring | Last::Close | Last::Open(_) => {}
            Last::Bond { at, .. } => return Err(bond_not_followed(s, at)),
            Last::Start => {
                return Err(error(
                    s,
                    i,
                    format!("'.' at position {} does not follow an atom", i + 1),
                ))
            }
            Last::Dot(at) => {
                return Err(error(
                    s,
                    i,
                    format!(
                        "'.' at position {} follows another '.' at position {}",
                        i + 1,
                        at + 1
                    ),
                ))
            }
        }
        if !self.branches.is_empty() {
            self.dot_in_branch = true;
        }
        self.prev = None;
        self.last = Last::Dot(i);
        Ok(i + 1)
    }

    /// A bond symbol `c`: kept for the next atom or ring-closure digit.
    fn bond(&mut self, i: usize, c: u8) -> Result<usize, SmilesError> {
        let s = self.s;
        let ring_ok = match self.last {
            Last::Atom | Last::Ring => true,
            Last::Open(_) | Last::Close => false,
            Last::Start | Last::Dot(_) => {
                return Err(error(
                    s,
                    i,
                    format!(
                        "{} at position {} does not follow an atom",
                        quoted(s, i),
                        i + 1
                    ),
                ))
            }
            Last::Bond { at, .. } => {
                return Err(error(
                    s,
                    i,
                    format!(
                        "{} at position {} follows another bond {} at position {}",
                        quoted(s, i),
                        i + 1,
                        quoted(s, at),
                        at + 1
                    ),
                ))
            }
        };
        self.pending = Some((c as char, i));
        self.last = Last::Bond { at: i, ring_ok };
        Ok(i + 1)
    }

    /// An atom (organic subset, `*` or bracket) starting with byte `c` at offset `i`, bonded
    /// to the previous atom of its chain.
    fn atom(&mut self, i: usize, c: u8) -> Result<usize, SmilesError> {
        let atom = if c == b'[' {
            bracket_atom(self.s, i)?
        } else {
            organic_atom(self.s, i)?
        };
        let end = atom.end;
        let index = self.atoms.len();
        self.incoming = None;
        if let Some(p) = self.prev {
            self.bonds.push(Bond {
                from: p,
                to: index,
                symbol: self.pending.take().map(|(ch, _)| ch),
                ring_closure: false,
                from_at: atom.start,
                to_at: atom.start,
            });
            self.incoming = Some(self.bonds.len() - 1);
        }
        self.pending = None;
        self.first_closure = self.bonds.len();
        self.atoms.push(atom);
        self.prev = Some(index);
        self.last = Last::Atom;
        Ok(end)
    }

    /// The checks at the end of the string, then the molecule with its rings.
    fn finish(self) -> Result<Molecule, SmilesError> {
        let s = self.s;
        match self.last {
            Last::Bond { at, .. } => return Err(bond_not_followed(s, at)),
            Last::Dot(at) => return Err(dot_not_followed(s, at)),
            _ => {}
        }
        if let Some(&(_, at)) = self.branches.first() {
            return Err(error(s, at, format!("unclosed '(' at position {}", at + 1)));
        }
        if self.open_rings > 0 {
            return Err(unclosed_ring(s, &self.rings));
        }
        let molecule = Molecule::from_parts(s, self.atoms, self.bonds, self.dot_in_branch);
        aromatic_atoms_in_rings(molecule)
    }
}

/// `molecule`, unless one of its aromatic atoms is not in a ring.
fn aromatic_atoms_in_rings(molecule: Molecule) -> Result<Molecule, SmilesError> {
    let outside = (0..molecule.atoms.len())
        .find(|&a| molecule.atoms[a].aromatic && !molecule.atom_in_ring(a));
    if let Some(a) = outside {
        let atom = &molecule.atoms[a];
        return Err(SmilesError::new(
            atom.start + 1,
            format!(
                "aromatic atom '{}' at position {} is not in a ring",
                molecule.atom_text(a),
                atom.start + 1
            ),
        ));
    }
    Ok(molecule)
}

/// An organic-subset atom (or `*`) at byte offset `i`.
fn organic_atom(s: &str, i: usize) -> Result<Atom, SmilesError> {
    let b = s.as_bytes();
    let next = b.get(i + 1).copied();
    let (symbol, aromatic, len) = match b[i] {
        b'C' if next == Some(b'l') => ("Cl", false, 2),
        b'B' if next == Some(b'r') => ("Br", false, 2),
        b'B' => ("B", false, 1),
        b'C' => ("C", false, 1),
        b'N' => ("N", false, 1),
        b'O' => ("O", false, 1),
        b'P' => ("P", false, 1),
        b'S' => ("S", false, 1),
        b'F' => ("F", false, 1),
        b'I' => ("I", false, 1),
        b'b' => ("B", true, 1),
        b'c' => ("C", true, 1),
        b'n' => ("N", true, 1),
        b'o' => ("O", true, 1),
        b'p' => ("P", true, 1),
        b's' => ("S", true, 1),
        b'*' => ("*", false, 1),
        _ => return Err(unexpected(s, i)),
    };
    Ok(Atom {
        symbol,
        aromatic,
        bracket: false,
        isotope: None,
        charge: 0,
        hydrogens: None,
        chirality: None,
        chirality_at: 0,
        class: None,
        start: i,
        end: i + len,
    })
}
