//! The study's best model: among every Lipophilicity regression run of Tables 1–3, the one
//! with the lowest *validation* RMSE (test plays no part in the choice). It is exported to an
//! ONNX bundle, ONNX Runtime's predictions on its test split are checked against tch's, and
//! its parity plot and residual histogram are drawn.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::table3::Comparison;
use super::StudyConfig;
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::infer::{Predictor, PredictorOptions};
use crate::metrics::Regression;
use crate::model::Model;
use crate::peft::LoadModel;
use crate::train::{self, FinetuneReport, FinetuneRun};

/// Files of the best-model stage.
pub mod files {
    /// The exported bundle.
    pub const BUNDLE: &str = "best.lipo";
    /// Predicted vs measured on the test split.
    pub const PARITY_PNG: &str = "parity.png";
    /// Histogram of test residuals.
    pub const RESIDUALS_PNG: &str = "residuals.png";
    /// The choice and the check.
    pub const BEST_JSON: &str = "best.json";
}

/// The chosen model and its checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BestModel {
    /// Which run it is (table, row, seed).
    pub label: String,
    /// Its run folder.
    pub run: PathBuf,
    /// Validation RMSE, the criterion.
    pub valid_rmse: f64,
    /// Test metrics (label units).
    pub test: Regression,
    /// Candidates considered.
    pub candidates: usize,
    /// The ONNX bundle.
    pub bundle: PathBuf,
    /// Test molecules predicted by both engines.
    pub checked: usize,
    /// Largest |ort − tch| over them.
    pub max_abs_diff: f64,
    /// The accepted bound.
    pub tolerance: f64,
    /// When the run's weights were missing and it was trained again: the new run's
    /// validation RMSE (the exported model is that one).
    #[serde(default)]
    pub retrained_valid_rmse: Option<f64>,
}

/// Every Lipophilicity regression run of the study: (label, run folder).
pub fn candidates(out: &Path, cfg: &StudyConfig, t3: &Comparison) -> Vec<(String, PathBuf)> {
    let mut c = Vec::new();
    for &seed in &cfg.seeds {
        for row in ["random", "pretrained", "domain-finetune"] {
            c.push((
                format!("Table 1, {row}, seed {seed}"),
                out.join("table1").join(format!("seed{seed}")).join(row),
            ));
        }
        for row in ["none", "all", "random", "top", "bottom"] {
            c.push((
                format!("Table 2, {row}, seed {seed}"),
                out.join("table2").join(format!("seed{seed}")).join(row),
            ));
        }
    }
    for row in &t3.rows {
        for (dir, seed) in row.runs.iter().zip(&t3.seeds) {
            c.push((
                format!("Table 3, {}, seed {seed}", row.method.name),
                dir.clone(),
            ));
        }
    }
    c.retain(|(_, d)| d.join(train::files::METRICS).is_file());
    c
}

/// Picks the candidate with the lowest validation RMSE, exports it into `out`, checks ort
/// against tch on its test split (an error when they differ by more than `tolerance`), and
/// draws its parity plot and residual histogram.
pub fn export_and_check(
    candidates: &[(String, PathBuf)],
    out: &Path,
    tolerance: f64,
) -> Result<BestModel> {
    let mut best: Option<(String, PathBuf, FinetuneReport)> = None;
    for (label, dir) in candidates {
        let r: FinetuneReport = fsutil::read_json(&dir.join(train::files::METRICS))?;
        if r.valid.rmse.is_finite()
            && best
                .as_ref()
                .is_none_or(|(_, _, b)| r.valid.rmse < b.valid.rmse)
        {
            best = Some((label.clone(), dir.clone(), r));
        }
    }
    let (label, dir, report) = best.ok_or_else(|| {
        Error::param(
            "study",
            "no finished regression run to export (Tables 1–3 produced none)",
        )
    })?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let run: FinetuneRun = fsutil::read_json(&dir.join(train::files::RUN))?;
    let (model_dir, again) =
        train::kept_or_retrained_model(&dir, tch::Device::Cpu, &mut crate::progress::Silent)?;
    let retrained = if again {
        let r: FinetuneReport = fsutil::read_json(
            &dir.join(train::files::RETRAINED)
                .join(train::files::METRICS),
        )?;
        Some(r.valid.rmse)
    } else {
        None
    };
    let model = Model::load(&model_dir, tch::Device::Cpu)?;
    let table = data::read_table(&run.data, &model.tokenizer, &run.table, true)?;
    let split: Split = fsutil::read_json(&dir.join(train::files::SPLIT))?;
    if let Some(&bad) = split.test.iter().find(|&&r| r >= table.records.len()) {
        return Err(Error::BadFile {
            path: run.data.clone(),
            reason: format!(
                "the split of {} names row {bad}, which it lacks",
                dir.display()
            ),
        });
    }
    let seqs: Vec<&[u32]> = split
        .test
        .iter()
        .map(|&r| table.records[r].ids.as_slice())
        .collect();
    let tch_pred = crate::predict::predict(&model, &seqs, 64)?;
    let bundle = out.join(files::BUNDLE);
    crate::export::export_model_dir(&model_dir, &bundle)?;
    let predictor = Predictor::open(
        &bundle,
        &PredictorOptions {
            threads: 1,
            ..PredictorOptions::default()
        },
    )?;
    let ort_pred = predictor.predict_encoded_batched(&seqs, 64)?;
    let max_abs_diff = tch_pred
        .iter()
        .zip(&ort_pred)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let truth = table.labels(&split.test);
    crate::plot::parity(
        &out.join(files::PARITY_PNG),
        &format!("Best model ({label}): test split"),
        &truth,
        &tch_pred,
    )?;
    let residuals: Vec<f64> = tch_pred.iter().zip(&truth).map(|(p, y)| p - y).collect();
    crate::plot::histogram(
        &out.join(files::RESIDUALS_PNG),
        "Test residuals of the best model",
        "predicted - measured (logD)",
        &residuals,
        30,
    )?;
    let best = BestModel {
        label,
        run: dir,
        valid_rmse: report.valid.rmse,
        test: report.test,
        candidates: candidates.len(),
        bundle: bundle.clone(),
        checked: seqs.len(),
        max_abs_diff,
        tolerance,
        retrained_valid_rmse: retrained,
    };
    fsutil::write_json(&out.join(files::BEST_JSON), &best)?;
    if max_abs_diff.is_nan() || max_abs_diff > tolerance {
        return Err(Error::model(
            &bundle,
            format!(
                "ONNX Runtime and tch predictions differ by up to {max_abs_diff:.2e} on {} test molecules (allowed {tolerance:.0e})",
                seqs.len()
            ),
        ));
    }
    Ok(best)
}
