//! K-fold ensembles (`lipo finetune --ensemble K`): the rows that are not test are dealt into
//! K folds; member k is an ordinary fine-tuning run (its own folder, `run.json`, checkpoints)
//! that trains on the other folds and keeps the epoch that is best on fold k. When every
//! member has finished, [`finetune_ensemble`] gathers them:
//!
//! - **prediction**: the members' mean;
//! - **uncertainty**: the members' spread (sample sd), times one factor fitted on the
//!   out-of-fold molecules (each predicted by the member that did not train on it) so that
//!   95 % of them lie within ±1.96 calibrated sd (regression; classification keeps the raw
//!   spread of the probabilities);
//! - **applicability domain**: the mean Euclidean distance from a molecule's embedding (the
//!   members' mean of the mean-pooled encoder states) to its k nearest training molecules.
//!   A molecule is out of domain above the 95th percentile of the training molecules' own
//!   leave-one-out distances.
//!
//! The gathered ensemble (`metrics.json`, `domain.safetensors`, the members' `model/`
//! folders) is what `lipo export` turns into one ONNX graph.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::graph::{GraphModel, MolGraph};
use crate::metrics::Regression;
use crate::model::{Model, Task};
use crate::peft::LoadModel;
use crate::progress::{Event, Monitor};

use super::evaluate::raw_outputs;
use super::{files as run_files, finetune, FinetuneRun, Fold};
use records::{write_domain, write_rows};
pub use stats::{calibrate, coverage, knn_distance, quantile};

mod records;
mod stats;

/// Most members an ensemble may have.
pub const MAX_MEMBERS: usize = 32;

/// Share of held-out molecules the calibrated ±1.96 sd interval should cover.
pub const COVERAGE: f64 = 0.95;

/// Files in an ensemble folder (besides one fine-tuning run folder per member).
pub use crate::model::ensemble_files as files;

/// The settings of a K-fold ensemble: written to `ensemble.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleRun {
    /// The run every member repeats: its `train.seed` chooses the test rows and the folds,
    /// and its `train.valid_frac` is not used (each member validates on its fold).
    pub base: FinetuneRun,
    /// Members (= folds), 2 to [`MAX_MEMBERS`].
    pub members: usize,
    /// Nearest training molecules whose mean distance is the domain score.
    #[serde(default = "default_neighbours")]
    pub domain_neighbours: usize,
}

fn default_neighbours() -> usize {
    5
}

impl EnsembleRun {
    /// K members of `base`, with the default domain neighbours.
    pub fn new(base: FinetuneRun, members: usize) -> EnsembleRun {
        EnsembleRun {
            base,
            members,
            domain_neighbours: default_neighbours(),
        }
    }

    /// Member `k`'s run: `base` validated on fold `k`, with its own seed
    /// (`100 · seed + k + 1`) for weights, batch order and dropout.
    pub fn member(&self, k: usize) -> FinetuneRun {
        let seed = self.base.train.seed;
        let mut run = self.base.clone();
        run.fold = Some(Fold {
            index: k,
            count: self.members,
            split_seed: seed,
        });
        run.train.seed = seed.saturating_mul(100).saturating_add(k as u64 + 1);
        run
    }

    /// Member `k`'s run folder inside the ensemble folder `out`.
    pub fn member_dir(out: &Path, k: usize) -> PathBuf {
        files::member_dir(out, k)
    }

    fn validate(&self) -> Result<()> {
        if self.base.fold.is_some() {
            return Err(Error::param(
                "fold",
                "the base run of an ensemble has no fold of its own",
            ));
        }
        Fold {
            index: 0,
            count: self.members,
            split_seed: 0,
        }
        .validate()?;
        if self.domain_neighbours == 0 || self.domain_neighbours > 100 {
            return Err(Error::param(
                "domain_neighbours",
                format!("{} is not 1 to 100", self.domain_neighbours),
            ));
        }
        self.base.train.validate()
    }
}

/// What the calibrated sd of an ensemble scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdMethod {
    /// The members' sample sd (ensembles gathered before lipo chose `domain`, and
    /// classification ensembles, whose sd is the raw spread of the probabilities).
    #[default]
    Spread,
    /// The domain score: the mean distance to the nearest training molecules.
    ///
    /// On an out-of-fold molecule four of five members trained on it, so their spread there
    /// largely measures how far the one held-out member strays — the out-of-fold error
    /// itself — and a factor fitted on that spread is too small for new molecules (seed 0 of
    /// the MoLFormer ensemble: 0.873 test coverage where the out-of-fold rows give 0.95).
    /// The domain score of a training molecule is leave-one-out, so it means the same on
    /// out-of-fold and new molecules, and the factor fitted on it carries over.
    Domain,
}

/// The calibration lipo did not choose, measured the same way, for comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SdAlternative {
    /// The method.
    pub method: SdMethod,
    /// Its factor, fitted on the out-of-fold molecules.
    pub scale: f64,
    /// Test coverage of ±1.96 sd (absent without test rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_coverage: Option<f64>,
    /// Test Spearman correlation of |error| with the sd (absent without test rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_spearman_error_sd: Option<f64>,
}

/// Error and coverage of molecules binned by domain score.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainBin {
    /// Lower edge of the bin's domain score.
    pub from: f64,
    /// Upper edge (none for the out-of-domain bin).
    pub to: Option<f64>,
    /// Which percentiles of the training molecules' leave-one-out scores the edges are.
    pub percentiles: String,
    /// Molecules in the bin.
    pub n: usize,
    /// Their RMSE (label units; NaN when empty).
    #[serde(deserialize_with = "crate::metrics::nan_if_null")]
    pub rmse: f64,
    /// Their mean calibrated sd.
    #[serde(deserialize_with = "crate::metrics::nan_if_null")]
    pub mean_sd: f64,
}

/// The ensemble on the test rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnsembleTest {
    /// The members' mean against the labels.
    pub metrics: Regression,
    /// Each member alone.
    pub members: Vec<Regression>,
    /// Share of test molecules within ±1.96 calibrated sd (regression).
    #[serde(deserialize_with = "crate::metrics::nan_if_null")]
    pub coverage: f64,
    /// Spearman correlation between |error| and sd.
    #[serde(deserialize_with = "crate::metrics::nan_if_null")]
    pub spearman_error_sd: f64,
    /// Share of test molecules out of domain.
    pub out_of_domain_share: f64,
    /// Error by domain score: bins at the 50th, 80th and 95th percentiles of the training
    /// molecules' own scores; the last bin is out of domain.
    pub domain_bins: Vec<DomainBin>,
    /// Predicting the training mean everywhere.
    pub mean_predictor: Regression,
    /// Classification ensembles: accuracy, F1 and ROC-AUC of the members' mean probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<crate::metrics::Classification>,
}

/// What a gathered ensemble measured: written to `metrics.json`; `lipo export` reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnsembleReport {
    /// Members.
    pub members: usize,
    /// Seed of the test rows and folds.
    pub split_seed: u64,
    /// Regression or classification.
    pub task: Task,
    /// Rows the members trained and validated on (all folds), and test rows.
    pub sizes: [usize; 2],
    /// Each member's kept epoch.
    pub best_epochs: Vec<usize>,
    /// Out-of-fold predictions (each row by the member that did not train on it) against
    /// the labels.
    pub out_of_fold: Regression,
    /// What the calibrated sd scales ([`SdMethod`]; absent in older records: the spread).
    #[serde(default)]
    pub sd_method: SdMethod,
    /// Factor on the members' sample sd or on the domain score ([`EnsembleReport::sd_method`];
    /// 1 for classification).
    pub sd_scale: f64,
    /// The calibration not chosen (regression): the members' spread, for comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd_alternative: Option<SdAlternative>,
    /// Share of out-of-fold molecules within ±1.96 calibrated sd.
    #[serde(deserialize_with = "crate::metrics::nan_if_null")]
    pub out_of_fold_coverage: f64,
    /// Nearest neighbours behind the domain score.
    pub domain_neighbours: usize,
    /// Domain score above which a molecule is out of domain (the 95th percentile of the
    /// training molecules' leave-one-out scores).
    #[serde(deserialize_with = "crate::metrics::nan_if_null")]
    pub domain_threshold: f64,
    /// 50th, 80th and 95th percentiles of the training molecules' leave-one-out scores.
    pub domain_percentiles: [f64; 3],
    /// Mean and sd of the training labels (all folds).
    pub label_mean: f64,
    /// See `label_mean`.
    pub label_sd: f64,
    /// The test rows (absent when the ensemble trained on every row).
    pub test: Option<EnsembleTest>,
}

/// Runs (or resumes) the members of `run` in `out`, all of them or only member `only`, then
/// gathers the ensemble when every member has finished; returns its report then, `None`
/// while members are missing.
pub fn finetune_ensemble(
    run: &EnsembleRun,
    device: Device,
    out: &Path,
    only: Option<usize>,
    monitor: &mut dyn Monitor,
) -> Result<Option<EnsembleReport>> {
    run.validate()?;
    if let Some(k) = only.filter(|&k| k >= run.members) {
        return Err(Error::param(
            "member",
            format!("member {k} of {} does not exist", run.members),
        ));
    }
    claim(run, out)?;
    let metrics = out.join(files::METRICS);
    if metrics.is_file() {
        return fsutil::read_json(&metrics).map(Some);
    }
    for k in 0..run.members {
        if only.is_some_and(|o| o != k) {
            continue;
        }
        monitor.event(&Event::Message {
            text: format!("ensemble member {} of {}", k + 1, run.members),
        });
        finetune(
            &run.member(k),
            device,
            &EnsembleRun::member_dir(out, k),
            monitor,
        )?;
    }
    let finished = (0..run.members).all(|k| {
        EnsembleRun::member_dir(out, k)
            .join(run_files::METRICS)
            .is_file()
    });
    if !finished {
        return Ok(None);
    }
    monitor.event(&Event::Message {
        text: "gathering the ensemble: predictions, calibration, applicability domain".into(),
    });
    let report = gather(run, out, device)?;
    fsutil::write_json(&metrics, &report)?;
    Ok(Some(report))
}

/// Claims `out` for the ensemble and writes `ensemble.json`; a folder holding another
/// ensemble is refused.
fn claim(run: &EnsembleRun, out: &Path) -> Result<()> {
    fsutil::claim_dir(out, files::ENSEMBLE, "out")?;
    let path = out.join(files::ENSEMBLE);
    if path.is_file() {
        let previous: EnsembleRun = fsutil::read_json(&path)?;
        if &previous != run {
            return Err(Error::param(
                "out",
                format!(
                    "{} holds a different ensemble (see its ensemble.json); choose another folder",
                    out.display()
                ),
            ));
        }
        return Ok(());
    }
    fsutil::write_json(&path, run)
}

/// Every member's predictions (label units or probabilities) and the members' mean
/// embedding, for every row of the table.
struct MemberOutputs {
    preds: Vec<Vec<f64>>,
    embeddings: Vec<Vec<f32>>,
    best_epochs: Vec<usize>,
}

fn member_outputs(
    run: &EnsembleRun,
    out: &Path,
    data: &Dataset,
    device: Device,
) -> Result<MemberOutputs> {
    let rows: Vec<usize> = (0..data.records.len()).collect();
    let seqs: Vec<&[u32]> = data.records.iter().map(|r| r.ids.as_slice()).collect();
    let cfg = &run.base.train;
    let mut preds = Vec::new();
    let mut best_epochs = Vec::new();
    let mut sum: Vec<Vec<f32>> = Vec::new();
    for k in 0..run.members {
        let dir = EnsembleRun::member_dir(out, k);
        let report: super::FinetuneReport = fsutil::read_json(&dir.join(run_files::METRICS))?;
        best_epochs.push(report.best_epoch);
        let model_dir = dir.join(run_files::MODEL);
        let e = if GraphModel::is_graph_dir(&model_dir) {
            let model = GraphModel::load(&model_dir, device)?;
            let graphs = graphs_of(data)?;
            let refs: Vec<&MolGraph> = graphs.iter().collect();
            preds.push(model.predict(&refs, cfg.eval_batch_size));
            model.embed(&refs, cfg.eval_batch_size)
        } else {
            let model = Model::load(&model_dir, device)?;
            let raw = raw_outputs(&model, data, &rows, &seqs, cfg)?;
            preds.push(
                raw.into_iter()
                    .map(|z| crate::predict::to_label_units(&model, z))
                    .collect(),
            );
            crate::predict::embed(&model, &seqs, cfg.eval_batch_size)?
        };
        if sum.is_empty() {
            sum = e;
        } else {
            for (s, v) in sum.iter_mut().zip(&e) {
                for (a, b) in s.iter_mut().zip(v) {
                    *a += b;
                }
            }
        }
    }
    let k = run.members as f32;
    for s in &mut sum {
        for a in s.iter_mut() {
            *a /= k;
        }
    }
    Ok(MemberOutputs {
        preds,
        embeddings: sum,
        best_epochs,
    })
}

/// The molecule graph of every row of `data`.
fn graphs_of(data: &Dataset) -> Result<Vec<MolGraph>> {
    data.records
        .iter()
        .map(|r| crate::graph::featurize_smiles(&r.smiles))
        .collect()
}

/// Mean and sample sd of the members at each row.
fn mean_sd_by_row(preds: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let n = preds[0].len();
    let k = preds.len() as f64;
    (0..n)
        .map(|r| {
            let m = preds.iter().map(|p| p[r]).sum::<f64>() / k;
            let v = preds.iter().map(|p| (p[r] - m).powi(2)).sum::<f64>() / (k - 1.0);
            (m, v.sqrt())
        })
        .unzip()
}

/// Gathers the finished members: predictions, calibration, domain, test metrics; writes
/// `predictions.csv` and `domain.safetensors`.
fn gather(run: &EnsembleRun, out: &Path, device: Device) -> Result<EnsembleReport> {
    let cfg = &run.base.train;
    let tokenizer = members_tokenizer(out)?.with_canonical(cfg.canonical);
    let data = super::load_data(&run.base, &tokenizer)?;
    let n = data.records.len();
    let (test, folds) = Split::folds(n, cfg.seed, cfg.test_frac, run.members)?;
    let outputs = member_outputs(run, out, &data, device)?;
    let (mean, raw_sd) = mean_sd_by_row(&outputs.preds);
    let labels: Vec<f64> = data
        .records
        .iter()
        .map(|r| r.label.unwrap_or(f64::NAN))
        .collect();
    let classify = cfg.task == Task::Classification;
    // Out-of-fold predictions: each row by the member that validated on it.
    let mut oof = vec![f64::NAN; n];
    for (k, fold) in folds.iter().enumerate() {
        for &r in fold {
            oof[r] = outputs.preds[k][r];
        }
    }
    let pool: Vec<usize> = folds.concat();
    let pick = |v: &[f64], rows: &[usize]| rows.iter().map(|&r| v[r]).collect::<Vec<f64>>();
    let truth = |rows: &[usize]| -> Vec<f64> {
        let t = pick(&labels, rows);
        match (classify, cfg.binarize) {
            (true, Some(b)) => {
                let th = b.threshold(&pick(&labels, &pool));
                t.into_iter().map(|y| f64::from(u8::from(y > th))).collect()
            }
            _ => t,
        }
    };
    let pool_truth = truth(&pool);
    let k = run.domain_neighbours;
    let dom = domain_scores(&outputs.embeddings, &pool, &test, k);
    let (domain, percentiles) = (&dom.score, dom.percentiles);
    // Regression: the sd scales the domain score (see `SdMethod::Domain`), with the spread's
    // own calibration kept for comparison; classification: the raw spread.
    let oof_pool = pick(&oof, &pool);
    let spread_scale = calibrate(&oof_pool, &pool_truth, &pick(&raw_sd, &pool));
    let (sd_method, sd_scale, basis) = if classify {
        (SdMethod::Spread, 1.0, &raw_sd)
    } else {
        let scale = calibrate(&oof_pool, &pool_truth, &pick(domain, &pool));
        (SdMethod::Domain, scale, domain)
    };
    let sd: Vec<f64> = basis.iter().map(|s| s * sd_scale).collect();
    let spread_sd: Vec<f64> = raw_sd.iter().map(|s| s * spread_scale).collect();
    let threshold = percentiles[2];
    write_domain(&out.join(files::DOMAIN), &dom.train)?;
    write_rows(
        out,
        &data,
        &folds,
        &test,
        &oof,
        &mean,
        &sd,
        domain,
        threshold,
        &outputs.preds,
    )?;
    let (label_mean, label_sd) = crate::metrics::mean_sd(&pick(&labels, &pool));
    let test_report = (!test.is_empty()).then(|| {
        let t = truth(&test);
        let floor = if classify {
            pool_truth.iter().sum::<f64>() / pool_truth.len() as f64
        } else {
            label_mean
        };
        let members = outputs
            .preds
            .iter()
            .map(|m| Regression::compute(&pick(m, &test), &t))
            .collect();
        let rows = TestRows {
            truth: t,
            mean: pick(&mean, &test),
            sd: pick(&sd, &test),
            domain: pick(domain, &test),
        };
        test_report(&rows, members, floor, &percentiles, classify)
    });
    let sd_alternative = (!classify).then(|| {
        let on_test =
            (!test.is_empty()).then(|| (truth(&test), pick(&mean, &test), pick(&spread_sd, &test)));
        spread_alternative(spread_scale, on_test)
    });
    Ok(EnsembleReport {
        members: run.members,
        split_seed: cfg.seed,
        task: cfg.task,
        sizes: [pool.len(), test.len()],
        best_epochs: outputs.best_epochs,
        out_of_fold: Regression::compute(&pick(&oof, &pool), &pool_truth),
        sd_method,
        sd_scale,
        sd_alternative,
        out_of_fold_coverage: if classify {
            f64::NAN
        } else {
            coverage(&pick(&oof, &pool), &pool_truth, &pick(&sd, &pool))
        },
        domain_neighbours: k,
        domain_threshold: threshold,
        domain_percentiles: percentiles,
        label_mean,
        label_sd,
        test: test_report,
    })
}

/// The tokenizer the members of the ensemble in `out` read SMILES with (MoLFormer's for
/// graph members, which read none).
fn members_tokenizer(out: &Path) -> Result<crate::tokenizer::SmilesTokenizer> {
    let member0 = EnsembleRun::member_dir(out, 0).join(run_files::MODEL);
    if GraphModel::is_graph_dir(&member0) {
        Ok(crate::tokenizer::SmilesTokenizer::molformer())
    } else {
        Ok(crate::model::read_folder(&member0)?.2)
    }
}

/// The spread-based sd kept beside the domain-based one: its scale, and on the test rows
/// (truth, mean, spread sd) its coverage and rank correlation with the error.
fn spread_alternative(scale: f64, test: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>) -> SdAlternative {
    let on_test = test.map(|(t, m, s)| {
        let err: Vec<f64> = m.iter().zip(&t).map(|(a, b)| (a - b).abs()).collect();
        (coverage(&m, &t, &s), crate::metrics::spearman(&err, &s))
    });
    SdAlternative {
        method: SdMethod::Spread,
        scale,
        test_coverage: on_test.map(|x| x.0),
        test_spearman_error_sd: on_test.map(|x| x.1),
    }
}

/// The applicability domain of an ensemble's rows.
struct Domain {
    /// Embeddings of the training rows (all folds), in fold order.
    train: Vec<Vec<f32>>,
    /// Every row's score: leave-one-out for training rows, against all of them for test rows
    /// (NaN elsewhere).
    score: Vec<f64>,
    /// 50th, 80th and 95th percentiles of the training rows' scores.
    percentiles: [f64; 3],
}

/// Domain scores from the members' mean embeddings `emb` of every row.
fn domain_scores(emb: &[Vec<f32>], pool: &[usize], test: &[usize], k: usize) -> Domain {
    let train: Vec<Vec<f32>> = pool.iter().map(|&r| emb[r].clone()).collect();
    let loo: Vec<f64> = (0..pool.len())
        .map(|i| knn_distance(&train[i], &train, k, Some(i)))
        .collect();
    let percentiles = [0.5, 0.8, 0.95].map(|q| quantile(&loo, q));
    let mut score = vec![f64::NAN; emb.len()];
    for (i, &r) in pool.iter().enumerate() {
        score[r] = loo[i];
    }
    for &r in test {
        score[r] = knn_distance(&emb[r], &train, k, None);
    }
    Domain {
        train,
        score,
        percentiles,
    }
}

/// The test rows' truth and the ensemble's mean, calibrated sd and domain score on them.
struct TestRows {
    truth: Vec<f64>,
    mean: Vec<f64>,
    sd: Vec<f64>,
    domain: Vec<f64>,
}

/// What the ensemble measured on its test rows; `floor` is the mean predictor's value.
fn test_report(
    rows: &TestRows,
    members: Vec<Regression>,
    floor: f64,
    percentiles: &[f64; 3],
    classify: bool,
) -> EnsembleTest {
    let (t, p, s, d) = (&rows.truth, &rows.mean, &rows.sd, &rows.domain);
    let err: Vec<f64> = p.iter().zip(t).map(|(a, b)| (a - b).abs()).collect();
    let threshold = percentiles[2];
    EnsembleTest {
        metrics: Regression::compute(p, t),
        members,
        coverage: if classify {
            f64::NAN
        } else {
            coverage(p, t, s)
        },
        spearman_error_sd: crate::metrics::spearman(&err, s),
        out_of_domain_share: d.iter().filter(|&&x| x > threshold).count() as f64 / d.len() as f64,
        domain_bins: domain_bins(&err, s, d, percentiles),
        mean_predictor: Regression::compute(&vec![floor; t.len()], t),
        classification: classify.then(|| crate::metrics::Classification::compute(p, t)),
    }
}

/// Bins of molecules by domain score at the training percentiles `edges` (50, 80, 95): a
/// molecule's bin is the number of edges below its score.
fn domain_bins(err: &[f64], sd: &[f64], domain: &[f64], edges: &[f64; 3]) -> Vec<DomainBin> {
    let names = ["0-50", "50-80", "80-95", "above 95 (out of domain)"];
    (0..names.len())
        .map(|b| {
            let idx: Vec<usize> = (0..domain.len())
                .filter(|&i| domain[i].is_finite())
                .filter(|&i| edges.iter().filter(|&&e| domain[i] > e).count() == b)
                .collect();
            let n = idx.len();
            let mean = |f: &dyn Fn(usize) -> f64| idx.iter().map(|&i| f(i)).sum::<f64>() / n as f64;
            DomainBin {
                from: if b == 0 { 0.0 } else { edges[b - 1] },
                to: edges.get(b).copied(),
                percentiles: names[b].into(),
                n,
                rmse: mean(&|i| err[i] * err[i]).sqrt(),
                mean_sd: mean(&|i| sd[i]),
            }
        })
        .collect()
}
