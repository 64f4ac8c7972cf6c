//! Fine-tuning of a sequence head plus encoder (the study's Task 1.1) or of adapters only
//! (Task 3, [`crate::peft`]): Adam, MSE on standardised labels (regression) or BCE on labels
//! binarised at a threshold (classification), batches of similar-length molecules, per-epoch
//! validation whose loss chooses the kept epoch, test metrics, a per-step JSONL log, and
//! resumable per-epoch checkpoints.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Reduction, Tensor};

use crate::data::{self, Dataset, Split, TableOptions};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::metrics::{Classification, Regression};
use crate::model::{Config, Model, ModelMeta, ModelParts, Task};
use crate::optim::{Adam, AdamConfig};
use crate::peft::{self, LoadModel, ParameterCounts, PeftConfig};
use crate::predict;
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::smiles::Molecule;
use crate::tokenizer::{pad_batch, SmilesTokenizer};
use crate::trainlog::{EvalRecord, LogRecord, StepRecord, TrainLog};

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
}

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
        }
    }

    /// Parses `constant`, `linear` or `cosine`.
    pub fn parse(s: &str) -> Option<LrSchedule> {
        match s {
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
                    Error::param(
                        "--binarize",
                        format!("{s:?} is not mean, median or a number"),
                    )
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

/// What happened to the rows of an [`ExtraTable`]; written to `extra.json` and the report.
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

/// One epoch of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss (MSE in standardised units, or BCE).
    pub train_loss: f64,
    /// Validation loss (the same function).
    pub valid_loss: f64,
    /// Validation RMSE in label units (classification: of probabilities against 0/1).
    pub valid_rmse: f64,
    /// Training seconds of the epoch (evaluation excluded).
    pub train_seconds: f64,
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
    /// Resident set size on entry to [`finetune`] (before data and model load), bytes.
    pub start_rss_bytes: Option<u64>,
    /// Peak resident set size of the process at the end of the run, bytes. In a process that
    /// ran nothing else before (as `lipo compare-peft` arranges) this is the run's peak.
    pub peak_rss_bytes: Option<u64>,
    /// Training state: parameters plus, for each trainable element, its gradient and two
    /// Adam moments (4 bytes each), bytes. Activations are not included.
    pub state_bytes: u64,
}

/// Files in a fine-tuning run folder.
pub mod files {
    /// The resolved run.
    pub const RUN: &str = "run.json";
    /// The split as row indices.
    pub const SPLIT: &str = "split.json";
    /// The report.
    pub const METRICS: &str = "metrics.json";
    /// Best-epoch model folder.
    pub const MODEL: &str = "model";
    /// Inside a run folder whose weights were not kept: the run trained again.
    pub const RETRAINED: &str = "retrained";
    /// Last-epoch checkpoint folder.
    pub const CHECKPOINT: &str = "checkpoint";
    /// Loss curves.
    pub const LOSS_PNG: &str = "loss.png";
    /// Per-step and per-evaluation log (JSON lines).
    pub const LOG: &str = "log.jsonl";
    /// Adapters on their own (PEFT runs), applicable to the `--init` model.
    pub const ADAPTER: &str = "adapter";
    /// Test-set predictions.
    pub const TEST_PREDICTIONS: &str = "test_predictions.csv";
    /// What happened to the extra training rows (runs with an extra table).
    pub const EXTRA: &str = "extra.json";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    run: FinetuneRun,
    epochs_done: usize,
    best_epoch: usize,
    best_valid: f64,
    history: Vec<EpochRecord>,
    /// Wall seconds of earlier calls, up to their last checkpoint.
    #[serde(default)]
    seconds_before: f64,
}

/// Groups `rows` into batches of `batch_size` molecules of similar length: rows are shuffled,
/// cut into windows of 50 batches, sorted by length within a window, and the batches shuffled.
pub fn bucketed_batches(
    rows: &[usize],
    lengths: &[usize],
    batch_size: usize,
    rng: &mut SplitMix64,
) -> Vec<Vec<usize>> {
    let mut rows = rows.to_vec();
    rng.shuffle(&mut rows);
    let mut batches = Vec::new();
    for window in rows.chunks(batch_size * 50) {
        let mut w = window.to_vec();
        w.sort_by_key(|&r| lengths[r]);
        batches.extend(w.chunks(batch_size).map(|c| c.to_vec()));
    }
    rng.shuffle(&mut batches);
    batches
}

/// Reads the run's table with the model's tokenizer.
pub fn load_data(run: &FinetuneRun, tokenizer: &SmilesTokenizer) -> Result<Dataset> {
    data::read_table(&run.data, tokenizer, &run.table, true)
}

fn tokenizer_of(init: &InitFrom) -> Result<SmilesTokenizer> {
    match init {
        InitFrom::Random(_) => Ok(SmilesTokenizer::molformer()),
        InitFrom::Model(dir) => {
            let p = dir.join(crate::model::files::TOKENIZER);
            if p.is_file() {
                SmilesTokenizer::load(&p)
            } else {
                Ok(SmilesTokenizer::molformer())
            }
        }
    }
}

fn build_model(init: &InitFrom, device: Device, seed: u64) -> Result<Model> {
    let parts = ModelParts {
        lm_head: false,
        num_labels: Some(1),
    };
    match init {
        InitFrom::Random(config) => Model::new(
            (**config).clone(),
            parts,
            ModelMeta::default(),
            SmilesTokenizer::molformer(),
            device,
            seed,
        ),
        InitFrom::Model(dir) => Model::load_with_parts(dir, device, Some(parts), seed),
    }
}

/// Predictions of `model` for `rows` of `data`, with the test-time augmentation the model
/// records.
fn predict_rows(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    batch_size: usize,
) -> Result<Vec<f64>> {
    if model.meta.tta > 0 {
        let smiles: Vec<&str> = rows
            .iter()
            .map(|&r| data.records[r].smiles.as_str())
            .collect();
        return predict::predict_smiles(model, &smiles, batch_size);
    }
    let seqs: Vec<&[u32]> = rows
        .iter()
        .map(|&r| data.records[r].ids.as_slice())
        .collect();
    predict::predict(model, &seqs, batch_size)
}

/// Regression metrics of `model` on `rows` of `data`, in label units, with the predictions.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    batch_size: usize,
) -> Result<(Regression, Vec<f64>)> {
    let pred = predict_rows(model, data, rows, batch_size)?;
    Ok((Regression::compute(&pred, &data.labels(rows)), pred))
}

/// Classification metrics of `model` (a classification model) on `rows` of `data`, whose
/// labels are binarised at the model's stored threshold (or must be 0/1 without one), with the
/// predicted probabilities.
pub fn evaluate_classification(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    batch_size: usize,
) -> Result<(Classification, Vec<f64>)> {
    let prob = predict_rows(model, data, rows, batch_size)?;
    let classes = classes_of(data, rows, model.meta.threshold)?;
    Ok((Classification::compute(&prob, &classes), prob))
}

/// 0/1 classes of `rows`: `label > threshold`, or the labels themselves when there is no
/// threshold (then they must be 0 or 1).
fn classes_of(data: &Dataset, rows: &[usize], threshold: Option<f64>) -> Result<Vec<f64>> {
    rows.iter()
        .map(|&r| {
            let rec = &data.records[r];
            let y = rec.label.expect("labelled table");
            match threshold {
                Some(t) => Ok(if y > t { 1.0 } else { 0.0 }),
                None if y == 0.0 || y == 1.0 => Ok(y),
                None => Err(Error::BadRow {
                    path: data.path.clone(),
                    line: rec.line,
                    reason: format!(
                        "label {y} is not 0 or 1; binarise numeric labels with --binarize mean|median|VALUE"
                    ),
                }),
            }
        })
        .collect()
}

/// Mean loss of raw head outputs against targets: MSE (regression, standardised units) or
/// binary cross-entropy with logits (classification).
fn mean_loss(task: Task, raw: &[f64], target: &[f64]) -> f64 {
    let n = raw.len().max(1) as f64;
    match task {
        Task::Classification => {
            raw.iter()
                .zip(target)
                .map(|(&z, &y)| z.max(0.0) - z * y + (-z.abs()).exp().ln_1p())
                .sum::<f64>()
                / n
        }
        _ => {
            raw.iter()
                .zip(target)
                .map(|(z, y)| (z - y) * (z - y))
                .sum::<f64>()
                / n
        }
    }
}

/// The report of `run` when `out` holds it finished (its run.json is `run` and its
/// metrics.json exists), whether or not its model was kept.
pub fn finished_record(run: &FinetuneRun, out: &Path) -> Result<Option<FinetuneReport>> {
    fsutil::finished_record(run, out, files::RUN, files::METRICS)
}

/// The test rows of the run in `run_dir` within `data`, after checking that `data` is the
/// table the run was trained on: the SMILES at the split's test rows must be those the run
/// recorded in its test predictions (or, for a run without them, the row count must fit).
/// Scoring another table's rows would give numbers about unrelated molecules.
pub fn test_rows_of(run_dir: &Path, data: &Dataset) -> Result<Vec<usize>> {
    let split: Split = fsutil::read_json(&run_dir.join(files::SPLIT))?;
    let differs = |reason: String| Error::BadFile {
        path: data.path.clone(),
        reason: format!(
            "{reason}: it is not the table the run in {} was trained on",
            run_dir.display()
        ),
    };
    if let Some(&bad) = split.test.iter().find(|&&r| r >= data.records.len()) {
        return Err(differs(format!("the split's row {bad} does not exist")));
    }
    let recorded = run_dir.join(files::TEST_PREDICTIONS);
    if recorded.is_file() {
        let mut rdr = csv::Reader::from_path(&recorded).map_err(|e| Error::BadFile {
            path: recorded.clone(),
            reason: e.to_string(),
        })?;
        let mut n = 0;
        for (row, rec) in split.test.iter().zip(rdr.records()) {
            let rec = rec.map_err(|e| Error::BadFile {
                path: recorded.clone(),
                reason: e.to_string(),
            })?;
            let theirs = rec.get(1).unwrap_or("");
            let ours = &data.records[*row];
            if ours.smiles != theirs {
                return Err(differs(format!(
                    "line {} holds {:?} where the run's test molecule was {theirs:?}",
                    ours.line, ours.smiles
                )));
            }
            n += 1;
        }
        if n != split.test.len() {
            return Err(Error::BadFile {
                path: recorded,
                reason: format!(
                    "{n} rows where the split has {} test rows",
                    split.test.len()
                ),
            });
        }
    }
    Ok(split.test)
}

/// The model folder of the finished run in `run_dir`. When its weights were not kept (a study
/// carried to another machine keeps only its runs' records), the run recorded in its
/// `run.json` is trained again into `run_dir/retrained` first; the flag says so. Retraining
/// repeats the same split, initialisation and data order; on another thread count the
/// numbers may differ in the last digits.
pub fn kept_or_retrained_model(
    run_dir: &Path,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<(PathBuf, bool)> {
    let kept = run_dir.join(files::MODEL);
    if kept.join(crate::model::files::CONFIG).is_file() {
        return Ok((kept, false));
    }
    let run: FinetuneRun = fsutil::read_json(&run_dir.join(files::RUN))?;
    let again = run_dir.join(files::RETRAINED);
    monitor.event(&Event::Message {
        text: format!(
            "{}: weights not kept; training the run again in {}",
            run_dir.display(),
            again.display()
        ),
    });
    finetune(&run, device, &again, monitor)?;
    Ok((again.join(files::MODEL), true))
}

/// Runs (or resumes, or returns the finished result of) a fine-tuning run in `out`.
pub fn finetune(
    run: &FinetuneRun,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<FinetuneReport> {
    let t0 = Instant::now();
    let start_rss = crate::memory::current_rss();
    let cfg = &run.train;
    if cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(Error::param("--batch-size/--epochs", "must be positive"));
    }
    if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(Error::param(
            "--lr",
            format!("{} is not a positive number", cfg.lr),
        ));
    }
    match (cfg.task, &cfg.binarize) {
        (Task::Encoder, _) => {
            return Err(Error::param(
                "--task",
                "fine-tuning trains a regression or classification head",
            ))
        }
        (Task::Regression, Some(_)) => {
            return Err(Error::param(
                "--binarize",
                "only applies to --task classification",
            ))
        }
        _ => {}
    }
    if !(0.0..=1.0).contains(&cfg.augment) {
        return Err(Error::param(
            "--augment",
            format!("{} is not a share between 0 and 1", cfg.augment),
        ));
    }
    if let Some(p) = &cfg.peft {
        p.validate()?;
    }
    fsutil::claim_dir(out, files::RUN, "out")?;
    let run_path = out.join(files::RUN);
    if run_path.is_file() {
        let previous: FinetuneRun = fsutil::read_json(&run_path)?;
        if &previous != run {
            return Err(Error::param(
                "--out",
                format!(
                    "{} holds a different run (see its run.json); choose another folder",
                    out.display()
                ),
            ));
        }
        let metrics = out.join(files::METRICS);
        if metrics.is_file() {
            monitor.event(&Event::Message {
                text: format!("{} is already finished; reusing it", out.display()),
            });
            return fsutil::read_json(&metrics);
        }
    }
    fsutil::write_json(&run_path, run)?;

    let tokenizer = tokenizer_of(&run.init)?;
    let mut data = load_data(run, &tokenizer)?;
    let mut split = Split::new(data.records.len(), cfg.seed, cfg.test_frac, cfg.valid_frac)?;
    if split.valid.is_empty() {
        return Err(Error::param(
            "valid_frac",
            "fine-tuning needs validation rows to choose the best epoch",
        ));
    }
    fsutil::write_json(&out.join(files::SPLIT), &split)?;
    let extra = match &run.extra {
        Some(x) => {
            let report = add_extra_rows(&mut data, &mut split, x, &tokenizer)?;
            fsutil::write_json(&out.join(files::EXTRA), &report)?;
            monitor.event(&Event::Message {
                text: format!(
                    "{} extra training rows from {} ({} dropped as duplicates of validation/test molecules)",
                    report.used,
                    x.path.display(),
                    report.dropped.len()
                ),
            });
            Some(report)
        }
        None => None,
    };
    let train_labels = data.labels(&split.train);
    let (mean, sd) = crate::metrics::mean_sd(&train_labels);
    let sd = if sd > 0.0 { sd } else { 1.0 };
    let classify = cfg.task == Task::Classification;
    let threshold = cfg.binarize.map(|b| b.threshold(&train_labels));
    // Training targets of every row: standardised labels, or 0/1 classes.
    let all_rows: Vec<usize> = (0..data.records.len()).collect();
    let targets: Vec<f64> = if classify {
        classes_of(&data, &all_rows, threshold)?
    } else {
        all_rows
            .iter()
            .map(|&r| (data.records[r].label.expect("labelled table") - mean) / sd)
            .collect()
    };
    let train_positive_share =
        split.train.iter().map(|&r| targets[r]).sum::<f64>() / split.train.len() as f64;
    if classify && (train_positive_share == 0.0 || train_positive_share == 1.0) {
        return Err(Error::BadFile {
            path: run.data.clone(),
            reason: format!(
                "the training rows hold one class only{}",
                threshold
                    .map(|t| format!(" at threshold {t}"))
                    .unwrap_or_default()
            ),
        });
    }

    let mut model = build_model(&run.init, device, cfg.seed)?;
    // A starting model that carries adapters starts from its merged weights.
    peft::merge(&mut model)?;
    model.encoder.set_feature_redraw(cfg.redraw_features);
    model.meta = ModelMeta {
        task: cfg.task,
        label_name: data.label_col.clone(),
        label_mean: mean,
        label_sd: sd,
        threshold,
        tta: cfg.tta,
        provenance: Some(format!(
            "lipo {} finetune of {}{}",
            crate::VERSION,
            run.data.display(),
            cfg.peft
                .as_ref()
                .map(|p| format!(" ({})", p.name()))
                .unwrap_or_default()
        )),
        ..ModelMeta::default()
    };
    let counts = match &cfg.peft {
        Some(p) => peft::apply(&mut model, p, cfg.seed)?,
        None => {
            model.set_trainable(|_| true);
            peft::parameter_counts(&model)
        }
    };
    monitor.event(&Event::Message {
        text: format!(
            "{}: {counts}",
            cfg.peft
                .as_ref()
                .map(|p| p.name())
                .unwrap_or("full fine-tuning")
        ),
    });
    let mut opt = Adam::new(
        model.named_tensors(),
        AdamConfig {
            weight_decay: cfg.weight_decay,
            ..AdamConfig::adam()
        },
    );

    let ckpt_dir = out.join(files::CHECKPOINT);
    let model_dir = out.join(files::MODEL);
    // Wall time of earlier, interrupted calls of this run (up to their last checkpoint).
    let mut resumed_seconds = 0.0;
    let mut state = CheckpointState {
        run: run.clone(),
        epochs_done: 0,
        best_epoch: 0,
        best_valid: f64::INFINITY,
        history: vec![],
        seconds_before: 0.0,
    };
    let mut say = |text: String| {
        monitor.event(&Event::Message { text });
    };
    let restored = crate::checkpoint::restore(&ckpt_dir, &model, &mut opt, device, &mut say)?;
    if let Some(saved) = restored {
        state = saved;
        resumed_seconds = state.seconds_before;
        monitor.event(&Event::Message {
            text: format!("resuming after epoch {}", state.epochs_done),
        });
    }
    let mut log = TrainLog::open(&out.join(files::LOG), state.epochs_done)?;

    // Training molecules the augmenter can rewrite (parsed once).
    let graphs: Vec<Option<Molecule>> = if cfg.augment > 0.0 {
        let g: Vec<Option<Molecule>> = split
            .train
            .iter()
            .map(|&r| crate::augment::rewritable(&data.records[r].smiles))
            .collect();
        let kept = g.iter().filter(|g| g.is_none()).count();
        monitor.event(&Event::Message {
            text: format!(
                "SMILES augmentation on {:.0} % of training molecules per epoch ({kept} of {} cannot be rewritten and stay as given)",
                100.0 * cfg.augment,
                g.len()
            ),
        });
        g
    } else {
        vec![]
    };
    let steps_per_epoch = split.train.len().div_ceil(cfg.batch_size) as u64;
    let total = steps_per_epoch * cfg.epochs as u64;
    monitor.event(&Event::Start {
        stage: "finetune".into(),
        total,
    });
    let mut step = steps_per_epoch * state.epochs_done as u64;
    let mut train_time = 0.0;
    let mut train_mols = 0usize;
    let valid_seqs: Vec<&[u32]> = split
        .valid
        .iter()
        .map(|&r| data.records[r].ids.as_slice())
        .collect();
    let valid_targets: Vec<f64> = split.valid.iter().map(|&r| targets[r]).collect();
    // Raw outputs on `rows`, averaged over random SMILES with test-time augmentation.
    let eval_raw = |m: &Model, rows: &[usize], seqs: &[&[u32]]| -> Result<Vec<f64>> {
        if cfg.tta > 0 {
            let smiles: Vec<&str> = rows
                .iter()
                .map(|&r| data.records[r].smiles.as_str())
                .collect();
            predict::raw_outputs_tta(m, &smiles, cfg.tta, cfg.eval_batch_size)
        } else {
            predict::raw_outputs(m, seqs, cfg.eval_batch_size)
        }
    };
    for epoch in state.epochs_done + 1..=cfg.epochs {
        tch::manual_seed((cfg.seed * 1_000_003 + epoch as u64) as i64);
        let mut rng = SplitMix64::derive(cfg.seed, &format!("finetune-epoch-{epoch}"));
        let epoch_ids = augmented_ids(&data, &split.train, &graphs, cfg, epoch, &tokenizer);
        let lengths: Vec<usize> = epoch_ids.iter().map(|ids| ids.len()).collect();
        let batches = bucketed_batches(&split.train, &lengths, cfg.batch_size, &mut rng);
        let te = Instant::now();
        let mut loss_sum = 0.0;
        for rows in &batches {
            let ts = Instant::now();
            let seqs: Vec<&[u32]> = rows.iter().map(|&r| epoch_ids[r].as_slice()).collect();
            let (ids, mask) = model.batch_tensors(&pad_batch(&seqs));
            let z: Vec<f32> = rows.iter().map(|&r| targets[r] as f32).collect();
            let target = Tensor::from_slice(&z).to_device(device);
            let pred = model.head_forward(&ids, &mask, true)?.squeeze_dim(-1);
            let loss = if classify {
                pred.binary_cross_entropy_with_logits::<Tensor>(
                    &target,
                    None,
                    None,
                    Reduction::Mean,
                )
            } else {
                pred.mse_loss(&target, Reduction::Mean)
            };
            opt.zero_grad();
            loss.backward();
            let grad_norm = opt.clip_grad_norm(cfg.grad_clip);
            let lr = cfg.schedule.rate(cfg.lr, step, total);
            opt.step(lr);
            let l = loss.double_value(&[]);
            if !l.is_finite() {
                return Err(Error::Training(format!(
                    "loss became {l} at epoch {epoch}; try a lower --lr"
                )));
            }
            loss_sum += l * rows.len() as f64;
            step += 1;
            let secs = ts.elapsed().as_secs_f64();
            log.write(&LogRecord::Step(StepRecord {
                epoch,
                step,
                train_loss: l,
                grad_norm,
                lr,
                step_seconds: secs,
                steps_per_s: 1.0 / secs.max(1e-9),
            }))?;
            if !monitor.event(&Event::Step {
                step,
                total,
                loss: l,
            }) {
                return Err(Error::Cancelled(format!(
                    "fine-tuning stopped in epoch {epoch}; {} epochs are checkpointed in {} — run the same command to resume",
                    state.epochs_done,
                    out.display()
                )));
            }
        }
        let secs = te.elapsed().as_secs_f64();
        train_time += secs;
        train_mols += split.train.len();
        let train_loss = loss_sum / split.train.len() as f64;
        let tv = Instant::now();
        let raw = eval_raw(&model, &split.valid, &valid_seqs)?;
        let eval_runtime = tv.elapsed().as_secs_f64().max(1e-9);
        let valid_loss = mean_loss(cfg.task, &raw, &valid_targets);
        let valid_pred: Vec<f64> = raw
            .iter()
            .map(|&z| predict::to_label_units(&model, z))
            .collect();
        let valid_truth = if classify {
            valid_targets.clone()
        } else {
            data.labels(&split.valid)
        };
        let valid_rmse = Regression::compute(&valid_pred, &valid_truth).rmse;
        log.write(&LogRecord::Eval(EvalRecord {
            epoch,
            step,
            train_loss,
            eval_loss: valid_loss,
            eval_runtime_s: eval_runtime,
            eval_steps_per_s: split.valid.len().div_ceil(cfg.eval_batch_size) as f64 / eval_runtime,
            eval_samples_per_s: split.valid.len() as f64 / eval_runtime,
        }))?;
        log.flush()?;
        state.history.push(EpochRecord {
            epoch,
            train_loss,
            valid_loss,
            valid_rmse,
            train_seconds: secs,
        });
        if valid_loss < state.best_valid {
            state.best_valid = valid_loss;
            state.best_epoch = epoch;
            model.save(&model_dir)?;
        }
        state.epochs_done = epoch;
        state.seconds_before = resumed_seconds + t0.elapsed().as_secs_f64();
        crate::checkpoint::write(&model, &opt, &state, &ckpt_dir)?;
        let go_on = monitor.event(&Event::Epoch {
            epoch,
            train_loss,
            valid_loss,
        });
        if !go_on {
            return Err(Error::Cancelled(format!(
                "fine-tuning stopped after epoch {epoch}; run the same command to resume"
            )));
        }
        if let Some(p) = cfg.patience {
            if epoch - state.best_epoch >= p {
                monitor.event(&Event::Message {
                    text: format!("early stop: no better validation loss for {p} epochs"),
                });
                break;
            }
        }
    }

    let best = Model::load(&model_dir, device)?;
    let test_truth: Vec<f64> = if classify {
        split.test.iter().map(|&r| targets[r]).collect()
    } else {
        data.labels(&split.test)
    };
    let valid_truth: Vec<f64> = if classify {
        valid_targets.clone()
    } else {
        data.labels(&split.valid)
    };
    let test_seqs: Vec<&[u32]> = split
        .test
        .iter()
        .map(|&r| data.records[r].ids.as_slice())
        .collect();
    let in_label_units = |raw: Vec<f64>| -> Vec<f64> {
        raw.into_iter()
            .map(|z| predict::to_label_units(&best, z))
            .collect()
    };
    let test_pred = in_label_units(eval_raw(&best, &split.test, &test_seqs)?);
    let valid_pred = in_label_units(eval_raw(&best, &split.valid, &valid_seqs)?);
    let floor = if classify { train_positive_share } else { mean };
    let floor_pred = vec![floor; test_truth.len()];
    let classification = classify.then(|| ClassificationReport {
        threshold,
        train_positive_share,
        test: Classification::compute(&test_pred, &test_truth),
        valid: Classification::compute(&valid_pred, &valid_truth),
        test_majority: Classification::compute(&floor_pred, &test_truth),
    });
    let trainable = opt.num_trainable();
    let parameters = model.num_parameters();
    let report = FinetuneReport {
        seed: cfg.seed,
        sizes: [split.train.len(), split.valid.len(), split.test.len()],
        best_epoch: state.best_epoch,
        history: state.history.clone(),
        test: Regression::compute(&test_pred, &test_truth),
        valid: Regression::compute(&valid_pred, &valid_truth),
        test_mean_predictor: Regression::compute(&floor_pred, &test_truth),
        train_mols_per_s: if train_time > 0.0 {
            train_mols as f64 / train_time
        } else {
            f64::NAN
        },
        wall_seconds: resumed_seconds + t0.elapsed().as_secs_f64(),
        device: crate::device::describe(device),
        trainable_parameters: trainable,
        parameters,
        label_mean: mean,
        label_sd: sd,
        task: cfg.task,
        classification,
        parameter_counts: Some(counts),
        memory: Some(MemoryReport {
            start_rss_bytes: start_rss,
            peak_rss_bytes: crate::memory::peak_rss(),
            state_bytes: 4 * (parameters as u64 + 3 * trainable as u64),
        }),
        peft: cfg.peft.clone(),
        extra,
    };
    if cfg.peft.is_some() {
        let base = match &run.init {
            InitFrom::Model(dir) => Some(dir.as_path()),
            InitFrom::Random(_) => None,
        };
        peft::save_adapter(&best, &out.join(files::ADAPTER), base)?;
    }
    write_predictions(
        &out.join(files::TEST_PREDICTIONS),
        &data,
        &split.test,
        &test_pred,
    )?;
    plot_history(&out.join(files::LOSS_PNG), &report.history)?;
    fsutil::write_json(&out.join(files::METRICS), &report)?;
    crate::checkpoint::remove(&ckpt_dir);
    Ok(report)
}

/// The token ids every row trains on in `epoch`: the SMILES as given, except that with
/// `cfg.augment > 0` that share of the training rows (`train`, parsed in `graphs`) is a
/// random SMILES of the same molecule, drawn from a stream of the seed and the epoch so that
/// a resumed run sees the same molecules.
fn augmented_ids(
    data: &Dataset,
    train: &[usize],
    graphs: &[Option<Molecule>],
    cfg: &FinetuneConfig,
    epoch: usize,
    tokenizer: &SmilesTokenizer,
) -> Vec<Vec<u32>> {
    let mut ids: Vec<Vec<u32>> = data.records.iter().map(|r| r.ids.clone()).collect();
    if cfg.augment == 0.0 {
        return ids;
    }
    let mut rng = SplitMix64::derive(cfg.seed, &format!("augment-epoch-{epoch}"));
    for (&row, graph) in train.iter().zip(graphs) {
        let Some(graph) = graph else { continue };
        if rng.next_f64() >= cfg.augment {
            continue;
        }
        // A variant the writer declines, or with a token outside the vocabulary, keeps the
        // SMILES as given.
        let Some(variant) = graph.random_smiles(&mut rng) else {
            continue;
        };
        if let Ok(v) = tokenizer.encode(&variant) {
            if !v.contains(&tokenizer.unk_id()) {
                ids[row] = v;
            }
        }
    }
    ids
}

/// Appends the rows of `extra` to `data` and to `split.train` (never to validation or test),
/// dropping rows that duplicate a validation or test molecule of `data` (exact string,
/// stereo-stripped string or molecular-graph key, as [`crate::selection::find_duplicates`]).
pub fn add_extra_rows(
    data: &mut Dataset,
    split: &mut Split,
    extra: &ExtraTable,
    tokenizer: &SmilesTokenizer,
) -> Result<ExtraReport> {
    let table = data::read_table(&extra.path, tokenizer, &extra.table, true)?;
    let dups = crate::selection::find_duplicates(data, split, &table);
    let mut dropped = Vec::new();
    let rows = table.records.len();
    for (rec, dup) in table.records.into_iter().zip(dups) {
        match dup {
            Some(d) if d.split != "train" => dropped.push(d),
            _ => {
                split.train.push(data.records.len());
                data.records.push(rec);
            }
        }
    }
    Ok(ExtraReport {
        path: extra.path.clone(),
        rows,
        used: rows - dropped.len(),
        dropped,
    })
}

/// Writes `smiles,label,prediction` for `rows`.
pub fn write_predictions(path: &Path, data: &Dataset, rows: &[usize], pred: &[f64]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    w.write_record(["line", "smiles", "label", "prediction"])
        .map_err(io)?;
    for (&r, p) in rows.iter().zip(pred) {
        let rec = &data.records[r];
        let label = rec.label.map(|l| l.to_string()).unwrap_or_default();
        w.write_record([
            rec.line.to_string(),
            rec.smiles.clone(),
            label,
            format!("{p:.6}"),
        ])
        .map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    fsutil::write_atomic(path, &bytes)
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
