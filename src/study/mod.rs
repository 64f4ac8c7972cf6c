//! `lipo study`: the whole study from one command — Table 1 (fine-tuning from random,
//! pre-trained and domain-MLM weights), Table 2 (influence-based selection of external data),
//! Table 3 (BitFit, LoRA and IA3 against full fine-tuning, on Lipophilicity regression and on
//! the external set binarised at its training mean, as the study did), export of the best
//! model (chosen by validation RMSE) to ONNX with an ort-vs-tch check, and a report.
//!
//! Every stage is a folder under the study folder holding its resolved configuration and
//! ordinary run folders; finished runs are reused and interrupted ones resume, so running the
//! same command again (or `lipo study --config DIR/study.json`) computes only what is missing.
//! Runs that two tables share (the pre-trained fine-tune of Table 1 is Table 2's "no external
//! data" row and Table 3's full fine-tune when their settings agree) are computed once.

pub mod best;
pub mod data;
pub mod estimate;
pub mod explain_check;
pub mod graph_table;
pub mod jobs;
pub mod report;
pub mod summary;
pub mod table1;
pub mod table2;
pub mod table3;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::mlm::MlmConfig;
use crate::model::{Config, Task};
use crate::peft::LoraConfig;
use crate::progress::{Event, Monitor};
use crate::selection::ScoreConfig;
use crate::train::{self, Binarize, FinetuneConfig, FinetuneRun, InitFrom};
use table1::{domain_mlm_defaults, Table1Config, Table1Report};
use table2::{Table2Config, Table2Report};
use table3::{CompareConfig, Comparison, Runner};

/// Files and folders of a study folder.
pub mod files {
    /// The resolved study; `lipo study --config` re-runs it.
    pub const CONFIG: &str = "study.json";
    /// Everything measured, as JSON.
    pub const RESULTS: &str = "study_results.json";
    /// The report.
    pub const REPORT_MD: &str = "report.md";
    /// The report as one self-contained HTML file (figures embedded).
    pub const REPORT_HTML: &str = "report.html";
    /// Inside each stage folder: the stage's settings and timing.
    pub const STAGE: &str = "stage.json";
    /// Stage folders, in order.
    pub const STAGES: [&str; 5] = [
        "table1",
        "table2",
        "table3-regression",
        "table3-classification",
        "best-model",
    ];
    /// Table 3 again with each PEFT method at its validation-chosen learning rate (when the
    /// study searches rates), regression then classification.
    pub const SEARCH_STAGES: [&str; 2] =
        ["table3-regression-search", "table3-classification-search"];
}

/// Everything `lipo study` runs; written to `study.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    /// MoleculeNet Lipophilicity.
    pub data: PathBuf,
    /// The study's external labelled set.
    pub external: PathBuf,
    /// The pre-trained model every table starts from.
    pub pretrained: PathBuf,
    /// Architecture of Table 1's random-init floor.
    pub random_arch: Config,
    /// Seeds (each its own split).
    pub seeds: Vec<u64>,
    /// A smoke test: one seed, few epochs.
    pub quick: bool,
    /// Fine-tuning settings of Tables 1 and 2 and of Table 3's full fine-tune.
    pub finetune: FinetuneConfig,
    /// Domain MLM of Table 1.
    pub domain_mlm: MlmConfig,
    /// Influence settings of Table 2.
    pub score: ScoreConfig,
    /// Share of the external rows the random, top and bottom rows of Table 2 keep.
    pub fraction: f64,
    /// Epochs of BitFit, LoRA and IA3 (absent: the study's Table 3 presets).
    pub peft_epochs: Option<usize>,
    /// LoRA settings.
    pub lora: LoraConfig,
    /// How Table 3's classification task binarises the external labels.
    pub binarize: Binarize,
    /// Largest |ort − tch| accepted for the exported best model.
    pub onnx_tolerance: f64,
    /// Learning rates Table 3 searches for each PEFT method, choosing per seed on validation
    /// (stages `table3-*-search`, beside the presets' Table 3; empty: no search).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peft_lr_search: Vec<f64>,
    /// Patience of the search's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peft_search_patience: Option<usize>,
}

impl StudyConfig {
    /// The full study: seeds 0, 1, 2; 20 fine-tuning epochs; 20 epochs of domain MLM; LiSSA
    /// over the last layer and head; 50 % selections; the Table 3 presets.
    pub fn full(data: PathBuf, external: PathBuf, pretrained: PathBuf) -> Self {
        StudyConfig {
            data,
            external,
            pretrained,
            random_arch: Config::small(),
            seeds: vec![0, 1, 2],
            quick: false,
            finetune: FinetuneConfig::default(),
            domain_mlm: domain_mlm_defaults(20),
            score: ScoreConfig::default(),
            fraction: 0.5,
            peft_epochs: None,
            lora: LoraConfig::default(),
            binarize: Binarize::Mean,
            onnx_tolerance: 1e-4,
            peft_lr_search: vec![3e-4, 1e-3, 3e-3],
            peft_search_patience: Some(5),
        }
    }

    /// `--quick`: seed 0 only, 1 epoch of every fine-tune, of domain MLM and of each PEFT
    /// method — a smoke test of the whole pipeline, not a result (≤ 15 min on 2 CPU cores).
    pub fn quick(data: PathBuf, external: PathBuf, pretrained: PathBuf) -> Self {
        let full = Self::full(data, external, pretrained);
        StudyConfig {
            seeds: vec![0],
            quick: true,
            finetune: FinetuneConfig {
                epochs: 1,
                ..full.finetune.clone()
            },
            domain_mlm: domain_mlm_defaults(1),
            peft_epochs: Some(1),
            peft_lr_search: Vec::new(),
            peft_search_patience: None,
            ..full
        }
    }

    /// Table 1's configuration.
    pub fn table1(&self) -> Table1Config {
        Table1Config {
            data: self.data.clone(),
            table: Default::default(),
            pretrained: self.pretrained.clone(),
            random_arch: self.random_arch.clone(),
            seeds: self.seeds.clone(),
            finetune: self.finetune.clone(),
            domain_mlm: self.domain_mlm.clone(),
        }
    }

    /// Table 2's configuration.
    pub fn table2(&self) -> Table2Config {
        Table2Config {
            seeds: self.seeds.clone(),
            finetune: self.finetune.clone(),
            score: self.score.clone(),
            fraction: self.fraction,
            ..Table2Config::study(
                self.data.clone(),
                self.external.clone(),
                InitFrom::Model(self.pretrained.clone()),
            )
        }
    }

    /// Table 3 on `data` for `task`.
    fn table3(&self, data: &Path, task: Task, binarize: Option<Binarize>) -> CompareConfig {
        CompareConfig {
            data: data.to_path_buf(),
            table: Default::default(),
            init: InitFrom::Model(self.pretrained.clone()),
            seeds: self.seeds.clone(),
            task,
            binarize,
            full: self.finetune.clone(),
            lora: self.lora.clone(),
            epochs: None,
            peft_epochs: self.peft_epochs,
            quick: false,
            lr_search: Vec::new(),
            search_patience: None,
        }
    }

    /// Table 3 as a regression on Lipophilicity.
    pub fn table3_regression(&self) -> CompareConfig {
        self.table3(&self.data, Task::Regression, None)
    }

    /// Table 3 as the study ran it: the external set, labels binarised (`label > mean`).
    pub fn table3_classification(&self) -> CompareConfig {
        self.table3(&self.external, Task::Classification, Some(self.binarize))
    }

    /// A Table 3 comparison (`table3_regression` or `table3_classification`) with the study's
    /// learning-rate search; `None` when the study searches none.
    pub fn with_search(&self, c: CompareConfig) -> Option<CompareConfig> {
        (!self.peft_lr_search.is_empty()).then(|| CompareConfig {
            lr_search: self.peft_lr_search.clone(),
            search_patience: self.peft_search_patience,
            ..c
        })
    }
}

/// Time of one stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageTiming {
    /// Stage folder name.
    pub stage: String,
    /// Seconds of the run that computed it.
    pub seconds: f64,
    /// True when this invocation found it finished and reused it.
    pub reused: bool,
    /// The up-front estimate, seconds.
    pub estimated_seconds: f64,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct StageRecord {
    settings: serde_json::Value,
    seconds: Option<f64>,
    /// Time spent in earlier calls with these settings that stopped before the stage
    /// finished; added to the stage's time when it finishes.
    #[serde(default, skip_serializing_if = "crate::fsutil::is_default")]
    spent_seconds: f64,
}

/// Runs `f` as the stage `name` in `dir` and times it. The stage's settings go to
/// `dir/stage.json` with the time once it finishes; a later call with the same settings
/// reports the stored time and `reused` (its runs are reused by `f` itself). `prior_seconds`,
/// the time its runs took in other processes, is added to the time measured here, and so is
/// the time of earlier calls that stopped (interrupted or failed) with the same settings.
fn stage<T>(
    name: &str,
    dir: &Path,
    settings: &impl Serialize,
    estimated_seconds: f64,
    prior_seconds: Option<f64>,
    monitor: &mut dyn Monitor,
    f: impl FnOnce(&mut dyn Monitor) -> Result<T>,
) -> Result<(T, StageTiming)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let settings = serde_json::to_value(settings).map_err(|e| Error::Json {
        path: dir.join(files::STAGE),
        source: e,
    })?;
    let path = dir.join(files::STAGE);
    let before: Option<StageRecord> = if path.is_file() {
        Some(fsutil::read_json(&path)?)
    } else {
        None
    };
    let done_before = before
        .as_ref()
        .filter(|r| r.settings == settings)
        .and_then(|r| r.seconds);
    monitor.event(&Event::Message {
        text: match done_before {
            Some(s) => format!("== {name}: finished before ({s:.0} s); reusing its runs"),
            None => format!(
                "== {name}: starting (estimated {})",
                estimate::human_seconds(estimated_seconds)
            ),
        },
    });
    let spent_before = before
        .as_ref()
        .filter(|r| r.settings == settings && r.seconds.is_none())
        .map_or(0.0, |r| r.spent_seconds);
    if done_before.is_none() {
        fsutil::write_json(
            &path,
            &StageRecord {
                settings: settings.clone(),
                seconds: None,
                spent_seconds: spent_before,
            },
        )?;
    }
    let t0 = Instant::now();
    let value = match f(monitor) {
        Ok(v) => v,
        Err(e) => {
            if done_before.is_none() {
                // Keep this call's time for the call that finishes the stage.
                fsutil::write_json(
                    &path,
                    &StageRecord {
                        settings,
                        seconds: None,
                        spent_seconds: spent_before + t0.elapsed().as_secs_f64(),
                    },
                )?;
            }
            return Err(e);
        }
    };
    let seconds = match done_before {
        Some(s) => s,
        None => {
            let s = spent_before + t0.elapsed().as_secs_f64() + prior_seconds.unwrap_or(0.0);
            fsutil::write_json(
                &path,
                &StageRecord {
                    settings,
                    seconds: Some(s),
                    spent_seconds: 0.0,
                },
            )?;
            monitor.event(&Event::Message {
                text: format!("== {name}: done in {}", estimate::human_seconds(s)),
            });
            s
        }
    };
    Ok((
        value,
        StageTiming {
            stage: name.into(),
            seconds,
            reused: done_before.is_some(),
            estimated_seconds,
        },
    ))
}

/// Copies the finished run `from` to `to` when `to` does not exist yet and `from` holds
/// exactly `run` (so a run two tables share is computed once). Returns whether it copied.
pub fn reuse_run(from: &Path, to: &Path, run: &FinetuneRun) -> Result<bool> {
    if to.exists() || !from.join(train::files::METRICS).is_file() {
        return Ok(false);
    }
    let theirs: FinetuneRun = fsutil::read_json(&from.join(train::files::RUN))?;
    if &theirs != run {
        return Ok(false);
    }
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let staging = fsutil::staging_dir(to, "reuse")?;
    copy_dir(from, staging.path())?;
    fsutil::replace_dir(staging.path(), to)?;
    Ok(true)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| Error::io(&src, e))?;
        }
    }
    Ok(())
}

/// What the study measured; written to `study_results.json` and rendered as the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyReport {
    /// The resolved study.
    pub config: StudyConfig,
    /// The command line that ran it.
    pub command: String,
    /// Environment: versions, threads, device.
    pub environment: Vec<(String, String)>,
    /// The up-front estimate.
    pub estimate: estimate::Estimate,
    /// Table 1.
    pub table1: Table1Report,
    /// Table 2.
    pub table2: Table2Report,
    /// Table 3 on Lipophilicity (regression).
    pub table3_regression: Comparison,
    /// Table 3 on the external set (classification, as the study).
    pub table3_classification: Comparison,
    /// Table 3a with validation-chosen learning rates (when the study searches them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table3_regression_search: Option<Comparison>,
    /// Table 3b with validation-chosen learning rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table3_classification_search: Option<Comparison>,
    /// The exported best model and its check.
    pub best: best::BestModel,
    /// Time of every stage.
    pub timings: Vec<StageTiming>,
}

/// How the study runs besides its configuration.
pub struct StudyOptions<'a> {
    /// Device of the in-process runs (Tables 1 and 2).
    pub device: Device,
    /// Runs Table 3's fine-tunes (in this process or in child processes).
    pub runner: &'a mut dyn Runner,
    /// The command line, for the report.
    pub command: String,
    /// Environment lines for the report (versions, threads).
    pub environment: Vec<(String, String)>,
    /// Seconds a stage's runs already took before this call (e.g. in parallel child jobs,
    /// `lipo study --jobs`), by stage folder name: a stage finished now reports these instead
    /// of the time this call spent reusing its runs.
    pub prior_seconds: Vec<(String, f64)>,
}

/// Runs (or resumes, or re-reads) the whole study in `out` and writes the report.
pub fn run(
    cfg: &StudyConfig,
    out: &Path,
    opts: StudyOptions<'_>,
    monitor: &mut dyn Monitor,
) -> Result<StudyReport> {
    prepare(cfg, out)?;
    let est = estimate::estimate(cfg, opts.device)?;
    monitor.event(&Event::Message {
        text: est.summary(),
    });
    let device = opts.device;
    let mut st = Stages {
        out,
        estimate: &est,
        prior: &opts.prior_seconds,
        timings: Vec::new(),
    };
    let [s1, s2, _, _, s5] = files::STAGES;

    let t1cfg = cfg.table1();
    let t1 = st.run(s1, &t1cfg, monitor, |m| {
        table1::table1(&t1cfg, device, &out.join(s1), m)
    })?;

    let t2cfg = cfg.table2();
    for &seed in &cfg.seeds {
        if share_table2_run(cfg, out, seed)? {
            monitor.event(&Event::Message {
                text: format!(
                    "table 2, seed {seed}: the run without external data is Table 1's pre-trained run; reused"
                ),
            });
        }
    }
    let t2 = st.run(s2, &t2cfg, monitor, |m| {
        table2::table2(&t2cfg, device, &out.join(s2), m)
    })?;

    let [t3r, t3c, t3r_search, t3c_search] = table3_stages(cfg, &mut st, opts.runner, monitor)?;
    let t3r = t3r.expect("Table 3a always runs");
    let t3c = t3c.expect("Table 3b always runs");

    let candidates = best::candidates(out, cfg, &t3r);
    let best = st.run(s5, &(&candidates, cfg.onnx_tolerance), monitor, |_| {
        best::export_and_check(&candidates, &out.join(s5), cfg.onnx_tolerance)
    })?;
    let report = StudyReport {
        config: cfg.clone(),
        command: opts.command,
        environment: opts.environment,
        estimate: est.clone(),
        table1: t1,
        table2: t2,
        table3_regression: t3r,
        table3_classification: t3c,
        table3_regression_search: t3r_search,
        table3_classification_search: t3c_search,
        best,
        timings: st.timings,
    };
    fsutil::write_json(&out.join(files::RESULTS), &report)?;
    report::write(&report, out)?;
    Ok(report)
}

/// The stages of one call of [`run`]: where they live, their estimates, the time their runs
/// took elsewhere, and the timings so far.
struct Stages<'a> {
    out: &'a Path,
    estimate: &'a estimate::Estimate,
    prior: &'a [(String, f64)],
    timings: Vec<StageTiming>,
}

impl Stages<'_> {
    /// Runs (or re-reads) the stage `name` with `settings` through [`stage`] and keeps its
    /// timing.
    fn run<T>(
        &mut self,
        name: &str,
        settings: &impl Serialize,
        monitor: &mut dyn Monitor,
        f: impl FnOnce(&mut dyn Monitor) -> Result<T>,
    ) -> Result<T> {
        let est = self
            .estimate
            .stages
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        let prior = self.prior.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
        let (r, t) = stage(name, &self.out.join(name), settings, est, prior, monitor, f)?;
        self.timings.push(t);
        Ok(r)
    }
}

/// Table 3a and 3b with the presets, then (when the study searches rates) both again with
/// validation-chosen rates; `None` for a search the study does not run. Each stage first
/// takes over the finished runs it shares (Table 1's pre-trained run as the full fine-tune,
/// and that again for the searches).
fn table3_stages(
    cfg: &StudyConfig,
    st: &mut Stages<'_>,
    runner: &mut dyn Runner,
    monitor: &mut dyn Monitor,
) -> Result<[Option<Comparison>; 4]> {
    let [_, _, s3, s4, _] = files::STAGES;
    let [r, c] = files::SEARCH_STAGES;
    let (reg, cls) = (cfg.table3_regression(), cfg.table3_classification());
    let out = st.out;
    let mut results = Vec::new();
    for (name, cmp) in [
        (s3, Some(reg.clone())),
        (s4, Some(cls.clone())),
        (r, cfg.with_search(reg)),
        (c, cfg.with_search(cls)),
    ] {
        let Some(cmp) = cmp else {
            results.push(None);
            continue;
        };
        for &seed in &cfg.seeds {
            if name == s3 || name == s4 {
                share_table3_run(cfg, out, name, seed)?;
            } else {
                share_search_full_run(cfg, out, name, seed)?;
            }
        }
        let key = if cmp.lr_search.is_empty() {
            table3_key(&cmp)
        } else {
            serde_json::json!([table3_key(&cmp), cmp.lr_search, cmp.search_patience])
        };
        let dir = out.join(name);
        results.push(Some(
            st.run(name, &key, monitor, |_| table3::compare(&cmp, &dir, runner))?,
        ));
    }
    Ok(results.try_into().expect("four Table 3 stages"))
}

/// Copies Table 1's finished pre-trained run of `seed` as Table 2's run without external
/// data, when that run is exactly Table 2's (see [`reuse_run`]). Returns whether it copied.
pub fn share_table2_run(cfg: &StudyConfig, out: &Path, seed: u64) -> Result<bool> {
    let [s1, s2, ..] = files::STAGES;
    let from = out.join(s1).join(format!("seed{seed}")).join("pretrained");
    let to = out.join(s2).join(format!("seed{seed}")).join("none");
    reuse_run(&from, &to, &cfg.table2().base_run(seed))
}

/// Copies Table 1's finished pre-trained run of `seed` as the full fine-tune of the Table 3
/// stage `stage` (`table3-regression` or `table3-classification`), when that run is exactly
/// the comparison's. Returns whether it copied.
pub fn share_table3_run(cfg: &StudyConfig, out: &Path, stage: &str, seed: u64) -> Result<bool> {
    let [s1, _, s3, s4, _] = files::STAGES;
    let c = if stage == s3 {
        cfg.table3_regression()
    } else if stage == s4 {
        cfg.table3_classification()
    } else {
        return Err(Error::param(
            "stage",
            format!("{stage:?} is not a Table 3 stage"),
        ));
    };
    let full = &c.methods()[0];
    let from = out.join(s1).join(format!("seed{seed}")).join("pretrained");
    let to = out.join(stage).join("full").join(format!("seed-{seed}"));
    reuse_run(&from, &to, &c.run_of(full, seed))
}

/// Copies the finished full fine-tune of `seed` from a Table 3 stage into its search stage
/// `stage` (`table3-regression-search` or `table3-classification-search`), when it is exactly
/// the search's. Returns whether it copied.
pub fn share_search_full_run(
    cfg: &StudyConfig,
    out: &Path,
    stage: &str,
    seed: u64,
) -> Result<bool> {
    let [_, _, s3, s4, _] = files::STAGES;
    let [r, c] = files::SEARCH_STAGES;
    let (base, cmp) = if stage == r {
        (s3, cfg.table3_regression())
    } else if stage == c {
        (s4, cfg.table3_classification())
    } else {
        return Err(Error::param(
            "stage",
            format!("{stage:?} is not a Table 3 search stage"),
        ));
    };
    let full = &cmp.methods()[0];
    let at = |st: &str| out.join(st).join("full").join(format!("seed-{seed}"));
    reuse_run(&at(base), &at(stage), &cmp.run_of(full, seed))
}

/// The settings that identify a finished Table 3 stage in its `stage.json`.
fn table3_key(c: &CompareConfig) -> serde_json::Value {
    serde_json::json!([
        c.data,
        c.init,
        c.seeds,
        c.task,
        c.binarize,
        c.full,
        c.lora,
        c.peft_epochs
    ])
}

/// Checks the study's inputs and that `out` holds no different study, then records `cfg` as
/// `out/study.json` (so a resumed or parallel run continues the same study).
pub fn prepare(cfg: &StudyConfig, out: &Path) -> Result<()> {
    if cfg.seeds.is_empty() {
        return Err(Error::param("seeds", "give at least one seed"));
    }
    for p in [&cfg.data, &cfg.external] {
        if !p.is_file() {
            return Err(Error::BadFile {
                path: p.clone(),
                reason: "not found (see `lipo study --help` for where the tables go)".into(),
            });
        }
    }
    if !cfg.pretrained.join(crate::model::files::CONFIG).is_file() {
        return Err(Error::model(
            &cfg.pretrained,
            "no config.json: the study starts from a pre-trained model folder (--init)",
        ));
    }
    fsutil::claim_dir(out, files::CONFIG, "out")?;
    let cfg_path = out.join(files::CONFIG);
    if cfg_path.is_file() {
        let old: StudyConfig = fsutil::read_json(&cfg_path)?;
        if &old != cfg {
            return Err(Error::param(
                "out",
                format!(
                    "{} holds a different study (see its {}); choose another folder, or re-run \
                     that one with --config {}",
                    out.display(),
                    files::CONFIG,
                    cfg_path.display()
                ),
            ));
        }
    }
    fsutil::write_json(&cfg_path, cfg)
}

#[cfg(test)]
mod tests;
