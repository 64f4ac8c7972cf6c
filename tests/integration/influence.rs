//! Influence functions on a tiny trained model: LiSSA agrees with the exact (conjugate
//! gradient) solution, divergence is an error, and selection never takes test duplicates.

use lipo::data::{read_table, Split, TableOptions};
use lipo::influence::{self, Examples, LissaConfig, ParamSet};
use lipo::model::{Config, Model};
use lipo::selection::{self, ScoreConfig, Selection, Solver};
use lipo::tokenizer::{pad_batch, SmilesTokenizer};
use tch::Tensor;

use crate::common;
use common::lock;

fn toy(n: usize, seed: u64) -> (Vec<String>, Vec<f64>) {
    // Chain fragments, then a halogen that ends the chain (or none).
    let frags = ["C", "O", "N", "c1ccccc1", "C(=O)", "CC"];
    let ends = ["", "Cl", "F"];
    let mut rng = lipo::rng::SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let mut smi = String::new();
            let mut y = 0.0;
            for _ in 0..(2 + rng.below(4)) {
                let f = frags[rng.below(frags.len() as u64) as usize];
                smi.push_str(f);
                y += match f {
                    "c1ccccc1" => 1.0,
                    "O" | "N" => -0.6,
                    _ => 0.1,
                } + (rng.next_f64() - 0.5) * 0.2;
            }
            let end = ends[rng.below(ends.len() as u64) as usize];
            smi.push_str(end);
            if !end.is_empty() {
                y += 0.5;
            }
            (smi, y)
        })
        .unzip()
}

/// A tiny model trained for a while on `seqs` (so the Hessian is that of a near-minimum).
fn trained_model(seqs: &[Vec<u32>], ys: &[f64]) -> Model {
    let cfg = Config {
        hidden_dropout_prob: 0.0,
        embedding_dropout_prob: 0.0,
        ..Config::tiny()
    };
    let m = common::regression_model(cfg, 7);
    m.set_trainable(|_| true);
    let mut opt = lipo::optim::Adam::new(m.named_tensors(), lipo::optim::AdamConfig::adam());
    let (ids, mask) = m.batch_tensors(&pad_batch(seqs));
    let y = Tensor::from_slice(&ys.iter().map(|&v| v as f32).collect::<Vec<_>>());
    for _ in 0..150 {
        let loss = m
            .head_forward(&ids, &mask, true)
            .unwrap()
            .squeeze_dim(-1)
            .mse_loss(&y, tch::Reduction::Mean);
        opt.zero_grad();
        loss.backward();
        opt.step(3e-3);
    }
    m
}

#[test]
fn lissa_matches_exact_influence() {
    let _g = lock();
    tch::set_num_threads(1);
    let tok = SmilesTokenizer::molformer();
    let (smiles, ys) = toy(80, 1);
    let seqs: Vec<Vec<u32>> = smiles.iter().map(|s| tok.encode(s).unwrap()).collect();
    let (train_s, rest) = seqs.split_at(50);
    let (train_y, rest_y) = ys.split_at(50);
    let (valid_s, ext_s) = rest.split_at(10);
    let (valid_y, ext_y) = rest_y.split_at(10);
    let model = trained_model(train_s, train_y);
    let params = influence::select_params(&model, &ParamSet::Head).unwrap();
    let train = Examples::prepare(&model, &ParamSet::Head, train_s, train_y).unwrap();
    let valid = Examples::prepare(&model, &ParamSet::Head, valid_s, valid_y).unwrap();
    let ext = Examples::prepare(&model, &ParamSet::Head, ext_s, ext_y).unwrap();
    let v = influence::gradient(&model, &params, &valid, &(0..10).collect::<Vec<_>>(), 64).unwrap();
    let cfg = LissaConfig {
        depth: 400,
        repeats: 1,
        damping: 0.05,
        scale: 20.0,
        batch_size: 0,
        seed: 0,
    };
    let approx = influence::lissa(&model, &params, &train, &v, &cfg).unwrap();
    assert!(
        approx.converged,
        "norms {:?}",
        &approx.norm_history[approx.norm_history.len() - 5..]
    );
    let exact = influence::conjugate_gradient(&model, &params, &train, &v, cfg.lambda(), 1e-6, 500)
        .unwrap();
    assert!(exact.converged);
    let a = influence::influence(&model, &params, &approx.value, &ext).unwrap();
    let b = influence::influence(&model, &params, &exact.value, &ext).unwrap();
    let rho = influence::spearman(&a, &b);
    assert!(rho >= 0.9, "Spearman {rho}");

    // Mini-batch LiSSA with repeats is still close.
    let noisy = LissaConfig {
        batch_size: 16,
        repeats: 3,
        ..cfg.clone()
    };
    let c = influence::influence(
        &model,
        &params,
        &influence::lissa(&model, &params, &train, &v, &noisy)
            .unwrap()
            .value,
        &ext,
    )
    .unwrap();
    let rho = influence::spearman(&c, &b);
    assert!(rho >= 0.8, "Spearman {rho}");

    // A scale below the largest eigenvalue diverges: an error, not NaN.
    let bad = LissaConfig {
        scale: 1e-3,
        depth: 200,
        ..cfg
    };
    let e = influence::lissa(&model, &params, &train, &v, &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--lissa-scale"), "{e}");
}

#[test]
fn scoring_reports_duplicates_and_selection_skips_test_ones() {
    let _g = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let (smiles, ys) = toy(60, 2);
    let mut s = String::from("smiles,exp\n");
    for (m, y) in smiles.iter().zip(&ys) {
        s.push_str(&format!("{m},{y:.3}\n"));
    }
    std::fs::write(dir.path().join("d.csv"), s).unwrap();
    let tok = SmilesTokenizer::molformer();
    let data = read_table(
        &dir.path().join("d.csv"),
        &tok,
        &TableOptions::default(),
        true,
    )
    .unwrap();
    let split = Split::new(data.records.len(), 0, 0.2, 0.1).unwrap();
    // External rows: two written-differently copies of a test molecule and a train molecule, plus new ones.
    let test_mol = &data.records[split.test[0]].smiles;
    let train_mol = &data.records[split.train[0]].smiles;
    let (ext_smiles, ext_ys) = toy(12, 9);
    let mut e = String::from("SMILES,Label\n");
    e.push_str(&format!("{test_mol},1.0\n{train_mol},2.0\n"));
    for (m, y) in ext_smiles.iter().zip(&ext_ys) {
        e.push_str(&format!("{m},{y:.3}\n"));
    }
    std::fs::write(dir.path().join("e.csv"), e).unwrap();
    let ext = read_table(
        &dir.path().join("e.csv"),
        &tok,
        &TableOptions::default(),
        true,
    )
    .unwrap();
    let train_seqs: Vec<Vec<u32>> = split
        .train
        .iter()
        .map(|&r| data.records[r].ids.clone())
        .collect();
    let train_ys: Vec<f64> = split
        .train
        .iter()
        .map(|&r| data.records[r].label.unwrap())
        .collect();
    let model = trained_model(&train_seqs, &train_ys);
    let cfg = ScoreConfig {
        params: ParamSet::Last(1),
        solver: Solver::Lissa,
        lissa: LissaConfig {
            depth: 50,
            // scale 0: estimated from the Hessian's largest eigenvalue
            ..LissaConfig::default()
        },
        ..ScoreConfig::default()
    };
    let report = selection::score_external(&model, &data, &split, &ext, &cfg).unwrap();
    assert_eq!(report.rows.len(), ext.records.len());
    let r0 = &report.rows[0];
    assert_eq!(r0.duplicate.as_ref().unwrap().split, "test");
    assert!(!r0.selectable);
    assert_eq!(report.rows[1].duplicate.as_ref().unwrap().split, "train");
    assert!(report
        .rows
        .iter()
        .all(|r| r.influence.is_finite() && r.helpfulness == -r.influence));
    assert!(
        report.lissa_scale > 0.0,
        "automatic scale from the largest eigenvalue"
    );
    let mut ranks: Vec<usize> = report.rows.iter().map(|r| r.rank).collect();
    ranks.sort();
    assert_eq!(ranks, (1..=ext.records.len()).collect::<Vec<_>>());
    for how in [
        Selection::All,
        Selection::TopFraction(0.5),
        Selection::BottomFraction(0.5),
        Selection::RandomFraction(0.5, 1),
        Selection::TopK(3),
    ] {
        let chosen = selection::select(&report.rows, &how).unwrap();
        assert!(!chosen.contains(&0), "{how:?} selected a test duplicate");
    }
    let top = selection::select(&report.rows, &Selection::TopFraction(0.5)).unwrap();
    let selectable = report.rows.iter().filter(|r| r.selectable).count();
    assert!(selectable >= 10, "{selectable} selectable rows");
    assert_eq!(
        top.len(),
        selectable.div_ceil(2),
        "half of the {selectable} selectable rows, rounded up"
    );
    let top = selection::select(&report.rows, &Selection::TopFraction(0.4)).unwrap();
    let bottom = selection::select(&report.rows, &Selection::BottomFraction(0.4)).unwrap();
    assert!(top.iter().all(|i| !bottom.contains(i)));
    let best_top = top
        .iter()
        .map(|&i| report.rows[i].helpfulness)
        .fold(f64::INFINITY, f64::min);
    let worst_bottom = bottom
        .iter()
        .map(|&i| report.rows[i].helpfulness)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(best_top >= worst_bottom);
}
