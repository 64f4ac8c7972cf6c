//! `lipo bench`: molecules/s of ONNX Runtime vs tch eager on the same model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Model folder (exported to a temporary bundle for ONNX Runtime), or an ensemble folder
    /// (its first member against the whole ensemble). With --train: the model trained
    /// (default: the bundled pre-trained model).
    #[arg(long, required_unless_present = "train")]
    model: Option<PathBuf>,
    /// Time fine-tuning instead of inference: --threads 1, the default (adaptive) thread
    /// count and every core fixed, on the idle machine and beside one busy thread.
    #[arg(long)]
    train: bool,
    /// With --train: seconds of training per case.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// SMILES table, e.g. lipophilicity.csv (default: $LIPO_DATA_DIR/lipophilicity.csv).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    batch_sizes: Vec<usize>,
    /// Use only the first N molecules.
    #[arg(long)]
    limit: Option<usize>,
    /// Results as JSON.
    #[arg(long, default_value = "bench.json")]
    out: PathBuf,
    #[arg(long)]
    smiles_col: Option<String>,
    /// Also time an int8 export (`lipo export --quantize int8`) and report its error.
    #[arg(long)]
    int8: bool,
    /// ONNX Runtime intra-op threads (default: --threads).
    #[arg(long)]
    ort_threads: Option<usize>,
    /// Graph models: write the molecules' graphs (lipo's features) to this safetensors file
    /// for benches/eager_graph.py, instead of timing.
    #[arg(long)]
    dump_graphs: Option<PathBuf>,
    /// Timed passes per engine and batch size (engines take turns on slices of 256 molecules);
    /// the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

pub(crate) fn bench(a: BenchArgs, threads: i32) -> Result<()> {
    let data = match a.data.clone() {
        Some(d) => d,
        None => std::env::var_os("LIPO_DATA_DIR")
            .map(|d| PathBuf::from(d).join("lipophilicity.csv"))
            .context("give --data or set LIPO_DATA_DIR")?,
    };
    if a.train {
        return bench_train(&a, &data);
    }
    let cfg = lipo::bench::BenchConfig {
        model: a.model.context("give --model")?,
        data,
        smiles_col: a.smiles_col,
        batch_sizes: a.batch_sizes,
        limit: a.limit,
        threads: threads.max(1) as usize,
        int8: a.int8,
        ort_threads: a.ort_threads,
        repeats: a.repeats,
    };
    let tmp = tempfile::tempdir().context("creating a temporary folder")?;
    if let Some(path) = &a.dump_graphs {
        let n = lipo::bench::graph::dump_graphs(&cfg, path)?;
        eprintln!("wrote the graphs of {n} molecules to {}", path.display());
        return Ok(());
    }
    if lipo::bench::graph::is_graph(&cfg.model) {
        let report = lipo::bench::graph::run(&cfg, tmp.path())?;
        print!("{}", lipo::bench::graph::table(&report));
        lipo::fsutil::write_json(&a.out, &report)?;
        eprintln!("wrote {}", a.out.display());
        return Ok(());
    }
    let report = lipo::bench::run(&cfg, tmp.path())?;
    print!("{}", lipo::bench::table(&report));
    lipo::fsutil::write_json(&a.out, &report)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// `lipo bench --train`: training throughput per thread policy, idle and busy.
fn bench_train(a: &BenchArgs, data: &std::path::Path) -> Result<()> {
    if !(a.seconds > 0.0 && a.seconds.is_finite()) {
        anyhow::bail!(
            "--seconds {} is not a positive number of seconds",
            a.seconds
        );
    }
    let init = match &a.model {
        Some(m) => m.clone(),
        None => lipo::model::default_model_dir().context("no --model and no bundled model")?,
    };
    let tok = lipo::tokenizer::SmilesTokenizer::molformer();
    let opts = lipo::data::TableOptions {
        smiles_col: a.smiles_col.clone(),
        ..Default::default()
    };
    let table = lipo::data::read_table(data, &tok, &opts, false)?;
    let seqs: Vec<Vec<u32>> = table
        .records
        .iter()
        .take(a.limit.unwrap_or(1024))
        .map(|r| r.ids.clone())
        .collect();
    eprintln!(
        "training {} for {} s per case on {} molecules of {}",
        init.display(),
        a.seconds,
        seqs.len(),
        data.display()
    );
    let report = lipo::bench::train::run(&init, &seqs, a.seconds)?;
    print!("{}", lipo::bench::train::table(&report));
    lipo::fsutil::write_json(&a.out, &report)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
