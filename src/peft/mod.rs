//! Parameter-efficient fine-tuning (the study's Task 3): BitFit, LoRA and IA3.
//!
//! - **BitFit** trains every bias tensor (LayerNorm shifts included) and the task head.
//! - **LoRA** adds `scale · B A x` (`A [r, in]` random, `B [out, r]` zero, `scale = alpha / r`)
//!   to chosen linear layers of the encoder, so the initial model is unchanged.
//! - **IA3** multiplies keys, values and the feed-forward activation by learned vectors that
//!   start at one.
//!
//! Adapters are ordinary tensors of the model's `VarStore` with names beside the layer they
//! adapt (`….attention.self.query.lora_A.weight`, `….attention.self.key.ia3.weight`,
//! `….output.dense.ia3.weight` for the feed-forward activation that enters `output.dense`),
//! so they save and load with the model folder; `lipo.json` records the [`PeftConfig`]
//! (defined with the model's metadata in [`crate::model::adapters`], re-exported here).
//! [`merge`] folds them into the base weights for export; [`save_adapter`] and
//! [`load_adapter`] keep them as a small folder on top of a base model.
//!
//! `crate::model` knows nothing of this module: it reads a folder into a model without
//! adapters ([`Model::open`](crate::model::Model::open)) and hands over the adapters that
//! `lipo.json` records; [`LoadModel`] attaches them before the weights are read, and also
//! loads adapter-only folders. Everything that loads a model folder goes through
//! [`LoadModel::load`] (`use lipo::peft::LoadModel`, then `Model::load(dir, device)`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "train")]
mod adapters;
#[cfg(feature = "train")]
mod io;
#[cfg(feature = "train")]
mod load;
#[cfg(feature = "train")]
mod params;

#[cfg(feature = "train")]
pub use adapters::{apply, attach, is_adapter, merge, parameter_counts, trains, ParameterCounts};
#[cfg(feature = "train")]
pub use io::files as adapter_files;
#[cfg(feature = "train")]
pub use io::{save_adapter, AdapterInfo};
#[cfg(feature = "train")]
pub use load::{load_adapter, LoadModel};
#[cfg(feature = "train")]
pub use params::{select_params, ParamSet};

pub use crate::model::adapters::{Ia3Config, LoraConfig, PeftConfig, LINEAR_MODULES};

/// The study's Table 3 settings of each method.
impl PeftConfig {
    /// The study's Table 3 settings `(epochs, learning rate)` for this method.
    pub fn preset(&self) -> Preset {
        match self {
            PeftConfig::BitFit => Preset {
                epochs: 30,
                lr: 2e-5,
            },
            PeftConfig::Lora(_) => Preset {
                epochs: 20,
                lr: 1e-5,
            },
            PeftConfig::Ia3(_) => Preset {
                epochs: 20,
                lr: 5e-6,
            },
        }
    }
}

/// Epochs and learning rate of a method (the study's Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Training epochs.
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_table_3s() {
        assert_eq!(PeftConfig::BitFit.preset().epochs, 30);
    }
}
