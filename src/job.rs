//! Training jobs described as JSON: one entry point for hosts that drive lipo without its
//! command line (the C ABI's `lipo_train`, scripts).
//!
//! A job names its command and carries the same resolved run that the command writes to
//! `run.json`, either inline (`"run": {...}`) or as a file (`"config": "path/run.json"`):
//!
//! ```json
//! {"command": "finetune", "out": "runs/ft", "device": "cpu", "threads": 2,
//!  "run": {"data": "train.csv", "init": {"model": "models/lipo-small"},
//!          "train": {"epochs": 20, "peft": {"method": "lora", "r": 8}}},
//!  "export": "runs/ft.lipo"}
//! ```
//!
//! Parameter-efficient fine-tuning is a fine-tuning run whose `train.peft` names the method.
//! Unknown fields are errors, so a misspelt setting is never silently ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mlm::{MlmReport, MlmRun};
use crate::progress::Monitor;
use crate::train::{FinetuneReport, FinetuneRun};

/// A training job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Job {
    /// Fine-tuning (full or parameter-efficient) of a regression or classification head.
    Finetune(JobSpec<FinetuneRun>),
    /// Masked-language-model training.
    Mlm(JobSpec<MlmRun>),
}

/// Where a job runs and what it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec<R> {
    /// Run folder (created; a finished run there is reused, an interrupted one resumed).
    pub out: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N` (default `auto`).
    #[serde(default = "auto")]
    pub device: String,
    /// CPU threads for tensor work (default: adaptive, up to one per core, following the
    /// machine's load; see [`crate::threads`]).
    pub threads: Option<i32>,
    /// The resolved run, inline.
    pub run: Option<R>,
    /// A `run.json` written by an earlier run, instead of `run`.
    pub config: Option<PathBuf>,
    /// Export the trained model as an ONNX bundle here afterwards.
    pub export: Option<PathBuf>,
}

fn auto() -> String {
    "auto".into()
}

/// What a job produced.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// `finetune` or `mlm`.
    pub command: &'static str,
    /// The run folder.
    pub out: PathBuf,
    /// The trained model folder.
    pub model: PathBuf,
    /// The exported bundle, when the job asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<PathBuf>,
    /// The run's `metrics.json`.
    pub report: serde_json::Value,
}

impl Job {
    /// Parses a job from JSON text; errors name the offending field.
    pub fn from_json(text: &str) -> Result<Job> {
        serde_json::from_str(text).map_err(|e| Error::param("job", format!("{e}")))
    }
}

impl<R: serde::de::DeserializeOwned + Clone> JobSpec<R> {
    /// The run: inline, or read from `config`; exactly one must be given.
    pub fn resolve(&self) -> Result<R> {
        match (&self.run, &self.config) {
            (Some(r), None) => Ok(r.clone()),
            (None, Some(p)) => crate::fsutil::read_json(p),
            (Some(_), Some(_)) => Err(Error::param(
                "job",
                "give either \"run\" or \"config\", not both",
            )),
            (None, None) => Err(Error::param(
                "job",
                "needs \"run\" (the run inline) or \"config\" (a run.json file)",
            )),
        }
    }
}

/// Runs a job to the end (or resumes it, or reuses its finished result), reporting progress
/// to `monitor`, which may cancel it (the run keeps its checkpoint).
pub fn run(job: &Job, monitor: &mut dyn Monitor) -> Result<JobReport> {
    match job {
        Job::Finetune(spec) => {
            let run = spec.resolve()?;
            let device = prepare(&spec.device, spec.threads)?;
            let report: FinetuneReport = crate::train::finetune(&run, device, &spec.out, monitor)?;
            let model = spec.out.join(crate::train::files::MODEL);
            finish("finetune", spec, model, &report)
        }
        Job::Mlm(spec) => {
            let run = spec.resolve()?;
            let device = prepare(&spec.device, spec.threads)?;
            let report: MlmReport = crate::mlm::mlm(&run, device, &spec.out, monitor)?;
            let model = spec.out.join(crate::mlm::files::MODEL);
            finish("mlm", spec, model, &report)
        }
    }
}

/// The job's device, with the thread policy it asks for: `threads` fixed, or adaptive.
fn prepare(device: &str, threads: Option<i32>) -> Result<tch::Device> {
    use crate::threads::{set_policy, Policy};
    match threads {
        Some(t) if t < 1 => {
            return Err(Error::param(
                "threads",
                format!("{t} is not a positive count"),
            ))
        }
        Some(t) => set_policy(Policy::Fixed(t as usize)),
        None => set_policy(Policy::Adaptive { max: 0 }),
    }
    crate::device::parse(device)
}

fn finish<R, T: Serialize>(
    command: &'static str,
    spec: &JobSpec<R>,
    model: PathBuf,
    report: &T,
) -> Result<JobReport> {
    let bundle = match &spec.export {
        Some(out) => Some(export(&model, out)?),
        None => None,
    };
    let report = serde_json::to_value(report).map_err(|e| Error::Json {
        path: spec.out.join("metrics.json"),
        source: e,
    })?;
    Ok(JobReport {
        command,
        out: spec.out.clone(),
        model,
        bundle,
        report,
    })
}

#[cfg(feature = "export")]
fn export(model: &Path, out: &Path) -> Result<PathBuf> {
    Ok(crate::export::export_model_dir(model, out)?.bundle)
}

#[cfg(not(feature = "export"))]
fn export(_model: &Path, _out: &Path) -> Result<PathBuf> {
    Err(Error::Unsupported(
        "\"export\" needs lipo built with the `export` feature".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_inline_finetune_job() {
        let job = Job::from_json(
            r#"{"command": "finetune", "out": "o", "run": {"data": "d.csv",
                "init": {"model": "m"}, "train": {"epochs": 2}}}"#,
        )
        .unwrap();
        let Job::Finetune(spec) = job else {
            panic!("not a finetune job")
        };
        assert_eq!(spec.device, "auto");
        let run = spec.resolve().unwrap();
        assert_eq!(run.train.epochs, 2);
        assert_eq!(run.train.batch_size, 16);
    }

    #[test]
    fn misspelt_fields_and_missing_runs_are_errors() {
        let e = Job::from_json(
            r#"{"command": "finetune", "out": "o", "run": {"data": "d.csv",
                "init": {"model": "m"}, "train": {"epoch": 2}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("epoch"), "{e}");
        let e = Job::from_json(r#"{"command": "sing", "out": "o"}"#).unwrap_err();
        assert!(e.to_string().contains("sing"), "{e}");
        let Job::Mlm(spec) = Job::from_json(r#"{"command": "mlm", "out": "o"}"#).unwrap() else {
            panic!("not an mlm job")
        };
        assert!(spec.resolve().unwrap_err().to_string().contains("config"));
    }
}
