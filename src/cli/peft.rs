//! Task 3 on the command line: `lipo finetune --peft …` and classification options
//! ([`PeftArgs`]), `lipo compare-peft` and `lipo merge`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use clap::Args;
use lipo::model::{Config, Model, Task};
use lipo::peft::{LoadModel, LoraConfig, PeftConfig};
use lipo::study::table3::{self as compare, CompareConfig};
use lipo::train::{self, Binarize, FinetuneConfig, FinetuneReport, FinetuneRun, InitFrom};

/// Parameter-efficient fine-tuning and task options of `lipo finetune`.
#[derive(Args, Clone)]
pub struct PeftArgs {
    /// Train adapters only: bitfit, lora or ia3 (default epochs and lr: the study's Table 3).
    #[arg(long)]
    peft: Option<String>,
    #[command(flatten)]
    lora: LoraArgs,
    #[command(flatten)]
    task: TaskArgs,
}

/// LoRA settings.
#[derive(Args, Clone)]
pub struct LoraArgs {
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    lora_r: usize,
    /// LoRA alpha (the update is scaled by alpha / r).
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// Dropout on LoRA's input.
    #[arg(long, default_value_t = 0.05)]
    lora_dropout: f64,
    /// Layers LoRA adapts, by name: query, key, value, dense, attention.output.dense,
    /// intermediate.dense, output.dense.
    #[arg(long, value_delimiter = ',', default_value = "query,value")]
    lora_targets: Vec<String>,
}

impl LoraArgs {
    fn config(&self) -> LoraConfig {
        LoraConfig {
            r: self.lora_r,
            alpha: self.lora_alpha,
            dropout: self.lora_dropout,
            targets: self.lora_targets.clone(),
        }
    }
}

/// Regression or binary classification.
#[derive(Args, Clone)]
pub struct TaskArgs {
    /// regression (MSE) or classification (BCE; probabilities out).
    #[arg(long, default_value = "regression")]
    task: String,
    /// Classification: label > threshold is class 1; the threshold is mean or median of the
    /// training labels, or a number. Without it labels must be 0/1.
    #[arg(long)]
    binarize: Option<String>,
}

impl TaskArgs {
    fn task(&self) -> Result<Task> {
        match self.task.to_ascii_lowercase().as_str() {
            "regression" => Ok(Task::Regression),
            "classification" => Ok(Task::Classification),
            other => {
                anyhow::bail!("invalid value for --task: {other:?} (regression or classification)")
            }
        }
    }

    fn binarize(&self) -> Result<Option<Binarize>> {
        Ok(self
            .binarize
            .as_deref()
            .map(str::parse::<Binarize>)
            .transpose()?)
    }
}

impl PeftArgs {
    /// The PEFT method, if any.
    pub fn peft(&self) -> Result<Option<PeftConfig>> {
        let Some(name) = &self.peft else {
            return Ok(None);
        };
        let p = match PeftConfig::by_name(name)? {
            PeftConfig::Lora(_) => PeftConfig::Lora(self.lora.config()),
            other => other,
        };
        p.validate()?;
        Ok(Some(p))
    }

    /// `base` with the task, the method and epochs/lr: as given, else the method's preset,
    /// else 20 epochs at 1e-4.
    pub fn resolve(
        &self,
        base: FinetuneConfig,
        epochs: Option<usize>,
        lr: Option<f64>,
    ) -> Result<FinetuneConfig> {
        let peft = self.peft()?;
        let preset = peft.as_ref().map(|p| p.preset());
        let defaults = FinetuneConfig::default();
        Ok(FinetuneConfig {
            epochs: epochs
                .or(preset.map(|p| p.epochs))
                .unwrap_or(defaults.epochs),
            lr: lr.or(preset.map(|p| p.lr)).unwrap_or(defaults.lr),
            task: self.task.task()?,
            binarize: self.task.binarize()?,
            peft,
            ..base
        })
    }
}

/// Prints what a plain regression summary leaves out: parameter counts and classification.
pub fn print_report_extras(r: &FinetuneReport) {
    if let Some(c) = &r.parameter_counts {
        let method = match &r.peft {
            Some(p) => p.name(),
            None if c.trainable < c.total => "partial fine-tuning",
            None => "full fine-tuning",
        };
        println!("{method}: {c}");
    }
    if let Some(c) = &r.classification {
        println!(
            "test classification ({} molecules, threshold {}, class-1 share {:.3}): accuracy {:.4}  F1 {:.4}  ROC-AUC {:.4}",
            c.test.n,
            c.threshold
                .map(|t| format!("{t:.4}"))
                .unwrap_or_else(|| "none (0/1 labels)".into()),
            c.test.positive_share,
            c.test.accuracy,
            c.test.f1,
            c.test.roc_auc
        );
        println!(
            "class-share predictor on test: accuracy {:.4}  ROC-AUC {:.4}",
            c.test_majority.accuracy, c.test_majority.roc_auc
        );
    }
}

/// Arguments of `lipo compare-peft`.
#[derive(Args)]
pub struct ComparePeftArgs {
    /// Labelled CSV/TSV.
    #[arg(long, required_unless_present = "config")]
    data: Option<PathBuf>,
    /// Repeat the comparison described by this compare_config.json (other flags but --out
    /// are ignored).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output folder: <method>/seed-<s>/ runs, comparison.md/.json, figures 5–9.
    #[arg(long)]
    out: PathBuf,
    /// Where the configuration, table and figures go (default: --out); `lipo study --jobs`
    /// gives each per-seed job its own.
    #[arg(long, hide = true)]
    summary_dir: Option<PathBuf>,
    /// Comma-separated seeds (default 0,1,2; with --quick 0).
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Starting model folder shared by all methods.
    #[arg(long, conflicts_with = "arch")]
    init: Option<PathBuf>,
    /// Random-init architecture (tiny, small, xl) when there is no --init.
    #[arg(long)]
    arch: Option<String>,
    #[command(flatten)]
    task: TaskArgs,
    #[command(flatten)]
    lora: LoraArgs,
    /// Epochs of every method instead of the Table 3 presets.
    #[arg(long)]
    epochs: Option<usize>,
    /// Epochs of the full fine-tune.
    #[arg(long, default_value_t = 20)]
    full_epochs: usize,
    /// Learning rate of the full fine-tune.
    #[arg(long, default_value_t = 1e-4)]
    full_lr: f64,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// A tenth of every method's epochs and one seed: a smoke test.
    #[arg(long)]
    quick: bool,
    /// Learning rates to search for each PEFT method, comma-separated (e.g.
    /// 1e-4,3e-4,1e-3,3e-3): per seed, the rate whose best epoch has the lowest validation
    /// loss is kept and the table reports its test metrics; the grid goes in comparison.md.
    /// Default: the study's presets.
    #[arg(long, value_delimiter = ',')]
    lr_search: Vec<f64>,
    /// Patience of the search's runs: a run stops after this many epochs without a better
    /// validation loss (default: none, the method's epochs in full).
    #[arg(long, requires = "lr_search")]
    search_patience: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long)]
    smiles_col: Option<String>,
    #[arg(long)]
    label_col: Option<String>,
}

/// Runs one fine-tuning run in a child `lipo finetune` process, so that its peak memory is
/// its own; a finished run folder is read without starting one. `threads`: the `--threads`
/// the user gave, passed on (without it the child adapts its count to the machine's load).
pub fn run_in_child(
    exe: &Path,
    threads: Option<i32>,
    device: &str,
    run: &FinetuneRun,
    out: &Path,
) -> lipo::Result<FinetuneReport> {
    let metrics = out.join(train::files::METRICS);
    if let Some(done) = train::finished_record(run, out)? {
        return Ok(done);
    }
    std::fs::create_dir_all(out).map_err(|e| lipo::Error::io(out, e))?;
    let spec = out.with_extension("spec.json");
    lipo::fsutil::write_json(&spec, run)?;
    eprintln!(
        "[compare-peft] {} seed {} → {}",
        run.train.peft.as_ref().map(|p| p.name()).unwrap_or("full"),
        run.train.seed,
        out.display()
    );
    let mut command = Command::new(exe);
    if let Some(t) = threads {
        command.arg("--threads").arg(t.to_string());
    }
    let status = command
        .arg("finetune")
        .arg("--config")
        .arg(&spec)
        .arg("--out")
        .arg(out)
        .arg("--device")
        .arg(device)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| lipo::Error::io(exe, e))?;
    let _ = std::fs::remove_file(&spec);
    if !status.success() {
        return Err(lipo::Error::Training(format!(
            "the run in {} failed ({status}); its messages are above — run the same command to resume",
            out.display()
        )));
    }
    lipo::fsutil::read_json(&metrics)
}

/// `lipo compare-peft`.
pub fn compare_peft(a: ComparePeftArgs, threads: Option<i32>) -> Result<()> {
    let cfg = match &a.config {
        Some(p) => lipo::fsutil::read_json::<CompareConfig>(p)?,
        None => {
            let init = match (&a.init, &a.arch) {
                (Some(dir), _) => InitFrom::Model(dir.clone()),
                (None, Some(arch)) => InitFrom::Random(Box::new(Config::preset(arch)?)),
                (None, None) => match lipo::model::default_model_dir() {
                    Some(dir) => InitFrom::Model(dir),
                    None => {
                        eprintln!("note: no bundled pre-trained model found; starting from random weights");
                        InitFrom::Random(Box::new(Config::small()))
                    }
                },
            };
            let seeds =
                a.seeds
                    .clone()
                    .unwrap_or_else(|| if a.quick { vec![0] } else { vec![0, 1, 2] });
            CompareConfig {
                data: a.data.clone().expect("clap requires --data"),
                table: lipo::data::TableOptions {
                    smiles_col: a.smiles_col.clone(),
                    label_col: a.label_col.clone(),
                    skip_bad_rows: false,
                },
                init,
                seeds,
                task: a.task.task()?,
                binarize: a.task.binarize()?,
                full: FinetuneConfig {
                    epochs: a.full_epochs,
                    lr: a.full_lr,
                    batch_size: a.batch_size,
                    ..FinetuneConfig::default()
                },
                lora: a.lora.config(),
                epochs: a.epochs,
                peft_epochs: None,
                quick: a.quick,
                lr_search: a.lr_search.clone(),
                search_patience: a.search_patience,
            }
        }
    };
    PeftConfig::Lora(cfg.lora.clone()).validate()?;
    let xl = compare::xl_counts(&cfg.lora)?;
    let exe = std::env::current_exe().context("locating the lipo executable")?;
    let device = a.device.clone();
    let mut runner = |run: &FinetuneRun, out: &Path| run_in_child(&exe, threads, &device, run, out);
    let summary = a.summary_dir.clone().unwrap_or_else(|| a.out.clone());
    let c = compare::compare_in(&cfg, &a.out, &summary, &mut runner)?;
    let xl_md = compare::xl_counts_markdown(&xl);
    let md_path = summary.join(compare::files::TABLE_MD);
    let mut md = std::fs::read_to_string(&md_path)?;
    md.push_str("\nParameter counts on the XL architecture (head: one output):\n\n");
    md.push_str(&xl_md);
    lipo::fsutil::write_atomic(&md_path, md.as_bytes())?;
    println!("{md}");
    println!(
        "table: {}; figures: {}",
        md_path.display(),
        compare::files::FIGURES.join(", ")
    );
    let _ = c;
    Ok(())
}

/// Arguments of `lipo merge`.
#[derive(Args)]
pub struct MergeArgs {
    /// Model folder with adapters, or an adapter folder (adapter.json) on its recorded base.
    #[arg(long)]
    model: PathBuf,
    /// Base model folder of an adapter folder (default: the one adapter.json records).
    #[arg(long)]
    base: Option<PathBuf>,
    /// Output model folder: a plain model with the adapters folded into its weights.
    #[arg(long)]
    out: PathBuf,
}

/// `lipo merge`: folds LoRA/IA3 adapters into the base weights (for export).
pub fn merge(a: MergeArgs) -> Result<()> {
    let device = tch::Device::Cpu;
    let mut model = if a.model.join(lipo::peft::adapter_files::INFO).is_file()
        && !a.model.join(lipo::model::files::WEIGHTS).is_file()
    {
        lipo::peft::load_adapter(&a.model, a.base.as_deref(), device)?
    } else {
        Model::load(&a.model, device)?
    };
    let method = model.meta.peft.as_ref().map(|p| p.name());
    lipo::peft::merge(&mut model)?;
    model.save(&a.out)?;
    match method {
        Some(m) => println!("merged {m} adapters; plain model: {}", a.out.display()),
        None => println!(
            "no adapters to merge; copied the model to {}",
            a.out.display()
        ),
    }
    Ok(())
}
