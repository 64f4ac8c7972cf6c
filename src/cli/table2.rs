//! `lipo compare-influence`: Table 2 of the study on the command line.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use lipo::data::TableOptions;
use lipo::influence::{LissaConfig, ParamSet};
use lipo::model::Config;
use lipo::selection::ScoreConfig;
use lipo::study::table2::{self, Table2Config};
use lipo::train::InitFrom;

/// Arguments of `lipo compare-influence`.
#[derive(Args)]
pub struct CompareInfluenceArgs {
    /// Labelled table (MoleculeNet Lipophilicity).
    #[arg(long, required_unless_present = "config")]
    data: Option<PathBuf>,
    /// External labelled table to score and select from (e.g. external.csv: SMILES,Label).
    #[arg(long, required_unless_present = "config")]
    external: Option<PathBuf>,
    /// Output folder: seed<S>/ runs and scores, table2.md, table2.json, figures.
    #[arg(long)]
    out: PathBuf,
    /// Leave out the TracIn row (a second run without external data that keeps its epoch
    /// models, TracIn scores from them, and a run with the TracIn top fraction).
    #[arg(long)]
    no_tracin: bool,
    /// Where the configuration, table and figures go (default: --out); `lipo study --jobs`
    /// gives each per-seed job its own.
    #[arg(long, hide = true)]
    summary_dir: Option<PathBuf>,
    /// Re-run the comparison described by this table2_config.json (other flags are ignored).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Starting model of every run (default: lipo's bundled model).
    #[arg(long, conflicts_with = "arch")]
    init: Option<PathBuf>,
    /// Random-init architecture (tiny, small, xl) when there is no pre-trained model.
    #[arg(long)]
    arch: Option<String>,
    /// Comma-separated seeds.
    #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Fine-tuning epochs of every run (the best validation epoch is kept).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Share of the selectable external rows kept by the random, top and bottom rows.
    #[arg(long, default_value_t = 0.5)]
    fraction: f64,
    /// Influence parameters: head, last:N, all or adapters.
    #[arg(long, default_value = "last:1")]
    params: String,
    #[command(flatten)]
    lissa: super::influence::LissaArgs,
    /// Smoke test: one seed, 3 epochs.
    #[arg(long)]
    quick: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

impl CompareInfluenceArgs {
    fn resolve(&self) -> Result<Table2Config> {
        if let Some(p) = &self.config {
            return Ok(lipo::fsutil::read_json(p)?);
        }
        let init = match (&self.init, &self.arch) {
            (Some(dir), _) => InitFrom::Model(dir.clone()),
            (None, Some(arch)) => InitFrom::Random(Box::new(Config::preset(arch)?)),
            (None, None) => match lipo::model::default_model_dir() {
                Some(dir) => InitFrom::Model(dir),
                None => bail!(
                    "no pre-trained model: pass --init MODEL_DIR (or --arch small for random weights)"
                ),
            },
        };
        let mut cfg = Table2Config::study(
            self.data.clone().expect("clap requires --data"),
            self.external.clone().expect("clap requires --external"),
            init,
        );
        cfg.seeds = self.seeds.clone();
        cfg.finetune.epochs = self.epochs;
        cfg.finetune.lr = self.lr;
        cfg.finetune.batch_size = self.batch_size;
        cfg.fraction = self.fraction;
        cfg.tracin = !self.no_tracin;
        cfg.score = ScoreConfig {
            params: self.params.parse::<ParamSet>()?,
            lissa: self.lissa.config(LissaConfig::default().seed),
            ..ScoreConfig::default()
        };
        cfg.table = TableOptions::default();
        if self.quick {
            cfg.seeds.truncate(1);
            cfg.finetune.epochs = 3;
        }
        Ok(cfg)
    }
}

/// Runs `lipo compare-influence`.
pub fn compare_influence(a: CompareInfluenceArgs) -> Result<()> {
    let cfg = a.resolve()?;
    let device = lipo::device::parse(&a.device)?;
    let mut monitor = super::monitor::CliMonitor::new();
    let summary = a.summary_dir.clone().unwrap_or_else(|| a.out.clone());
    let r = table2::table2_in(&cfg, device, &a.out, &summary, &mut monitor)?;
    drop(monitor);
    println!("{}", r.markdown);
    println!(
        "written: {}",
        summary.join(table2::files::TABLE_MD).display()
    );
    Ok(())
}
