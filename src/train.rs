//! Full fine-tuning of a sequence head plus encoder (the study's Task 1.1): Adam, MSE on
//! standardised labels, batches of similar-length molecules, per-epoch validation, the best
//! validation epoch kept, test metrics in label units, and resumable per-epoch checkpoints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Reduction, Tensor};

use crate::data::{self, Dataset, Split, TableOptions};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::metrics::Regression;
use crate::model::{Config, Model, ModelMeta, ModelParts, Task};
use crate::optim::{Adam, AdamConfig};
use crate::predict;
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::tokenizer::{pad_batch, SmilesTokenizer};

/// Optimisation settings of a fine-tuning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinetuneConfig {
    /// Maximum epochs; the best validation epoch is kept.
    pub epochs: usize,
    /// Molecules per step (the study: 16).
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
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
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            epochs: 20,
            batch_size: 16,
            lr: 1e-4,
            weight_decay: 0.0,
            grad_clip: Some(1.0),
            patience: None,
            seed: 0,
            test_frac: 0.2,
            valid_frac: 0.1,
            eval_batch_size: 64,
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
pub struct FinetuneRun {
    /// The labelled table.
    pub data: PathBuf,
    /// How to read it.
    pub table: TableOptions,
    /// Starting weights.
    pub init: InitFrom,
    /// Optimisation.
    pub train: FinetuneConfig,
}

/// One epoch of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training MSE (standardised units).
    pub train_loss: f64,
    /// Validation MSE (standardised units).
    pub valid_loss: f64,
    /// Validation RMSE in label units.
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
    /// Wall time of the whole run.
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
    /// Last-epoch checkpoint folder.
    pub const CHECKPOINT: &str = "checkpoint";
    /// Loss curves.
    pub const LOSS_PNG: &str = "loss.png";
    /// Test-set predictions.
    pub const TEST_PREDICTIONS: &str = "test_predictions.csv";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    run: FinetuneRun,
    epochs_done: usize,
    best_epoch: usize,
    best_valid: f64,
    history: Vec<EpochRecord>,
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

/// Regression metrics of `model` on `rows` of `data`, in label units, with the predictions.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    batch_size: usize,
) -> Result<(Regression, Vec<f64>)> {
    let seqs: Vec<&[u32]> = rows
        .iter()
        .map(|&r| data.records[r].ids.as_slice())
        .collect();
    let pred = predict::predict(model, &seqs, batch_size)?;
    Ok((Regression::compute(&pred, &data.labels(rows)), pred))
}

/// Runs (or resumes, or returns the finished result of) a fine-tuning run in `out`.
pub fn finetune(
    run: &FinetuneRun,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<FinetuneReport> {
    let t0 = Instant::now();
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
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
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
    let data = load_data(run, &tokenizer)?;
    let split = Split::new(data.records.len(), cfg.seed, cfg.test_frac, cfg.valid_frac)?;
    if split.valid.is_empty() {
        return Err(Error::param(
            "valid_frac",
            "fine-tuning needs validation rows to choose the best epoch",
        ));
    }
    fsutil::write_json(&out.join(files::SPLIT), &split)?;
    let train_labels = data.labels(&split.train);
    let (mean, sd) = crate::metrics::mean_sd(&train_labels);
    let sd = if sd > 0.0 { sd } else { 1.0 };

    let mut model = build_model(&run.init, device, cfg.seed)?;
    model.meta = ModelMeta {
        task: Task::Regression,
        label_name: data.label_col.clone(),
        label_mean: mean,
        label_sd: sd,
        provenance: Some(format!(
            "lipo {} finetune of {}",
            crate::VERSION,
            run.data.display()
        )),
        ..ModelMeta::default()
    };
    model.set_trainable(|_| true);
    let mut opt = Adam::new(
        model.named_tensors(),
        AdamConfig {
            weight_decay: cfg.weight_decay,
            ..AdamConfig::adam()
        },
    );

    let ckpt_dir = out.join(files::CHECKPOINT);
    let model_dir = out.join(files::MODEL);
    let mut state = CheckpointState {
        run: run.clone(),
        epochs_done: 0,
        best_epoch: 0,
        best_valid: f64::INFINITY,
        history: vec![],
    };
    if ckpt_dir.join("state.json").is_file() {
        state = fsutil::read_json(&ckpt_dir.join("state.json"))?;
        let saved = Model::load(&ckpt_dir.join("model"), device)?;
        copy_weights(&saved, &model);
        let opt_state: HashMap<String, Tensor> =
            Tensor::read_safetensors(ckpt_dir.join("optimizer.safetensors"))?
                .into_iter()
                .map(|(n, t)| (n, t.to_device(device)))
                .collect();
        opt.load_state(&opt_state);
        monitor.event(&Event::Message {
            text: format!("resuming after epoch {}", state.epochs_done),
        });
    }

    let lengths: Vec<usize> = data.records.iter().map(|r| r.ids.len()).collect();
    let steps_per_epoch = split.train.len().div_ceil(cfg.batch_size) as u64;
    let total = steps_per_epoch * cfg.epochs as u64;
    monitor.event(&Event::Start {
        stage: "finetune".into(),
        total,
    });
    let mut step = steps_per_epoch * state.epochs_done as u64;
    let mut train_time = 0.0;
    let mut train_mols = 0usize;
    for epoch in state.epochs_done + 1..=cfg.epochs {
        tch::manual_seed((cfg.seed * 1_000_003 + epoch as u64) as i64);
        let mut rng = SplitMix64::derive(cfg.seed, &format!("finetune-epoch-{epoch}"));
        let batches = bucketed_batches(&split.train, &lengths, cfg.batch_size, &mut rng);
        let te = Instant::now();
        let mut loss_sum = 0.0;
        for rows in &batches {
            let seqs: Vec<&[u32]> = rows
                .iter()
                .map(|&r| data.records[r].ids.as_slice())
                .collect();
            let (ids, mask) = model.batch_tensors(&pad_batch(&seqs));
            let z: Vec<f32> = rows
                .iter()
                .map(|&r| ((data.records[r].label.unwrap() - mean) / sd) as f32)
                .collect();
            let target = Tensor::from_slice(&z).to_device(device);
            let pred = model.head_forward(&ids, &mask, true)?.squeeze_dim(-1);
            let loss = pred.mse_loss(&target, Reduction::Mean);
            opt.zero_grad();
            loss.backward();
            opt.clip_grad_norm(cfg.grad_clip);
            opt.step(cfg.lr);
            let l = loss.double_value(&[]);
            if !l.is_finite() {
                return Err(Error::Training(format!(
                    "loss became {l} at epoch {epoch}; try a lower --lr"
                )));
            }
            loss_sum += l * rows.len() as f64;
            step += 1;
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
        let (valid_m, _) = evaluate(&model, &data, &split.valid, cfg.eval_batch_size)?;
        let valid_loss = valid_m.mse / (sd * sd);
        state.history.push(EpochRecord {
            epoch,
            train_loss,
            valid_loss,
            valid_rmse: valid_m.rmse,
            train_seconds: secs,
        });
        if valid_loss < state.best_valid {
            state.best_valid = valid_loss;
            state.best_epoch = epoch;
            model.save(&model_dir)?;
        }
        state.epochs_done = epoch;
        write_checkpoint(&model, &opt, &state, &ckpt_dir)?;
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
    let (test, test_pred) = evaluate(&best, &data, &split.test, cfg.eval_batch_size)?;
    let (valid, _) = evaluate(&best, &data, &split.valid, cfg.eval_batch_size)?;
    let test_labels = data.labels(&split.test);
    let report = FinetuneReport {
        seed: cfg.seed,
        sizes: [split.train.len(), split.valid.len(), split.test.len()],
        best_epoch: state.best_epoch,
        history: state.history.clone(),
        test,
        valid,
        test_mean_predictor: Regression::compute(&vec![mean; test_labels.len()], &test_labels),
        train_mols_per_s: if train_time > 0.0 {
            train_mols as f64 / train_time
        } else {
            f64::NAN
        },
        wall_seconds: t0.elapsed().as_secs_f64(),
        device: crate::device::describe(device),
        trainable_parameters: opt.num_trainable(),
        parameters: model.num_parameters(),
        label_mean: mean,
        label_sd: sd,
    };
    write_predictions(
        &out.join(files::TEST_PREDICTIONS),
        &data,
        &split.test,
        &test_pred,
    )?;
    plot_history(&out.join(files::LOSS_PNG), &report.history)?;
    fsutil::write_json(&out.join(files::METRICS), &report)?;
    let _ = std::fs::remove_dir_all(&ckpt_dir);
    Ok(report)
}

fn copy_weights(from: &Model, to: &Model) {
    let src = from.vs.variables();
    tch::no_grad(|| {
        for (name, mut t) in to.vs.variables() {
            if let Some(s) = src.get(&name) {
                t.copy_(s);
            }
        }
    });
}

fn write_checkpoint(model: &Model, opt: &Adam, state: &CheckpointState, dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".lipo-ckpt")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    model.save(&tmp.path().join("model"))?;
    Tensor::write_safetensors(&opt.state(), tmp.path().join("optimizer.safetensors"))?;
    fsutil::write_json(&tmp.path().join("state.json"), state)?;
    fsutil::replace_dir(&tmp.keep(), dir)
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
        "MSE (standardised)",
        &series,
    )
}
