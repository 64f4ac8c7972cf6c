//! Table 1 of the study: fine-tuning from random weights (the floor), from lipo's pre-trained
//! model, and from that model after domain MLM on the training SMILES — over several seeds,
//! on the untouched test split, with the study's Figure 3 (training loss of both pre-trained
//! variants per epoch).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use super::summary::{compare_rmse, regression_table, RegressionRow};
use crate::data::{self, Split, TableOptions};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::mlm::{self, MlmConfig, MlmRun};
use crate::model::Config;
use crate::plot::Series;
use crate::progress::{Event, Monitor};
use crate::tokenizer::SmilesTokenizer;
use crate::train::{self, FinetuneConfig, FinetuneReport, FinetuneRun, InitFrom};

/// What Table 1 runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table1Config {
    /// The labelled table (Lipophilicity).
    pub data: PathBuf,
    /// How to read it.
    pub table: TableOptions,
    /// The pre-trained model (lipo's bundled model by default).
    pub pretrained: PathBuf,
    /// Architecture of the random-init floor.
    pub random_arch: Config,
    /// Seeds; each gives its own split.
    pub seeds: Vec<u64>,
    /// Fine-tuning settings (the seed is set per run).
    pub finetune: FinetuneConfig,
    /// Domain-MLM settings (the seed is set per run).
    pub domain_mlm: MlmConfig,
}

impl Table1Config {
    /// The study's settings: 3 seeds, 20 fine-tuning epochs (best validation epoch kept),
    /// 20 epochs of domain MLM.
    pub fn study(data: PathBuf, pretrained: PathBuf) -> Self {
        Table1Config {
            data,
            table: TableOptions::default(),
            pretrained,
            random_arch: Config::small(),
            seeds: vec![0, 1, 2],
            finetune: FinetuneConfig::default(),
            domain_mlm: domain_mlm_defaults(20),
        }
    }
}

/// Domain-MLM settings for a few thousand molecules: `epochs` passes, batch 32, lr 1e-4.
pub fn domain_mlm_defaults(epochs: usize) -> MlmConfig {
    MlmConfig {
        epochs,
        batch_size: 32,
        lr: 1e-4,
        warmup_steps: 50,
        valid_size: 150,
        eval_every: 100,
        checkpoint_every: 200,
        ..MlmConfig::default()
    }
}

/// Table 1's rows and readings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table1Report {
    /// Random init, pre-trained, pre-trained + domain MLM, and the mean predictor.
    pub rows: Vec<RegressionRow>,
    /// The markdown table.
    pub markdown: String,
    /// Plain-language readings of the comparisons.
    pub readings: Vec<String>,
    /// Held-out masked accuracy after domain MLM, per seed.
    pub domain_mlm_accuracy: Vec<f64>,
}

/// Writes the training SMILES of `split` as a one-column corpus for domain MLM.
fn write_train_corpus(path: &Path, data: &data::Dataset, split: &Split) -> Result<()> {
    let mut s = String::from("smiles\n");
    for &r in &split.train {
        s.push_str(&data.records[r].smiles);
        s.push('\n');
    }
    fsutil::write_atomic(path, s.as_bytes())
}

/// Runs (or resumes; finished runs are reused) every run of Table 1 under `out`, and writes
/// the table there.
pub fn table1(
    cfg: &Table1Config,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<Table1Report> {
    table1_in(cfg, device, out, out, monitor)
}

/// [`table1`] with the runs under `out` and the configuration, table and figure in `summary`
/// (a per-seed job of `lipo study --jobs` keeps its one-seed table out of the stage's).
pub fn table1_in(
    cfg: &Table1Config,
    device: Device,
    out: &Path,
    summary: &Path,
    monitor: &mut dyn Monitor,
) -> Result<Table1Report> {
    if cfg.seeds.is_empty() {
        return Err(Error::param("seeds", "give at least one seed"));
    }
    for d in [out, summary] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    fsutil::write_json(&summary.join("table1_config.json"), cfg)?;
    let tokenizer = SmilesTokenizer::molformer();
    let data = data::read_table(&cfg.data, &tokenizer, &cfg.table, true)?;
    let (mut random, mut pre, mut domain, mut floor) = (vec![], vec![], vec![], vec![]);
    let mut curves: Vec<Curves> = vec![];
    let mut accs = vec![];
    for &seed in &cfg.seeds {
        let dir = out.join(format!("seed{seed}"));
        let runs = run_seed(cfg, seed, &data, &dir, device, monitor)?;
        random.push(runs.random.test);
        floor.push(runs.random.test_mean_predictor);
        pre.push(runs.pretrained.test);
        accs.push(runs.mlm_accuracy);
        domain.push(runs.domain.test);
        curves.push((
            runs.pretrained
                .history
                .iter()
                .map(|h| h.train_loss)
                .collect(),
            runs.domain.history.iter().map(|h| h.train_loss).collect(),
        ));
    }

    let rows = vec![
        RegressionRow::new("random init (floor)", random),
        RegressionRow::new("pre-trained (without domain MLM)", pre),
        RegressionRow::new("pre-trained + domain MLM (with)", domain),
        RegressionRow::new("mean predictor", floor),
    ];
    let readings = vec![
        compare_rmse(&rows[1], &rows[2]),
        compare_rmse(&rows[0], &rows[1]),
    ];
    let markdown = format!("{}\n{}\n", regression_table(&rows), readings.join("\n"));
    plot_train_loss(&summary.join("table1_train_loss.png"), &curves)?;
    let report = Table1Report {
        rows,
        markdown,
        readings,
        domain_mlm_accuracy: accs,
    };
    fsutil::write_atomic(&summary.join("table1.md"), report.markdown.as_bytes())?;
    fsutil::write_json(&summary.join("table1.json"), &report)?;
    Ok(report)
}

/// The fine-tunes of one seed (from random, pre-trained and domain-MLM weights) and the
/// domain MLM's held-out masked-token accuracy.
struct SeedRuns {
    random: FinetuneReport,
    pretrained: FinetuneReport,
    domain: FinetuneReport,
    mlm_accuracy: f64,
}

/// Runs (or reuses) the runs of one seed under `dir`.
fn run_seed(
    cfg: &Table1Config,
    seed: u64,
    data: &data::Dataset,
    dir: &Path,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<SeedRuns> {
    let ft = FinetuneConfig {
        seed,
        ..cfg.finetune.clone()
    };
    let run = |init: InitFrom| FinetuneRun {
        data: cfg.data.clone(),
        fold: None,
        extra: None,
        table: cfg.table.clone(),
        init,
        train: ft.clone(),
    };

    say(monitor, seed, "random init");
    let random: FinetuneReport = train::finetune(
        &run(InitFrom::Random(Box::new(cfg.random_arch.clone()))),
        device,
        &dir.join("random"),
        monitor,
    )?;

    say(monitor, seed, "pre-trained");
    let pretrained = train::finetune(
        &run(InitFrom::Model(cfg.pretrained.clone())),
        device,
        &dir.join("pretrained"),
        monitor,
    )?;

    say(monitor, seed, "domain MLM on the training SMILES");
    let ft_run = run(InitFrom::Model(
        dir.join("domain-mlm").join(mlm::files::MODEL),
    ));
    let ft_dir = dir.join("domain-finetune");
    let mlm_accuracy = domain_mlm(cfg, data, dir, &ft_run, &ft_dir, device, monitor)?;

    say(monitor, seed, "fine-tuning after domain MLM");
    let domain = train::finetune(&ft_run, device, &ft_dir, monitor)?;
    Ok(SeedRuns {
        random,
        pretrained,
        domain,
        mlm_accuracy,
    })
}

/// Domain MLM of the pre-trained model on the training SMILES of `ft_run`'s seed, in
/// `dir/domain-mlm`; returns its held-out masked-token accuracy. When the fine-tune after
/// it (`ft_run` in `ft_dir`) is finished, the MLM model is not needed again: its record
/// suffices (its weights may not have been kept).
fn domain_mlm(
    cfg: &Table1Config,
    data: &data::Dataset,
    dir: &Path,
    ft_run: &FinetuneRun,
    ft_dir: &Path,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<f64> {
    let ft = &ft_run.train;
    let seed = ft.seed;
    let split = Split::new(data.records.len(), seed, ft.test_frac, ft.valid_frac)?;
    let corpus = dir.join("domain_corpus.csv");
    write_train_corpus(&corpus, data, &split)?;
    let mlm_run = MlmRun {
        corpus,
        table: TableOptions::default(),
        exclude: vec![],
        init: InitFrom::Model(cfg.pretrained.clone()),
        mlm: MlmConfig {
            seed,
            ..cfg.domain_mlm.clone()
        },
    };
    let mlm_dir = dir.join("domain-mlm");
    let m = match (
        train::finished_record(ft_run, ft_dir)?,
        mlm::finished_record(&mlm_run, &mlm_dir)?,
    ) {
        (Some(_), Some(m)) => m,
        _ => mlm::mlm(&mlm_run, device, &mlm_dir, monitor)?,
    };
    Ok(m.valid_accuracy)
}

/// Tells `m` what Table 1 does now for `seed`.
fn say(m: &mut dyn Monitor, seed: u64, what: &str) {
    m.event(&Event::Message {
        text: format!("table 1, seed {seed}: {what}"),
    });
}

/// Training losses per epoch without and with domain MLM, for one seed.
type Curves = (Vec<f64>, Vec<f64>);

/// The study's Figure 3: training loss per epoch of both pre-trained variants (mean over seeds).
fn plot_train_loss(path: &Path, curves: &[Curves]) -> Result<()> {
    let mean_curve = |pick: fn(&Curves) -> &Vec<f64>| -> Vec<(f64, f64)> {
        let len = curves.iter().map(|c| pick(c).len()).min().unwrap_or(0);
        (0..len)
            .map(|e| {
                (
                    (e + 1) as f64,
                    curves.iter().map(|c| pick(c)[e]).sum::<f64>() / curves.len() as f64,
                )
            })
            .collect()
    };
    crate::plot::lines(
        path,
        "Training loss: without vs with domain MLM",
        "epoch",
        "training MSE (standardised)",
        &[
            Series {
                name: "without domain MLM".into(),
                points: mean_curve(|c| &c.0),
            },
            Series {
                name: "with domain MLM".into(),
                points: mean_curve(|c| &c.1),
            },
        ],
    )
}
