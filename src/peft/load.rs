//! Loading model folders with the adapters they carry, and adapter-only folders on top of
//! their base: the way the rest of lipo reads a model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::adapters::{attach, merge};
use super::io::{files, fingerprint, is_buffer, split_tensors, AdapterInfo};
use crate::error::{Error, Result};
use crate::model::{self, Model, ModelParts};

/// Reading a model folder with the adapters it carries. `crate::model` opens folders but
/// cannot attach adapters ([`Model::open`]); this trait does both, so bring it into scope
/// (`use lipo::peft::LoadModel`) and call `Model::load(dir, device)`.
pub trait LoadModel: Sized {
    /// Reads a model folder. Heads are those present in the weights. A folder holding only
    /// adapters (`adapter.json`, see [`super::save_adapter`]) loads on top of the base
    /// model it records.
    fn load(dir: &Path, device: Device) -> Result<Self>;

    /// Reads a model folder, building exactly `parts` (when given): weights for heads the
    /// folder lacks are freshly initialised from `seed`, weights the folder has beyond
    /// `parts` are ignored. This is how fine-tuning starts from a pre-trained encoder.
    /// Adapters that `lipo.json` records are attached (LoRA's `A` drawn from `seed`, then
    /// overwritten by the stored tensors).
    fn load_with_parts(
        dir: &Path,
        device: Device,
        parts: Option<ModelParts>,
        seed: u64,
    ) -> Result<Self>;
}

impl LoadModel for Model {
    fn load(dir: &Path, device: Device) -> Result<Model> {
        if !dir.join(model::files::WEIGHTS).is_file() && dir.join(files::INFO).is_file() {
            return load_adapter(dir, None, device);
        }
        Self::load_with_parts(dir, device, None, 0)
    }

    fn load_with_parts(
        dir: &Path,
        device: Device,
        parts: Option<ModelParts>,
        seed: u64,
    ) -> Result<Model> {
        let mut opened = Model::open(dir, device, parts, seed)?;
        if let Some(cfg) = opened.adapters.take() {
            // Create the adapter tensors so that they are read from the weights.
            attach(&mut opened.model, &cfg, seed)?;
        }
        opened.finish()
    }
}

/// Reads an adapter folder and applies it to its base model: `base` when given, else the
/// folder recorded in `adapter.json`. A base that itself carries adapters is merged first
/// (that is what training started from). Fails when the base's frozen tensors do not match
/// the fingerprint the adapter was trained on.
pub fn load_adapter(dir: &Path, base: Option<&Path>, device: Device) -> Result<Model> {
    let info: AdapterInfo = crate::fsutil::read_json(&dir.join(files::INFO))?;
    info.meta
        .validate()
        .map_err(|reason| Error::model(dir.join(files::INFO), reason))?;
    info.peft
        .validate()
        .map_err(|e| Error::model(dir.join(files::INFO), e.to_string()))?;
    let base: PathBuf = match (base, &info.base) {
        (Some(b), _) => b.to_path_buf(),
        (None, Some(b)) => b.clone(),
        (None, None) => {
            return Err(Error::model(
                dir,
                "the adapter was trained on randomly initialised weights, so no base folder \
                 exists; load the run's model/ folder instead",
            ))
        }
    };
    let parts = ModelParts {
        lm_head: false,
        num_labels: info.num_labels,
    };
    let mut model = Model::load_with_parts(&base, device, Some(parts), 0)?;
    merge(&mut model)?;
    attach(&mut model, &info.peft, 0)?;
    let weights = dir.join(files::WEIGHTS);
    let stored: BTreeMap<String, Tensor> = Tensor::read_safetensors(&weights)
        .map_err(|e| Error::model(&weights, e.to_string()))?
        .into_iter()
        .collect();
    let (adapter, frozen) = split_tensors(&model, &info.peft);
    tch::no_grad(|| -> Result<()> {
        for (name, var) in &adapter {
            let Some(t) = stored.get(name) else {
                if is_buffer(name) {
                    continue;
                }
                return Err(Error::model(&weights, format!("lacks {name}")));
            };
            if t.size() != var.size() {
                return Err(Error::model(
                    &weights,
                    format!(
                        "{name} has shape {:?}, the base model needs {:?}",
                        t.size(),
                        var.size()
                    ),
                ));
            }
            let mut v = var.shallow_clone();
            v.copy_(&t.to_kind(Kind::Float).to_device(device));
        }
        Ok(())
    })?;
    let found = fingerprint(&frozen)?;
    if found != info.base_fingerprint {
        return Err(Error::model(
            dir,
            format!(
                "was trained on another base model than {} (fingerprint {} vs {})",
                base.display(),
                &found[..12],
                info.base_fingerprint.chars().take(12).collect::<String>()
            ),
        ));
    }
    model.meta = info.meta;
    Ok(model)
}
