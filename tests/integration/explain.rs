//! `lipo explain` on a tiny model: the top-influence training molecule, left out of a retrain
//! with the same seed and settings, moves the prediction the way its influence said; the
//! cache, the CLI and bad input.

use std::path::Path;

use lipo::data::Split;
use lipo::explain::{ExplainConfig, Explainer};
use lipo::influence::LissaConfig;
use lipo::model::{Config, Model};
use lipo::peft::LoadModel;
use lipo::progress::Silent;
use lipo::train::{self, FinetuneConfig};
use tch::Device;

use crate::common;

/// A molecule of tokens no other row has (iodine), given a label far above the others.
const QUERY: &str = "IC(I)(I)CC(I)I";

fn settings() -> FinetuneConfig {
    FinetuneConfig {
        epochs: 12,
        batch_size: 8,
        lr: 2e-3,
        seed: 5,
        ..FinetuneConfig::default()
    }
}

/// The toy table with QUERY (label 12) at a row the seed's split puts in training; returns
/// that row.
fn table_with_query(path: &Path, n: usize) -> usize {
    common::write_toy_table(path, n);
    let cfg = settings();
    let split = Split::new(n, cfg.seed, cfg.test_frac, cfg.valid_frac).unwrap();
    let row = split.train[0];
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[row + 1] = format!("{QUERY},12.0");
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    row
}

fn train_run(data: &Path, out: &Path, exclude: Vec<usize>) -> Model {
    let config = Config {
        hidden_dropout_prob: 0.0,
        embedding_dropout_prob: 0.0,
        ..Config::tiny()
    };
    let run = lipo::train::FinetuneRun {
        init: lipo::train::InitFrom::Random(Box::new(config)),
        ..common::tiny_toy_run(
            data.to_path_buf(),
            FinetuneConfig {
                exclude_rows: exclude,
                ..settings()
            },
        )
    };
    train::finetune(&run, Device::Cpu, out, &mut Silent).unwrap();
    Model::load(&out.join("model"), Device::Cpu).unwrap()
}

fn predict(model: &Model, smiles: &str) -> f64 {
    let ids = model.tokenizer.encode(smiles).unwrap();
    lipo::predict::predict(model, &[ids], 1).unwrap()[0]
}

#[test]
fn removing_the_top_influence_molecule_moves_the_prediction_as_predicted() {
    let _g = common::lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    let row = table_with_query(&data, 64);
    let full = dir.path().join("full");
    let model = train_run(&data, &full, vec![]);
    let cfg = ExplainConfig {
        top: 5,
        lissa: LissaConfig {
            depth: 60,
            damping: 0.05,
            ..LissaConfig::default()
        },
        ..ExplainConfig::default()
    };
    let explainer =
        Explainer::open(&full.join("model"), &full, &cfg, Device::Cpu, &mut Silent).unwrap();
    let e = explainer.explain(QUERY).unwrap();
    assert!((e.prediction - predict(&model, QUERY)).abs() < 1e-9);
    assert_eq!(e.training_molecules, explainer.training_molecules());
    let top = &e.positive[0];
    assert_eq!(top.row, row, "{e:#?}");
    assert_eq!(top.smiles, QUERY);
    assert!(top.influence > 0.0 && top.removal_shift < 0.0, "{top:?}");
    assert!(e.negative.iter().all(|a| a.influence < 0.0));
    assert_eq!(e.neighbours.len(), 5);
    assert_eq!(
        e.neighbours[0].row, row,
        "the query is its own nearest neighbour"
    );
    assert!(e.neighbours[0].distance < 1e-4);
    // Retrained without it (same seed and settings), the prediction drops, as predicted.
    let without = train_run(&data, &dir.path().join("without"), vec![row]);
    let shift = predict(&without, QUERY) - e.prediction;
    assert!(
        shift < 0.0,
        "predicted {}, moved {shift}",
        top.removal_shift
    );
    // A second explainer reads the cached gradients and gives the same answer.
    assert!(full.join("explain/cache.safetensors").is_file());
    let again = Explainer::open(&full.join("model"), &full, &cfg, Device::Cpu, &mut Silent)
        .unwrap()
        .explain(QUERY)
        .unwrap();
    assert_eq!(again.positive[0].row, row);
    assert!((again.positive[0].influence - top.influence).abs() < 1e-6 * top.influence.abs());
    // The CLI prints the tables and writes the JSON.
    let json = dir.path().join("explain.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lipo"))
        .args([
            "--threads",
            "1",
            "explain",
            "--top",
            "3",
            "--lissa-depth",
            "60",
        ])
        .arg("--model")
        .arg(full.join("model"))
        .arg("--run")
        .arg(&full)
        .args(["--smiles", QUERY, "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pulls the prediction up") && stdout.contains(QUERY));
    let written: Vec<lipo::explain::Explanation> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written[0].positive[0].row, row);
    // The retraining check: three retrains, the influence group moves the way it predicted.
    let check_dir = dir.path().join("check");
    let mut runner = |run: &lipo::train::FinetuneRun, out: &Path| {
        train::finetune(run, Device::Cpu, out, &mut Silent)
    };
    let r = lipo::study::explain_check::check(
        &explainer,
        &model,
        &full,
        &[QUERY.to_string()],
        2,
        &check_dir,
        &mut runner,
    )
    .unwrap();
    let q = &r.queries[0];
    assert_eq!(q.removals.len(), 3);
    let by_influence = &q.removals[0];
    assert_eq!(by_influence.group, "influence");
    assert!(by_influence.rows.contains(&row));
    assert!(
        by_influence.predicted_shift < 0.0 && by_influence.actual_shift < 0.0,
        "{q:?}"
    );
    assert_eq!(r.groups[0].sign_agreement, 1.0);
    assert!(check_dir.join("check.md").is_file() && check_dir.join("check.json").is_file());
    // Bad input names itself.
    let err = match explainer.explain("C1CC") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an unclosed ring was explained"),
    };
    assert!(err.contains("C1CC"), "{err}");
}
