//! What a fine-tuning run measured ([`FinetuneReport`] and its parts), and the run's last
//! step: test the kept epoch's model, then write the adapter, test predictions, loss plot and
//! `metrics.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::error::Result;
use crate::fsutil;
use crate::metrics::{Classification, Regression};
use crate::model::{Model, Task};
use crate::peft::{self, LoadModel, ParameterCounts, PeftConfig};
use crate::predict;

use super::epochs::{EpochRecord, Training};
use super::evaluate::{raw_outputs, write_predictions};
use super::inputs::Inputs;
use super::{files, FinetuneConfig, FinetuneRun, InitFrom};

/// What happened to the rows of an [`ExtraTable`](super::ExtraTable); written to `extra.json` and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraReport {
    /// The extra table.
    pub path: PathBuf,
    /// Usable rows read from it.
    pub rows: usize,
    /// Rows added to training.
    pub used: usize,
    /// Rows dropped because they duplicate a validation or test molecule of the main table.
    pub dropped: Vec<crate::selection::Duplicate>,
}

/// What a fine-tuning run measured; written to `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneReport {
    /// Split seed.
    pub seed: u64,
    /// Rows in train / validation / test.
    pub sizes: [usize; 3],
    /// Epoch whose weights were kept (best validation loss).
    pub best_epoch: usize,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
    /// Test metrics in label units (best epoch).
    pub test: Regression,
    /// Validation metrics in label units (best epoch).
    pub valid: Regression,
    /// Mean-predictor floor on test: predicting the train mean everywhere.
    pub test_mean_predictor: Regression,
    /// Training molecules per second (evaluation excluded).
    pub train_mols_per_s: f64,
    /// Wall time of the whole run, including earlier interrupted calls up to their last
    /// checkpoint.
    pub wall_seconds: f64,
    /// Device and threads.
    pub device: String,
    /// Trainable parameter elements.
    pub trainable_parameters: usize,
    /// All parameter elements.
    pub parameters: usize,
    /// Train-split label mean and sd.
    pub label_mean: f64,
    /// Train-split label sd.
    pub label_sd: f64,
    /// The task trained. For classification, `test`, `valid` and `test_mean_predictor` are
    /// regression metrics of probabilities against the 0/1 classes (MSE = Brier score); the
    /// classification metrics are in `classification`.
    #[serde(default)]
    pub task: Task,
    /// Classification metrics (classification runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationReport>,
    /// Parameters by role (trainable, adapters, head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_counts: Option<ParameterCounts>,
    /// Memory of the training process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryReport>,
    /// The parameter-efficient method (absent: full fine-tuning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peft: Option<PeftConfig>,
    /// Extra training rows (absent when the run had none); `sizes[0]` includes the used ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<ExtraReport>,
}

/// Classification results of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Label threshold (label units) that made the classes; absent when labels were 0/1.
    pub threshold: Option<f64>,
    /// Share of class 1 in the training rows.
    pub train_positive_share: f64,
    /// Test metrics (best epoch).
    pub test: Classification,
    /// Validation metrics (best epoch).
    pub valid: Classification,
    /// Floor: predicting the training split's class-1 share for every molecule.
    pub test_majority: Classification,
}

/// Memory of a training run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Resident set size on entry to [`finetune`](crate::train::finetune) (before data and model load), bytes.
    pub start_rss_bytes: Option<u64>,
    /// Peak resident set size of the process at the end of the run, bytes. In a process that
    /// ran nothing else before (as `lipo compare-peft` arranges) this is the run's peak.
    pub peak_rss_bytes: Option<u64>,
    /// Training state: parameters plus, for each trainable element, its gradient and two
    /// Adam moments (4 bytes each), bytes. Activations are not included.
    pub state_bytes: u64,
}

/// Best-epoch predictions in label units, and the truths they are scored against (0/1 classes
/// for classification).
struct Scored {
    test_pred: Vec<f64>,
    test_truth: Vec<f64>,
    valid_pred: Vec<f64>,
    valid_truth: Vec<f64>,
}

/// The last step of a run: scores the kept epoch's model on test and validation, writes the
/// adapter (PEFT runs), the test predictions, the loss plot and `metrics.json`, and removes the
/// checkpoint.
pub(super) fn finish(
    t: &Training,
    device: Device,
    counts: ParameterCounts,
    start_rss: Option<u64>,
) -> Result<FinetuneReport> {
    let (run, out, inputs) = (t.run, t.out, t.inputs);
    let cfg = &run.train;
    let classify = cfg.task == Task::Classification;
    let best = Model::load(&out.join(files::MODEL), device)?;
    let s = score(&best, inputs, cfg)?;
    let targets = &inputs.targets;
    let floor = if classify {
        targets.train_positive_share
    } else {
        targets.mean
    };
    let floor_pred = vec![floor; s.test_truth.len()];
    let classification = classify.then(|| ClassificationReport {
        threshold: targets.threshold,
        train_positive_share: targets.train_positive_share,
        test: Classification::compute(&s.test_pred, &s.test_truth),
        valid: Classification::compute(&s.valid_pred, &s.valid_truth),
        test_majority: Classification::compute(&floor_pred, &s.test_truth),
    });
    let trainable = t.opt.num_trainable();
    let parameters = t.model.num_parameters();
    let split = &inputs.split;
    let report = FinetuneReport {
        seed: cfg.seed,
        sizes: [split.train.len(), split.valid.len(), split.test.len()],
        best_epoch: t.state.best_epoch,
        history: t.state.history.clone(),
        test: Regression::compute(&s.test_pred, &s.test_truth),
        valid: Regression::compute(&s.valid_pred, &s.valid_truth),
        test_mean_predictor: Regression::compute(&floor_pred, &s.test_truth),
        train_mols_per_s: if t.train_time > 0.0 {
            t.train_mols as f64 / t.train_time
        } else {
            f64::NAN
        },
        wall_seconds: t.wall_seconds(),
        device: crate::device::describe(device),
        trainable_parameters: trainable,
        parameters,
        label_mean: targets.mean,
        label_sd: targets.sd,
        task: cfg.task,
        classification,
        parameter_counts: Some(counts),
        memory: Some(MemoryReport {
            start_rss_bytes: start_rss,
            peak_rss_bytes: crate::memory::peak_rss(),
            state_bytes: 4 * (parameters as u64 + 3 * trainable as u64),
        }),
        peft: cfg.peft.clone(),
        extra: inputs.extra.clone(),
    };
    write_outputs(run, out, &best, inputs, &s.test_pred, &report)?;
    Ok(report)
}

/// Test and validation predictions of the kept model `best`, with the run's test-time
/// augmentation.
fn score(best: &Model, inputs: &Inputs, cfg: &FinetuneConfig) -> Result<Scored> {
    let classify = cfg.task == Task::Classification;
    let split = &inputs.split;
    let test_truth = inputs.truth(&split.test, classify);
    let valid_truth = inputs.truth(&split.valid, classify);
    let test_seqs = inputs.seqs(&split.test);
    let valid_seqs = inputs.seqs(&split.valid);
    let in_label_units = |raw: Vec<f64>| -> Vec<f64> {
        raw.into_iter()
            .map(|z| predict::to_label_units(best, z))
            .collect()
    };
    let test_pred = in_label_units(raw_outputs(
        best,
        &inputs.data,
        &split.test,
        &test_seqs,
        cfg,
    )?);
    let valid_pred = in_label_units(raw_outputs(
        best,
        &inputs.data,
        &split.valid,
        &valid_seqs,
        cfg,
    )?);
    Ok(Scored {
        test_pred,
        test_truth,
        valid_pred,
        valid_truth,
    })
}

/// Writes the run's outputs besides the model: the adapter on its own (PEFT runs), the test
/// predictions, the loss plot and `metrics.json`; then removes the checkpoint.
fn write_outputs(
    run: &FinetuneRun,
    out: &Path,
    best: &Model,
    inputs: &Inputs,
    test_pred: &[f64],
    report: &FinetuneReport,
) -> Result<()> {
    if run.train.peft.is_some() {
        let base = match &run.init {
            InitFrom::Model(dir) => Some(dir.as_path()),
            InitFrom::Random(_) | InitFrom::Graph(_) => None,
        };
        peft::save_adapter(best, &out.join(files::ADAPTER), base)?;
    }
    write_predictions(
        &out.join(files::TEST_PREDICTIONS),
        &inputs.data,
        &inputs.split.test,
        test_pred,
    )?;
    plot_history(&out.join(files::LOSS_PNG), &report.history)?;
    fsutil::write_json(&out.join(files::METRICS), report)?;
    crate::checkpoint::remove(&out.join(files::CHECKPOINT));
    Ok(())
}

/// The study's Figure 1: training vs validation loss per epoch.
pub fn plot_history(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let series = [
        crate::plot::Series {
            name: "train".into(),
            points: history
                .iter()
                .map(|h| (h.epoch as f64, h.train_loss))
                .collect(),
        },
        crate::plot::Series {
            name: "validation".into(),
            points: history
                .iter()
                .map(|h| (h.epoch as f64, h.valid_loss))
                .collect(),
        },
    ];
    crate::plot::lines(
        path,
        "Fine-tuning loss",
        "epoch",
        "loss (MSE standardised, or BCE)",
        &series,
    )
}
