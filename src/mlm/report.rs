//! The end of a run: the final held-out evaluation, the model, the report, its curves.

use std::path::Path;

use tch::Device;

use super::corpus::CorpusScan;
use super::objective::evaluate;
use super::train_loop::MlmState;
use super::{files, MlmConfig, MlmEval, MlmReport};
use crate::error::Result;
use crate::fsutil;
use crate::model::Model;

/// Evaluates the trained model, saves it with the report (metrics.json) and its curves, and
/// removes the checkpoint.
pub(super) fn finish(
    model: &Model,
    cfg: &MlmConfig,
    st: &MlmState,
    scan: &CorpusScan,
    out: &Path,
    device: Device,
) -> Result<MlmReport> {
    let (vl, va) = evaluate(model, &scan.valid, cfg)?;
    model.save(&out.join(files::MODEL))?;
    let report = MlmReport {
        steps: st.step,
        molecules: st.molecules,
        corpus_train: scan.train,
        corpus_valid: scan.valid.len(),
        excluded: scan.excluded,
        skipped: scan.skipped,
        history: st.history.clone(),
        valid_accuracy: va,
        valid_perplexity: vl.exp(),
        mols_per_s: st.molecules as f64 / st.train_seconds.max(1e-9),
        train_seconds: st.train_seconds,
        device: crate::device::describe(device),
    };
    plot_curves(&out.join(files::CURVES_PNG), &report.history)?;
    fsutil::write_json(&out.join(files::METRICS), &report)?;
    crate::checkpoint::remove(&out.join(files::CHECKPOINT));
    Ok(report)
}

/// Training and held-out loss per evaluation, and masked accuracy.
pub fn plot_curves(path: &Path, history: &[MlmEval]) -> Result<()> {
    use crate::plot::Series;
    let pts = |f: fn(&MlmEval) -> f64| history.iter().map(|h| (h.step as f64, f(h))).collect();
    crate::plot::lines(
        path,
        "Masked-language-model training",
        "step",
        "cross-entropy / accuracy",
        &[
            Series {
                name: "train loss".into(),
                points: pts(|h| h.train_loss),
            },
            Series {
                name: "held-out loss".into(),
                points: pts(|h| h.valid_loss),
            },
            Series {
                name: "held-out masked accuracy".into(),
                points: pts(|h| h.valid_accuracy),
            },
        ],
    )
}
