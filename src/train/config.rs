//! The settings of a fine-tuning run ([`FinetuneRun`], [`FinetuneConfig`] and their parts) and
//! their validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::TableOptions;
use crate::error::{Error, Result};
use crate::model::{Config, Task};
use crate::peft::PeftConfig;

/// Optimisation settings of a fine-tuning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Maximum epochs; the best validation epoch is kept.
    pub epochs: usize,
    /// Molecules per step (the study: 16).
    pub batch_size: usize,
    /// Adam learning rate (the peak, with a schedule).
    pub lr: f64,
    /// How the learning rate changes over the run's steps (absent: constant).
    #[serde(skip_serializing_if = "LrSchedule::is_constant")]
    pub schedule: LrSchedule,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
    /// Seed of the split, the batch order, dropout and new weights.
    pub seed: u64,
    /// Share of rows held out as test (0.2).
    pub test_frac: f64,
    /// Share of the training rows held out for validation (0.1).
    pub valid_frac: f64,
    /// Batch size for evaluation.
    pub eval_batch_size: usize,
    /// Regression (MSE on standardised labels) or classification (BCE with logits).
    pub task: Task,
    /// Classification: how labels become classes (`label > threshold` is class 1); absent,
    /// the labels must already be 0 or 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binarize: Option<Binarize>,
    /// Parameter-efficient method (absent: every parameter trains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peft: Option<PeftConfig>,
    /// Draw fresh random attention features at every training step, as the reference
    /// MoLFormer code does (absent: false, the stored features throughout).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redraw_features: bool,
    /// SMILES augmentation: the share of training molecules that are written as a fresh
    /// random SMILES of the same molecule at each epoch ([`crate::augment`]; absent: 0,
    /// the SMILES as given). Validation and test always use the SMILES as given.
    #[serde(skip_serializing_if = "crate::fsutil::is_default")]
    pub augment: f64,
    /// Test-time augmentation: validation and test predictions are the mean over each SMILES
    /// as given and this many random SMILES of the same molecule (absent: 0, the SMILES as
    /// given only). The trained model records it (`lipo.json`), and `lipo predict` and
    /// `lipo evaluate` use it.
    #[serde(skip_serializing_if = "crate::fsutil::is_default")]
    pub tta: usize,
    /// Write every SMILES in lipo's canonical form before encoding it, for training,
    /// validation, test and (the model records it) every later prediction (absent: false).
    /// Augmented training molecules stay random writings.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub canonical: bool,
    /// Rows of the table (0-based) left out of training after the split is made; validation
    /// and test keep theirs. Retraining checks of `lipo explain` use it (absent: none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_rows: Vec<usize>,
    /// Train only these parameters (e.g. `last:1`: the last encoder layer, the final
    /// LayerNorm and the head); everything else keeps its starting weights. Not with `peft`
    /// (absent: every parameter, or the PEFT method's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_params: Option<crate::peft::ParamSet>,
    /// Seed dropout afresh at every optimiser step, from the seed, the epoch and the batch's
    /// place in the epoch, and keep each epoch's batches when `exclude_rows` leaves rows out
    /// (they drop out of the batches that held them). A retrain without a few rows then
    /// differs from the original run only where those rows were (absent: false, one dropout
    /// stream per epoch).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub step_seeds: bool,
    /// Keep the model after every epoch in `RUN/epochs/epoch-<k>/` (TracIn reads them; absent:
    /// false, only the best epoch's model is kept).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_epochs: bool,
}

/// Share of a run's steps that [`LrSchedule::Noam`] warms up over.
const NOAM_WARMUP: f64 = 0.04;

/// How the learning rate changes over a run's steps (over `epochs`, even when `patience`
/// stops the run earlier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr` throughout (lipo's default).
    #[default]
    Constant,
    /// Straight down from `lr` to 0 at the last step (Hugging Face Trainer's default).
    Linear,
    /// Half a cosine from `lr` down to 0 at the last step.
    Cosine,
    /// chemprop's "Noam" shape: up from `lr`/10 to `lr` over the first 4 % of steps (2 of 50
    /// epochs), then exponentially down to `lr`/10 at the last step.
    Noam,
}

impl LrSchedule {
    /// Whether this is [`LrSchedule::Constant`] (then run.json leaves it out).
    pub fn is_constant(&self) -> bool {
        *self == LrSchedule::Constant
    }

    /// The learning rate of the step that follows `done` of `total` steps.
    pub fn rate(self, lr: f64, done: u64, total: u64) -> f64 {
        let t = if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).clamp(0.0, 1.0)
        };
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Linear => lr * (1.0 - t),
            LrSchedule::Cosine => lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
            LrSchedule::Noam => {
                let warm = (total as f64 * NOAM_WARMUP).max(1.0);
                let done = done as f64;
                if done < warm {
                    lr * (0.1 + 0.9 * done / warm)
                } else {
                    let rest = (total as f64 - warm).max(1.0);
                    lr * 0.1f64.powf(((done - warm) / rest).min(1.0))
                }
            }
        }
    }

    /// Parses `constant`, `linear`, `cosine` or `noam`.
    pub fn parse(s: &str) -> Option<LrSchedule> {
        match s {
            "noam" => Some(LrSchedule::Noam),
            "constant" => Some(LrSchedule::Constant),
            "linear" => Some(LrSchedule::Linear),
            "cosine" => Some(LrSchedule::Cosine),
            _ => None,
        }
    }
}

/// The threshold that turns numeric labels into classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// The training-split mean (the study's choice).
    Mean,
    /// The training-split median (balanced classes).
    Median,
    /// A fixed value in label units.
    Value(f64),
}

impl std::str::FromStr for Binarize {
    type Err = Error;
    fn from_str(s: &str) -> Result<Binarize> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mean" => Ok(Binarize::Mean),
            "median" => Ok(Binarize::Median),
            v => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Binarize::Value)
                .ok_or_else(|| {
                    Error::param("binarize", format!("{s:?} is not mean, median or a number"))
                }),
        }
    }
}

impl Binarize {
    /// The threshold for training-split labels `train`.
    pub fn threshold(&self, train: &[f64]) -> f64 {
        match *self {
            Binarize::Mean => crate::metrics::mean_sd(train).0,
            Binarize::Median => {
                let mut v = train.to_vec();
                v.sort_by(f64::total_cmp);
                let n = v.len();
                if n % 2 == 1 {
                    v[n / 2]
                } else {
                    (v[n / 2 - 1] + v[n / 2]) / 2.0
                }
            }
            Binarize::Value(x) => x,
        }
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            epochs: 20,
            batch_size: 16,
            lr: 1e-4,
            schedule: LrSchedule::Constant,
            weight_decay: 0.0,
            grad_clip: Some(1.0),
            patience: None,
            seed: 0,
            test_frac: 0.2,
            valid_frac: 0.1,
            eval_batch_size: 64,
            task: Task::Regression,
            binarize: None,
            peft: None,
            redraw_features: false,
            augment: 0.0,
            tta: 0,
            canonical: false,
            exclude_rows: Vec::new(),
            train_params: None,
            step_seeds: false,
            keep_epochs: false,
        }
    }
}

/// Where the starting weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitFrom {
    /// New weights of this architecture.
    Random(Box<Config>),
    /// A model folder (its encoder; its head too when it has one of the right size).
    Model(PathBuf),
    /// New weights of a graph model ([`crate::graph`]: a D-MPNN over the molecule graph).
    Graph(Box<crate::graph::GraphConfig>),
}

/// A fully resolved fine-tuning run: written to `run.json` in the run folder, and accepted
/// back (`--config`) to repeat it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneRun {
    /// The labelled table.
    pub data: PathBuf,
    /// How to read it.
    #[serde(default)]
    pub table: TableOptions,
    /// Starting weights.
    pub init: InitFrom,
    /// Optimisation.
    pub train: FinetuneConfig,
    /// Extra labelled rows that join the training split only (Task 2: external molecules);
    /// validation and test stay the seed's split of `data`. Absent in older `run.json` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<ExtraTable>,
    /// A member of a K-fold ensemble ([`crate::train::ensemble`]): validation is this fold of
    /// the rows that are not test, and training is the other folds. Absent: the usual
    /// train / validation / test split of `train.seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<Fold>,
}

/// Which fold of a K-fold ensemble a run validates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fold {
    /// This member's fold, `0..count`.
    pub index: usize,
    /// Folds (ensemble members).
    pub count: usize,
    /// Seed of the test split and of the fold assignment, shared by all members (each
    /// member's `train.seed` drives its own weights, batch order and dropout).
    pub split_seed: u64,
}

/// A second labelled table whose rows are added to training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraTable {
    /// The table (e.g. selected external molecules, `smiles,label`).
    pub path: PathBuf,
    /// How to read it.
    #[serde(default)]
    pub table: TableOptions,
}

impl FinetuneConfig {
    /// Refuses settings a run cannot train with, naming the setting.
    pub(super) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.epochs == 0 {
            return Err(Error::param("batch_size/epochs", "must be positive"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::param(
                "lr",
                format!("{} is not a positive number", self.lr),
            ));
        }
        match (self.task, &self.binarize) {
            (Task::Encoder, _) => {
                return Err(Error::param(
                    "task",
                    "fine-tuning trains a regression or classification head",
                ))
            }
            (Task::Regression, Some(_)) => {
                return Err(Error::param(
                    "binarize",
                    "only applies to task classification",
                ))
            }
            _ => {}
        }
        if !(0.0..=1.0).contains(&self.augment) {
            return Err(Error::param(
                "augment",
                format!("{} is not a share between 0 and 1", self.augment),
            ));
        }
        if let Some(p) = &self.peft {
            p.validate()?;
        }
        Ok(())
    }
}

impl Fold {
    /// Refuses a fold that cannot exist, naming the setting.
    pub(super) fn validate(&self) -> Result<()> {
        if !(2..=crate::train::ensemble::MAX_MEMBERS).contains(&self.count) {
            return Err(Error::param(
                "ensemble",
                format!(
                    "{} members: an ensemble has 2 to {}",
                    self.count,
                    crate::train::ensemble::MAX_MEMBERS
                ),
            ));
        }
        if self.index >= self.count {
            return Err(Error::param(
                "fold",
                format!("fold {} of {} does not exist", self.index, self.count),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::LrSchedule;

    #[test]
    fn noam_warms_up_then_decays_to_a_tenth() {
        let (lr, total) = (1e-3, 1000);
        let r = |done| LrSchedule::Noam.rate(lr, done, total);
        assert!((r(0) - 1e-4).abs() < 1e-12);
        assert!((r(40) - 1e-3).abs() < 1e-12, "peak after 4 % of the steps");
        assert!(r(20) > r(0) && r(20) < r(40));
        assert!(r(500) < r(40) && r(500) > r(1000));
        assert!((r(1000) - 1e-4).abs() < 1e-12);
        assert_eq!(LrSchedule::parse("noam"), Some(LrSchedule::Noam));
    }
}
