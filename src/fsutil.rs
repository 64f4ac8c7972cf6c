//! File helpers that keep lipo's output rules: files are written through a temporary sibling
//! and a rename, synced to disk with their folder, and made with the user's umask; a folder is
//! replaced only when everything in it is something lipo is about to write again; an output
//! is never also an input; a folder lipo writes runs into is marked as lipo's.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file lipo writes into every run folder it creates ([`claim_dir`]), so that it later
/// knows the folder is its own.
pub const MARK: &str = ".lipo-made";

/// True when `x` is its type's default (0, 0.0, false): for `skip_serializing_if` on record
/// fields added later, so records without them still compare equal to older ones.
pub fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Flushes a folder's entries (a rename or a new file in it) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

/// A temporary file beside `path` (same folder, parent created), made with mode 0666 less
/// the umask like any file the user creates, to be [`persist`]ed over `path`.
pub fn temp_file_for(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = parent_of(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    tempfile::Builder::new()
        .prefix(".lipo-tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Syncs a temporary file from [`temp_file_for`] and renames it to `path` (synced too).
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(parent_of(path))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::other("is a folder; lipo replaces only files here"),
        ));
    }
    let mut tmp = temp_file_for(path)?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    persist(tmp, path)
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("value serialises");
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Json {
        path: path.into(),
        source: e,
    })
}

/// The result recorded in `dir/result_file` of a finished run, when `dir/run_file` records
/// exactly `run`; `None` when either file is missing or the run differs.
pub fn finished_record<R, T>(
    run: &R,
    dir: &Path,
    run_file: &str,
    result_file: &str,
) -> Result<Option<T>>
where
    R: serde::de::DeserializeOwned + PartialEq,
    T: serde::de::DeserializeOwned,
{
    let (run_path, result) = (dir.join(run_file), dir.join(result_file));
    if !(run_path.is_file() && result.is_file()) {
        return Ok(None);
    }
    if &read_json::<R>(&run_path)? != run {
        return Ok(None);
    }
    read_json(&result).map(Some)
}

/// The first path under `dst` (relative) that has no counterpart of the same kind under
/// `src`: what replacing `dst` by `src` would destroy without writing it again.
fn foreign_entry(dst: &Path, src: &Path) -> Result<Option<PathBuf>> {
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let here = dst.join(&rel);
        for entry in std::fs::read_dir(&here).map_err(|e| Error::io(&here, e))? {
            let entry = entry.map_err(|e| Error::io(&here, e))?;
            let name = rel.join(entry.file_name());
            if name.as_os_str() == MARK {
                continue;
            }
            let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            let theirs = std::fs::symlink_metadata(src.join(&name)).ok();
            match theirs {
                Some(m) if kind.is_dir() && m.is_dir() => todo.push(name),
                Some(m) if kind.is_file() && m.is_file() => {}
                _ => return Ok(Some(name)),
            }
        }
    }
    Ok(None)
}

/// Replaces folder `dst` by folder `src` (same filesystem) as atomically as the OS allows:
/// the old folder is moved into a uniquely named temporary sibling first and removed only
/// after `src` is in place. `dst` is replaced only when it is a folder holding nothing but
/// what `src` holds (by name and kind, recursively): anything else in it was not written by
/// lipo here, and the call fails naming it, leaving both folders as they are.
pub fn replace_dir(src: &Path, dst: &Path) -> Result<()> {
    let refuse = |reason: String| Error::io(dst, std::io::Error::other(reason));
    match std::fs::symlink_metadata(dst) {
        Err(_) => {}
        Ok(m) if !m.is_dir() => {
            return Err(refuse(
                "exists and is not a folder lipo wrote; refusing to replace it".into(),
            ))
        }
        Ok(_) => {
            if let Some(name) = foreign_entry(dst, src)? {
                return Err(refuse(format!(
                    "holds {}, which lipo did not write there; refusing to replace the folder \
                     (move it away or choose another path)",
                    name.display()
                )));
            }
        }
    }
    let parent = parent_of(dst);
    let aside = tempfile::Builder::new()
        .prefix(".lipo-old")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let old = aside.path().join("old");
    let had_old = dst.exists();
    if had_old {
        std::fs::rename(dst, &old).map_err(|e| Error::io(dst, e))?;
    }
    if let Err(e) = std::fs::rename(src, dst) {
        if had_old {
            let _ = std::fs::rename(&old, dst);
        }
        return Err(Error::io(dst, e));
    }
    sync_dir(parent)?;
    drop(aside); // removes the old folder
    Ok(())
}

/// A temporary folder beside `dest` (same filesystem, parent created, the umask respected),
/// in which a folder is assembled before [`replace_dir`] moves it into place.
pub fn staging_dir(dest: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    let parent = parent_of(dest);
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o777))
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))
}

/// Makes `dir` a folder lipo writes a job into. It is created when missing; an existing
/// folder is accepted when it is empty, carries lipo's mark ([`MARK`]), or holds `record`
/// (the job record an earlier lipo wrote first, e.g. `run.json`). Anything else is a folder
/// lipo did not create, and the error names `setting` and the first entry found. The folder
/// is marked on success.
pub fn claim_dir(dir: &Path, record: &str, setting: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::param(
            setting,
            format!("{} exists and is not a folder", dir.display()),
        ));
    }
    if dir.is_dir() && !dir.join(MARK).is_file() && !dir.join(record).is_file() {
        let first = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .next()
            .transpose()
            .map_err(|e| Error::io(dir, e))?;
        if let Some(entry) = first {
            return Err(Error::param(
                setting,
                format!(
                    "{} already holds {:?} and was not made by lipo; choose an empty or new folder",
                    dir.display(),
                    entry.file_name()
                ),
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if !dir.join(MARK).is_file() {
        write_atomic(
            &dir.join(MARK),
            format!("made by lipo {}\n", crate::VERSION).as_bytes(),
        )?;
    }
    Ok(())
}

/// Fails when `output` is the same file as one of `inputs` (also through another path or a
/// link), naming `setting`: writing it would destroy the input while it is being read.
pub fn ensure_not_input(output: &Path, inputs: &[&Path], setting: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(inp) = std::fs::metadata(input) {
            if inp.dev() == out.dev() && inp.ino() == out.ino() {
                return Err(Error::param(
                    setting,
                    format!(
                        "{} is also the input {}; write the output to another file",
                        output.display(),
                        input.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_dir_keeps_what_lipo_did_not_write() {
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("new"), d.path().join("best.lipo"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a"), "new").unwrap();
        // An unrelated sibling named like the old swap folder survives.
        std::fs::create_dir_all(d.path().join("best.old")).unwrap();
        std::fs::write(d.path().join("best.old/keep"), "mine").unwrap();
        replace_dir(&src, &dst).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("a")).unwrap(), "new");
        assert!(d.path().join("best.old/keep").is_file());
        // A folder with something lipo does not write there is refused and left alone.
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a"), "newer").unwrap();
        std::fs::write(dst.join("notes.txt"), "mine").unwrap();
        let e = replace_dir(&src, &dst).unwrap_err().to_string();
        assert!(e.contains("notes.txt") && e.contains("best.lipo"), "{e}");
        assert_eq!(std::fs::read_to_string(dst.join("a")).unwrap(), "new");
        // A file in the folder's place is never replaced by a folder.
        let file = d.path().join("model.onnx");
        std::fs::write(&file, "onnx").unwrap();
        assert!(replace_dir(&src, &file).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "onnx");
        // No temporary siblings are left behind.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".lipo"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn claim_dir_refuses_folders_lipo_did_not_make() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("run");
        claim_dir(&run, "run.json", "out").unwrap();
        claim_dir(&run, "run.json", "out").unwrap();
        assert!(run.join(MARK).is_file());
        let theirs = d.path().join("theirs");
        std::fs::create_dir_all(theirs.join("model")).unwrap();
        let e = claim_dir(&theirs, "run.json", "out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("out") && e.contains("model"), "{e}");
        assert!(!theirs.join(MARK).exists());
        let legacy = d.path().join("legacy");
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(legacy.join("run.json"), "{}").unwrap();
        claim_dir(&legacy, "run.json", "out").unwrap();
    }

    #[test]
    fn files_follow_the_umask_and_outputs_are_not_inputs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, b"{}").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        let umask = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        } as u32;
        assert_eq!(mode, 0o666 & !umask);
        let link = d.path().join("y.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(ensure_not_input(&link, &[&p], "out").is_err());
        assert!(ensure_not_input(&d.path().join("z"), &[&p], "out").is_ok());
    }
}
