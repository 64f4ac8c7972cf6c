//! `lipo influence` and `lipo select`: Task 2's scoring and selection.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use lipo::data::{self, Split, TableOptions};
use lipo::influence::{LissaConfig, ParamSet};
use lipo::model::Model;
use lipo::peft::LoadModel;
use lipo::selection::{self, ScoreConfig, ScoreReport, Selection, Solver};

/// The LiSSA flags shared by `lipo influence` and `lipo compare-influence`.
#[derive(Args, Clone)]
pub struct LissaArgs {
    /// LiSSA recursion depth.
    #[arg(long, default_value_t = 100)]
    lissa_depth: usize,
    /// LiSSA damping d (the ridge is λ = scale·d).
    #[arg(long, default_value_t = 0.05)]
    lissa_damping: f64,
    /// LiSSA scale s; 0 = 1.5 × the largest Hessian eigenvalue (power iteration).
    #[arg(long, default_value_t = 0.0)]
    lissa_scale: f64,
    /// Training rows per Hessian-vector product (0 = all).
    #[arg(long, default_value_t = 32)]
    lissa_batch: usize,
}

impl LissaArgs {
    /// The LiSSA settings these flags give (one repeat), sampling with `seed`.
    pub fn config(&self, seed: u64) -> LissaConfig {
        LissaConfig {
            depth: self.lissa_depth,
            damping: self.lissa_damping,
            scale: self.lissa_scale,
            batch_size: self.lissa_batch,
            seed,
            ..LissaConfig::default()
        }
    }
}

/// Arguments of `lipo influence`.
#[derive(Args)]
pub struct InfluenceArgs {
    /// Fine-tuned model folder (with a regression head).
    #[arg(long)]
    model: PathBuf,
    /// The labelled table the model was fine-tuned on (its train rows give the Hessian,
    /// its validation rows the target; test rows are never used).
    #[arg(long)]
    data: PathBuf,
    /// External labelled table to score (e.g. external.csv: SMILES,Label).
    #[arg(long)]
    external: PathBuf,
    /// Output folder: scores.csv, influence.json, influence_hist.png, influence_vs_label.png.
    #[arg(long)]
    out: PathBuf,
    /// The fine-tuning run folder whose split.json to use (else --seed splits anew).
    #[arg(long)]
    run: Option<PathBuf>,
    /// Split seed when no --run is given.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Parameters: head, last:N, all or adapters.
    #[arg(long, default_value = "last:1")]
    params: String,
    /// Inverse-Hessian solver: lissa or exact (conjugate gradient).
    #[arg(long, default_value = "lissa")]
    solver: String,
    #[arg(long, default_value_t = 1)]
    lissa_repeats: usize,
    #[command(flatten)]
    lissa: LissaArgs,
    #[arg(long, default_value = "auto")]
    device: String,
    /// SMILES column of the external table.
    #[arg(long)]
    external_smiles_col: Option<String>,
    /// Label column of the external table.
    #[arg(long)]
    external_label_col: Option<String>,
}

/// Runs `lipo influence`.
pub fn influence(a: InfluenceArgs) -> Result<()> {
    let device = lipo::device::parse(&a.device)?;
    let model = Model::load(&a.model, device)?;
    let data = data::read_table(&a.data, &model.tokenizer, &TableOptions::default(), true)?;
    let split: Split = match &a.run {
        Some(run) => lipo::fsutil::read_json(&run.join(lipo::train::files::SPLIT))?,
        None => Split::new(data.records.len(), a.seed, 0.2, 0.1)?,
    };
    if split
        .train
        .iter()
        .chain(&split.valid)
        .chain(&split.test)
        .any(|&r| r >= data.records.len())
    {
        bail!(
            "the split does not fit {} ({} rows)",
            a.data.display(),
            data.records.len()
        );
    }
    let ext_opts = TableOptions {
        smiles_col: a.external_smiles_col.clone(),
        label_col: a.external_label_col.clone(),
        skip_bad_rows: false,
    };
    let external = data::read_table(&a.external, &model.tokenizer, &ext_opts, true)?;
    let solver = match a.solver.as_str() {
        "lissa" => Solver::Lissa,
        "exact" => Solver::Exact,
        other => bail!("invalid value for --solver: {other:?} (lissa or exact)"),
    };
    let cfg = ScoreConfig {
        params: a.params.parse::<ParamSet>()?,
        solver,
        lissa: LissaConfig {
            repeats: a.lissa_repeats,
            ..a.lissa.config(a.seed)
        },
        ..ScoreConfig::default()
    };
    eprintln!(
        "scoring {} external molecules over {} ({} solver) on {}",
        external.records.len(),
        cfg.params,
        a.solver,
        lipo::device::describe(device)
    );
    let report = selection::score_external(&model, &data, &split, &external, &cfg)?;
    std::fs::create_dir_all(&a.out)?;
    selection::write_scores(&a.out.join("scores.csv"), &report.rows)?;
    lipo::fsutil::write_json(&a.out.join("influence.json"), &report)?;
    selection::plot_scores(&a.out, &report)?;
    println!(
        "{} molecules scored in {:.1} s over {} parameters; inverse-HVP {}",
        report.rows.len(),
        report.seconds,
        report.parameters,
        if report.converged {
            "converged"
        } else {
            "did NOT converge (raise --lissa-depth or --lissa-damping)"
        }
    );
    let n_helpful = report.rows.iter().filter(|r| r.helpfulness > 0.0).count();
    println!(
        "{n_helpful} of {} are predicted to help (helpfulness > 0)",
        report.rows.len()
    );
    for (split, how, n) in &report.duplicates {
        println!("duplicates of {split} molecules ({how} match): {n}");
    }
    let blocked = report.rows.iter().filter(|r| !r.selectable).count();
    println!("{blocked} duplicates of validation/test molecules will never be selected");
    println!("written: {}", a.out.join("scores.csv").display());
    Ok(())
}

/// Arguments of `lipo select`.
#[derive(Args)]
pub struct SelectArgs {
    /// influence.json written by `lipo influence`.
    #[arg(long)]
    scores: PathBuf,
    /// Output table (smiles,label) to add to training.
    #[arg(long)]
    out: PathBuf,
    /// Most helpful fraction of the selectable rows (default 0.5, as in the study).
    #[arg(long, group = "how")]
    top_fraction: Option<f64>,
    /// Least helpful fraction (a sanity baseline).
    #[arg(long, group = "how")]
    bottom_fraction: Option<f64>,
    /// The k most helpful rows.
    #[arg(long, group = "how")]
    top_k: Option<usize>,
    /// Only rows predicted to help.
    #[arg(long, group = "how")]
    helpful_only: bool,
    /// A random fraction (with --seed), the baseline influence must beat.
    #[arg(long, group = "how")]
    random_fraction: Option<f64>,
    /// Every selectable row.
    #[arg(long, group = "how")]
    all: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `lipo select`.
pub fn select(a: SelectArgs) -> Result<()> {
    let report: ScoreReport = lipo::fsutil::read_json(&a.scores)?;
    let how = if let Some(f) = a.bottom_fraction {
        Selection::BottomFraction(f)
    } else if let Some(k) = a.top_k {
        Selection::TopK(k)
    } else if a.helpful_only {
        Selection::HelpfulOnly
    } else if let Some(f) = a.random_fraction {
        Selection::RandomFraction(f, a.seed)
    } else if a.all {
        Selection::All
    } else {
        Selection::TopFraction(a.top_fraction.unwrap_or(0.5))
    };
    let chosen = selection::select(&report.rows, &how)?;
    selection::write_selected(&a.out, &report.rows, &chosen)?;
    println!(
        "selected {} of {} rows ({how:?}) into {}",
        chosen.len(),
        report.rows.len(),
        a.out.display()
    );
    Ok(())
}
