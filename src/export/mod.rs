//! `lipo export`: writes a trained model as an ONNX bundle ([`crate::bundle`]) for ONNX Runtime.
//!
//! The graph ([`molformer`]) is built from Rust with the `onnx-protobuf` message types
//! ([`graph`]); weights become initializers, read from the model folder's
//! `model.safetensors` without libtorch ([`Weights::from_safetensors`]) or, with the `train`
//! feature, from a model in memory with its adapters merged ([`Weights::from_model`]).

pub mod dmpnn;
pub mod ensemble;
pub mod graph;
pub mod molformer;
pub mod quantize;
pub mod weights;

use std::path::{Path, PathBuf};

use onnx_protobuf::{Message, ModelProto, OperatorSetIdProto, StringStringEntryProto};

use crate::bundle::{self, keys};
use crate::error::{Error, Result};
use crate::model::{files, Config, ModelMeta, Task};
use crate::tokenizer::SmilesTokenizer;
pub use quantize::Quantize;
pub use weights::{Tensor32, Weights};

/// ONNX operator set of the exported graph (LayerNormalization needs 17).
pub const OPSET: i64 = 17;
/// ONNX IR version of the exported file.
pub const IR_VERSION: i64 = 8;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// Size of `model.onnx` in bytes.
    pub onnx_bytes: usize,
    /// Number of initializer elements (weights and constants).
    pub initializer_elements: usize,
    /// The exported task.
    pub task: Task,
}

fn task_name(t: Task) -> &'static str {
    match t {
        Task::Regression => "regression",
        Task::Classification => "classification",
        Task::Encoder => "encoder",
    }
}

/// The ONNX model (graph, opset, metadata) of a model with a sequence head, its weights
/// stored as `quantize` says.
pub fn onnx_model(
    config: &Config,
    meta: &ModelMeta,
    tokenizer: &SmilesTokenizer,
    weights: &mut Weights,
    quantize: Quantize,
) -> Result<ModelProto> {
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
    let graph = molformer::build(config, meta, weights, quantize)?;
    Ok(wrap(graph, config, meta, tokenizer, quantize, vec![]))
}

/// The metadata entries of a graph that reads molecule graphs.
fn graph_props(config: &crate::graph::GraphConfig) -> Vec<StringStringEntryProto> {
    vec![
        prop(keys::INPUT, "graph".into()),
        prop(keys::GRAPH_FEATURES, config.features_key()),
    ]
}

/// A metadata entry of the graph.
fn prop(key: &str, value: String) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value,
        ..Default::default()
    }
}

/// The ONNX model around `graph`: opsets, producer and the bundle's metadata (the
/// [`keys`]), plus `extra` entries.
fn wrap(
    graph: onnx_protobuf::GraphProto,
    config: &Config,
    meta: &ModelMeta,
    tokenizer: &SmilesTokenizer,
    quantize: Quantize,
    extra: Vec<StringStringEntryProto>,
) -> ModelProto {
    let mut metadata_props = vec![
        prop(keys::VOCAB_HASH, tokenizer.vocab_hash().into()),
        prop(keys::MAX_LENGTH, config.max_position_embeddings.to_string()),
    ];
    metadata_props.extend(extra);
    let doc = format!(
        "MoLFormer ({} layers x {}) predicting {} from SMILES token ids",
        config.num_hidden_layers,
        config.hidden_size,
        meta.label_name.as_deref().unwrap_or("the label")
    );
    model_proto(graph, meta, quantize, metadata_props, doc)
}

/// The ONNX model around `graph` with the metadata every bundle has (version, task, label
/// statistics, storage), plus `extra` entries and the description `doc`.
fn model_proto(
    graph: onnx_protobuf::GraphProto,
    meta: &ModelMeta,
    quantize: Quantize,
    extra: Vec<StringStringEntryProto>,
    doc: String,
) -> ModelProto {
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut metadata_props = vec![
        prop(keys::LIPO_VERSION, crate::VERSION.into()),
        prop(keys::TASK, task_name(meta.task).into()),
        prop(
            keys::LABEL_NAME,
            meta.label_name.clone().unwrap_or_default(),
        ),
        prop(keys::LABEL_MEAN, meta.label_mean.to_string()),
        prop(keys::LABEL_SD, meta.label_sd.to_string()),
        prop(keys::THRESHOLD, opt(meta.threshold)),
        prop(keys::QUANTIZATION, quantize.name().into()),
        prop(keys::TTA, meta.tta.to_string()),
        prop(keys::CANONICAL, meta.canonical.to_string()),
    ];
    metadata_props.extend(extra);
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: std::iter::once((String::new(), OPSET))
            .chain((quantize == Quantize::Int8).then(|| (quantize::DOMAIN.to_string(), 1)))
            .map(|(domain, version)| OperatorSetIdProto {
                domain,
                version,
                ..Default::default()
            })
            .collect(),
        producer_name: "lipo".into(),
        producer_version: crate::VERSION.into(),
        doc_string: doc,
        graph: Some(graph).into(),
        metadata_props,
        ..Default::default()
    }
}

/// Exports `weights` of a model as the bundle folder `out` (replaced if it is a bundle
/// already; any other existing path is refused), stored as `quantize` says.
pub fn export(
    config: &Config,
    meta: &ModelMeta,
    tokenizer: &SmilesTokenizer,
    mut weights: Weights,
    out: &Path,
    quantize: Quantize,
) -> Result<ExportSummary> {
    refuse_foreign(out)?;
    let model = onnx_model(config, meta, tokenizer, &mut weights, quantize)?;
    weights.finish()?;
    write_bundle(&model, Some(tokenizer), meta, out)
}

/// Exports the graph model folder `model_dir` (`lipo finetune --model-kind graph`) as the
/// bundle `out` ([`dmpnn`]), reading its weights without libtorch. Float32 or float16
/// storage; int8 is refused (the graph model is small: 0.3 M parameters at chemprop's size).
pub fn export_graph_dir(model_dir: &Path, out: &Path, quantize: Quantize) -> Result<ExportSummary> {
    refuse_foreign(out)?;
    if quantize == Quantize::Int8 {
        return Err(Error::param(
            "quantize",
            format!(
                "{} is a graph model, which exports as float32 or float16, not int8",
                model_dir.display()
            ),
        ));
    }
    let config = crate::graph::GraphConfig::load(&model_dir.join(files::CONFIG))?;
    let meta_path = model_dir.join(files::META);
    let meta: ModelMeta = crate::fsutil::read_json(&meta_path)?;
    meta.validate().map_err(|e| Error::model(&meta_path, e))?;
    let mut weights = Weights::from_safetensors(&model_dir.join(files::WEIGHTS))?;
    let graph = dmpnn::build(&config, &meta, &mut weights, quantize == Quantize::Float16)?;
    weights.finish()?;
    let extra = graph_props(&config);
    let doc = format!(
        "D-MPNN (hidden {}, depth {}) predicting {} from molecule graphs",
        config.hidden,
        config.depth,
        meta.label_name.as_deref().unwrap_or("the label")
    );
    let model = model_proto(graph, &meta, quantize, extra, doc);
    write_bundle(&model, None, &meta, out)
}

/// Refuses an existing `out` that is not a bundle (a bundle is replaced).
fn refuse_foreign(out: &Path) -> Result<()> {
    if out.exists() && !(out.is_dir() && bundle::is_bundle(out)) {
        return Err(Error::param(
            "out",
            format!(
                "{} exists and is not a lipo bundle; refusing to replace it",
                out.display()
            ),
        ));
    }
    Ok(())
}

/// Writes `model`, the tokenizer and `meta` as the bundle folder `out`.
fn write_bundle(
    model: &ModelProto,
    tokenizer: Option<&SmilesTokenizer>,
    meta: &ModelMeta,
    out: &Path,
) -> Result<ExportSummary> {
    let initializer_elements = model
        .graph
        .initializer
        .iter()
        .map(|t| t.dims.iter().product::<i64>() as usize)
        .sum();
    let bytes = model
        .write_to_bytes()
        .map_err(|e| Error::model(out, format!("encoding the ONNX graph: {e}")))?;
    let tmp = crate::fsutil::staging_dir(out, ".lipo-export")?;
    crate::fsutil::write_atomic(&tmp.path().join(bundle::MODEL), &bytes)?;
    if let Some(t) = tokenizer {
        t.save(&tmp.path().join(bundle::TOKENIZER))?;
    }
    crate::fsutil::write_json(&tmp.path().join(bundle::META), meta)?;
    let tmp = tmp.keep();
    crate::fsutil::replace_dir(&tmp, out)?;
    Ok(ExportSummary {
        bundle: out.to_path_buf(),
        onnx_bytes: bytes.len(),
        initializer_elements,
        task: meta.task,
    })
}

/// Exports the gathered ensemble folder `dir` (`lipo finetune --ensemble`) as one graph
/// ([`ensemble`]) in the bundle `out`.
pub fn export_ensemble(dir: &Path, out: &Path, quantize: Quantize) -> Result<ExportSummary> {
    export_ensemble_as(dir, out, quantize, false)
}

/// [`export_ensemble`], with canonical input forced on when `canonical`.
fn export_ensemble_as(
    dir: &Path,
    out: &Path,
    quantize: Quantize,
    canonical: bool,
) -> Result<ExportSummary> {
    refuse_foreign(out)?;
    let mut folder = ensemble::read(dir)?;
    let arch = folder.members[0].arch.clone();
    let member_meta = folder.members[0].meta.clone();
    let graph = ensemble::build(&mut folder, quantize)?;
    for m in std::mem::take(&mut folder.members) {
        m.weights.finish()?;
    }
    let s = &folder.summary;
    let meta = ModelMeta {
        label_mean: s.label_mean,
        label_sd: s.label_sd,
        provenance: Some(format!(
            "lipo {} ensemble of {} members ({})",
            crate::VERSION,
            s.members,
            dir.display()
        )),
        canonical: member_meta.canonical || canonical,
        ..member_meta
    };
    let extra = vec![
        prop(keys::MEMBERS, s.members.to_string()),
        prop(keys::SD_SCALE, s.sd_scale.to_string()),
        prop(keys::SD_METHOD, s.sd_method.clone()),
        prop(keys::DOMAIN_THRESHOLD, s.domain_threshold.to_string()),
        prop(keys::DOMAIN_NEIGHBOURS, s.domain_neighbours.to_string()),
        prop(keys::TRAINING_MOLECULES, s.sizes[0].to_string()),
        prop(keys::OUT_OF_FOLD_RMSE, s.out_of_fold.rmse.to_string()),
    ];
    match &arch {
        ensemble::Architecture::Molformer { config, tokenizer } => {
            let model = wrap(graph, config, &meta, tokenizer, quantize, extra);
            write_bundle(&model, Some(tokenizer), &meta, out)
        }
        ensemble::Architecture::Graph(config) => {
            let mut extra = extra;
            extra.extend(graph_props(config));
            let doc = format!(
                "{} D-MPNN members (hidden {}, depth {}) predicting {} from molecule graphs",
                s.members,
                config.hidden,
                config.depth,
                meta.label_name.as_deref().unwrap_or("the label")
            );
            let model = model_proto(graph, &meta, quantize, extra, doc);
            write_bundle(&model, None, &meta, out)
        }
    }
}

/// File that marks an adapter-only folder (see `lipo::peft::save_adapter`).
const ADAPTER_INFO: &str = "adapter.json";

/// Exports a model folder (`config.json`, `model.safetensors`, optional `tokenizer.json`
/// and `lipo.json`) as the bundle `out`, reading the weights without libtorch. A folder whose
/// model carries PEFT adapters (or an adapter-only folder) is loaded with tch and its adapters
/// merged (`lipo::peft::merge`) first; that needs the `train` feature. Float32 weights; see
/// [`export_model_dir_with`] for int8.
pub fn export_model_dir(model_dir: &Path, out: &Path) -> Result<ExportSummary> {
    export_model_dir_with(model_dir, out, Quantize::None)
}

/// [`export_model_dir`] with the weights stored as `quantize` says.
pub fn export_model_dir_with(
    model_dir: &Path,
    out: &Path,
    quantize: Quantize,
) -> Result<ExportSummary> {
    export_model_dir_as(model_dir, out, quantize, false)
}

/// [`export_model_dir_with`]; with `canonical`, the bundle writes every SMILES canonically
/// before encoding it ([`ModelMeta::canonical`]) even when the model was trained without.
pub fn export_model_dir_as(
    model_dir: &Path,
    out: &Path,
    quantize: Quantize,
    canonical: bool,
) -> Result<ExportSummary> {
    if ensemble::is_ensemble(model_dir) {
        return export_ensemble_as(model_dir, out, quantize, canonical);
    }
    if crate::graph::GraphConfig::is_graph_config(&model_dir.join(files::CONFIG)) {
        return export_graph_dir(model_dir, out, quantize);
    }
    let weights_path = model_dir.join(files::WEIGHTS);
    let meta_path = model_dir.join(files::META);
    let adapter_only = !weights_path.is_file() && model_dir.join(ADAPTER_INFO).is_file();
    let meta: Option<ModelMeta> = if meta_path.is_file() {
        Some(crate::fsutil::read_json(&meta_path)?)
    } else {
        None
    };
    if adapter_only || meta.as_ref().is_some_and(|m| m.peft.is_some()) {
        return export_with_adapters(model_dir, out, quantize, canonical);
    }
    let (config, weights_path, tokenizer, _) = crate::model::read_folder(model_dir)?;
    let mut meta = meta.unwrap_or_else(|| ModelMeta {
        provenance: Some(format!("Hugging Face folder {}", model_dir.display())),
        ..ModelMeta::default()
    });
    meta.canonical |= canonical;
    let weights = Weights::from_safetensors(&weights_path)?;
    export(&config, &meta, &tokenizer, weights, out, quantize)
}

#[cfg(feature = "train")]
fn export_with_adapters(
    model_dir: &Path,
    out: &Path,
    quantize: Quantize,
    canonical: bool,
) -> Result<ExportSummary> {
    let mut model =
        <crate::model::Model as crate::peft::LoadModel>::load(model_dir, tch::Device::Cpu)?;
    crate::peft::merge(&mut model)?;
    model.meta.canonical |= canonical;
    export_model_with(&model, out, quantize)
}

#[cfg(not(feature = "train"))]
fn export_with_adapters(
    model_dir: &Path,
    _out: &Path,
    _quantize: Quantize,
    _canonical: bool,
) -> Result<ExportSummary> {
    Err(Error::model(
        model_dir,
        "carries PEFT adapters; merging them for export needs lipo built with the train feature",
    ))
}

/// Exports a model in memory as the bundle `out`, with any adapters it carries folded into
/// the base weights (see [`Weights::from_model`]); the bundle's `lipo.json` then records no
/// adapters.
#[cfg(feature = "train")]
pub fn export_model(model: &crate::model::Model, out: &Path) -> Result<ExportSummary> {
    export_model_with(model, out, Quantize::None)
}

/// [`export_model`] with the weights stored as `quantize` says.
#[cfg(feature = "train")]
pub fn export_model_with(
    model: &crate::model::Model,
    out: &Path,
    quantize: Quantize,
) -> Result<ExportSummary> {
    let weights = Weights::from_model(model)?;
    let meta = ModelMeta {
        peft: None,
        ..model.meta.clone()
    };
    export(
        &model.config,
        &meta,
        &model.tokenizer,
        weights,
        out,
        quantize,
    )
}
