//! `lipo explain`: which training molecules a prediction rests on.
//!
//! For a query molecule x and a training molecule z of the run that trained the model, the
//! influence of z on x's prediction f(x) (Koh & Liang 2017) is
//!
//! ```text
//! I(z, x) = −∇f(x)ᵀ (H + λI)⁻¹ ∇ℓ(z)       (H: Hessian of the mean training loss)
//! ```
//!
//! the rate at which up-weighting z moves f(x), in label units. Leaving z out of training
//! (weight −1/n) moves f(x) by about `−I(z, x) / n`: a molecule with a large positive I pulls
//! the prediction up, one with a large negative I pulls it down.
//!
//! One inverse-Hessian-vector product per query (LiSSA, [`crate::influence::lissa`]) gives
//! s = (H + λI)⁻¹ ∇f(x); then I(z, x) = −sᵀ∇ℓ(z) for every z at once, from the training
//! gradients, which are computed once per model and parameter set and cached in the run
//! folder (`explain/`). When a gradient has more elements than [`ExplainConfig::sketch_dim`],
//! the cache holds a CountSketch projection of it (each element added, with a random sign,
//! to one of `sketch_dim` buckets): inner products of sketches are unbiased estimates of the
//! full ones. Beside the attributions, the query's nearest training molecules by pooled
//! embedding (Euclidean distance) are listed for comparison.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::influence::{self, Examples, LissaConfig, ParamSet, ParamVec};
use crate::model::{Model, Task};
use crate::peft::LoadModel;
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::train::{files, FinetuneRun};

/// Cache folder inside the run folder.
pub const CACHE_DIR: &str = "explain";

/// Settings of an explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainConfig {
    /// Parameters the influence is taken over (default: the last encoder layer and the head).
    pub params: ParamSet,
    /// LiSSA settings of the per-query inverse-HVP.
    pub lissa: LissaConfig,
    /// Training molecules listed per direction, and nearest neighbours.
    pub top: usize,
    /// Dimension of the CountSketch of the cached training gradients (gradients with at most
    /// this many elements are kept whole).
    pub sketch_dim: usize,
    /// Seed of the sketch's buckets and signs.
    pub seed: u64,
}

impl Default for ExplainConfig {
    fn default() -> Self {
        ExplainConfig {
            params: ParamSet::Last(1),
            lissa: LissaConfig::default(),
            top: 10,
            sketch_dim: 8192,
            seed: 0,
        }
    }
}

/// One training molecule's influence on a prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Row of the run's table (0-based; extra rows follow the table's).
    pub row: usize,
    /// Its SMILES as written in the table.
    pub smiles: String,
    /// Its label.
    pub label: f64,
    /// I(z, x): the rate at which up-weighting it moves the prediction (label units).
    pub influence: f64,
    /// The predicted change of the prediction when it is left out of training, −I(z, x)/n.
    pub removal_shift: f64,
}

/// One of the query's nearest training molecules by pooled embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    /// Row of the run's table (0-based).
    pub row: usize,
    /// Its SMILES.
    pub smiles: String,
    /// Its label.
    pub label: f64,
    /// Euclidean distance between the pooled embeddings.
    pub distance: f64,
}

/// How the training gradients are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// `exact` or `countsketch`.
    pub kind: String,
    /// Elements per training gradient as stored.
    pub dim: usize,
    /// Elements of the full gradient.
    pub parameters: usize,
}

/// The explanation of one prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The query as given.
    pub smiles: String,
    /// The model's prediction (label units).
    pub prediction: f64,
    /// The label column's name.
    pub label_name: String,
    /// Parameter set of the influence.
    pub params: String,
    /// Training molecules of the run.
    pub training_molecules: usize,
    /// How the training gradients were stored.
    pub projection: Projection,
    /// LiSSA's scale (λ = scale × damping) and whether it settled.
    pub lissa_scale: f64,
    /// Whether the inverse-HVP recursion settled.
    pub lissa_converged: bool,
    /// Largest positive influences first (up-weighting raises the prediction).
    pub positive: Vec<Attribution>,
    /// Largest negative influences first (up-weighting lowers the prediction).
    pub negative: Vec<Attribution>,
    /// Nearest training molecules by embedding, closest first.
    pub neighbours: Vec<Neighbour>,
}

/// The influence of every training molecule on one prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// I(z, x) per training molecule (label units), in the order of
    /// [`Explainer::training_rows`].
    pub influence: Vec<f64>,
    /// LiSSA's scale.
    pub lissa_scale: f64,
    /// Whether LiSSA settled.
    pub lissa_converged: bool,
}

/// A model, the training set of its run, and the cached training gradients: answers
/// [`Explainer::explain`] for any number of queries.
pub struct Explainer {
    model: Model,
    cfg: ExplainConfig,
    params: Vec<(String, Tensor)>,
    data: Dataset,
    /// Table rows of the training molecules.
    rows: Vec<usize>,
    train: Examples,
    sketch: Sketch,
    /// How the training gradients are stored (reported with each explanation).
    projection: Projection,
    /// Training gradients of the loss, one row per training molecule, as stored `[n, dim]`.
    gradients: Tensor,
    /// Pooled embeddings of the training molecules `[n, hidden]`.
    embeddings: Tensor,
}

/// Maps a full gradient to its stored form.
enum Sketch {
    Exact,
    /// Bucket (i64) and sign (f32) of every element.
    Count {
        buckets: Tensor,
        signs: Tensor,
        dim: usize,
    },
}

impl Sketch {
    fn new(parameters: usize, dim: usize, seed: u64) -> Sketch {
        if parameters <= dim {
            return Sketch::Exact;
        }
        let mut rng = SplitMix64::derive(seed, "explain-countsketch");
        let buckets: Vec<i64> = (0..parameters)
            .map(|_| rng.below(dim as u64) as i64)
            .collect();
        let signs: Vec<f32> = (0..parameters)
            .map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 })
            .collect();
        Sketch::Count {
            buckets: Tensor::from_slice(&buckets),
            signs: Tensor::from_slice(&signs),
            dim,
        }
    }

    fn apply(&self, g: &ParamVec) -> Tensor {
        let flat = Tensor::cat(
            &g.iter()
                .map(|t| {
                    t.to_device(tch::Device::Cpu)
                        .to_kind(Kind::Float)
                        .view([-1])
                })
                .collect::<Vec<_>>(),
            0,
        );
        match self {
            Sketch::Exact => flat,
            Sketch::Count {
                buckets,
                signs,
                dim,
            } => Tensor::zeros([*dim as i64], (Kind::Float, tch::Device::Cpu)).index_add(
                0,
                buckets,
                &(flat * signs),
            ),
        }
    }

    fn projection(&self, parameters: usize) -> Projection {
        match self {
            Sketch::Exact => Projection {
                kind: "exact".into(),
                dim: parameters,
                parameters,
            },
            Sketch::Count { dim, .. } => Projection {
                kind: "countsketch".into(),
                dim: *dim,
                parameters,
            },
        }
    }
}

/// What the cache was computed from; a cache that does not match is computed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CacheKey {
    weights_sha256: String,
    params: String,
    sketch_dim: usize,
    seed: u64,
    rows: Vec<usize>,
}

impl Explainer {
    /// Loads the model in `model_dir` and the training set of the run in `run_dir` (its
    /// `run.json` and `split.json`), and reads or computes the cached training gradients and
    /// embeddings, reporting progress to `monitor`.
    pub fn open(
        model_dir: &Path,
        run_dir: &Path,
        cfg: &ExplainConfig,
        device: tch::Device,
        monitor: &mut dyn Monitor,
    ) -> Result<Explainer> {
        if cfg.top == 0 || cfg.sketch_dim == 0 {
            return Err(Error::param("top", "top and sketch_dim must be positive"));
        }
        let model = Model::load(model_dir, device)?;
        if model.meta.task != Task::Regression {
            return Err(Error::Unsupported(
                "lipo explain explains regression models; this one is a classifier".into(),
            ));
        }
        let (data, rows) = training_set(&model, run_dir)?;
        let (mean, sd) = (model.meta.label_mean, model.meta.label_sd.max(1e-12));
        let seqs: Vec<Vec<u32>> = rows.iter().map(|&r| data.records[r].ids.clone()).collect();
        let targets: Vec<f64> = rows
            .iter()
            .map(|&r| (data.records[r].label.unwrap_or(mean) - mean) / sd)
            .collect();
        let params = influence::select_params(&model, &cfg.params)?;
        let parameters: usize = params.iter().map(|(_, t)| t.numel()).sum();
        let train = Examples::prepare(&model, &cfg.params, &seqs, &targets)?;
        let sketch = Sketch::new(parameters, cfg.sketch_dim, cfg.seed);
        let key = CacheKey {
            weights_sha256: crate::fsutil::sha256_file(
                &model_dir.join(crate::model::files::WEIGHTS),
            )?,
            params: cfg.params.to_string(),
            sketch_dim: cfg.sketch_dim,
            seed: cfg.seed,
            rows: rows.clone(),
        };
        let cache = run_dir.join(CACHE_DIR);
        let (gradients, embeddings) = match read_cache(&cache, &key)? {
            Some(c) => c,
            None => {
                let c = compute_cache(&model, &params, &train, &seqs, &sketch, monitor)?;
                write_cache(&cache, &key, &c)?;
                c
            }
        };
        let projection = sketch.projection(parameters);
        Ok(Explainer {
            model,
            projection,
            cfg: cfg.clone(),
            params,
            data,
            rows,
            train,
            sketch,
            gradients,
            embeddings,
        })
    }

    /// Training molecules of the run.
    pub fn training_molecules(&self) -> usize {
        self.rows.len()
    }

    /// Table rows of the training molecules, in the order of [`Scores::influence`].
    pub fn training_rows(&self) -> &[usize] {
        &self.rows
    }

    /// Explains the prediction of `smiles`: the training molecules with the largest positive
    /// and negative influence on it, and its nearest training molecules by embedding.
    pub fn explain(&self, smiles: &str) -> Result<Explanation> {
        let ids = self.model.tokenizer.encode(smiles)?;
        let Scores {
            influence: scores,
            lissa_scale,
            lissa_converged,
        } = self.scores_of(smiles, &ids)?;
        let n = self.rows.len() as f64;
        let attribution = |i: usize| {
            let rec = &self.data.records[self.rows[i]];
            Attribution {
                row: self.rows[i],
                smiles: rec.smiles.clone(),
                label: rec.label.unwrap_or(f64::NAN),
                influence: scores[i],
                removal_shift: -scores[i] / n,
            }
        };
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let top = self.cfg.top.min(order.len());
        let positive = order
            .iter()
            .take(top)
            .filter(|&&i| scores[i] > 0.0)
            .map(|&i| attribution(i))
            .collect();
        let negative = order
            .iter()
            .rev()
            .take(top)
            .filter(|&&i| scores[i] < 0.0)
            .map(|&i| attribution(i))
            .collect();
        let prediction = crate::predict::predict(&self.model, std::slice::from_ref(&ids), 1)?[0];
        Ok(Explanation {
            smiles: smiles.to_string(),
            prediction,
            label_name: self
                .model
                .meta
                .label_name
                .clone()
                .unwrap_or_else(|| "prediction".into()),
            params: self.cfg.params.to_string(),
            training_molecules: self.rows.len(),
            projection: self.projection.clone(),
            lissa_scale,
            lissa_converged,
            positive,
            negative,
            neighbours: self.neighbours(&ids, top)?,
        })
    }

    /// The `k` training molecules nearest to `smiles` by pooled embedding, closest first.
    pub fn nearest(&self, smiles: &str, k: usize) -> Result<Vec<Neighbour>> {
        let ids = self.model.tokenizer.encode(smiles)?;
        self.neighbours(&ids, k)
    }

    /// I(z, x) of every training molecule z on the prediction of `smiles`, in the order of
    /// [`Explainer::training_rows`].
    pub fn scores(&self, smiles: &str) -> Result<Scores> {
        let ids = self.model.tokenizer.encode(smiles)?;
        self.scores_of(smiles, &ids)
    }

    fn scores_of(&self, smiles: &str, ids: &[u32]) -> Result<Scores> {
        let query = Examples::prepare(&self.model, &self.cfg.params, &[ids.to_vec()], &[0.0])?;
        let sd = self.model.meta.label_sd;
        let grad_f: ParamVec = influence::output_gradient(&self.model, &self.params, &query, 0)?
            .into_iter()
            .map(|g| g * sd)
            .collect();
        let solved = influence::lissa(
            &self.model,
            &self.params,
            &self.train,
            &grad_f,
            &self.cfg.lissa,
        )?;
        let s = self.sketch.apply(&solved.value);
        // I(z, x) = −sᵀ∇ℓ(z) for every training molecule at once.
        let influence: Vec<f64> = Vec::<f64>::try_from(
            self.gradients
                .matmul(&s.unsqueeze(1))
                .squeeze_dim(1)
                .neg()
                .to_kind(Kind::Double),
        )?;
        if let Some(bad) = influence.iter().find(|v| !v.is_finite()) {
            return Err(Error::Training(format!(
                "an influence on {smiles:?} came out {bad}"
            )));
        }
        Ok(Scores {
            influence,
            lissa_scale: solved.scale,
            lissa_converged: solved.converged,
        })
    }

    /// The `top` training molecules nearest to `ids` by pooled embedding.
    fn neighbours(&self, ids: &[u32], top: usize) -> Result<Vec<Neighbour>> {
        let e = crate::predict::embed(&self.model, &[ids], 1)?.remove(0);
        let e = Tensor::from_slice(&e).unsqueeze(0);
        let d: Vec<f64> = Vec::<f64>::try_from(
            (&self.embeddings - e)
                .square()
                .sum_dim_intlist(1, false, Kind::Double)
                .sqrt(),
        )?;
        let mut order: Vec<usize> = (0..d.len()).collect();
        order.sort_by(|&a, &b| d[a].total_cmp(&d[b]));
        Ok(order
            .into_iter()
            .take(top)
            .map(|i| {
                let rec = &self.data.records[self.rows[i]];
                Neighbour {
                    row: self.rows[i],
                    smiles: rec.smiles.clone(),
                    label: rec.label.unwrap_or(f64::NAN),
                    distance: d[i],
                }
            })
            .collect())
    }
}

/// The run's table (with its extra rows) read with the model's tokenizer, and its training
/// rows as the run trained on them.
fn training_set(model: &Model, run_dir: &Path) -> Result<(Dataset, Vec<usize>)> {
    let run: FinetuneRun = crate::fsutil::read_json(&run_dir.join(files::RUN))?;
    let mut split: crate::data::Split = crate::fsutil::read_json(&run_dir.join(files::SPLIT))?;
    let mut data = crate::train::load_data(&run, &model.tokenizer)?;
    let n = data.records.len();
    if let Some(&r) = split.train.iter().chain(&split.valid).find(|&&r| r >= n) {
        return Err(Error::BadFile {
            path: run_dir.join(files::SPLIT),
            reason: format!("row {r} is beyond the {n} rows of {}", run.data.display()),
        });
    }
    if let Some(extra) = &run.extra {
        crate::train::add_extra_rows(&mut data, &mut split, extra, &model.tokenizer)?;
    }
    split.train.retain(|r| !run.train.exclude_rows.contains(r));
    if split.train.is_empty() {
        return Err(Error::BadFile {
            path: run_dir.join(files::SPLIT),
            reason: "the run has no training rows".into(),
        });
    }
    Ok((data, split.train))
}

/// Training gradients (stored form) and pooled embeddings of every training molecule.
fn compute_cache(
    model: &Model,
    params: &[(String, Tensor)],
    train: &Examples,
    seqs: &[Vec<u32>],
    sketch: &Sketch,
    monitor: &mut dyn Monitor,
) -> Result<(Tensor, Tensor)> {
    let n = train.len();
    monitor.event(&Event::Start {
        stage: "explain: training gradients".into(),
        total: n as u64,
    });
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let g = influence::gradient(model, params, train, &[i], 1)?;
        rows.push(sketch.apply(&g));
        let go_on = monitor.event(&Event::Step {
            step: i as u64 + 1,
            total: n as u64,
            loss: 0.0,
        });
        if !go_on {
            return Err(Error::Cancelled(
                "stopped while caching training gradients; nothing was written".into(),
            ));
        }
    }
    let embeddings: Vec<f32> = crate::predict::embed(model, seqs, 64)?
        .into_iter()
        .flatten()
        .collect();
    let h = model.config.hidden_size as i64;
    Ok((
        Tensor::stack(&rows, 0),
        Tensor::from_slice(&embeddings).view([-1, h]),
    ))
}

fn cache_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("cache.json"), dir.join("cache.safetensors"))
}

/// The cached gradients and embeddings when `key` matches the cache in `dir`.
fn read_cache(dir: &Path, key: &CacheKey) -> Result<Option<(Tensor, Tensor)>> {
    let (meta, tensors) = cache_files(dir);
    if !meta.is_file() || !tensors.is_file() {
        return Ok(None);
    }
    let found: CacheKey = match crate::fsutil::read_json(&meta) {
        Ok(k) => k,
        Err(_) => return Ok(None),
    };
    if &found != key {
        return Ok(None);
    }
    let named = Tensor::read_safetensors(&tensors).map_err(|e| Error::BadFile {
        path: tensors.clone(),
        reason: e.to_string(),
    })?;
    let get = |name: &str| {
        named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.shallow_clone())
    };
    Ok(get("gradients").zip(get("embeddings")))
}

/// Writes the cache (lipo's own files in `dir`, replaced atomically).
fn write_cache(dir: &Path, key: &CacheKey, c: &(Tensor, Tensor)) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (meta, tensors) = cache_files(dir);
    let tmp = crate::fsutil::temp_file_for(&tensors)?;
    Tensor::write_safetensors(&[("gradients", &c.0), ("embeddings", &c.1)], tmp.path()).map_err(
        |e| Error::BadFile {
            path: tensors.clone(),
            reason: e.to_string(),
        },
    )?;
    crate::fsutil::persist(tmp, &tensors)?;
    crate::fsutil::write_json(&meta, key)
}
