//! The model: MoLFormer's architecture ([`molformer`]), its configuration ([`config`]), the
//! metadata lipo keeps beside it ([`meta`], with the adapters it records: [`adapters`]) and
//! model folders on disk ([`Model::save`], [`Model::open`]).
//!
//! This module knows no fine-tuning method: a folder whose `lipo.json` records adapters is
//! opened here and its adapters are attached by the caller (`lipo::peft::LoadModel` does
//! both, and is how the rest of lipo loads model folders).
//!
//! A model folder holds `config.json` and `model.safetensors` in Hugging Face's layout, so
//! a downloaded `ibm/MoLFormer-XL-both-10pct` folder is a valid model; lipo adds
//! `tokenizer.json` and `lipo.json`, and falls back to MoLFormer's tokenizer and an
//! unstandardised head when they are absent.

pub mod adapters;
pub mod config;
pub mod meta;
#[cfg(feature = "train")]
pub mod molformer;
#[cfg(feature = "train")]
mod store;

pub use config::Config;
pub use meta::{ModelMeta, Task, MAX_TTA};
#[cfg(feature = "train")]
pub use store::{Model, ModelParts, Opened};

/// File names inside a model folder.
pub mod files {
    /// Hugging Face configuration.
    pub const CONFIG: &str = "config.json";
    /// Weights with Hugging Face names.
    pub const WEIGHTS: &str = "model.safetensors";
    /// The tokenizer.
    pub const TOKENIZER: &str = "tokenizer.json";
    /// lipo's metadata.
    pub const META: &str = "lipo.json";
}

/// The layout of a K-fold ensemble folder (`lipo finetune --ensemble`), which training
/// writes and export and `lipo bench` read (neither needs libtorch for it).
pub mod ensemble_files {
    use std::path::{Path, PathBuf};

    /// The ensemble's settings; marks an ensemble folder.
    pub const ENSEMBLE: &str = "ensemble.json";
    /// What the gathered ensemble measured.
    pub const METRICS: &str = "metrics.json";
    /// Every row's out-of-fold or test prediction, calibrated sd, domain score and the
    /// members' predictions.
    pub const PREDICTIONS: &str = "predictions.csv";
    /// Training-molecule embeddings for the applicability domain.
    pub const DOMAIN: &str = "domain.safetensors";
    /// The tensor of [`DOMAIN`]: float32 `[molecules, hidden]`.
    pub const EMBEDDINGS: &str = "embeddings";

    /// Whether `dir` is an ensemble folder.
    pub fn is_ensemble(dir: &Path) -> bool {
        dir.join(ENSEMBLE).is_file()
    }

    /// Member `k`'s fine-tuning run folder inside the ensemble folder `dir`.
    pub fn member_dir(dir: &Path, k: usize) -> PathBuf {
        dir.join(format!("member-{k}"))
    }

    /// Member `k`'s kept model folder inside the ensemble folder `dir`.
    pub fn member_model(dir: &Path, k: usize) -> PathBuf {
        member_dir(dir, k).join("model")
    }
}

/// Folder of lipo's bundled pre-trained model inside the source tree.
pub const BUNDLED_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/lipo-small");

/// The default starting model of every training command: `LIPO_DEFAULT_MODEL` when set,
/// else the bundled model when it is present; `None` means random initialisation.
pub fn default_model_dir() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("LIPO_DEFAULT_MODEL") {
        return Some(p.into());
    }
    let bundled = std::path::Path::new(BUNDLED_MODEL);
    bundled
        .join(files::CONFIG)
        .is_file()
        .then(|| bundled.to_path_buf())
}

/// The `model_type` in a graph model's `config.json` ([`crate::graph`]).
pub const GRAPH_MODEL_TYPE: &str = "dmpnn";

/// Whether the `config.json` at `path` is a graph model's (`"model_type": "dmpnn"`).
pub fn is_graph_config(path: &std::path::Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind {
        model_type: Option<String>,
    }
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Kind>(&b).ok())
        .and_then(|k| k.model_type)
        .is_some_and(|t| t == GRAPH_MODEL_TYPE)
}

/// The parts of a model folder that need no libtorch: `config.json` and the path of
/// `model.safetensors` (both required; the error names the missing file), the tokenizer
/// (MoLFormer's when the folder has no `tokenizer.json`) and `lipo.json` when present.
pub fn read_folder(
    dir: &std::path::Path,
) -> crate::Result<(
    Config,
    std::path::PathBuf,
    crate::tokenizer::SmilesTokenizer,
    Option<ModelMeta>,
)> {
    let config_path = dir.join(files::CONFIG);
    let weights_path = dir.join(files::WEIGHTS);
    for p in [&config_path, &weights_path] {
        if !p.is_file() {
            return Err(crate::Error::model(
                dir,
                format!(
                    "no {} (a model folder holds config.json and model.safetensors)",
                    p.file_name().unwrap_or_default().to_string_lossy()
                ),
            ));
        }
    }
    if is_graph_config(&config_path) {
        return Err(crate::Error::model(
            dir,
            "is a graph model (lipo finetune --model-kind graph); this needs a MoLFormer model \
             folder (graph models train, predict, evaluate and export; they have no tokens to \
             embed, explain, adapt or pre-train)",
        ));
    }
    let config = Config::load(&config_path)?;
    let tok_path = dir.join(files::TOKENIZER);
    let tokenizer = if tok_path.is_file() {
        crate::tokenizer::SmilesTokenizer::load(&tok_path)?
    } else {
        crate::tokenizer::SmilesTokenizer::molformer()
    };
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(crate::Error::model(
            &tok_path,
            format!(
                "the tokenizer has {} tokens but config.json's vocab_size is {}: ids would fall outside the embedding table",
                tokenizer.vocab_size(),
                config.vocab_size
            ),
        ));
    }
    let meta_path = dir.join(files::META);
    let meta = if meta_path.is_file() {
        let meta: ModelMeta = crate::fsutil::read_json(&meta_path)?;
        meta.validate()
            .map_err(|reason| crate::Error::model(&meta_path, reason))?;
        Some(meta)
    } else {
        None
    };
    Ok((config, weights_path, tokenizer, meta))
}
