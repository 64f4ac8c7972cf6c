//! The `lipo` command line: a thin skin over the library.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod cli;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lipo::data::{self, TableOptions};
use lipo::model::{Config, Model};
use lipo::progress::{Event, Monitor};
use lipo::train::{self, FinetuneConfig, FinetuneRun, InitFrom};

#[derive(Parser)]
#[command(
    name = "lipo",
    version,
    about = "Fine-tune MoLFormer on lipophilicity and serve it"
)]
struct Cli {
    /// Tensor threads on the CPU (default: all cores).
    #[arg(long, global = true)]
    threads: Option<i32>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The whole study (Tables 1–3, best model exported to ONNX and checked) with a report;
    /// `--quick` for a smoke test.
    Study(cli::study::StudyArgs),
    /// Data sets: `lipo data fetch` downloads MoleculeNet Lipophilicity (SHA-256 checked).
    #[command(subcommand)]
    Data(cli::study::DataCmd),
    /// Fine-tune a regression head and the encoder on a labelled table (Task 1.1).
    Finetune(FinetuneArgs),
    /// Masked-language-model training on a SMILES corpus (pre-training or domain MLM).
    Mlm(MlmArgs),
    /// Influence of external labelled molecules on validation loss (Task 2, LiSSA).
    Influence(cli::influence::InfluenceArgs),
    /// Select external molecules from influence scores.
    Select(cli::influence::SelectArgs),
    /// Table 1 of the study: random init vs pre-trained vs pre-trained + domain MLM, over seeds.
    CompareMlm(CompareMlmArgs),
    /// Table 2 of the study: train + influence-selected external molecules vs random, all,
    /// bottom and none, over seeds.
    CompareInfluence(cli::table2::CompareInfluenceArgs),
    /// Task 3: full fine-tuning vs BitFit vs LoRA vs IA3 on the same splits and seeds.
    ComparePeft(cli::peft::ComparePeftArgs),
    /// Fold LoRA/IA3 adapters into the base weights (a plain model folder, e.g. for export).
    Merge(cli::peft::MergeArgs),
    /// Metrics of a trained model on a labelled table (all rows, or a run's test split).
    Evaluate(EvaluateArgs),
    /// Predict with a model folder (tch) or an exported bundle (ONNX Runtime, streamed);
    /// invalid SMILES get an error column.
    Predict(PredictArgs),
    /// Mean-pooled encoder embeddings as a .npy matrix [molecules, hidden].
    Embed(EmbedArgs),
    /// Export a model folder as an ONNX bundle (model.onnx, tokenizer.json, lipo.json).
    Export(ExportArgs),
    /// Molecules/s of ONNX Runtime vs tch eager on the same model at several batch sizes.
    Bench(BenchArgs),
    /// Random SMILES of every molecule of a table (the augmentation of `finetune --augment`).
    Enumerate(cli::enumerate::EnumerateArgs),
}

#[derive(Args, Clone)]
struct TableArgs {
    /// Header of the SMILES column (default: the first header containing "smiles").
    #[arg(long)]
    smiles_col: Option<String>,
    /// Header of the label column (default: exp, label, y, logd, target or value).
    #[arg(long)]
    label_col: Option<String>,
    /// Skip bad rows (counted) instead of stopping at the first.
    #[arg(long)]
    skip_bad_rows: bool,
}

impl TableArgs {
    fn options(&self) -> TableOptions {
        TableOptions {
            smiles_col: self.smiles_col.clone(),
            label_col: self.label_col.clone(),
            skip_bad_rows: self.skip_bad_rows,
        }
    }
}

#[derive(Args)]
struct FinetuneArgs {
    /// Labelled CSV/TSV (optionally .gz).
    #[arg(long, required_unless_present = "config")]
    data: Option<PathBuf>,
    /// Run folder: model/, metrics.json, loss.png, run.json, split.json.
    #[arg(long)]
    out: PathBuf,
    /// Start from this model folder (lipo's or Hugging Face's config.json + model.safetensors).
    #[arg(long, conflicts_with = "arch")]
    init: Option<PathBuf>,
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
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Epochs (default 20, or the --peft method's preset).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Learning rate (default 1e-4, or the --peft method's preset).
    #[arg(long)]
    lr: Option<f64>,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long)]
    patience: Option<usize>,
    /// Learning-rate schedule over the steps of --epochs: constant, linear (down to 0) or
    /// cosine.
    #[arg(long, default_value = "constant", value_parser = parse_schedule)]
    lr_schedule: lipo::train::LrSchedule,
    /// Draw fresh random attention features at every training step (the reference MoLFormer
    /// code's behaviour; a regulariser). Evaluation uses the stored features either way.
    #[arg(long)]
    redraw_features: bool,
    /// SMILES augmentation: this share (0–1) of the training molecules is written as a fresh
    /// random SMILES of the same molecule at each epoch; validation and test are not.
    #[arg(long, default_value_t = 0.0)]
    augment: f64,
    /// Test-time augmentation: validation and test predictions average the SMILES as given
    /// and this many random SMILES of the same molecule; the model keeps the setting.
    #[arg(long, default_value_t = 0)]
    tta: usize,
    /// L2 weight decay added to the gradients (Adam's, not AdamW's).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    table: TableArgs,
    #[command(flatten)]
    peft: cli::peft::PeftArgs,
}

fn parse_schedule(s: &str) -> std::result::Result<lipo::train::LrSchedule, String> {
    lipo::train::LrSchedule::parse(s)
        .ok_or_else(|| format!("{s:?} is not constant, linear or cosine"))
}

#[derive(Args)]
struct MlmArgs {
    /// SMILES corpus: CSV/TSV with a SMILES column or a .smi list, optionally .gz.
    #[arg(long, required_unless_present = "config")]
    corpus: Option<PathBuf>,
    /// Run folder: model/, metrics.json, mlm.png, run.json, checkpoint/.
    #[arg(long)]
    out: PathBuf,
    /// Continue from this model folder (else random weights of --arch).
    #[arg(long, conflicts_with = "arch")]
    init: Option<PathBuf>,
    /// Random-init architecture: tiny, small or xl.
    #[arg(long)]
    arch: Option<String>,
    /// Tables whose molecules are removed from the corpus (exact SMILES match); repeatable.
    #[arg(long)]
    exclude: Vec<PathBuf>,
    /// Re-run the run described by this run.json.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Stop after this many steps (fixes the learning-rate schedule's length).
    #[arg(long)]
    max_steps: Option<u64>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    #[arg(long, default_value_t = 500)]
    warmup_steps: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 1000)]
    eval_every: u64,
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    /// Held-out molecules for masked accuracy.
    #[arg(long, default_value_t = 2000)]
    valid_size: usize,
    /// Draw fresh random attention features at every training step (the reference MoLFormer
    /// code's behaviour). Evaluation uses the stored features either way.
    #[arg(long)]
    redraw_features: bool,
    /// SMILES augmentation: this share (0–1) of the training molecules is written as a fresh
    /// random SMILES of the same molecule at each pass; held-out molecules are not.
    #[arg(long, default_value_t = 0.0)]
    augment: f64,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long)]
    smiles_col: Option<String>,
}

#[derive(Args)]
struct CompareMlmArgs {
    /// Labelled table (MoleculeNet Lipophilicity).
    #[arg(long, required_unless_present = "config")]
    data: Option<PathBuf>,
    /// Re-run the comparison described by this table1_config.json (other flags but --out and
    /// --device are ignored).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output folder: one sub-folder per seed and run, table1.md, table1.json, figure.
    #[arg(long)]
    out: PathBuf,
    /// Where the configuration, table and figures go (default: --out); `lipo study --jobs`
    /// gives each per-seed job its own.
    #[arg(long, hide = true)]
    summary_dir: Option<PathBuf>,
    /// Pre-trained model (default: lipo's bundled model).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Comma-separated seeds.
    #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Fine-tuning epochs (the best validation epoch is kept).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Domain-MLM epochs over the training SMILES.
    #[arg(long, default_value_t = 20)]
    mlm_epochs: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// SMILES augmentation in every fine-tuning run (as `finetune --augment`).
    #[arg(long, default_value_t = 0.0)]
    augment: f64,
    /// Test-time augmentation in every fine-tuning run (as `finetune --tta`).
    #[arg(long, default_value_t = 0)]
    tta: usize,
    /// SMILES augmentation in domain MLM (as `mlm --augment`).
    #[arg(long, default_value_t = 0.0)]
    mlm_augment: f64,
    /// Smoke test: one seed, 3 fine-tuning epochs, 2 domain-MLM epochs.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    table: TableArgs,
}

#[derive(Args)]
struct EvaluateArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    /// Evaluate only the test rows of this fine-tuning run folder (its split.json).
    #[arg(long)]
    run: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    table: TableArgs,
}

#[derive(Args)]
struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// CSV/TSV with a SMILES column, a .smi list, or - for SMILES on standard input.
    #[arg(long)]
    input: PathBuf,
    /// Output CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long)]
    smiles_col: Option<String>,
}

#[derive(Args)]
struct EmbedArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    input: PathBuf,
    /// Output .npy (float32, [molecules, hidden], input order).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long)]
    smiles_col: Option<String>,
}

#[derive(Args)]
struct ExportArgs {
    /// Model folder (config.json, model.safetensors, tokenizer.json, lipo.json).
    #[arg(long)]
    model: PathBuf,
    /// Bundle folder to write (conventionally NAME.lipo).
    #[arg(long)]
    out: PathBuf,
    /// Weight storage: none (float32, matches tch within 1e-4) or int8 (the encoder's linear
    /// layers as int8 with dynamically quantized activations: faster on CPUs, small error).
    #[arg(long, default_value = "none", value_parser = parse_quantize)]
    quantize: lipo::export::Quantize,
}

fn parse_quantize(s: &str) -> std::result::Result<lipo::export::Quantize, String> {
    lipo::export::Quantize::parse(s).ok_or_else(|| format!("{s:?} is not none or int8"))
}

#[derive(Args)]
struct BenchArgs {
    /// Model folder (exported to a temporary bundle for ONNX Runtime).
    #[arg(long)]
    model: PathBuf,
    /// SMILES table, e.g. lipophilicity.csv (default: $LIPO_DATA_DIR/lipophilicity.csv).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    batch_sizes: Vec<usize>,
    /// Use only the first N molecules.
    #[arg(long)]
    limit: Option<usize>,
    /// Results as JSON.
    #[arg(long, default_value = "bench.json")]
    out: PathBuf,
    #[arg(long)]
    smiles_col: Option<String>,
    /// Also time an int8 export (`lipo export --quantize int8`) and report its error.
    #[arg(long)]
    int8: bool,
    /// ONNX Runtime intra-op threads (default: --threads).
    #[arg(long)]
    ort_threads: Option<usize>,
    /// Timed passes per engine and batch size (engines take turns on slices of 256 molecules);
    /// the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

/// Progress bar plus Ctrl-C: the first Ctrl-C asks the job to stop at its next safe point.
pub(crate) struct CliMonitor {
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    /// Stage name, first step seen and when, and the last progress line (for logs, where the
    /// bar is hidden).
    stage: String,
    first: Option<(u64, std::time::Instant)>,
    last_line: Option<std::time::Instant>,
}

/// Seconds between progress lines when the bar is hidden (standard error is not a terminal).
const LOG_EVERY_S: u64 = 30;

impl CliMonitor {
    pub(crate) fn new() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if s.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: stopping at the next safe point (Ctrl-C again to abort)");
        });
        CliMonitor {
            bar: None,
            stop,
            stage: String::new(),
            first: None,
            last_line: None,
        }
    }
}

impl CliMonitor {
    /// Whether Ctrl-C asked the work to stop.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// In a log (no visible bar), a progress line every [`LOG_EVERY_S`] seconds and at the end.
    fn log_line(&mut self, step: u64, total: u64, loss: f64) {
        if self.bar.as_ref().is_some_and(|b| !b.is_hidden()) {
            return;
        }
        let now = std::time::Instant::now();
        let (first, t0) = *self.first.get_or_insert((step, now));
        let due = self
            .last_line
            .is_none_or(|t| now.duration_since(t).as_secs() >= LOG_EVERY_S);
        if !(due || step == total) || step == first {
            return;
        }
        self.last_line = Some(now);
        let rate = (step - first) as f64 / now.duration_since(t0).as_secs_f64().max(1e-9);
        let eta = total.saturating_sub(step) as f64 / rate.max(1e-9);
        eprintln!(
            "{} step {step}/{total} ({:.1}%)  loss {loss:.4}  {rate:.2} steps/s  ETA {}",
            self.stage,
            100.0 * step as f64 / total.max(1) as f64,
            hms(eta)
        );
    }

    /// A line above the bar (or on stderr when there is no visible bar, e.g. in a log file).
    fn say(&self, line: &str) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(line),
            _ => eprintln!("{line}"),
        }
    }
}

impl Monitor for CliMonitor {
    fn event(&mut self, e: &Event) -> bool {
        match e {
            Event::Start { stage, total } => {
                let bar = ProgressBar::new(*total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}",
                    )
                    .expect("valid template"),
                );
                bar.set_prefix(stage.clone());
                self.bar = Some(bar);
                self.stage = stage.clone();
                self.first = None;
                self.last_line = None;
            }
            Event::Step { step, total, loss } => {
                if let Some(b) = &self.bar {
                    b.set_position(*step);
                    b.set_message(format!("loss {loss:.4}"));
                }
                self.log_line(*step, *total, *loss);
            }
            Event::Epoch {
                epoch,
                train_loss,
                valid_loss,
            } => self.say(&format!(
                "epoch {epoch:3}  train {train_loss:.4}  valid {valid_loss:.4}"
            )),
            Event::Message { text } => self.say(text),
        }
        !self.stop.load(Ordering::SeqCst)
    }
}

/// Seconds as h:mm:ss.
fn hms(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl Drop for CliMonitor {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIPO_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as i32)
            .unwrap_or(1)
    });
    tch::set_num_threads(threads);
    match cli.cmd {
        Cmd::Study(a) => cli::study::study(a, threads),
        Cmd::Data(c) => cli::study::data(c),
        Cmd::Finetune(a) => finetune(a),
        Cmd::Mlm(a) => mlm(a),
        Cmd::Influence(a) => cli::influence::influence(a),
        Cmd::Select(a) => cli::influence::select(a),
        Cmd::CompareMlm(a) => compare_mlm(a),
        Cmd::CompareInfluence(a) => cli::table2::compare_influence(a),
        Cmd::ComparePeft(a) => cli::peft::compare_peft(a, threads),
        Cmd::Merge(a) => cli::peft::merge(a),
        Cmd::Evaluate(a) => evaluate(a),
        Cmd::Predict(a) => predict(a, threads),
        Cmd::Embed(a) => embed(a),
        Cmd::Export(a) => export(a),
        Cmd::Bench(a) => bench(a, threads),
        Cmd::Enumerate(a) => cli::enumerate::enumerate(a),
    }
}

fn finetune(a: FinetuneArgs) -> Result<()> {
    let run = match &a.config {
        Some(p) => lipo::fsutil::read_json::<FinetuneRun>(p)?,
        None => FinetuneRun {
            data: a.data.clone().expect("clap requires --data"),
            extra: a.extra.clone().map(|path| train::ExtraTable {
                path,
                table: TableOptions::default(),
            }),
            table: a.table.options(),
            init: match (&a.init, &a.arch) {
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
                    batch_size: a.batch_size,
                    patience: a.patience,
                    seed: a.seed,
                    schedule: a.lr_schedule,
                    redraw_features: a.redraw_features,
                    augment: a.augment,
                    tta: a.tta,
                    weight_decay: a.weight_decay,
                    ..FinetuneConfig::default()
                },
                a.epochs,
                a.lr,
            )?,
        },
    };
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
    cli::peft::print_report_extras(&r);
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

fn mlm(a: MlmArgs) -> Result<()> {
    use lipo::mlm::{MlmConfig, MlmRun};
    let run = match &a.config {
        Some(p) => lipo::fsutil::read_json::<MlmRun>(p)?,
        None => MlmRun {
            corpus: a.corpus.clone().expect("clap requires --corpus"),
            table: TableOptions {
                smiles_col: a.smiles_col.clone(),
                ..TableOptions::default()
            },
            exclude: a.exclude.clone(),
            init: match (&a.init, &a.arch) {
                (Some(dir), _) => InitFrom::Model(dir.clone()),
                (None, Some(arch)) => InitFrom::Random(Box::new(Config::preset(arch)?)),
                (None, None) => InitFrom::Random(Box::new(lipo::mlm::default_config())),
            },
            mlm: MlmConfig {
                epochs: a.epochs,
                max_steps: a.max_steps,
                batch_size: a.batch_size,
                lr: a.lr,
                warmup_steps: a.warmup_steps,
                seed: a.seed,
                eval_every: a.eval_every,
                checkpoint_every: a.checkpoint_every,
                valid_size: a.valid_size,
                redraw_features: a.redraw_features,
                augment: a.augment,
                ..MlmConfig::default()
            },
        },
    };
    let device = lipo::device::parse(&a.device)?;
    eprintln!(
        "MLM on {} from {}",
        lipo::device::describe(device),
        describe_init(&run.init)
    );
    let mut monitor = CliMonitor::new();
    let r = lipo::mlm::mlm(&run, device, &a.out, &mut monitor)?;
    drop(monitor);
    println!(
        "{} steps, {} molecules ({} excluded from the corpus); held-out masked accuracy {:.4}, perplexity {:.3}",
        r.steps, r.molecules, r.excluded, r.valid_accuracy, r.valid_perplexity
    );
    println!(
        "throughput {:.1} molecules/s on {}; {:.0} s training",
        r.mols_per_s, r.device, r.train_seconds
    );
    println!("model: {}", a.out.join(lipo::mlm::files::MODEL).display());
    Ok(())
}

fn compare_mlm(a: CompareMlmArgs) -> Result<()> {
    use lipo::experiments::table1::{domain_mlm_defaults, table1_in, Table1Config};
    let cfg = match &a.config {
        Some(p) => lipo::fsutil::read_json::<Table1Config>(p)?,
        None => {
            let pretrained = match a.init.clone().or_else(lipo::model::default_model_dir) {
                Some(p) => p,
                None => bail!("no pre-trained model: pass --init MODEL_DIR (lipo's bundled model is not in this build)"),
            };
            let mut cfg =
                Table1Config::study(a.data.clone().expect("clap requires --data"), pretrained);
            cfg.table = a.table.options();
            cfg.seeds = a.seeds.clone();
            cfg.finetune.epochs = a.epochs;
            cfg.finetune.lr = a.lr;
            cfg.finetune.augment = a.augment;
            cfg.finetune.tta = a.tta;
            cfg.domain_mlm = domain_mlm_defaults(a.mlm_epochs);
            if a.quick {
                cfg.seeds.truncate(1);
                cfg.finetune.epochs = 3;
                cfg.domain_mlm = domain_mlm_defaults(2);
            }
            cfg.domain_mlm.augment = a.mlm_augment;
            cfg
        }
    };
    let device = lipo::device::parse(&a.device)?;
    let mut monitor = CliMonitor::new();
    let summary = a.summary_dir.clone().unwrap_or_else(|| a.out.clone());
    let r = table1_in(&cfg, device, &a.out, &summary, &mut monitor)?;
    drop(monitor);
    println!("{}", r.markdown);
    println!("written: {}", summary.join("table1.md").display());
    Ok(())
}

fn describe_init(init: &InitFrom) -> String {
    match init {
        InitFrom::Random(c) => format!(
            "random init ({} layers x {})",
            c.num_hidden_layers, c.hidden_size
        ),
        InitFrom::Model(p) => p.display().to_string(),
    }
}

fn evaluate(a: EvaluateArgs) -> Result<()> {
    let device = lipo::device::parse(&a.device)?;
    let model = Model::load(&a.model, device)?;
    let data = data::read_table(&a.data, &model.tokenizer, &a.table.options(), true)?;
    let rows: Vec<usize> = match &a.run {
        Some(run) => {
            let split: data::Split = lipo::fsutil::read_json(&run.join(train::files::SPLIT))?;
            if let Some(&bad) = split.test.iter().find(|&&r| r >= data.records.len()) {
                bail!(
                    "{}: split row {bad} does not exist in {}",
                    run.display(),
                    a.data.display()
                );
            }
            split.test
        }
        None => (0..data.records.len()).collect(),
    };
    if model.meta.task == lipo::model::Task::Classification {
        let (m, _) = train::evaluate_classification(&model, &data, &rows, 64)?;
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(());
    }
    let (m, _) = train::evaluate(&model, &data, &rows, 64)?;
    println!("{}", serde_json::to_string_pretty(&m)?);
    Ok(())
}

/// Reads SMILES to predict: a table, a .smi list, or standard input.
fn read_inputs(input: &Path, smiles_col: Option<String>) -> Result<Vec<(usize, String)>> {
    if input == Path::new("-") {
        use std::io::BufRead;
        let mut out = Vec::new();
        for (i, l) in std::io::stdin().lock().lines().enumerate() {
            let l = l.context("reading standard input")?;
            if let Some(s) = l.split_whitespace().next() {
                out.push((i + 1, s.to_string()));
            }
        }
        return Ok(out);
    }
    // Read raw strings so that bad SMILES are reported per row rather than failing the file.
    let opts = TableOptions {
        smiles_col,
        label_col: None,
        skip_bad_rows: false,
    };
    let name = input.to_string_lossy().to_lowercase();
    if name.ends_with(".smi") || name.ends_with(".txt") || name.ends_with(".smi.gz") {
        use std::io::BufRead;
        let mut out = Vec::new();
        for (i, l) in data::open_maybe_gz(input)?.lines().enumerate() {
            let l = l.with_context(|| format!("reading {}", input.display()))?;
            if let Some(s) = l.split_whitespace().next() {
                out.push((i + 1, s.to_string()));
            }
        }
        return Ok(out);
    }
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(data::delimiter_for(input))
        .flexible(true)
        .from_reader(data::open_maybe_gz(input)?);
    let headers = rdr.headers()?.clone();
    let col = match &opts.smiles_col {
        Some(c) => headers.iter().position(|h| h == c),
        None => headers
            .iter()
            .position(|h| h.to_lowercase().contains("smiles")),
    }
    .with_context(|| format!("{}: no SMILES column (use --smiles-col)", input.display()))?;
    let mut out = Vec::new();
    for (i, r) in rdr.records().enumerate() {
        let r = r.with_context(|| format!("{}:{}", input.display(), i + 2))?;
        out.push((i + 2, r.get(col).unwrap_or("").trim().to_string()));
    }
    Ok(out)
}

fn predict(a: PredictArgs, threads: i32) -> Result<()> {
    if lipo::bundle::is_bundle(&a.model) {
        return predict_bundle(&a, threads);
    }
    let device = lipo::device::parse(&a.device)?;
    let model = Model::load(&a.model, device)?;
    let inputs = read_inputs(&a.input, a.smiles_col.clone())?;
    let encoded: Vec<std::result::Result<Vec<u32>, String>> = inputs
        .iter()
        .map(|(_, s)| model.tokenizer.encode(s).map_err(|e| e.to_string()))
        .collect();
    let ok: Vec<&str> = inputs
        .iter()
        .zip(&encoded)
        .filter(|(_, e)| e.is_ok())
        .map(|((_, s), _)| s.as_str())
        .collect();
    let preds = lipo::predict::predict_smiles(&model, &ok, a.batch_size)?;
    let sink: Box<dyn std::io::Write> = match &a.out {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let mut w = csv::Writer::from_writer(sink);
    let label = model
        .meta
        .label_name
        .clone()
        .unwrap_or_else(|| "prediction".into());
    w.write_record(["line", "smiles", &label, "error"])?;
    let mut next = preds.iter();
    let mut n_bad = 0;
    for ((line, smiles), enc) in inputs.iter().zip(&encoded) {
        match enc {
            Ok(_) => w.write_record([
                line.to_string(),
                smiles.clone(),
                format!("{:.6}", next.next().unwrap()),
                String::new(),
            ])?,
            Err(e) => {
                n_bad += 1;
                w.write_record([line.to_string(), smiles.clone(), String::new(), e.clone()])?
            }
        }
    }
    w.flush()?;
    if n_bad > 0 {
        eprintln!(
            "{n_bad} of {} molecules could not be read (see the error column)",
            inputs.len()
        );
    }
    Ok(())
}

fn embed(a: EmbedArgs) -> Result<()> {
    let device = lipo::device::parse(&a.device)?;
    let model = Model::load(&a.model, device)?;
    let inputs = read_inputs(&a.input, a.smiles_col.clone())?;
    let mut seqs = Vec::with_capacity(inputs.len());
    for (line, s) in &inputs {
        seqs.push(
            model
                .tokenizer
                .encode(s)
                .with_context(|| format!("{}:{line}", a.input.display()))?,
        );
    }
    let rows = lipo::predict::embed(&model, &seqs, a.batch_size)?;
    let h = model.config.hidden_size;
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    let arr = ndarray::Array2::from_shape_vec((inputs.len(), h), flat)?;
    ndarray_npy::write_npy(&a.out, &arr).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "wrote {} x {} embeddings to {}",
        inputs.len(),
        h,
        a.out.display()
    );
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    let s = lipo::export::export_model_dir_with(&a.model, &a.out, a.quantize)?;
    eprintln!(
        "exported {} ({:?}, {} weights, {:.1} MB, {} weights) to {}",
        a.model.display(),
        s.task,
        a.quantize.name(),
        s.onnx_bytes as f64 / 1e6,
        s.initializer_elements,
        s.bundle.display()
    );
    Ok(())
}

/// Molecules read, predicted and written per chunk of a streamed prediction.
const PREDICT_CHUNK: usize = 4096;

/// `predict` on an exported bundle: streams the input in chunks through ONNX Runtime.
fn predict_bundle(a: &PredictArgs, threads: i32) -> Result<()> {
    use lipo::infer::{Predictor, PredictorOptions};
    let opts = PredictorOptions {
        threads: threads.max(0) as usize,
        batch_size: a.batch_size,
        ..PredictorOptions::default()
    };
    let predictor = Predictor::open(&a.model, &opts)?;
    let mut rows = lipo::smiles_stream::SmilesStream::open(&a.input, a.smiles_col.as_deref())?;
    let sink: Box<dyn std::io::Write> = match &a.out {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(sink);
    let label = predictor
        .info()
        .label_name
        .clone()
        .unwrap_or_else(|| "prediction".into());
    w.write_record(["line", "smiles", &label, "error"])?;
    let (mut n, mut n_bad) = (0usize, 0usize);
    loop {
        let chunk = rows.next_chunk(PREDICT_CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        let smiles: Vec<&str> = chunk.iter().map(|r| r.smiles.as_str()).collect();
        let preds = predictor.predict(&smiles)?;
        for (r, p) in chunk.iter().zip(preds) {
            let line = r.line.to_string();
            match p {
                Ok(y) => w.write_record([&line, &r.smiles, &format!("{y:.6}"), ""])?,
                Err(e) => {
                    n_bad += 1;
                    w.write_record([&line, &r.smiles, "", &e.to_string()])?
                }
            }
        }
        n += chunk.len();
        w.flush()?;
    }
    if n_bad > 0 {
        eprintln!("{n_bad} of {n} molecules could not be read (see the error column)");
    }
    Ok(())
}

fn bench(a: BenchArgs, threads: i32) -> Result<()> {
    let data = match a.data {
        Some(d) => d,
        None => std::env::var_os("LIPO_DATA_DIR")
            .map(|d| PathBuf::from(d).join("lipophilicity.csv"))
            .context("give --data or set LIPO_DATA_DIR")?,
    };
    let cfg = lipo::bench::BenchConfig {
        model: a.model,
        data,
        smiles_col: a.smiles_col,
        batch_sizes: a.batch_sizes,
        limit: a.limit,
        threads: threads.max(1) as usize,
        int8: a.int8,
        ort_threads: a.ort_threads,
        repeats: a.repeats,
    };
    let tmp = tempfile::tempdir().context("creating a temporary folder")?;
    let report = lipo::bench::run(&cfg, tmp.path())?;
    print!("{}", lipo::bench::table(&report));
    lipo::fsutil::write_json(&a.out, &report)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
