//! The reader's error messages: 1-based character positions, the offending character quoted,
//! and the messages shared by several tokens.

use super::SmilesError;

/// The 1-based character position of byte offset `at` (which may follow multi-byte UTF-8).
pub(super) fn position(s: &str, at: usize) -> usize {
    let before = &s.as_bytes()[..at.min(s.len())];
    // Count the bytes that start a character (not continuation bytes 0b10xx_xxxx).
    before.iter().filter(|&&b| (b & 0xc0) != 0x80).count() + 1
}

/// The character at byte offset `at`, quoted for a message.
pub(super) fn quoted(s: &str, at: usize) -> String {
    match s.get(at..).and_then(|t| t.chars().next()) {
        Some(c) => format!("'{}'", c.escape_debug()),
        None => "end of input".to_string(),
    }
}

/// An error at byte offset `at`.
pub(super) fn error(s: &str, at: usize, reason: String) -> SmilesError {
    SmilesError::new(position(s, at), reason)
}

/// The bond symbol at byte offset `at` is not followed by an atom.
pub(super) fn bond_not_followed(s: &str, at: usize) -> SmilesError {
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

/// The `.` at byte offset `at` is not followed by an atom.
pub(super) fn dot_not_followed(s: &str, at: usize) -> SmilesError {
    error(
        s,
        at,
        format!(
            "'.' at position {} is not followed by an atom",
            position(s, at)
        ),
    )
}

/// The character at byte offset `at` cannot start a token.
pub(super) fn unexpected(s: &str, at: usize) -> SmilesError {
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
