//! The deployable bundle that `lipo export` writes and ONNX Runtime serves: a folder
//! (conventionally `NAME.lipo/`) holding
//!
//! - `model.onnx`: the prediction graph (inputs `input_ids`, `attention_mask`: int64
//!   `[batch, sequence]`; output `prediction`: float32 `[batch]` in label units, or
//!   probabilities for classification) with the [`keys`] below as metadata;
//! - `tokenizer.json`: the tokenizer the model was trained with (its vocabulary hash is in the
//!   graph's metadata and checked on opening); absent for a graph model, whose graph reads
//!   molecule graphs (inputs [`io::ATOM_FEATURES`] …, metadata [`keys::INPUT`] `graph`) that
//!   lipo makes from SMILES in Rust;
//! - `lipo.json`: the model's [`ModelMeta`](crate::model::ModelMeta), for people and tools.
//!
//! A bundle is opened by the path of its folder (or of its `model.onnx`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The ONNX graph inside a bundle.
pub const MODEL: &str = "model.onnx";
/// The tokenizer inside a bundle.
pub const TOKENIZER: &str = "tokenizer.json";
/// The model's metadata inside a bundle.
pub const META: &str = "lipo.json";

/// Names of the graph's inputs and output.
pub mod io {
    /// Token ids, int64 `[batch, sequence]`, right-padded with `<pad>`.
    pub const INPUT_IDS: &str = "input_ids";
    /// 1 for tokens, 0 for padding, int64 `[batch, sequence]`.
    pub const ATTENTION_MASK: &str = "attention_mask";
    /// Float32 `[batch]`: label units (regression) or probability (classification); an
    /// ensemble's members' mean.
    pub const PREDICTION: &str = "prediction";
    /// Graph models: float32 `[atoms, atom features]`, the atoms of all molecules stacked
    /// ([`crate::graph::GraphArrays`]).
    pub const ATOM_FEATURES: &str = "atom_features";
    /// Graph models: float32 `[bonds, bond features]`, directed bonds (two per bond).
    pub const BOND_FEATURES: &str = "bond_features";
    /// Graph models: int64 `[bonds]`, the atom each directed bond leaves.
    pub const BOND_SRC: &str = "bond_src";
    /// Graph models: int64 `[bonds]`, the atom each directed bond enters.
    pub const BOND_DST: &str = "bond_dst";
    /// Graph models: int64 `[bonds]`, the reverse of each directed bond.
    pub const BOND_REV: &str = "bond_rev";
    /// Graph models: int64 `[atoms]`, the molecule of each atom.
    pub const ATOM_MOL: &str = "atom_mol";
    /// Graph models: float32 `[batch]`, the atoms of each molecule.
    pub const MOL_ATOMS: &str = "mol_atoms";
    /// Ensembles only. Float32 `[batch]`: the calibrated sd: the factor
    /// [`super::keys::SD_SCALE`] times the domain score, or times the members' sample sd
    /// ([`super::keys::SD_METHOD`]).
    pub const PREDICTION_SD: &str = "prediction_sd";
    /// Ensembles only. Float32 `[batch]`: the applicability-domain score, the mean distance
    /// of the molecule's embedding to its nearest training molecules; above
    /// [`super::keys::DOMAIN_THRESHOLD`] the molecule is out of domain.
    pub const DOMAIN: &str = "domain";
}

/// Keys of the graph's metadata (`ModelProto.metadata_props`).
pub mod keys {
    /// lipo version that exported the graph.
    pub const LIPO_VERSION: &str = "lipo_version";
    /// SHA-256 of the tokenizer's vocabulary (`SmilesTokenizer::vocab_hash`).
    pub const VOCAB_HASH: &str = "vocab_hash";
    /// `regression` or `classification`.
    pub const TASK: &str = "task";
    /// Header of the label column (empty when unknown).
    pub const LABEL_NAME: &str = "label_name";
    /// Training label mean (already applied inside the graph).
    pub const LABEL_MEAN: &str = "label_mean";
    /// Training label sd (already applied inside the graph).
    pub const LABEL_SD: &str = "label_sd";
    /// Classification threshold in label units (empty when none).
    pub const THRESHOLD: &str = "threshold";
    /// Sequence length (tokens with `<bos>`/`<eos>`) covered by the reference model's rotary
    /// tables; the graph computes rotary angles in-graph and accepts longer inputs.
    pub const MAX_LENGTH: &str = "max_length";
    /// How the weights are stored: `none` (float32) or `int8` (absent in older bundles: none).
    pub const QUANTIZATION: &str = "quantization";
    /// Test-time augmentation: random SMILES averaged with each SMILES as given (absent: 0).
    pub const TTA: &str = "tta";
    /// `true` when SMILES are written in lipo's canonical form before they are encoded
    /// (absent: false).
    pub const CANONICAL: &str = "canonical";
    /// `graph` when the graph reads molecule graphs ([`super::io::ATOM_FEATURES`] …) instead
    /// of token ids (absent: tokens).
    pub const INPUT: &str = "input";
    /// Graph models: the feature layout, `version:atom,bond` widths (checked on opening).
    pub const GRAPH_FEATURES: &str = "graph_features";
    /// Ensembles: number of members.
    pub const MEMBERS: &str = "members";
    /// Ensembles: what `prediction_sd` scales: `domain` (the domain score) or `spread` (the
    /// members' sample sd; absent in older bundles).
    pub const SD_METHOD: &str = "sd_method";
    /// Ensembles: the factor already applied in `prediction_sd`.
    pub const SD_SCALE: &str = "sd_scale";
    /// Ensembles: the domain score above which a molecule is out of domain (the 95th
    /// percentile of the training molecules' leave-one-out scores).
    pub const DOMAIN_THRESHOLD: &str = "domain_threshold";
    /// Ensembles: nearest training molecules behind the domain score.
    pub const DOMAIN_NEIGHBOURS: &str = "domain_neighbours";
    /// Ensembles: training molecules (all folds).
    pub const TRAINING_MOLECULES: &str = "training_molecules";
    /// Ensembles: out-of-fold RMSE (label units) of the members on the training molecules.
    pub const OUT_OF_FOLD_RMSE: &str = "out_of_fold_rmse";
}

/// lipo's shipped lipophilicity predictor inside the source tree (an ensemble bundle).
pub const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/logd.lipo");

/// Where `scripts/install.sh` puts the shipped predictor, relative to the installed `lipo`
/// executable's folder.
pub const INSTALLED_FROM_BIN: &str = "../share/lipo/logd.lipo";

/// The bundle `lipo predict` and the bindings use when given none: `LIPO_DEFAULT_BUNDLE`
/// when set, else the shipped predictor when it is present: installed beside the running
/// executable ([`INSTALLED_FROM_BIN`]) or in the source tree this was built from.
pub fn default_bundle() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LIPO_DEFAULT_BUNDLE").filter(|p| !p.is_empty()) {
        return Some(p.into());
    }
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(INSTALLED_FROM_BIN)));
    installed
        .into_iter()
        .chain([PathBuf::from(SHIPPED)])
        .find(|b| b.join(MODEL).is_file())
}

/// Whether `path` is a bundle folder (or the `model.onnx` of one).
pub fn is_bundle(path: &Path) -> bool {
    path.join(MODEL).is_file() || (path.is_file() && path.file_name() == Some(MODEL.as_ref()))
}

/// The bundle folder of `path` (the folder itself, or the folder of its `model.onnx`), with
/// a clear error when it is not a bundle.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let dir = if path.is_file() && path.file_name() == Some(MODEL.as_ref()) {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        path.to_path_buf()
    };
    if !dir.exists() {
        return Err(Error::model(
            path,
            "no such bundle (make one with lipo export)",
        ));
    }
    if !dir.join(MODEL).is_file() {
        return Err(Error::model(
            &dir,
            format!("not a lipo bundle: no {MODEL} (a bundle holds {MODEL}, {TOKENIZER} and {META}; a graph model's has no {TOKENIZER})"),
        ));
    }
    Ok(dir)
}
