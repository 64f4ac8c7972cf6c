//! `lipo.json`: what lipo knows about a model beyond Hugging Face's `config.json` — the task,
//! the label's name and standardisation, the classification threshold and adapters.

use serde::{Deserialize, Serialize};

/// What the model's sequence head predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// A real value (logD), trained with MSE on standardised labels.
    #[default]
    Regression,
    /// A binary class, trained with BCE; the output is a probability.
    Classification,
    /// No sequence head: the encoder serves embeddings (and MLM when it has an `lm_head`).
    Encoder,
}

/// Contents of `lipo.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// lipo version that wrote the model.
    pub lipo_version: String,
    /// The task of the sequence head.
    pub task: Task,
    /// Header of the label column the model was trained on.
    pub label_name: Option<String>,
    /// Training-split label mean (regression outputs are `z * sd + mean`).
    pub label_mean: f64,
    /// Training-split label sd.
    pub label_sd: f64,
    /// Threshold that binarised the labels (classification), in label units.
    pub threshold: Option<f64>,
    /// How the model was made (the command line or a description).
    pub provenance: Option<String>,
    /// Parameter-efficient adapters the weights carry (LoRA/IA3 tensors load with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peft: Option<super::adapters::PeftConfig>,
    /// Test-time augmentation the model was validated with: predictions average the SMILES
    /// as given and this many random SMILES of the same molecule (0: the SMILES only).
    #[serde(default, skip_serializing_if = "crate::fsutil::is_default")]
    pub tta: usize,
    /// Whether every SMILES is written in lipo's canonical form before it is encoded
    /// ([`crate::smiles::canonical`]), so that all writings of a molecule get one prediction
    /// (absent: false, the SMILES as given).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canonical: bool,
}

/// The most random SMILES a model may average per molecule ([`ModelMeta::tta`]); a larger
/// value in a model folder or bundle is refused before anything is allocated.
pub const MAX_TTA: usize = 64;

impl ModelMeta {
    /// Checks every number against its bounds; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.tta > MAX_TTA {
            return Err(format!(
                "tta = {} is above the limit of {MAX_TTA}",
                self.tta
            ));
        }
        if !self.label_mean.is_finite() {
            return Err(format!("label_mean = {} is not finite", self.label_mean));
        }
        if !(self.label_sd.is_finite() && self.label_sd > 0.0) {
            return Err(format!(
                "label_sd = {} is not a positive number",
                self.label_sd
            ));
        }
        if self.threshold.is_some_and(|t| !t.is_finite()) {
            return Err("threshold is not finite".into());
        }
        Ok(())
    }
}

impl Default for ModelMeta {
    fn default() -> Self {
        ModelMeta {
            lipo_version: crate::VERSION.into(),
            task: Task::Regression,
            label_name: None,
            label_mean: 0.0,
            label_sd: 1.0,
            threshold: None,
            provenance: None,
            peft: None,
            tta: 0,
            canonical: false,
        }
    }
}
