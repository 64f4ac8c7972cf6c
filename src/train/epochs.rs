//! The epoch loop of a run: each epoch trains on bucketed (and optionally augmented) batches,
//! validates, keeps the best epoch's model, writes a checkpoint, and stops early on patience
//! or when the monitor cancels.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Reduction, Tensor};

use crate::error::{Error, Result};
use crate::metrics::Regression;
use crate::model::{Model, Task};
use crate::optim::Adam;
use crate::predict;
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::smiles::Molecule;
use crate::threads::{padded_tokens, Governor};
use crate::tokenizer::pad_batch;
use crate::trainlog::{EvalRecord, LogRecord, StepRecord, TrainLog};

use super::batches::{augmented_ids, bucketed_batches, rewritable_graphs};
use super::evaluate::{mean_loss, raw_outputs};
use super::inputs::Inputs;
use super::{files, FinetuneRun};

/// The dropout seed of batch `index` of `epoch` under `step_seeds`.
fn step_seed(seed: u64, epoch: usize, index: usize) -> i64 {
    let mut rng = SplitMix64::derive(seed, &format!("finetune-step-{epoch}-{index}"));
    (rng.next_u64() >> 1) as i64
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

/// Progress of a run, written with each checkpoint and read back to resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CheckpointState {
    pub run: FinetuneRun,
    pub epochs_done: usize,
    pub best_epoch: usize,
    pub best_valid: f64,
    pub history: Vec<EpochRecord>,
    /// Wall seconds of earlier calls, up to their last checkpoint.
    #[serde(default)]
    pub seconds_before: f64,
}

/// The model being trained, its optimiser, and the run's progress so far.
pub(super) struct Learner {
    pub model: Model,
    pub opt: Adam,
    pub state: CheckpointState,
}

/// A run in training: its inputs, model, optimiser, progress, log and clocks.
pub(super) struct Training<'a> {
    pub run: &'a FinetuneRun,
    pub out: &'a Path,
    pub inputs: &'a Inputs,
    pub model: Model,
    pub opt: Adam,
    pub state: CheckpointState,
    /// Seconds spent in training steps by this call (evaluation excluded).
    pub train_time: f64,
    /// Molecules trained on by this call.
    pub train_mols: usize,
    device: Device,
    log: TrainLog,
    /// Training molecules the augmenter can rewrite (parsed once; empty without augmentation).
    graphs: Vec<Option<Molecule>>,
    /// Start of this call.
    t0: Instant,
    /// Wall time of earlier, interrupted calls of this run (up to their last checkpoint).
    resumed_seconds: f64,
    /// Steps done, over all calls.
    step: u64,
    /// Steps of the whole run (`epochs` of them, even when patience stops it earlier).
    total: u64,
    /// Token ids of the validation rows.
    valid_seqs: Vec<&'a [u32]>,
    /// Chooses the CPU thread count from the steps' throughput.
    governor: Governor,
    /// Training targets of the validation rows.
    valid_targets: Vec<f64>,
}

impl<'a> Training<'a> {
    /// Opens the run's log (kept up to the restored epoch), parses the molecules augmentation
    /// rewrites, and announces the run's steps.
    pub fn start(
        run: &'a FinetuneRun,
        out: &'a Path,
        inputs: &'a Inputs,
        learner: Learner,
        device: Device,
        t0: Instant,
        monitor: &mut dyn Monitor,
    ) -> Result<Training<'a>> {
        let cfg = &run.train;
        let Learner { model, opt, state } = learner;
        let log = TrainLog::open(&out.join(files::LOG), state.epochs_done)?;
        let order = &inputs.batch_order;
        let graphs = rewritable_graphs(&inputs.data, order, cfg, monitor);
        let steps_per_epoch = order.len().div_ceil(cfg.batch_size) as u64;
        let total = steps_per_epoch * cfg.epochs as u64;
        monitor.event(&Event::Start {
            stage: "finetune".into(),
            total,
        });
        let valid = &inputs.split.valid;
        Ok(Training {
            run,
            out,
            inputs,
            model,
            opt,
            train_time: 0.0,
            train_mols: 0,
            device,
            log,
            graphs,
            t0,
            resumed_seconds: state.seconds_before,
            step: steps_per_epoch * state.epochs_done as u64,
            total,
            valid_seqs: inputs.seqs(valid),
            governor: Governor::new(device.is_cuda()),
            valid_targets: valid.iter().map(|&r| inputs.targets.values[r]).collect(),
            state,
        })
    }

    /// Wall seconds of the whole run so far, earlier interrupted calls included.
    pub fn wall_seconds(&self) -> f64 {
        self.resumed_seconds + self.t0.elapsed().as_secs_f64()
    }

    /// Trains the epochs not done yet, until the last one or an early stop.
    pub fn run_epochs(&mut self, monitor: &mut dyn Monitor) -> Result<()> {
        let run = self.run;
        let cfg = &run.train;
        for epoch in self.state.epochs_done + 1..=cfg.epochs {
            let (train_loss, train_seconds) = self.train_epoch(epoch, monitor)?;
            let (valid_loss, valid_rmse) = self.validate(epoch, train_loss)?;
            self.state.history.push(EpochRecord {
                epoch,
                train_loss,
                valid_loss,
                valid_rmse,
                train_seconds,
            });
            self.checkpoint(epoch, valid_loss)?;
            if !end_of_epoch(cfg, &self.state, train_loss, valid_loss, monitor)? {
                break;
            }
        }
        Ok(())
    }

    /// Trains one epoch; returns its mean training loss and its training seconds.
    fn train_epoch(&mut self, epoch: usize, monitor: &mut dyn Monitor) -> Result<(f64, f64)> {
        let (run, inputs) = (self.run, self.inputs);
        let cfg = &run.train;
        let order = &inputs.batch_order;
        tch::manual_seed((cfg.seed * 1_000_003 + epoch as u64) as i64);
        let mut rng = SplitMix64::derive(cfg.seed, &format!("finetune-epoch-{epoch}"));
        let epoch_ids = augmented_ids(
            &inputs.data,
            order,
            &self.graphs,
            cfg,
            epoch,
            &inputs.tokenizer,
        );
        let lengths: Vec<usize> = epoch_ids.iter().map(|ids| ids.len()).collect();
        let mut batches = bucketed_batches(order, &lengths, cfg.batch_size, &mut rng);
        if order.len() != inputs.split.train.len() {
            let left_out: std::collections::HashSet<usize> =
                cfg.exclude_rows.iter().copied().collect();
            for b in &mut batches {
                b.retain(|r| !left_out.contains(r));
            }
        }
        let te = Instant::now();
        let mut loss_sum = 0.0;
        let mut mols = 0;
        for (i, rows) in batches.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            if cfg.step_seeds {
                tch::manual_seed(step_seed(cfg.seed, epoch, i));
            }
            let l = self.train_step(epoch, rows, &epoch_ids, monitor)?;
            loss_sum += l * rows.len() as f64;
            mols += rows.len();
        }
        let secs = te.elapsed().as_secs_f64();
        self.train_time += secs;
        self.train_mols += mols;
        Ok((loss_sum / mols.max(1) as f64, secs))
    }

    /// One optimiser step on the batch `rows` (token ids from `epoch_ids`), logged; returns its
    /// loss.
    fn train_step(
        &mut self,
        epoch: usize,
        rows: &[usize],
        epoch_ids: &[Vec<u32>],
        monitor: &mut dyn Monitor,
    ) -> Result<f64> {
        let run = self.run;
        let cfg = &run.train;
        let ts = Instant::now();
        let seqs: Vec<&[u32]> = rows.iter().map(|&r| epoch_ids[r].as_slice()).collect();
        let (ids, mask) = self.model.batch_tensors(&pad_batch(&seqs));
        let targets = &self.inputs.targets.values;
        let z: Vec<f32> = rows.iter().map(|&r| targets[r] as f32).collect();
        let target = Tensor::from_slice(&z).to_device(self.device);
        let pred = self.model.head_forward(&ids, &mask, true)?.squeeze_dim(-1);
        let loss = batch_loss(cfg.task, &pred, &target);
        self.opt.zero_grad();
        loss.backward();
        let grad_norm = self.opt.clip_grad_norm(cfg.grad_clip);
        let lr = cfg.schedule.rate(cfg.lr, self.step, self.total);
        self.opt.step(lr);
        let l = loss.double_value(&[]);
        if !l.is_finite() {
            return Err(Error::Training(format!(
                "loss became {l} at epoch {epoch}; try a lower lr"
            )));
        }
        self.step += 1;
        let secs = ts.elapsed().as_secs_f64();
        self.governor.record(padded_tokens(&seqs), secs);
        self.log.write(&LogRecord::Step(StepRecord {
            epoch,
            step: self.step,
            train_loss: l,
            grad_norm,
            lr,
            step_seconds: secs,
            steps_per_s: 1.0 / secs.max(1e-9),
        }))?;
        let go_on = monitor.event(&Event::Step {
            step: self.step,
            total: self.total,
            loss: l,
        });
        if !go_on {
            return Err(Error::Cancelled(format!(
                "fine-tuning stopped in epoch {epoch}; {} epochs are checkpointed in {} — run the same command to resume",
                self.state.epochs_done,
                self.out.display()
            )));
        }
        Ok(l)
    }

    /// Validates the model after `epoch` (logged with the epoch's `train_loss`); returns the
    /// validation loss and RMSE in label units.
    fn validate(&mut self, epoch: usize, train_loss: f64) -> Result<(f64, f64)> {
        let (run, inputs) = (self.run, self.inputs);
        let cfg = &run.train;
        let valid = &inputs.split.valid;
        let tv = Instant::now();
        let raw = raw_outputs(&self.model, &inputs.data, valid, &self.valid_seqs, cfg)?;
        let eval_runtime = tv.elapsed().as_secs_f64().max(1e-9);
        let valid_loss = mean_loss(cfg.task, &raw, &self.valid_targets);
        let valid_pred: Vec<f64> = raw
            .iter()
            .map(|&z| predict::to_label_units(&self.model, z))
            .collect();
        let valid_truth = inputs.truth(valid, cfg.task == Task::Classification);
        let valid_rmse = Regression::compute(&valid_pred, &valid_truth).rmse;
        self.log.write(&LogRecord::Eval(EvalRecord {
            epoch,
            step: self.step,
            train_loss,
            eval_loss: valid_loss,
            eval_runtime_s: eval_runtime,
            eval_steps_per_s: valid.len().div_ceil(cfg.eval_batch_size) as f64 / eval_runtime,
            eval_samples_per_s: valid.len() as f64 / eval_runtime,
        }))?;
        self.log.flush()?;
        Ok((valid_loss, valid_rmse))
    }

    /// Saves the model when `epoch` has the best validation loss so far, then checkpoints the
    /// run after `epoch`.
    fn checkpoint(&mut self, epoch: usize, valid_loss: f64) -> Result<()> {
        if valid_loss < self.state.best_valid {
            self.state.best_valid = valid_loss;
            self.state.best_epoch = epoch;
            self.model.save(&self.out.join(files::MODEL))?;
        }
        if self.run.train.keep_epochs {
            let dir = self.out.join(files::EPOCHS).join(format!("epoch-{epoch}"));
            self.model.save(&dir)?;
        }
        self.state.epochs_done = epoch;
        self.state.seconds_before = self.wall_seconds();
        let ckpt_dir = self.out.join(files::CHECKPOINT);
        crate::checkpoint::write(&self.model, &self.opt, &self.state, &ckpt_dir)
    }
}

/// The run's progress: restored with the weights and optimiser state from the checkpoint in
/// `out` when there is a usable one, else a fresh start.
pub(super) fn restore_checkpoint<M: crate::checkpoint::Checkpointed>(
    run: &FinetuneRun,
    out: &Path,
    model: &M,
    opt: &mut Adam,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<CheckpointState> {
    let fresh = CheckpointState {
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
    let ckpt_dir = out.join(files::CHECKPOINT);
    let restored = crate::checkpoint::restore(&ckpt_dir, model, opt, device, &mut say)?;
    match restored {
        Some(saved) => {
            let saved: CheckpointState = saved;
            monitor.event(&Event::Message {
                text: format!("resuming after epoch {}", saved.epochs_done),
            });
            Ok(saved)
        }
        None => Ok(fresh),
    }
}

/// After an epoch is checkpointed: tells the monitor, stops with `Cancelled` when it
/// cancels, and returns false when patience says to stop early.
pub(super) fn end_of_epoch(
    cfg: &super::FinetuneConfig,
    state: &CheckpointState,
    train_loss: f64,
    valid_loss: f64,
    monitor: &mut dyn Monitor,
) -> Result<bool> {
    let epoch = state.epochs_done;
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
            return Ok(false);
        }
    }
    Ok(true)
}

/// Mean loss of a batch's head outputs: BCE with logits (classification) or MSE on
/// standardised labels.
pub(super) fn batch_loss(task: Task, pred: &Tensor, target: &Tensor) -> Tensor {
    if task == Task::Classification {
        pred.binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::Mean)
    } else {
        pred.mse_loss(target, Reduction::Mean)
    }
}
