//! Tables 1 and 2 end to end on generated data with tiny models.

use crate::common;

use lipo::data::TableOptions;
use lipo::model::Config;
use lipo::progress::Silent;
use lipo::study::table1::{domain_mlm_defaults, table1, Table1Config};
use lipo::tokenizer::SmilesTokenizer;
use lipo::train::FinetuneConfig;
use tch::Device;

#[test]
fn table1_runs_all_rows_and_reuses_finished_runs() {
    let _guard = common::lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    let frags = ["C", "O", "N", "c1ccccc1", "C(Cl)", "C(=O)", "CC"];
    let mut rng = lipo::rng::SplitMix64::new(3);
    let mut s = String::from("smiles,exp\n");
    for _ in 0..60 {
        let mut smi = String::new();
        for _ in 0..(2 + rng.below(4)) {
            smi.push_str(frags[rng.below(frags.len() as u64) as usize]);
        }
        s.push_str(&format!(
            "{smi},{:.2}\n",
            smi.matches('c').count() as f64 / 3.0 - smi.matches('O').count() as f64
        ));
    }
    std::fs::write(&data, s).unwrap();
    let pre = dir.path().join("pre");
    common::save_tiny_pretrained(&pre, 1);
    let cfg = Table1Config {
        data,
        table: TableOptions::default(),
        pretrained: pre,
        random_arch: Config::tiny(),
        seeds: vec![0, 1],
        finetune: FinetuneConfig {
            epochs: 2,
            batch_size: 8,
            lr: 1e-3,
            ..FinetuneConfig::default()
        },
        domain_mlm: lipo::mlm::MlmConfig {
            valid_size: 5,
            ..domain_mlm_defaults(1)
        },
    };
    let out = dir.path().join("t1");
    let r = table1(&cfg, Device::Cpu, &out, &mut Silent).unwrap();
    assert_eq!(r.rows.len(), 4);
    assert!(r
        .rows
        .iter()
        .all(|row| row.runs.len() == 2 && row.rmse.mean.is_finite()));
    assert_eq!(r.domain_mlm_accuracy.len(), 2);
    let md = std::fs::read_to_string(out.join("table1.md")).unwrap();
    assert!(
        md.contains("| pre-trained + domain MLM (with) |") && md.contains(" ± "),
        "{md}"
    );
    assert!(out.join("table1_train_loss.png").is_file());
    assert!(out
        .join("seed1/domain-mlm/model/model.safetensors")
        .is_file());
    // The domain corpus holds only training SMILES of that seed's split.
    let corpus = std::fs::read_to_string(out.join("seed0/domain_corpus.csv")).unwrap();
    assert_eq!(corpus.lines().count() - 1, 43);
    // A second call reuses every finished run and gives the same table.
    let again = table1(&cfg, Device::Cpu, &out, &mut Silent).unwrap();
    assert_eq!(again.markdown, r.markdown);
    // So does a copy holding only the runs' records (no weights), as a study committed to git
    // arrives on another machine: nothing trains again, the domain MLM included.
    for seed in ["seed0", "seed1"] {
        for run in ["random", "pretrained", "domain-mlm", "domain-finetune"] {
            std::fs::remove_dir_all(out.join(seed).join(run).join("model")).unwrap();
        }
    }
    let mut steps = 0usize;
    let mut count = |e: &lipo::progress::Event| {
        steps += matches!(e, lipo::progress::Event::Step { .. }) as usize;
        true
    };
    let records = table1(&cfg, Device::Cpu, &out, &mut count).unwrap();
    assert_eq!(steps, 0, "a finished run trained again");
    assert_eq!(records.rows.len(), r.rows.len());
    for (a, b) in records.rows.iter().zip(&r.rows) {
        assert!(
            (a.rmse.mean - b.rmse.mean).abs() < 1e-9,
            "{} vs {}",
            a.rmse.mean,
            b.rmse.mean
        );
    }
}

/// Writes `n` labelled molecules different from [`common::write_toy_table`]'s, plus `also`.
fn write_external(path: &std::path::Path, n: usize, also: &[(String, f64)]) {
    // Every molecule holds a pyridine ring, which the toy table never has.
    let frags = ["CC", "N", "C(Br)", "O", "C(=O)N", "S"];
    let mut rng = lipo::rng::SplitMix64::new(77);
    let mut s = String::from("SMILES,Label\n");
    for _ in 0..n {
        let mut smi = String::from("c1ccncc1");
        for _ in 0..(1 + rng.below(4)) {
            smi.push_str(frags[rng.below(frags.len() as u64) as usize]);
        }
        let y = smi.matches('c').count() as f64 / 4.0 - smi.matches('N').count() as f64 * 0.5;
        s.push_str(&format!("{smi},{y:.2}\n"));
    }
    for (smi, y) in also {
        s.push_str(&format!("{smi},{y}\n"));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn extra_rows_join_training_only_and_old_run_files_still_load() {
    use lipo::train::{self, ExtraTable, FinetuneRun};
    let _guard = common::lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    common::write_toy_table(&data, 50);
    let tok = SmilesTokenizer::molformer();
    let table = lipo::data::read_table(&data, &tok, &TableOptions::default(), true).unwrap();
    let split = lipo::data::Split::new(50, 0, 0.2, 0.1).unwrap();
    let test_mol = table.records[split.test[0]].smiles.clone();
    let valid_mol = table.records[split.valid[0]].smiles.clone();
    let train_mol = table.records[split.train[0]].smiles.clone();
    let extra = dir.path().join("extra.csv");
    write_external(
        &extra,
        6,
        &[(test_mol, 1.0), (valid_mol, 1.0), (train_mol, 1.0)],
    );
    let run = FinetuneRun {
        fold: None,
        extra: Some(ExtraTable {
            path: extra,
            table: TableOptions::default(),
        }),
        ..common::tiny_toy_run(
            data.clone(),
            FinetuneConfig {
                epochs: 1,
                batch_size: 8,
                lr: 1e-3,
                ..FinetuneConfig::default()
            },
        )
    };
    let out = dir.path().join("run");
    let r = train::finetune(&run, Device::Cpu, &out, &mut Silent).unwrap();
    let x = r.extra.as_ref().unwrap();
    // The test and validation duplicates are dropped; the training duplicate stays.
    assert_eq!((x.rows, x.used, x.dropped.len()), (9, 7, 2));
    assert_eq!(
        r.sizes,
        [split.train.len() + 7, split.valid.len(), split.test.len()]
    );
    // split.json is still the seed's split of the main table.
    let saved: lipo::data::Split = lipo::fsutil::read_json(&out.join("split.json")).unwrap();
    assert_eq!(saved, split);
    assert!(out.join("extra.json").is_file());
    // run.json files written before extra tables existed still load (no "extra" key).
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("extra");
    let old: FinetuneRun = serde_json::from_value(json).unwrap();
    assert_eq!(old.extra, None);
}

#[test]
fn table2_compares_selections_over_seeds_and_reuses_runs() {
    use lipo::influence::{LissaConfig, ParamSet};
    use lipo::selection::ScoreConfig;
    use lipo::study::table2::{table2, Table2Config};
    use lipo::train::InitFrom;
    let _guard = common::lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    common::write_toy_table(&data, 60);
    let tok = SmilesTokenizer::molformer();
    let table = lipo::data::read_table(&data, &tok, &TableOptions::default(), true).unwrap();
    let split0 = lipo::data::Split::new(60, 0, 0.2, 0.1).unwrap();
    let test_mol = table.records[split0.test[0]].smiles.clone();
    let external = dir.path().join("external.csv");
    write_external(&external, 20, &[(test_mol.clone(), 2.0)]);
    let cfg = Table2Config {
        seeds: vec![0, 1],
        finetune: FinetuneConfig {
            epochs: 2,
            batch_size: 8,
            lr: 1e-3,
            ..FinetuneConfig::default()
        },
        score: ScoreConfig {
            params: ParamSet::Last(1),
            lissa: LissaConfig {
                depth: 20,
                ..LissaConfig::default()
            },
            ..ScoreConfig::default()
        },
        ..Table2Config::study(data, external, InitFrom::Random(Box::new(Config::tiny())))
    };
    let out = dir.path().join("t2");
    let r = table2(&cfg, Device::Cpu, &out, &mut Silent).unwrap();
    let names: Vec<&str> = r.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "no external data",
            "all external",
            "random 50 %",
            "influence top 50 %",
            "influence bottom 50 %",
            "TracIn top 50 %",
            "mean predictor"
        ]
    );
    assert!(r
        .rows
        .iter()
        .all(|row| row.runs.len() == 2 && row.rmse.mean.is_finite() && row.r2.mean.is_finite()));
    assert!(r.influence_beats_random.is_some());
    // Seed 0: the test duplicate is never selected; halves are half of the 20 selectable rows.
    let d0 = &r.seeds[0];
    assert_eq!(d0.scored, 21);
    assert_eq!(
        d0.added,
        vec![
            ("all".to_string(), 20),
            ("random".to_string(), 10),
            ("top".to_string(), 10),
            ("bottom".to_string(), 10),
            ("tracin".to_string(), 10)
        ]
    );
    // TracIn: the kept epoch models and scores ranked like influence (helpfulness = TracIn).
    assert!(out.join("seed0/tracin-base/epochs/epoch-2").is_dir());
    let tracin: lipo::selection::ScoreReport =
        lipo::fsutil::read_json(&out.join("seed0/tracin/influence.json")).unwrap();
    assert!(tracin.rows.iter().all(|r| r.helpfulness.is_finite()));
    assert!(tracin.rows.iter().any(|r| r.helpfulness != 0.0));
    let all = std::fs::read_to_string(out.join("seed0/selected_all.csv")).unwrap();
    assert!(!all.lines().any(|l| l.starts_with(&format!("{test_mol},"))));
    let top = std::fs::read_to_string(out.join("seed0/selected_top.csv")).unwrap();
    let bottom = std::fs::read_to_string(out.join("seed0/selected_bottom.csv")).unwrap();
    // Top and bottom halves partition the selectable rows.
    let mut halves: Vec<&str> = top.lines().skip(1).chain(bottom.lines().skip(1)).collect();
    let mut every: Vec<&str> = all.lines().skip(1).collect();
    halves.sort_unstable();
    every.sort_unstable();
    assert_eq!(halves, every);
    let md = std::fs::read_to_string(out.join("table2.md")).unwrap();
    assert!(
        md.contains("| influence top 50 % |")
            && md.contains(" ± ")
            && md.contains("random selection")
            && md.contains("| TracIn top 50 % |"),
        "{md}"
    );
    for f in [
        "table2.json",
        "table2_config.json",
        "table2_influence_hist.png",
        "table2_influence_vs_label.png",
        "table2_valid_loss.png",
        "table2_train_loss.png",
        "seed1/influence/scores.csv",
        "seed1/top/extra.json",
        "seed1/selected_tracin.csv",
        "seed1/tracin-top/extra.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The config file re-runs the comparison; finished runs and scores are reused.
    let back: Table2Config = lipo::fsutil::read_json(&out.join("table2_config.json")).unwrap();
    assert_eq!(back, cfg);
    let again = table2(&back, Device::Cpu, &out, &mut Silent).unwrap();
    assert_eq!(again.markdown, r.markdown);
    // Other influence settings in the same folder are refused, not silently mixed.
    let other = Table2Config {
        score: ScoreConfig {
            params: ParamSet::Head,
            ..cfg.score.clone()
        },
        ..cfg.clone()
    };
    let e = table2(&other, Device::Cpu, &out, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("other settings"), "{e}");
}
