//! Lipophilicity predictions from Rust with an exported bundle (ONNX Runtime, no libtorch).
//!
//!     cargo run --release --example predict -- [MODEL.lipo] [SMILES ...]
//!
//! The first argument is the model when it names an existing file or folder or ends in
//! `.lipo`; otherwise the default bundle is used (`LIPO_DEFAULT_BUNDLE`, else lipo's shipped
//! predictor). SMILES come from the arguments, or from standard input (one per line) when
//! none are given. An ensemble bundle adds "± sd" and "in domain" or "out of domain". A
//! molecule that fails prints its error on standard error and the exit status is 1.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use lipo::infer::{Predictor, PredictorOptions};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let model: PathBuf = match args.first() {
        Some(a) if Path::new(a).exists() || a.ends_with(".lipo") => args.remove(0).into(),
        _ => lipo::bundle::default_bundle().unwrap_or_else(|| {
            eprintln!(
                "no model given, LIPO_DEFAULT_BUNDLE is not set and the shipped predictor ({}) \
                 is not there; usage: predict [MODEL.lipo] [SMILES ...]",
                lipo::bundle::SHIPPED
            );
            std::process::exit(2)
        }),
    };
    let mut smiles = args;
    if smiles.is_empty() {
        for line in std::io::stdin().lock().lines() {
            if let Some(s) = line?.split_whitespace().next() {
                smiles.push(s.to_string());
            }
        }
    }
    let predictor = Predictor::open(&model, &PredictorOptions::default())?;
    let mut failed = false;
    for (s, p) in smiles.iter().zip(predictor.predict_detail(&smiles)?) {
        match p {
            Ok(p) => match (p.sd, p.in_domain) {
                (Some(sd), Some(inside)) => println!(
                    "{s}\t{:.6} ± {sd:.6}\t{}",
                    p.value,
                    if inside { "in domain" } else { "out of domain" }
                ),
                _ => println!("{s}\t{:.6}", p.value),
            },
            Err(e) => {
                eprintln!("{s}\terror: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
