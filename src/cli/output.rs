//! Where a command writes its table: standard output (`-` or no path), or a file that is
//! written through a temporary sibling and renamed into place at the end, so that a failed
//! or interrupted command leaves any earlier file intact. An output that is also one of the
//! command's inputs is refused before anything is read.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

/// An open output; [`Output::finish`] puts the file in place.
pub struct Output {
    file: Option<(tempfile::NamedTempFile, PathBuf)>,
}

impl Output {
    /// Opens `out` (`None` or `-` for standard output) for a command reading `inputs`;
    /// `flag` names the option in errors.
    pub fn open(out: Option<&Path>, inputs: &[&Path], flag: &str) -> Result<Output> {
        let file = match out.filter(|p| p.as_os_str() != "-") {
            Some(p) => {
                lipo::fsutil::ensure_not_input(p, inputs, flag)?;
                Some((lipo::fsutil::temp_file_for(p)?, p.to_path_buf()))
            }
            None => None,
        };
        Ok(Output { file })
    }

    /// The writer (buffered).
    pub fn writer(&self) -> Box<dyn Write + '_> {
        match &self.file {
            Some((t, _)) => Box::new(std::io::BufWriter::new(t.as_file())),
            None => Box::new(std::io::stdout().lock()),
        }
    }

    /// Syncs the file and renames it into place (nothing for standard output).
    pub fn finish(self) -> Result<()> {
        if let Some((t, p)) = self.file {
            lipo::fsutil::persist(t, &p)?;
        }
        Ok(())
    }
}
