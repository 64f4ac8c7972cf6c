//! A trained model in memory ([`Model`]) and its folder on disk.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tch::{nn, Device, Kind, Tensor};

use super::adapters::PeftConfig;
use super::config::Config;
use super::files;
use super::meta::{ModelMeta, Task};
use super::molformer::{masked_mean, Encoder, LmHead, SequenceHead};
use crate::error::{Error, Result};
use crate::tokenizer::{PaddedBatch, SmilesTokenizer};

/// Which heads a model carries besides the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelParts {
    /// The masked-LM head (`lm_head.*`).
    pub lm_head: bool,
    /// Outputs of the sequence head (`classifier.*`), if any.
    pub num_labels: Option<usize>,
}

/// MoLFormer with its tokenizer and metadata; parameters live in `vs`.
pub struct Model {
    /// Architecture.
    pub config: Config,
    /// Task, label statistics, provenance.
    pub meta: ModelMeta,
    /// The tokenizer the model was trained with.
    pub tokenizer: SmilesTokenizer,
    /// Every parameter and buffer, under Hugging Face names.
    pub vs: nn::VarStore,
    /// `molformer.*`.
    pub encoder: Encoder,
    /// `lm_head.*`.
    pub lm_head: Option<LmHead>,
    /// `classifier.*`.
    pub head: Option<SequenceHead>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("meta", &self.meta)
            .field("parts", &self.parts())
            .finish()
    }
}

/// A model folder read by [`Model::open`]: the model built from `config.json` and
/// `lipo.json`, and the weights still to be copied into it.
pub struct Opened {
    /// The model, without adapters; its weights are fresh until [`Opened::finish`].
    pub model: Model,
    /// The adapters `lipo.json` records, taken out of the model's metadata. Take them
    /// (`Option::take`) and attach them to [`Opened::model`] (creating their tensors and
    /// recording them in `meta` again) before [`Opened::finish`]; a folder whose adapters
    /// were left here does not finish, since the model would silently lack them.
    pub adapters: Option<PeftConfig>,
    tensors: BTreeMap<String, Tensor>,
    dir: PathBuf,
    head_from_file: bool,
}

impl Opened {
    /// Copies the folder's weights into the model (adapter tensors included) and returns it.
    pub fn finish(self) -> Result<Model> {
        if let Some(a) = &self.adapters {
            return Err(Error::model(
                &self.dir,
                format!(
                    "lipo.json records {} adapters that were not attached before the weights were read",
                    a.name()
                ),
            ));
        }
        self.model
            .copy_from(&self.tensors, &self.dir, self.head_from_file)?;
        Ok(self.model)
    }
}

impl Model {
    /// A freshly initialised model (weights ~ N(0, initializer_range), drawn from `seed`).
    pub fn new(
        config: Config,
        parts: ModelParts,
        meta: ModelMeta,
        tokenizer: SmilesTokenizer,
        device: Device,
        seed: u64,
    ) -> Result<Model> {
        config.validate()?;
        if tokenizer.vocab_size() != config.vocab_size {
            return Err(Error::param(
                "vocab_size",
                format!(
                    "config says {} but the tokenizer has {}",
                    config.vocab_size,
                    tokenizer.vocab_size()
                ),
            ));
        }
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = Encoder::new(&root / "molformer", &config);
        let lm_head = parts
            .lm_head
            .then(|| LmHead::new(&root / "lm_head", &config));
        let head = parts
            .num_labels
            .map(|n| SequenceHead::new(&root / "classifier", &config, n));
        let tokenizer = tokenizer.with_canonical(meta.canonical);
        Ok(Model {
            config,
            meta,
            tokenizer,
            vs,
            encoder,
            lm_head,
            head,
        })
    }

    /// The heads this model has.
    pub fn parts(&self) -> ModelParts {
        ModelParts {
            lm_head: self.lm_head.is_some(),
            num_labels: self
                .head
                .as_ref()
                .map(|h| h.out_proj.weight.size()[0] as usize),
        }
    }

    /// The device holding the parameters.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Number of parameter elements (buffers excluded; adapters included).
    pub fn num_parameters(&self) -> usize {
        self.named_tensors()
            .iter()
            .filter(|(n, _)| !n.ends_with("feature_map.weight"))
            .map(|(_, t)| t.numel())
            .sum()
    }

    /// Every tensor (parameters and buffers), sorted by name.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Reads a model folder into a model whose weights are not copied in yet: heads are those
    /// present in the weights unless `parts` says which to build (weights for heads the folder
    /// lacks are freshly initialised from `seed`, weights the folder has beyond `parts` are
    /// ignored; this is how fine-tuning starts from a pre-trained encoder). The adapters that
    /// `lipo.json` records are taken out of the metadata into [`Opened::adapters`]: whoever
    /// opens the folder attaches them to [`Opened::model`] before [`Opened::finish`] reads the
    /// weights, adapters included.
    pub fn open(
        dir: &Path,
        device: Device,
        parts: Option<ModelParts>,
        seed: u64,
    ) -> Result<Opened> {
        let (config, weights_path, tokenizer, file_meta) = super::read_folder(dir)?;
        let tensors = read_weights(&weights_path)?;
        let file_parts = ModelParts {
            lm_head: tensors.keys().any(|k| k.starts_with("lm_head.")),
            num_labels: match tensors.get("classifier.out_proj.weight") {
                None => None,
                Some(t) => match t.size().as_slice() {
                    &[n, _] if (1..=1024).contains(&n) => Some(n as usize),
                    shape => {
                        return Err(Error::model(
                            &weights_path,
                            format!(
                                "classifier.out_proj.weight has shape {shape:?}; a head needs [1..=1024, hidden]"
                            ),
                        ))
                    }
                },
            },
        };
        let mut meta: ModelMeta = if let Some(m) = file_meta {
            m
        } else {
            ModelMeta {
                task: if file_parts.num_labels.is_some() {
                    Task::Regression
                } else {
                    Task::Encoder
                },
                provenance: Some(format!("Hugging Face folder {}", dir.display())),
                ..ModelMeta::default()
            }
        };
        let wanted = parts.unwrap_or(file_parts);
        if wanted.num_labels != file_parts.num_labels {
            // A new or different head: the file's label statistics do not apply.
            // Adapters of the encoder still apply.
            meta = ModelMeta {
                task: Task::Encoder,
                provenance: meta.provenance,
                peft: meta.peft,
                ..ModelMeta::default()
            };
        }
        let adapters = meta.peft.take();
        let model = Model::new(config, wanted, meta, tokenizer, device, seed)?;
        Ok(Opened {
            model,
            adapters,
            tensors,
            dir: dir.to_path_buf(),
            head_from_file: wanted.num_labels == file_parts.num_labels,
        })
    }

    fn copy_from(
        &self,
        tensors: &BTreeMap<String, Tensor>,
        dir: &Path,
        head_from_file: bool,
    ) -> Result<()> {
        let vars = self.vs.variables();
        let mut missing = Vec::new();
        tch::no_grad(|| -> Result<()> {
            for (name, var) in &vars {
                if name.starts_with("classifier.") && !head_from_file {
                    continue;
                }
                if name.starts_with("lm_head.")
                    && !tensors.keys().any(|k| k.starts_with("lm_head."))
                {
                    continue;
                }
                match tensors.get(name) {
                    None => missing.push(name.clone()),
                    Some(t) => {
                        if t.size() != var.size() {
                            return Err(Error::model(
                                dir,
                                format!(
                                    "{name} has shape {:?}, the config needs {:?}",
                                    t.size(),
                                    var.size()
                                ),
                            ));
                        }
                        let mut v = var.shallow_clone();
                        v.copy_(&t.to_kind(Kind::Float).to_device(var.device()));
                    }
                }
            }
            Ok(())
        })?;
        let (buffers, params): (Vec<_>, Vec<_>) = missing
            .into_iter()
            .partition(|n| n.ends_with("feature_map.weight"));
        if !params.is_empty() {
            return Err(Error::model(
                dir,
                format!(
                    "model.safetensors lacks {} tensors the config needs, e.g. {}",
                    params.len(),
                    params[0]
                ),
            ));
        }
        if !buffers.is_empty() {
            tracing::warn!(
                "{}: no stored random-feature maps; drew new ones (seeded)",
                dir.display()
            );
        }
        let unused: Vec<_> = tensors
            .keys()
            .filter(|k| {
                !vars.contains_key(*k)
                    && k.as_str() != "lm_head.decoder.weight"
                    && !k.ends_with("inv_freq")
            })
            .filter(|k| !(k.starts_with("classifier.") || k.starts_with("lm_head.")))
            .collect();
        if !unused.is_empty() {
            tracing::warn!(
                "{}: ignored {} tensors that lipo does not use, e.g. {}",
                dir.display(),
                unused.len(),
                unused[0]
            );
        }
        Ok(())
    }

    /// Writes the model folder (`config.json`, `model.safetensors`, `tokenizer.json`,
    /// `lipo.json`). Files are written into a temporary folder that replaces `dir` at the end,
    /// so an interrupted save leaves the previous model intact.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = crate::fsutil::staging_dir(dir, ".lipo-save")?;
        let mut config = self.config.clone();
        config.num_labels = self.parts().num_labels;
        config.save(&tmp.path().join(files::CONFIG))?;
        let tensors: Vec<(String, Tensor)> = self
            .named_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu).contiguous()))
            .collect();
        let weights = tmp.path().join(files::WEIGHTS);
        Tensor::write_safetensors(&tensors, &weights)?;
        self.tokenizer.save(&tmp.path().join(files::TOKENIZER))?;
        crate::fsutil::write_json(&tmp.path().join(files::META), &self.meta)?;
        let tmp = tmp.keep();
        crate::fsutil::replace_dir(&tmp, dir)
    }

    /// A padded batch as `(ids, mask)` tensors on the model's device.
    pub fn batch_tensors(&self, batch: &PaddedBatch) -> (Tensor, Tensor) {
        let shape = [batch.batch as i64, batch.len as i64];
        let ids = Tensor::from_slice(&batch.ids)
            .view(shape)
            .to_device(self.device());
        let mask = Tensor::from_slice(&batch.mask)
            .view(shape)
            .to_device(self.device());
        (ids, mask)
    }

    /// Mean-pooled encoder states `[b, hidden]`.
    pub fn pooled(&self, ids: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        masked_mean(&self.encoder.forward(ids, mask, train), mask)
    }

    /// Raw sequence-head outputs `[b, num_labels]` (standardised units / logits).
    pub fn head_forward(&self, ids: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let head = self.head.as_ref().ok_or_else(|| {
            Error::param(
                "model",
                "has no sequence head (it is an encoder; fine-tune it first)",
            )
        })?;
        Ok(head.forward(&self.pooled(ids, mask, train), train))
    }

    /// Sets which tensors receive gradients: those whose name satisfies `trainable`.
    pub fn set_trainable(&self, trainable: impl Fn(&str) -> bool) {
        for (name, t) in self.vs.variables() {
            if !name.ends_with("feature_map.weight") {
                let mut t = t;
                let _ = t.requires_grad_(trainable(&name));
            }
        }
    }
}

/// Reads a safetensors file into name → tensor, prefixing bare encoder names with
/// `molformer.` (Hugging Face base-model checkpoints omit it).
fn read_weights(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let list = Tensor::read_safetensors(path).map_err(|e| Error::model(path, e.to_string()))?;
    let bare = !list.iter().any(|(n, _)| n.starts_with("molformer."));
    let map: HashMap<String, Tensor> = list
        .into_iter()
        .map(|(n, t)| {
            let n = if bare
                && (n.starts_with("embeddings.")
                    || n.starts_with("encoder.")
                    || n == "LayerNorm.weight"
                    || n == "LayerNorm.bias")
            {
                format!("molformer.{n}")
            } else {
                n
            };
            (n, t)
        })
        .collect();
    Ok(map.into_iter().collect())
}
