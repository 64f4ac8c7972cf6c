//! Which adapters a model's weights carry, as `lipo.json` records them (its `peft` entry):
//! the method (BitFit, LoRA, IA3) and its settings. The encoder's layers have room for the
//! adapter tensors (`Linear::lora`, the `ia3_*` vectors of `molformer.rs`); creating,
//! training and merging them is done above `model`: a folder whose `lipo.json` records
//! adapters is opened (`Model::open`) and the opener attaches them before the weights are
//! read.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Linear layers of an encoder block, by their name inside `encoder.layer.{i}`.
pub const LINEAR_MODULES: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

/// LoRA settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoraConfig {
    /// Rank of the update (8).
    pub r: usize,
    /// Scale numerator: the update is multiplied by `alpha / r` (16).
    pub alpha: f64,
    /// Dropout on the adapter's input (0.05).
    pub dropout: f64,
    /// Target layers: a name matches a layer of [`LINEAR_MODULES`] that equals it or ends with
    /// `.name` (Hugging Face PEFT's rule), e.g. `query`, `value`, `dense`, `output.dense`.
    pub targets: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: 8,
            alpha: 16.0,
            dropout: 0.05,
            targets: vec!["query".into(), "value".into()],
        }
    }
}

impl LoraConfig {
    /// `alpha / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// The layers of [`LINEAR_MODULES`] the targets select (an error names a target that
    /// selects none).
    pub fn modules(&self) -> Result<Vec<&'static str>> {
        if self.targets.is_empty() {
            return Err(Error::param("lora_targets", "names no layer"));
        }
        for t in &self.targets {
            if !LINEAR_MODULES.iter().any(|m| module_matches(m, t)) {
                return Err(Error::param(
                    "lora_targets",
                    format!(
                        "{t:?} matches no linear layer of an encoder block ({})",
                        LINEAR_MODULES.join(", ")
                    ),
                ));
            }
        }
        Ok(LINEAR_MODULES
            .iter()
            .copied()
            .filter(|m| self.targets.iter().any(|t| module_matches(m, t)))
            .collect())
    }
}

fn module_matches(module: &str, target: &str) -> bool {
    module == target || module.ends_with(&format!(".{target}"))
}

/// IA3 settings: which activations get a learned scaling vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ia3Config {
    /// Scale the keys (`attention.self.key` output).
    pub key: bool,
    /// Scale the values (`attention.self.value` output).
    pub value: bool,
    /// Scale the feed-forward activation (the input of `output.dense`).
    pub feed_forward: bool,
}

impl Default for Ia3Config {
    fn default() -> Self {
        Ia3Config {
            key: true,
            value: true,
            feed_forward: true,
        }
    }
}

/// A parameter-efficient fine-tuning method and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum PeftConfig {
    /// Bias terms and the task head train; everything else is frozen.
    BitFit,
    /// Low-rank updates of chosen linear layers.
    Lora(LoraConfig),
    /// Learned scaling of keys, values and the feed-forward activation.
    Ia3(Ia3Config),
}

impl PeftConfig {
    /// The method by name (`bitfit`, `lora`, `ia3`) with default settings.
    pub fn by_name(name: &str) -> Result<PeftConfig> {
        match name.to_ascii_lowercase().as_str() {
            "bitfit" => Ok(PeftConfig::BitFit),
            "lora" => Ok(PeftConfig::Lora(LoraConfig::default())),
            "ia3" => Ok(PeftConfig::Ia3(Ia3Config::default())),
            other => Err(Error::param(
                "peft",
                format!("unknown method {other:?} (bitfit, lora, ia3)"),
            )),
        }
    }

    /// `bitfit`, `lora` or `ia3`.
    pub fn name(&self) -> &'static str {
        match self {
            PeftConfig::BitFit => "bitfit",
            PeftConfig::Lora(_) => "lora",
            PeftConfig::Ia3(_) => "ia3",
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        match self {
            PeftConfig::BitFit => Ok(()),
            PeftConfig::Lora(l) => {
                if l.r == 0 || l.r > 4096 {
                    return Err(Error::param(
                        "lora r",
                        format!("{} is not a rank from 1 to 4096", l.r),
                    ));
                }
                if !(l.alpha.is_finite() && l.alpha > 0.0) {
                    return Err(Error::param(
                        "lora_alpha",
                        format!("{} is not a positive number", l.alpha),
                    ));
                }
                if !(0.0..1.0).contains(&l.dropout) {
                    return Err(Error::param(
                        "lora_dropout",
                        format!("{} is not in [0, 1)", l.dropout),
                    ));
                }
                l.modules().map(|_| ())
            }
            PeftConfig::Ia3(c) => {
                if c.key || c.value || c.feed_forward {
                    Ok(())
                } else {
                    Err(Error::param(
                        "ia3",
                        "scales nothing (key, value, feed_forward all off)",
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_like_hugging_face_peft() {
        let l = LoraConfig::default();
        assert_eq!(
            l.modules().unwrap(),
            vec!["attention.self.query", "attention.self.value"]
        );
        let dense = LoraConfig {
            targets: vec!["dense".into()],
            ..LoraConfig::default()
        };
        assert_eq!(dense.modules().unwrap().len(), 3);
        let bad = LoraConfig {
            targets: vec!["quarry".into()],
            ..LoraConfig::default()
        };
        assert!(bad.modules().unwrap_err().to_string().contains("quarry"));
        assert_eq!(l.scale(), 2.0);
    }

    #[test]
    fn config_round_trips_through_json() {
        for c in [
            PeftConfig::BitFit,
            PeftConfig::by_name("lora").unwrap(),
            PeftConfig::by_name("IA3").unwrap(),
        ] {
            let s = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<PeftConfig>(&s).unwrap(), c);
        }
        assert_eq!(
            serde_json::to_string(&PeftConfig::BitFit).unwrap(),
            r#"{"method":"bitfit"}"#
        );
        assert!(PeftConfig::by_name("prefix").is_err());
    }
}
