//! `lipo study` (the whole study and its report) and `lipo data fetch`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use lipo::study::{self, data as sdata, StudyConfig, StudyOptions};
use lipo::train::{FinetuneReport, FinetuneRun};

/// Arguments of `lipo study`.
#[derive(Args)]
pub struct StudyArgs {
    /// MoleculeNet Lipophilicity (default: $LIPO_DATA_DIR/lipophilicity.csv).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The study's external set, SMILES,Label (default: $LIPO_DATA_DIR/external.csv).
    #[arg(long)]
    external: Option<PathBuf>,
    /// Study folder: one folder per stage, study.json, report.md, report.html (default: the
    /// folder of --config, else runs/study).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Re-run the study described by this study.json (data flags and settings are ignored).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Pre-trained model every table starts from (default: lipo's bundled model).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Comma-separated seeds (default 0,1,2; with --quick 0).
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Fine-tuning epochs of Tables 1–3 (default 20; with --quick 1).
    #[arg(long)]
    epochs: Option<usize>,
    /// Domain-MLM epochs of Table 1 (default 20; with --quick 1).
    #[arg(long)]
    mlm_epochs: Option<usize>,
    /// Epochs of BitFit, LoRA and IA3 (default: the study's presets; with --quick 1).
    #[arg(long)]
    peft_epochs: Option<usize>,
    /// One seed and few epochs: a smoke test of the whole pipeline (≤ 15 min on 2 cores).
    #[arg(long)]
    quick: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Run the seeds of each table in this many child processes at once, each with
    /// --threads / jobs tensor threads (e.g. 2 on a 2-core machine: about 1.4× the
    /// throughput of one process with both cores). Logs go to STAGE/jobs/.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Only write report.md and report.html again, from the study folder's
    /// study_results.json (and graph/comparison.md, when `lipo compare-graph` made it);
    /// nothing runs.
    #[arg(long)]
    report_only: bool,
}

impl StudyArgs {
    fn out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            self.config
                .as_deref()
                .and_then(Path::parent)
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("runs/study"), Path::to_path_buf)
        })
    }

    fn resolve(&self) -> Result<StudyConfig> {
        if let Some(p) = &self.config {
            return Ok(lipo::fsutil::read_json(p)?);
        }
        let (data, external) = sdata::locate(
            self.data.as_deref(),
            self.external.as_deref(),
            sdata::data_dir_from_env().as_deref(),
        )?;
        let Some(pretrained) = self.init.clone().or_else(lipo::model::default_model_dir) else {
            bail!(
                "no pre-trained model: pass --init MODEL_DIR (lipo's bundled model {} is not present; \
                 scripts/pretrain.sh makes it)",
                lipo::model::BUNDLED_MODEL
            );
        };
        let mut cfg = if self.quick {
            StudyConfig::quick(data, external, pretrained)
        } else {
            StudyConfig::full(data, external, pretrained)
        };
        if let Some(s) = &self.seeds {
            cfg.seeds = s.clone();
        }
        if let Some(e) = self.epochs {
            cfg.finetune.epochs = e;
        }
        if let Some(e) = self.mlm_epochs {
            cfg.domain_mlm = lipo::study::table1::domain_mlm_defaults(e);
        }
        if let Some(e) = self.peft_epochs {
            cfg.peft_epochs = Some(e);
        }
        Ok(cfg)
    }
}

fn torch_version() -> Option<String> {
    let lib = option_env!("LIPO_LIBTORCH_LIB")?;
    let text = std::fs::read_to_string(Path::new(lib).join("../version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split('\'').nth(1)?.to_string())
}

fn environment(threads: &str, device: &str) -> Vec<(String, String)> {
    let mut env = vec![("lipo".to_string(), lipo::VERSION.to_string())];
    if let Ok(out) = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
    {
        if out.status.success() {
            env.push((
                "source commit".into(),
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            ));
        }
    }
    env.push((
        "libtorch".into(),
        torch_version().unwrap_or_else(|| "version unknown".into()),
    ));
    let ort = std::env::var(lipo::infer::runtime::LIBRARY_VAR)
        .ok()
        .or(lipo::infer::runtime::BUILD_DEFAULT.map(String::from))
        .unwrap_or_else(|| "system library path".into());
    env.push(("ONNX Runtime library".into(), format!("`{ort}`")));
    env.push((
        "threads".into(),
        format!(
            "{threads} tensor threads on {} cores, device {device}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
    ));
    env
}

/// Runs `lipo study`.
pub fn study(a: StudyArgs, given_threads: Option<i32>) -> Result<()> {
    if a.report_only {
        let out = a.out();
        study::report::rewrite(&out)?;
        println!("report: {}", out.join("report.md").display());
        return Ok(());
    }
    let threads = given_threads.unwrap_or_else(|| lipo::threads::cores() as i32);
    let cfg = a.resolve()?;
    let out = a.out();
    let device = lipo::device::parse(&a.device)?;
    let exe = std::env::current_exe().context("locating the lipo executable")?;
    let dev = a.device.clone();
    let mut runner = |run: &FinetuneRun, out: &Path| -> lipo::Result<FinetuneReport> {
        crate::cli::peft::run_in_child(&exe, given_threads, &dev, run, out)
    };
    let command = std::env::args()
        .map(|s| if s.contains(' ') { format!("'{s}'") } else { s })
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!(
        "study in {} on {} ({} seed(s){})",
        out.display(),
        lipo::device::describe(device),
        cfg.seeds.len(),
        if cfg.quick { ", --quick" } else { "" }
    );
    let mut monitor = super::monitor::CliMonitor::new();
    let mut prior_seconds = Vec::new();
    let mut env_threads = match given_threads {
        Some(t) => t.to_string(),
        None => format!("up to {threads} (adaptive)"),
    };
    if a.jobs > 1 {
        let child_threads = (threads / a.jobs as i32).max(1);
        env_threads = format!("{} jobs × {child_threads}", a.jobs);
        prior_seconds = crate::cli::jobs::run(
            &cfg,
            &out,
            a.jobs,
            &crate::cli::jobs::ChildSettings {
                exe: &exe,
                threads: child_threads,
                device: &dev,
            },
            &mut monitor,
        )?;
    } else if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let r = study::run(
        &cfg,
        &out,
        StudyOptions {
            device,
            runner: &mut runner,
            command,
            environment: environment(&env_threads, &lipo::device::describe(device)),
            prior_seconds,
        },
        &mut monitor,
    )?;
    drop(monitor);
    for line in study::report::readings(&r) {
        println!("- {line}");
    }
    let total: f64 = r.timings.iter().map(|t| t.seconds).sum();
    println!(
        "study finished ({} of stage time); report: {} and {}",
        study::estimate::human_seconds(total),
        out.join(study::files::REPORT_MD).display(),
        out.join(study::files::REPORT_HTML).display()
    );
    Ok(())
}

/// `lipo data …`.
#[derive(Subcommand)]
pub enum DataCmd {
    /// Download MoleculeNet Lipophilicity from its canonical address and check its SHA-256.
    Fetch(FetchArgs),
}

/// Arguments of `lipo data fetch`.
#[derive(Args)]
pub struct FetchArgs {
    /// Folder to put lipophilicity.csv in (default: $LIPO_DATA_DIR, else ./data).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address to download from.
    #[arg(long, default_value = sdata::LIPOPHILICITY_URL)]
    url: String,
    /// Expected SHA-256 of the file.
    #[arg(long, default_value = sdata::LIPOPHILICITY_SHA256)]
    sha256: String,
}

/// Runs `lipo data …`.
pub fn data(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Fetch(a) => {
            let dir = a
                .dir
                .or_else(sdata::data_dir_from_env)
                .unwrap_or_else(|| PathBuf::from("data"));
            let dest = dir.join(sdata::LIPOPHILICITY_FILE);
            if dest.is_file() {
                let got = sdata::sha256_file(&dest)?;
                println!(
                    "{} is already there (SHA-256 {got}{})",
                    dest.display(),
                    if got == a.sha256 {
                        ", as expected"
                    } else {
                        "; NOT the expected hash"
                    }
                );
                return Ok(());
            }
            eprintln!("downloading {} …", a.url);
            let p = sdata::fetch(&a.url, &dest, &a.sha256)?;
            println!("{} (SHA-256 {} checked)", p.display(), a.sha256);
            println!(
                "the study also needs {}: the study's external set, which is not downloadable; put it beside it",
                dir.join(sdata::EXTERNAL_FILE).display()
            );
            Ok(())
        }
    }
}

/// Arguments of `lipo compare-graph`.
#[derive(Args)]
pub struct CompareGraphArgs {
    /// The study folder holding table1-augmented-mlm/, ensemble/seedS/ and graph/.
    #[arg(long, default_value = "runs/study")]
    root: PathBuf,
}

/// Gathers the graph comparison into ROOT/graph/comparison.{md,json} and prints it.
pub fn compare_graph(a: CompareGraphArgs) -> Result<()> {
    let c = study::graph_table::compare_graph(&a.root)?;
    let out = a.root.join("graph");
    study::graph_table::write(&c, &out)?;
    println!("{}", c.markdown);
    println!("written: {}", out.join("comparison.md").display());
    Ok(())
}
