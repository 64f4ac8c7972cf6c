//! Adapters on their own: a small folder (`adapter.safetensors` + `adapter.json`) that turns a
//! base model folder into the fine-tuned model.
//!
//! `adapter.safetensors` holds what the method trained (LoRA/IA3 tensors or BitFit's biases,
//! and the task head) plus the random-feature buffers (tiny, and redrawn per seed when a
//! Hugging Face base lacks them). `adapter.json` holds the method, the model's `lipo.json`
//! contents, the base folder (when there was one) and a SHA-256 fingerprint of the frozen base
//! tensors, so an adapter loaded on another base is refused instead of silently wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use super::adapters::{attach, merge, trains};
use super::PeftConfig;
use crate::error::{Error, Result};
use crate::model::{Model, ModelMeta, ModelParts};

/// File names of an adapter folder.
pub mod files {
    /// The adapter's tensors.
    pub const WEIGHTS: &str = "adapter.safetensors";
    /// What the adapter is and which base it belongs to.
    pub const INFO: &str = "adapter.json";
}

/// Contents of `adapter.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterInfo {
    /// lipo version that wrote the adapter.
    pub lipo_version: String,
    /// The method and its settings.
    pub peft: PeftConfig,
    /// The fine-tuned model's metadata (task, label statistics, threshold).
    pub meta: ModelMeta,
    /// Outputs of the task head.
    pub num_labels: Option<usize>,
    /// The base model folder the adapter was trained on (absent for a random-init base).
    pub base: Option<PathBuf>,
    /// SHA-256 over the names, shapes and float32 values of the frozen base tensors.
    pub base_fingerprint: String,
}

/// Tensors by name.
type Named = Vec<(String, Tensor)>;

fn is_buffer(name: &str) -> bool {
    name.ends_with("feature_map.weight")
}

/// Splits the model's tensors into the adapter part and the frozen base part.
fn split_tensors(model: &Model, cfg: &PeftConfig) -> (Named, Named) {
    model
        .named_tensors()
        .into_iter()
        .partition(|(n, _)| is_buffer(n) || trains(cfg, n))
}

/// SHA-256 (hex) over `(name, shape, float32 little-endian values)` of `tensors` in name order.
fn fingerprint(tensors: &[(String, Tensor)]) -> Result<String> {
    let mut sorted: Vec<&(String, Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, t) in sorted {
        h.update(name.as_bytes());
        for d in t.size() {
            h.update(d.to_le_bytes());
        }
        let flat = t
            .detach()
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous()
            .view([-1]);
        let values = Vec::<f32>::try_from(&flat)?;
        for v in values {
            h.update(v.to_le_bytes());
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes the adapters of `model` (which must carry a [`PeftConfig`]) to folder `dir`,
/// recording `base` as the folder they apply to. The folder is replaced as a whole.
pub fn save_adapter(model: &Model, dir: &Path, base: Option<&Path>) -> Result<()> {
    let cfg = model.meta.peft.clone().ok_or_else(|| {
        Error::param(
            "model",
            "carries no adapters (it was not trained with --peft); save the whole model instead",
        )
    })?;
    let (adapter, frozen) = split_tensors(model, &cfg);
    let info = AdapterInfo {
        lipo_version: crate::VERSION.into(),
        peft: cfg,
        meta: model.meta.clone(),
        num_labels: model.parts().num_labels,
        base: base.map(|b| std::fs::canonicalize(b).unwrap_or_else(|_| b.to_path_buf())),
        base_fingerprint: fingerprint(&frozen)?,
    };
    let tmp = crate::fsutil::staging_dir(dir, ".lipo-adapter")?;
    let adapter: Vec<(String, Tensor)> = adapter
        .into_iter()
        .map(|(n, t)| (n, t.detach().to_device(Device::Cpu).contiguous()))
        .collect();
    Tensor::write_safetensors(&adapter, tmp.path().join(files::WEIGHTS))?;
    crate::fsutil::write_json(&tmp.path().join(files::INFO), &info)?;
    crate::fsutil::replace_dir(&tmp.keep(), dir)
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
