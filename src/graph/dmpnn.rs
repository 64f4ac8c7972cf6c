//! The directed message-passing network (D-MPNN, Yang et al. 2019, as in chemprop) in tch.
//!
//! Messages live on directed bonds. With `x_a` the features of atom `a` and `e_uv` those of
//! the bond `u→v`:
//!
//! ```text
//! h⁰_uv   = ReLU(W_i [x_u ‖ e_uv])
//! m_uv    = Σ_{k→u, k≠v} hᵗ_ku           (all messages into u but the one back from v)
//! hᵗ⁺¹_uv = ReLU(W_i [x_u ‖ e_uv] + W_h m_uv)           for t = 1 … depth−1
//! h_v     = ReLU(W_o [x_v ‖ Σ_{u→v} h_uv] + b_o)       atom vectors
//! h_mol   = mean / sum / sum÷100 of h_v over the molecule's atoms
//! ŷ       = FFN(h_mol)                                 the head: (Linear, ReLU)*, Linear
//! ```
//!
//! `Σ_{k→u, k≠v}` is computed for all bonds at once as "all messages into u" (an index-add
//! over destination atoms) minus the message of the reverse bond.

use tch::{nn, nn::Module, Kind, Tensor};

use super::batch::GraphBatch;
use super::config::{Aggregation, GraphConfig};

/// The network's layers; parameters live in the caller's `VarStore`.
#[derive(Debug)]
pub struct Dmpnn {
    /// Sizes.
    pub config: GraphConfig,
    /// `w_i`: input to first message, no bias.
    pub w_i: nn::Linear,
    /// `w_h`: message update, no bias.
    pub w_h: nn::Linear,
    /// `w_o`: atom vector, with bias.
    pub w_o: nn::Linear,
    /// `ffn.K`: the head's linear layers.
    pub ffn: Vec<nn::Linear>,
}

impl Dmpnn {
    /// New layers under `p` (names `w_i`, `w_h`, `w_o`, `ffn.0` …), for `outputs` targets.
    pub fn new(p: &nn::Path, config: &GraphConfig, outputs: usize) -> Dmpnn {
        let (fa, fb, h) = (
            config.atom_features as i64,
            config.bond_features as i64,
            config.hidden as i64,
        );
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let mut ffn = Vec::with_capacity(config.ffn_layers);
        let mut width = h;
        for k in 0..config.ffn_layers {
            let out = if k + 1 == config.ffn_layers {
                outputs as i64
            } else {
                config.ffn_hidden as i64
            };
            ffn.push(nn::linear(
                p / "ffn" / k.to_string(),
                width,
                out,
                Default::default(),
            ));
            width = out;
        }
        Dmpnn {
            config: config.clone(),
            w_i: nn::linear(p / "w_i", fa + fb, h, no_bias),
            w_h: nn::linear(p / "w_h", h, h, no_bias),
            w_o: nn::linear(p / "w_o", fa + h, h, Default::default()),
            ffn,
        }
    }

    /// The molecule vectors `h_mol`, `[molecules, hidden]`.
    pub fn encode(&self, b: &GraphBatch, train: bool) -> Tensor {
        let p = self.config.dropout;
        let atoms = b.atom_x.size()[0];
        let hidden = self.config.hidden as i64;
        let device = b.atom_x.device();
        let into_atoms = |msg: &Tensor| {
            Tensor::zeros([atoms, hidden], (Kind::Float, device)).index_add(0, &b.dst, msg)
        };
        let input = self.w_i.forward(&Tensor::cat(
            &[b.atom_x.index_select(0, &b.src), b.bond_x.shallow_clone()],
            1,
        ));
        let mut msg = input.relu().dropout(p, train);
        for _ in 1..self.config.depth {
            let incoming = into_atoms(&msg).index_select(0, &b.src) - msg.index_select(0, &b.rev);
            msg = (&input + self.w_h.forward(&incoming))
                .relu()
                .dropout(p, train);
        }
        let atom_h = self
            .w_o
            .forward(&Tensor::cat(
                &[b.atom_x.shallow_clone(), into_atoms(&msg)],
                1,
            ))
            .relu()
            .dropout(p, train);
        let mol = Tensor::zeros([b.molecules, hidden], (Kind::Float, device)).index_add(
            0,
            &b.atom_mol,
            &atom_h,
        );
        match self.config.aggregation {
            Aggregation::Mean => mol / b.mol_atoms.unsqueeze(1),
            Aggregation::Sum => mol,
            Aggregation::Norm => mol / 100.0,
        }
    }

    /// The head on molecule vectors: `[molecules, outputs]`.
    pub fn head(&self, mol: &Tensor, train: bool) -> Tensor {
        let p = self.config.dropout;
        let mut x = mol.shallow_clone();
        for (k, layer) in self.ffn.iter().enumerate() {
            x = layer.forward(&x.dropout(p, train));
            if k + 1 < self.ffn.len() {
                x = x.relu();
            }
        }
        x
    }

    /// Head outputs of a batch, `[molecules, outputs]`.
    pub fn forward(&self, b: &GraphBatch, train: bool) -> Tensor {
        self.head(&self.encode(b, train), train)
    }
}
