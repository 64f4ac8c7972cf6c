//! `lipo embed`: mean-pooled encoder embeddings as a .npy matrix.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use lipo::model::Model;
use lipo::peft::LoadModel;

#[derive(Args)]
pub(crate) struct EmbedArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    input: PathBuf,
    /// Output .npy (float32, [molecules, hidden], input order).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long)]
    smiles_col: Option<String>,
}

pub(crate) fn embed(a: EmbedArgs) -> Result<()> {
    let device = lipo::device::parse(&a.device)?;
    let model = Model::load(&a.model, device)?;
    let out = super::output::Output::open(Some(&a.out), &[&a.input, &a.model], "--out")?;
    let mut seqs = Vec::new();
    for row in lipo::smiles_stream::SmilesStream::open(&a.input, a.smiles_col.as_deref())? {
        let row = row?;
        let at = || format!("{}:{}", a.input.display(), row.line);
        if let Some(p) = &row.problem {
            bail!("{}: {p}", at());
        }
        seqs.push(model.tokenizer.encode(&row.smiles).with_context(at)?);
    }
    let rows = lipo::predict::embed(&model, &seqs, a.batch_size)?;
    let h = model.config.hidden_size;
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    let n = seqs.len();
    let arr = ndarray::Array2::from_shape_vec((n, h), flat)?;
    ndarray_npy::WriteNpyExt::write_npy(&arr, out.writer())
        .with_context(|| format!("writing {}", a.out.display()))?;
    out.finish()?;
    eprintln!("wrote {} x {} embeddings to {}", n, h, a.out.display());
    Ok(())
}
