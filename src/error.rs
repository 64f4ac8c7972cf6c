//! The library's typed error. Every message names the input that caused it (a file and line,
//! a SMILES string, a parameter), so that a user can fix the input without reading code.

use std::path::PathBuf;

/// Everything that can go wrong in lipo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A SMILES string contains characters that are not SMILES.
    #[error("invalid SMILES {smiles:?}: {reason}")]
    InvalidSmiles {
        /// The offending input.
        smiles: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a data file is unusable.
    #[error("{path}:{line}: {reason}")]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file (the header is line 1).
        line: usize,
        /// What is wrong with the row.
        reason: String,
    },
    /// A data file is unusable as a whole (missing column, no rows, ...).
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A parameter or option has a value lipo cannot use.
    #[error("invalid value for {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the user wrote it.
        name: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// A model folder or weight file is missing pieces or does not fit its configuration.
    #[error("model {path}: {reason}")]
    Model {
        /// The model folder or file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Training produced a non-finite loss or was stopped.
    #[error("training: {0}")]
    Training(String),
    /// The user (or a callback) cancelled a long job; its last checkpoint is kept.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// A tensor operation failed in libtorch.
    #[cfg(feature = "train")]
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// ONNX Runtime could not be loaded, or a session failed to open or run.
    #[error("ONNX Runtime: {0}")]
    OnnxRuntime(String),
    /// The tokenizers crate reported an error.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The operation needs a part of lipo this build leaves out (a Cargo feature).
    #[error("not supported by this build of lipo: {0}")]
    Unsupported(String),
    /// JSON (de)serialisation failed.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Result alias used across lipo.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::InvalidParameter`].
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Model`].
    pub fn model(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
