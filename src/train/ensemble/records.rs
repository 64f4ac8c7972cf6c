//! The gathered ensemble's files besides `metrics.json`: `domain.safetensors` and
//! `predictions.csv`.

use std::path::Path;

use super::files;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil;

/// Writes the training embeddings as `embeddings` (float32 `[molecules, hidden]`).
pub(super) fn write_domain(path: &Path, emb: &[Vec<f32>]) -> Result<()> {
    let h = emb.first().map_or(0, Vec::len);
    let bytes: Vec<u8> = emb.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![emb.len(), h], &bytes)
            .map_err(|e| Error::model(path, e.to_string()))?;
    let data = safetensors::serialize([(files::EMBEDDINGS, view)], None)
        .map_err(|e| Error::model(path, e.to_string()))?;
    fsutil::write_atomic(path, &data)
}

/// Writes `predictions.csv`: one line per row of the table.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_rows(
    out: &Path,
    data: &Dataset,
    folds: &[Vec<usize>],
    test: &[usize],
    oof: &[f64],
    mean: &[f64],
    sd: &[f64],
    domain: &[f64],
    threshold: f64,
    members: &[Vec<f64>],
) -> Result<()> {
    let path = out.join(files::PREDICTIONS);
    let mut set = vec![String::new(); data.records.len()];
    for (k, f) in folds.iter().enumerate() {
        for &r in f {
            set[r] = format!("fold-{k}");
        }
    }
    for &r in test {
        set[r] = "test".into();
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::io(&path, std::io::Error::other(e));
    let mut header: Vec<String> = [
        "line",
        "smiles",
        "label",
        "set",
        "out_of_fold",
        "prediction",
        "sd",
        "domain",
        "in_domain",
    ]
    .map(String::from)
    .to_vec();
    header.extend((0..members.len()).map(|k| format!("member_{k}")));
    w.write_record(&header).map_err(io)?;
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x:.6}")
        } else {
            String::new()
        }
    };
    for (r, rec) in data.records.iter().enumerate() {
        let mut line = vec![
            rec.line.to_string(),
            rec.smiles.clone(),
            rec.label.map(|l| l.to_string()).unwrap_or_default(),
            set[r].clone(),
            num(oof[r]),
            num(mean[r]),
            num(sd[r]),
            num(domain[r]),
            u8::from(domain[r] <= threshold).to_string(),
        ];
        line.extend(members.iter().map(|m| num(m[r])));
        w.write_record(&line).map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?;
    fsutil::write_atomic(&path, &bytes)
}
