//! Table 2 of the study: does adding influence-selected external molecules to training help?
//!
//! For each seed: fine-tune on the training split (the "no external data" row, and the model
//! whose influence is scored, with the seed's *validation* rows as the target — never test),
//! score every external row with LiSSA ([`crate::selection::score_external`]), then retrain
//! from the same starting weights on train + {every selectable external row; a random
//! fraction; the most helpful fraction; the least helpful fraction}. External molecules that
//! duplicate validation or test molecules never enter training. Rows are summarised as
//! mean ± sd of the test metrics over seeds, with the spread verdict of every comparison.
//!
//! Layout: `OUT/seed<S>/{none,all,random,top,bottom}/` (fine-tuning run folders),
//! `OUT/seed<S>/influence/` (scores), `OUT/seed<S>/selected_<row>.csv`, and `table2.md`,
//! `table2.json` and the figures in `OUT`. Finished runs and scores are reused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use super::summary::{compare_rmse, regression_table, RegressionRow};
use crate::data::{self, Split, TableOptions};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::Model;
use crate::peft::LoadModel;
use crate::plot::Series;
use crate::progress::{Event, Monitor};
use crate::selection::{self, ScoreConfig, ScoreReport, Selection};
use crate::train::{self, ExtraTable, FinetuneConfig, FinetuneReport, FinetuneRun, InitFrom};

/// Files Table 2 writes into its folder.
pub mod files {
    /// The resolved configuration.
    pub const CONFIG: &str = "table2_config.json";
    /// The table and its readings.
    pub const TABLE_MD: &str = "table2.md";
    /// Everything as JSON.
    pub const TABLE_JSON: &str = "table2.json";
    /// Histogram of helpfulness scores (first seed).
    pub const HIST_PNG: &str = "table2_influence_hist.png";
    /// Helpfulness vs label (first seed).
    pub const SCATTER_PNG: &str = "table2_influence_vs_label.png";
    /// Validation loss per epoch of every row (mean over seeds).
    pub const VALID_LOSS_PNG: &str = "table2_valid_loss.png";
    /// Training loss per epoch of every row (mean over seeds).
    pub const TRAIN_LOSS_PNG: &str = "table2_train_loss.png";
    /// Inside an influence folder: the settings the scores were computed with.
    pub const SCORE_CONFIG: &str = "score_config.json";
    /// Inside an influence folder: the scores.
    pub const SCORES_JSON: &str = "influence.json";
    /// Inside an influence folder: the scores as CSV.
    pub const SCORES_CSV: &str = "scores.csv";
}

/// What Table 2 runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table2Config {
    /// The labelled table (Lipophilicity).
    pub data: PathBuf,
    /// How to read it.
    #[serde(default)]
    pub table: TableOptions,
    /// The external labelled table to score and select from.
    pub external: PathBuf,
    /// How to read the external table.
    #[serde(default)]
    pub external_table: TableOptions,
    /// Starting weights of every run.
    pub init: InitFrom,
    /// Seeds; each gives its own split, scores and random selection.
    pub seeds: Vec<u64>,
    /// Fine-tuning settings (the seed is set per run).
    pub finetune: FinetuneConfig,
    /// Influence settings (the LiSSA seed is set per run).
    pub score: ScoreConfig,
    /// Share of the selectable external rows kept by the random, top and bottom rows (0.5).
    pub fraction: f64,
    /// Add a row selected by TracIn: a second run without external data keeps its epoch
    /// models (`tracin-base/`), TracIn scores the external rows over `score.params` from
    /// them, and the top `fraction` joins training (`tracin-top/`). Absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracin: bool,
}

impl Table2Config {
    /// The study's settings: 3 seeds, 20 epochs, LiSSA over the last layer and head, 50 %.
    pub fn study(data: PathBuf, external: PathBuf, init: InitFrom) -> Self {
        Table2Config {
            data,
            table: TableOptions::default(),
            external,
            external_table: TableOptions::default(),
            init,
            seeds: vec![0, 1, 2],
            finetune: FinetuneConfig::default(),
            score: ScoreConfig::default(),
            fraction: 0.5,
            tracin: true,
        }
    }

    /// The "no external data" run of `seed` (also the model whose influence is scored).
    pub fn base_run(&self, seed: u64) -> FinetuneRun {
        self.run(seed, None)
    }

    /// A run of `seed` whose training split gets the rows of `extra`.
    pub fn run(&self, seed: u64, extra: Option<ExtraTable>) -> FinetuneRun {
        FinetuneRun {
            data: self.data.clone(),
            table: self.table.clone(),
            init: self.init.clone(),
            train: FinetuneConfig {
                seed,
                ..self.finetune.clone()
            },
            fold: None,
            extra,
        }
    }

    /// The rows of the table after "no external data": name, label and selection.
    pub fn selections(&self, seed: u64) -> Vec<(&'static str, String, Selection)> {
        let pct = format!("{:.0} %", self.fraction * 100.0);
        vec![
            ("all", "all external".into(), Selection::All),
            (
                "random",
                format!("random {pct}"),
                Selection::RandomFraction(self.fraction, seed),
            ),
            (
                "top",
                format!("influence top {pct}"),
                Selection::TopFraction(self.fraction),
            ),
            (
                "bottom",
                format!("influence bottom {pct}"),
                Selection::BottomFraction(self.fraction),
            ),
        ]
    }
}

/// What one seed contributed besides test metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedDetail {
    /// The seed.
    pub seed: u64,
    /// Parameter elements the influence covers.
    pub influence_parameters: usize,
    /// Whether the inverse-HVP solver converged.
    pub converged: bool,
    /// Seconds spent scoring the external table.
    pub scoring_seconds: f64,
    /// External molecules predicted to help (helpfulness > 0).
    pub helpful: usize,
    /// External rows scored.
    pub scored: usize,
    /// Duplicates of Lipophilicity molecules: (split, how matched, count).
    pub duplicates: Vec<(String, String, usize)>,
    /// Per row (after "none"): (row, external rows added to training).
    pub added: Vec<(String, usize)>,
}

/// Table 2's rows and readings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table2Report {
    /// none, all, random, top, bottom, and the mean predictor.
    pub rows: Vec<RegressionRow>,
    /// Plain-language readings of the comparisons.
    pub readings: Vec<String>,
    /// Whether influence top beat random by more than the spread (`None`: one seed).
    pub influence_beats_random: Option<bool>,
    /// Per-seed scoring details.
    pub seeds: Vec<SeedDetail>,
    /// The markdown written to `table2.md`.
    pub markdown: String,
}

/// Scores `cfg`'s external table with the model of a finished run (`run_dir`) by influence,
/// or with `tracin` by TracIn over the run's kept epoch models; or reuses scores computed
/// before with the same settings in `out`.
pub fn score_run(
    run_dir: &Path,
    cfg: &Table2Config,
    score: &ScoreConfig,
    tracin: bool,
    device: Device,
    out: &Path,
) -> Result<ScoreReport> {
    #[derive(Serialize, Deserialize, PartialEq)]
    struct Key {
        run: FinetuneRun,
        external: PathBuf,
        external_table: TableOptions,
        score: ScoreConfig,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tracin: bool,
    }
    let (data_options, external, external_options) =
        (&cfg.table, cfg.external.as_path(), &cfg.external_table);
    let run: FinetuneRun = fsutil::read_json(&run_dir.join(train::files::RUN))?;
    let key = Key {
        run: run.clone(),
        external: external.to_path_buf(),
        external_table: external_options.clone(),
        score: score.clone(),
        tracin,
    };
    let key_path = out.join(files::SCORE_CONFIG);
    let scores_path = out.join(files::SCORES_JSON);
    if key_path.is_file() {
        let old: Key = fsutil::read_json(&key_path)?;
        if old != key {
            return Err(Error::param(
                "out",
                format!(
                    "{} holds influence scores of other settings (see its {}); choose another folder",
                    out.display(),
                    files::SCORE_CONFIG
                ),
            ));
        }
        if scores_path.is_file() {
            return fsutil::read_json(&scores_path);
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    fsutil::write_json(&key_path, &key)?;
    let checkpoints = if tracin {
        train::epoch_checkpoints(run_dir)?
    } else {
        Vec::new()
    };
    let model_dir = match checkpoints.last() {
        Some((dir, _)) => dir.clone(),
        None => train::kept_or_retrained_model(run_dir, device, &mut crate::progress::Silent)?.0,
    };
    let model = Model::load(&model_dir, device)?;
    let data = data::read_table(&run.data, &model.tokenizer, data_options, true)?;
    let split: Split = fsutil::read_json(&run_dir.join(train::files::SPLIT))?;
    let ext = data::read_table(external, &model.tokenizer, external_options, true)?;
    let report = if tracin {
        drop(model);
        selection::tracin_external(&checkpoints, &data, &split, &ext, score, device)?
    } else {
        selection::score_external(&model, &data, &split, &ext, score)?
    };
    selection::write_scores(&out.join(files::SCORES_CSV), &report.rows)?;
    selection::plot_scores(out, &report)?;
    fsutil::write_json(&scores_path, &report)?;
    Ok(report)
}

/// Runs (or resumes; finished runs and scores are reused) every run of Table 2 under `out`,
/// and writes the table and figures there.
pub fn table2(
    cfg: &Table2Config,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<Table2Report> {
    table2_in(cfg, device, out, out, monitor)
}

/// [`table2`] with the runs under `out` and the configuration, table and figures in `summary`
/// (a per-seed job of `lipo study --jobs` keeps its one-seed table out of the stage's).
pub fn table2_in(
    cfg: &Table2Config,
    device: Device,
    out: &Path,
    summary: &Path,
    monitor: &mut dyn Monitor,
) -> Result<Table2Report> {
    check(cfg)?;
    for d in [out, summary] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    fsutil::write_json(&summary.join(files::CONFIG), cfg)?;
    let mut reports: Vec<Vec<FinetuneReport>> = vec![vec![]; 5 + usize::from(cfg.tracin)];
    let mut details = Vec::new();
    let mut first_scores: Option<ScoreReport> = None;
    for &seed in &cfg.seeds {
        let dir = out.join(format!("seed{seed}"));
        let (detail, scores) = run_seed(cfg, seed, device, &dir, &mut reports, monitor)?;
        details.push(detail);
        if first_scores.is_none() {
            first_scores = Some(scores);
        }
    }

    let labels: Vec<String> = std::iter::once("no external data".to_string())
        .chain(cfg.selections(0).into_iter().map(|(_, l, _)| l))
        .chain(
            cfg.tracin
                .then(|| format!("TracIn top {:.0} %", cfg.fraction * 100.0)),
        )
        .collect();
    let rows = rows_of(&labels, &reports);
    let (influence_beats_random, readings) = readings_of(&rows);
    let first = first_scores.expect("at least one seed");
    fsutil::write_json(&summary.join("table2_first_seed_scores.json"), &first.rows)?;
    plot_first_seed(summary, &first)?;
    plot_curves(summary, &labels, &reports)?;
    let markdown = markdown(cfg, &rows, &readings, &details);
    let report = Table2Report {
        rows,
        readings,
        influence_beats_random,
        seeds: details,
        markdown,
    };
    fsutil::write_atomic(&summary.join(files::TABLE_MD), report.markdown.as_bytes())?;
    fsutil::write_json(&summary.join(files::TABLE_JSON), &report)?;
    Ok(report)
}

/// Refuses settings Table 2 cannot run: no seeds, a fraction outside (0, 1], a missing table.
fn check(cfg: &Table2Config) -> Result<()> {
    if cfg.seeds.is_empty() {
        return Err(Error::param("seeds", "give at least one seed"));
    }
    if !(cfg.fraction > 0.0 && cfg.fraction <= 1.0) {
        return Err(Error::param(
            "fraction",
            format!("{} is not in (0, 1]", cfg.fraction),
        ));
    }
    for p in [&cfg.data, &cfg.external] {
        if !p.is_file() {
            return Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
    }
    Ok(())
}

/// One seed of Table 2 under `dir`: the run without external data, the influence scores of
/// the external molecules and a run per selection, whose reports join `reports` (one list
/// per row). Returns what the seed did and its scores.
fn run_seed(
    cfg: &Table2Config,
    seed: u64,
    device: Device,
    dir: &Path,
    reports: &mut [Vec<FinetuneReport>],
    monitor: &mut dyn Monitor,
) -> Result<(SeedDetail, ScoreReport)> {
    say(monitor, seed, "fine-tuning without external data");
    let base_dir = dir.join("none");
    reports[0].push(train::finetune(
        &cfg.run(seed, None),
        device,
        &base_dir,
        monitor,
    )?);

    say(
        monitor,
        seed,
        "influence scores of the external molecules (LiSSA)",
    );
    let score = ScoreConfig {
        lissa: crate::influence::LissaConfig {
            seed,
            ..cfg.score.lissa.clone()
        },
        ..cfg.score.clone()
    };
    let scores = score_run(
        &base_dir,
        cfg,
        &score,
        false,
        device,
        &dir.join("influence"),
    )?;
    say(
        monitor,
        seed,
        &format!(
            "{} molecules scored in {:.1} s; inverse HVP {}",
            scores.rows.len(),
            scores.seconds,
            if scores.converged {
                "converged"
            } else {
                "did not converge"
            }
        ),
    );
    let mut added = finetune_selections(cfg, seed, device, dir, &scores, reports, monitor)?;
    if cfg.tracin {
        added.push(tracin_row(cfg, seed, device, dir, reports, monitor)?);
    }
    let detail = SeedDetail {
        seed,
        influence_parameters: scores.parameters,
        converged: scores.converged,
        scoring_seconds: scores.seconds,
        helpful: scores.rows.iter().filter(|r| r.helpfulness > 0.0).count(),
        scored: scores.rows.len(),
        duplicates: scores.duplicates.clone(),
        added,
    };
    Ok((detail, scores))
}

/// The runs of one seed on train + each selection of the scored external rows; their
/// reports join `reports[1..]`. Returns per row the external rows training used.
fn finetune_selections(
    cfg: &Table2Config,
    seed: u64,
    device: Device,
    dir: &Path,
    scores: &ScoreReport,
    reports: &mut [Vec<FinetuneReport>],
    monitor: &mut dyn Monitor,
) -> Result<Vec<(String, usize)>> {
    let mut added = Vec::new();
    for (i, (name, label, how)) in cfg.selections(seed).into_iter().enumerate() {
        let chosen = selection::select(&scores.rows, &how)?;
        let path = dir.join(format!("selected_{name}.csv"));
        selection::write_selected(&path, &scores.rows, &chosen)?;
        say(
            monitor,
            seed,
            &format!("fine-tuning with {label} ({} molecules)", chosen.len()),
        );
        let r = train::finetune(
            &cfg.run(
                seed,
                Some(ExtraTable {
                    path,
                    table: TableOptions::default(),
                }),
            ),
            device,
            &dir.join(name),
            monitor,
        )?;
        added.push((
            name.to_string(),
            r.extra.as_ref().map(|x| x.used).unwrap_or(0),
        ));
        reports[i + 1].push(r);
    }
    Ok(added)
}

/// The TracIn row of one seed: a run without external data that keeps its epoch models,
/// TracIn scores of the external rows from them, and a run with the top `fraction`; its
/// report joins the last list of `reports`. Returns ("tracin", external rows used).
fn tracin_row(
    cfg: &Table2Config,
    seed: u64,
    device: Device,
    dir: &Path,
    reports: &mut [Vec<FinetuneReport>],
    monitor: &mut dyn Monitor,
) -> Result<(String, usize)> {
    say(
        monitor,
        seed,
        "TracIn: fine-tuning without external data, keeping every epoch's model",
    );
    let base_dir = dir.join("tracin-base");
    let mut base = cfg.run(seed, None);
    base.train.keep_epochs = true;
    train::finetune(&base, device, &base_dir, monitor)?;
    let score = ScoreConfig {
        lissa: crate::influence::LissaConfig {
            seed,
            ..cfg.score.lissa.clone()
        },
        ..cfg.score.clone()
    };
    let scores = score_run(&base_dir, cfg, &score, true, device, &dir.join("tracin"))?;
    let chosen = selection::select(&scores.rows, &Selection::TopFraction(cfg.fraction))?;
    let path = dir.join("selected_tracin.csv");
    selection::write_selected(&path, &scores.rows, &chosen)?;
    say(
        monitor,
        seed,
        &format!(
            "fine-tuning with the TracIn top {:.0} % ({} molecules)",
            cfg.fraction * 100.0,
            chosen.len()
        ),
    );
    let extra = ExtraTable {
        path,
        table: TableOptions::default(),
    };
    let r = train::finetune(
        &cfg.run(seed, Some(extra)),
        device,
        &dir.join("tracin-top"),
        monitor,
    )?;
    let used = r.extra.as_ref().map_or(0, |x| x.used);
    reports.last_mut().expect("a TracIn row").push(r);
    Ok(("tracin".into(), used))
}

/// Tells `m` what Table 2 does now for `seed`.
fn say(m: &mut dyn Monitor, seed: u64, what: &str) {
    m.event(&Event::Message {
        text: format!("table 2, seed {seed}: {what}"),
    });
}

/// The table's rows: one per selection (test metrics over seeds) and the mean predictor.
fn rows_of(labels: &[String], reports: &[Vec<FinetuneReport>]) -> Vec<RegressionRow> {
    let mut rows: Vec<RegressionRow> = labels
        .iter()
        .zip(reports)
        .map(|(l, rs)| RegressionRow::new(l.clone(), rs.iter().map(|r| r.test).collect()))
        .collect();
    rows.push(RegressionRow::new(
        "mean predictor",
        reports[0].iter().map(|r| r.test_mean_predictor).collect(),
    ));
    rows
}

/// Whether influence selection beats random selection (`None` for one seed), and the
/// readings of the table: that verdict and the comparisons of the rows.
fn readings_of(rows: &[RegressionRow]) -> (Option<bool>, Vec<String>) {
    let (none, all, random, top, bottom) = (&rows[0], &rows[1], &rows[2], &rows[3], &rows[4]);
    let influence_beats_random = (top.rmse.n > 1)
        .then(|| top.rmse.mean < random.rmse.mean && top.rmse.clearly_differs(&random.rmse));
    let verdict = match influence_beats_random {
        Some(true) => format!(
            "**Influence selection beats random selection**: {} has a lower test RMSE than {} by more than their spread.",
            top.name, random.name
        ),
        Some(false) => format!(
            "**Influence selection does not beat random selection** beyond the spread: test RMSE {} ({}) vs {} ({}).",
            top.rmse.fmt(4),
            top.name,
            random.rmse.fmt(4),
            random.name
        ),
        None => "**Whether influence selection beats random selection cannot be judged from one seed** (a smoke test, not a result).".to_string(),
    };
    let mut readings = vec![
        verdict,
        compare_rmse(top, random),
        compare_rmse(none, all),
        compare_rmse(top, bottom),
        compare_rmse(none, top),
    ];
    // With a TracIn row (before the mean predictor, the last row).
    if rows.len() > 6 {
        let tracin = &rows[5];
        readings.push(compare_rmse(tracin, random));
        readings.push(compare_rmse(tracin, top));
    }
    (influence_beats_random, readings)
}

fn markdown(
    cfg: &Table2Config,
    rows: &[RegressionRow],
    readings: &[String],
    details: &[SeedDetail],
) -> String {
    let mut s = format!(
        "Test metrics on the seed's untouched test split, mean ± sample sd over seeds {:?}; \
         influence over `{}` with the validation rows as target ({:?} solver).\n\n",
        cfg.seeds, cfg.score.params, cfg.score.solver
    );
    s.push_str(&regression_table(rows));
    s.push('\n');
    for r in readings {
        s.push_str(&format!("- {r}\n"));
    }
    s.push_str("\n| seed | scored | predicted helpful | inverse HVP | scoring s | added per row | duplicates of Lipophilicity |\n|---|---|---|---|---|---|---|\n");
    for d in details {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {} | {} |\n",
            d.seed,
            d.scored,
            d.helpful,
            if d.converged {
                "converged"
            } else {
                "not converged"
            },
            d.scoring_seconds,
            d.added
                .iter()
                .map(|(n, k)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            if d.duplicates.is_empty() {
                "none".to_string()
            } else {
                d.duplicates
                    .iter()
                    .map(|(sp, how, n)| format!("{n} {sp} ({how})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    s.push_str(
        "\nExternal molecules that duplicate a validation or test molecule (exact string, \
         stereo-stripped string or molecular-graph key) never enter training.\n",
    );
    s
}

fn plot_first_seed(out: &Path, scores: &ScoreReport) -> Result<()> {
    let helpful: Vec<f64> = scores.rows.iter().map(|r| r.helpfulness).collect();
    let labels: Vec<f64> = scores.rows.iter().map(|r| r.label).collect();
    crate::plot::histogram(
        &out.join(files::HIST_PNG),
        "Helpfulness of external molecules",
        "helpfulness = -I(z) (> 0: predicted to help)",
        &helpful,
        30,
    )?;
    crate::plot::scatter(
        &out.join(files::SCATTER_PNG),
        "Helpfulness vs label",
        "label",
        "helpfulness = -I(z)",
        &labels,
        &helpful,
    )
}

/// Mean over seeds of a per-epoch curve (up to the shortest run).
fn mean_curve(reports: &[FinetuneReport], pick: fn(&train::EpochRecord) -> f64) -> Vec<(f64, f64)> {
    let len = reports.iter().map(|r| r.history.len()).min().unwrap_or(0);
    (0..len)
        .map(|e| {
            let y = reports.iter().map(|r| pick(&r.history[e])).sum::<f64>() / reports.len() as f64;
            ((e + 1) as f64, y)
        })
        .collect()
}

fn plot_curves(out: &Path, labels: &[String], reports: &[Vec<FinetuneReport>]) -> Result<()> {
    for (file, title, y, pick) in [
        (
            files::VALID_LOSS_PNG,
            "Table 2: validation loss per epoch",
            "validation MSE (standardised)",
            (|h: &train::EpochRecord| h.valid_loss) as fn(&train::EpochRecord) -> f64,
        ),
        (
            files::TRAIN_LOSS_PNG,
            "Table 2: training loss per epoch",
            "training MSE (standardised)",
            |h: &train::EpochRecord| h.train_loss,
        ),
    ] {
        let series: Vec<Series> = labels
            .iter()
            .zip(reports)
            .map(|(l, rs)| Series {
                name: l.clone(),
                points: mean_curve(rs, pick),
            })
            .collect();
        crate::plot::lines(&out.join(file), title, "epoch", y, &series)?;
    }
    Ok(())
}
