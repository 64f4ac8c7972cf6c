//! `lipo evaluate`: metrics of a trained model on a labelled table.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lipo::data;
use lipo::model::Model;
use lipo::peft::LoadModel;
use lipo::train;

use super::table_args::TableArgs;

#[derive(Args)]
pub(crate) struct EvaluateArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    /// Evaluate only the test rows of this fine-tuning run folder (its split.json).
    #[arg(long)]
    run: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    table: TableArgs,
}

pub(crate) fn evaluate(a: EvaluateArgs) -> Result<()> {
    let device = lipo::device::parse(&a.device)?;
    if lipo::graph::GraphModel::is_graph_dir(&a.model) {
        return evaluate_graph(&a, device);
    }
    let model = Model::load(&a.model, device)?;
    let data = data::read_table(&a.data, &model.tokenizer, &a.table.options(), true)?;
    let rows: Vec<usize> = match &a.run {
        Some(run) => train::test_rows_of(run, &data)?,
        None => (0..data.records.len()).collect(),
    };
    if model.meta.task == lipo::model::Task::Classification {
        let (m, _) = train::evaluate_classification(&model, &data, &rows, 64)?;
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(());
    }
    let (m, _) = train::evaluate(&model, &data, &rows, 64)?;
    println!("{}", serde_json::to_string_pretty(&m)?);
    Ok(())
}

/// `evaluate` on a graph model folder: the same metrics, from featurised molecules.
fn evaluate_graph(a: &EvaluateArgs, device: tch::Device) -> Result<()> {
    let model = lipo::graph::GraphModel::load(&a.model, device)?;
    let tokenizer = lipo::tokenizer::SmilesTokenizer::molformer();
    let data = data::read_table(&a.data, &tokenizer, &a.table.options(), true)?;
    let rows: Vec<usize> = match &a.run {
        Some(run) => train::test_rows_of(run, &data)?,
        None => (0..data.records.len()).collect(),
    };
    let graphs = rows
        .iter()
        .map(|&r| lipo::graph::featurize_smiles(&data.records[r].smiles))
        .collect::<lipo::Result<Vec<_>>>()?;
    let refs: Vec<&lipo::graph::MolGraph> = graphs.iter().collect();
    let pred = model.predict(&refs, 64);
    let labels = data.labels(&rows);
    if model.meta.task == lipo::model::Task::Classification {
        let classes: Vec<f64> = match model.meta.threshold {
            Some(t) => labels.iter().map(|&y| f64::from(u8::from(y > t))).collect(),
            None => labels,
        };
        let m = lipo::metrics::Classification::compute(&pred, &classes);
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(());
    }
    let m = lipo::metrics::Regression::compute(&pred, &labels);
    println!("{}", serde_json::to_string_pretty(&m)?);
    Ok(())
}
