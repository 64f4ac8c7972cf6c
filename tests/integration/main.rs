//! lipo's integration tests, in one test binary: each binary links libtorch, and linking
//! dominated the test command's time when every file was its own binary. The C ABI
//! (`tests/ffi.rs`) and the header check (`tests/header.rs`) stay separate.
//!
//! - `cli`: the `lipo` command line on tiny models: outputs never destroy inputs, invalid
//!   SMILES, interruption (`kill -9`) and resumption;
//! - `experiments`, `study`: Tables 1 and 2 and the whole study on tiny settings;
//! - `influence`, `mlm`, `peft`: Task 2, masked-language-model training, Task 3;
//! - `graph`: the graph model (D-MPNN): runs, resume, refused settings;
//! - `model`: model folders, fine-tuning runs, checkpoints, crafted inputs;
//! - `onnx`: export, ONNX Runtime parity with tch, bundles, ensembles, `lipo predict`/`bench`;
//! - `tokenizer`: the SMILES tokenizer and its snapshot.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod experiments;
mod explain;
mod graph;
mod influence;
mod mlm;
mod model;
mod onnx;
mod peft;
mod study;
mod tokenizer;
