//! Masked-language-model training (the study's Task 1.2 and lipo's own pre-training): BERT
//! masking of 15 % of the non-special tokens (80 % `<mask>`, 10 % random, 10 % unchanged),
//! cross-entropy on the chosen positions only, AdamW with warm-up and linear decay.
//!
//! The corpus is streamed (CSV/TSV/.smi, optionally .gz) in chunks that are shuffled and cut
//! into batches of similar length, so a million molecules never sit in memory. The order of
//! batches is a function of (seed, epoch, chunk), which makes checkpoints exact: a resumed run
//! continues with the very batch the interrupted one would have taken next.
//!
//! The run, step by step: `setup` checks the settings and claims the run folder, `corpus`
//! scans the corpus and streams its chunks, `masking` chooses the positions to predict,
//! `objective` scores a batch, `train_loop` takes the steps with their evaluations and
//! checkpoints, and `report` writes the results.

mod corpus;
mod masking;
mod objective;
mod report;
mod setup;
mod train_loop;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::data::TableOptions;
use crate::error::Result;
use crate::fsutil;
use crate::model::Config;
use crate::progress::{Event, Monitor};
use crate::train::InitFrom;

pub use masking::mask_tokens;
pub use report::plot_curves;

/// Optimisation settings of an MLM run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlmConfig {
    /// Passes over the corpus.
    pub epochs: usize,
    /// Stop after this many steps (also fixes the schedule's length).
    pub max_steps: Option<u64>,
    /// Molecules per step.
    pub batch_size: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Share of non-special tokens chosen for prediction (0.15).
    pub mask_prob: f64,
    /// Seed of masking, batch order, dropout and new weights.
    pub seed: u64,
    /// Molecules held out for masked accuracy (chosen by a hash of the SMILES).
    pub valid_size: usize,
    /// Evaluate every this many steps (and at every epoch end).
    pub eval_every: u64,
    /// Write a checkpoint every this many steps.
    pub checkpoint_every: u64,
    /// Molecules read, shuffled and bucketed together.
    pub chunk_size: usize,
    /// Skip molecules with more tokens than this.
    pub max_tokens: usize,
    /// Clip the global gradient norm.
    pub grad_clip: Option<f64>,
    /// Draw fresh random attention features at every training step, as the reference
    /// MoLFormer code does (absent: false, the stored features throughout).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redraw_features: bool,
    /// SMILES augmentation: the share (0–1) of training molecules written as a fresh random
    /// SMILES of the same molecule at each pass ([`crate::augment`]); held-out molecules are
    /// always read as given (absent: 0).
    #[serde(skip_serializing_if = "crate::fsutil::is_default")]
    pub augment: f64,
}

impl Default for MlmConfig {
    fn default() -> Self {
        MlmConfig {
            epochs: 1,
            max_steps: None,
            batch_size: 64,
            lr: 5e-4,
            weight_decay: 0.01,
            warmup_steps: 500,
            mask_prob: 0.15,
            seed: 0,
            valid_size: 2000,
            eval_every: 1000,
            checkpoint_every: 500,
            chunk_size: 16384,
            max_tokens: 256,
            grad_clip: Some(1.0),
            redraw_features: false,
            augment: 0.0,
        }
    }
}

/// A fully resolved MLM run (`run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlmRun {
    /// The SMILES corpus.
    pub corpus: PathBuf,
    /// How to read it.
    #[serde(default)]
    pub table: TableOptions,
    /// Tables whose molecules must not be trained on (exact SMILES match).
    #[serde(default)]
    pub exclude: Vec<PathBuf>,
    /// Starting weights.
    pub init: InitFrom,
    /// Optimisation.
    pub mlm: MlmConfig,
}

/// One evaluation of the held-out molecules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlmEval {
    /// Steps done.
    pub step: u64,
    /// Epoch (1-based) during which it ran.
    pub epoch: usize,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    /// Held-out cross-entropy on masked positions.
    pub valid_loss: f64,
    /// Held-out masked-token accuracy.
    pub valid_accuracy: f64,
    /// `exp(valid_loss)`.
    pub valid_perplexity: f64,
    /// Training molecules per second since the previous evaluation.
    pub mols_per_s: f64,
    /// Learning rate at this step.
    pub lr: f64,
}

/// What an MLM run measured (`metrics.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlmReport {
    /// Steps taken.
    pub steps: u64,
    /// Training molecules seen.
    pub molecules: u64,
    /// Corpus molecules usable for training per epoch.
    pub corpus_train: u64,
    /// Held-out molecules.
    pub corpus_valid: usize,
    /// Corpus rows removed because they are in an excluded table.
    pub excluded: u64,
    /// Corpus rows skipped (unreadable SMILES, too long).
    pub skipped: u64,
    /// Evaluation history.
    pub history: Vec<MlmEval>,
    /// Final held-out masked-token accuracy.
    pub valid_accuracy: f64,
    /// Final held-out perplexity.
    pub valid_perplexity: f64,
    /// Mean training molecules per second.
    pub mols_per_s: f64,
    /// Seconds spent training (over all sessions of a resumed run).
    pub train_seconds: f64,
    /// Device and threads.
    pub device: String,
}

/// Files of an MLM run folder.
pub mod files {
    /// Final model (encoder + MLM head).
    pub const MODEL: &str = "model";
    /// Resumable state.
    pub const CHECKPOINT: &str = "checkpoint";
    /// Report.
    pub const METRICS: &str = "metrics.json";
    /// Loss and accuracy curves.
    pub const CURVES_PNG: &str = "mlm.png";
}

/// The report of `run` when `out` holds it finished (its run.json is `run` and its
/// metrics.json exists), whether or not its model was kept.
pub fn finished_record(run: &MlmRun, out: &Path) -> Result<Option<MlmReport>> {
    fsutil::finished_record(run, out, "run.json", files::METRICS)
}

/// Runs, resumes, or returns the finished result of an MLM run in `out`.
pub fn mlm(
    run: &MlmRun,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<MlmReport> {
    let cfg = &run.mlm;
    setup::check_settings(cfg)?;
    if let Some(finished) = setup::claim_run_folder(run, out)? {
        return Ok(finished);
    }
    let tokenizer = setup::tokenizer(&run.init)?;
    let (corpus, scan) = corpus::prepare(run, &tokenizer, monitor)?;
    if cfg.augment > 0.0 {
        monitor.event(&Event::Message {
            text: format!(
                "SMILES augmentation on {:.0} % of training molecules per pass",
                100.0 * cfg.augment
            ),
        });
    }
    let (model, mut opt) = setup::model_and_optimizer(run, tokenizer.clone(), device)?;
    let total_steps = setup::total_steps(cfg, scan.train);
    let ckpt = out.join(files::CHECKPOINT);
    let state = train_loop::restore(run, &ckpt, &model, &mut opt, device, monitor)?;
    let trainer = train_loop::Trainer {
        model: &model,
        opt: &mut opt,
        cfg,
        corpus: &corpus,
        valid: &scan.valid,
        total_steps,
        ckpt: &ckpt,
        monitor,
        governor: crate::threads::Governor::new(device.is_cuda()),
    };
    let state = trainer.run(state)?;
    report::finish(&model, cfg, &state, &scan, out, device)
}

/// The architecture a random-init MLM run builds when none is given.
pub fn default_config() -> Config {
    Config::small()
}
