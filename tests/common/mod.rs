//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// libtorch's random generator is process-global: tests that seed it run one at a time.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Serialises tests that seed or draw from libtorch's global generator.
pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `n` labelled molecules whose label is a simple function of composition.
pub fn write_toy_table(path: &std::path::Path, n: usize) {
    let frags = [
        "C", "O", "N", "c1ccccc1", "C(Cl)", "C(F)", "C(=O)", "CC", "S", "C(Br)",
    ];
    let mut s = String::from("smiles,exp\n");
    let mut rng = lipo::rng::SplitMix64::new(11);
    for _ in 0..n {
        let k = 2 + rng.below(5) as usize;
        let mut smi = String::new();
        let mut y = 0.0;
        for _ in 0..k {
            let f = frags[rng.below(frags.len() as u64) as usize];
            smi.push_str(f);
            y += match f {
                "c1ccccc1" => 1.5,
                "C(Cl)" | "C(Br)" => 0.8,
                "O" | "N" => -0.7,
                _ => 0.2,
            };
        }
        s.push_str(&format!("{smi},{y:.3}\n"));
    }
    std::fs::write(path, s).unwrap();
}

/// A model of `config` with a one-output regression head, default metadata and the MoLFormer
/// tokenizer, on the CPU.
pub fn regression_model(config: lipo::model::Config, seed: u64) -> lipo::model::Model {
    lipo::model::Model::new(
        config,
        lipo::model::ModelParts {
            lm_head: false,
            num_labels: Some(1),
        },
        lipo::model::ModelMeta::default(),
        lipo::tokenizer::SmilesTokenizer::molformer(),
        tch::Device::Cpu,
        seed,
    )
    .unwrap()
}

/// A tiny encoder with an MLM head, saved in `dir` as a pre-trained model is.
pub fn save_tiny_pretrained(dir: &std::path::Path, seed: u64) {
    lipo::model::Model::new(
        lipo::model::Config::tiny(),
        lipo::model::ModelParts {
            lm_head: true,
            num_labels: None,
        },
        lipo::model::ModelMeta {
            task: lipo::model::Task::Encoder,
            ..lipo::model::ModelMeta::default()
        },
        lipo::tokenizer::SmilesTokenizer::molformer(),
        tch::Device::Cpu,
        seed,
    )
    .unwrap()
    .save(dir)
    .unwrap();
}

/// A fine-tuning run of a random tiny model on the table `data`, without extra rows.
pub fn tiny_toy_run(
    data: std::path::PathBuf,
    train: lipo::train::FinetuneConfig,
) -> lipo::train::FinetuneRun {
    lipo::train::FinetuneRun {
        data,
        fold: None,
        extra: None,
        table: lipo::data::TableOptions::default(),
        init: lipo::train::InitFrom::Random(Box::new(lipo::model::Config::tiny())),
        train,
    }
}
