//! # lipo
//!
//! Fine-tunes MoLFormer chemical language models to predict lipophilicity (logD at pH 7.4)
//! from SMILES, and serves trained models.
//!
//! The modules follow the pipeline: [`smiles`] (the one SMILES reader) → [`data`] and
//! [`smiles_stream`] (files) → [`tokenizer`] → [`model`] → `peft` → `train` / `mlm` →
//! `influence` → [`export`] → [`infer`] → `study` → [`ffi`], with [`metrics`] and [`plot`]
//! for reports. Every public item is documented (`#![deny(missing_docs)]`).

#![deny(missing_docs)]

pub mod augment;
#[cfg(all(feature = "train", feature = "export", feature = "infer"))]
pub mod bench;
pub mod bundle;
#[cfg(feature = "train")]
pub(crate) mod checkpoint;
pub mod data;
pub mod dedupe;
#[cfg(feature = "train")]
pub mod device;
pub mod error;
#[cfg(feature = "train")]
pub mod explain;
#[cfg(feature = "export")]
pub mod export;
pub mod ffi;
pub mod fsutil;
pub mod graph;
#[cfg(feature = "infer")]
pub mod infer;
#[cfg(feature = "train")]
pub mod influence;
#[cfg(feature = "train")]
pub mod job;
#[cfg(feature = "train")]
pub(crate) mod memory;
pub mod metrics;
#[cfg(feature = "train")]
pub mod mlm;
pub mod model;
#[cfg(feature = "train")]
pub mod optim;
pub mod peft;
#[cfg(feature = "train")]
pub(crate) mod plot;
#[cfg(feature = "train")]
pub mod predict;
pub mod progress;
pub mod rng;
#[cfg(feature = "train")]
pub mod selection;
pub mod smiles;
pub mod smiles_stream;
#[cfg(all(feature = "train", feature = "export", feature = "infer"))]
pub mod study;
#[cfg(feature = "train")]
pub mod threads;
pub mod tokenizer;
#[cfg(feature = "train")]
pub mod train;
pub mod trainlog;

pub use error::{Error, Result};

/// lipo's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
