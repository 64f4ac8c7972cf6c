//! The one SMILES reader of lipo: an OpenSMILES grammar check that also builds the molecular
//! graph as written, the graph key used to find duplicates, the random-SMILES writer used
//! for augmentation, and the canonical writer that makes model input independent of how a
//! molecule was written.
//!
//! - [`check`] / [`Molecule::parse`]: the grammar of OpenSMILES (organic-subset and bracket
//!   atoms, bonds, branches, ring closures, dots), that aromatic atoms lie in a ring, and the
//!   chemistry RDKit's sanitization checks: allowed valences and a Kekulé structure for
//!   aromatic rings (`valence.rs`, `kekule.rs`). Errors name the offending character or atom
//!   and its 1-based position. [`Molecule::hydrogen_count`] gives each atom's hydrogens.
//! - [`Molecule::graph_key`] / [`graph_key`]: a Weisfeiler–Lehman hash of the graph that does
//!   not depend on atom order, branch layout, ring numbers, hydrogen notation or stereo.
//! - [`Molecule::random_smiles`]: the same molecule written from a random atom with
//!   neighbours in random order.
//! - [`Molecule::canonical_ranks`] / [`Molecule::canonical_smiles`] / [`canonical`]: atom
//!   ranks that do not depend on atom order (refinement of atom invariants, then
//!   tie-breaking; stereo taken into account), and the writing that follows them, so that
//!   every writing of a molecule gives one string. The canonical writing keeps atom texts
//!   as written (`[nH]`, `[Cl]`, `[C@@H]` with its mark recomputed) and drops only bond
//!   symbols the implicit bond means anyway (`-` unless both atoms are aromatic, `:` between
//!   aromatic atoms). So writings that differ in more than notation stay apart: Kekulé and
//!   aromatic forms of a ring, `Cl` and `[Cl]`, `/`, `\` marks on different bonds of one
//!   double bond, explicit `[H]` atoms and hydrogen counts.
//!
//! One deliberate departure from OpenSMILES-accepting toolkits such as RDKit: a ring-closure
//! digit must directly follow its atom (or another ring-closure digit of it), as the
//! OpenSMILES grammar says (`branched_atom ::= atom ringbond* branch*`); `C(C)1CC1` is an
//! error.

mod bracket;
mod canon;
mod closure;
mod kekule;
mod key;
mod message;
mod parse;
mod partition;
mod parts;
mod reader;
mod ring;
mod valence;
mod write;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

/// Why a string is not a valid SMILES, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmilesError {
    /// The 1-based character position the message refers to.
    pub position: usize,
    /// The whole message, naming the character or token and its position
    /// (for example `unclosed ring bond 1 opened at position 2`).
    pub reason: String,
}

impl SmilesError {
    pub(crate) fn new(position: usize, reason: String) -> Self {
        SmilesError { position, reason }
    }
}

impl fmt::Display for SmilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SmilesError {}

/// Checks that `smiles` is a valid SMILES (see the module documentation).
pub fn check(smiles: &str) -> Result<(), SmilesError> {
    Molecule::parse(smiles).map(|_| ())
}

/// The order-independent graph key of `smiles`, or `None` when it is not a valid SMILES.
pub fn graph_key(smiles: &str) -> Option<u64> {
    Molecule::parse(smiles).ok().map(|m| m.graph_key())
}

/// The canonical SMILES of `smiles` ([`Molecule::canonical_smiles`]): one string for every
/// writing of the same molecule (same atom texts, bonds and stereo). When the molecule
/// cannot be rewritten, `smiles` comes back unchanged, so such a molecule keeps the form it
/// was given in: extended chirality such as `@TH1`, a `.` inside a branch (see
/// [`Molecule::randomizable`]), or a writing that would need more than 99 ring numbers.
/// Errors when `smiles` is not valid.
pub fn canonical(smiles: &str) -> Result<String, SmilesError> {
    let molecule = Molecule::parse(smiles)?;
    Ok(molecule
        .canonical_smiles()
        .unwrap_or_else(|| smiles.to_string()))
}

/// Chirality of a bracket atom, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chirality {
    /// `@`: seen from the first neighbour, the others are anticlockwise.
    Anticlockwise,
    /// `@@`: clockwise.
    Clockwise,
    /// `@TH1`, `@TH2`: tetrahedral, written with its class.
    Tetrahedral(u8),
    /// `@AL1`, `@AL2`: allene-like.
    Allene(u8),
    /// `@SP1` to `@SP3`: square planar.
    SquarePlanar(u8),
    /// `@TB1` to `@TB20`: trigonal bipyramidal.
    TrigonalBipyramidal(u8),
    /// `@OH1` to `@OH30`: octahedral.
    Octahedral(u8),
}

impl Chirality {
    /// Whether this is plain `@` or `@@` (the only marks the random writer rewrites).
    pub fn is_tetrahedral_shorthand(self) -> bool {
        matches!(self, Chirality::Anticlockwise | Chirality::Clockwise)
    }
}

/// One atom as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    pub(crate) symbol: &'static str,
    pub(crate) aromatic: bool,
    pub(crate) bracket: bool,
    pub(crate) isotope: Option<u16>,
    pub(crate) charge: i8,
    pub(crate) hydrogens: Option<u8>,
    pub(crate) chirality: Option<Chirality>,
    /// Byte offset of the chirality mark's `@` in the SMILES.
    pub(crate) chirality_at: usize,
    pub(crate) class: Option<u32>,
    /// Byte range of the atom's text in the SMILES.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Atom {
    /// The element symbol with its periodic-table capitalisation (`C` for `c`, `Se` for
    /// `[se]`, `Cl`), or `*` for the wildcard atom.
    pub fn symbol(&self) -> &'static str {
        self.symbol
    }

    /// Whether the atom was written aromatic (lower case: `c`, `[nH]`, `[se]`).
    pub fn aromatic(&self) -> bool {
        self.aromatic
    }

    /// Whether the atom was written in brackets.
    pub fn bracket(&self) -> bool {
        self.bracket
    }

    /// The isotope (mass number) of a bracket atom, if written.
    pub fn isotope(&self) -> Option<u16> {
        self.isotope
    }

    /// The formal charge (0 unless written in brackets).
    pub fn charge(&self) -> i8 {
        self.charge
    }

    /// The hydrogen count written in brackets (`Some(0)` for a bracket atom without `H`), or
    /// `None` for an organic-subset atom, whose hydrogens are implicit.
    pub fn hydrogens(&self) -> Option<u8> {
        self.hydrogens
    }

    /// The chirality mark, as written.
    pub fn chirality(&self) -> Option<Chirality> {
        self.chirality
    }

    /// The atom class (`[CH3:7]` → 7), if written.
    pub fn class(&self) -> Option<u32> {
        self.class
    }

    /// The 1-based character position of the atom's first character in the SMILES.
    pub fn position(&self) -> usize {
        self.start + 1
    }

    /// The byte range of the atom's text in [`Molecule::smiles`].
    pub fn span(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// One bond as written: a chain bond between neighbouring atoms or a ring closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bond {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) symbol: Option<char>,
    pub(crate) ring_closure: bool,
    /// Byte offset where the bond is listed at `from`: the ring-closure digit, or for a
    /// chain bond the atom `to`.
    pub(crate) from_at: usize,
    /// Byte offset where the bond is listed at `to`: the ring-closure digit, or the atom.
    pub(crate) to_at: usize,
}

impl Bond {
    /// The atom written first (for a ring closure, the atom that opened it).
    pub fn from(&self) -> usize {
        self.from
    }

    /// The atom written second (for a ring closure, the atom that closed it).
    pub fn to(&self) -> usize {
        self.to
    }

    /// The bond symbol written (`-`, `=`, `#`, `$`, `:`, `/`, `\`), or `None` for an
    /// implicit bond (single, or aromatic between two aromatic atoms). For a ring closure
    /// the symbol at the closing digit, else the one at the opening digit.
    pub fn symbol(&self) -> Option<char> {
        self.symbol
    }

    /// Whether the bond was written as a ring closure (`C1CC1`'s last bond).
    pub fn ring_closure(&self) -> bool {
        self.ring_closure
    }

    /// The other atom of the bond.
    pub fn other(&self, atom: usize) -> usize {
        if self.from == atom {
            self.to
        } else {
            self.from
        }
    }
}

/// A parsed SMILES: atoms and bonds as written, with ring membership.
#[derive(Debug, Clone)]
pub struct Molecule {
    smiles: String,
    atoms: Vec<Atom>,
    bonds: Vec<Bond>,
    /// Bonds of atom `a` are `adjacency[adjacency_start[a]..adjacency_start[a + 1]]`, in
    /// bond order (the order the bonds were completed while reading).
    adjacency_start: Vec<usize>,
    adjacency: Vec<usize>,
    in_ring: Vec<bool>,
    /// A `.` inside a branch (`C(.C)C`): valid, but the random writer declines it, as the
    /// writer it replaces did.
    dot_in_branch: bool,
    /// Implicit hydrogens of each atom (see `valence.rs`).
    implicit_h: Vec<u8>,
}

impl Molecule {
    /// Parses and checks `smiles` (see the module documentation for the rules).
    pub fn parse(smiles: &str) -> Result<Molecule, SmilesError> {
        let mut molecule = parse::parse(smiles)?;
        molecule.implicit_h = valence::check(&molecule)?;
        Ok(molecule)
    }

    /// The SMILES this molecule was read from.
    pub fn smiles(&self) -> &str {
        &self.smiles
    }

    /// The atoms, in written order.
    pub fn atoms(&self) -> &[Atom] {
        &self.atoms
    }

    /// The bonds, in the order they were completed while reading (a ring closure when its
    /// second digit is read).
    pub fn bonds(&self) -> &[Bond] {
        &self.bonds
    }

    /// The text of atom `atom` as written (`C`, `Cl`, `c`, `[nH]`, `[C@@H]`).
    pub fn atom_text(&self, atom: usize) -> &str {
        let a = &self.atoms[atom];
        &self.smiles[a.start..a.end]
    }

    /// The bonds of atom `atom` (indices into [`Molecule::bonds`]), in bond order.
    pub fn atom_bonds(&self, atom: usize) -> &[usize] {
        &self.adjacency[self.adjacency_start[atom]..self.adjacency_start[atom + 1]]
    }

    /// Whether bond `bond` lies in a ring (is not a bridge of the graph).
    pub fn bond_in_ring(&self, bond: usize) -> bool {
        self.in_ring[bond]
    }

    /// Whether atom `atom` lies in a ring (has a bond that lies in a ring).
    pub fn atom_in_ring(&self, atom: usize) -> bool {
        self.atom_bonds(atom).iter().any(|&b| self.in_ring[b])
    }
}

impl Molecule {
    /// The implicit hydrogens of atom `atom`: those of an organic-subset atom (`C`, `c`, `N`,
    /// …) that the SMILES leaves unwritten, counted as RDKit does (see the `valence` module
    /// documentation: the lowest allowed valence at or above the explicit valence, minus the
    /// explicit valence; for aromatic atoms the count of the Kekulé structure). 0 for bracket
    /// atoms, whose hydrogens are written, and for `*`.
    pub fn implicit_hydrogens(&self, atom: usize) -> u8 {
        self.implicit_h[atom]
    }

    /// All hydrogens attached to atom `atom`: the bracket count (`[nH]` 1, `[CH2]` 2) or the
    /// implicit hydrogens of an organic-subset atom. Hydrogen atoms written as atoms of their
    /// own (`[H]C`) are atoms, not counted here.
    pub fn hydrogen_count(&self, atom: usize) -> u8 {
        self.atoms[atom].hydrogens.unwrap_or(0) + self.implicit_h[atom]
    }
}
