//! MoLFormer's configuration, read and written as Hugging Face `config.json`
//! (`MolformerConfig` field names), so published checkpoints load as they are.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The architecture's hyper-parameters. Defaults are the published MoLFormer-XL values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Vocabulary size (2362).
    pub vocab_size: usize,
    /// Hidden width (768).
    pub hidden_size: usize,
    /// Encoder layers (12).
    pub num_hidden_layers: usize,
    /// Attention heads (12).
    pub num_attention_heads: usize,
    /// Feed-forward width (768).
    pub intermediate_size: usize,
    /// Activation ("gelu", exact erf form).
    pub hidden_act: String,
    /// Dropout after attention output and feed-forward (0.1).
    pub hidden_dropout_prob: f64,
    /// Dropout on the word embeddings (0.2).
    pub embedding_dropout_prob: f64,
    /// Length covered by the reference's rotary tables (202); rotary extends to any length.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initial weights (0.02).
    pub initializer_range: f64,
    /// LayerNorm epsilon (1e-12).
    pub layer_norm_eps: f64,
    /// Lower clamp of the linear-attention normaliser (1e-6).
    pub linear_attention_eps: f64,
    /// Random features per head (32).
    pub num_random_features: usize,
    /// Feature-map kernel ("relu").
    pub feature_map_kernel: String,
    /// Whether the reference redraws the feature map in training (lipo always uses the stored
    /// buffer; the field is kept for compatibility).
    pub deterministic_eval: bool,
    /// Dropout in the sequence head (null = hidden_dropout_prob).
    pub classifier_dropout_prob: Option<f64>,
    /// Residual connections in the sequence head (true).
    pub classifier_skip_connection: bool,
    /// `<pad>` id (2).
    pub pad_token_id: usize,
    /// Outputs of the sequence head (1 for regression).
    pub num_labels: Option<usize>,
    /// "molformer".
    pub model_type: String,
    /// Hugging Face architecture names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            vocab_size: 2362,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 768,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            embedding_dropout_prob: 0.2,
            max_position_embeddings: 202,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            linear_attention_eps: 1e-6,
            num_random_features: 32,
            feature_map_kernel: "relu".into(),
            deterministic_eval: false,
            classifier_dropout_prob: None,
            classifier_skip_connection: true,
            pad_token_id: 2,
            num_labels: None,
            model_type: "molformer".into(),
            architectures: vec![],
        }
    }
}

impl Config {
    /// The published MoLFormer-XL size (12 × 768, ~47 M parameters).
    pub fn xl() -> Self {
        Config::default()
    }

    /// lipo's CPU-sized default: 4 layers × 256 wide, 8 heads, feed-forward 256 (~1.7 M
    /// parameters besides the 0.6 M embedding table).
    pub fn small() -> Self {
        Config {
            hidden_size: 256,
            num_hidden_layers: 4,
            num_attention_heads: 8,
            intermediate_size: 256,
            ..Config::default()
        }
    }

    /// A tiny configuration for tests (2 layers × 32).
    pub fn tiny() -> Self {
        Config {
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            num_random_features: 16,
            ..Config::default()
        }
    }

    /// A named preset: `xl`, `small` or `tiny`.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "xl" => Ok(Config::xl()),
            "small" => Ok(Config::small()),
            "tiny" => Ok(Config::tiny()),
            other => Err(Error::param(
                "arch",
                format!("unknown preset {other:?} (xl, small, tiny)"),
            )),
        }
    }

    /// Head size `hidden / heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Dropout of the sequence head.
    pub fn classifier_dropout(&self) -> f64 {
        self.classifier_dropout_prob
            .unwrap_or(self.hidden_dropout_prob)
    }

    /// Checks that the configuration describes a model lipo can build.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, reason: String| Err(Error::param(name, reason));
        if self.hidden_size == 0
            || self.num_attention_heads == 0
            || self.hidden_size % self.num_attention_heads != 0
        {
            return bad(
                "hidden_size",
                format!(
                    "{} is not a positive multiple of num_attention_heads {}",
                    self.hidden_size, self.num_attention_heads
                ),
            );
        }
        if self.head_dim() % 2 != 0 {
            return bad(
                "hidden_size",
                format!(
                    "head size {} must be even for rotary embeddings",
                    self.head_dim()
                ),
            );
        }
        if self.num_hidden_layers == 0
            || self.intermediate_size == 0
            || self.num_random_features == 0
            || self.vocab_size < 5
        {
            return bad(
                "config",
                "layers, intermediate_size, num_random_features and vocab_size must be positive"
                    .into(),
            );
        }
        for (name, value, max) in [
            ("vocab_size", self.vocab_size, 1 << 20),
            ("hidden_size", self.hidden_size, 8192),
            ("num_hidden_layers", self.num_hidden_layers, 128),
            ("num_attention_heads", self.num_attention_heads, 256),
            ("intermediate_size", self.intermediate_size, 65536),
            ("num_random_features", self.num_random_features, 4096),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1 << 16,
            ),
            ("num_labels", self.num_labels.unwrap_or(1), 1024),
        ] {
            if value > max {
                return bad(name, format!("{value} is above the limit of {max}"));
            }
        }
        if self.pad_token_id >= self.vocab_size {
            return bad(
                "pad_token_id",
                format!(
                    "{} is outside the vocabulary of {}",
                    self.pad_token_id, self.vocab_size
                ),
            );
        }
        for (name, value) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("embedding_dropout_prob", self.embedding_dropout_prob),
            ("classifier_dropout_prob", self.classifier_dropout()),
        ] {
            if !(0.0..1.0).contains(&value) {
                return bad(name, format!("{value} is not a probability below 1"));
            }
        }
        for (name, value) in [
            ("layer_norm_eps", self.layer_norm_eps),
            ("linear_attention_eps", self.linear_attention_eps),
            ("initializer_range", self.initializer_range),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(name, format!("{value} is not a non-negative number"));
            }
        }
        if self.hidden_act != "gelu" {
            return bad(
                "hidden_act",
                format!("{:?} is not supported (gelu)", self.hidden_act),
            );
        }
        if self.feature_map_kernel != "relu" {
            return bad(
                "feature_map_kernel",
                format!("{:?} is not supported (relu)", self.feature_map_kernel),
            );
        }
        Ok(())
    }

    /// Reads `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let c: Config = serde_json::from_str(&text).map_err(|e| Error::Json {
            path: path.into(),
            source: e,
        })?;
        c.validate().map_err(|e| match e {
            Error::InvalidParameter { name, reason } => {
                Error::model(path, format!("{name}: {reason}"))
            }
            e => e,
        })?;
        Ok(c)
    }

    /// Writes `config.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("config serialises");
        crate::fsutil::write_atomic(path, text.as_bytes())
    }
}
