//! Before training: the checks of the settings, the run folder (claimed, or found finished),
//! the tokenizer, the model with its optimiser, and the schedule's length.

use std::path::Path;

use tch::Device;

use super::{files, MlmConfig, MlmReport, MlmRun};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{Model, ModelMeta, ModelParts, Task};
use crate::optim::{Adam, AdamConfig};
use crate::peft::LoadModel;
use crate::tokenizer::SmilesTokenizer;
use crate::train::InitFrom;

/// Refuses settings the run cannot use, naming the setting as run.json spells it.
pub(super) fn check_settings(cfg: &MlmConfig) -> Result<()> {
    if cfg.batch_size == 0 || cfg.epochs == 0 || cfg.chunk_size < cfg.batch_size {
        return Err(Error::param(
            "mlm",
            "batch size and epochs must be positive and chunk_size ≥ batch size",
        ));
    }
    if !(0.0..=1.0).contains(&cfg.augment) {
        return Err(Error::param(
            "augment",
            format!("{} is not a share between 0 and 1", cfg.augment),
        ));
    }
    if !(0.0 < cfg.mask_prob && cfg.mask_prob < 1.0) {
        return Err(Error::param(
            "mask_prob",
            format!("{} is not in (0, 1)", cfg.mask_prob),
        ));
    }
    Ok(())
}

/// Claims `out` for `run` and writes its run.json. Returns the report when `out` already
/// holds this run finished with its model; refuses a folder that holds another run.
pub(super) fn claim_run_folder(run: &MlmRun, out: &Path) -> Result<Option<MlmReport>> {
    fsutil::claim_dir(out, "run.json", "out")?;
    let run_path = out.join("run.json");
    if run_path.is_file() {
        let previous: MlmRun = fsutil::read_json(&run_path)?;
        if &previous != run {
            return Err(Error::param(
                "out",
                format!(
                    "{} holds a different MLM run (see its run.json)",
                    out.display()
                ),
            ));
        }
        // Finished, unless its model was not kept (e.g. a study carried to another machine
        // with only its runs' records): then it runs again.
        let model_kept = out
            .join(files::MODEL)
            .join(crate::model::files::CONFIG)
            .is_file();
        if out.join(files::METRICS).is_file() && model_kept {
            return fsutil::read_json(&out.join(files::METRICS)).map(Some);
        }
    }
    fsutil::write_json(&run_path, run)?;
    Ok(None)
}

/// The tokenizer of the starting model, or MoLFormer's for new weights.
pub(super) fn tokenizer(init: &InitFrom) -> Result<SmilesTokenizer> {
    match init {
        InitFrom::Model(dir) if dir.join(crate::model::files::TOKENIZER).is_file() => {
            SmilesTokenizer::load(&dir.join(crate::model::files::TOKENIZER))
        }
        _ => Ok(SmilesTokenizer::molformer()),
    }
}

/// The model to train (encoder + MLM head, every weight trainable) and its AdamW.
pub(super) fn model_and_optimizer(
    run: &MlmRun,
    tokenizer: SmilesTokenizer,
    device: Device,
) -> Result<(Model, Adam)> {
    let cfg = &run.mlm;
    let mut model = build_model(&run.init, tokenizer, device, cfg.seed)?;
    model.encoder.set_feature_redraw(cfg.redraw_features);
    model.meta.provenance = Some(format!(
        "lipo {} mlm on {}",
        crate::VERSION,
        run.corpus.display()
    ));
    model.set_trainable(|_| true);
    let opt = Adam::new(model.named_tensors(), AdamConfig::adamw(cfg.weight_decay));
    Ok((model, opt))
}

fn build_model(
    init: &InitFrom,
    tokenizer: SmilesTokenizer,
    device: Device,
    seed: u64,
) -> Result<Model> {
    let parts = ModelParts {
        lm_head: true,
        num_labels: None,
    };
    let meta = ModelMeta {
        task: Task::Encoder,
        ..ModelMeta::default()
    };
    match init {
        InitFrom::Random(c) => Model::new((**c).clone(), parts, meta, tokenizer, device, seed),
        InitFrom::Model(dir) => {
            let mut m = Model::load_with_parts(dir, device, Some(parts), seed)?;
            m.meta = meta;
            Ok(m)
        }
        InitFrom::Graph(_) => Err(crate::Error::param(
            "init",
            "masked-language modelling trains MoLFormer; a graph model has no tokens to mask",
        )),
    }
}

/// Steps of the run: `max_steps` when set, but never more than `epochs` passes.
pub(super) fn total_steps(cfg: &MlmConfig, train_molecules: u64) -> u64 {
    let steps_per_epoch = train_molecules.div_ceil(cfg.batch_size as u64);
    cfg.max_steps
        .unwrap_or(steps_per_epoch * cfg.epochs as u64)
        .min(steps_per_epoch * cfg.epochs as u64)
}
