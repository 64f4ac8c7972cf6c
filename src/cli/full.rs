//! The full command line (built with libtorch): every command runs in this process.

use crate::cli;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lipo",
    version,
    about = "Fine-tune MoLFormer on lipophilicity and serve it"
)]
struct Cli {
    /// Tensor threads on the CPU, 1 to 1024. Default: training adapts the count (up to one per
    /// core) to the machine's load, measured every minute; inference uses one per core.
    #[arg(long, global = true, value_parser = clap::value_parser!(i32).range(1..=1024))]
    threads: Option<i32>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The whole study (Tables 1–3, best model exported to ONNX and checked) with a report;
    /// `--quick` for a smoke test.
    Study(cli::study::StudyArgs),
    /// Data sets: `lipo data fetch` downloads MoleculeNet Lipophilicity (SHA-256 checked).
    #[command(subcommand)]
    Data(cli::study::DataCmd),
    /// Fine-tune a regression head and the encoder on a labelled table (Task 1.1).
    Finetune(Box<cli::finetune::FinetuneArgs>),
    /// Masked-language-model training on a SMILES corpus (pre-training or domain MLM).
    Mlm(cli::mlm::MlmArgs),
    /// Influence of external labelled molecules on validation loss (Task 2, LiSSA).
    Influence(cli::influence::InfluenceArgs),
    /// The training molecules a prediction rests on: largest positive and negative influence
    /// (LiSSA), and the nearest training molecules by embedding.
    Explain(cli::explain::ExplainArgs),
    /// Select external molecules from influence scores.
    Select(cli::influence::SelectArgs),
    /// Table 1 of the study: random init vs pre-trained vs pre-trained + domain MLM, over seeds.
    CompareMlm(cli::mlm::CompareMlmArgs),
    /// Table 2 of the study: train + influence-selected external molecules vs random, all,
    /// bottom and none, over seeds.
    CompareInfluence(cli::table2::CompareInfluenceArgs),
    /// Task 3: full fine-tuning vs BitFit vs LoRA vs IA3 on the same splits and seeds.
    ComparePeft(cli::peft::ComparePeftArgs),
    /// Beyond the study: the graph member (D-MPNN) against the MoLFormer recipes, gathered
    /// from finished runs (scripts/graph.sh, scripts/ensemble.sh) over seeds 0-2.
    CompareGraph(cli::study::CompareGraphArgs),
    /// Fold LoRA/IA3 adapters into the base weights (a plain model folder, e.g. for export).
    Merge(cli::peft::MergeArgs),
    /// Metrics of a trained model on a labelled table (all rows, or a run's test split).
    Evaluate(cli::evaluate::EvaluateArgs),
    /// Predict with a model folder (tch) or an exported bundle (ONNX Runtime, streamed);
    /// invalid SMILES get an error column.
    Predict(cli::predict::PredictArgs),
    /// Mean-pooled encoder embeddings as a .npy matrix [molecules, hidden].
    Embed(cli::embed::EmbedArgs),
    /// Export a model folder as an ONNX bundle (model.onnx, tokenizer.json, lipo.json).
    Export(cli::export::ExportArgs),
    /// Molecules/s of ONNX Runtime vs tch eager on the same model at several batch sizes.
    Bench(cli::bench::BenchArgs),
    /// Random SMILES of every molecule of a table (the augmentation of `finetune --augment`).
    Enumerate(cli::enumerate::EnumerateArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> Result<()> {
    run(Cli::parse())
}

fn run(cli: Cli) -> Result<()> {
    // --threads fixes the count; without it training adapts it to the machine's load.
    lipo::threads::set_policy(match cli.threads {
        Some(n) => lipo::threads::Policy::Fixed(n as usize),
        None => lipo::threads::Policy::Adaptive { max: 0 },
    });
    let threads = cli.threads.unwrap_or_else(|| lipo::threads::cores() as i32);
    match cli.cmd {
        Cmd::Study(a) => cli::study::study(a, cli.threads),
        Cmd::Data(c) => cli::study::data(c),
        Cmd::Finetune(a) => cli::finetune::finetune(*a),
        Cmd::Mlm(a) => cli::mlm::mlm(a),
        Cmd::Influence(a) => cli::influence::influence(a),
        Cmd::Select(a) => cli::influence::select(a),
        Cmd::Explain(a) => cli::explain::explain(a),
        Cmd::CompareMlm(a) => cli::mlm::compare_mlm(a),
        Cmd::CompareInfluence(a) => cli::table2::compare_influence(a),
        Cmd::ComparePeft(a) => cli::peft::compare_peft(a, cli.threads),
        Cmd::CompareGraph(a) => cli::study::compare_graph(a),
        Cmd::Merge(a) => cli::peft::merge(a),
        Cmd::Evaluate(a) => cli::evaluate::evaluate(a),
        Cmd::Predict(a) => cli::predict::predict(a, threads),
        Cmd::Embed(a) => cli::embed::embed(a),
        Cmd::Export(a) => cli::export::export(a),
        Cmd::Bench(a) => cli::bench::bench(a, threads),
        Cmd::Enumerate(a) => cli::enumerate::enumerate(a),
    }
}
