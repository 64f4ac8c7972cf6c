//! The state of one left-to-right pass over a SMILES, shared by the token steps of `parse`
//! and the ring-closure steps of `closure`.

use super::{Atom, Bond};

/// What was read last, which decides what may come next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Last {
    Start,
    Atom,
    Ring,
    /// `(` at this byte offset.
    Open(usize),
    Close,
    /// A bond symbol at this byte offset; `ring_ok` when it directly follows an atom or one
    /// of its ring-closure digits, so that a ring-closure digit may follow it.
    Bond {
        at: usize,
        ring_ok: bool,
    },
    /// `.` at this byte offset.
    Dot(usize),
}

/// Whether a bond symbol is `/` or `\\`.
pub(super) fn is_directional(c: char) -> bool {
    matches!(c, '/' | '\\')
}

/// The state of one left-to-right pass.
pub(super) struct Reader<'s> {
    pub(super) s: &'s str,
    pub(super) atoms: Vec<Atom>,
    pub(super) bonds: Vec<Bond>,
    /// Open branches: the atom before `(` and the offset of `(`.
    pub(super) branches: Vec<(Option<usize>, usize)>,
    pub(super) rings: [Option<OpenRing>; 100],
    pub(super) open_rings: usize,
    pub(super) prev: Option<usize>,
    pub(super) pending: Option<(char, usize)>,
    pub(super) last: Last,
    pub(super) dot_in_branch: bool,
    /// The chain bond into the current atom, and the first bond after it: the bonds from
    /// there on are ring closures completed at the current atom.
    pub(super) incoming: Option<usize>,
    pub(super) first_closure: usize,
}

/// A ring-closure digit waiting for its partner.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenRing {
    pub(super) atom: usize,
    /// Byte offset of the digit (or `%`).
    pub(super) at: usize,
    /// Length of the label (`1` or `%12`).
    pub(super) len: usize,
    /// The bond symbol before the digit, and its byte offset.
    pub(super) symbol: Option<(char, usize)>,
}
