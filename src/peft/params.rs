//! Parameter subsets: which tensors of a model train (partial fine-tuning with
//! `FinetuneConfig::train_params`) or enter an influence computation ([`crate::influence`]).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::model::Model;

use super::is_adapter;

/// A subset of a model's parameters (for influence, or to train alone). Cost grows with the number of elements p:
/// each gradient is a backward pass stopping at the first selected layer, each
/// Hessian-vector product about three, and memory is a few vectors of p floats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSet {
    /// The regression head only (`classifier.*`): cheapest; backward never enters the encoder.
    Head,
    /// The last N encoder layers, the final LayerNorm and the head.
    Last(usize),
    /// Every trainable tensor (the random-feature buffers are not parameters).
    All,
    /// PEFT adapter tensors (LoRA/IA3) and the head.
    Adapters,
}

impl FromStr for ParamSet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "head" => Ok(ParamSet::Head),
            "all" => Ok(ParamSet::All),
            "adapters" => Ok(ParamSet::Adapters),
            other => match other.strip_prefix("last:").map(str::parse::<usize>) {
                Some(Ok(n)) if n > 0 => Ok(ParamSet::Last(n)),
                _ => Err(Error::param(
                    "params",
                    format!("{other:?} is not head, last:N (N ≥ 1), all or adapters"),
                )),
            },
        }
    }
}

impl std::fmt::Display for ParamSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamSet::Head => write!(f, "head"),
            ParamSet::Last(n) => write!(f, "last:{n}"),
            ParamSet::All => write!(f, "all"),
            ParamSet::Adapters => write!(f, "adapters"),
        }
    }
}

/// The tensors of `set`, sorted by name. Sets `requires_grad` on exactly these tensors and
/// clears it on all others.
pub fn select_params(model: &Model, set: &ParamSet) -> Result<Vec<(String, Tensor)>> {
    let layers = model.config.num_hidden_layers;
    let keep = |name: &str| -> bool {
        if name.ends_with("feature_map.weight") || name.starts_with("lm_head.") {
            return false;
        }
        let head = name.starts_with("classifier.");
        match set {
            ParamSet::Head => head,
            ParamSet::All => true,
            ParamSet::Adapters => head || is_adapter(name),
            ParamSet::Last(n) => {
                head || name.starts_with("molformer.LayerNorm.")
                    || (layers.saturating_sub(*n)..layers)
                        .any(|i| name.starts_with(&format!("molformer.encoder.layer.{i}.")))
            }
        }
    };
    if let ParamSet::Last(n) = set {
        if *n > layers {
            return Err(Error::param(
                "params",
                format!("last:{n} but the model has {layers} layers"),
            ));
        }
    }
    model.set_trainable(keep);
    let params: Vec<_> = model
        .named_tensors()
        .into_iter()
        .filter(|(n, _)| keep(n))
        .collect();
    if params.is_empty() {
        return Err(Error::param(
            "params",
            format!("{set} selects no tensors of this model"),
        ));
    }
    if model.head.is_none() {
        return Err(Error::param(
            "model",
            "influence needs a model with a regression head (fine-tune it first)",
        ));
    }
    Ok(params)
}
