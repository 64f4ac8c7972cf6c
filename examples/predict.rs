//! Lipophilicity predictions from Rust with an exported bundle (ONNX Runtime, no libtorch).
//!
//!     cargo run --release --example predict -- MODEL.lipo [SMILES ...]
//!
//! SMILES come from the arguments, or from standard input (one per line) when none are
//! given. A molecule that fails prints its error on standard error and the exit status is 1.

use std::io::BufRead;
use std::path::Path;

use lipo::infer::{Predictor, PredictorOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(model) = args.next() else {
        anyhow::bail!("usage: predict MODEL.lipo [SMILES ...]");
    };
    let mut smiles: Vec<String> = args.collect();
    if smiles.is_empty() {
        for line in std::io::stdin().lock().lines() {
            if let Some(s) = line?.split_whitespace().next() {
                smiles.push(s.to_string());
            }
        }
    }
    let predictor = Predictor::open(Path::new(&model), &PredictorOptions::default())?;
    let mut failed = false;
    for (s, p) in smiles.iter().zip(predictor.predict(&smiles)?) {
        match p {
            Ok(v) => println!("{s}\t{v:.6}"),
            Err(e) => {
                eprintln!("{s}\terror: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
