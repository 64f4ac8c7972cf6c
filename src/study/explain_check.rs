//! Checking `lipo explain` by retraining: for each query molecule, leave out of training the
//! `remove` molecules with the largest positive influence on its prediction, the `remove`
//! nearest by embedding, or `remove` drawn at random; retrain each time with the run's own
//! seed and settings (`exclude_rows`), and compare how far the prediction actually moves with
//! what the influence scores predicted (Σ −I(z, x)/n over the removed molecules).
//!
//! Retrains live in `OUT/q<i>/<group>/` (ordinary run folders: finished ones are reused,
//! interrupted ones resume); the summary is `OUT/check.json` and `OUT/check.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::summary::Spread;
use super::table3::Runner;
use crate::error::{Error, Result};
use crate::explain::Explainer;
use crate::model::Model;
use crate::peft::LoadModel;
use crate::rng::SplitMix64;
use crate::train::{files, FinetuneRun};

/// The three ways of choosing what to leave out.
pub const GROUPS: [&str; 3] = ["influence", "neighbours", "random"];

/// One query and one group: what was left out and how the prediction moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    /// `influence`, `neighbours` or `random`.
    pub group: String,
    /// Table rows left out.
    pub rows: Vec<usize>,
    /// Σ −I(z, x)/n over them: the change influence predicts.
    pub predicted_shift: f64,
    /// The retrained model's prediction minus the original one.
    pub actual_shift: f64,
}

/// One query molecule's three retrains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryCheck {
    /// The query.
    pub smiles: String,
    /// The original model's prediction.
    pub prediction: f64,
    /// Whether the query's LiSSA inverse-HVP settled.
    pub lissa_converged: bool,
    /// One per group, in [`GROUPS`] order.
    pub removals: Vec<Removal>,
    /// The prediction of a retrain that leaves nothing out, minus the original one: zero when
    /// retraining repeats the run exactly, else the noise floor of every shift.
    pub control_shift: f64,
}

/// A group summarised over queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The group.
    pub group: String,
    /// Actual shift of the prediction, mean ± sd over queries.
    pub actual_shift: Spread,
    /// |actual shift|, mean ± sd.
    pub abs_shift: Spread,
    /// Share of queries where predicted and actual shift have the same sign.
    pub sign_agreement: f64,
    /// Pearson correlation of predicted and actual shifts over queries.
    pub correlation: f64,
}

/// The check's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Molecules left out per retrain.
    pub remove: usize,
    /// Training molecules of the run.
    pub training_molecules: usize,
    /// Whether the run seeds dropout per step (`step_seeds`), so that a retrain differs only
    /// in the batches that held the left-out molecules.
    pub step_seeds: bool,
    /// Largest |control shift| over queries (0: retraining repeats the run bit for bit).
    pub control_max_abs_shift: f64,
    /// Every query.
    pub queries: Vec<QueryCheck>,
    /// Per group.
    pub groups: Vec<GroupSummary>,
}

/// Runs (or resumes) the check of `explainer` (made from `run_dir` and its model) on
/// `queries`, retraining through `runner` into `out`.
pub fn check(
    explainer: &Explainer,
    model: &Model,
    run_dir: &Path,
    queries: &[String],
    remove: usize,
    out: &Path,
    runner: &mut dyn Runner,
) -> Result<CheckReport> {
    let run: FinetuneRun = crate::fsutil::read_json(&run_dir.join(files::RUN))?;
    let rows = explainer.training_rows();
    if remove == 0 || remove >= rows.len() {
        return Err(Error::param(
            "remove",
            format!(
                "{remove} is not between 1 and the {} training rows",
                rows.len()
            ),
        ));
    }
    let n = rows.len() as f64;
    let control_dir = out.join("control");
    runner.run(&run, &control_dir)?;
    let control = trained_model(&control_dir, model.device())?;
    let mut checks = Vec::new();
    for (q, smiles) in queries.iter().enumerate() {
        let ids = model.tokenizer.encode(smiles)?;
        let prediction = crate::predict::predict(model, std::slice::from_ref(&ids), 1)?[0];
        let control_shift =
            crate::predict::predict(&control, std::slice::from_ref(&ids), 1)?[0] - prediction;
        let solved = explainer.scores(smiles)?;
        let lissa_converged = solved.lissa_converged;
        let scores = solved.influence;
        let mut by_influence: Vec<usize> = (0..rows.len()).collect();
        by_influence.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let nearest: Vec<usize> = explainer
            .nearest(smiles, remove)?
            .into_iter()
            .map(|nb| {
                rows.iter()
                    .position(|&r| r == nb.row)
                    .expect("a training row")
            })
            .collect();
        let mut rng = SplitMix64::derive(run.train.seed, &format!("explain-check-{q}"));
        let mut random: Vec<usize> = (0..rows.len()).collect();
        rng.shuffle(&mut random);
        random.truncate(remove);
        let mut removals = Vec::new();
        for (group, picks) in GROUPS
            .iter()
            .zip([by_influence[..remove].to_vec(), nearest, random])
        {
            let left_out: Vec<usize> = picks.iter().map(|&i| rows[i]).collect();
            let predicted_shift = picks.iter().map(|&i| -scores[i] / n).sum();
            let mut retrain = run.clone();
            retrain.train.exclude_rows = run
                .train
                .exclude_rows
                .iter()
                .chain(&left_out)
                .copied()
                .collect();
            let dir = out.join(format!("q{q}")).join(group);
            runner.run(&retrain, &dir)?;
            let retrained = trained_model(&dir, model.device())?;
            let after = crate::predict::predict(&retrained, std::slice::from_ref(&ids), 1)?[0];
            removals.push(Removal {
                group: group.to_string(),
                rows: left_out,
                predicted_shift,
                actual_shift: after - prediction,
            });
        }
        checks.push(QueryCheck {
            smiles: smiles.clone(),
            prediction,
            lissa_converged,
            removals,
            control_shift,
        });
    }
    let report = CheckReport {
        remove,
        training_molecules: rows.len(),
        step_seeds: run.train.step_seeds,
        control_max_abs_shift: checks
            .iter()
            .map(|c| c.control_shift.abs())
            .fold(0.0, f64::max),
        groups: GROUPS
            .iter()
            .enumerate()
            .map(|(g, name)| summarise(name, g, &checks))
            .collect(),
        queries: checks,
    };
    crate::fsutil::write_json(&out.join("check.json"), &report)?;
    crate::fsutil::write_atomic(&out.join("check.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

/// The model of the finished run in `dir` (trained again when only its records are kept, as
/// in a fresh clone of the committed study).
fn trained_model(dir: &Path, device: tch::Device) -> Result<Model> {
    let (path, _) =
        crate::train::kept_or_retrained_model(dir, device, &mut crate::progress::Silent)?;
    Model::load(&path, device)
}

fn summarise(name: &str, g: usize, checks: &[QueryCheck]) -> GroupSummary {
    let actual: Vec<f64> = checks.iter().map(|c| c.removals[g].actual_shift).collect();
    let predicted: Vec<f64> = checks
        .iter()
        .map(|c| c.removals[g].predicted_shift)
        .collect();
    let agree = actual
        .iter()
        .zip(&predicted)
        .filter(|(a, p)| a.signum() == p.signum())
        .count();
    GroupSummary {
        group: name.to_string(),
        actual_shift: Spread::of(&actual),
        abs_shift: Spread::of(&actual.iter().map(|a| a.abs()).collect::<Vec<_>>()),
        sign_agreement: agree as f64 / checks.len().max(1) as f64,
        correlation: crate::metrics::Regression::compute(&predicted, &actual).pearson,
    }
}

/// The summary table.
pub fn markdown(r: &CheckReport) -> String {
    let mut s = format!(
        "Retraining without {} training molecules per query, {} queries: how the query's \
         prediction moved (logD), and whether influence predicted its sign.\n\n\
         | left out | shift, mean ± sd | abs shift, mean ± sd | sign agreement | corr(predicted, actual) |\n\
         |---|---|---|---|---|\n",
        r.remove,
        r.queries.len()
    );
    for g in &r.groups {
        s += &format!(
            "| {} | {} | {} | {:.2} | {:.2} |\n",
            g.group,
            g.actual_shift.fmt(4),
            g.abs_shift.fmt(4),
            g.sign_agreement,
            g.correlation
        );
    }
    s += "\nPer query: the prediction, and for each group the predicted → actual shift.\n\n\
          | query | prediction | influence | neighbours | random |\n|---|---|---|---|---|\n";
    for q in &r.queries {
        let cells: Vec<String> = q
            .removals
            .iter()
            .map(|m| format!("{:+.4} → {:+.4}", m.predicted_shift, m.actual_shift))
            .collect();
        s += &format!(
            "| `{}` | {:.3} | {} |\n",
            q.smiles.replace('|', "\\|"),
            q.prediction,
            cells.join(" | ")
        );
    }
    let settled = r.queries.iter().filter(|q| q.lissa_converged).count();
    s += &format!(
        "\n{} training molecules; predicted shift = Σ −I(z, x)/n over the left-out molecules \
         (LiSSA settled on {settled} of {} queries). A retrain that leaves nothing out moves \
         the predictions by at most {:.2e} ({}).\n",
        r.training_molecules,
        r.queries.len(),
        r.control_max_abs_shift,
        if r.step_seeds {
            "dropout seeded per step: a retrain differs from the run only in the batches that \
             held the left-out molecules"
        } else {
            "one dropout stream per epoch: leaving molecules out redraws every later dropout \
             mask, so part of each shift is training noise"
        }
    );
    s
}
