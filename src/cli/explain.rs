//! `lipo explain`: the training molecules a prediction rests on (influence functions), beside
//! its nearest training molecules by embedding.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use lipo::explain::{ExplainConfig, Explainer, Explanation};
use lipo::influence::ParamSet;
use lipo::peft::LoadModel;

#[derive(Args)]
pub(crate) struct ExplainArgs {
    /// The trained model folder (e.g. RUN/model).
    #[arg(long)]
    model: PathBuf,
    /// The run folder that trained it (its run.json and split.json name the training
    /// molecules); the training gradients are cached in RUN/explain/.
    #[arg(long)]
    run: PathBuf,
    /// The molecule to explain.
    #[arg(long, conflicts_with = "input", required_unless_present = "input")]
    smiles: Option<String>,
    /// Or a table / .smi list of molecules to explain, one after the other.
    #[arg(long)]
    input: Option<PathBuf>,
    /// SMILES column of --input (default: the first containing "smiles").
    #[arg(long)]
    smiles_col: Option<String>,
    /// Training molecules listed per direction, and nearest neighbours.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Parameters of the influence: head, last:N (the last N encoder layers and the head),
    /// all or adapters.
    #[arg(long, default_value = "last:1")]
    params: String,
    /// Dimension of the CountSketch of the cached training gradients.
    #[arg(long, default_value_t = 8192)]
    sketch_dim: usize,
    #[command(flatten)]
    lissa: super::influence::LissaArgs,
    /// Seed of the sketch and of LiSSA's mini-batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the explanations as JSON (an array) to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: String,
    /// Check the explanations by retraining, into this folder: for each molecule, retrain the
    /// run (same seed and settings) without its --remove top-influence training molecules,
    /// without its --remove nearest neighbours, and without --remove random ones, and compare
    /// how the prediction moves (OUT/check.md, OUT/check.json; resumable).
    #[arg(long)]
    check: Option<PathBuf>,
    /// Training molecules left out per retrain of --check.
    #[arg(long, default_value_t = 10)]
    remove: usize,
}

pub(crate) fn explain(a: ExplainArgs) -> Result<()> {
    let smiles: Vec<String> = match (&a.smiles, &a.input) {
        (Some(s), _) => vec![s.clone()],
        (None, Some(path)) => {
            let mut rows = lipo::smiles_stream::SmilesStream::open(path, a.smiles_col.as_deref())?;
            let mut all = Vec::new();
            loop {
                let chunk = rows.next_chunk(4096)?;
                if chunk.is_empty() {
                    break;
                }
                for r in chunk {
                    if let Some(p) = r.problem {
                        bail!("{}:{}: {p}", path.display(), r.line);
                    }
                    all.push(r.smiles);
                }
            }
            all
        }
        (None, None) => bail!("give --smiles or --input"),
    };
    let cfg = ExplainConfig {
        params: a.params.parse::<ParamSet>()?,
        lissa: a.lissa.config(a.seed),
        top: a.top,
        sketch_dim: a.sketch_dim,
        seed: a.seed,
    };
    let device = lipo::device::parse(&a.device)?;
    let mut monitor = super::monitor::CliMonitor::new();
    let explainer = Explainer::open(&a.model, &a.run, &cfg, device, &mut monitor)?;
    if let Some(out) = &a.check {
        let model = lipo::model::Model::load(&a.model, device)?;
        let mut runner = |run: &lipo::train::FinetuneRun, dir: &std::path::Path| {
            if let Some(done) = lipo::train::finished_record(run, dir)? {
                return Ok(done);
            }
            eprintln!("retraining into {}", dir.display());
            lipo::train::finetune(run, device, dir, &mut monitor)
        };
        let r = lipo::study::explain_check::check(
            &explainer,
            &model,
            &a.run,
            &smiles,
            a.remove,
            out,
            &mut runner,
        )?;
        print!("{}", lipo::study::explain_check::markdown(&r));
        eprintln!("wrote {}", out.join("check.md").display());
        return Ok(());
    }
    let mut all = Vec::new();
    for s in &smiles {
        let e = explainer.explain(s)?;
        print!("{}", table(&e));
        all.push(e);
    }
    if let Some(path) = &a.json {
        lipo::fsutil::ensure_not_input(path, &[&a.model, &a.run], "--json")?;
        lipo::fsutil::write_json(path, &all)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// One explanation as plain-text tables.
fn table(e: &Explanation) -> String {
    let mut s = format!(
        "\n{}  predicted {} = {:.3}\ninfluence over {} ({} training molecules, gradients {} {}), \
         LiSSA {}\n",
        e.smiles,
        e.label_name,
        e.prediction,
        e.params,
        e.training_molecules,
        e.projection.kind,
        e.projection.dim,
        if e.lissa_converged {
            "settled"
        } else {
            "did NOT settle (raise --lissa-depth or --lissa-damping)"
        }
    );
    for (title, rows) in [
        ("pulls the prediction up", &e.positive),
        ("pulls the prediction down", &e.negative),
    ] {
        s += &format!(
            "\n{title} (influence I; leaving it out moves the prediction by about −I/n):\n  \
             {:>6}  {:>10}  {:>10}  {:>7}  smiles\n",
            "row", "influence", "if removed", "label"
        );
        for r in rows.iter() {
            s += &format!(
                "  {:>6}  {:>10.4}  {:>+10.5}  {:>7.2}  {}\n",
                r.row, r.influence, r.removal_shift, r.label, r.smiles
            );
        }
    }
    s += &format!(
        "\nnearest training molecules by embedding:\n  {:>6}  {:>9}  {:>7}  smiles\n",
        "row", "distance", "label"
    );
    for n in &e.neighbours {
        s += &format!(
            "  {:>6}  {:>9.4}  {:>7.2}  {}\n",
            n.row, n.distance, n.label, n.smiles
        );
    }
    s
}
