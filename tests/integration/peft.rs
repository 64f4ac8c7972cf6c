//! Parameter-efficient fine-tuning on tiny models: frozen base weights, an unchanged initial
//! model, merge equivalence, adapter folders on top of a base, the XL LoRA parameter count,
//! and a short classification run through `train::finetune`.

use std::path::Path;

use lipo::data::TableOptions;
use lipo::model::{Config, Model, Task};
use lipo::peft::{self, Ia3Config, LoadModel, LoraConfig, PeftConfig};
use lipo::tokenizer::{pad_batch, SmilesTokenizer};
use lipo::train::{self, Binarize, FinetuneConfig, FinetuneRun, InitFrom};
use tch::{Device, Tensor};

use crate::common;
use common::{lock, write_toy_table};

const SMILES: [&str; 6] = [
    "CCO",
    "c1ccccc1O",
    "CC(=O)Nc1ccc(O)cc1",
    "Cl/C=C\\Br",
    "C[C@@H](N)C(=O)O",
    "OC(=O)c1ccccc1C%10CC%10",
];

fn tiny_with_head(seed: u64) -> Model {
    common::regression_model(Config::tiny(), seed)
}

fn outputs(m: &Model) -> Tensor {
    let seqs: Vec<Vec<u32>> = SMILES
        .iter()
        .map(|s| m.tokenizer.encode(s).unwrap())
        .collect();
    let (ids, mask) = m.batch_tensors(&pad_batch(&seqs));
    tch::no_grad(|| m.head_forward(&ids, &mask, false).unwrap())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn lora_all() -> PeftConfig {
    PeftConfig::Lora(LoraConfig {
        targets: vec!["query".into(), "key".into(), "value".into(), "dense".into()],
        ..LoraConfig::default()
    })
}

fn methods() -> Vec<PeftConfig> {
    vec![
        PeftConfig::BitFit,
        PeftConfig::Lora(LoraConfig::default()),
        lora_all(),
        PeftConfig::Ia3(Ia3Config::default()),
    ]
}

#[test]
fn adapters_leave_the_initial_model_unchanged() {
    let _g = lock();
    for cfg in methods() {
        let mut m = tiny_with_head(1);
        let before = outputs(&m);
        let counts = peft::apply(&mut m, &cfg, 7).unwrap();
        assert_eq!(max_abs_diff(&before, &outputs(&m)), 0.0, "{cfg:?}");
        assert!(counts.trainable < counts.total / 2, "{cfg:?}: {counts}");
        // What trains is exactly what the method says.
        for (name, t) in m.named_tensors() {
            let expect = !name.ends_with("feature_map.weight") && peft::trains(&cfg, &name);
            assert_eq!(t.requires_grad(), expect, "{name} under {}", cfg.name());
        }
    }
    // Adapter names sit beside the layer they adapt.
    let mut m = tiny_with_head(1);
    peft::apply(&mut m, &PeftConfig::Lora(LoraConfig::default()), 0).unwrap();
    let names: Vec<String> = m.named_tensors().into_iter().map(|(n, _)| n).collect();
    for n in [
        "molformer.encoder.layer.0.attention.self.query.lora_A.weight",
        "molformer.encoder.layer.1.attention.self.value.lora_B.weight",
    ] {
        assert!(names.contains(&n.to_string()), "{n}");
    }
    // A second method on top is refused.
    assert!(peft::apply(&mut m, &PeftConfig::BitFit, 0).is_err());
}

#[test]
fn merged_and_unmerged_outputs_agree() {
    let _g = lock();
    for cfg in methods() {
        let mut m = tiny_with_head(2);
        peft::apply(&mut m, &cfg, 3).unwrap();
        // Move every trainable tensor away from its start, as training would.
        tch::manual_seed(5);
        tch::no_grad(|| {
            for (name, mut t) in m.named_tensors() {
                if t.requires_grad() {
                    let scale = if name.contains(".ia3.") { 0.3 } else { 0.05 };
                    let _ = t.g_add_(&(t.randn_like() * scale));
                }
            }
        });
        let unmerged = outputs(&m);
        peft::merge(&mut m).unwrap();
        assert!(m.meta.peft.is_none());
        assert!(m.named_tensors().iter().all(|(n, _)| !peft::is_adapter(n)));
        let merged = outputs(&m);
        let d = max_abs_diff(&unmerged, &merged);
        assert!(d < 1e-5, "{}: merged differs by {d}", cfg.name());
        // The merged model is a plain model folder.
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let back = Model::load(dir.path(), Device::Cpu).unwrap();
        assert!(back.meta.peft.is_none());
        assert_eq!(max_abs_diff(&merged, &outputs(&back)), 0.0);
        assert_eq!(back.num_parameters(), tiny_with_head(0).num_parameters());
    }
}

#[test]
fn xl_lora_on_query_and_value_has_294912_adapter_parameters() {
    let _g = lock();
    let mut m = common::regression_model(Config::xl(), 0);
    let head = 768 * 768 * 2 + 768 * 2 + 768 + 1;
    let c = peft::apply(&mut m, &PeftConfig::Lora(LoraConfig::default()), 0).unwrap();
    assert_eq!(c.adapter, 12 * 2 * (768 * 8 + 8 * 768));
    assert_eq!(c.adapter, 294_912);
    assert_eq!(c.head, head);
    assert_eq!(c.trainable, 294_912 + head);
    println!("XL LoRA r=8 query+value: {c}");
    peft::merge(&mut m).unwrap();
    let c = peft::apply(&mut m, &PeftConfig::Ia3(Ia3Config::default()), 0).unwrap();
    assert_eq!(c.adapter, 12 * (768 + 768 + 768));
    println!("XL IA3: {c}");
    peft::merge(&mut m).unwrap();
    let c = peft::apply(&mut m, &PeftConfig::BitFit, 0).unwrap();
    // Biases: per layer q,k,v,attention out (768 each), intermediate (768), output (768),
    // two LayerNorms (768 each); the final LayerNorm; the head's biases are in `head`.
    assert_eq!(c.trainable, 12 * 8 * 768 + 768 + head);
    println!("XL BitFit: {c}");
}

fn base_folder(dir: &Path) -> std::path::PathBuf {
    let base = dir.join("base");
    let mut m = tiny_with_head(4);
    m.meta.task = Task::Regression;
    m.save(&base).unwrap();
    base
}

fn peft_run(data: &Path, base: &Path, peft: PeftConfig) -> FinetuneRun {
    FinetuneRun {
        data: data.to_path_buf(),
        fold: None,
        extra: None,
        table: TableOptions::default(),
        init: InitFrom::Model(base.to_path_buf()),
        train: FinetuneConfig {
            epochs: 2,
            batch_size: 8,
            lr: 1e-2,
            peft: Some(peft),
            ..FinetuneConfig::default()
        },
    }
}

#[test]
fn peft_training_keeps_the_base_bit_identical_and_adapters_reload() {
    let _g = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 60);
    let base_dir = base_folder(dir.path());
    let base = Model::load(&base_dir, Device::Cpu).unwrap();
    let base_tensors = base.vs.variables();
    for (i, cfg) in methods().into_iter().enumerate() {
        let out = dir.path().join(format!("run-{i}"));
        let run = peft_run(&data, &base_dir, cfg.clone());
        let r = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
        let counts = r.parameter_counts.unwrap();
        assert_eq!(r.trainable_parameters, counts.trainable);
        assert_eq!(r.peft.as_ref(), Some(&cfg));
        let trained = Model::load(&out.join("model"), Device::Cpu).unwrap();
        assert_eq!(trained.meta.peft.as_ref(), Some(&cfg));
        let mut changed = 0;
        for (name, t) in trained.named_tensors() {
            if peft::trains(&cfg, &name) {
                if let Some(b) = base_tensors.get(&name) {
                    changed += usize::from(!t.equal(b));
                } else {
                    changed += 1; // an adapter
                }
                continue;
            }
            let b = base_tensors
                .get(&name)
                .unwrap_or_else(|| panic!("{name} is new but does not train"));
            assert!(t.equal(b), "{}: frozen {name} changed", cfg.name());
        }
        assert!(changed > 0, "{}: nothing trained", cfg.name());
        // The adapter folder alone, on top of the base, is the same model.
        let adapter = out.join("adapter");
        let a_bytes = std::fs::metadata(adapter.join("adapter.safetensors"))
            .unwrap()
            .len();
        let m_bytes = std::fs::metadata(out.join("model/model.safetensors"))
            .unwrap()
            .len();
        assert!(a_bytes < m_bytes, "{a_bytes} vs {m_bytes}");
        let from_adapter = Model::load(&adapter, Device::Cpu).unwrap();
        assert_eq!(from_adapter.meta, trained.meta);
        assert_eq!(
            max_abs_diff(&outputs(&trained), &outputs(&from_adapter)),
            0.0
        );
        // On another base it is refused.
        let other_dir = dir.path().join("other");
        tiny_with_head(99).save(&other_dir).unwrap();
        let e = peft::load_adapter(&adapter, Some(&other_dir), Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("another base"), "{e}");
        // Merging the trained model changes nothing it predicts.
        let mut merged = Model::load(&out.join("model"), Device::Cpu).unwrap();
        peft::merge(&mut merged).unwrap();
        let d = max_abs_diff(&outputs(&trained), &outputs(&merged));
        assert!(d < 1e-5, "{d}");
        // The per-step log has every step and one evaluation per epoch.
        let log = lipo::trainlog::read_log(&out.join("log.jsonl")).unwrap();
        let evals = log
            .iter()
            .filter(|r| matches!(r, lipo::trainlog::LogRecord::Eval(_)))
            .count();
        assert_eq!(evals, 2);
        assert_eq!(log.len() - evals, 2 * r.sizes[0].div_ceil(8));
    }
}

#[test]
fn classification_binarised_at_the_training_mean() {
    let _g = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 80);
    let run = common::tiny_toy_run(
        data.clone(),
        FinetuneConfig {
            epochs: 3,
            batch_size: 8,
            lr: 1e-3,
            task: Task::Classification,
            binarize: Some(Binarize::Mean),
            peft: Some(PeftConfig::BitFit),
            ..FinetuneConfig::default()
        },
    );
    let out = dir.path().join("run");
    let r = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    assert_eq!(r.task, Task::Classification);
    let c = r.classification.as_ref().unwrap();
    // The threshold is the training rows' mean label.
    let tok = SmilesTokenizer::molformer();
    let table = lipo::data::read_table(&data, &tok, &TableOptions::default(), true).unwrap();
    let split: lipo::data::Split = lipo::fsutil::read_json(&out.join("split.json")).unwrap();
    let (mean, _) = lipo::metrics::mean_sd(&table.labels(&split.train));
    assert!((c.threshold.unwrap() - mean).abs() < 1e-12);
    assert!(c.test.accuracy >= 0.0 && c.test.accuracy <= 1.0);
    assert!(c.test.positive_share > 0.0 && c.test.positive_share < 1.0);
    let model = Model::load(&out.join("model"), Device::Cpu).unwrap();
    assert_eq!(model.meta.task, Task::Classification);
    assert_eq!(model.meta.threshold, c.threshold);
    let (again, prob) = train::evaluate_classification(&model, &table, &split.test, 64).unwrap();
    assert_eq!(again, c.test);
    assert!(prob.iter().all(|p| (0.0..=1.0).contains(p)));
    // The run folder repeats its result; run.json keeps the classification settings.
    let back: FinetuneRun = lipo::fsutil::read_json(&out.join("run.json")).unwrap();
    assert_eq!(back, run);
    // Unbinarised numeric labels are refused with the file and line.
    let numeric = FinetuneRun {
        train: FinetuneConfig {
            binarize: None,
            ..run.train.clone()
        },
        ..run.clone()
    };
    let e = train::finetune(
        &numeric,
        Device::Cpu,
        &dir.path().join("numeric"),
        &mut lipo::progress::Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("toy.csv:2") && e.contains("binarize"), "{e}");
}

#[test]
fn old_run_json_without_new_fields_still_reads() {
    let text = r#"{"data":"x.csv","table":{"smiles_col":null,"label_col":null,"skip_bad_rows":false},
        "init":{"model":"m"},"train":{"epochs":3,"batch_size":8,"lr":0.001,"weight_decay":0.0,
        "grad_clip":1.0,"patience":null,"seed":0,"test_frac":0.2,"valid_frac":0.1,"eval_batch_size":64}}"#;
    let run: FinetuneRun = serde_json::from_str(text).unwrap();
    assert_eq!(run.train.task, Task::Regression);
    assert!(run.train.peft.is_none() && run.train.binarize.is_none());
    let s = serde_json::to_string(&run.train).unwrap();
    assert!(!s.contains("peft") && !s.contains("binarize"), "{s}");
    assert_eq!("mean".parse::<Binarize>().unwrap(), Binarize::Mean);
    assert_eq!("2.5".parse::<Binarize>().unwrap(), Binarize::Value(2.5));
    assert!("average".parse::<Binarize>().is_err());
}

/// A one-epoch regression comparison of a random tiny model on `data`, seeds 0 and 1.
fn tiny_comparison(data: std::path::PathBuf) -> lipo::study::table3::CompareConfig {
    lipo::study::table3::CompareConfig {
        data,
        table: TableOptions::default(),
        init: InitFrom::Random(Box::new(Config::tiny())),
        seeds: vec![0, 1],
        task: Task::Regression,
        binarize: None,
        full: FinetuneConfig {
            batch_size: 8,
            ..FinetuneConfig::default()
        },
        lora: LoraConfig::default(),
        epochs: Some(1),
        peft_epochs: None,
        quick: false,
        lr_search: Vec::new(),
        search_patience: None,
    }
}

#[test]
fn compare_peft_writes_table_json_and_figures_and_reuses_runs() {
    use lipo::study::table3::{self as compare, CompareConfig};
    let _g = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 50);
    let cfg = CompareConfig {
        task: Task::Classification,
        binarize: Some(Binarize::Mean),
        ..tiny_comparison(data)
    };
    let out = dir.path().join("cmp");
    let mut calls = 0;
    let mut runner = |run: &FinetuneRun, o: &Path| {
        calls += 1;
        train::finetune(run, Device::Cpu, o, &mut lipo::progress::Silent)
    };
    let c = compare::compare(&cfg, &out, &mut runner).unwrap();
    assert_eq!(calls, 8);
    let names: Vec<&str> = c.rows.iter().map(|r| r.method.name.as_str()).collect();
    assert_eq!(names, ["full", "bitfit", "lora", "ia3"]);
    assert!(c.rows[2].trainable < c.rows[0].trainable);
    assert_eq!(c.rows[0].test[2].0, "roc_auc");
    assert_eq!(c.rows[0].test[2].1.n, 2);
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("| lora | 1 | 1e-5 |"), "{md}");
    assert!(md.contains("class-share predictor"), "{md}");
    for f in compare::files::FIGURES {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(out.join("comparison.json").is_file());
    // Finished runs are reused: the second comparison trains nothing.
    let t = std::time::Instant::now();
    let again = compare::compare(&cfg, &out, &mut |run: &FinetuneRun, o: &Path| {
        train::finetune(run, Device::Cpu, o, &mut lipo::progress::Silent)
    })
    .unwrap();
    assert!(t.elapsed().as_secs_f64() < 5.0);
    assert_eq!(again.rows[3].test[0].1, c.rows[3].test[0].1);
}

#[test]
fn lr_search_chooses_by_validation_loss_never_by_test() {
    use lipo::study::table3::{self as compare, CompareConfig};
    let _g = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 40);
    let cfg = CompareConfig {
        lr_search: vec![1e-4, 1e-3, 1e-2],
        ..tiny_comparison(data)
    };
    // One real run gives a report; the runner varies its validation loss and test RMSE so
    // that validation prefers 1e-3 (seed 0) and 1e-2 (seed 1) while test prefers 1e-4.
    let base = train::finetune(
        &cfg.run_of(&cfg.methods()[0], 0),
        Device::Cpu,
        &dir.path().join("base"),
        &mut lipo::progress::Silent,
    )
    .unwrap();
    let mut runner = |run: &FinetuneRun, _: &Path| {
        let mut r = base.clone();
        let (lr, seed) = (run.train.lr, run.train.seed);
        let best = r.best_epoch;
        let valid = if seed == 0 && lr == 1e-3 {
            0.2
        } else if seed == 1 && lr == 1e-2 {
            0.3
        } else {
            0.9
        };
        r.history.iter_mut().for_each(|e| {
            if e.epoch == best {
                e.valid_loss = valid;
            }
        });
        r.test.rmse = if lr == 1e-4 { 0.1 } else { 1.0 };
        r.seed = seed;
        Ok(r)
    };
    let out = dir.path().join("cmp");
    let c = compare::compare(&cfg, &out, &mut runner).unwrap();
    for row in &c.rows[1..] {
        let chosen: Vec<(u64, f64)> = row
            .search
            .iter()
            .filter(|p| p.chosen)
            .map(|p| (p.seed, p.lr))
            .collect();
        assert_eq!(chosen, [(0, 1e-3), (1, 1e-2)], "{}", row.method.name);
        assert_eq!(row.search.len(), 6);
        let rmse = &row.test.iter().find(|(n, _)| n == "rmse").unwrap().1;
        assert!(
            (rmse.mean - 1.0).abs() < 1e-12,
            "the chosen runs' test RMSE"
        );
    }
    assert!(
        c.rows[0].search.is_empty(),
        "full fine-tuning keeps its rate"
    );
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("chosen: 1e-3 / 1e-2"), "{md}");
    assert!(
        md.contains("**0.2000 (") && md.contains("**0.3000 ("),
        "{md}"
    );
    let json = std::fs::read_to_string(out.join("comparison.json")).unwrap();
    assert!(json.contains("\"chosen\": true"), "{json}");
}
