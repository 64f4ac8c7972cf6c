//! Evaluation: metrics of a model on rows of a table (with the test-time augmentation it
//! records), raw outputs and losses during a run, and the test-predictions file.

use std::path::Path;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::metrics::{Classification, Regression};
use crate::model::{Model, Task};
use crate::predict;

use super::FinetuneConfig;

/// Predictions of `model` for `rows` of `data`, with the test-time augmentation the model
/// records.
fn predict_rows(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    batch_size: usize,
) -> Result<Vec<f64>> {
    if model.meta.tta > 0 {
        let smiles: Vec<&str> = rows
            .iter()
            .map(|&r| data.records[r].smiles.as_str())
            .collect();
        return predict::predict_smiles(model, &smiles, batch_size);
    }
    let seqs: Vec<&[u32]> = rows
        .iter()
        .map(|&r| data.records[r].ids.as_slice())
        .collect();
    predict::predict(model, &seqs, batch_size)
}

/// Regression metrics of `model` on `rows` of `data`, in label units, with the predictions.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    batch_size: usize,
) -> Result<(Regression, Vec<f64>)> {
    let pred = predict_rows(model, data, rows, batch_size)?;
    Ok((Regression::compute(&pred, &data.labels(rows)), pred))
}

/// Classification metrics of `model` (a classification model) on `rows` of `data`, whose
/// labels are binarised at the model's stored threshold (or must be 0/1 without one), with the
/// predicted probabilities.
pub fn evaluate_classification(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    batch_size: usize,
) -> Result<(Classification, Vec<f64>)> {
    let prob = predict_rows(model, data, rows, batch_size)?;
    let classes = classes_of(data, rows, model.meta.threshold)?;
    Ok((Classification::compute(&prob, &classes), prob))
}

/// 0/1 classes of `rows`: `label > threshold`, or the labels themselves when there is no
/// threshold (then they must be 0 or 1).
pub(super) fn classes_of(
    data: &Dataset,
    rows: &[usize],
    threshold: Option<f64>,
) -> Result<Vec<f64>> {
    rows.iter()
        .map(|&r| {
            let rec = &data.records[r];
            let y = rec.label.expect("labelled table");
            match threshold {
                Some(t) => Ok(if y > t { 1.0 } else { 0.0 }),
                None if y == 0.0 || y == 1.0 => Ok(y),
                None => Err(Error::BadRow {
                    path: data.path.clone(),
                    line: rec.line,
                    reason: format!(
                        "label {y} is not 0 or 1; binarise numeric labels with the binarize setting (mean, median or a threshold)"
                    ),
                }),
            }
        })
        .collect()
}

/// Mean loss of raw head outputs against targets: MSE (regression, standardised units) or
/// binary cross-entropy with logits (classification).
pub(super) fn mean_loss(task: Task, raw: &[f64], target: &[f64]) -> f64 {
    let n = raw.len().max(1) as f64;
    match task {
        Task::Classification => {
            raw.iter()
                .zip(target)
                .map(|(&z, &y)| z.max(0.0) - z * y + (-z.abs()).exp().ln_1p())
                .sum::<f64>()
                / n
        }
        _ => {
            raw.iter()
                .zip(target)
                .map(|(z, y)| (z - y) * (z - y))
                .sum::<f64>()
                / n
        }
    }
}

/// Raw head outputs of `model` on `rows` of `data` (token ids `seqs`), averaged over random
/// SMILES with the run's test-time augmentation.
pub(super) fn raw_outputs(
    model: &Model,
    data: &Dataset,
    rows: &[usize],
    seqs: &[&[u32]],
    cfg: &FinetuneConfig,
) -> Result<Vec<f64>> {
    if cfg.tta > 0 {
        let smiles: Vec<&str> = rows
            .iter()
            .map(|&r| data.records[r].smiles.as_str())
            .collect();
        predict::raw_outputs_tta(model, &smiles, cfg.tta, cfg.eval_batch_size)
    } else {
        predict::raw_outputs(model, seqs, cfg.eval_batch_size)
    }
}

/// Writes `smiles,label,prediction` for `rows`.
pub fn write_predictions(path: &Path, data: &Dataset, rows: &[usize], pred: &[f64]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    w.write_record(["line", "smiles", "label", "prediction"])
        .map_err(io)?;
    for (&r, p) in rows.iter().zip(pred) {
        let rec = &data.records[r];
        let label = rec.label.map(|l| l.to_string()).unwrap_or_default();
        w.write_record([
            rec.line.to_string(),
            rec.smiles.clone(),
            label,
            format!("{p:.6}"),
        ])
        .map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    fsutil::write_atomic(path, &bytes)
}
