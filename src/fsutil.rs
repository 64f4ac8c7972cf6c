//! File helpers: atomic writes, so an interrupted job never leaves a half-written file.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// True when `x` is its type's default (0, 0.0, false): for `skip_serializing_if` on record
/// fields added later, so records without them still compare equal to older ones.
pub fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
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

/// Replaces folder `dst` by folder `src` (same filesystem) as atomically as the OS allows:
/// the old folder is renamed aside first and removed only after `src` is in place.
pub fn replace_dir(src: &Path, dst: &Path) -> Result<()> {
    let old = dst.with_extension("old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    if dst.exists() {
        std::fs::rename(dst, &old).map_err(|e| Error::io(dst, e))?;
    }
    std::fs::rename(src, dst).map_err(|e| Error::io(dst, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// A temporary folder beside `dest` (same filesystem, parent created), in which a folder is
/// assembled before [`replace_dir`] moves it into place.
pub fn staging_dir(dest: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))
}
