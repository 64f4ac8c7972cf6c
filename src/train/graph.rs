//! Fine-tuning of a graph model ([`InitFrom::Graph`]): the same run folder, split, targets,
//! log, checkpoints, early stopping and report as a MoLFormer run, with a D-MPNN
//! ([`crate::graph`]) over each molecule's graph instead of its tokens. The graph does not
//! depend on how a molecule is written, so SMILES augmentation and test-time augmentation do
//! not apply (and are refused).

use std::path::Path;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::graph::{featurize_smiles, GraphArrays, GraphBatch, GraphConfig, GraphModel, MolGraph};
use crate::metrics::{Classification, Regression};
use crate::model::{ModelMeta, Task};
use crate::optim::{Adam, AdamConfig};
use crate::peft::ParameterCounts;
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::trainlog::{EvalRecord, LogRecord, StepRecord, TrainLog};

use super::epochs::{batch_loss, end_of_epoch, CheckpointState, EpochRecord};
use super::evaluate::mean_loss;
use super::inputs::Inputs;
use super::report::{ClassificationReport, MemoryReport};
use super::{files, plot_history, write_predictions, FinetuneReport, FinetuneRun};

/// Refuses settings that mean nothing for a graph model, naming the setting.
fn refuse_sequence_settings(run: &FinetuneRun) -> Result<()> {
    let cfg = &run.train;
    let why = "does not apply to a graph model: its input is the molecule graph, which does not depend on how the SMILES is written";
    if cfg.augment > 0.0 {
        return Err(Error::param("augment", why));
    }
    if cfg.tta > 0 {
        return Err(Error::param("tta", why));
    }
    if cfg.peft.is_some() {
        return Err(Error::param(
            "peft",
            "BitFit, LoRA and IA3 adapt MoLFormer; a graph model trains all its weights",
        ));
    }
    if cfg.redraw_features {
        return Err(Error::param(
            "redraw_features",
            "is a MoLFormer attention setting; a graph model has no attention",
        ));
    }
    if cfg.train_params.is_some() {
        return Err(Error::param(
            "train_params",
            "names MoLFormer parameters; a graph model trains all its weights",
        ));
    }
    if cfg.step_seeds {
        return Err(Error::param(
            "step_seeds",
            "is not implemented for graph models (they draw one dropout stream per epoch)",
        ));
    }
    Ok(())
}

/// Runs (or resumes) the graph run `run` in `out`, already claimed by the caller.
pub(super) fn finetune_graph(
    run: &FinetuneRun,
    config: &GraphConfig,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<FinetuneReport> {
    let t0 = Instant::now();
    let start_rss = crate::memory::current_rss();
    refuse_sequence_settings(run)?;
    config.validate()?;
    let inputs = Inputs::load(run, out, monitor)?;
    let graphs = inputs
        .data
        .records
        .iter()
        .map(|r| featurize_smiles(&r.smiles))
        .collect::<Result<Vec<MolGraph>>>()?;
    let cfg = &run.train;
    let model = GraphModel::new(config.clone(), model_meta(run, &inputs), device, cfg.seed)?;
    let mut opt = Adam::new(
        model.named_tensors(),
        AdamConfig {
            weight_decay: cfg.weight_decay,
            ..AdamConfig::adam()
        },
    );
    let state = super::epochs::restore_checkpoint(run, out, &model, &mut opt, device, monitor)?;
    monitor.event(&Event::Message {
        text: format!(
            "graph model (D-MPNN, hidden {}, depth {}): {} parameters",
            config.hidden,
            config.depth,
            model.num_parameters()
        ),
    });
    let mut t = GraphTraining {
        run,
        out,
        inputs: &inputs,
        graphs: &graphs,
        log: TrainLog::open(&out.join(files::LOG), state.epochs_done)?,
        step: 0,
        total: 0,
        train_time: 0.0,
        train_mols: 0,
        t0,
        resumed_seconds: state.seconds_before,
        model,
        opt,
        state,
    };
    t.run_epochs(monitor)?;
    t.finish(device, start_rss)
}

/// What the trained model records about the run.
fn model_meta(run: &FinetuneRun, inputs: &Inputs) -> ModelMeta {
    let t = &inputs.targets;
    ModelMeta {
        task: run.train.task,
        label_name: inputs.data.label_col.clone(),
        label_mean: t.mean,
        label_sd: t.sd,
        threshold: t.threshold,
        provenance: Some(format!(
            "lipo {} finetune (graph) of {}",
            crate::VERSION,
            run.data.display()
        )),
        ..ModelMeta::default()
    }
}

/// A graph run in training.
struct GraphTraining<'a> {
    run: &'a FinetuneRun,
    out: &'a Path,
    inputs: &'a Inputs,
    /// The graph of every row of the table.
    graphs: &'a [MolGraph],
    log: TrainLog,
    /// Steps done, over all calls.
    step: u64,
    /// Steps of the whole run.
    total: u64,
    /// Seconds in training steps by this call.
    train_time: f64,
    /// Molecules trained on by this call.
    train_mols: usize,
    t0: Instant,
    /// Wall seconds of earlier, interrupted calls (up to their last checkpoint).
    resumed_seconds: f64,
    model: GraphModel,
    opt: Adam,
    state: CheckpointState,
}

impl GraphTraining<'_> {
    fn wall_seconds(&self) -> f64 {
        self.resumed_seconds + self.t0.elapsed().as_secs_f64()
    }

    fn run_epochs(&mut self, monitor: &mut dyn Monitor) -> Result<()> {
        let cfg = &self.run.train;
        let steps_per_epoch = self.inputs.split.train.len().div_ceil(cfg.batch_size) as u64;
        self.total = steps_per_epoch * cfg.epochs as u64;
        self.step = steps_per_epoch * self.state.epochs_done as u64;
        monitor.event(&Event::Start {
            stage: "finetune".into(),
            total: self.total,
        });
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
            if valid_loss < self.state.best_valid {
                self.state.best_valid = valid_loss;
                self.state.best_epoch = epoch;
                self.model.save(&self.out.join(files::MODEL))?;
            }
            self.state.epochs_done = epoch;
            self.state.seconds_before = self.wall_seconds();
            crate::checkpoint::write(
                &self.model,
                &self.opt,
                &self.state,
                &self.out.join(files::CHECKPOINT),
            )?;
            if !end_of_epoch(cfg, &self.state, train_loss, valid_loss, monitor)? {
                break;
            }
        }
        Ok(())
    }

    /// One epoch over the training rows in a fresh random order; mean loss and seconds.
    fn train_epoch(&mut self, epoch: usize, monitor: &mut dyn Monitor) -> Result<(f64, f64)> {
        let cfg = &self.run.train;
        tch::manual_seed((cfg.seed * 1_000_003 + epoch as u64) as i64);
        let mut rng = SplitMix64::derive(cfg.seed, &format!("finetune-epoch-{epoch}"));
        let mut order = self.inputs.split.train.clone();
        rng.shuffle(&mut order);
        let te = Instant::now();
        let mut loss_sum = 0.0;
        for rows in order.chunks(cfg.batch_size) {
            loss_sum += self.train_step(epoch, rows, monitor)? * rows.len() as f64;
        }
        let secs = te.elapsed().as_secs_f64();
        self.train_time += secs;
        self.train_mols += order.len();
        Ok((loss_sum / order.len().max(1) as f64, secs))
    }

    fn train_step(
        &mut self,
        epoch: usize,
        rows: &[usize],
        monitor: &mut dyn Monitor,
    ) -> Result<f64> {
        let cfg = &self.run.train;
        let ts = Instant::now();
        let device = self.model.device();
        let graphs: Vec<&MolGraph> = rows.iter().map(|&r| &self.graphs[r]).collect();
        let batch = GraphBatch::new(&GraphArrays::new(&graphs), device);
        let z: Vec<f32> = rows
            .iter()
            .map(|&r| self.inputs.targets.values[r] as f32)
            .collect();
        let target = Tensor::from_slice(&z).to_device(device);
        let pred = self.model.net.forward(&batch, true).squeeze_dim(-1);
        let loss = batch_loss(cfg.task, &pred, &target);
        self.opt.zero_grad();
        loss.backward();
        let grad_norm = self.opt.clip_grad_norm(cfg.grad_clip);
        let lr = cfg.schedule.rate(cfg.lr, self.step, self.total);
        self.opt.step(lr);
        let l = loss.to_kind(Kind::Double).double_value(&[]);
        if !l.is_finite() {
            return Err(Error::Training(format!(
                "loss became {l} at epoch {epoch}; try a lower lr"
            )));
        }
        self.step += 1;
        let secs = ts.elapsed().as_secs_f64();
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

    fn rows_graphs(&self, rows: &[usize]) -> Vec<&MolGraph> {
        rows.iter().map(|&r| &self.graphs[r]).collect()
    }

    fn validate(&mut self, epoch: usize, train_loss: f64) -> Result<(f64, f64)> {
        let cfg = &self.run.train;
        let valid = &self.inputs.split.valid;
        let tv = Instant::now();
        let raw = self
            .model
            .raw(&self.rows_graphs(valid), cfg.eval_batch_size);
        let eval_runtime = tv.elapsed().as_secs_f64().max(1e-9);
        let targets: Vec<f64> = valid
            .iter()
            .map(|&r| self.inputs.targets.values[r])
            .collect();
        let valid_loss = mean_loss(cfg.task, &raw, &targets);
        let pred: Vec<f64> = raw.iter().map(|&z| self.model.to_label_units(z)).collect();
        let truth = self.inputs.truth(valid, cfg.task == Task::Classification);
        let valid_rmse = Regression::compute(&pred, &truth).rmse;
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

    /// Scores the kept epoch's model, writes the test predictions, the loss plot and
    /// `metrics.json`, and removes the checkpoint.
    fn finish(&self, device: Device, start_rss: Option<u64>) -> Result<FinetuneReport> {
        let (run, out, inputs) = (self.run, self.out, self.inputs);
        let cfg = &run.train;
        let classify = cfg.task == Task::Classification;
        let best = GraphModel::load(&out.join(files::MODEL), device)?;
        let split = &inputs.split;
        let test_pred = best.predict(&self.rows_graphs(&split.test), cfg.eval_batch_size);
        let valid_pred = best.predict(&self.rows_graphs(&split.valid), cfg.eval_batch_size);
        let test_truth = inputs.truth(&split.test, classify);
        let valid_truth = inputs.truth(&split.valid, classify);
        let targets = &inputs.targets;
        let floor = if classify {
            targets.train_positive_share
        } else {
            targets.mean
        };
        let floor_pred = vec![floor; test_truth.len()];
        let classification = classify.then(|| ClassificationReport {
            threshold: targets.threshold,
            train_positive_share: targets.train_positive_share,
            test: Classification::compute(&test_pred, &test_truth),
            valid: Classification::compute(&valid_pred, &valid_truth),
            test_majority: Classification::compute(&floor_pred, &test_truth),
        });
        let parameters = best.num_parameters();
        let head: usize = best
            .named_tensors()
            .iter()
            .filter(|(n, _)| n.starts_with("ffn."))
            .map(|(_, t)| t.numel())
            .sum();
        let report = FinetuneReport {
            seed: cfg.seed,
            sizes: [split.train.len(), split.valid.len(), split.test.len()],
            best_epoch: self.state.best_epoch,
            history: self.state.history.clone(),
            test: Regression::compute(&test_pred, &test_truth),
            valid: Regression::compute(&valid_pred, &valid_truth),
            test_mean_predictor: Regression::compute(&floor_pred, &test_truth),
            train_mols_per_s: if self.train_time > 0.0 {
                self.train_mols as f64 / self.train_time
            } else {
                f64::NAN
            },
            wall_seconds: self.wall_seconds(),
            device: crate::device::describe(device),
            trainable_parameters: parameters,
            parameters,
            label_mean: targets.mean,
            label_sd: targets.sd,
            task: cfg.task,
            classification,
            parameter_counts: Some(ParameterCounts {
                total: parameters,
                trainable: parameters,
                adapter: 0,
                head,
            }),
            memory: Some(MemoryReport {
                start_rss_bytes: start_rss,
                peak_rss_bytes: crate::memory::peak_rss(),
                state_bytes: 4 * 4 * parameters as u64,
            }),
            peft: None,
            extra: inputs.extra.clone(),
        };
        write_predictions(
            &out.join(files::TEST_PREDICTIONS),
            &inputs.data,
            &split.test,
            &test_pred,
        )?;
        plot_history(&out.join(files::LOSS_PNG), &report.history)?;
        crate::fsutil::write_json(&out.join(files::METRICS), &report)?;
        crate::checkpoint::remove(&out.join(files::CHECKPOINT));
        Ok(report)
    }
}
