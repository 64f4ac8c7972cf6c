//! `lipo study` end to end on generated tables with a tiny "pre-trained" model: every stage,
//! the report, the config file that re-runs it, and reuse of finished stages.

mod common;

use std::path::Path;

use lipo::model::{Config, Model, ModelMeta, ModelParts, Task};
use lipo::progress::Silent;
use lipo::study::{self, StudyConfig, StudyOptions};
use lipo::tokenizer::SmilesTokenizer;
use lipo::train::{self, FinetuneReport, FinetuneRun};
use tch::Device;

fn write_external(path: &Path, n: usize) {
    let frags = ["CC", "N", "Br", "O", "C(=O)N", "S"];
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

#[test]
fn study_runs_every_stage_writes_the_report_and_reuses_stages() {
    let _guard = common::lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lipophilicity.csv");
    common::write_toy_table(&data, 60);
    let external = dir.path().join("external.csv");
    write_external(&external, 40);
    let pre = dir.path().join("pre");
    Model::new(
        Config::tiny(),
        ModelParts {
            lm_head: true,
            num_labels: None,
        },
        ModelMeta {
            task: Task::Encoder,
            ..ModelMeta::default()
        },
        SmilesTokenizer::molformer(),
        Device::Cpu,
        1,
    )
    .unwrap()
    .save(&pre)
    .unwrap();
    let mut cfg = StudyConfig::quick(data, external, pre);
    cfg.random_arch = Config::tiny();
    cfg.finetune.batch_size = 8;
    cfg.finetune.lr = 1e-3;
    cfg.domain_mlm.valid_size = 5;
    cfg.score.lissa.depth = 10;
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
