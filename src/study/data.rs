//! Where the study's two tables come from: flags, else `LIPO_DATA_DIR`, else an error that
//! says which file to put where; and `lipo data fetch`, which downloads MoleculeNet
//! Lipophilicity from its canonical address and checks its SHA-256.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The environment variable naming the folder that holds both tables.
pub const DATA_DIR_VAR: &str = "LIPO_DATA_DIR";
/// File name of MoleculeNet Lipophilicity inside the data folder.
pub const LIPOPHILICITY_FILE: &str = "lipophilicity.csv";
/// File name of the study's external table inside the data folder.
pub const EXTERNAL_FILE: &str = "external.csv";
/// MoleculeNet Lipophilicity's canonical public address (DeepChem's dataset bucket, the file
/// MoleculeNet's loaders download).
pub const LIPOPHILICITY_URL: &str =
    "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/Lipophilicity.csv";
/// SHA-256 of the Lipophilicity file the study was run on (4200 rows, columns
/// `CMPD_CHEMBLID,exp,smiles`, no final newline). lipo's build machine cannot reach the
/// address above, so this hash has not been compared with the download itself; a download
/// with another hash is kept beside the target and reported, never used silently.
pub const LIPOPHILICITY_SHA256: &str =
    "627bb3891f01e9022098b48f0aa6367df3ff909524b841d4143e6fc4a6501458";

/// What each table is, for messages.
const LIPO_WHAT: &str = "MoleculeNet Lipophilicity (4200 rows, columns CMPD_CHEMBLID,exp,smiles; \
ChEMBL, CC BY-SA 3.0)";
const EXTERNAL_WHAT: &str = "the study's external set (300 rows, columns SMILES,Label; it comes \
with the study and is not downloadable)";

fn missing(path: &Path, what: &str, flag: &str, hint: &str) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        reason: format!("not found. Put {what} at this path, or pass {flag} FILE{hint}"),
    }
}

/// The Lipophilicity table and the external table: the given paths, else the files of
/// `data_dir` (normally `$LIPO_DATA_DIR`). A missing file is an error naming the path where
/// it is expected, what it is, and how to get it.
pub fn locate(
    data: Option<&Path>,
    external: Option<&Path>,
    data_dir: Option<&Path>,
) -> Result<(PathBuf, PathBuf)> {
    let pick = |given: Option<&Path>, name: &str, flag: &str, what: &str, fetch: bool| {
        let path = match (given, data_dir) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(d)) => d.join(name),
            (None, None) => {
                return Err(Error::param(
                    flag,
                    format!(
                        "not given and {DATA_DIR_VAR} is not set: pass {flag} FILE, or set \
                         {DATA_DIR_VAR} to a folder holding {LIPOPHILICITY_FILE} and \
                         {EXTERNAL_FILE}. {flag} is {what}"
                    ),
                ))
            }
        };
        if path.is_file() {
            return Ok(path);
        }
        let hint = if fetch {
            format!(
                ", or download it with `lipo data fetch --dir {}` (needs internet)",
                path.parent().unwrap_or(Path::new(".")).display()
            )
        } else {
            String::new()
        };
        Err(missing(&path, what, flag, &hint))
    };
    let d = pick(data, LIPOPHILICITY_FILE, "--data", LIPO_WHAT, true)?;
    let e = pick(external, EXTERNAL_FILE, "--external", EXTERNAL_WHAT, false)?;
    Ok((d, e))
}

/// The data folder named by `LIPO_DATA_DIR`, if set.
pub fn data_dir_from_env() -> Option<PathBuf> {
    std::env::var_os(DATA_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub use crate::fsutil::sha256_file;

/// Downloads `url` to `dest` with `curl` (or `wget`), and installs it only when its SHA-256
/// is `sha256`. A download with another hash is kept as `dest` + `.download` and reported
/// with both hashes. Returns `dest`.
pub fn fetch(url: &str, dest: &Path, sha256: &str) -> Result<PathBuf> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let part = dest.with_extension("part");
    let _ = std::fs::remove_file(&part);
    let tries: [(&str, Vec<String>); 2] = [
        (
            "curl",
            vec![
                "-fsSL".into(),
                "--retry".into(),
                "2".into(),
                "-o".into(),
                part.display().to_string(),
                url.into(),
            ],
        ),
        (
            "wget",
            vec![
                "-q".into(),
                "-O".into(),
                part.display().to_string(),
                url.into(),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (tool, args) in tries {
        match Command::new(tool).args(&args).status() {
            Ok(s) if s.success() && part.is_file() => {
                failures.clear();
                break;
            }
            Ok(s) => failures.push(format!("{tool} exited with {s}")),
            Err(e) => failures.push(format!("{tool}: {e}")),
        }
    }
    if !failures.is_empty() || !part.is_file() {
        let _ = std::fs::remove_file(&part);
        return Err(Error::BadFile {
            path: dest.to_path_buf(),
            reason: format!(
                "could not download {url} ({}). Without internet, copy {LIPO_WHAT} to this path",
                failures.join("; ")
            ),
        });
    }
    let got = sha256_file(&part)?;
    if !got.eq_ignore_ascii_case(sha256) {
        let kept = dest.with_extension("csv.download");
        std::fs::rename(&part, &kept).map_err(|e| Error::io(&kept, e))?;
        return Err(Error::BadFile {
            path: kept,
            reason: format!(
                "downloaded from {url}, but its SHA-256 is {got}, not the expected {sha256}; \
                 it was not installed as {}. Check the file, then pass --sha256 {got} to accept it",
                dest.display()
            ),
        });
    }
    std::fs::rename(&part, dest).map_err(|e| Error::io(dest, e))?;
    Ok(dest.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tables_say_what_goes_where() {
        let dir = tempfile::tempdir().unwrap();
        let e = locate(None, None, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&dir.path().join("lipophilicity.csv").display().to_string()));
        assert!(
            e.contains("CMPD_CHEMBLID,exp,smiles") && e.contains("lipo data fetch"),
            "{e}"
        );
        std::fs::write(dir.path().join("lipophilicity.csv"), "x").unwrap();
        let e = locate(None, None, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("external.csv") && e.contains("SMILES,Label"),
            "{e}"
        );
        let e = locate(None, None, None).unwrap_err().to_string();
        assert!(e.contains("LIPO_DATA_DIR") && e.contains("--data"), "{e}");
        std::fs::write(dir.path().join("external.csv"), "x").unwrap();
        let (d, x) = locate(None, None, Some(dir.path())).unwrap();
        assert!(d.ends_with("lipophilicity.csv") && x.ends_with("external.csv"));
    }

    #[test]
    fn fetch_checks_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.csv");
        std::fs::write(&src, "smiles,exp\nCCO,1\n").unwrap();
        let sha = sha256_file(&src).unwrap();
        let url = format!("file://{}", src.display());
        let dest = dir.path().join("out").join("lipophilicity.csv");
        if Command::new("curl").arg("--version").output().is_err() {
            return; // no curl on this machine: nothing to exercise
        }
        let e = fetch(&url, &dest, &"0".repeat(64)).unwrap_err().to_string();
        assert!(e.contains(&sha) && !dest.exists(), "{e}");
        assert!(dest.with_extension("csv.download").is_file());
        assert_eq!(fetch(&url, &dest, &sha).unwrap(), dest);
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());
    }
}
