//! `lipo study` end to end on generated tables with a tiny "pre-trained" model: every stage,
//! the report, the config file that re-runs it, and reuse of finished stages.

use crate::common;

use std::path::Path;

use lipo::model::{Config, Task};
use lipo::progress::Silent;
use lipo::study::{self, StudyConfig, StudyOptions};
use lipo::train::{self, FinetuneReport, FinetuneRun};
use tch::Device;

fn write_external(path: &Path, n: usize) {
    let frags = ["CC", "N", "C(Br)", "O", "C(=O)N", "S"];
    let mut rng = lipo::rng::SplitMix64::new(5);
    let mut s = String::from("SMILES,Label\n");
    for _ in 0..n {
        let mut smi = String::from("c1ccncc1");
        for _ in 0..(1 + rng.below(4)) {
            smi.push_str(frags[rng.below(frags.len() as u64) as usize]);
        }
        let y = smi.matches('C').count() as f64 * 0.3 - smi.matches('N').count() as f64 * 0.5;
        s.push_str(&format!("{smi},{y:.2}\n"));
    }
    std::fs::write(path, s).unwrap();
}

/// A quick study on generated tables in `dir`, from a tiny "pre-trained" model.
fn tiny_study(dir: &Path) -> StudyConfig {
    let data = dir.join("lipophilicity.csv");
    common::write_toy_table(&data, 60);
    let external = dir.join("external.csv");
    write_external(&external, 40);
    let pre = dir.join("pre");
    common::save_tiny_pretrained(&pre, 1);
    let mut cfg = StudyConfig::quick(data, external, pre);
    cfg.random_arch = Config::tiny();
    cfg.finetune.batch_size = 8;
    cfg.finetune.lr = 1e-3;
    cfg.domain_mlm.valid_size = 5;
    cfg.score.lissa.depth = 10;
    cfg
}

#[test]
fn study_runs_every_stage_writes_the_report_and_reuses_stages() {
    let _guard = common::lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_study(dir.path());
    let out = dir.path().join("study");
    let run = |cfg: &StudyConfig| {
        let mut runner = |r: &FinetuneRun, o: &Path| -> lipo::Result<FinetuneReport> {
            train::finetune(r, Device::Cpu, o, &mut Silent)
        };
        study::run(
            cfg,
            &out,
            StudyOptions {
                device: Device::Cpu,
                runner: &mut runner,
                command: "lipo study --quick".into(),
                environment: vec![("threads".into(), "1".into())],
                prior_seconds: vec![],
            },
            &mut Silent,
        )
    };
    let r = run(&cfg).unwrap();
    assert_eq!(r.timings.len(), 5);
    assert!(r.timings.iter().all(|t| !t.reused && t.seconds > 0.0));
    assert!(r.estimate.total_seconds > 0.0 && r.estimate.train_mols_per_s > 0.0);
    assert!(r.best.max_abs_diff <= 1e-4 && r.best.checked > 0);
    assert!(out.join("best-model/best.lipo/model.onnx").is_file());
    assert_eq!(r.table3_classification.task, Task::Classification);
    // Table 2's run without external data is Table 1's pre-trained run, computed once.
    let a = std::fs::read(out.join("table1/seed0/pretrained/metrics.json")).unwrap();
    let b = std::fs::read(out.join("table2/seed0/none/metrics.json")).unwrap();
    assert_eq!(a, b);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "## Table 1",
        "## Table 2",
        "## Table 3a",
        "## Table 3b",
        "## Best model",
        "## Timing",
        "## Reproduce",
        "smoke test",
        "![",
        "lipo study --config",
    ] {
        assert!(md.contains(needle), "{needle} missing from\n{md}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data:image/png;base64,") && !html.contains("]("));
    // The config file re-runs the study; every stage is reused.
    let back: StudyConfig = lipo::fsutil::read_json(&out.join("study.json")).unwrap();
    assert_eq!(back, cfg);
    let again = run(&back).unwrap();
    assert!(again.timings.iter().all(|t| t.reused));
    assert_eq!(again.table2.markdown, r.table2.markdown);
    // Another study in the same folder is refused with a message naming study.json.
    let mut other = cfg.clone();
    other.fraction = 0.25;
    let e = run(&other).unwrap_err().to_string();
    assert!(e.contains("study.json"), "{e}");
}

#[test]
fn study_jobs_run_seeds_in_child_processes_then_gather() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = {
        let _guard = common::lock();
        tiny_study(dir.path())
    };
    cfg.seeds = vec![0, 1];
    let out = dir.path().join("study");
    let config = dir.path().join("study.json");
    lipo::fsutil::write_json(&config, &cfg).unwrap();
    let study = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lipo"))
            .args(["--threads", "2", "study", "--jobs", "2", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = study();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("jobs: 8 per-seed jobs, 2 at a time, 1 tensor thread(s) each"),
        "{err}"
    );
    for stage in [
        "table1",
        "table2",
        "table3-regression",
        "table3-classification",
    ] {
        for seed in [0, 1] {
            let log = out.join(stage).join("jobs").join(format!("seed{seed}.log"));
            assert!(log.is_file(), "{} missing", log.display());
            assert!(
                err.contains(&format!("jobs: {stage} seed {seed} finished")),
                "{err}"
            );
        }
    }
    // Each job's one-seed table stays in its own folder; the stage's covers both seeds.
    for (stage, table) in [
        ("table1", "table1.md"),
        ("table2", "table2.md"),
        ("table3-regression", "comparison.md"),
    ] {
        for seed in [0, 1] {
            let own = out.join(stage).join("jobs").join(format!("seed{seed}"));
            assert!(own.join(table).is_file(), "{} missing", own.display());
        }
    }
    let t1: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("table1/table1_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(t1["seeds"], serde_json::json!([0, 1]));
    // Each stage's jobs time is kept for a later call to add to.
    let secs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("table1/jobs/seconds.json")).unwrap(),
    )
    .unwrap();
    assert!(secs["seconds"].as_f64().unwrap() > 0.0, "{secs}");
    // Each seed's Table 2 run without external data is its Table 1 pre-trained run.
    for seed in [0, 1] {
        let a = std::fs::read(out.join(format!("table1/seed{seed}/pretrained/metrics.json")));
        let b = std::fs::read(out.join(format!("table2/seed{seed}/none/metrics.json")));
        assert_eq!(a.unwrap(), b.unwrap());
    }
    // The gathered study holds both seeds and times every stage.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("study_results.json")).unwrap())
            .unwrap();
    let rows = r["table1"]["rows"].as_array().unwrap();
    assert!(
        rows.iter().all(|row| row["rmse"]["n"] == 2),
        "{}",
        r["table1"]
    );
    let timings = r["timings"].as_array().unwrap();
    assert!(
        timings.iter().all(|t| t["seconds"].as_f64().unwrap() > 0.0),
        "{timings:?}"
    );
    assert!(out.join("report.md").is_file());
    // The same command again reuses every run; the job logs keep the first attempt's lines.
    let o = study();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(out.join("table1/jobs/seed0.log")).unwrap();
    assert_eq!(
        log.matches("=== lipo compare-mlm --config").count(),
        2,
        "{log}"
    );
}
