//! The graph model (`InitFrom::Graph`, issue #21) on tiny data: a run writes the same folder
//! as a MoLFormer run, resumes bit-exactly after an interruption, learns a toy label, and
//! refuses settings that mean nothing for a graph.

use lipo::graph::{GraphConfig, GraphModel};
use lipo::train::{self, FinetuneConfig, FinetuneRun, InitFrom, LrSchedule};
use tch::Device;

use crate::common::{lock, write_toy_table};

fn graph_run(data: std::path::PathBuf, train: FinetuneConfig) -> FinetuneRun {
    FinetuneRun {
        data,
        fold: None,
        extra: None,
        table: lipo::data::TableOptions::default(),
        init: InitFrom::Graph(Box::new(GraphConfig::tiny())),
        train,
    }
}

fn settings(epochs: usize) -> FinetuneConfig {
    FinetuneConfig {
        epochs,
        batch_size: 8,
        lr: 3e-3,
        schedule: LrSchedule::Noam,
        seed: 3,
        ..FinetuneConfig::default()
    }
}

#[test]
fn graph_run_writes_its_folder_resumes_exactly_and_learns() {
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 160);
    let run = graph_run(data, settings(12));
    let out = dir.path().join("run");
    // Cancel in epoch 2: epoch 1 is checkpointed.
    let mut epochs_seen = 0;
    let mut cancel = move |e: &lipo::progress::Event| {
        if let lipo::progress::Event::Epoch { .. } = e {
            epochs_seen += 1;
        }
        !(epochs_seen >= 1 && matches!(e, lipo::progress::Event::Step { .. }))
    };
    let e = train::finetune(&run, Device::Cpu, &out, &mut cancel).unwrap_err();
    assert!(matches!(e, lipo::Error::Cancelled(_)), "{e}");
    assert!(out.join("checkpoint/state.json").is_file());
    let r = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    let straight = train::finetune(
        &run,
        Device::Cpu,
        &dir.path().join("straight"),
        &mut lipo::progress::Silent,
    )
    .unwrap();
    let losses = |h: &[train::EpochRecord]| {
        h.iter()
            .map(|e| (e.train_loss, e.valid_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&straight.history), losses(&r.history));
    assert_eq!(straight.test, r.test);
    for f in [
        "metrics.json",
        "loss.png",
        "run.json",
        "split.json",
        "log.jsonl",
        "test_predictions.csv",
        "model/model.safetensors",
        "model/config.json",
        "model/lipo.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(!out.join("checkpoint").exists());
    // It learns the toy label: well under the mean predictor on test.
    assert!(
        r.test.rmse < 0.7 * r.test_mean_predictor.rmse,
        "test RMSE {} vs mean predictor {}",
        r.test.rmse,
        r.test_mean_predictor.rmse
    );
    // The kept model reads back and predicts what the run measured.
    let model = GraphModel::load(&out.join("model"), Device::Cpu).unwrap();
    assert!(GraphModel::is_graph_dir(&out.join("model")));
    let csv = std::fs::read_to_string(out.join("test_predictions.csv")).unwrap();
    let first = csv.lines().nth(1).unwrap();
    let smiles = first.split(',').nth(1).unwrap();
    let written: f64 = first.rsplit(',').next().unwrap().parse().unwrap();
    let g = lipo::graph::featurize_smiles(smiles).unwrap();
    let p = model.predict(&[&g], 1)[0];
    assert!((p - written).abs() < 1e-4, "{p} vs {written}");
    // The command line: predict and evaluate with the model folder (tch).
    let lipo = |args: &[&std::ffi::OsStr]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_lipo"))
            .args(["--threads", "1"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let model_dir = out.join("model");
    let smi = dir.path().join("one.smi");
    std::fs::write(&smi, format!("{smiles}\n")).unwrap();
    let text = lipo(&[
        "predict".as_ref(),
        "--model".as_ref(),
        model_dir.as_os_str(),
        "--input".as_ref(),
        smi.as_os_str(),
    ]);
    let cli: f64 = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!((cli - written).abs() < 1e-4, "{text}");
    let text = lipo(&[
        "evaluate".as_ref(),
        "--model".as_ref(),
        model_dir.as_os_str(),
        "--data".as_ref(),
        dir.path().join("toy.csv").as_os_str(),
        "--run".as_ref(),
        out.as_os_str(),
    ]);
    let m: lipo::metrics::Regression = serde_json::from_str(&text).unwrap();
    assert!((m.rmse - r.test.rmse).abs() < 1e-6, "{text}");
    // Commands that need MoLFormer say so about a graph model folder.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_lipo"))
        .args(["embed", "--model"])
        .arg(&model_dir)
        .arg("--input")
        .arg(&smi)
        .arg("--out")
        .arg(dir.path().join("e.npy"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("is a graph model"),
        "{err}"
    );
}

#[test]
fn graph_run_refuses_sequence_settings_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 40);
    for (cfg, name) in [
        (
            FinetuneConfig {
                augment: 0.5,
                ..settings(1)
            },
            "augment",
        ),
        (
            FinetuneConfig {
                tta: 4,
                ..settings(1)
            },
            "tta",
        ),
    ] {
        let run = graph_run(data.clone(), cfg);
        let e = train::finetune(
            &run,
            Device::Cpu,
            &dir.path().join(name),
            &mut lipo::progress::Silent,
        )
        .unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
    // Sizes out of range are refused by name.
    let bad = GraphConfig {
        depth: 0,
        ..GraphConfig::tiny()
    };
    let e = bad.validate().unwrap_err();
    assert!(e.to_string().contains("graph.depth"), "{e}");
}

#[test]
fn graph_bundle_matches_tch_and_errors_per_molecule() {
    use lipo::infer::{Predictor, PredictorOptions};
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let meta = lipo::model::ModelMeta {
        label_mean: 2.1,
        label_sd: 1.3,
        label_name: Some("logD".into()),
        ..lipo::model::ModelMeta::default()
    };
    for (k, aggregation) in [
        lipo::graph::Aggregation::Norm,
        lipo::graph::Aggregation::Mean,
        lipo::graph::Aggregation::Sum,
    ]
    .into_iter()
    .enumerate()
    {
        let config = GraphConfig {
            aggregation,
            depth: 3,
            ..GraphConfig::tiny()
        };
        let model = GraphModel::new(config, meta.clone(), Device::Cpu, 7 + k as u64).unwrap();
        let folder = dir.path().join(format!("model{k}"));
        model.save(&folder).unwrap();
        let bundle = dir.path().join(format!("graph{k}.lipo"));
        lipo::export::export_model_dir(&folder, &bundle).unwrap();
        assert!(!bundle.join("tokenizer.json").exists());
        let smiles = [
            "CCO",
            "C",
            "[NH4+].[Cl-]",
            "CC(=O)Nc1ccc(O)cc1",
            "C1CC2CCC1C2",
            "Cl/C=C\\Br",
            "not a smiles",
            "OC(=O)c1ccccc1C%10CC%10",
        ];
        for batch_size in [1, 3, 64] {
            let p = Predictor::open(
                &bundle,
                &PredictorOptions {
                    threads: 1,
                    batch_size,
                    ..PredictorOptions::default()
                },
            )
            .unwrap();
            assert!(p.info().graph && p.tokenizer().is_none());
            let got = p.predict(&smiles).unwrap();
            for (s, r) in smiles.iter().zip(&got) {
                match lipo::graph::featurize_smiles(s) {
                    Ok(g) => {
                        let want = model.predict(&[&g], 1)[0];
                        let have = *r.as_ref().unwrap();
                        assert!(
                            (want - have).abs() < 1e-4,
                            "{aggregation:?} {s}: tch {want} vs ort {have}"
                        );
                    }
                    Err(_) => {
                        let e = r.as_ref().unwrap_err().to_string();
                        assert!(e.contains(s), "{e}");
                    }
                }
            }
        }
    }
    // Int8 storage is refused for a graph model, naming the setting.
    let e = lipo::export::export_model_dir_with(
        &dir.path().join("model0"),
        &dir.path().join("q.lipo"),
        lipo::export::Quantize::Int8,
    )
    .unwrap_err();
    assert!(e.to_string().contains("quantize"), "{e}");
}

#[test]
fn graph_ensembles_gather_and_export_as_one_graph() {
    use lipo::infer::{Predictor, PredictorOptions};
    use lipo::train::EnsembleRun;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 120);
    let run = EnsembleRun::new(graph_run(data, settings(3)), 3);
    let out = dir.path().join("ens");
    let report = {
        let _g = lock();
        train::finetune_ensemble(&run, Device::Cpu, &out, None, &mut lipo::progress::Silent)
            .unwrap()
            .unwrap()
    };
    assert_eq!(report.members, 3);
    assert_eq!(report.sizes, [96, 24]);
    assert!(report.sd_scale > 0.0 && report.domain_threshold > 0.0);
    // predictions.csv: line, smiles, set, …, prediction, sd, domain, in_domain.
    let mut rdr = csv::Reader::from_path(out.join("predictions.csv")).unwrap();
    let test_rows: Vec<(String, f64, f64, f64)> = rdr
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[3] == "test")
        .map(|r| {
            let num = |i: usize| r[i].parse::<f64>().unwrap();
            (r[1].to_string(), num(5), num(6), num(7))
        })
        .collect();
    assert_eq!(test_rows.len(), 24);
    let smiles: Vec<&str> = test_rows.iter().map(|r| r.0.as_str()).collect();
    for (q, tol) in [
        (lipo::export::Quantize::None, 1e-4),
        (lipo::export::Quantize::Float16, 2e-3),
    ] {
        let bundle = dir.path().join(format!("ens-{}.lipo", q.name()));
        lipo::export::export_model_dir_with(&out, &bundle, q).unwrap();
        let p = Predictor::open(
            &bundle,
            &PredictorOptions {
                threads: 1,
                batch_size: 5,
                ..PredictorOptions::default()
            },
        )
        .unwrap();
        assert!(p.info().graph);
        assert_eq!(p.info().ensemble.as_ref().unwrap().members, 3);
        let got = p.predict_detail(&smiles).unwrap();
        for (r, g) in test_rows.iter().zip(&got) {
            let g = g.as_ref().unwrap();
            // Float16 weights: relative to the size of the numbers.
            let near = |a: f64, b: f64| (a - b).abs() < tol * b.abs().max(1.0);
            assert!(near(g.value, r.1), "{} {q:?}: {} vs {}", r.0, g.value, r.1);
            assert!(
                near(g.sd.unwrap(), r.2),
                "{} {q:?}: sd {:?} vs {}",
                r.0,
                g.sd,
                r.2
            );
            assert!(near(g.domain.unwrap(), r.3), "{} {q:?}: domain", r.0);
        }
    }
    // The command line predicts with the graph bundle.
    let smi = dir.path().join("in.smi");
    std::fs::write(&smi, "CCO\nC1CC\n").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_lipo"))
        .args(["predict", "--input"])
        .arg(&smi)
        .arg("--model")
        .arg(dir.path().join("ens-none.lipo"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with("1,CCO,"), "{text}");
    assert!(lines[2].starts_with("2,C1CC,"), "{text}");
    assert!(lines[2].contains("C1CC"), "{text}");
}

#[test]
fn graph_models_train_and_export_through_a_json_job_as_the_c_abi_does() {
    use lipo::infer::{Predictor, PredictorOptions};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 60);
    let bundle = dir.path().join("g.lipo");
    let json = serde_json::json!({
        "command": "finetune",
        "out": dir.path().join("run"),
        "device": "cpu",
        "threads": 1,
        "run": {
            "data": data,
            "init": {"graph": {"hidden": 16, "depth": 2, "ffn_hidden": 8}},
            "train": {"epochs": 2, "batch_size": 8, "lr": 0.003, "schedule": "noam"}
        },
        "export": bundle,
    });
    let job = lipo::job::Job::from_json(&json.to_string()).unwrap();
    {
        let _g = lock();
        lipo::job::run(&job, &mut lipo::progress::Silent).unwrap();
    }
    let model = GraphModel::load(&dir.path().join("run/model"), Device::Cpu).unwrap();
    assert_eq!(model.config.hidden, 16);
    let p = Predictor::open(&bundle, &PredictorOptions::default()).unwrap();
    let g = lipo::graph::featurize_smiles("CCN").unwrap();
    let want = model.predict(&[&g], 1)[0];
    let have = *p.predict(&["CCN"]).unwrap()[0].as_ref().unwrap();
    assert!((want - have).abs() < 1e-4, "{want} vs {have}");
    // A misspelt graph setting is an error naming it.
    let bad = json.to_string().replace("\"depth\"", "\"depht\"");
    let e = lipo::job::Job::from_json(&bad).unwrap_err();
    assert!(e.to_string().contains("depht"), "{e}");
}

#[test]
fn compare_graph_gathers_rows_and_mixes_ensembles_on_the_same_test_rows() {
    use lipo::train::EnsembleRun;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 80);
    let root = dir.path().join("study");
    let silent = &mut lipo::progress::Silent;
    {
        let _g = lock();
        let graph = EnsembleRun::new(graph_run(data.clone(), settings(2)), 2);
        train::finetune_ensemble(
            &graph,
            Device::Cpu,
            &root.join("graph/ensemble/seed0"),
            None,
            silent,
        )
        .unwrap()
        .unwrap();
        let mol = EnsembleRun::new(
            crate::common::tiny_toy_run(
                data.clone(),
                FinetuneConfig {
                    epochs: 1,
                    seed: 3,
                    ..FinetuneConfig::default()
                },
            ),
            2,
        );
        train::finetune_ensemble(
            &mol,
            Device::Cpu,
            &root.join("ensemble/seed0/ensemble"),
            None,
            silent,
        )
        .unwrap()
        .unwrap();
    }
    let c = lipo::study::graph_table::compare_graph(&root).unwrap();
    let names: Vec<&str> = c.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "MoLFormer ensemble",
            "graph ensemble",
            "mixed ensemble (5 MoLFormer + 5 graph members)"
        ]
    );
    assert!(
        c.markdown
            .contains("Not run yet: MoLFormer, best single recipe (Table 1); graph alone"),
        "{}",
        c.markdown
    );
    assert!(c.markdown.contains("chemprop 2.3.1"));
    assert_eq!(c.uncertainty.len(), 2);
    // The mixed row is the equal-weight mean of the two ensembles' test predictions.
    let read = |p: std::path::PathBuf| -> Vec<(f64, f64)> {
        let mut r = csv::Reader::from_path(p).unwrap();
        r.records()
            .map(|x| x.unwrap())
            .filter(|x| &x[3] == "test")
            .map(|x| (x[2].parse().unwrap(), x[5].parse().unwrap()))
            .collect()
    };
    let a = read(root.join("ensemble/seed0/ensemble/predictions.csv"));
    let b = read(root.join("graph/ensemble/seed0/predictions.csv"));
    let truth: Vec<f64> = a.iter().map(|x| x.0).collect();
    let mixed: Vec<f64> = a.iter().zip(&b).map(|(x, y)| 0.5 * (x.1 + y.1)).collect();
    let want = lipo::metrics::Regression::compute(&mixed, &truth).rmse;
    assert!((c.rows[2].rmse.mean - want).abs() < 1e-12);
    lipo::study::graph_table::write(&c, &root.join("graph")).unwrap();
    assert!(root.join("graph/comparison.json").is_file());
}

#[test]
fn bench_times_graph_models_through_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 12);
    let folder = dir.path().join("m");
    GraphModel::new(
        GraphConfig::tiny(),
        lipo::model::ModelMeta::default(),
        Device::Cpu,
        1,
    )
    .unwrap()
    .save(&folder)
    .unwrap();
    assert!(lipo::bench::graph::is_graph(&folder));
    let cfg = lipo::bench::BenchConfig {
        model: folder,
        data,
        smiles_col: None,
        batch_sizes: vec![1, 5],
        limit: Some(10),
        threads: 1,
        ort_threads: None,
        int8: false,
        repeats: 1,
    };
    let r = {
        let _g = lock();
        lipo::bench::graph::run(&cfg, dir.path()).unwrap()
    };
    assert_eq!(r.molecules, 10);
    let engines: Vec<(&str, usize)> = r
        .rows
        .iter()
        .map(|x| (x.engine.as_str(), x.batch_size))
        .collect();
    assert_eq!(
        engines,
        [
            ("featurise", 0),
            ("tch", 1),
            ("ort", 1),
            ("tch", 5),
            ("ort", 5)
        ]
    );
    assert!(r.max_abs_diff < 1e-4, "{}", r.max_abs_diff);
    assert!(lipo::bench::graph::table(&r).contains("featurisation"));
}
