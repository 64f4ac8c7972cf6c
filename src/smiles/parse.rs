//! Reading a SMILES: one left-to-right pass over the bytes with an explicit branch stack
//! (no recursion), a fixed table of the 100 ring numbers, then ring membership and the
//! aromatic-atoms-in-rings rule.

use super::{Atom, Bond, Chirality, Molecule, SmilesError};

/// Element symbols, H to Og.
const ELEMENTS: [&str; 118] = [
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl",
    "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk",
    "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh",
    "Fl", "Mc", "Lv", "Ts", "Og",
];

/// Aromatic symbols allowed in brackets (OpenSMILES, plus `te` as RDKit reads it) and their
/// element symbols.
const AROMATIC: [(&str, &str); 9] = [
    ("se", "Se"),
    ("as", "As"),
    ("te", "Te"),
    ("b", "B"),
    ("c", "C"),
    ("n", "N"),
    ("o", "O"),
    ("p", "P"),
    ("s", "S"),
];

/// What was read last, which decides what may come next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
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

/// A ring-closure digit waiting for its partner.
#[derive(Debug, Clone, Copy)]
struct OpenRing {
    atom: usize,
    /// Byte offset of the digit (or `%`).
    at: usize,
    /// Length of the label (`1` or `%12`).
    len: usize,
    /// The bond symbol before the digit, and its byte offset.
    symbol: Option<(char, usize)>,
}

/// The 1-based character position of byte offset `at` (which may follow multi-byte UTF-8).
fn position(s: &str, at: usize) -> usize {
    let before = &s.as_bytes()[..at.min(s.len())];
    // Count the bytes that start a character (not continuation bytes 0b10xx_xxxx).
    before.iter().filter(|&&b| (b & 0xc0) != 0x80).count() + 1
}

/// The character at byte offset `at`, quoted for a message.
fn quoted(s: &str, at: usize) -> String {
    match s.get(at..).and_then(|t| t.chars().next()) {
        Some(c) => format!("'{}'", c.escape_debug()),
        None => "end of input".to_string(),
    }
}

fn error(s: &str, at: usize, reason: String) -> SmilesError {
    SmilesError::new(position(s, at), reason)
}

fn bond_not_followed(s: &str, at: usize) -> SmilesError {
    let next = match s.as_bytes().get(at + 1) {
        Some(b'(') => " (a bond to a branch goes inside it, as in C(=O)C, not C=(O)C)".to_string(),
        Some(_) => format!(" but by {}", quoted(s, at + 1)),
        None => " (it ends the SMILES)".to_string(),
    };
    error(
        s,
        at,
        format!(
            "{} at position {} is not followed by an atom{next}",
            quoted(s, at),
            position(s, at)
        ),
    )
}

fn dot_not_followed(s: &str, at: usize) -> SmilesError {
    error(
        s,
        at,
        format!(
            "'.' at position {} is not followed by an atom",
            position(s, at)
        ),
    )
}

fn unexpected(s: &str, at: usize) -> SmilesError {
    let c = s[at..].chars().next().unwrap_or('?');
    let p = position(s, at);
    let q = quoted(s, at);
    let reason = if c.is_whitespace() {
        format!("whitespace {q} at position {p} is not allowed in a SMILES")
    } else if !c.is_ascii() {
        format!("non-ASCII character {q} at position {p} is not allowed in a SMILES")
    } else if c == ']' {
        format!("']' at position {p} has no matching '['")
    } else if c.is_ascii_alphabetic() {
        format!(
            "{q} at position {p} is not an atom (outside brackets only B, C, N, O, P, S, F, \
             Cl, Br, I, b, c, n, o, p, s and * are allowed)"
        )
    } else {
        format!("unexpected character {q} at position {p}")
    };
    SmilesError::new(p, reason)
}

/// Reads `smiles` into a [`Molecule`], or says where it is not valid.
pub(super) fn parse(s: &str) -> Result<Molecule, SmilesError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(SmilesError::new(
            1,
            "empty SMILES: an atom must come at position 1".to_string(),
        ));
    }
    let mut atoms: Vec<Atom> = Vec::with_capacity(b.len() / 2 + 1);
    let mut bonds: Vec<Bond> = Vec::with_capacity(b.len() / 2 + 1);
    // Open branches: the atom before `(` and the offset of `(`.
    let mut branches: Vec<(Option<usize>, usize)> = Vec::new();
    let mut rings: [Option<OpenRing>; 100] = [None; 100];
    let mut open_rings = 0usize;
    let mut prev: Option<usize> = None;
    let mut pending: Option<(char, usize)> = None;
    let mut last = Last::Start;
    let mut dot_in_branch = false;
    // The chain bond into the current atom, and the first bond after it: the bonds from
    // there on are ring closures completed at the current atom.
    let mut incoming: Option<usize> = None;
    let mut first_closure = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'(' => {
                match last {
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
                branches.push((prev, i));
                last = Last::Open(i);
                i += 1;
            }
            b')' => {
                match last {
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
                let Some((p, _)) = branches.pop() else {
                    return Err(error(
                        s,
                        i,
                        format!("')' at position {} has no matching '('", i + 1),
                    ));
                };
                prev = p;
                last = Last::Close;
                i += 1;
            }
            b'.' => {
                match last {
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
                if !branches.is_empty() {
                    dot_in_branch = true;
                }
                prev = None;
                last = Last::Dot(i);
                i += 1;
            }
            b'-' | b'=' | b'#' | b'$' | b':' | b'/' | b'\\' => {
                let ring_ok = match last {
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
                pending = Some((c as char, i));
                last = Last::Bond { at: i, ring_ok };
                i += 1;
            }
            b'0'..=b'9' | b'%' => {
                let (number, len) = if c == b'%' {
                    match (b.get(i + 1), b.get(i + 2)) {
                        (Some(d1 @ b'0'..=b'9'), Some(d2 @ b'0'..=b'9')) => {
                            (((d1 - b'0') * 10 + (d2 - b'0')) as usize, 3)
                        }
                        _ => {
                            return Err(error(
                                s,
                                i,
                                format!("'%' at position {} must be followed by two digits", i + 1),
                            ))
                        }
                    }
                } else {
                    ((c - b'0') as usize, 1)
                };
                let label = &s[i..i + len];
                match last {
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
                    Last::Start | Last::Dot(_) | Last::Open(_) => {
                        return Err(error(
                            s,
                            i,
                            format!(
                                "ring bond {label} at position {} does not follow an atom",
                                i + 1
                            ),
                        ))
                    }
                }
                let Some(here) = prev else {
                    return Err(error(
                        s,
                        i,
                        format!(
                            "ring bond {label} at position {} does not follow an atom",
                            i + 1
                        ),
                    ));
                };
                let symbol = pending.take();
                match rings[number].take() {
                    None => {
                        rings[number] = Some(OpenRing {
                            atom: here,
                            at: i,
                            len,
                            symbol,
                        });
                        open_rings += 1;
                    }
                    Some(open) => {
                        open_rings -= 1;
                        if open.atom == here {
                            return Err(error(
                                s,
                                i,
                                format!(
                                    "ring bond {label} at position {} closes on the atom that \
                                     opened it",
                                    i + 1
                                ),
                            ));
                        }
                        let duplicate = incoming.is_some_and(|k| bonds[k].from == open.atom)
                            || bonds[first_closure..].iter().any(|k| k.from == open.atom);
                        if duplicate {
                            return Err(error(
                                s,
                                i,
                                format!(
                                    "ring bond {label} at position {} joins two atoms that are \
                                     already bonded (atoms at positions {} and {})",
                                    i + 1,
                                    atoms[open.atom].start + 1,
                                    atoms[here].start + 1
                                ),
                            ));
                        }
                        let symbol = match (symbol, open.symbol) {
                            (Some((x, x_at)), Some((y, y_at)))
                                if x != y && !(is_directional(x) && is_directional(y)) =>
                            {
                                return Err(error(
                                    s,
                                    x_at,
                                    format!(
                                        "bond '{}' at position {} of ring bond {label} conflicts \
                                         with '{}' at position {} where it opened",
                                        x.escape_debug(),
                                        x_at + 1,
                                        y.escape_debug(),
                                        y_at + 1
                                    ),
                                ))
                            }
                            (x, y) => x.or(y).map(|(ch, _)| ch),
                        };
                        bonds.push(Bond {
                            from: open.atom,
                            to: here,
                            symbol,
                            ring_closure: true,
                            from_at: open.at,
                            to_at: i,
                        });
                    }
                }
                last = Last::Ring;
                i += len;
            }
            _ => {
                let atom = if c == b'[' {
                    bracket_atom(s, i)?
                } else {
                    organic_atom(s, i)?
                };
                let end = atom.end;
                let index = atoms.len();
                incoming = None;
                if let Some(p) = prev {
                    bonds.push(Bond {
                        from: p,
                        to: index,
                        symbol: pending.take().map(|(ch, _)| ch),
                        ring_closure: false,
                        from_at: atom.start,
                        to_at: atom.start,
                    });
                    incoming = Some(bonds.len() - 1);
                }
                pending = None;
                first_closure = bonds.len();
                atoms.push(atom);
                prev = Some(index);
                last = Last::Atom;
                i = end;
            }
        }
    }
    match last {
        Last::Bond { at, .. } => return Err(bond_not_followed(s, at)),
        Last::Dot(at) => return Err(dot_not_followed(s, at)),
        _ => {}
    }
    if let Some(&(_, at)) = branches.first() {
        return Err(error(s, at, format!("unclosed '(' at position {}", at + 1)));
    }
    if open_rings > 0 {
        let open = rings
            .iter()
            .flatten()
            .min_by_key(|r| r.at)
            .copied()
            .ok_or_else(|| SmilesError::new(1, "unclosed ring bond".to_string()))?;
        return Err(error(
            s,
            open.at,
            format!(
                "unclosed ring bond {} opened at position {}",
                &s[open.at..open.at + open.len],
                open.at + 1
            ),
        ));
    }
    let molecule = Molecule::from_parts(s, atoms, bonds, dot_in_branch);
    if let Some(a) =
        (0..molecule.atoms.len()).find(|&a| molecule.atoms[a].aromatic && !molecule.atom_in_ring(a))
    {
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

pub(super) fn is_directional(c: char) -> bool {
    matches!(c, '/' | '\\')
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

/// A bracket atom whose `[` is at byte offset `open`.
fn bracket_atom(s: &str, open: usize) -> Result<Atom, SmilesError> {
    let b = s.as_bytes();
    let unclosed = || error(s, open, format!("unclosed '[' at position {}", open + 1));
    let garbage = |at: usize| {
        if at >= b.len() {
            return unclosed();
        }
        error(
            s,
            at,
            format!(
                "unexpected {} at position {} in the bracket atom at position {}",
                quoted(s, at),
                position(s, at),
                open + 1
            ),
        )
    };
    let digit = |at: usize| b.get(at).filter(|d| d.is_ascii_digit()).map(|d| d - b'0');
    let mut i = open + 1;

    // Isotope.
    let mut isotope: Option<u16> = None;
    while let Some(d) = digit(i) {
        let v = isotope.unwrap_or(0) as u32 * 10 + d as u32;
        if i - open > 3 {
            return Err(error(
                s,
                open + 1,
                format!(
                    "isotope at position {} has more than three digits",
                    open + 2
                ),
            ));
        }
        isotope = Some(v as u16);
        i += 1;
    }

    // Element symbol.
    let (symbol, aromatic) = match b.get(i).copied() {
        None => return Err(unclosed()),
        Some(b']') if i == open + 1 => {
            return Err(error(
                s,
                open,
                format!("empty bracket atom '[]' at position {}", open + 1),
            ))
        }
        Some(b'*') => {
            i += 1;
            ("*", false)
        }
        Some(c) if c.is_ascii_uppercase() => {
            let two = b.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let text = &s[i..i + if two { 2 } else { 1 }];
            let Some(&symbol) = ELEMENTS.iter().find(|&&e| e == text) else {
                return Err(error(
                    s,
                    i,
                    format!("unknown element '{text}' at position {}", i + 1),
                ));
            };
            i += text.len();
            (symbol, false)
        }
        Some(c) if c.is_ascii_lowercase() => {
            let two = b.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let text = &s[i..i + if two { 2 } else { 1 }];
            let Some(&(_, symbol)) = AROMATIC.iter().find(|(a, _)| *a == text) else {
                return Err(error(
                    s,
                    i,
                    format!(
                        "'{text}' at position {} is not an aromatic element (b, c, n, o, p, s, \
                         se, as, te)",
                        i + 1
                    ),
                ));
            };
            i += text.len();
            (symbol, true)
        }
        Some(_) => {
            return Err(error(
                s,
                i,
                format!(
                    "expected an element symbol at position {} in the bracket atom at position \
                     {}, found {}",
                    position(s, i),
                    open + 1,
                    quoted(s, i)
                ),
            ))
        }
    };

    // Chirality.
    let mut chirality = None;
    let chirality_at = i;
    if b.get(i) == Some(&b'@') {
        i += 1;
        if b.get(i) == Some(&b'@') {
            i += 1;
            chirality = Some(Chirality::Clockwise);
        } else if b
            .get(i)
            .is_some_and(|c| c.is_ascii_uppercase() && *c != b'H')
        {
            let class = s.get(i..i + 2).unwrap_or("");
            let (make, max): (fn(u8) -> Chirality, u8) = match class {
                "TH" => (Chirality::Tetrahedral, 2),
                "AL" => (Chirality::Allene, 2),
                "SP" => (Chirality::SquarePlanar, 3),
                "TB" => (Chirality::TrigonalBipyramidal, 20),
                "OH" => (Chirality::Octahedral, 30),
                _ => (Chirality::Tetrahedral, 0),
            };
            let mut j = i + class.len();
            let mut value = 0u8;
            let mut digits = 0;
            while let Some(d) = digit(j) {
                if digits == 2 || (digits == 1 && max < 10) {
                    break;
                }
                value = value * 10 + d;
                digits += 1;
                j += 1;
            }
            let leading_zero = digits > 0 && b[i + class.len()] == b'0';
            if max == 0 || digits == 0 || leading_zero || value == 0 || value > max {
                let token: String = s[chirality_at..]
                    .chars()
                    .take(1 + class.len() + digits)
                    .collect();
                return Err(error(
                    s,
                    chirality_at,
                    format!(
                        "chirality '{}' at position {} is not valid (@, @@, @TH1-2, @AL1-2, \
                         @SP1-3, @TB1-20, @OH1-30)",
                        token.escape_debug(),
                        chirality_at + 1
                    ),
                ));
            }
            chirality = Some(make(value));
            i = j;
        } else {
            chirality = Some(Chirality::Anticlockwise);
        }
    }

    // Hydrogen count.
    let mut hydrogens = 0u8;
    if b.get(i) == Some(&b'H') {
        i += 1;
        hydrogens = 1;
        if let Some(d) = digit(i) {
            hydrogens = d;
            i += 1;
        }
    }

    // Charge.
    let mut charge = 0i8;
    if let Some(&c @ (b'+' | b'-')) = b.get(i) {
        let sign = if c == b'+' { 1 } else { -1 };
        i += 1;
        let mut magnitude = 1i8;
        if b.get(i) == Some(&c) {
            magnitude = 2;
            i += 1;
        } else if let Some(d) = digit(i) {
            magnitude = d as i8;
            i += 1;
            if let Some(d) = digit(i) {
                magnitude = magnitude * 10 + d as i8;
                i += 1;
            }
        }
        charge = sign * magnitude;
    }

    // Atom class.
    let mut class = None;
    if b.get(i) == Some(&b':') {
        let colon = i;
        i += 1;
        let mut value: u32 = 0;
        let mut digits = 0;
        while let Some(d) = digit(i) {
            value = match value.checked_mul(10).and_then(|v| v.checked_add(d as u32)) {
                Some(v) => v,
                None => {
                    return Err(error(
                        s,
                        colon,
                        format!("atom class at position {} is too large", colon + 1),
                    ))
                }
            };
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return Err(error(
                s,
                colon,
                format!(
                    "':' at position {} in a bracket atom must be followed by an atom class \
                     number",
                    colon + 1
                ),
            ));
        }
        class = Some(value);
    }

    if b.get(i) != Some(&b']') {
        return Err(garbage(i));
    }
    Ok(Atom {
        symbol,
        aromatic,
        bracket: true,
        isotope,
        charge,
        hydrogens: Some(hydrogens),
        chirality,
        chirality_at,
        class,
        start: open,
        end: i + 1,
    })
}
