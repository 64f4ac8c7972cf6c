//! Ring-closure labels while reading: the label (`1` or `%12`), opening a ring at an atom,
//! closing it with a bond (and the checks on that bond), and the error for a ring left open.

use super::message::{bond_not_followed, error};
use super::reader::{is_directional, Last, OpenRing, Reader};
use super::{Bond, SmilesError};

impl Reader<'_> {
    /// A ring-closure label (`1` or `%12`): opens the ring, or closes it with a bond.
    pub(super) fn ring_bond(&mut self, i: usize, c: u8) -> Result<usize, SmilesError> {
        let s = self.s;
        let (number, len) = ring_number(s, i, c)?;
        let label = &s[i..i + len];
        let here = self.ring_bond_atom(i, label)?;
        let symbol = self.pending.take();
        match self.rings[number].take() {
            None => {
                self.rings[number] = Some(OpenRing {
                    atom: here,
                    at: i,
                    len,
                    symbol,
                });
                self.open_rings += 1;
            }
            Some(open) => {
                self.open_rings -= 1;
                self.close_ring(open, here, i, label, symbol)?;
            }
        }
        self.last = Last::Ring;
        Ok(i + len)
    }

    /// The atom the ring-closure label `label` at byte offset `i` belongs to: the one it
    /// directly follows (after its other labels and a bond symbol).
    fn ring_bond_atom(&self, i: usize, label: &str) -> Result<usize, SmilesError> {
        let s = self.s;
        let not_after_atom = || {
            error(
                s,
                i,
                format!(
                    "ring bond {label} at position {} does not follow an atom",
                    i + 1
                ),
            )
        };
        match self.last {
            Last::Atom | Last::Ring | Last::Bond { ring_ok: true, .. } => {}
            Last::Bond { at, .. } => return Err(bond_not_followed(s, at)),
            Last::Close => {
                return Err(error(
                    s,
                    i,
                    format!(
                        "ring bond {label} at position {} follows a branch (ring-bond \
                         numbers must directly follow their atom)",
                        i + 1
                    ),
                ))
            }
            Last::Start | Last::Dot(_) | Last::Open(_) => return Err(not_after_atom()),
        }
        self.prev.ok_or_else(not_after_atom)
    }

    /// Closes the ring `open` at atom `here` with the label `label` at byte offset `i`.
    fn close_ring(
        &mut self,
        open: OpenRing,
        here: usize,
        i: usize,
        label: &str,
        symbol: Option<(char, usize)>,
    ) -> Result<(), SmilesError> {
        let s = self.s;
        if open.atom == here {
            return Err(error(
                s,
                i,
                format!(
                    "ring bond {label} at position {} closes on the atom that opened it",
                    i + 1
                ),
            ));
        }
        let duplicate = self
            .incoming
            .is_some_and(|k| self.bonds[k].from == open.atom)
            || self.bonds[self.first_closure..]
                .iter()
                .any(|k| k.from == open.atom);
        if duplicate {
            return Err(error(
                s,
                i,
                format!(
                    "ring bond {label} at position {} joins two atoms that are already \
                     bonded (atoms at positions {} and {})",
                    i + 1,
                    self.atoms[open.atom].start + 1,
                    self.atoms[here].start + 1
                ),
            ));
        }
        let symbol = ring_bond_symbol(s, label, symbol, open.symbol)?;
        self.bonds.push(Bond {
            from: open.atom,
            to: here,
            symbol,
            ring_closure: true,
            from_at: open.at,
            to_at: i,
        });
        Ok(())
    }
}

/// The ring number and label length of the ring-closure label starting with byte `c` at
/// offset `i` (`1`, or `%` and two digits).
fn ring_number(s: &str, i: usize, c: u8) -> Result<(usize, usize), SmilesError> {
    if c != b'%' {
        return Ok(((c - b'0') as usize, 1));
    }
    let b = s.as_bytes();
    match (b.get(i + 1), b.get(i + 2)) {
        (Some(d1 @ b'0'..=b'9'), Some(d2 @ b'0'..=b'9')) => {
            Ok((((d1 - b'0') * 10 + (d2 - b'0')) as usize, 3))
        }
        _ => Err(error(
            s,
            i,
            format!("'%' at position {} must be followed by two digits", i + 1),
        )),
    }
}

/// The symbol of a ring bond written `closing` at its second label and `opening` at its
/// first: either one, or both when they agree. The bond is stored from the opening atom to
/// the closing one, so a `/` or `\` written at the closing label (which reads from the
/// closing atom back to the opening one) is stored flipped; written at both labels, the
/// closing one counts (as RDKit reads it).
fn ring_bond_symbol(
    s: &str,
    label: &str,
    closing: Option<(char, usize)>,
    opening: Option<(char, usize)>,
) -> Result<Option<char>, SmilesError> {
    let flip = |c: char| match c {
        '/' => '\\',
        '\\' => '/',
        other => other,
    };
    match (closing, opening) {
        (Some((x, x_at)), Some((y, y_at)))
            if x != y && !(is_directional(x) && is_directional(y)) =>
        {
            Err(error(
                s,
                x_at,
                format!(
                    "bond '{}' at position {} of ring bond {label} conflicts with '{}' at \
                     position {} where it opened",
                    x.escape_debug(),
                    x_at + 1,
                    y.escape_debug(),
                    y_at + 1
                ),
            ))
        }
        (x, y) => Ok(x.map(|(c, _)| flip(c)).or(y.map(|(c, _)| c))),
    }
}

/// The error for ring bonds left open: the first one written.
pub(super) fn unclosed_ring(s: &str, rings: &[Option<OpenRing>]) -> SmilesError {
    let Some(open) = rings.iter().flatten().min_by_key(|r| r.at) else {
        return SmilesError::new(1, "unclosed ring bond".to_string());
    };
    error(
        s,
        open.at,
        format!(
            "unclosed ring bond {} opened at position {}",
            &s[open.at..open.at + open.len],
            open.at + 1
        ),
    )
}
