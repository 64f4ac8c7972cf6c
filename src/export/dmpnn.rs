//! The graph model's prediction graph in ONNX (opset 17), mirroring the tch forward pass of
//! [`crate::graph::dmpnn`] in eval mode. The molecules come in as one stacked graph
//! ([`crate::graph::GraphArrays`]), and message passing is `Gather` (read a bond's source
//! atom, its reverse bond) and `ScatterND` with `reduction = "add"` over whole rows (sum the
//! messages into their destination atoms, and atoms into their molecules).

use onnx_protobuf::tensor_proto::DataType;

use super::graph::{Attr, Dim, Graph};
use super::molformer::label_units;
use super::weights::Weights;
use crate::bundle::io;
use crate::error::Result;
use crate::graph::{Aggregation, GraphConfig};
use crate::model::ModelMeta;

/// Graph-building state: the graph, the weights being consumed, and the model's sizes.
struct Builder<'a> {
    g: &'a mut Graph,
    w: &'a mut Weights,
    c: &'a GraphConfig,
}

impl Builder<'_> {
    /// The initializer `[din, dout]` of the tch linear layer `p`'s weight (`[out, in]`).
    fn weight(&mut self, p: &str, din: usize, dout: usize) -> Result<String> {
        let w = self
            .w
            .take(&format!("{p}.weight"), &[dout, din])?
            .transposed();
        Ok(self
            .g
            .init_f32(&format!("{p}.weight"), &[din, dout], &w.data))
    }

    /// `x Wᵀ (+ b)` for the tch linear layer `p`.
    fn linear(&mut self, x: &str, p: &str, din: usize, dout: usize, bias: bool) -> Result<String> {
        let wn = self.weight(p, din, dout)?;
        let y = self.g.op("MatMul", p, &[x, &wn], &[]);
        if !bias {
            return Ok(y);
        }
        let b = self.w.take(&format!("{p}.bias"), &[dout])?;
        let bn = self.g.init_f32(&format!("{p}.bias"), &[dout], &b.data);
        Ok(self.g.op("Add", &format!("{p}.out"), &[&y, &bn], &[]))
    }

    /// Zeros `[rows of like, hidden]`, float32.
    fn zeros_like_rows(&mut self, like: &str, hint: &str) -> String {
        let shape = self.g.op("Shape", &format!("{hint}.shape"), &[like], &[]);
        let first = self.g.ints(&format!("{hint}.first"), &[0]);
        let rows = self.g.op(
            "Gather",
            &format!("{hint}.rows"),
            &[&shape, &first],
            &[("axis", Attr::Int(0))],
        );
        let hidden = self
            .g
            .ints(&format!("{hint}.hidden"), &[self.c.hidden as i64]);
        let dims = self.g.op(
            "Concat",
            &format!("{hint}.dims"),
            &[&rows, &hidden],
            &[("axis", Attr::Int(0))],
        );
        self.g.op("ConstantOfShape", hint, &[&dims], &[])
    }

    /// An index vector `[n]` as `[n, 1]` row indices, for `ScatterND`.
    fn rows_index(&mut self, index: &str, hint: &str) -> String {
        let axis = self.g.ints(&format!("{hint}.axis"), &[1]);
        self.g.op("Unsqueeze", hint, &[index, &axis], &[])
    }

    /// `into[index[i]] += values[i]` row by row: `ScatterND` with `[n, 1]` row indices adds
    /// whole rows (an element-wise `ScatterElements` needs the indices expanded to the
    /// values' shape, and ONNX Runtime then runs several times slower).
    fn scatter_add(&mut self, zeros: &str, index: &str, values: &str, hint: &str) -> String {
        self.g.op(
            "ScatterND",
            hint,
            &[zeros, index, values],
            &[("reduction", Attr::Str("add"))],
        )
    }

    fn gather_rows(&mut self, x: &str, index: &str, hint: &str) -> String {
        self.g
            .op("Gather", hint, &[x, index], &[("axis", Attr::Int(0))])
    }
}

/// The graph inputs of a batch of molecule graphs ([`crate::graph::GraphArrays`]).
pub struct GraphInputs {
    atom_x: String,
    bond_x: String,
    src: String,
    dst: String,
    rev: String,
    atom_mol: String,
    mol_atoms: String,
}

/// Declares the graph inputs [`io::ATOM_FEATURES`] … [`io::MOL_ATOMS`].
pub fn inputs(g: &mut Graph) -> GraphInputs {
    let (atoms, bonds, mols) = (
        Dim::Dynamic("atoms"),
        Dim::Dynamic("bonds"),
        Dim::Dynamic("batch"),
    );
    GraphInputs {
        atom_x: g.input(
            io::ATOM_FEATURES,
            DataType::FLOAT,
            &[atoms, Dim::Dynamic("atom_features")],
        ),
        bond_x: g.input(
            io::BOND_FEATURES,
            DataType::FLOAT,
            &[bonds, Dim::Dynamic("bond_features")],
        ),
        src: g.input(io::BOND_SRC, DataType::INT64, &[bonds]),
        dst: g.input(io::BOND_DST, DataType::INT64, &[bonds]),
        rev: g.input(io::BOND_REV, DataType::INT64, &[bonds]),
        atom_mol: g.input(io::ATOM_MOL, DataType::INT64, &[atoms]),
        mol_atoms: g.input(io::MOL_ATOMS, DataType::FLOAT, &[mols]),
    }
}

/// One D-MPNN on `x`, its weights taken from `weights`: the molecule vectors
/// `[batch, hidden]` and the head's outputs `[batch, 1]`.
pub fn forward(
    g: &mut Graph,
    x: &GraphInputs,
    c: &GraphConfig,
    weights: &mut Weights,
) -> Result<(String, String)> {
    c.validate()?;
    let mut b = Builder { g, w: weights, c };
    let (fa, fb, h) = (c.atom_features, c.bond_features, c.hidden);
    let x_src = b.gather_rows(&x.atom_x, &x.src, "x_src");
    let bond_in = b.g.op(
        "Concat",
        "bond_in",
        &[&x_src, &x.bond_x],
        &[("axis", Attr::Int(1))],
    );
    let input = b.linear(&bond_in, "w_i", fa + fb, h, false)?;
    let mut msg = b.g.op("Relu", "message", &[&input], &[]);
    let zeros_atoms = b.zeros_like_rows(&x.atom_x, "zeros_atoms");
    let dst_rows = b.rows_index(&x.dst, "dst_rows");
    let w_h = b.weight("w_h", h, h)?;
    for t in 1..c.depth {
        let into = b.scatter_add(&zeros_atoms, &dst_rows, &msg, &format!("into_atoms{t}"));
        let at_src = b.gather_rows(&into, &x.src, &format!("at_src{t}"));
        let back = b.gather_rows(&msg, &x.rev, &format!("reverse{t}"));
        let incoming =
            b.g.op("Sub", &format!("incoming{t}"), &[&at_src, &back], &[]);
        let upd =
            b.g.op("MatMul", &format!("update{t}"), &[&incoming, &w_h], &[]);
        let pre = b.g.op("Add", &format!("pre{t}"), &[&input, &upd], &[]);
        msg = b.g.op("Relu", &format!("message{t}"), &[&pre], &[]);
    }
    let into = b.scatter_add(&zeros_atoms, &dst_rows, &msg, "into_atoms");
    let atom_in = b.g.op(
        "Concat",
        "atom_in",
        &[&x.atom_x, &into],
        &[("axis", Attr::Int(1))],
    );
    let atom_lin = b.linear(&atom_in, "w_o", fa + h, h, true)?;
    let atom_h = b.g.op("Relu", "atom_h", &[&atom_lin], &[]);
    let zeros_mols = b.zeros_like_rows(&x.mol_atoms, "zeros_mols");
    let mol_rows = b.rows_index(&x.atom_mol, "mol_rows");
    let summed = b.scatter_add(&zeros_mols, &mol_rows, &atom_h, "mol_sum");
    let mol = match c.aggregation {
        Aggregation::Sum => summed,
        Aggregation::Norm => {
            let k = b.g.scalar("norm", 100.0);
            b.g.op("Div", "mol", &[&summed, &k], &[])
        }
        Aggregation::Mean => {
            let axis = b.g.ints("mol_atoms.axis", &[1]);
            let n =
                b.g.op("Unsqueeze", "mol_atoms.col", &[&x.mol_atoms, &axis], &[]);
            b.g.op("Div", "mol", &[&summed, &n], &[])
        }
    };
    let mut z = mol.clone();
    let mut width = h;
    for k in 0..c.ffn_layers {
        let out = if k + 1 == c.ffn_layers {
            1
        } else {
            c.ffn_hidden
        };
        z = b.linear(&z, &format!("ffn.{k}"), width, out, true)?;
        if k + 1 < c.ffn_layers {
            z = b.g.op("Relu", &format!("ffn.{k}.relu"), &[&z], &[]);
        }
        width = out;
    }
    Ok((mol, z))
}

/// The graph of a D-MPNN with one output: inputs [`io::ATOM_FEATURES`] … [`io::MOL_ATOMS`],
/// output `prediction` (label units, or a probability); with `half`, large weights are
/// stored as float16 ([`Graph::store_half`]).
pub fn build(
    c: &GraphConfig,
    meta: &ModelMeta,
    weights: &mut Weights,
    half: bool,
) -> Result<onnx_protobuf::GraphProto> {
    let mut g = Graph::new("lipo-dmpnn");
    g.store_half(half);
    let x = inputs(&mut g);
    let (_, z) = forward(&mut g, &x, c, weights)?;
    let y = label_units(&mut g, &z, meta, io::PREDICTION);
    g.output(&y, DataType::FLOAT, &[Dim::Dynamic("batch")]);
    Ok(g.into_proto())
}
