//! Resumable training checkpoints shared by fine-tuning and MLM: a folder holding the model,
//! the optimiser's moments and the job's own JSON state, written atomically (a temporary
//! folder renamed over the old one), so an interruption never leaves a half-written
//! checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};
use tch::{Device, Tensor};

use crate::error::Result;
use crate::fsutil;
use crate::graph::GraphModel;
use crate::model::Model;
use crate::optim::Adam;
use crate::peft::LoadModel;

/// What a checkpoint keeps of a model: its folder, and its tensors by name to restore.
pub(crate) trait Checkpointed {
    /// Writes the model folder `dir`.
    fn save_folder(&self, dir: &Path) -> Result<()>;
    /// The model's tensors by name, to copy saved values into.
    fn variables(&self) -> HashMap<String, Tensor>;
    /// The tensors of the model folder `dir`, by name.
    fn saved_variables(dir: &Path, device: Device) -> Result<HashMap<String, Tensor>>;
}

impl Checkpointed for Model {
    fn save_folder(&self, dir: &Path) -> Result<()> {
        self.save(dir)
    }
    fn variables(&self) -> HashMap<String, Tensor> {
        self.vs.variables()
    }
    fn saved_variables(dir: &Path, device: Device) -> Result<HashMap<String, Tensor>> {
        Ok(Model::load(dir, device)?.vs.variables())
    }
}

impl Checkpointed for GraphModel {
    fn save_folder(&self, dir: &Path) -> Result<()> {
        self.save(dir)
    }
    fn variables(&self) -> HashMap<String, Tensor> {
        self.vs.variables()
    }
    fn saved_variables(dir: &Path, device: Device) -> Result<HashMap<String, Tensor>> {
        Ok(GraphModel::load(dir, device)?.vs.variables())
    }
}

const STATE: &str = "state.json";
const MODEL: &str = "model";
const OPTIMIZER: &str = "optimizer.safetensors";

/// The folder that keeps the checkpoint before the newest (`checkpoint-previous` beside
/// `checkpoint`), used when the newest one turns out damaged.
pub fn previous(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push("-previous");
    dir.with_file_name(name)
}

/// Writes `model`, `opt` and `state` into `dir`; the checkpoint it replaces becomes
/// [`previous`] (replacing the one before).
pub fn write<M: Checkpointed, S: Serialize>(
    model: &M,
    opt: &Adam,
    state: &S,
    dir: &Path,
) -> Result<()> {
    let tmp = fsutil::staging_dir(dir, ".lipo-ckpt")?;
    model.save_folder(&tmp.path().join(MODEL))?;
    Tensor::write_safetensors(&opt.state(), tmp.path().join(OPTIMIZER))?;
    fsutil::write_json(&tmp.path().join(STATE), state)?;
    if dir.join(STATE).is_file() {
        fsutil::replace_dir(dir, &previous(dir))?;
    }
    fsutil::replace_dir(&tmp.keep(), dir)
}

/// Removes a job's checkpoints (`dir` and [`previous`]) once the job is finished.
pub fn remove(dir: &Path) {
    for d in [dir.to_path_buf(), previous(dir)] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn restore_one<M: Checkpointed, S: DeserializeOwned>(
    dir: &Path,
    model: &M,
    opt: &mut Adam,
    device: Device,
) -> Result<S> {
    let state = fsutil::read_json(&dir.join(STATE))?;
    let src = M::saved_variables(&dir.join(MODEL), device)?;
    let moments: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join(OPTIMIZER))
        .map_err(|e| crate::Error::model(dir.join(OPTIMIZER), e.to_string()))?
        .into_iter()
        .map(|(n, t)| (n, t.to_device(device)))
        .collect();
    tch::no_grad(|| {
        for (name, mut t) in model.variables() {
            if let Some(s) = src.get(&name) {
                t.copy_(s);
            }
        }
    });
    opt.load_state(&moments)?;
    Ok(state)
}

/// Restores the checkpoint in `dir` into `model` and `opt` and returns its state, or `None`
/// when there is none. A damaged newest checkpoint is set aside for [`previous`] (and when
/// both are damaged the job starts over); `say` is told which, with the reason.
pub fn restore<M: Checkpointed, S: DeserializeOwned>(
    dir: &Path,
    model: &M,
    opt: &mut Adam,
    device: Device,
    say: &mut dyn FnMut(String),
) -> Result<Option<S>> {
    let prev = previous(dir);
    let mut failure = None;
    for d in [dir, prev.as_path()] {
        if !d.join(STATE).is_file() {
            continue;
        }
        match restore_one(d, model, opt, device) {
            Ok(state) => {
                if let Some(why) = failure {
                    say(format!(
                        "the newest checkpoint {} is damaged ({why}); resuming from the previous one",
                        dir.display()
                    ));
                }
                return Ok(Some(state));
            }
            Err(e) => failure = Some(e.to_string()),
        }
    }
    if let Some(why) = failure {
        say(format!(
            "the checkpoints in {} are damaged ({why}); starting over",
            dir.display()
        ));
    }
    Ok(None)
}
