//! Adapters on their own: a small folder (`adapter.safetensors` + `adapter.json`) that turns a
//! base model folder into the fine-tuned model.
//!
//! `adapter.safetensors` holds what the method trained (LoRA/IA3 tensors or BitFit's biases,
//! and the task head) plus the random-feature buffers (tiny, and redrawn per seed when a
//! Hugging Face base lacks them). `adapter.json` holds the method, the model's `lipo.json`
//! contents, the base folder (when there was one) and a SHA-256 fingerprint of the frozen base
//! tensors, so an adapter loaded on another base is refused instead of silently wrong.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use super::adapters::trains;
use super::PeftConfig;
use crate::error::{Error, Result};
use crate::model::{Model, ModelMeta};

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

pub(super) fn is_buffer(name: &str) -> bool {
    name.ends_with("feature_map.weight")
}

/// Splits the model's tensors into the adapter part and the frozen base part.
pub(super) fn split_tensors(model: &Model, cfg: &PeftConfig) -> (Named, Named) {
    model
        .named_tensors()
        .into_iter()
        .partition(|(n, _)| is_buffer(n) || trains(cfg, n))
}

/// SHA-256 (hex) over `(name, shape, float32 little-endian values)` of `tensors` in name order.
pub(super) fn fingerprint(tensors: &[(String, Tensor)]) -> Result<String> {
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
