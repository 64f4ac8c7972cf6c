//! `lipo mlm` (masked-language-model training) and `lipo compare-mlm` (Table 1 of the study).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use lipo::data::TableOptions;
use lipo::model::Config;
use lipo::train::InitFrom;

use super::finetune::describe_init;
use super::monitor::CliMonitor;
use super::table_args::TableArgs;

#[derive(Args)]
pub(crate) struct MlmArgs {
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

pub(crate) fn mlm(a: MlmArgs) -> Result<()> {
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

#[derive(Args)]
pub(crate) struct CompareMlmArgs {
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

pub(crate) fn compare_mlm(a: CompareMlmArgs) -> Result<()> {
    use lipo::study::table1::{domain_mlm_defaults, table1_in, Table1Config};
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
