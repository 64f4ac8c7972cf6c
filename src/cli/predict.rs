//! `lipo predict`: streamed predictions of a model folder (tch) or an exported bundle (ONNX
//! Runtime).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lipo::model::Model;
use lipo::peft::LoadModel;

#[derive(Args)]
pub(crate) struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// CSV/TSV with a SMILES column, a .smi list, or - for SMILES on standard input.
    #[arg(long)]
    input: PathBuf,
    /// Output CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long)]
    smiles_col: Option<String>,
}

/// Molecules read, predicted and written per chunk of a streamed prediction.
const PREDICT_CHUNK: usize = 4096;

/// One chunk's results, in input order: a prediction or why there is none.
type Outcomes = Vec<std::result::Result<f64, String>>;

/// Streams `a.input` in chunks through `predict` and writes the CSV (line, smiles, label,
/// error) to `a.out` (through a temporary file renamed at the end, never onto the input) or
/// standard output. Rows the reader cannot use get their problem in the error column.
fn write_predictions(
    a: &PredictArgs,
    label: &str,
    mut predict: impl FnMut(&[&str]) -> Result<Outcomes>,
) -> Result<()> {
    let mut rows = lipo::smiles_stream::SmilesStream::open(&a.input, a.smiles_col.as_deref())?;
    let out = super::output::Output::open(a.out.as_deref(), &[&a.input, &a.model], "--out")?;
    let mut w = csv::Writer::from_writer(out.writer());
    w.write_record(["line", "smiles", label, "error"])?;
    let (mut n, mut n_bad) = (0usize, 0usize);
    loop {
        let chunk = rows.next_chunk(PREDICT_CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        let usable: Vec<&str> = chunk
            .iter()
            .filter(|r| r.problem.is_none())
            .map(|r| r.smiles.as_str())
            .collect();
        let mut outcomes = predict(&usable)?.into_iter();
        for r in &chunk {
            let line = r.line.to_string();
            let outcome = match &r.problem {
                Some(p) => Err(p.clone()),
                None => outcomes.next().expect("one outcome per usable row"),
            };
            match outcome {
                Ok(y) => w.write_record([&line, &r.smiles, &format!("{y:.6}"), ""])?,
                Err(e) => {
                    n_bad += 1;
                    w.write_record([&line, &r.smiles, "", &e])?
                }
            }
        }
        n += chunk.len();
        w.flush()?;
    }
    drop(w);
    out.finish()?;
    if n_bad > 0 {
        eprintln!("{n_bad} of {n} molecules could not be read (see the error column)");
    }
    Ok(())
}

pub(crate) fn predict(a: PredictArgs, threads: i32) -> Result<()> {
    if lipo::bundle::is_bundle(&a.model) {
        return predict_bundle(&a, threads);
    }
    let device = lipo::device::parse(&a.device)?;
    let model = Model::load(&a.model, device)?;
    let label = model
        .meta
        .label_name
        .clone()
        .unwrap_or_else(|| "prediction".into());
    write_predictions(&a, &label, |smiles| {
        let encoded: Vec<_> = smiles
            .iter()
            .map(|s| model.tokenizer.encode(s).map_err(|e| e.to_string()))
            .collect();
        let ok: Vec<&str> = smiles
            .iter()
            .zip(&encoded)
            .filter(|(_, e)| e.is_ok())
            .map(|(s, _)| *s)
            .collect();
        let mut preds = lipo::predict::predict_smiles(&model, &ok, a.batch_size)?.into_iter();
        Ok(encoded
            .into_iter()
            .map(|e| e.map(|_| preds.next().expect("one prediction per molecule")))
            .collect())
    })
}

/// `predict` on an exported bundle, through ONNX Runtime.
fn predict_bundle(a: &PredictArgs, threads: i32) -> Result<()> {
    use lipo::infer::{Predictor, PredictorOptions};
    let opts = PredictorOptions {
        threads: threads.max(0) as usize,
        batch_size: a.batch_size,
        ..PredictorOptions::default()
    };
    let predictor = Predictor::open(&a.model, &opts)?;
    let label = predictor
        .info()
        .label_name
        .clone()
        .unwrap_or_else(|| "prediction".into());
    write_predictions(a, &label, |smiles| {
        Ok(predictor
            .predict(smiles)?
            .into_iter()
            .map(|p| p.map_err(|e| e.to_string()))
            .collect())
    })
}
