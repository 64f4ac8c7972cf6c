//! `lipo enumerate`: random SMILES of every molecule of a table (the augmentation that
//! `lipo finetune --augment` applies), for inspection or for other tools.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lipo::data::{self, TableOptions};
use lipo::rng::SplitMix64;
use lipo::tokenizer::SmilesTokenizer;

/// Flags of `lipo enumerate`.
#[derive(Args)]
pub struct EnumerateArgs {
    /// CSV/TSV with a SMILES column, or a .smi list (optionally .gz).
    #[arg(long)]
    data: PathBuf,
    /// Output CSV: line, smiles, variant, random_smiles (`-` for stdout).
    #[arg(long, default_value = "-")]
    out: PathBuf,
    /// Random SMILES per molecule.
    #[arg(long, default_value_t = 5)]
    copies: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Header of the SMILES column (default: the first header containing "smiles").
    #[arg(long)]
    smiles_col: Option<String>,
}

/// Writes `copies` random SMILES per molecule; molecules the writer declines (see
/// `lipo::augment`) are repeated as given and counted on stderr.
pub fn enumerate(a: EnumerateArgs) -> Result<()> {
    let opts = TableOptions {
        smiles_col: a.smiles_col.clone(),
        ..TableOptions::default()
    };
    let table = data::read_table(&a.data, &SmilesTokenizer::molformer(), &opts, false)?;
    let out = super::output::Output::open(Some(&a.out), &[&a.data], "--out")?;
    let mut w = csv::Writer::from_writer(out.writer());
    w.write_record(["line", "smiles", "variant", "random_smiles"])?;
    let mut rng = SplitMix64::derive(a.seed, "enumerate");
    let mut declined = 0;
    for r in &table.records {
        let graph = lipo::augment::rewritable(&r.smiles);
        declined += usize::from(graph.is_none());
        for k in 0..a.copies {
            let s = graph
                .as_ref()
                .and_then(|g| g.random_smiles(&mut rng))
                .unwrap_or_else(|| r.smiles.clone());
            w.write_record([&r.line.to_string(), &r.smiles, &k.to_string(), &s])?;
        }
    }
    w.flush()?;
    drop(w);
    out.finish()?;
    eprintln!(
        "{} molecules, {} random SMILES each; {declined} kept as given (the writer does not rewrite them)",
        table.records.len(),
        a.copies
    );
    Ok(())
}
