//! Table 1 end to end on generated data with a tiny "pre-trained" model.

use lipo::data::TableOptions;
use lipo::experiments::table1::{domain_mlm_defaults, table1, Table1Config};
use lipo::model::{Config, Model, ModelMeta, ModelParts, Task};
use lipo::progress::Silent;
use lipo::tokenizer::SmilesTokenizer;
use lipo::train::FinetuneConfig;
use tch::Device;

#[test]
fn table1_runs_all_rows_and_reuses_finished_runs() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    let frags = ["C", "O", "N", "c1ccccc1", "Cl", "C(=O)", "CC"];
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
    let meta = ModelMeta {
        task: Task::Encoder,
        ..ModelMeta::default()
    };
    Model::new(
        Config::tiny(),
        ModelParts {
            lm_head: true,
            num_labels: None,
        },
        meta,
        SmilesTokenizer::molformer(),
        Device::Cpu,
        1,
    )
    .unwrap()
    .save(&pre)
    .unwrap();
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
}
