//! The study's Task 3 comparison: full fine-tuning against BitFit, LoRA and IA3 on the same
//! split and seeds, each method with its Table 3 preset, summarised as mean ± sd of the test
//! metrics with trainable parameters, wall time and memory, plus the W&B figures 5–9
//! (eval steps/s, eval loss, eval runtime, gradient norm, train loss) with methods overlaid.
//!
//! Runs live in `OUT/<method>/seed-<s>/` (ordinary fine-tuning run folders), so a repeated
//! comparison reuses finished runs and resumes interrupted ones.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use super::summary::Spread;
use crate::data::TableOptions;
use crate::error::{Error, Result};
use crate::model::{Config, Model, ModelMeta, ModelParts, Task};
use crate::peft::{parameter_counts, LoraConfig, ParameterCounts, PeftConfig};
use crate::plot::Series;
use crate::tokenizer::SmilesTokenizer;
use crate::train::{Binarize, FinetuneConfig, FinetuneReport, FinetuneRun, InitFrom};
use crate::trainlog::{read_log, LogRecord};

mod markdown;
use markdown::human;
pub use markdown::markdown;

/// Files the comparison writes into its folder.
pub mod files {
    /// The table as markdown.
    pub const TABLE_MD: &str = "comparison.md";
    /// Everything as JSON.
    pub const TABLE_JSON: &str = "comparison.json";
    /// The resolved comparison (`lipo compare-peft --config` repeats it).
    pub const CONFIG_JSON: &str = "compare_config.json";
    /// Figures 5–9, one measure per file.
    pub const FIGURES: [&str; 5] = [
        "eval_steps_per_second.png",
        "eval_loss.png",
        "eval_runtime.png",
        "grad_norm.png",
        "train_loss.png",
    ];
}

/// What to compare; written to `compare_config.json` in the output folder, and accepted back
/// (`lipo compare-peft --config`) to repeat the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    /// Labelled table.
    pub data: PathBuf,
    /// How to read it.
    pub table: TableOptions,
    /// Starting weights shared by every method.
    pub init: InitFrom,
    /// Seeds (split, batch order, dropout, new weights).
    pub seeds: Vec<u64>,
    /// Regression or classification.
    pub task: Task,
    /// Classification: how labels become classes.
    pub binarize: Option<Binarize>,
    /// Settings of the full fine-tune (its epochs and learning rate too).
    pub full: FinetuneConfig,
    /// LoRA settings (r, alpha, dropout, targets).
    pub lora: LoraConfig,
    /// Epochs of every method instead of the presets.
    pub epochs: Option<usize>,
    /// Epochs of the PEFT methods only (BitFit, LoRA, IA3), overriding `epochs` and the
    /// presets; the full fine-tune keeps its own.
    #[serde(default)]
    pub peft_epochs: Option<usize>,
    /// A tenth of each method's epochs (at least one): a smoke test, not a result.
    pub quick: bool,
    /// Learning rates to search for each PEFT method (empty: the presets). Each method trains
    /// at every rate on every seed (runs in `OUT/<method>/lr-<rate>/seed-<s>/`); the rate
    /// whose best epoch has the lowest validation loss is chosen per seed, and the row reports
    /// the test metrics of the chosen runs. Full fine-tuning keeps its own rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lr_search: Vec<f64>,
    /// Patience of the search's runs (epochs without a better validation loss before a run
    /// stops; absent: the full fine-tune's). The epochs of a search run are the method's, so
    /// that the search chooses the rate and, through the best epoch, how long to train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_patience: Option<usize>,
}

/// One run of a learning-rate search: what the choice may look at (validation) and, for the
/// record, where it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPoint {
    /// Seed of the run.
    pub seed: u64,
    /// Learning rate.
    pub lr: f64,
    /// Validation loss at the run's best epoch (the training objective).
    pub valid_loss: f64,
    /// The best epoch.
    pub best_epoch: usize,
    /// Whether this rate was chosen for its seed.
    pub chosen: bool,
}

/// For each seed of `points`, the index of the point with the lowest validation loss (the
/// smaller rate on a tie; a non-finite loss never wins). Test metrics never enter.
pub fn choose_rates(points: &[SearchPoint]) -> Vec<usize> {
    let mut seeds: Vec<u64> = points.iter().map(|p| p.seed).collect();
    seeds.dedup();
    seeds
        .into_iter()
        .filter_map(|seed| {
            (0..points.len())
                .filter(|&i| points[i].seed == seed && points[i].valid_loss.is_finite())
                .min_by(|&a, &b| {
                    points[a]
                        .valid_loss
                        .total_cmp(&points[b].valid_loss)
                        .then(points[a].lr.total_cmp(&points[b].lr))
                })
        })
        .collect()
}

/// One method of the comparison with its resolved settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Method {
    /// `full`, `bitfit`, `lora` or `ia3`.
    pub name: String,
    /// The PEFT method (absent for full fine-tuning).
    pub peft: Option<PeftConfig>,
    /// Epochs.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
}

impl CompareConfig {
    /// Full fine-tuning, BitFit, LoRA and IA3 with their epochs and learning rates.
    pub fn methods(&self) -> Vec<Method> {
        let mut out = vec![Method {
            name: "full".into(),
            peft: None,
            epochs: self.full.epochs,
            lr: self.full.lr,
        }];
        for p in [
            PeftConfig::BitFit,
            PeftConfig::Lora(self.lora.clone()),
            PeftConfig::Ia3(Default::default()),
        ] {
            let preset = p.preset();
            out.push(Method {
                name: p.name().into(),
                peft: Some(p),
                epochs: preset.epochs,
                lr: preset.lr,
            });
        }
        for m in &mut out {
            if let Some(e) = self.epochs {
                m.epochs = e;
            }
            if self.quick {
                m.epochs = m.epochs.div_ceil(10).max(1);
            }
            if let (Some(e), Some(_)) = (self.peft_epochs, &m.peft) {
                m.epochs = e;
            }
        }
        out
    }

    /// The fine-tuning run of `method` with `seed`.
    pub fn run_of(&self, method: &Method, seed: u64) -> FinetuneRun {
        FinetuneRun {
            data: self.data.clone(),
            fold: None,
            extra: None,
            table: self.table.clone(),
            init: self.init.clone(),
            train: FinetuneConfig {
                epochs: method.epochs,
                lr: method.lr,
                seed,
                task: self.task,
                binarize: self.binarize,
                peft: method.peft.clone(),
                ..self.full.clone()
            },
        }
    }
}

/// Runs one fine-tuning run into a folder (in this process, or in a child process so that
/// its memory is measured alone).
pub trait Runner {
    /// Runs (or reuses) `run` in `out`.
    fn run(&mut self, run: &FinetuneRun, out: &Path) -> Result<FinetuneReport>;
}

impl<F: FnMut(&FinetuneRun, &Path) -> Result<FinetuneReport>> Runner for F {
    fn run(&mut self, run: &FinetuneRun, out: &Path) -> Result<FinetuneReport> {
        self(run, out)
    }
}

/// One row of the comparison table: a method summarised over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodRow {
    /// The method and its settings.
    pub method: Method,
    /// Parameters by role (the first seed's run).
    pub parameters: Option<ParameterCounts>,
    /// Trainable parameter elements.
    pub trainable: usize,
    /// Test metrics by name (`rmse`, `r2`, … or `accuracy`, `f1`, `roc_auc`).
    pub test: Vec<(String, Spread)>,
    /// Wall time of a run, seconds.
    pub wall_seconds: Spread,
    /// Training throughput, molecules/s.
    pub train_mols_per_s: Spread,
    /// Peak resident memory minus resident memory at the start of the run, MB.
    pub peak_rss_growth_mb: Spread,
    /// Parameters + gradients + Adam moments of the trainable part, MB (computed).
    pub state_mb: f64,
    /// Best validation epoch of each seed.
    pub best_epochs: Vec<usize>,
    /// Run folders.
    pub runs: Vec<PathBuf>,
    /// With a learning-rate search: every run of the grid, the chosen ones marked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<SearchPoint>,
    /// The key test metric (RMSE; classification: ROC-AUC) of each seed's run, in seed order,
    /// for paired differences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_by_seed: Vec<f64>,
}

/// The comparison's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Regression or classification.
    pub task: Task,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// The table's rows.
    pub rows: Vec<MethodRow>,
    /// The floor on test (mean predictor / class-share predictor), over seeds.
    pub floor: Vec<(String, Spread)>,
    /// Sentences on whether each PEFT row differs from full fine-tuning beyond the spread.
    pub differences: Vec<String>,
    /// Whether the runs were a `--quick` smoke test.
    pub quick: bool,
}

const MB: f64 = 1024.0 * 1024.0;

fn metric_columns(task: Task) -> &'static [&'static str] {
    match task {
        Task::Classification => &["accuracy", "f1", "roc_auc"],
        _ => &["rmse", "mse", "mae", "r2", "pearson"],
    }
}

fn metrics_of(r: &FinetuneReport, floor: bool) -> Result<Vec<(String, f64)>> {
    Ok(match r.task {
        Task::Classification => {
            let c = r.classification.as_ref().ok_or_else(|| {
                Error::param(
                    "compare",
                    "a classification run lacks its classification metrics",
                )
            })?;
            let m = if floor { &c.test_majority } else { &c.test };
            vec![
                ("accuracy".into(), m.accuracy),
                ("f1".into(), m.f1),
                ("roc_auc".into(), m.roc_auc),
            ]
        }
        _ => {
            let m = if floor {
                &r.test_mean_predictor
            } else {
                &r.test
            };
            vec![
                ("rmse".into(), m.rmse),
                ("mse".into(), m.mse),
                ("mae".into(), m.mae),
                ("r2".into(), m.r2),
                ("pearson".into(), m.pearson),
            ]
        }
    })
}

fn spreads(reports: &[FinetuneReport], floor: bool) -> Result<Vec<(String, Spread)>> {
    let per_run: Vec<Vec<(String, f64)>> = reports
        .iter()
        .map(|r| metrics_of(r, floor))
        .collect::<Result<_>>()?;
    let names: Vec<String> = per_run[0].iter().map(|(n, _)| n.clone()).collect();
    Ok(names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let v: Vec<f64> = per_run.iter().map(|m| m[i].1).collect();
            (n.clone(), Spread::of(&v))
        })
        .collect())
}

/// Runs every method on every seed through `runner` into `out` and writes the table, the JSON
/// and figures 5–9.
pub fn compare(cfg: &CompareConfig, out: &Path, runner: &mut dyn Runner) -> Result<Comparison> {
    compare_in(cfg, out, out, runner)
}

/// [`compare`] with the runs under `out` and the configuration, table and figures in
/// `summary` (a per-seed job of `lipo study --jobs` keeps its one-seed table out of the
/// stage's).
pub fn compare_in(
    cfg: &CompareConfig,
    out: &Path,
    summary: &Path,
    runner: &mut dyn Runner,
) -> Result<Comparison> {
    if cfg.seeds.is_empty() {
        return Err(Error::param("seeds", "names no seed"));
    }
    if cfg.task == Task::Encoder {
        return Err(Error::param("task", "regression or classification"));
    }
    for d in [out, summary] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    crate::fsutil::write_json(&summary.join(files::CONFIG_JSON), cfg)?;
    let mut rows = Vec::new();
    let mut floor_reports = Vec::new();
    for method in cfg.methods() {
        let (reports, dirs, search) = if method.peft.is_some() && !cfg.lr_search.is_empty() {
            search_rates(cfg, &method, out, runner)?
        } else {
            let mut reports = Vec::new();
            let mut dirs = Vec::new();
            for &seed in &cfg.seeds {
                let dir = out.join(&method.name).join(format!("seed-{seed}"));
                reports.push(runner.run(&cfg.run_of(&method, seed), &dir)?);
                dirs.push(dir);
            }
            (reports, dirs, Vec::new())
        };
        if floor_reports.is_empty() {
            floor_reports = reports.clone();
        }
        let growth: Vec<f64> = reports
            .iter()
            .map(|r| {
                r.memory
                    .and_then(|m| Some((m.peak_rss_bytes? as f64 - m.start_rss_bytes? as f64) / MB))
                    .unwrap_or(f64::NAN)
            })
            .collect();
        rows.push(MethodRow {
            parameters: reports[0].parameter_counts,
            trainable: reports[0].trainable_parameters,
            test: spreads(&reports, false)?,
            wall_seconds: Spread::of(&reports.iter().map(|r| r.wall_seconds).collect::<Vec<_>>()),
            train_mols_per_s: Spread::of(
                &reports
                    .iter()
                    .map(|r| r.train_mols_per_s)
                    .collect::<Vec<_>>(),
            ),
            peak_rss_growth_mb: Spread::of(&growth),
            state_mb: reports[0]
                .memory
                .map(|m| m.state_bytes as f64 / MB)
                .unwrap_or(f64::NAN),
            best_epochs: reports.iter().map(|r| r.best_epoch).collect(),
            runs: dirs,
            method,
            search,
            key_by_seed: reports
                .iter()
                .map(|r| key_metric(cfg.task, r))
                .collect::<Result<_>>()?,
        });
    }
    let floor = spreads(&floor_reports, true)?;
    let differences = differences(cfg.task, &rows);
    let cmp = Comparison {
        task: cfg.task,
        seeds: cfg.seeds.clone(),
        rows,
        floor,
        differences,
        quick: cfg.quick,
    };
    crate::fsutil::write_json(&summary.join(files::TABLE_JSON), &cmp)?;
    crate::fsutil::write_atomic(&summary.join(files::TABLE_MD), markdown(&cmp).as_bytes())?;
    figures(&cmp, summary)?;
    Ok(cmp)
}

/// Runs `method` at every rate of the search on every seed and keeps, per seed, the run the
/// validation rows choose ([`choose_rates`]): its reports and folders in seed order, and the
/// whole grid.
fn search_rates(
    cfg: &CompareConfig,
    method: &Method,
    out: &Path,
    runner: &mut dyn Runner,
) -> Result<(Vec<FinetuneReport>, Vec<PathBuf>, Vec<SearchPoint>)> {
    if let Some(bad) = cfg.lr_search.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(Error::param(
            "lr_search",
            format!("{bad} is not a positive learning rate"),
        ));
    }
    let mut points = Vec::new();
    let mut runs = Vec::new();
    for &seed in &cfg.seeds {
        for &lr in &cfg.lr_search {
            let m = Method {
                lr,
                ..method.clone()
            };
            let dir = out
                .join(&method.name)
                .join(format!("lr-{lr:e}"))
                .join(format!("seed-{seed}"));
            let mut run = cfg.run_of(&m, seed);
            if cfg.search_patience.is_some() {
                run.train.patience = cfg.search_patience;
            }
            let r = runner.run(&run, &dir)?;
            let valid_loss = r
                .history
                .iter()
                .find(|e| e.epoch == r.best_epoch)
                .map_or(f64::NAN, |e| e.valid_loss);
            points.push(SearchPoint {
                seed,
                lr,
                valid_loss,
                best_epoch: r.best_epoch,
                chosen: false,
            });
            runs.push((r, dir));
        }
    }
    let chosen = choose_rates(&points);
    if chosen.len() != cfg.seeds.len() {
        return Err(Error::Training(format!(
            "{}: no rate of the search reached a finite validation loss on every seed",
            method.name
        )));
    }
    for &i in &chosen {
        points[i].chosen = true;
    }
    let (reports, dirs) = chosen.iter().map(|&i| runs[i].clone()).unzip();
    Ok((reports, dirs, points))
}

/// The metric the verdicts compare: RMSE, or ROC-AUC for classification.
fn key_name(task: Task) -> &'static str {
    metric_columns(task)[match task {
        Task::Classification => 2,
        _ => 0,
    }]
}

fn key_metric(task: Task, r: &FinetuneReport) -> Result<f64> {
    let key = key_name(task);
    Ok(metrics_of(r, false)?
        .into_iter()
        .find(|(n, _)| n == key)
        .map_or(f64::NAN, |(_, v)| v))
}

fn differences(task: Task, rows: &[MethodRow]) -> Vec<String> {
    let key = key_name(task);
    let get = |r: &MethodRow| r.test.iter().find(|(n, _)| n == key).map(|(_, s)| *s);
    let Some(full) = rows.first().and_then(get) else {
        return vec![];
    };
    rows.iter()
        .skip(1)
        .filter_map(|r| {
            let s = get(r)?;
            let verdict = if s.n < 2 {
                "cannot be judged from one seed".to_string()
            } else if s.clearly_differs(&full) {
                "differs by more than the two spreads".to_string()
            } else {
                "is within the spread".to_string()
            };
            let paired = match (&rows[0].key_by_seed, &r.key_by_seed) {
                (f, m) if f.len() == m.len() && f.len() > 1 => {
                    let d: Vec<f64> = m.iter().zip(f).map(|(a, b)| a - b).collect();
                    let each: Vec<String> = d.iter().map(|x| format!("{x:+.4}")).collect();
                    format!(
                        "; paired by seed, {} minus full: {} (mean {})",
                        r.method.name,
                        each.join(", "),
                        Spread::of(&d).fmt(4)
                    )
                }
                _ => String::new(),
            };
            Some(format!(
                "{} vs full: test {key} {} vs {} {verdict}{paired}",
                r.method.name,
                s.fmt(4),
                full.fmt(4)
            ))
        })
        .collect()
}

/// Means of `points` over consecutive windows of `w` points (x: the window's last x).
fn windowed(points: &[(f64, f64)], w: usize) -> Vec<(f64, f64)> {
    points
        .chunks(w.max(1))
        .map(|c| {
            let y = c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64;
            (c[c.len() - 1].0, y)
        })
        .collect()
}

/// Figures 5–9 from the first seed's `log.jsonl` of each method.
fn figures(c: &Comparison, out: &Path) -> Result<()> {
    type Pick = fn(&LogRecord) -> Option<(f64, f64)>;
    let picks: [(Pick, &str, &str, bool); 5] = [
        (
            |r| match r {
                LogRecord::Eval(e) => Some((e.step as f64, e.eval_steps_per_s)),
                _ => None,
            },
            "Evaluation steps per second",
            "eval steps/s",
            false,
        ),
        (
            |r| match r {
                LogRecord::Eval(e) => Some((e.step as f64, e.eval_loss)),
                _ => None,
            },
            "Evaluation loss",
            "eval loss",
            false,
        ),
        (
            |r| match r {
                LogRecord::Eval(e) => Some((e.step as f64, e.eval_runtime_s)),
                _ => None,
            },
            "Evaluation runtime",
            "seconds",
            false,
        ),
        (
            |r| match r {
                LogRecord::Step(s) => Some((s.step as f64, s.grad_norm)),
                _ => None,
            },
            "Gradient norm",
            "global L2 norm (before clipping)",
            true,
        ),
        (
            |r| match r {
                LogRecord::Step(s) => Some((s.step as f64, s.train_loss)),
                _ => None,
            },
            "Train loss",
            "train loss",
            true,
        ),
    ];
    let logs: Vec<(String, Vec<LogRecord>)> = c
        .rows
        .iter()
        .map(|r| {
            let p = r.runs[0].join(crate::train::files::LOG);
            Ok((
                r.method.name.clone(),
                if p.is_file() { read_log(&p)? } else { vec![] },
            ))
        })
        .collect::<Result<_>>()?;
    for ((pick, title, y_label, smooth), file) in picks.into_iter().zip(files::FIGURES) {
        let series: Vec<Series> = logs
            .iter()
            .map(|(name, log)| {
                let pts: Vec<(f64, f64)> = log.iter().filter_map(pick).collect();
                let pts = if smooth {
                    windowed(&pts, pts.len().div_ceil(60))
                } else {
                    pts
                };
                Series {
                    name: name.clone(),
                    points: pts,
                }
            })
            .collect();
        let title = if smooth {
            format!("{title} (window means, seed {})", c.seeds[0])
        } else {
            format!("{title} (seed {})", c.seeds[0])
        };
        crate::plot::lines(&out.join(file), &title, "step", y_label, &series)?;
    }
    Ok(())
}

/// Parameter counts of every method on MoLFormer-XL (12 × 768) with a one-output head.
pub fn xl_counts(lora: &LoraConfig) -> Result<Vec<(String, ParameterCounts)>> {
    let mut out = Vec::new();
    let methods = [
        None,
        Some(PeftConfig::BitFit),
        Some(PeftConfig::Lora(lora.clone())),
        Some(PeftConfig::Ia3(Default::default())),
    ];
    let mut model = Model::new(
        Config::xl(),
        ModelParts {
            lm_head: false,
            num_labels: Some(1),
        },
        ModelMeta::default(),
        SmilesTokenizer::molformer(),
        Device::Cpu,
        0,
    )?;
    for m in methods {
        match &m {
            None => {
                model.set_trainable(|_| true);
                out.push(("full".into(), parameter_counts(&model)));
            }
            Some(p) => {
                out.push((p.name().into(), crate::peft::apply(&mut model, p, 0)?));
                crate::peft::merge(&mut model)?;
            }
        }
    }
    Ok(out)
}

/// [`xl_counts`] as a markdown table.
pub fn xl_counts_markdown(counts: &[(String, ParameterCounts)]) -> String {
    let mut s = String::from(
        "| method (MoLFormer-XL, 12 × 768) | trainable | adapter (head excluded) | head | total | share |\n|---|---|---|---|---|---|\n",
    );
    for (name, c) in counts {
        s.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {:.3} % |\n",
            human(c.trainable),
            human(c.adapter),
            human(c.head),
            human(c.total),
            c.trainable_percent()
        ));
    }
    s
}

#[cfg(test)]
mod tests;
