//! `lipo export`: a model folder as an ONNX bundle.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// Model folder (config.json, model.safetensors, tokenizer.json, lipo.json), or a
    /// gathered ensemble folder (`lipo finetune --ensemble`: one graph of all members).
    #[arg(long)]
    model: PathBuf,
    /// Bundle folder to write (conventionally NAME.lipo).
    #[arg(long)]
    out: PathBuf,
    /// Weight storage: none (float32, matches tch within 1e-4), float16 (half the file,
    /// computed in float32) or int8 (the encoder's linear layers as int8 with dynamically
    /// quantized activations: faster on CPUs, small error).
    #[arg(long, default_value = "none", value_parser = parse_quantize)]
    quantize: lipo::export::Quantize,
    /// Write every SMILES in lipo's canonical form before encoding it, so that all writings
    /// of a molecule get one prediction (models trained with --canonical have it already)
    #[arg(long)]
    canonical: bool,
}

fn parse_quantize(s: &str) -> std::result::Result<lipo::export::Quantize, String> {
    lipo::export::Quantize::parse(s).ok_or_else(|| format!("{s:?} is not none, float16 or int8"))
}

pub(crate) fn export(a: ExportArgs) -> Result<()> {
    let s = lipo::export::export_model_dir_as(&a.model, &a.out, a.quantize, a.canonical)?;
    eprintln!(
        "exported {} ({:?}, {} weights, {:.1} MB, {} weights) to {}",
        a.model.display(),
        s.task,
        a.quantize.name(),
        s.onnx_bytes as f64 / 1e6,
        s.initializer_elements,
        s.bundle.display()
    );
    Ok(())
}
