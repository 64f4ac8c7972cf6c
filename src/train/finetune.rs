//! [`finetune`]: a run as a sequence of named steps — check the settings, claim (or reuse) the
//! run folder, load the inputs, build the model and optimiser (restored from a checkpoint when
//! an earlier call was interrupted), train epoch by epoch, then test and report.

use std::path::Path;
use std::time::Instant;

use tch::Device;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{Model, ModelMeta, ModelParts};
use crate::optim::{Adam, AdamConfig};
use crate::peft::{self, LoadModel, ParameterCounts};
use crate::progress::{Event, Monitor};
use crate::tokenizer::SmilesTokenizer;

use super::epochs::{restore_checkpoint, Learner, Training};
use super::inputs::Inputs;
use super::{files, report, FinetuneReport, FinetuneRun, InitFrom};

/// Runs (or resumes, or returns the finished result of) a fine-tuning run in `out`.
pub fn finetune(
    run: &FinetuneRun,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<FinetuneReport> {
    let t0 = Instant::now();
    let start_rss = crate::memory::current_rss();
    run.train.validate()?;
    if let Some(f) = &run.fold {
        f.validate()?;
    }
    if let Some(finished) = claim_run_dir(run, out, monitor)? {
        return Ok(finished);
    }
    if let InitFrom::Graph(config) = &run.init {
        return super::graph::finetune_graph(run, config, device, out, monitor);
    }
    let inputs = Inputs::load(run, out, monitor)?;
    let (learner, counts) = build_learner(run, out, &inputs, device, monitor)?;
    let mut training = Training::start(run, out, &inputs, learner, device, t0, monitor)?;
    training.run_epochs(monitor)?;
    report::finish(&training, device, counts, start_rss)
}

/// Claims `out` for `run` and writes its `run.json`; returns the report when `out` already
/// holds this run finished. A folder that holds a different run is refused.
fn claim_run_dir(
    run: &FinetuneRun,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<Option<FinetuneReport>> {
    fsutil::claim_dir(out, files::RUN, "out")?;
    let run_path = out.join(files::RUN);
    if run_path.is_file() {
        let previous: FinetuneRun = fsutil::read_json(&run_path)?;
        if &previous != run {
            return Err(Error::param(
                "out",
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
            return fsutil::read_json(&metrics).map(Some);
        }
    }
    fsutil::write_json(&run_path, run)?;
    Ok(None)
}

/// Builds the model and its Adam optimiser, restored from the run's checkpoint when an earlier
/// call left one; also returns the parameter counts by role.
fn build_learner(
    run: &FinetuneRun,
    out: &Path,
    inputs: &Inputs,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<(Learner, ParameterCounts)> {
    let (model, counts) = build_model(run, inputs, device, monitor)?;
    let mut opt = Adam::new(
        model.named_tensors(),
        AdamConfig {
            weight_decay: run.train.weight_decay,
            ..AdamConfig::adam()
        },
    );
    let state = restore_checkpoint(run, out, &model, &mut opt, device, monitor)?;
    Ok((Learner { model, opt, state }, counts))
}

/// The starting model with a one-output head, adapters it carries merged, the run's label
/// statistics in its metadata, and the parameters that train marked (the PEFT method's, or
/// all); says how many train.
fn build_model(
    run: &FinetuneRun,
    inputs: &Inputs,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<(Model, ParameterCounts)> {
    let cfg = &run.train;
    let mut model = init_model(&run.init, device, cfg.seed)?;
    // A starting model that carries adapters starts from its merged weights.
    peft::merge(&mut model)?;
    model.encoder.set_feature_redraw(cfg.redraw_features);
    model.meta = model_meta(run, inputs);
    model.tokenizer = inputs.tokenizer.clone();
    let counts = match (&cfg.peft, &cfg.train_params) {
        (Some(p), None) => peft::apply(&mut model, p, cfg.seed)?,
        (None, Some(set)) => {
            peft::select_params(&model, set)?;
            peft::parameter_counts(&model)
        }
        (None, None) => {
            model.set_trainable(|_| true);
            peft::parameter_counts(&model)
        }
        (Some(_), Some(_)) => {
            return Err(Error::param(
                "train_params",
                "a PEFT method already chooses what trains; give one of peft and train_params",
            ))
        }
    };
    let what = match (&cfg.peft, &cfg.train_params) {
        (Some(p), _) => p.name().to_string(),
        (None, Some(set)) => format!("partial fine-tuning ({set})"),
        (None, None) => "full fine-tuning".into(),
    };
    monitor.event(&Event::Message {
        text: format!("{what}: {counts}"),
    });
    Ok((model, counts))
}

/// New weights of the run's architecture, or the model folder it starts from, with a
/// one-output head.
fn init_model(init: &InitFrom, device: Device, seed: u64) -> Result<Model> {
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
        InitFrom::Graph(_) => unreachable!("graph runs train in train::graph"),
    }
}

/// What the trained model records about the run: task, label statistics, threshold,
/// test-time augmentation and provenance.
fn model_meta(run: &FinetuneRun, inputs: &Inputs) -> ModelMeta {
    let cfg = &run.train;
    let t = &inputs.targets;
    ModelMeta {
        task: cfg.task,
        label_name: inputs.data.label_col.clone(),
        label_mean: t.mean,
        label_sd: t.sd,
        threshold: t.threshold,
        tta: cfg.tta,
        canonical: cfg.canonical,
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
    }
}
