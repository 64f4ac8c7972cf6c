//! The graph member of lipo (issue #21): a directed message-passing network (D-MPNN) over
//! lipo's own SMILES graph, trained in tch and exported to ONNX.
//!
//! - `features`: atom and bond features of a parsed [`crate::smiles::Molecule`], in Rust,
//!   with no RDKit (hydrogens from the OpenSMILES valence rules, ring membership, aromaticity
//!   and chirality as written).
//! - `batch`: many molecules as one disconnected graph (plain arrays for ONNX Runtime, and
//!   tensors for tch).
//! - `config`: the network's sizes (`config.json`, `model_type` "dmpnn").
//! - `dmpnn`: the network in tch; `model`: a graph model in memory and its folder.
//!
//! Training runs through [`crate::train::finetune`] with
//! [`crate::train::InitFrom::Graph`] (`lipo finetune --model-kind graph`).

pub mod batch;
pub mod config;
#[cfg(feature = "train")]
pub mod dmpnn;
pub mod features;
#[cfg(feature = "train")]
pub mod model;

pub use batch::GraphArrays;
#[cfg(feature = "train")]
pub use batch::GraphBatch;
pub use config::{Aggregation, GraphConfig};
pub use features::{
    featurize, featurize_smiles, MolGraph, ATOM_FEATURES, BOND_FEATURES, FEATURES_VERSION,
};
#[cfg(feature = "train")]
pub use model::GraphModel;
