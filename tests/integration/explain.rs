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
    // Retraining the run unchanged repeats it: the control does not move the prediction.
    assert_eq!(r.control_max_abs_shift, 0.0, "{q:?}");
    assert!(check_dir.join("check.md").is_file() && check_dir.join("check.json").is_file());
    // Bad input names itself.
    let err = match explainer.explain("C1CC") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an unclosed ring was explained"),
    };
    assert!(err.contains("C1CC"), "{err}");
}

/// Per-step training losses of the run in `dir`, in order.
fn step_losses(dir: &Path) -> Vec<f64> {
    lipo::trainlog::read_log(&dir.join(train::files::LOG))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            lipo::trainlog::LogRecord::Step(s) => Some(s.train_loss),
            _ => None,
        })
        .collect()
}

/// Trains a 2-epoch run on the toy table (dropout on) leaving out `exclude`; returns its
/// step losses.
fn dropout_run(data: &Path, out: &Path, exclude: Vec<usize>, step_seeds: bool) -> Vec<f64> {
    let run = common::tiny_toy_run(
        data.to_path_buf(),
        FinetuneConfig {
            epochs: 2,
            batch_size: 4,
            exclude_rows: exclude,
            step_seeds,
            ..settings()
        },
    );
    train::finetune(&run, Device::Cpu, out, &mut Silent).unwrap();
    step_losses(out)
}

/// Under `step_seeds` a retrain without one row keeps every batch before the one that held
/// it, dropout masks included: the leading step losses are bit-identical to the run's. With
/// one dropout stream per epoch (the default) the whole order is redrawn and the first step
/// already differs.
#[test]
fn step_seeds_keep_the_batches_a_left_out_row_was_not_in() {
    let _g = common::lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("toy.csv");
    common::write_toy_table(&data, 60);
    let cfg = settings();
    let split = Split::new(60, cfg.seed, cfg.test_frac, cfg.valid_frac).unwrap();
    let leading = |a: &[f64], b: &[f64]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
    for step_seeds in [true, false] {
        let tag = if step_seeds { "s" } else { "d" };
        let base = dropout_run(
            &data,
            &tmp.path().join(format!("{tag}-base")),
            vec![],
            step_seeds,
        );
        let again = dropout_run(
            &data,
            &tmp.path().join(format!("{tag}-again")),
            vec![],
            step_seeds,
        );
        assert_eq!(base, again, "a run repeats bit for bit");
        let mut same = Vec::new();
        for (k, &row) in split.train.iter().take(3).enumerate() {
            let out = tmp.path().join(format!("{tag}-without-{k}"));
            let losses = dropout_run(&data, &out, vec![row], step_seeds);
            if step_seeds {
                assert_eq!(
                    losses.len(),
                    base.len(),
                    "the batches stay, one row shorter"
                );
            }
            same.push(leading(&base, &losses));
        }
        if step_seeds {
            assert!(same.iter().any(|&n| n > 0), "{same:?}");
        } else {
            assert!(same.iter().all(|&n| n == 0), "{same:?}");
        }
    }
}

/// `train_params = last:1` trains the last encoder layer and the head; every other tensor
/// keeps its starting value.
#[test]
fn train_params_freeze_what_they_do_not_name() {
    let _g = common::lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("toy.csv");
    common::write_toy_table(&data, 40);
    let start = tmp.path().join("start");
    common::save_tiny_pretrained(&start, 3);
    let run = lipo::train::FinetuneRun {
        init: lipo::train::InitFrom::Model(start.clone()),
        ..common::tiny_toy_run(
            data.clone(),
            FinetuneConfig {
                epochs: 2,
                train_params: Some("last:1".parse().unwrap()),
                ..settings()
            },
        )
    };
    let out = tmp.path().join("run");
    let report = train::finetune(&run, Device::Cpu, &out, &mut Silent).unwrap();
    let before = Model::load(&start, Device::Cpu).unwrap();
    let after = Model::load(&out.join("model"), Device::Cpu).unwrap();
    let layers = after.config.num_hidden_layers;
    let last = format!("molformer.encoder.layer.{}.", layers - 1);
    let old: std::collections::HashMap<String, tch::Tensor> =
        before.named_tensors().into_iter().collect();
    let (mut frozen, mut moved) = (0, 0);
    for (name, t) in after.named_tensors() {
        let Some(o) = old.get(&name) else { continue };
        let same = t.equal(o);
        if name.starts_with(&last) && name.ends_with("dense.weight") {
            assert!(!same, "{name} should have trained");
            moved += 1;
        } else if name.starts_with("molformer.encoder.layer.0.")
            || name.starts_with("molformer.embeddings.")
        {
            assert!(same, "{name} should be frozen");
            frozen += 1;
        }
    }
    assert!(frozen > 0 && moved > 0, "{frozen} frozen, {moved} moved");
    let counts = report.parameter_counts.expect("counts");
    assert!(report.trainable_parameters < counts.total / 2);
    // With a PEFT method it is refused, naming the setting.
    let both = lipo::train::FinetuneRun {
        train: FinetuneConfig {
            peft: Some(lipo::peft::PeftConfig::BitFit),
            ..run.train.clone()
        },
        ..run.clone()
    };
    let err = train::finetune(&both, Device::Cpu, &tmp.path().join("both"), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train_params"), "{err}");
}
