//! `lipo finetune`: fine-tune a regression head and the encoder on a labelled table.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lipo::data::TableOptions;
use lipo::model::Config;
use lipo::train::{self, ensemble, EnsembleRun, FinetuneConfig, FinetuneRun, InitFrom};

use super::monitor::CliMonitor;
use super::table_args::TableArgs;

#[derive(Args)]
pub(crate) struct FinetuneArgs {
    /// Labelled CSV/TSV (optionally .gz).
    #[arg(long, required_unless_present = "config")]
    data: Option<PathBuf>,
    /// Run folder: model/, metrics.json, loss.png, run.json, split.json.
    #[arg(long)]
    out: PathBuf,
    /// Start from this model folder (lipo's or Hugging Face's config.json + model.safetensors).
    #[arg(long, conflicts_with = "arch")]
    init: Option<PathBuf>,
    /// molformer (the default: fine-tune --init or --arch) or graph: a directed
    /// message-passing network (D-MPNN) over the molecule graph, from random weights, with
    /// chemprop's recipe unless set: 50 epochs, batch 50, lr 1e-3, noam schedule.
    #[arg(long, default_value = "molformer", value_parser = ["molformer", "graph"])]
    model_kind: String,
    #[command(flatten)]
    graph: GraphArgs,
    /// Start from random weights of this size: tiny, small or xl.
    #[arg(long)]
    arch: Option<String>,
    /// Re-run the run described by this run.json (other flags are ignored).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Extra labelled table (e.g. selected external molecules) whose rows join training only;
    /// validation and test stay this seed's split of --data, and extra rows that duplicate a
    /// validation or test molecule are dropped (counted in extra.json).
    #[arg(long)]
    extra: Option<PathBuf>,
    /// Seed of the split, batches and weights (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Epochs (default 20, or the --peft method's preset).
    #[arg(long)]
    epochs: Option<usize>,
    /// Molecules per step (default 16; graph: 50).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate (default 1e-4, or the --peft method's preset; graph: 1e-3).
    #[arg(long)]
    lr: Option<f64>,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long)]
    patience: Option<usize>,
    /// Learning-rate schedule over the steps of --epochs: constant (the default), linear
    /// (down to 0), cosine, or noam (up from lr/10 over 4 % of the steps, then down to lr/10;
    /// the default for graph).
    #[arg(long, value_parser = parse_schedule)]
    lr_schedule: Option<lipo::train::LrSchedule>,
    /// Draw fresh random attention features at every training step (the reference MoLFormer
    /// code's behaviour; a regulariser). Evaluation uses the stored features either way.
    #[arg(long)]
    redraw_features: bool,
    /// SMILES augmentation: this share (0–1) of the training molecules is written as a fresh
    /// random SMILES of the same molecule at each epoch; validation and test are not
    /// (default 0).
    #[arg(long)]
    augment: Option<f64>,
    /// Test-time augmentation: validation and test predictions average the SMILES as given
    /// and this many random SMILES of the same molecule; the model keeps the setting
    /// (default 0).
    #[arg(long)]
    tta: Option<usize>,
    /// L2 weight decay added to the gradients (Adam's, not AdamW's; default 0).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    table: TableArgs,
    #[command(flatten)]
    peft: super::peft::PeftArgs,
    /// Train a K-fold ensemble of K members (2 to 32) in --out: the rows that are not test
    /// are dealt into K folds, member k validates (and keeps its best epoch) on fold k; the
    /// gathered ensemble has calibrated sd and an applicability domain (`lipo export` makes
    /// one graph of it)
    #[arg(long)]
    ensemble: Option<usize>,
    /// With --ensemble: train only this member (0-based), e.g. one per process; the
    /// ensemble is gathered by whichever call finds every member finished
    #[arg(long, requires = "ensemble")]
    member: Option<usize>,
    /// Share of the rows held out as test (default 0.2; 0 to train on every row, e.g. a final
    /// ensemble)
    #[arg(long)]
    test_frac: Option<f64>,
    /// Write every SMILES in lipo's canonical form before encoding it (training, evaluation
    /// and, recorded in the model, every prediction); augmented molecules stay random writings
    #[arg(long)]
    canonical: bool,
    /// Table rows (0-based, comma-separated) to leave out of training after the split;
    /// validation and test keep theirs (e.g. to check `lipo explain` by retraining).
    #[arg(long, value_delimiter = ',')]
    exclude_rows: Vec<usize>,
    /// Train only these parameters: head, or last:N (the last N encoder layers, the final
    /// LayerNorm and the head); the rest keep their starting weights. Not with --peft
    #[arg(long, conflicts_with = "peft")]
    train_params: Option<lipo::influence::ParamSet>,
    /// Seed dropout per optimiser step and keep each epoch's batches under --exclude-rows, so
    /// that a retrain without a few rows differs from the run only where they were
    #[arg(long)]
    step_seeds: bool,
    /// Keep the model after every epoch in OUT/epochs/epoch-K/ (TracIn's checkpoints)
    #[arg(long)]
    keep_epochs: bool,
}

fn parse_schedule(s: &str) -> std::result::Result<lipo::train::LrSchedule, String> {
    lipo::train::LrSchedule::parse(s)
        .ok_or_else(|| format!("{s:?} is not constant, linear, cosine or noam"))
}

/// Sizes of a graph model (`--model-kind graph`); unset ones are chemprop's defaults.
#[derive(Args)]
pub(crate) struct GraphArgs {
    /// Graph model: width of messages and atom vectors (300).
    #[arg(long)]
    graph_hidden: Option<usize>,
    /// Graph model: message-passing steps (3).
    #[arg(long)]
    graph_depth: Option<usize>,
    /// Graph model: dropout (0).
    #[arg(long)]
    graph_dropout: Option<f64>,
    /// Graph model: atoms to molecule: mean, sum or norm (sum / 100, the default).
    #[arg(long, value_parser = ["mean", "sum", "norm"])]
    graph_aggregation: Option<String>,
}

impl GraphArgs {
    /// The graph model these flags describe.
    fn config(&self) -> lipo::graph::GraphConfig {
        let d = lipo::graph::GraphConfig::default();
        lipo::graph::GraphConfig {
            hidden: self.graph_hidden.unwrap_or(d.hidden),
            ffn_hidden: self.graph_hidden.unwrap_or(d.ffn_hidden),
            depth: self.graph_depth.unwrap_or(d.depth),
            dropout: self.graph_dropout.unwrap_or(d.dropout),
            aggregation: match self.graph_aggregation.as_deref() {
                Some("mean") => lipo::graph::Aggregation::Mean,
                Some("sum") => lipo::graph::Aggregation::Sum,
                _ => d.aggregation,
            },
            ..d
        }
    }

    /// Whether any graph flag is set.
    fn any(&self) -> bool {
        self.graph_hidden.is_some()
            || self.graph_depth.is_some()
            || self.graph_dropout.is_some()
            || self.graph_aggregation.is_some()
    }
}

pub(crate) fn finetune(a: FinetuneArgs) -> Result<()> {
    if let Some(p) = a
        .config
        .as_ref()
        .filter(|p| p.ends_with(ensemble::files::ENSEMBLE))
    {
        let run: EnsembleRun = lipo::fsutil::read_json(p)?;
        return finetune_ensemble(&run, &a);
    }
    let graph = a.model_kind == "graph";
    if graph && (a.init.is_some() || a.arch.is_some()) {
        anyhow::bail!("--model-kind graph starts from random weights; leave out --init and --arch");
    }
    if !graph && a.graph.any() {
        anyhow::bail!("the --graph-* settings need --model-kind graph");
    }
    // Unset flags take the library's defaults (FinetuneConfig::default), or chemprop's recipe
    // for a graph model.
    let d = FinetuneConfig::default();
    let run = match &a.config {
        Some(p) => lipo::fsutil::read_json::<FinetuneRun>(p)?,
        None => FinetuneRun {
            data: a.data.clone().expect("clap requires --data"),
            fold: None,
            extra: a.extra.clone().map(|path| train::ExtraTable {
                path,
                table: TableOptions::default(),
            }),
            table: a.table.options(),
            init: match (&a.init, &a.arch) {
                _ if graph => InitFrom::Graph(Box::new(a.graph.config())),
                (Some(dir), _) => InitFrom::Model(dir.clone()),
                (None, Some(arch)) => InitFrom::Random(Box::new(Config::preset(arch)?)),
                (None, None) => match lipo::model::default_model_dir() {
                    Some(dir) => InitFrom::Model(dir),
                    None => {
                        eprintln!("note: no bundled pre-trained model found; starting from random weights");
                        InitFrom::Random(Box::new(Config::small()))
                    }
                },
            },
            train: a.peft.resolve(
                FinetuneConfig {
                    batch_size: a
                        .batch_size
                        .unwrap_or(if graph { 50 } else { d.batch_size }),
                    patience: a.patience,
                    seed: a.seed.unwrap_or(d.seed),
                    schedule: a.lr_schedule.unwrap_or(if graph {
                        lipo::train::LrSchedule::Noam
                    } else {
                        lipo::train::LrSchedule::Constant
                    }),
                    redraw_features: a.redraw_features,
                    augment: a.augment.unwrap_or(d.augment),
                    tta: a.tta.unwrap_or(d.tta),
                    weight_decay: a.weight_decay.unwrap_or(d.weight_decay),
                    test_frac: a.test_frac.unwrap_or(d.test_frac),
                    canonical: a.canonical,
                    exclude_rows: a.exclude_rows.clone(),
                    train_params: a.train_params.clone(),
                    step_seeds: a.step_seeds,
                    keep_epochs: a.keep_epochs,
                    ..FinetuneConfig::default()
                },
                a.epochs.or(graph.then_some(50)),
                a.lr.or(graph.then_some(1e-3)),
            )?,
        },
    };
    if let Some(k) = a.ensemble {
        return finetune_ensemble(&EnsembleRun::new(run, k), &a);
    }
    let device = lipo::device::parse(&a.device)?;
    eprintln!(
        "fine-tuning on {} from {}",
        lipo::device::describe(device),
        describe_init(&run.init)
    );
    let mut monitor = CliMonitor::new();
    let r = train::finetune(&run, device, &a.out, &mut monitor)?;
    drop(monitor);
    println!(
        "best epoch {} of {} (validation RMSE {:.4})",
        r.best_epoch,
        r.history.len(),
        r.valid.rmse
    );
    println!(
        "test ({} molecules): MSE {:.4}  MAE {:.4}  RMSE {:.4}  R2 {:.4}  Pearson {:.4}",
        r.test.n, r.test.mse, r.test.mae, r.test.rmse, r.test.r2, r.test.pearson
    );
    println!(
        "mean predictor on test: RMSE {:.4}",
        r.test_mean_predictor.rmse
    );
    super::peft::print_report_extras(&r);
    if let Some(x) = &r.extra {
        println!(
            "extra training rows: {} of {} from {} ({} dropped as duplicates of validation/test molecules)",
            x.used,
            x.rows,
            x.path.display(),
            x.dropped.len()
        );
    }
    println!(
        "throughput {:.1} molecules/s training on {}; wall {:.0} s; {} parameters",
        r.train_mols_per_s, r.device, r.wall_seconds, r.parameters
    );
    println!("model: {}", a.out.join(train::files::MODEL).display());
    Ok(())
}

/// Runs the members of an ensemble (or the one of `--member`) and prints the gathered
/// ensemble's numbers.
fn finetune_ensemble(run: &EnsembleRun, a: &FinetuneArgs) -> Result<()> {
    let device = lipo::device::parse(&a.device)?;
    eprintln!(
        "fine-tuning a {}-member ensemble on {} from {}",
        run.members,
        lipo::device::describe(device),
        describe_init(&run.base.init)
    );
    let mut monitor = CliMonitor::new();
    let r = train::finetune_ensemble(run, device, &a.out, a.member, &mut monitor)?;
    drop(monitor);
    let Some(r) = r else {
        println!(
            "member {} finished; the ensemble is gathered once every member has",
            a.member.unwrap_or(0)
        );
        return Ok(());
    };
    println!(
        "{} members (kept epochs {:?}); out-of-fold RMSE {:.4} over {} molecules",
        r.members, r.best_epochs, r.out_of_fold.rmse, r.out_of_fold.n
    );
    if r.task == lipo::model::Task::Regression {
        println!(
            "sd = {:.3} x the {} (out-of-fold coverage of +-1.96 sd: {:.3})",
            r.sd_scale,
            match r.sd_method {
                lipo::train::SdMethod::Domain => "domain score",
                lipo::train::SdMethod::Spread => "members' spread",
            },
            r.out_of_fold_coverage
        );
        if let Some(a) = &r.sd_alternative {
            if let (Some(c), Some(s)) = (a.test_coverage, a.test_spearman_error_sd) {
                println!(
                    "(the members' spread x {:.3} instead: test coverage {c:.3}, Spearman {s:.3})",
                    a.scale
                );
            }
        }
    }
    println!(
        "out of domain above a domain score of {:.4}",
        r.domain_threshold
    );
    if let Some(t) = &r.test {
        let m = &t.metrics;
        let single = t.members.iter().map(|x| x.rmse).sum::<f64>() / t.members.len() as f64;
        println!(
            "test ({} molecules): RMSE {:.4}  MAE {:.4}  R2 {:.4}  (one member alone: RMSE {:.4} on average)",
            m.n, m.rmse, m.mae, m.r2, single
        );
        if let Some(c) = &t.classification {
            println!(
                "test classification: accuracy {:.4}  F1 {:.4}  ROC-AUC {:.4}",
                c.accuracy, c.f1, c.roc_auc
            );
        } else {
            println!("test coverage of +-1.96 sd {:.3}", t.coverage);
        }
        println!(
            "Spearman(|error|, sd) {:.3}; {:.1} % of test molecules out of domain",
            t.spearman_error_sd,
            100.0 * t.out_of_domain_share
        );
        for b in &t.domain_bins {
            println!(
                "  domain percentile {:<26} n {:>4}  RMSE {:.4}  mean sd {:.4}",
                b.percentiles, b.n, b.rmse, b.mean_sd
            );
        }
    }
    println!(
        "ensemble: {} (export it with lipo export --model)",
        a.out.display()
    );
    Ok(())
}

pub(crate) fn describe_init(init: &InitFrom) -> String {
    match init {
        InitFrom::Random(c) => format!(
            "random init ({} layers x {})",
            c.num_hidden_layers, c.hidden_size
        ),
        InitFrom::Model(p) => p.display().to_string(),
        InitFrom::Graph(c) => format!(
            "random init (graph model: D-MPNN, hidden {}, depth {})",
            c.hidden, c.depth
        ),
    }
}
