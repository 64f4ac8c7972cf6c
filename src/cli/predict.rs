//! `lipo predict`: streamed predictions of a model folder (tch) or an exported bundle (ONNX
//! Runtime).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
#[cfg(feature = "train")]
use lipo::model::Model;
#[cfg(feature = "train")]
use lipo::peft::LoadModel;

#[derive(Args)]
pub(crate) struct PredictArgs {
    /// Model folder (tch) or bundle (ONNX Runtime); default: the shipped lipophilicity
    /// ensemble (models/logd.lipo, or LIPO_DEFAULT_BUNDLE).
    #[arg(long)]
    model: Option<PathBuf>,
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
type Outcomes = Vec<std::result::Result<Row, String>>;

/// What one molecule's output line holds.
#[derive(Clone, Copy)]
struct Row {
    value: f64,
    /// Calibrated sd, domain score and in-domain flag (ensemble bundles).
    trust: Option<(f64, f64, bool)>,
}

impl Row {
    #[cfg(feature = "train")]
    fn plain(value: f64) -> Row {
        Row { value, trust: None }
    }
}

/// Streams `a.input` in chunks through `predict` and writes the CSV (line, smiles, label,
/// error) to `a.out` (through a temporary file renamed at the end, never onto the input) or
/// standard output. Rows the reader cannot use get their problem in the error column.
fn write_predictions(
    a: &PredictArgs,
    model: &std::path::Path,
    label: &str,
    trust: bool,
    mut predict: impl FnMut(&[&str]) -> Result<Outcomes>,
) -> Result<()> {
    let mut rows = lipo::smiles_stream::SmilesStream::open(&a.input, a.smiles_col.as_deref())?;
    let out = super::output::Output::open(a.out.as_deref(), &[&a.input, model], "--out")?;
    let mut w = csv::Writer::from_writer(out.writer());
    let trust_cols: &[&str] = if trust {
        &["sd", "domain", "in_domain"]
    } else {
        &[]
    };
    let blank = vec![String::new(); trust_cols.len()];
    let header: Vec<&str> = ["line", "smiles", label]
        .into_iter()
        .chain(trust_cols.iter().copied())
        .chain(["error"])
        .collect();
    w.write_record(&header)?;
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
            let (value, extra, error) = match outcome {
                Ok(y) => {
                    let extra = match y.trust {
                        Some((sd, d, ok)) => {
                            vec![
                                format!("{sd:.6}"),
                                format!("{d:.6}"),
                                u8::from(ok).to_string(),
                            ]
                        }
                        None => blank.clone(),
                    };
                    (format!("{:.6}", y.value), extra, String::new())
                }
                Err(e) => {
                    n_bad += 1;
                    (String::new(), blank.clone(), e)
                }
            };
            let mut record = vec![line, r.smiles.clone(), value];
            record.extend(extra);
            record.push(error);
            w.write_record(&record)?;
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
    let path = match &a.model {
        Some(p) => p.clone(),
        None => lipo::bundle::default_bundle().ok_or_else(|| {
            anyhow::anyhow!(
                "no --model given and the shipped predictor ({}) is not there; pass --model",
                lipo::bundle::SHIPPED
            )
        })?,
    };
    if lipo::bundle::is_bundle(&path) {
        return predict_bundle(&a, &path, threads);
    }
    predict_model_dir(&a, &path)
}

/// `predict` on a model folder, through tch.
#[cfg(feature = "train")]
fn predict_model_dir(a: &PredictArgs, path: &std::path::Path) -> Result<()> {
    let device = lipo::device::parse(&a.device)?;
    if lipo::graph::GraphModel::is_graph_dir(path) {
        return predict_graph_dir(a, path, device);
    }
    let model = Model::load(path, device)?;
    let label = model
        .meta
        .label_name
        .clone()
        .unwrap_or_else(|| "prediction".into());
    write_predictions(a, path, &label, false, |smiles| {
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
            .map(|e| e.map(|_| Row::plain(preds.next().expect("one prediction per molecule"))))
            .collect())
    })
}

/// `predict` on a graph model folder (tch): each SMILES featurised, then batched.
#[cfg(feature = "train")]
fn predict_graph_dir(a: &PredictArgs, path: &std::path::Path, device: tch::Device) -> Result<()> {
    let model = lipo::graph::GraphModel::load(path, device)?;
    let label = model
        .meta
        .label_name
        .clone()
        .unwrap_or_else(|| "prediction".into());
    write_predictions(a, path, &label, false, |smiles| {
        let graphs: Vec<_> = smiles
            .iter()
            .map(|s| lipo::graph::featurize_smiles(s).map_err(|e| e.to_string()))
            .collect();
        let ok: Vec<&lipo::graph::MolGraph> =
            graphs.iter().filter_map(|g| g.as_ref().ok()).collect();
        let mut preds = model.predict(&ok, a.batch_size).into_iter();
        Ok(graphs
            .into_iter()
            .map(|g| g.map(|_| Row::plain(preds.next().expect("one prediction per molecule"))))
            .collect())
    })
}

/// `predict` on a model folder needs libtorch, which the inference-only build leaves out.
#[cfg(not(feature = "train"))]
fn predict_model_dir(_: &PredictArgs, path: &std::path::Path) -> Result<()> {
    anyhow::bail!(
        "{} is not an exported bundle (lipo.json + model.onnx); this lipo is the \
         inference-only build, which predicts with bundles only (`lipo export` makes one)",
        path.display()
    )
}

/// `predict` on an exported bundle, through ONNX Runtime.
fn predict_bundle(a: &PredictArgs, path: &std::path::Path, threads: i32) -> Result<()> {
    use lipo::infer::{Predictor, PredictorOptions};
    let opts = PredictorOptions {
        threads: threads.max(0) as usize,
        batch_size: a.batch_size,
        ..PredictorOptions::default()
    };
    let predictor = Predictor::open(path, &opts)?;
    let label = predictor
        .info()
        .label_name
        .clone()
        .unwrap_or_else(|| "prediction".into());
    let trust = predictor.info().ensemble.is_some();
    write_predictions(a, path, &label, trust, |smiles| {
        Ok(predictor
            .predict_detail(smiles)?
            .into_iter()
            .map(|p| {
                p.map(|p| Row {
                    value: p.value,
                    trust: p
                        .sd
                        .zip(p.domain)
                        .zip(p.in_domain)
                        .map(|((s, d), i)| (s, d, i)),
                })
                .map_err(|e| e.to_string())
            })
            .collect())
    })
}
