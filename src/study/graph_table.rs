//! The table beyond the study's own (issue #21): lipo's graph member against its MoLFormer
//! recipes on the protocol's seeds, gathered from finished run folders (nothing trains here;
//! `scripts/graph.sh` and `scripts/ensemble.sh` make the runs). Rows:
//!
//! - MoLFormer, the best single recipe of Table 1 (pre-trained + augmented domain MLM);
//! - MoLFormer, a 5-member K-fold ensemble (`runs/study/ensemble/seedS`);
//! - graph alone (`runs/study/graph/seedS`), and a 5-member graph ensemble
//!   (`runs/study/graph/ensemble/seedS`);
//! - mixed: the mean of both ensembles' ten members on the same test rows.
//!
//! Each row is mean ± sd over the seeds it has, with paired per-seed differences where two
//! rows share seeds; test rows choose nothing (every run keeps its epoch by validation loss,
//! and the mixed row's weights are fixed: equal per member). chemprop's D-MPNN and a random
//! forest are written beside the table as issue #18 reports them, not measured by lipo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::summary::{paired_rmse, regression_table, RegressionRow};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::metrics::Regression;
use crate::train::{EnsembleReport, FinetuneReport};

/// Seeds of the protocol.
const SEEDS: [u64; 3] = [0, 1, 2];

/// Peers on the same seeds' splits, as issue #18 reports them (not measured by lipo).
pub const CHEMPROP_REFERENCE: &str = "Peers on the same splits, as issue #18 reports them (not run by lipo): chemprop 2.3.1 D-MPNN, default settings, 50 epochs, about 13 CPU minutes per run: 0.599 / 0.579 / 0.602 (0.593 ± 0.013); Morgan fingerprint (r 2, 2,048 bits) + random forest (500 trees): 0.835 / 0.845 / 0.840 (0.840 ± 0.005)";

/// Where the runs of each row live under the study folder `root`.
fn run_paths(root: &Path, seed: u64) -> [(&'static str, PathBuf); 3] {
    [
        (
            "MoLFormer ensemble",
            root.join(format!("ensemble/seed{seed}/ensemble/metrics.json")),
        ),
        (
            "graph alone",
            root.join(format!("graph/seed{seed}/metrics.json")),
        ),
        (
            "graph ensemble",
            root.join(format!("graph/ensemble/seed{seed}/metrics.json")),
        ),
    ]
}

/// The gathered comparison.
#[derive(Debug, Clone, Serialize)]
pub struct GraphComparison {
    /// Rows, each over the seeds it has.
    pub rows: Vec<RegressionRow>,
    /// The seeds of each row.
    pub seeds: BTreeMap<String, Vec<u64>>,
    /// Paired per-seed differences of the rows that matter.
    pub paired: Vec<String>,
    /// Coverage of ±1.96 sd and Spearman(|error|, sd) of each ensemble row, per seed.
    pub uncertainty: Vec<UncertaintyRow>,
    /// The markdown of all of it.
    pub markdown: String,
}

/// What an ensemble row says about trusting its predictions.
#[derive(Debug, Clone, Serialize)]
pub struct UncertaintyRow {
    /// Row name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// What the sd scales.
    pub sd_method: crate::train::SdMethod,
    /// Share of test molecules within ±1.96 calibrated sd.
    pub coverage: f64,
    /// Spearman correlation of |error| with sd.
    pub spearman_error_sd: f64,
    /// Test coverage of the members' spread calibrated the same way (when the sd scales the
    /// domain score).
    pub spread_coverage: Option<f64>,
    /// Share of test molecules out of domain.
    pub out_of_domain_share: f64,
    /// Test RMSE by domain-score bin (training percentiles 0–50, 50–80, 80–95, above 95).
    pub bin_rmse: Vec<f64>,
}

/// Test rows of an ensemble's `predictions.csv`: line → (label, prediction).
fn test_predictions(ensemble_dir: &Path) -> Result<BTreeMap<usize, (f64, f64)>> {
    let path = ensemble_dir.join("predictions.csv");
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| Error::model(&path, e.to_string()))?;
    let headers = rdr
        .headers()
        .map_err(|e| Error::model(&path, e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::model(&path, format!("no {name} column")))
    };
    let (line, label, set, pred) = (col("line")?, col("label")?, col("set")?, col("prediction")?);
    let mut out = BTreeMap::new();
    for r in rdr.records() {
        let r = r.map_err(|e| Error::model(&path, e.to_string()))?;
        if &r[set] != "test" {
            continue;
        }
        let num = |i: usize| {
            r[i].parse::<f64>()
                .map_err(|_| Error::model(&path, format!("{:?} is not a number", &r[i])))
        };
        out.insert(num(line)? as usize, (num(label)?, num(pred)?));
    }
    Ok(out)
}

/// The row that averages both ensembles.
const MIXED: &str = "mixed ensemble (5 MoLFormer + 5 graph members)";

/// Test metrics of the equal-weight mean of the MoLFormer and graph ensembles of `seed` on
/// their (identical) test rows; `None` until both are gathered.
fn mixed_ensemble(root: &Path, seed: u64) -> Result<Option<Regression>> {
    let (m, g) = (
        root.join(format!("ensemble/seed{seed}/ensemble")),
        root.join(format!("graph/ensemble/seed{seed}")),
    );
    if !(m.join("metrics.json").is_file() && g.join("metrics.json").is_file()) {
        return Ok(None);
    }
    let (a, b) = (test_predictions(&m)?, test_predictions(&g)?);
    if a.keys().ne(b.keys()) {
        return Err(Error::model(
            &g,
            format!("its test rows differ from those of {}", m.display()),
        ));
    }
    let (truth, pred): (Vec<f64>, Vec<f64>) = a
        .iter()
        .map(|(line, &(y, p))| (y, 0.5 * (p + b[line].1)))
        .unzip();
    Ok(Some(Regression::compute(&pred, &truth)))
}

/// Gathers the comparison from the finished runs under the study folder `root`; rows with no
/// finished seed are left out (and named in the markdown).
pub fn compare_graph(root: &Path) -> Result<GraphComparison> {
    let mut runs: BTreeMap<String, Vec<(u64, Regression)>> = BTreeMap::new();
    let mut uncertainty = Vec::new();
    let best_single = "MoLFormer, best single recipe (Table 1)";
    let t1 = root.join("table1-augmented-mlm/table1.json");
    if t1.is_file() {
        let v: serde_json::Value = fsutil::read_json(&t1)?;
        let row = v["rows"]
            .as_array()
            .and_then(|rows| {
                rows.iter().find(|r| {
                    r["name"]
                        .as_str()
                        .is_some_and(|n| n.contains("domain MLM (with)"))
                })
            })
            .ok_or_else(|| Error::model(&t1, "no \"pre-trained + domain MLM (with)\" row"))?;
        let per_seed: Vec<Regression> = serde_json::from_value(row["runs"].clone())
            .map_err(|e| Error::model(&t1, e.to_string()))?;
        runs.insert(
            best_single.into(),
            SEEDS.iter().copied().zip(per_seed).collect(),
        );
    }
    for seed in SEEDS {
        for (name, path) in run_paths(root, seed) {
            if !path.is_file() {
                continue;
            }
            let metrics = if name.ends_with("ensemble") {
                let r: EnsembleReport = fsutil::read_json(&path)?;
                let Some(t) = r.test else { continue };
                uncertainty.push(UncertaintyRow {
                    name: name.into(),
                    seed,
                    sd_method: r.sd_method,
                    spread_coverage: r.sd_alternative.as_ref().and_then(|a| a.test_coverage),
                    coverage: t.coverage,
                    spearman_error_sd: t.spearman_error_sd,
                    out_of_domain_share: t.out_of_domain_share,
                    bin_rmse: t.domain_bins.iter().map(|b| b.rmse).collect(),
                });
                t.metrics
            } else {
                let r: FinetuneReport = fsutil::read_json(&path)?;
                r.test
            };
            runs.entry(name.into()).or_default().push((seed, metrics));
        }
        if let Some(m) = mixed_ensemble(root, seed)? {
            runs.entry(MIXED.into()).or_default().push((seed, m));
        }
    }
    let order = [
        best_single,
        "MoLFormer ensemble",
        "graph alone",
        "graph ensemble",
        MIXED,
    ];
    let mut rows = Vec::new();
    let mut seeds = BTreeMap::new();
    let mut missing = Vec::new();
    for name in order {
        match runs.get(name) {
            Some(v) if !v.is_empty() => {
                seeds.insert(name.to_string(), v.iter().map(|(s, _)| *s).collect());
                rows.push(RegressionRow::new(
                    name,
                    v.iter().map(|(_, m)| *m).collect(),
                ));
            }
            _ => missing.push(name),
        }
    }
    let find = |n: &str| rows.iter().find(|r| r.name == n);
    let mut paired = Vec::new();
    for (a, b) in [
        ("graph alone", best_single),
        ("graph ensemble", "MoLFormer ensemble"),
        ("graph ensemble", "graph alone"),
        (MIXED, "graph ensemble"),
    ] {
        if let (Some(x), Some(y)) = (find(a), find(b)) {
            if seeds.get(a) == seeds.get(b) {
                if let Some(p) = paired_rmse(x, y) {
                    paired.push(p);
                }
            }
        }
    }
    let markdown = markdown(&rows, &seeds, &paired, &uncertainty, &missing);
    Ok(GraphComparison {
        rows,
        seeds,
        paired,
        uncertainty,
        markdown,
    })
}

fn markdown(
    rows: &[RegressionRow],
    seeds: &BTreeMap<String, Vec<u64>>,
    paired: &[String],
    uncertainty: &[UncertaintyRow],
    missing: &[&str],
) -> String {
    let mut s = String::from(
        "Test metrics on the protocol's splits (80/20, seeds as listed; each run keeps its epoch by validation loss).\n\n",
    );
    s.push_str(&regression_table(rows));
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "- {}: seeds {:?}, per-seed RMSE {}\n",
            r.name,
            seeds[&r.name],
            r.runs
                .iter()
                .map(|m| format!("{:.4}", m.rmse))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push_str(&format!("- {CHEMPROP_REFERENCE}\n"));
    if !missing.is_empty() {
        s.push_str(&format!("- Not run yet: {}\n", missing.join("; ")));
    }
    if !paired.is_empty() {
        s.push('\n');
        for p in paired {
            s.push_str(&format!("{p}\n"));
        }
    }
    if !uncertainty.is_empty() {
        s.push_str("\n| ensemble | seed | sd scales | coverage of ±1.96 sd | (spread instead) | Spearman(\\|error\\|, sd) | out of domain | RMSE by domain bin (0–50, 50–80, 80–95, >95) |\n|---|---|---|---|---|---|---|---|\n");
        for u in uncertainty {
            s.push_str(&format!(
                "| {} | {} | {} | {:.3} | {} | {:.3} | {:.1} % | {} |\n",
                u.name,
                u.seed,
                match u.sd_method {
                    crate::train::SdMethod::Domain => "domain score",
                    crate::train::SdMethod::Spread => "spread",
                },
                u.coverage,
                u.spread_coverage
                    .map(|c| format!("{c:.3}"))
                    .unwrap_or_else(|| "–".into()),
                u.spearman_error_sd,
                100.0 * u.out_of_domain_share,
                u.bin_rmse
                    .iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ));
        }
    }
    s
}

/// Writes `comparison.md` and `comparison.json` into `out`.
pub fn write(c: &GraphComparison, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    fsutil::write_atomic(&out.join("comparison.md"), c.markdown.as_bytes())?;
    fsutil::write_json(&out.join("comparison.json"), c)
}
