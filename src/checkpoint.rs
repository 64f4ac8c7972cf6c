//! Resumable training checkpoints shared by fine-tuning and MLM: a folder holding the model,
//! the optimiser's moments and the job's own JSON state, written atomically (a temporary
//! folder renamed over the old one), so an interruption never leaves a half-written
//! checkpoint.

use std::collections::HashMap;
use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};
use tch::{Device, Tensor};

use crate::error::Result;
use crate::fsutil;
use crate::model::Model;
use crate::optim::Adam;

const STATE: &str = "state.json";
const MODEL: &str = "model";
const OPTIMIZER: &str = "optimizer.safetensors";

/// Writes `model`, `opt` and `state` into `dir`, replacing any previous checkpoint.
pub fn write<S: Serialize>(model: &Model, opt: &Adam, state: &S, dir: &Path) -> Result<()> {
    let tmp = fsutil::staging_dir(dir, ".lipo-ckpt")?;
    model.save(&tmp.path().join(MODEL))?;
    Tensor::write_safetensors(&opt.state(), tmp.path().join(OPTIMIZER))?;
    fsutil::write_json(&tmp.path().join(STATE), state)?;
    fsutil::replace_dir(&tmp.keep(), dir)
}

/// Restores a checkpoint in `dir` into `model` and `opt` and returns its state, or `None`
/// when `dir` holds no checkpoint.
pub fn restore<S: DeserializeOwned>(
    dir: &Path,
    model: &Model,
    opt: &mut Adam,
    device: Device,
) -> Result<Option<S>> {
    if !dir.join(STATE).is_file() {
        return Ok(None);
    }
    let state = fsutil::read_json(&dir.join(STATE))?;
    let saved = Model::load(&dir.join(MODEL), device)?;
    let src = saved.vs.variables();
    tch::no_grad(|| {
        for (name, mut t) in model.vs.variables() {
            if let Some(s) = src.get(&name) {
                t.copy_(s);
            }
        }
    });
    let moments: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join(OPTIMIZER))?
        .into_iter()
        .map(|(n, t)| (n, t.to_device(device)))
        .collect();
    opt.load_state(&moments);
    Ok(Some(state))
}
