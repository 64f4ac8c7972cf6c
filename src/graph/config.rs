//! `config.json` of a graph model: the D-MPNN's sizes, and the feature widths it was built
//! for (checked when a folder is opened, so features of another lipo version are refused
//! instead of misread).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::features::{ATOM_FEATURES, BOND_FEATURES, FEATURES_VERSION};
use crate::error::{Error, Result};

/// The `model_type` of a graph model's `config.json`.
pub const MODEL_TYPE: &str = crate::model::GRAPH_MODEL_TYPE;

/// How atom vectors become one molecule vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// The mean over atoms.
    Mean,
    /// The sum over atoms.
    Sum,
    /// The sum over atoms divided by 100 (chemprop's default): size-aware like the sum, at
    /// the scale of the mean.
    #[default]
    Norm,
}

/// Sizes of a directed message-passing network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// Always [`MODEL_TYPE`].
    pub model_type: String,
    /// Width of the bond messages and atom vectors.
    pub hidden: usize,
    /// Message-passing steps (the first message counts as one).
    pub depth: usize,
    /// Width of the head's hidden layers.
    pub ffn_hidden: usize,
    /// Linear layers of the head (1: linear head; 2: one hidden layer).
    pub ffn_layers: usize,
    /// Dropout on messages and in the head, during training.
    pub dropout: f64,
    /// Atoms to molecule.
    pub aggregation: Aggregation,
    /// Atom feature width the weights expect.
    pub atom_features: usize,
    /// Bond feature width the weights expect.
    pub bond_features: usize,
    /// The feature layout the weights expect ([`FEATURES_VERSION`]).
    pub features: u32,
}

impl Default for GraphConfig {
    /// chemprop's defaults: 300 wide, 3 steps, one hidden head layer, no dropout.
    fn default() -> Self {
        GraphConfig {
            model_type: MODEL_TYPE.into(),
            hidden: 300,
            depth: 3,
            ffn_hidden: 300,
            ffn_layers: 2,
            dropout: 0.0,
            aggregation: Aggregation::Norm,
            atom_features: ATOM_FEATURES,
            bond_features: BOND_FEATURES,
            features: FEATURES_VERSION,
        }
    }
}

impl GraphConfig {
    /// A small network for tests (32 wide, 2 steps).
    pub fn tiny() -> Self {
        GraphConfig {
            hidden: 32,
            depth: 2,
            ffn_hidden: 16,
            ..GraphConfig::default()
        }
    }

    /// Refuses sizes the network cannot be built with, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::param(format!("graph.{field}"), why));
        if self.model_type != MODEL_TYPE {
            return bad(
                "model_type",
                format!("is {:?}, not {MODEL_TYPE:?}", self.model_type),
            );
        }
        for (field, v, lo, hi) in [
            ("hidden", self.hidden, 1, 8192),
            ("depth", self.depth, 1, 32),
            ("ffn_hidden", self.ffn_hidden, 1, 8192),
            ("ffn_layers", self.ffn_layers, 1, 8),
        ] {
            if !(lo..=hi).contains(&v) {
                return bad(field, format!("= {v} is outside {lo}..={hi}"));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("= {} is outside [0, 1)", self.dropout));
        }
        if self.atom_features != ATOM_FEATURES
            || self.bond_features != BOND_FEATURES
            || self.features != FEATURES_VERSION
        {
            return bad(
                "features",
                format!(
                    "the weights expect feature layout {} ({} atom, {} bond features), this lipo makes layout {FEATURES_VERSION} ({ATOM_FEATURES}, {BOND_FEATURES}); train the model again",
                    self.features, self.atom_features, self.bond_features
                ),
            );
        }
        Ok(())
    }

    /// The feature layout as the bundle metadata records it: `version:atom,bond`.
    pub fn features_key(&self) -> String {
        format!(
            "{}:{},{}",
            self.features, self.atom_features, self.bond_features
        )
    }

    /// Reads and checks `config.json` of a graph model folder; one that does not record its
    /// feature layout is refused.
    pub fn load(path: &Path) -> Result<Self> {
        let raw: serde_json::Value = crate::fsutil::read_json(path)?;
        if raw.get("features").is_none() {
            return Err(Error::model(
                path,
                "records no feature layout (\"features\"); it was made before layout 2: train the model again",
            ));
        }
        let c: GraphConfig =
            serde_json::from_value(raw).map_err(|e| Error::model(path, e.to_string()))?;
        c.validate()
            .map_err(|e| Error::model(path, e.to_string()))?;
        Ok(c)
    }

    /// Whether the `config.json` at `path` is a graph model's.
    pub fn is_graph_config(path: &Path) -> bool {
        crate::model::is_graph_config(path)
    }
}
