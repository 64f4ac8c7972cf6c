//! The light front: the `lipo` binary of the inference-only build (no libtorch).
//!
//! `lipo predict` with an exported bundle (or the shipped default) runs here, through ONNX
//! Runtime, so a one-molecule prediction starts in a fraction of a second and a few tens of
//! MB. Every other command (training, export, `--help`, a model folder) is handed, with its
//! arguments unchanged, to the full binary: `$LIPO_FULL_EXE`, else `../libexec/lipo/lipo`
//! beside this executable (the layout `scripts/install.sh` writes, as git keeps its
//! sub-commands in `libexec/git-core`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// The commands the front runs itself.
#[derive(Parser)]
#[command(name = "lipo", version)]
struct Front {
    #[arg(long, global = true, value_parser = clap::value_parser!(i32).range(1..=1024))]
    threads: Option<i32>,
    #[command(subcommand)]
    cmd: FrontCmd,
}

#[derive(Subcommand)]
enum FrontCmd {
    Predict(super::predict::PredictArgs),
}

/// The full binary, relative to this executable's folder, as installed.
pub const FULL_FROM_BIN: &str = "../libexec/lipo/lipo";

/// Runs the command line: a bundle prediction here, anything else in the full binary.
pub fn main() -> Result<()> {
    let args: Vec<OsString> = std::env::args_os().collect();
    if !runs_here(&args) {
        return hand_over(&args);
    }
    let front = Front::parse_from(&args);
    let threads = front
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as i32);
    match front.cmd {
        FrontCmd::Predict(a) => super::predict::predict(a, threads),
    }
}

/// Whether `args` are a `predict` on a bundle (the shipped default when `--model` is left
/// out) without a request for help.
fn runs_here(args: &[OsString]) -> bool {
    let mut rest = args.iter().skip(1).map(OsString::as_os_str);
    let mut command = None;
    let mut model: Option<&OsStr> = None;
    while let Some(a) = rest.next() {
        let s = a.to_string_lossy();
        if s == "-h" || s == "--help" || s == "-V" || s == "--version" || s == "help" {
            return false;
        }
        if command.is_none() && !s.starts_with('-') {
            command = Some(s.into_owned());
        } else if s == "--model" {
            model = rest.next();
        } else if let Some(m) = a.to_str().and_then(|t| t.strip_prefix("--model=")) {
            model = Some(OsStr::new(m));
        } else if s == "--threads" {
            rest.next();
        }
    }
    if command.as_deref() != Some("predict") {
        return false;
    }
    match model {
        Some(m) => lipo::bundle::is_bundle(Path::new(m)),
        None => true,
    }
}

/// The full binary: `$LIPO_FULL_EXE`, else [`FULL_FROM_BIN`] beside this executable.
fn full_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LIPO_FULL_EXE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating this lipo executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let full = dir.join(FULL_FROM_BIN);
    if full.is_file() {
        return Ok(full);
    }
    anyhow::bail!(
        "this lipo ({}) is the light, inference-only front: it predicts with exported bundles \
         itself and runs every other command in the full lipo, which is not at {} — install \
         both with scripts/install.sh, or set LIPO_FULL_EXE to a full build (cargo build \
         --release makes target/release/lipo)",
        exe.display(),
        full.display()
    )
}

/// Replaces this process by the full binary with the same arguments.
fn hand_over(args: &[OsString]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let full = full_binary()?;
    let err = std::process::Command::new(&full).args(&args[1..]).exec();
    Err(err).with_context(|| format!("starting the full lipo {}", full.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        std::iter::once("lipo")
            .chain(s.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn only_bundle_predictions_run_in_the_front() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("m.lipo");
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(bundle.join(lipo::bundle::MODEL), b"").unwrap();
        let b = bundle.display();
        assert!(runs_here(&args(&format!("predict --model {b} --input -"))));
        assert!(runs_here(&args(&format!(
            "--threads 1 predict --model={b} --input -"
        ))));
        assert!(runs_here(&args("predict --input -")), "the shipped default");
        let folder = dir.path().display();
        assert!(!runs_here(&args(&format!(
            "predict --model {folder} --input -"
        ))));
        assert!(!runs_here(&args(&format!("predict --model {b} --help"))));
        assert!(!runs_here(&args("finetune --data x.csv")));
        assert!(!runs_here(&args("--threads 1 mlm")));
        assert!(!runs_here(&args("--version")));
        assert!(!runs_here(&args("")));
    }
}
