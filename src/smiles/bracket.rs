//! Bracket atoms, `[` isotope? symbol chirality? hcount? charge? class? `]`, each part read
//! by its own step from a cursor into the SMILES.

use super::message::{error, position, quoted};
use super::{Atom, Chirality, SmilesError};

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

/// A bracket atom whose `[` is at byte offset `open`.
pub(super) fn bracket_atom(s: &str, open: usize) -> Result<Atom, SmilesError> {
    let mut r = Cursor {
        s,
        b: s.as_bytes(),
        open,
        i: open + 1,
    };
    let isotope = r.isotope()?;
    let (symbol, aromatic) = r.symbol()?;
    let chirality_at = r.i;
    let chirality = r.chirality()?;
    let hydrogens = r.hydrogens();
    let charge = r.charge();
    let class = r.class()?;
    if r.b.get(r.i) != Some(&b']') {
        return Err(r.garbage());
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
        end: r.i + 1,
    })
}

/// A position in a bracket atom: `i`, the byte offset of the next part, in `s`, whose `[`
/// is at `open`.
struct Cursor<'s> {
    s: &'s str,
    b: &'s [u8],
    open: usize,
    i: usize,
}

impl<'s> Cursor<'s> {
    /// The digit at byte offset `at`, if there is one.
    fn digit(&self, at: usize) -> Option<u8> {
        self.b
            .get(at)
            .filter(|d| d.is_ascii_digit())
            .map(|d| d - b'0')
    }

    fn unclosed(&self) -> SmilesError {
        error(
            self.s,
            self.open,
            format!("unclosed '[' at position {}", self.open + 1),
        )
    }

    /// The error for what stands at the cursor where only `]` may come.
    fn garbage(&self) -> SmilesError {
        let at = self.i;
        if at >= self.b.len() {
            return self.unclosed();
        }
        error(
            self.s,
            at,
            format!(
                "unexpected {} at position {} in the bracket atom at position {}",
                quoted(self.s, at),
                position(self.s, at),
                self.open + 1
            ),
        )
    }

    /// The isotope: up to three digits.
    fn isotope(&mut self) -> Result<Option<u16>, SmilesError> {
        let open = self.open;
        let mut isotope: Option<u16> = None;
        while let Some(d) = self.digit(self.i) {
            let v = isotope.unwrap_or(0) as u32 * 10 + d as u32;
            if self.i - open > 3 {
                return Err(error(
                    self.s,
                    open + 1,
                    format!(
                        "isotope at position {} has more than three digits",
                        open + 2
                    ),
                ));
            }
            isotope = Some(v as u16);
            self.i += 1;
        }
        Ok(isotope)
    }

    /// The element symbol (`*`, an element, or an aromatic symbol) and whether it is
    /// aromatic.
    fn symbol(&mut self) -> Result<(&'static str, bool), SmilesError> {
        let (s, i, open) = (self.s, self.i, self.open);
        match self.b.get(i).copied() {
            None => Err(self.unclosed()),
            Some(b']') if i == open + 1 => Err(error(
                s,
                open,
                format!("empty bracket atom '[]' at position {}", open + 1),
            )),
            Some(b'*') => {
                self.i += 1;
                Ok(("*", false))
            }
            Some(c) if c.is_ascii_uppercase() => self.element().map(|e| (e, false)),
            Some(c) if c.is_ascii_lowercase() => self.aromatic_element().map(|e| (e, true)),
            Some(_) => Err(error(
                s,
                i,
                format!(
                    "expected an element symbol at position {} in the bracket atom at position \
                     {}, found {}",
                    position(s, i),
                    open + 1,
                    quoted(s, i)
                ),
            )),
        }
    }

    /// The one or two letters at the cursor: an upper- or lower-case letter and the
    /// lower-case letter after it, if any.
    fn letters(&self) -> &'s str {
        let two = self
            .b
            .get(self.i + 1)
            .is_some_and(|n| n.is_ascii_lowercase());
        &self.s[self.i..self.i + if two { 2 } else { 1 }]
    }

    /// An element symbol starting with an upper-case letter.
    fn element(&mut self) -> Result<&'static str, SmilesError> {
        let text = self.letters();
        let Some(&symbol) = ELEMENTS.iter().find(|&&e| e == text) else {
            return Err(error(
                self.s,
                self.i,
                format!("unknown element '{text}' at position {}", self.i + 1),
            ));
        };
        self.i += text.len();
        Ok(symbol)
    }

    /// An aromatic symbol (lower case); returns its element symbol.
    fn aromatic_element(&mut self) -> Result<&'static str, SmilesError> {
        let text = self.letters();
        let Some(&(_, symbol)) = AROMATIC.iter().find(|(a, _)| *a == text) else {
            return Err(error(
                self.s,
                self.i,
                format!(
                    "'{text}' at position {} is not an aromatic element (b, c, n, o, p, s, \
                     se, as, te)",
                    self.i + 1
                ),
            ));
        };
        self.i += text.len();
        Ok(symbol)
    }

    /// The chirality mark: `@`, `@@`, or `@` with a class and number.
    fn chirality(&mut self) -> Result<Option<Chirality>, SmilesError> {
        if self.b.get(self.i) != Some(&b'@') {
            return Ok(None);
        }
        let at = self.i;
        self.i += 1;
        if self.b.get(self.i) == Some(&b'@') {
            self.i += 1;
            return Ok(Some(Chirality::Clockwise));
        }
        if self
            .b
            .get(self.i)
            .is_some_and(|c| c.is_ascii_uppercase() && *c != b'H')
        {
            return self.chirality_class(at).map(Some);
        }
        Ok(Some(Chirality::Anticlockwise))
    }

    /// A chirality class and number (`@TH1`, `@OH30`) after the `@` at byte offset `at`.
    fn chirality_class(&mut self, at: usize) -> Result<Chirality, SmilesError> {
        let (s, i) = (self.s, self.i);
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
        while let Some(d) = self.digit(j) {
            if digits == 2 || (digits == 1 && max < 10) {
                break;
            }
            value = value * 10 + d;
            digits += 1;
            j += 1;
        }
        let leading_zero = digits > 0 && self.b[i + class.len()] == b'0';
        if max == 0 || digits == 0 || leading_zero || value == 0 || value > max {
            let token: String = s[at..].chars().take(1 + class.len() + digits).collect();
            return Err(error(
                s,
                at,
                format!(
                    "chirality '{}' at position {} is not valid (@, @@, @TH1-2, @AL1-2, \
                     @SP1-3, @TB1-20, @OH1-30)",
                    token.escape_debug(),
                    at + 1
                ),
            ));
        }
        self.i = j;
        Ok(make(value))
    }

    /// The hydrogen count: `H` and an optional digit (0 without `H`).
    fn hydrogens(&mut self) -> u8 {
        if self.b.get(self.i) != Some(&b'H') {
            return 0;
        }
        self.i += 1;
        match self.digit(self.i) {
            Some(d) => {
                self.i += 1;
                d
            }
            None => 1,
        }
    }

    /// The charge: `+`, `++`, `+n`, `+nn` or the same with `-` (0 without a sign).
    fn charge(&mut self) -> i8 {
        let Some(&c @ (b'+' | b'-')) = self.b.get(self.i) else {
            return 0;
        };
        let sign = if c == b'+' { 1 } else { -1 };
        self.i += 1;
        let mut magnitude = 1i8;
        if self.b.get(self.i) == Some(&c) {
            magnitude = 2;
            self.i += 1;
        } else if let Some(d) = self.digit(self.i) {
            magnitude = d as i8;
            self.i += 1;
            if let Some(d) = self.digit(self.i) {
                magnitude = magnitude * 10 + d as i8;
                self.i += 1;
            }
        }
        sign * magnitude
    }

    /// The atom class: `:` and a number that fits in 32 bits.
    fn class(&mut self) -> Result<Option<u32>, SmilesError> {
        if self.b.get(self.i) != Some(&b':') {
            return Ok(None);
        }
        let colon = self.i;
        self.i += 1;
        let mut value: u32 = 0;
        let mut digits = 0;
        while let Some(d) = self.digit(self.i) {
            value = match value.checked_mul(10).and_then(|v| v.checked_add(d as u32)) {
                Some(v) => v,
                None => {
                    return Err(error(
                        self.s,
                        colon,
                        format!("atom class at position {} is too large", colon + 1),
                    ))
                }
            };
            digits += 1;
            self.i += 1;
        }
        if digits == 0 {
            return Err(error(
                self.s,
                colon,
                format!(
                    "':' at position {} in a bracket atom must be followed by an atom class \
                     number",
                    colon + 1
                ),
            ));
        }
        Ok(Some(value))
    }
}
