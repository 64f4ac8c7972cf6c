//! Chemistry checks after parsing, as RDKit's sanitization does them (RDKit 2026.09 rules):
//! allowed valences, a Kekulé structure for aromatic ring systems, and implicit hydrogens.
//!
//! The steps, in RDKit's order:
//!
//! 1. **Clean-up** (RDKit `cleanUp`), which only changes how the molecule is read for the
//!    checks, never the written atoms: a neutral five-valent N with a double bond to a neutral
//!    O is read as `[N+][O-]` (nitro `N(=O)=O`), one with a triple bond to N as `[N+]=[N-]`;
//!    a neutral P of valence 5 and degree 3 with `=O` and `=C`/`=N` as `[P+][O-]`; a neutral
//!    Cl, Br or I of valence 3, 5 or 7 whose neighbours are all O has each `=O` read as
//!    `[O-]`, with the matching positive charge.
//! 2. **Valence.** The explicit valence of an atom is the sum of its bond orders (single 1,
//!    double 2, triple 3, quadruple 4, aromatic 1.5) plus its bracket hydrogens, rounded up.
//!    For an atom with an aromatic bond (or written aromatic) above its default valence, it
//!    is lowered to the largest allowed valence below it when within 1.5 (pyrrole-type
//!    `n` with a substituent, `c` shared by two rings). A charged atom uses the allowed
//!    valences of its isoelectronic element (N+ like C: 4; O+ like N: 3; N- like O: 2; O- like
//!    F: 1; C- like N: 3; C+ like B: 3; B- like C: 4), except that P, S, As and Se with a
//!    negative charge keep their own list less the charge (S- up to 5) and `[H-]` may have 2.
//!    Elements whose RDKit list is open-ended (alkali and alkaline-earth metals but Be, Cs and
//!    Fr; the d and f blocks; Tl; `*`) are never rejected. The table is RDKit's: H 1, B 3, C 4, N 3, O 2, F 1, Si 4, P 3/5, S 2/4/6,
//!    Cl 1, Br 1, I 1/3/5, Se 2/4/6, As 3/5, Te 2/4/6, Cs 1, … (see `TABLE`).
//! 3. **Kekulé structure** (see `kekule.rs`): in every fused ring system with an aromatic
//!    atom, the aromatic atoms that need a double bond are paired up along aromatic bonds.
//!    RDKit's rule for which need one: bond orders (aromatic bonds counted 1) plus hydrogens
//!    one short of the default valence, adjusted for the charge: `c` with two aromatic bonds
//!    and a hydrogen or with three aromatic bonds, `n` with two aromatic bonds and no
//!    hydrogen, `[n+]`, `[o+]`, `b`; not `[nH]`, `o`, `s`, `n` with a substituent, or `c`
//!    with a double bond out of the ring.
//! 4. **The Kekulé structure again**: RDKit then forgets the aromatic flags and checks the
//!    valences once more with the Kekulé bond orders, so an `o` with three single bonds
//!    (`Co1CCCC1`) or an aromatic atom with a triple bond out of the ring is rejected here.
//!    RDKit also perceives aromaticity again before that check, which is not repeated here;
//!    its one visible effect is that arynes (`c1ccc#cc1`, a triple or quadruple bond between
//!    two aromatic ring atoms) become aromatic again and pass, so atoms of such a bond keep
//!    the check of step 2 only.
//!
//! Implicit hydrogens (organic-subset atoms only; bracket atoms have exactly the hydrogens
//! written, `*` none) are counted on the Kekulé structure: the lowest allowed valence at or
//! above the atom's explicit valence, minus that valence (OpenSMILES' rule with RDKit's
//! table: `CS(C)C` gives S one hydrogen, `CI(C)C` gives I none). An aromatic atom keeps at
//! least the hydrogens counted on the aromatic form, where they are its default valence
//! minus its explicit valence (aromatic bonds 1.5, rounded as in step 2), as RDKit's
//! `adjustHs` does; an atom with an aromatic bond outside any ring (`C:C`) is counted that
//! way. This is RDKit's `GetTotalNumHs` on every reference molecule.

use super::kekule::{self, Role};
use super::{Molecule, SmilesError};

/// One element: symbol, RDKit's allowed valences (a trailing `-1` means "any higher"; `[-1]`
/// means no list at all), and RDKit's "early atom" flag (left of carbon, which flips the
/// sign of a charge in the Kekulé candidate rule).
struct Element {
    symbol: &'static str,
    valences: &'static [i8],
    early: bool,
}

const fn el(symbol: &'static str, valences: &'static [i8], early: bool) -> Element {
    Element {
        symbol,
        valences,
        early,
    }
}

const ANY: &[i8] = &[-1];

/// RDKit's periodic table, by atomic number (0 is `*`).
#[rustfmt::skip]
static TABLE: [Element; 119] = [
    el("*", ANY, false),
    el("H", &[1], false), el("He", &[0], false),
    el("Li", &[1, -1], true), el("Be", &[2], true), el("B", &[3], true), el("C", &[4], false),
    el("N", &[3], false), el("O", &[2], false), el("F", &[1], false), el("Ne", &[0], false),
    el("Na", &[1, -1], true), el("Mg", &[2, -1], true), el("Al", &[3], true),
    el("Si", &[4], false), el("P", &[3, 5], false), el("S", &[2, 4, 6], false),
    el("Cl", &[1], false), el("Ar", &[0], false),
    el("K", &[1, -1], true), el("Ca", &[2, -1], true), el("Sc", ANY, true), el("Ti", ANY, true),
    el("V", ANY, false), el("Cr", ANY, false), el("Mn", ANY, false), el("Fe", ANY, false),
    el("Co", ANY, false), el("Ni", ANY, false), el("Cu", ANY, false), el("Zn", ANY, true),
    el("Ga", &[3], true), el("Ge", &[4], true), el("As", &[3, 5], false),
    el("Se", &[2, 4, 6], false), el("Br", &[1], false), el("Kr", &[0], false),
    el("Rb", &[1, -1], true), el("Sr", &[2, -1], true), el("Y", ANY, true), el("Zr", ANY, true),
    el("Nb", ANY, true), el("Mo", ANY, false), el("Tc", ANY, false), el("Ru", ANY, false),
    el("Rh", ANY, false), el("Pd", ANY, false), el("Ag", ANY, false), el("Cd", ANY, true),
    el("In", &[3], true), el("Sn", &[2, 4], true), el("Sb", &[3, 5], true),
    el("Te", &[2, 4, 6], false), el("I", &[1, 3, 5], false), el("Xe", &[0, 2, 4, 6], false),
    el("Cs", &[1], true), el("Ba", &[2, -1], true), el("La", ANY, true), el("Ce", ANY, true),
    el("Pr", ANY, true), el("Nd", ANY, true), el("Pm", ANY, true), el("Sm", ANY, false),
    el("Eu", ANY, false), el("Gd", ANY, false), el("Tb", ANY, false), el("Dy", ANY, false),
    el("Ho", ANY, false), el("Er", ANY, false), el("Tm", ANY, false), el("Yb", ANY, false),
    el("Lu", ANY, false), el("Hf", ANY, true), el("Ta", ANY, true), el("W", ANY, false),
    el("Re", ANY, false), el("Os", ANY, false), el("Ir", ANY, false), el("Pt", ANY, false),
    el("Au", ANY, false), el("Hg", ANY, true), el("Tl", ANY, true), el("Pb", &[2, 4], true),
    el("Bi", &[3, 5], true), el("Po", &[2, 4, 6], false), el("At", &[1, 3, 5], false),
    el("Rn", &[0], false), el("Fr", &[1], true), el("Ra", &[2, -1], true),
    el("Ac", ANY, true), el("Th", ANY, true), el("Pa", ANY, true), el("U", ANY, true),
    el("Np", ANY, true), el("Pu", ANY, false), el("Am", ANY, false), el("Cm", ANY, false),
    el("Bk", ANY, false), el("Cf", ANY, false), el("Es", ANY, false), el("Fm", ANY, false),
    el("Md", ANY, false), el("No", ANY, false), el("Lr", ANY, false), el("Rf", ANY, true),
    el("Db", ANY, true), el("Sg", ANY, true), el("Bh", ANY, true), el("Hs", ANY, true),
    el("Mt", ANY, true), el("Ds", ANY, true), el("Rg", ANY, true), el("Cn", ANY, true),
    el("Nh", ANY, true), el("Fl", ANY, true), el("Mc", ANY, true), el("Lv", ANY, true),
    el("Ts", ANY, true), el("Og", ANY, true),
];

/// Element names for messages (the elements that can be rejected).
fn element_name(z: u8) -> &'static str {
    match z {
        1 => "hydrogen",
        2 => "helium",
        4 => "beryllium",
        5 => "boron",
        6 => "carbon",
        7 => "nitrogen",
        8 => "oxygen",
        9 => "fluorine",
        10 => "neon",
        13 => "aluminium",
        14 => "silicon",
        15 => "phosphorus",
        16 => "sulfur",
        17 => "chlorine",
        18 => "argon",
        31 => "gallium",
        32 => "germanium",
        33 => "arsenic",
        34 => "selenium",
        35 => "bromine",
        36 => "krypton",
        49 => "indium",
        50 => "tin",
        51 => "antimony",
        52 => "tellurium",
        53 => "iodine",
        54 => "xenon",
        55 => "caesium",
        82 => "lead",
        83 => "bismuth",
        84 => "polonium",
        85 => "astatine",
        86 => "radon",
        87 => "francium",
        _ => TABLE[z as usize].symbol,
    }
}

/// The atomic number of an element symbol as the parser spells it (`*` is 0).
fn atomic_number(symbol: &str) -> u8 {
    match symbol {
        "C" => 6,
        "N" => 7,
        "O" => 8,
        "S" => 16,
        "F" => 9,
        "Cl" => 17,
        "Br" => 35,
        "H" => 1,
        "*" => 0,
        _ => TABLE
            .iter()
            .position(|e| e.symbol == symbol)
            .map_or(0, |z| z as u8),
    }
}

fn valences(z: usize) -> &'static [i8] {
    TABLE[z].valences
}

/// A bond's kind for valence counting (after clean-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Single,
    Double,
    Triple,
    Quadruple,
    Aromatic,
}

impl Order {
    /// Twice the bond's contribution to valence.
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

/// The molecule as the checks read it: atomic numbers, charges and bond orders after
/// clean-up, and the valences found.
struct Chem<'a> {
    m: &'a Molecule,
    z: Vec<u8>,
    charge: Vec<i32>,
    order: Vec<Order>,
    /// Hydrogens counted in the explicit valence: those written in brackets (and, after
    /// kekulization, those RDKit's `adjustHs` adds).
    explicit_h: Vec<i32>,
    /// RDKit's `isAromaticAtom`: written aromatic, or with an aromatic bond.
    aromatic: Vec<bool>,
    /// Explicit valence (RDKit's, with the aromatic rounding).
    valence: Vec<i32>,
    /// Implicit hydrogens (organic-subset atoms).
    implicit_h: Vec<i32>,
}

/// The checks of the module documentation: `Ok` with the implicit hydrogen count of each
/// atom, or the first problem found.
pub(super) fn check(m: &Molecule) -> Result<Vec<u8>, SmilesError> {
    let n = m.atoms.len();
    let z: Vec<u8> = m.atoms.iter().map(|a| atomic_number(a.symbol)).collect();
    let order: Vec<Order> = m
        .bonds
        .iter()
        .map(|b| match b.symbol {
            Some('=') => Order::Double,
            Some('#') => Order::Triple,
            Some('$') => Order::Quadruple,
            Some(':') => Order::Aromatic,
            None | Some('/' | '\\') if m.atoms[b.from].aromatic && m.atoms[b.to].aromatic => {
                Order::Aromatic
            }
            _ => Order::Single,
        })
        .collect();
    let mut chem = Chem {
        m,
        z,
        charge: m.atoms.iter().map(|a| i32::from(a.charge)).collect(),
        order,
        explicit_h: m
            .atoms
            .iter()
            .map(|a| i32::from(a.hydrogens.unwrap_or(0)))
            .collect(),
        aromatic: vec![false; n],
        valence: vec![0; n],
        implicit_h: vec![0; n],
    };
    for a in 0..n {
        chem.aromatic[a] = m.atoms[a].aromatic
            || m.atom_bonds(a)
                .iter()
                .any(|&b| chem.order[b] == Order::Aromatic);
    }
    chem.clean_up();
    for a in 0..n {
        chem.valence[a] = chem.explicit_valence(a, chem.aromatic[a], &chem.order);
        if let Some(max) = chem.max_valence(a) {
            if chem.valence[a] > max {
                return Err(chem.too_many_bonds(a, chem.valence[a], max));
            }
        }
        if !m.atoms[a].bracket && chem.z[a] != 0 {
            chem.implicit_h[a] = chem.implicit_hydrogens(a, true)?;
        }
    }
    let kekule = chem.kekulize()?;
    chem.finish(&kekule)?;
    Ok(chem.implicit_h.iter().map(|&h| h as u8).collect())
}

impl Chem<'_> {
    fn degree(&self, a: usize) -> usize {
        self.m.atom_bonds(a).len()
    }

    /// The element whose valences a charged atom uses: the isoelectronic one (atomic number
    /// less the charge, within the table), unless the atom's own element has no list.
    fn effective(&self, a: usize) -> usize {
        let z = self.z[a] as usize;
        if valences(z) == ANY {
            return z;
        }
        (z as i32 - self.charge[a]).clamp(0, 118) as usize
    }

    /// RDKit's explicit valence (`calculateAtomExplicitValence`) with bond orders `order`,
    /// and `aromatic` as its `isAromaticAtom`.
    fn explicit_valence(&self, a: usize, aromatic: bool, order: &[Order]) -> i32 {
        let bonds: i32 = self.m.atom_bonds(a).iter().map(|&b| order[b].twice()).sum();
        let mut twice = bonds + 2 * self.explicit_h[a];
        let list = valences(self.effective(a));
        let dv = i32::from(list[0]);
        if aromatic && dv >= 0 && twice > 2 * dv {
            // Down to the closest allowed valence below, when within 1.5 of it.
            let mut pval = dv;
            for &v in list {
                let v = i32::from(v);
                if v == -1 || 2 * v > twice {
                    break;
                }
                pval = v;
            }
            if twice - 2 * pval <= 3 {
                twice = 2 * pval;
            }
        }
        (twice + 1) / 2
    }

    /// Whether the atom is P or S (As or Se) isoelectronic to Cl or beyond (Br or beyond):
    /// then it keeps its own (hypervalent) list, less the charge.
    fn hypervalent(&self, a: usize) -> bool {
        let (z, eff) = (self.z[a], self.effective(a));
        (eff > 16 && matches!(z, 15 | 16)) || (eff > 34 && matches!(z, 33 | 34))
    }

    /// The largest explicit valence RDKit allows atom `a`, or `None` for no limit.
    fn max_valence(&self, a: usize) -> Option<i32> {
        let own = valences(self.z[a] as usize);
        let mut max = i32::from(*valences(self.effective(a)).last()?);
        if self.hypervalent(a) {
            max = i32::from(*own.last()?) + self.charge[a];
        }
        if self.z[a] == 1 && self.charge[a] == -1 {
            max = 2;
        }
        (max >= 0 && *own.last()? >= 0).then_some(max)
    }

    /// Who the limit is for, in words: `carbon`, `nitrogen with charge +1`.
    fn who(&self, a: usize) -> String {
        let name = element_name(self.z[a]);
        match self.charge[a] {
            0 => name.to_string(),
            c => format!("{name} with charge {c:+}"),
        }
    }

    fn too_many_bonds(&self, a: usize, valence: i32, max: i32) -> SmilesError {
        let atom = &self.m.atoms[a];
        let list = valences(self.effective(a));
        let allows = if list.len() > 1 || self.hypervalent(a) {
            format!("at most {max}")
        } else {
            max.to_string()
        };
        SmilesError::new(
            atom.position(),
            format!(
                "atom '{}' at position {} has {valence} bonds; {} allows {allows}",
                self.m.atom_text(a),
                atom.position(),
                self.who(a)
            ),
        )
    }

    /// RDKit's implicit hydrogens (`calculateAtomImplicitValence`) of an organic-subset atom
    /// with its current valence; `strict`: an error when no allowed valence fits, else 0.
    fn implicit_hydrogens(&self, a: usize, strict: bool) -> Result<i32, SmilesError> {
        let mut ev = self.valence[a];
        let mut eff = self.effective(a);
        if eff == 0 {
            return Ok(0);
        }
        let dv = i32::from(valences(eff)[0]);
        if dv == -1 {
            return Ok(0);
        }
        if self.hypervalent(a) {
            eff = self.z[a] as usize;
            ev -= self.charge[a];
        }
        let list = valences(eff);
        if self.aromatic[a] {
            if ev <= dv {
                return Ok(dv - ev);
            }
            if !strict
                || list
                    .iter()
                    .take_while(|&&v| v > 0)
                    .any(|&v| i32::from(v) == ev)
            {
                return Ok(0);
            }
            let atom = &self.m.atoms[a];
            return Err(SmilesError::new(
                atom.position(),
                format!(
                    "aromatic atom '{}' at position {} has {ev} bonds, not a valence {} allows \
                     ({})",
                    self.m.atom_text(a),
                    atom.position(),
                    self.who(a),
                    list.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for &v in list.iter().take_while(|&&v| v >= 0) {
            if ev <= i32::from(v) {
                return Ok(i32::from(v) - ev);
            }
        }
        match self.max_valence(a) {
            Some(max) if strict => Err(self.too_many_bonds(a, ev, max)),
            _ => Ok(0),
        }
    }

    /// RDKit's `cleanUp`, atom by atom in written order (see the module documentation).
    fn clean_up(&mut self) {
        for a in 0..self.z.len() {
            match self.z[a] {
                7 => self.clean_up_nitrogen(a),
                15 => self.clean_up_phosphorus(a),
                17 | 35 | 53 => self.clean_up_halogen(a),
                _ => {}
            }
        }
    }

    fn clean_up_nitrogen(&mut self, a: usize) {
        if self.charge[a] != 0 {
            return;
        }
        // RDKit clears the atom's aromatic flag for this valence; aromatic bonds still count.
        let aromatic_bond = self
            .m
            .atom_bonds(a)
            .iter()
            .any(|&b| self.order[b] == Order::Aromatic);
        if self.explicit_valence(a, aromatic_bond, &self.order) != 5 {
            return;
        }
        for &b in self.m.atom_bonds(a) {
            let w = self.m.bonds[b].other(a);
            let to = match (self.z[w], self.order[b]) {
                (8, Order::Double) => Order::Single,
                (7, Order::Triple) => Order::Double,
                _ => continue,
            };
            if self.charge[w] == 0 {
                self.order[b] = to;
                self.charge[a] = 1;
                self.charge[w] = -1;
                return;
            }
        }
    }

    fn clean_up_phosphorus(&mut self, a: usize) {
        if self.charge[a] != 0
            || self.explicit_valence(a, self.aromatic[a], &self.order) != 5
            || self.degree(a) != 3
        {
            return;
        }
        let mut double_to_o = None;
        let mut double_to_c_or_n = false;
        for &b in self.m.atom_bonds(a) {
            let w = self.m.bonds[b].other(a);
            if self.order[b] != Order::Double {
                continue;
            }
            if self.z[w] == 8 && self.charge[w] == 0 {
                double_to_o = Some((b, w));
            } else if matches!(self.z[w], 6 | 7) && self.degree(w) >= 2 {
                double_to_c_or_n = true;
            }
        }
        if let (Some((b, w)), true) = (double_to_o, double_to_c_or_n) {
            self.order[b] = Order::Single;
            self.charge[w] = -1;
            self.charge[a] = 1;
        }
    }

    fn clean_up_halogen(&mut self, a: usize) {
        let ev = self.explicit_valence(a, self.aromatic[a], &self.order);
        if self.charge[a] != 0 || !matches!(ev, 3 | 5 | 7) {
            return;
        }
        let bonds = self.m.atom_bonds(a);
        if bonds.iter().any(|&b| self.z[self.m.bonds[b].other(a)] != 8) {
            return;
        }
        let mut charge = 0;
        for &b in bonds {
            if self.order[b] == Order::Double {
                self.order[b] = Order::Single;
                self.charge[self.m.bonds[b].other(a)] = -1;
                charge += 1;
            }
        }
        self.charge[a] = charge;
    }

    /// The role of each atom in the Kekulé matching (RDKit's `markDbondCands`): `Required`
    /// for an aromatic atom that needs a double bond, `Optional` for `*`.
    fn roles(&self) -> Vec<Role> {
        (0..self.z.len())
            .map(|a| {
                let z = self.z[a] as usize;
                if z == 0 {
                    return Role::Optional;
                }
                if !self.aromatic[a] {
                    return Role::No;
                }
                let h = self.explicit_h[a] + self.implicit_h[a];
                // Bond orders as RDKit rounds them here: aromatic bonds count 1.
                let sbo = h + self
                    .m
                    .atom_bonds(a)
                    .iter()
                    .map(|&b| match self.order[b] {
                        Order::Aromatic => 2,
                        o => o.twice(),
                    })
                    .sum::<i32>()
                    / 2;
                let list = valences(z);
                let mut charge = self.charge[a];
                if TABLE[z].early || (z == 6 && charge > 0) {
                    charge = -charge;
                }
                let mut dv = i32::from(list[0]) + charge;
                let tbo = self.valence[a] + self.implicit_h[a];
                let degree = self.degree(a) as i32 + self.implicit_h[a];
                let mut vi = 1;
                while tbo > dv && vi < list.len() && list[vi] > 0 {
                    dv = i32::from(list[vi]) + charge;
                    vi += 1;
                }
                // Aromatic N-oxides such as O=n1ccccc1 (clean-up has usually made them
                // [n+][O-] already).
                if tbo == 5 && sbo == 4 && dv == 3 && degree == 3 && charge == 0 && h == 0 {
                    if let 7 | 15 | 33 = z {
                        dv = 5;
                    }
                }
                if degree >= dv {
                    Role::No
                } else if dv == sbo + 1 || (self.m.atoms[a].bracket && dv == sbo + 2) {
                    Role::Required
                } else {
                    Role::No
                }
            })
            .collect()
    }

    /// Finds a Kekulé structure of the fused ring systems that have an aromatic atom (or a
    /// bond to `*`): which bonds are double in it, and which aromatic bonds it makes single.
    fn kekulize(&self) -> Result<Kekule, SmilesError> {
        let m = self.m;
        let relevant: Vec<Vec<usize>> = kekule::ring_blocks(m)
            .into_iter()
            .filter(|block| {
                block.iter().any(|&b| {
                    let bond = &m.bonds[b];
                    [bond.from, bond.to]
                        .iter()
                        .any(|&a| self.aromatic[a] || self.z[a] == 0)
                })
            })
            .collect();
        let mut out = Kekule {
            double: vec![false; m.bonds.len()],
            single: vec![false; m.bonds.len()],
        };
        if relevant.is_empty() {
            return Ok(out);
        }
        // RDKit makes single every aromatic bond of the systems' aromatic atoms (also those
        // leading out of the system), before placing the double bonds.
        for block in &relevant {
            for &b in block {
                let bond = &m.bonds[b];
                for a in [bond.from, bond.to] {
                    if self.aromatic[a] || self.z[a] == 0 {
                        for &k in m.atom_bonds(a) {
                            out.single[k] |= self.order[k] == Order::Aromatic;
                        }
                    }
                }
            }
        }
        let roles = self.roles();
        let may_be_double = |b: usize| {
            let bond = &m.bonds[b];
            self.order[b] == Order::Aromatic || self.z[bond.from] == 0 || self.z[bond.to] == 0
        };
        let blocks: Vec<&Vec<usize>> = relevant.iter().collect();
        match kekule::assign(m, &blocks, &roles, may_be_double) {
            Ok(bonds) => {
                for b in bonds {
                    out.double[b] = true;
                }
                Ok(out)
            }
            Err(fail) => {
                let ring = &m.atoms[fail.first_atom];
                let atom = &m.atoms[fail.atom];
                Err(SmilesError::new(
                    atom.position(),
                    format!(
                        "aromatic ring at position {} has no Kekulé structure (atom '{}' at \
                         position {} is left without a double bond)",
                        ring.position(),
                        m.atom_text(fail.atom),
                        atom.position()
                    ),
                ))
            }
        }
    }

    /// RDKit's checks after kekulization, which clears the aromatic flags: valences and
    /// implicit hydrogens again, with the Kekulé bond orders. An organic-subset atom keeps
    /// at least the hydrogens it had (RDKit's `adjustHs` writes the lost ones), and an
    /// aromatic `[nH]` or `[pH]` has its hydrogen recounted as an implicit one (RDKit's fix
    /// for pyrroles; [`Molecule::hydrogen_count`] still gives the written count).
    fn finish(&mut self, kekule: &Kekule) -> Result<(), SmilesError> {
        let m = self.m;
        let order: Vec<Order> = (0..self.order.len())
            .map(|b| match self.order[b] {
                _ if kekule.double[b] => Order::Double,
                Order::Aromatic if kekule.single[b] => Order::Single,
                o => o,
            })
            .collect();
        for a in 0..self.z.len() {
            let atom = &m.atoms[a];
            // Atoms neither aromatic nor touched by the Kekulé structure are as they were.
            if !atom.aromatic && m.atom_bonds(a).iter().all(|&b| order[b] == self.order[b]) {
                continue;
            }
            let organic = !atom.bracket && self.z[a] != 0;
            let pyrrole_h = atom.bracket
                && atom.aromatic
                && matches!(self.z[a], 7 | 15)
                && self.charge[a] == 0
                && self.explicit_h[a] == 1;
            if pyrrole_h {
                self.explicit_h[a] = 0;
            }
            self.aromatic[a] = m.atom_bonds(a).iter().any(|&b| order[b] == Order::Aromatic);
            self.valence[a] = self.explicit_valence(a, self.aromatic[a], &order);
            let mut kept = 0;
            if organic {
                let now = self.implicit_hydrogens(a, false)?;
                if now < self.implicit_h[a] {
                    kept = self.implicit_h[a] - now;
                    self.explicit_h[a] += kept;
                    self.valence[a] = self.explicit_valence(a, self.aromatic[a], &order);
                }
            }
            // An aryne (`c1ccc#cc1`) is aromatic again after RDKit's aromaticity perception,
            // which is not repeated here: its atoms keep the check made before kekulization.
            let aryne = m.atom_bonds(a).iter().any(|&b| {
                let bond = &m.bonds[b];
                matches!(self.order[b], Order::Triple | Order::Quadruple)
                    && m.in_ring[b]
                    && m.atoms[bond.from].aromatic
                    && m.atoms[bond.to].aromatic
            });
            if let (Some(max), false) = (self.max_valence(a), aryne) {
                if self.valence[a] > max {
                    return Err(self.too_many_bonds(a, self.valence[a], max));
                }
            }
            if organic || pyrrole_h {
                let implicit = self.implicit_hydrogens(a, !aryne)?;
                self.implicit_h[a] = if organic { kept + implicit } else { 0 };
            }
        }
        Ok(())
    }
}

/// A Kekulé structure, by bond: double, or an aromatic bond made single.
struct Kekule {
    double: Vec<bool>,
    single: Vec<bool>,
}
