//! One ONNX graph of a gathered K-fold ensemble (`lipo finetune --ensemble K`): every
//! member's encoder and head side by side on the same inputs (token ids for MoLFormer
//! members, molecule graphs for graph members), then
//!
//! - `prediction`: the members' mean;
//! - `prediction_sd`: the calibration factor of the ensemble times the domain score (or, for
//!   ensembles gathered with `sd_method` "spread", times the members' sample sd);
//! - `domain`: the mean Euclidean distance from the members' mean embedding to its k nearest
//!   training molecules, whose embeddings the graph stores (`d² = |e|² + |t|² − 2 e·t`, the
//!   k smallest by `TopK`).
//!
//! Read without libtorch: the ensemble folder's `metrics.json` and `domain.safetensors`,
//! and each member's `model/` folder.

use std::path::Path;

use onnx_protobuf::tensor_proto::DataType;
use serde::Deserialize;

use super::graph::{Attr, Dim, Graph};
use super::molformer::{forward, head_outputs, label_units, start_graph};
use super::{Quantize, Weights};
use crate::bundle::io;
use crate::error::{Error, Result};
use crate::model::{Config, ModelMeta, Task};
use crate::tokenizer::SmilesTokenizer;

use crate::model::ensemble_files as files;
pub use files::is_ensemble;

/// What the bundle needs from the gathered ensemble's `metrics.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct EnsembleSummary {
    /// Members.
    pub members: usize,
    /// Regression or classification.
    pub task: Task,
    /// Training molecules (all folds) and test molecules.
    pub sizes: [usize; 2],
    /// What the sd scales: `spread` (the members' sample sd; absent in older records) or
    /// `domain` (the domain score).
    #[serde(default = "spread_method")]
    pub sd_method: String,
    /// Factor on the members' sample sd or on the domain score.
    pub sd_scale: f64,
    /// Domain score above which a molecule is out of domain.
    pub domain_threshold: f64,
    /// Nearest training molecules behind the domain score.
    pub domain_neighbours: usize,
    /// Mean of the training labels.
    pub label_mean: f64,
    /// Sd of the training labels.
    pub label_sd: f64,
    /// Out-of-fold predictions on the training molecules.
    pub out_of_fold: OutOfFold,
}

fn spread_method() -> String {
    "spread".into()
}

/// The out-of-fold error of an ensemble.
#[derive(Debug, Clone, Deserialize)]
pub struct OutOfFold {
    /// RMSE in label units (Brier score's root for classification).
    #[serde(deserialize_with = "crate::metrics::nan_if_null")]
    pub rmse: f64,
}

/// What a member is.
#[derive(Debug, Clone)]
pub enum Architecture {
    /// MoLFormer with its tokenizer.
    Molformer {
        /// Architecture.
        config: Box<Config>,
        /// Tokenizer.
        tokenizer: Box<SmilesTokenizer>,
    },
    /// A graph model ([`crate::graph`]).
    Graph(crate::graph::GraphConfig),
}

impl Architecture {
    /// Whether `other` has the same architecture and vocabulary.
    pub fn same_as(&self, other: &Architecture) -> bool {
        match (self, other) {
            (
                Architecture::Molformer { config, tokenizer },
                Architecture::Molformer {
                    config: c2,
                    tokenizer: t2,
                },
            ) => config == c2 && tokenizer.vocab_hash() == t2.vocab_hash(),
            (Architecture::Graph(a), Architecture::Graph(b)) => a == b,
            _ => false,
        }
    }

    /// Width of the member's embedding (pooled encoder state, or molecule vector).
    pub fn hidden(&self) -> usize {
        match self {
            Architecture::Molformer { config, .. } => config.hidden_size,
            Architecture::Graph(c) => c.hidden,
        }
    }
}

/// One member: its architecture, metadata and weights.
pub struct Member {
    /// Architecture and tokenizer (the same for every member).
    pub arch: Architecture,
    /// Task and label statistics of the member's own training rows.
    pub meta: ModelMeta,
    /// Its weights.
    pub weights: Weights,
}

/// A gathered ensemble folder read for export.
pub struct EnsembleFolder {
    /// What the ensemble measured.
    pub summary: EnsembleSummary,
    /// Its members, in order.
    pub members: Vec<Member>,
    /// Training embeddings, row-major `[molecules, hidden]`.
    pub embeddings: Vec<f32>,
}

/// Reads the gathered ensemble in `dir`; an ensemble whose members have not all finished is
/// refused, naming the folder.
pub fn read(dir: &Path) -> Result<EnsembleFolder> {
    let metrics = dir.join(files::METRICS);
    if !metrics.is_file() {
        return Err(Error::model(
            dir,
            "the ensemble is not gathered yet (no metrics.json): finish its members with lipo finetune --ensemble",
        ));
    }
    let summary: EnsembleSummary = crate::fsutil::read_json(&metrics)?;
    let mut members = Vec::with_capacity(summary.members);
    for k in 0..summary.members {
        let model_dir = files::member_model(dir, k);
        let config_path = model_dir.join(crate::model::files::CONFIG);
        let (arch, weights_path) = if crate::graph::GraphConfig::is_graph_config(&config_path) {
            (
                Architecture::Graph(crate::graph::GraphConfig::load(&config_path)?),
                model_dir.join(crate::model::files::WEIGHTS),
            )
        } else {
            let (config, weights_path, tokenizer, _) = crate::model::read_folder(&model_dir)?;
            (
                Architecture::Molformer {
                    config: Box::new(config),
                    tokenizer: Box::new(tokenizer),
                },
                weights_path,
            )
        };
        let meta: ModelMeta = crate::fsutil::read_json(&model_dir.join(crate::model::files::META))?;
        members.push(Member {
            arch,
            meta,
            weights: Weights::from_safetensors(&weights_path)?,
        });
    }
    check_members(dir, &members)?;
    let domain_path = dir.join(files::DOMAIN);
    let mut domain = Weights::from_safetensors(&domain_path)?;
    let h = members[0].arch.hidden();
    let embeddings = domain
        .take(files::EMBEDDINGS, &[summary.sizes[0], h])
        .map_err(|e| Error::model(&domain_path, e.to_string()))?
        .data;
    Ok(EnsembleFolder {
        summary,
        members,
        embeddings,
    })
}

/// Members must share architecture, vocabulary, task and test-time augmentation.
fn check_members(dir: &Path, members: &[Member]) -> Result<()> {
    let Some(first) = members.first() else {
        return Err(Error::model(dir, "the ensemble has no members"));
    };
    for (k, m) in members.iter().enumerate().skip(1) {
        let same = m.arch.same_as(&first.arch)
            && m.meta.task == first.meta.task
            && m.meta.tta == first.meta.tta;
        if !same {
            return Err(Error::model(
                files::member_dir(dir, k),
                "differs from member 0 in architecture, vocabulary, task or test-time augmentation",
            ));
        }
    }
    Ok(())
}

/// The ensemble's graph (see the [module](self) documentation), consuming the members'
/// weights.
pub fn build(folder: &mut EnsembleFolder, quantize: Quantize) -> Result<onnx_protobuf::GraphProto> {
    let k = folder.members.len();
    let arch = folder.members[0].arch.clone();
    let hidden = arch.hidden();
    let mut preds = Vec::with_capacity(k);
    let mut pooled = Vec::with_capacity(k);
    let mut g = match &arch {
        Architecture::Molformer { config, .. } => {
            config.validate()?;
            let (mut g, ids, mask) = start_graph(quantize);
            for m in folder.members.iter_mut() {
                let num_labels = head_outputs(&m.meta, &m.weights)?;
                let (p, z) = forward(
                    &mut g,
                    &ids,
                    &mask,
                    config,
                    &mut m.weights,
                    quantize,
                    num_labels,
                )?;
                pooled.push(p);
                preds.push(z);
            }
            g
        }
        Architecture::Graph(config) => {
            if quantize == Quantize::Int8 {
                return Err(Error::param(
                    "quantize",
                    "graph members export as float32 or float16, not int8",
                ));
            }
            let mut g = Graph::new("lipo-dmpnn-ensemble");
            g.store_half(quantize == Quantize::Float16);
            let x = super::dmpnn::inputs(&mut g);
            for m in folder.members.iter_mut() {
                let (p, z) = super::dmpnn::forward(&mut g, &x, config, &mut m.weights)?;
                pooled.push(p);
                preds.push(z);
            }
            g
        }
    };
    for (i, (m, z)) in folder
        .members
        .iter()
        .zip(std::mem::take(&mut preds))
        .enumerate()
    {
        let y = label_units(&mut g, &z, &m.meta, &format!("member{i}.prediction"));
        let axis = g.ints("member_axis", &[1]);
        preds.push(g.op("Unsqueeze", &format!("member{i}.column"), &[&y, &axis], &[]));
    }
    let s = &folder.summary;
    let members_sd = spread(&mut g, &preds);
    let n = s.sizes[0];
    domain(
        &mut g,
        &pooled,
        &folder.embeddings,
        n,
        hidden,
        s.domain_neighbours,
    );
    let basis = match s.sd_method.as_str() {
        "spread" => members_sd,
        "domain" => io::DOMAIN.to_string(),
        other => {
            return Err(Error::param(
                "sd_method",
                format!("{other:?} in the ensemble's metrics.json is not spread or domain"),
            ))
        }
    };
    let scale = g.scalar("sd_scale", s.sd_scale as f32);
    let out = g.op("Mul", io::PREDICTION_SD, &[&basis, &scale], &[]);
    debug_assert_eq!(out, io::PREDICTION_SD);
    for name in [io::PREDICTION, io::PREDICTION_SD, io::DOMAIN] {
        g.output(name, DataType::FLOAT, &[Dim::Dynamic("batch")]);
    }
    Ok(g.into_proto())
}

/// `prediction` (the members' mean) from the members' `[batch, 1]` columns; returns their
/// sample sd `[batch]`.
fn spread(g: &mut Graph, columns: &[String]) -> String {
    let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
    let y = g.op("Concat", "members", &refs, &[("axis", Attr::Int(1))]);
    let mean = g.op(
        "ReduceMean",
        "members_mean",
        &[&y],
        &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
    );
    let axis = g.ints("member_axis", &[1]);
    let p = g.op("Squeeze", io::PREDICTION, &[&mean, &axis], &[]);
    debug_assert_eq!(p, io::PREDICTION);
    let dev = g.op("Sub", "members_dev", &[&y, &mean], &[]);
    let sq = g.op("Mul", "members_sq", &[&dev, &dev], &[]);
    let ss = g.op(
        "ReduceSum",
        "members_ss",
        &[&sq, &axis],
        &[("keepdims", Attr::Int(0))],
    );
    let dof = g.scalar("members_dof", (columns.len() - 1) as f32);
    let var = g.op("Div", "members_var", &[&ss, &dof], &[]);
    g.op("Sqrt", "members_sd", &[&var], &[])
}

/// `domain`: the mean distance from the members' mean embedding to its `k` nearest rows of
/// `train` (`[n, h]`, row-major).
fn domain(g: &mut Graph, pooled: &[String], train: &[f32], n: usize, h: usize, k: usize) {
    let refs: Vec<&str> = pooled.iter().map(String::as_str).collect();
    let sum = g.op("Sum", "embedding_sum", &refs, &[]);
    let count = g.scalar("member_count", pooled.len() as f32);
    let e = g.op("Div", "embedding", &[&sum, &count], &[]);
    // Stored transposed [h, n]; squared norms from the values as stored (float16 or not).
    let mut tt = vec![0f32; h * n];
    for (r, row) in train.chunks_exact(h).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            tt[c * n + r] = v;
        }
    }
    let half = g.stores_half() && tt.len() >= super::graph::HALF_MIN_ELEMENTS;
    let round = |v: f32| {
        if half {
            half::f16::from_f32(v).to_f32()
        } else {
            v
        }
    };
    let norms: Vec<f32> = train
        .chunks_exact(h)
        .map(|row| row.iter().map(|&v| round(v) * round(v)).sum())
        .collect();
    let tn = g.init_f32("training_embeddings_t", &[h, n], &tt);
    let norms = g.init_f32("training_norms", &[1, n], &norms);
    let sq = g.op("Mul", "embedding_sq", &[&e, &e], &[]);
    let axis = g.ints("hidden_axis", &[1]);
    let ee = g.op(
        "ReduceSum",
        "embedding_norm",
        &[&sq, &axis],
        &[("keepdims", Attr::Int(1))],
    );
    let cross = g.op("MatMul", "embedding_cross", &[&e, &tn], &[]);
    let two = g.scalar("two", 2.0);
    let cross2 = g.op("Mul", "embedding_cross2", &[&cross, &two], &[]);
    let d2 = g.op("Add", "distance_sq_sum", &[&ee, &norms], &[]);
    let d2 = g.op("Sub", "distance_sq_raw", &[&d2, &cross2], &[]);
    let zero = g.scalar("zero", 0.0);
    let d2 = g.op("Max", "distance_sq", &[&d2, &zero], &[]);
    let kk = g.ints("neighbours", &[k.min(n).max(1) as i64]);
    let nearest = g.node(
        "",
        "TopK",
        &["nearest_sq", "nearest_index"],
        &[&d2, &kk],
        &[("axis", Attr::Int(-1)), ("largest", Attr::Int(0))],
    );
    let d = g.op("Sqrt", "nearest", &[&nearest[0]], &[]);
    let out = g.op(
        "ReduceMean",
        io::DOMAIN,
        &[&d],
        &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))],
    );
    debug_assert_eq!(out, io::DOMAIN);
}
