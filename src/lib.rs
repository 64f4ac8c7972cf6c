//! # lipo
//!
//! Fine-tunes MoLFormer chemical language models to predict lipophilicity (logD at pH 7.4)
//! from SMILES, and serves trained models.
//!
//! The modules follow the pipeline: [`data`] → [`tokenizer`] → [`model`] → [`train`] →
//! [`predict`], with [`metrics`] and [`plot`] for reports.

pub mod data;
#[cfg(feature = "train")]
pub mod device;
pub mod error;
pub mod fsutil;
pub mod metrics;
#[cfg(feature = "train")]
pub mod mlm;
pub mod model;
#[cfg(feature = "train")]
pub mod optim;
pub mod plot;
#[cfg(feature = "train")]
pub mod predict;
pub mod progress;
pub mod rng;
pub mod tokenizer;
#[cfg(feature = "train")]
pub mod train;

pub use error::{Error, Result};

/// lipo's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
