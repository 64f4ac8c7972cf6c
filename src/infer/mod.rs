//! Inference on exported [bundles](crate::bundle) with ONNX Runtime (`ort`), without libtorch.
//!
//! A [`Predictor`] owns a small pool of ONNX Runtime sessions over one bundle. It is
//! `Send + Sync`: any number of threads may call [`Predictor::predict`] at once; each call
//! takes a free session from the pool (or waits for one), so up to
//! [`PredictorOptions::sessions`] runs proceed in parallel, each using
//! [`PredictorOptions::threads`] intra-op threads. Molecules are batched by similar length so
//! that short molecules are not padded to long ones, and a SMILES that cannot be tokenized
//! gets its own error without failing the rest of the batch. A graph-model bundle
//! ([`BundleInfo::graph`]) reads molecule graphs instead of token ids: the SMILES are
//! featurised here, in Rust ([`crate::graph`]), so callers pass SMILES either way.

pub mod runtime;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use crate::bundle::{self, io, keys};
use crate::error::{Error, Result};
use crate::model::Task;
use crate::tokenizer::{length_sorted_batches, pad_batch, PaddedBatch, SmilesTokenizer};

/// How a [`Predictor`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictorOptions {
    /// Intra-op threads of each session (0: ONNX Runtime's default, one per core).
    pub threads: usize,
    /// Sessions in the pool: how many runs may proceed at once (each holds its own copy of
    /// the weights).
    pub sessions: usize,
    /// Molecules per run.
    pub batch_size: usize,
    /// The ONNX Runtime library to use when `ORT_DYLIB_PATH` is not set (see [`runtime`]).
    pub library: Option<PathBuf>,
}

impl Default for PredictorOptions {
    fn default() -> Self {
        PredictorOptions {
            threads: 0,
            sessions: 1,
            batch_size: 64,
            library: None,
        }
    }
}

/// What a bundle's graph says about itself (its metadata).
#[derive(Debug, Clone, PartialEq)]
pub struct BundleInfo {
    /// lipo version that exported it.
    pub lipo_version: String,
    /// Vocabulary hash of the tokenizer it expects (empty for a graph model).
    pub vocab_hash: String,
    /// Whether the graph reads molecule graphs ([`io::ATOM_FEATURES`] …: a graph model, no
    /// tokenizer) rather than token ids.
    pub graph: bool,
    /// Regression (label units) or classification (probability).
    pub task: Task,
    /// Header of the label column, if known.
    pub label_name: Option<String>,
    /// Training label mean (applied inside the graph).
    pub label_mean: f64,
    /// Training label sd (applied inside the graph).
    pub label_sd: f64,
    /// Classification threshold in label units, if any.
    pub threshold: Option<f64>,
    /// Length covered by the reference rotary tables (longer inputs work too).
    pub max_length: usize,
    /// How the weights are stored: `none` (float32) or `int8`.
    pub quantization: String,
    /// Test-time augmentation: [`Predictor::predict`] averages each SMILES as given and this
    /// many random SMILES of the same molecule (0: none).
    pub tta: usize,
    /// What an ensemble bundle (`lipo finetune --ensemble`) says about itself; `None` for a
    /// single model.
    pub ensemble: Option<EnsembleInfo>,
    /// Whether SMILES are written in lipo's canonical form before encoding
    /// ([`crate::smiles::canonical`]): every writing of a molecule gets one prediction.
    pub canonical: bool,
}

/// The metadata of an ensemble bundle: its uncertainty and applicability domain.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleInfo {
    /// Members whose mean is the prediction.
    pub members: usize,
    /// What the sd scales: `domain` (the domain score) or `spread` (the members' sample sd).
    pub sd_method: String,
    /// Factor applied to it (fitted on out-of-fold molecules so that ±1.96 sd covers 95 % of
    /// them).
    pub sd_scale: f64,
    /// Domain score above which a molecule is out of domain.
    pub domain_threshold: f64,
    /// Nearest training molecules behind the domain score.
    pub domain_neighbours: usize,
    /// Training molecules.
    pub training_molecules: usize,
    /// Out-of-fold RMSE of the members on the training molecules (label units).
    pub out_of_fold_rmse: f64,
}

/// One molecule's prediction with what the bundle says about trusting it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Label units (regression) or probability (classification); an ensemble's mean.
    pub value: f64,
    /// Calibrated sd (ensembles; `None` for a single model).
    pub sd: Option<f64>,
    /// Applicability-domain score: mean distance to the nearest training molecules
    /// (ensembles; `None` for a single model).
    pub domain: Option<f64>,
    /// Whether the domain score is at most the bundle's threshold (ensembles).
    pub in_domain: Option<bool>,
}

/// A batch's outputs, one value per row ([`Predictor::run_batch_detail`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutputs {
    /// `prediction`.
    pub prediction: Vec<f32>,
    /// `prediction_sd` (ensembles).
    pub sd: Option<Vec<f32>>,
    /// `domain` (ensembles).
    pub domain: Option<Vec<f32>>,
}

/// Predictions from an exported bundle through ONNX Runtime; see the [module](self) docs for
/// threading.
pub struct Predictor {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    /// The bundle's tokenizer (`None` for a graph model).
    tokenizer: Option<SmilesTokenizer>,
    info: BundleInfo,
    batch_size: usize,
    path: PathBuf,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("path", &self.path)
            .field("sessions", &self.sessions.len())
            .field("info", &self.info)
            .finish()
    }
}

fn ort_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::OnnxRuntime(format!("{}: {what}: {e}", path.display()))
}

fn read_info(session: &Session, path: &Path) -> Result<BundleInfo> {
    let md = session
        .metadata()
        .map_err(|e| ort_err(path, "reading metadata", e))?;
    let get = |k: &str| md.custom(k).unwrap_or_default();
    let need = |k: &str| {
        md.custom(k).ok_or_else(|| {
            Error::model(
                path,
                format!("the graph has no {k:?} metadata (was it exported by lipo?)"),
            )
        })
    };
    let num = |k: &str, v: String| {
        v.parse::<f64>()
            .map_err(|_| Error::model(path, format!("metadata {k:?} = {v:?} is not a number")))
    };
    let task = match need(keys::TASK)?.as_str() {
        "regression" => Task::Regression,
        "classification" => Task::Classification,
        other => {
            return Err(Error::model(
                path,
                format!("metadata task {other:?} is not regression or classification"),
            ))
        }
    };
    let threshold = match get(keys::THRESHOLD) {
        t if t.is_empty() => None,
        t => Some(num(keys::THRESHOLD, t)?),
    };
    let tta = match get(keys::TTA) {
        t if t.is_empty() => 0,
        t => {
            let v = num(keys::TTA, t)?;
            if !(0.0..=crate::model::MAX_TTA as f64).contains(&v) || v.fract() != 0.0 {
                return Err(Error::model(
                    path,
                    format!(
                        "metadata {:?} = {v} is not a whole number from 0 to {}",
                        keys::TTA,
                        crate::model::MAX_TTA
                    ),
                ));
            }
            v as usize
        }
    };
    let ensemble = read_ensemble_info(&|k| md.custom(k), path)?;
    let graph = match get(keys::INPUT).as_str() {
        "" | "tokens" => false,
        "graph" => true,
        other => {
            return Err(Error::model(
                path,
                format!(
                    "metadata {:?} = {other:?} is not tokens or graph",
                    keys::INPUT
                ),
            ))
        }
    };
    if graph {
        let want = crate::graph::GraphConfig::default().features_key();
        let have = get(keys::GRAPH_FEATURES);
        if have != want {
            return Err(Error::model(
                path,
                format!(
                    "the graph model expects feature layout {have:?} (version:atom,bond); this lipo makes {want}: train and export it again"
                ),
            ));
        }
    }
    let label_sd = num(keys::LABEL_SD, need(keys::LABEL_SD)?)?;
    let label_mean = num(keys::LABEL_MEAN, need(keys::LABEL_MEAN)?)?;
    if !(label_mean.is_finite() && label_sd.is_finite() && label_sd > 0.0) {
        return Err(Error::model(
            path,
            format!("metadata label_mean = {label_mean}, label_sd = {label_sd} are not usable"),
        ));
    }
    Ok(BundleInfo {
        lipo_version: get(keys::LIPO_VERSION),
        vocab_hash: if graph {
            get(keys::VOCAB_HASH)
        } else {
            need(keys::VOCAB_HASH)?
        },
        graph,
        task,
        label_name: Some(get(keys::LABEL_NAME)).filter(|s| !s.is_empty()),
        label_mean,
        label_sd,
        threshold,
        max_length: num(keys::MAX_LENGTH, get(keys::MAX_LENGTH))
            .map(|v| v as usize)
            .unwrap_or(0),
        quantization: Some(get(keys::QUANTIZATION))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".into()),
        tta,
        ensemble,
        canonical: match get(keys::CANONICAL).as_str() {
            "" | "false" => false,
            "true" => true,
            other => {
                return Err(Error::model(
                    path,
                    format!(
                        "metadata {:?} = {other:?} is not true or false",
                        keys::CANONICAL
                    ),
                ))
            }
        },
    })
}

/// The ensemble part of a bundle's metadata (`custom` reads one key); `None` for a single
/// model.
fn read_ensemble_info(
    custom: &dyn Fn(&str) -> Option<String>,
    path: &Path,
) -> Result<Option<EnsembleInfo>> {
    if custom(keys::MEMBERS).is_none() {
        return Ok(None);
    }
    let num = |k: &str, v: Option<String>| -> Result<f64> {
        let v = v.ok_or_else(|| Error::model(path, format!("the graph has no {k:?} metadata")))?;
        v.parse::<f64>()
            .map_err(|_| Error::model(path, format!("metadata {k:?} = {v:?} is not a number")))
    };
    let field = |k: &str| num(k, custom(k));
    let whole = |k: &str| -> Result<usize> {
        let v = field(k)?;
        if v >= 0.0 && v.fract() == 0.0 && v <= 1e9 {
            Ok(v as usize)
        } else {
            Err(Error::model(
                path,
                format!("metadata {k:?} = {v} is not a count"),
            ))
        }
    };
    Ok(Some(EnsembleInfo {
        members: whole(keys::MEMBERS)?,
        sd_method: match custom(keys::SD_METHOD).as_deref() {
            None | Some("spread") => "spread".into(),
            Some("domain") => "domain".into(),
            Some(other) => {
                return Err(Error::model(
                    path,
                    format!(
                        "metadata {:?} = {other:?} is not spread or domain",
                        keys::SD_METHOD
                    ),
                ))
            }
        },
        sd_scale: field(keys::SD_SCALE)?,
        domain_threshold: field(keys::DOMAIN_THRESHOLD)?,
        domain_neighbours: whole(keys::DOMAIN_NEIGHBOURS)?,
        training_molecules: whole(keys::TRAINING_MOLECULES)?,
        out_of_fold_rmse: field(keys::OUT_OF_FOLD_RMSE)?,
    }))
}

impl Predictor {
    /// Opens the bundle at `path` (its folder or its `model.onnx`).
    pub fn open(path: &Path, options: &PredictorOptions) -> Result<Predictor> {
        let dir = bundle::resolve(path)?;
        let onnx = dir.join(bundle::MODEL);
        let env = runtime::environment(options.library.as_deref())?;
        let bytes = std::fs::read(&onnx).map_err(|e| Error::io(&onnx, e))?;
        let mut builder = Session::builder(&env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::All)?))
            .and_then(|b| Ok(b.with_intra_threads(options.threads)?))
            .and_then(|b| Ok(b.with_inter_threads(1)?))
            .map_err(|e| ort_err(&onnx, "configuring the session", e))?;
        let mut sessions = Vec::new();
        for _ in 0..options.sessions.max(1) {
            let s = builder
                .commit_from_memory(&bytes)
                .map_err(|e| ort_err(&onnx, "loading the graph", e))?;
            sessions.push(Mutex::new(s));
        }
        let info = {
            let s = sessions[0].lock().unwrap_or_else(|e| e.into_inner());
            read_info(&s, &onnx)?
        };
        let tokenizer = if info.graph {
            None
        } else {
            let path = dir.join(bundle::TOKENIZER);
            if !path.is_file() {
                return Err(Error::model(
                    &dir,
                    format!(
                        "not a lipo bundle: no {} beside its token-reading graph",
                        bundle::TOKENIZER
                    ),
                ));
            }
            let tokenizer = SmilesTokenizer::load(&path)?;
            if info.vocab_hash != tokenizer.vocab_hash() {
                return Err(Error::model(
                    &dir,
                    format!(
                        "{} does not match the graph's vocabulary (hash {} vs {})",
                        bundle::TOKENIZER,
                        tokenizer.vocab_hash(),
                        info.vocab_hash
                    ),
                ));
            }
            Some(tokenizer.with_canonical(info.canonical))
        };
        Ok(Predictor {
            sessions,
            next: AtomicUsize::new(0),
            tokenizer,
            info,
            batch_size: options.batch_size.max(1),
            path: dir,
        })
    }

    /// The bundle's metadata.
    pub fn info(&self) -> &BundleInfo {
        &self.info
    }

    /// The bundle's tokenizer (`None` for a graph model, which reads molecule graphs).
    pub fn tokenizer(&self) -> Option<&SmilesTokenizer> {
        self.tokenizer.as_ref()
    }

    /// The tokenizer, or an error saying that a graph model takes SMILES, not tokens.
    fn need_tokenizer(&self) -> Result<&SmilesTokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::model(
                &self.path,
                "is a graph model: it reads molecule graphs made from SMILES, not token ids",
            )
        })
    }

    /// The bundle folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Molecules per run.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// A free session, or the next one in turn when all are busy.
    fn session(&self) -> MutexGuard<'_, Session> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if let Ok(s) = self.sessions[(start + k) % n].try_lock() {
                return s;
            }
        }
        self.sessions[start % n]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one padded batch; returns one prediction per row.
    pub fn run_batch(&self, batch: &PaddedBatch) -> Result<Vec<f32>> {
        Ok(self.run_batch_detail(batch)?.prediction)
    }

    /// Runs one padded batch; returns every output of the graph, one value per row.
    pub fn run_batch_detail(&self, batch: &PaddedBatch) -> Result<BatchOutputs> {
        if batch.batch == 0 {
            return Ok(BatchOutputs {
                prediction: vec![],
                sd: self.info.ensemble.as_ref().map(|_| vec![]),
                domain: self.info.ensemble.as_ref().map(|_| vec![]),
            });
        }
        self.need_tokenizer()?;
        let shape = [batch.batch, batch.len];
        let e = |what: &str, err: ort::Error| ort_err(&self.path, what, err);
        let ids = TensorRef::from_array_view((shape, batch.ids.as_slice()))
            .map_err(|x| e("input_ids", x))?;
        let mask = TensorRef::from_array_view((shape, batch.mask.as_slice()))
            .map_err(|x| e("attention_mask", x))?;
        let mut session = self.session();
        let outputs = session
            .run(ort::inputs![io::INPUT_IDS => ids, io::ATTENTION_MASK => mask])
            .map_err(|x| e("running the graph", x))?;
        self.read_outputs(&outputs, batch.batch)
    }

    /// Runs one stacked batch of molecule graphs (a graph-model bundle); one value per
    /// molecule.
    pub fn run_graph_batch(&self, batch: &crate::graph::GraphArrays) -> Result<BatchOutputs> {
        let n = batch.molecules;
        if n == 0 {
            return Ok(BatchOutputs {
                prediction: vec![],
                sd: self.info.ensemble.as_ref().map(|_| vec![]),
                domain: self.info.ensemble.as_ref().map(|_| vec![]),
            });
        }
        if !self.info.graph {
            return Err(Error::model(
                &self.path,
                "reads token ids, not molecule graphs",
            ));
        }
        let e = |what: &str, err: ort::Error| ort_err(&self.path, what, err);
        let (atoms, bonds) = (batch.atoms(), batch.bonds());
        let (fa, fb) = (crate::graph::ATOM_FEATURES, crate::graph::BOND_FEATURES);
        let ax = TensorRef::from_array_view(([atoms, fa], batch.atom_features.as_slice()))
            .map_err(|x| e(io::ATOM_FEATURES, x))?;
        let bx = TensorRef::from_array_view(([bonds, fb], batch.bond_features.as_slice()))
            .map_err(|x| e(io::BOND_FEATURES, x))?;
        fn index<'v>(v: &'v [i64]) -> std::result::Result<TensorRef<'v, i64>, ort::Error> {
            TensorRef::from_array_view(([v.len()], v))
        }
        let src = index(&batch.bond_src).map_err(|x| e(io::BOND_SRC, x))?;
        let dst = index(&batch.bond_dst).map_err(|x| e(io::BOND_DST, x))?;
        let rev = index(&batch.bond_rev).map_err(|x| e(io::BOND_REV, x))?;
        let mol = index(&batch.atom_mol).map_err(|x| e(io::ATOM_MOL, x))?;
        let counts = TensorRef::from_array_view(([n], batch.mol_atoms.as_slice()))
            .map_err(|x| e(io::MOL_ATOMS, x))?;
        let mut session = self.session();
        let outputs = session
            .run(ort::inputs![
                io::ATOM_FEATURES => ax,
                io::BOND_FEATURES => bx,
                io::BOND_SRC => src,
                io::BOND_DST => dst,
                io::BOND_REV => rev,
                io::ATOM_MOL => mol,
                io::MOL_ATOMS => counts
            ])
            .map_err(|x| e("running the graph", x))?;
        self.read_outputs(&outputs, n)
    }

    /// The graph's outputs for `n` molecules.
    fn read_outputs(
        &self,
        outputs: &ort::session::SessionOutputs<'_>,
        n: usize,
    ) -> Result<BatchOutputs> {
        let e = |what: &str, err: ort::Error| ort_err(&self.path, what, err);
        let read = |name: &str| -> Result<Vec<f32>> {
            let value = outputs.get(name).ok_or_else(|| {
                Error::model(&self.path, format!("the graph has no output {name:?}"))
            })?;
            let (_, y) = value
                .try_extract_tensor::<f32>()
                .map_err(|x| e(&format!("reading {name}"), x))?;
            if y.len() != n {
                return Err(Error::OnnxRuntime(format!(
                    "{}: the graph returned {} values of {name} for {n} molecules",
                    self.path.display(),
                    y.len(),
                )));
            }
            Ok(y.to_vec())
        };
        let ensemble = self.info.ensemble.is_some();
        Ok(BatchOutputs {
            prediction: read(io::PREDICTION)?,
            sd: ensemble.then(|| read(io::PREDICTION_SD)).transpose()?,
            domain: ensemble.then(|| read(io::DOMAIN)).transpose()?,
        })
    }

    /// Predictions for encoded molecules (token ids with `<bos>`/`<eos>`), in input order,
    /// run in length-sorted batches.
    pub fn predict_encoded<S: AsRef<[u32]>>(&self, seqs: &[S]) -> Result<Vec<f64>> {
        self.predict_encoded_batched(seqs, self.batch_size)
    }

    /// [`Predictor::predict_encoded`] with `batch_size` molecules per run.
    pub fn predict_encoded_batched<S: AsRef<[u32]>>(
        &self,
        seqs: &[S],
        batch_size: usize,
    ) -> Result<Vec<f64>> {
        Ok(self
            .detail_encoded(seqs, batch_size)?
            .into_iter()
            .map(|p| p.value)
            .collect())
    }

    /// Every output for encoded molecules, in input order, in length-sorted batches of
    /// `batch_size`.
    pub fn detail_encoded<S: AsRef<[u32]>>(
        &self,
        seqs: &[S],
        batch_size: usize,
    ) -> Result<Vec<Prediction>> {
        let mut out = vec![self.prediction(f64::NAN, None, None); seqs.len()];
        for idx in length_sorted_batches(seqs, batch_size) {
            let rows: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].as_ref()).collect();
            let y = self.run_batch_detail(&pad_batch(&rows))?;
            for (r, &i) in idx.iter().enumerate() {
                let at = |v: &Option<Vec<f32>>| v.as_ref().map(|v| v[r] as f64);
                out[i] = self.prediction(y.prediction[r] as f64, at(&y.sd), at(&y.domain));
            }
        }
        Ok(out)
    }

    /// A [`Prediction`] with the in-domain flag from the bundle's threshold.
    fn prediction(&self, value: f64, sd: Option<f64>, domain: Option<f64>) -> Prediction {
        let threshold = self.info.ensemble.as_ref().map(|e| e.domain_threshold);
        Prediction {
            value,
            sd,
            domain,
            in_domain: domain.zip(threshold).map(|(d, t)| d <= t),
        }
    }

    /// Predictions for SMILES, in input order: label units (regression) or probabilities
    /// (classification), averaged over random SMILES of each molecule when the bundle
    /// records test-time augmentation ([`BundleInfo::tta`]; the same variants as lipo's
    /// tch path). A SMILES that cannot be tokenized gets its own [`Error::InvalidSmiles`];
    /// the outer error is for ONNX Runtime failures.
    pub fn predict<S: AsRef<str>>(&self, smiles: &[S]) -> Result<Vec<Result<f64>>> {
        Ok(self
            .predict_detail(smiles)?
            .into_iter()
            .map(|p| p.map(|p| p.value))
            .collect())
    }

    /// [`Predictor::predict`] with the calibrated sd and the applicability domain of an
    /// ensemble bundle (`None` in those fields for a single model). With test-time
    /// augmentation, each field is the mean over the molecule's writings.
    pub fn predict_detail<S: AsRef<str>>(&self, smiles: &[S]) -> Result<Vec<Result<Prediction>>> {
        let Some(tokenizer) = &self.tokenizer else {
            return self.predict_graph_detail(smiles);
        };
        let encoded: Vec<Result<Vec<u32>>> = smiles
            .iter()
            .map(|s| tokenizer.encode(s.as_ref()))
            .collect();
        let ok_rows: Vec<usize> = (0..smiles.len()).filter(|&i| encoded[i].is_ok()).collect();
        let mut preds = if self.info.tta > 0 {
            let ok_smiles: Vec<&str> = ok_rows.iter().map(|&i| smiles[i].as_ref()).collect();
            let (seqs, owner) =
                crate::augment::encoded_variants(&ok_smiles, self.info.tta, tokenizer)?;
            let all = self.detail_encoded(&seqs, self.batch_size)?;
            self.mean_by_owner(&all, &owner, ok_smiles.len())
        } else {
            let ok: Vec<&[u32]> = ok_rows
                .iter()
                .filter_map(|&i| encoded[i].as_ref().ok().map(|v| v.as_slice()))
                .collect();
            self.detail_encoded(&ok, self.batch_size)?
        }
        .into_iter();
        Ok(encoded
            .into_iter()
            .map(|e| {
                e.map(|_| {
                    preds
                        .next()
                        .unwrap_or_else(|| self.prediction(f64::NAN, None, None))
                })
            })
            .collect())
    }

    /// [`Predictor::predict_detail`] for a graph model: each SMILES featurised in Rust, in
    /// batches of [`Predictor::batch_size`] molecules in input order.
    fn predict_graph_detail<S: AsRef<str>>(&self, smiles: &[S]) -> Result<Vec<Result<Prediction>>> {
        let graphs: Vec<Result<crate::graph::MolGraph>> = smiles
            .iter()
            .map(|s| crate::graph::featurize_smiles(s.as_ref()))
            .collect();
        let ok: Vec<&crate::graph::MolGraph> =
            graphs.iter().filter_map(|g| g.as_ref().ok()).collect();
        let mut preds = Vec::with_capacity(ok.len());
        for chunk in ok.chunks(self.batch_size) {
            let y = self.run_graph_batch(&crate::graph::GraphArrays::new(chunk))?;
            for r in 0..chunk.len() {
                let at = |v: &Option<Vec<f32>>| v.as_ref().map(|v| v[r] as f64);
                preds.push(self.prediction(y.prediction[r] as f64, at(&y.sd), at(&y.domain)));
            }
        }
        let mut preds = preds.into_iter();
        Ok(graphs
            .into_iter()
            .map(|g| {
                g.map(|_| {
                    preds
                        .next()
                        .unwrap_or_else(|| self.prediction(f64::NAN, None, None))
                })
            })
            .collect())
    }

    /// Each field of the predictions of every writing averaged per molecule.
    fn mean_by_owner(&self, all: &[Prediction], owner: &[usize], n: usize) -> Vec<Prediction> {
        let field = |f: &dyn Fn(&Prediction) -> Option<f64>| -> Option<Vec<f64>> {
            let v: Option<Vec<f64>> = all.iter().map(f).collect();
            v.map(|v| crate::augment::mean_by_owner(&v, owner, n))
        };
        let value = field(&|p| Some(p.value)).unwrap_or_default();
        let sd = field(&|p| p.sd);
        let domain = field(&|p| p.domain);
        (0..n)
            .map(|i| {
                self.prediction(
                    value[i],
                    sd.as_ref().map(|v| v[i]),
                    domain.as_ref().map(|v| v[i]),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
