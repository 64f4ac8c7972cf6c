//! MLM on a generated corpus: it learns (held-out masked accuracy rises above chance), excludes
//! listed molecules, and an interrupted run resumes to exactly the uninterrupted result.

use lipo::data::TableOptions;
use lipo::mlm::{self, MlmConfig, MlmRun};
use lipo::model::{Config, Model};
use lipo::peft::LoadModel;
use lipo::progress::{Event, Silent};
use lipo::train::InitFrom;
use tch::Device;

use crate::common;
use common::lock;

fn write_corpus(path: &std::path::Path, n: usize) {
    // Chain fragments, then (for two molecules in three) a fragment that can only end a chain.
    let frags = [
        "C",
        "CC",
        "c1ccccc1",
        "O",
        "N",
        "C(=O)O",
        "c1ccncc1",
        "S(=O)(=O)N",
    ];
    let ends = ["", "Cl", "C(F)(F)F"];
    let mut rng = lipo::rng::SplitMix64::new(42);
    let mut s = String::from("SMILES\n");
    for _ in 0..n {
        let mut smi = String::new();
        for _ in 0..(2 + rng.below(5)) {
            smi.push_str(frags[rng.below(frags.len() as u64) as usize]);
        }
        smi.push_str(ends[rng.below(ends.len() as u64) as usize]);
        s.push_str(&smi);
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

fn run(corpus: &std::path::Path, exclude: Vec<std::path::PathBuf>) -> MlmRun {
    MlmRun {
        corpus: corpus.to_path_buf(),
        table: TableOptions::default(),
        exclude,
        init: InitFrom::Random(Box::new(Config {
            hidden_dropout_prob: 0.0,
            embedding_dropout_prob: 0.0,
            ..Config::tiny()
        })),
        mlm: MlmConfig {
            epochs: 8,
            batch_size: 16,
            lr: 3e-3,
            warmup_steps: 5,
            valid_size: 40,
            eval_every: 20,
            checkpoint_every: 7,
            chunk_size: 64,
            ..MlmConfig::default()
        },
    }
}

/// (step, training loss, held-out loss) of every evaluation.
fn losses(h: &[mlm::MlmEval]) -> Vec<(u64, f64, f64)> {
    h.iter()
        .map(|e| (e.step, e.train_loss, e.valid_loss))
        .collect()
}

#[test]
fn mlm_learns_and_resumes_exactly() {
    let _g = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.csv");
    write_corpus(&corpus, 400);
    let excl = dir.path().join("excl.csv");
    // Exclude the corpus' first molecule (and one it may not hold).
    let text = std::fs::read_to_string(&corpus).unwrap();
    let first = text.lines().nth(1).unwrap();
    std::fs::write(&excl, format!("smiles\n{first}\nCO\n")).unwrap();
    let r = run(&corpus, vec![excl.clone()]);

    let straight = mlm::mlm(&r, Device::Cpu, &dir.path().join("a"), &mut Silent).unwrap();
    assert!(
        straight.valid_accuracy > 0.4,
        "masked accuracy {}",
        straight.valid_accuracy
    );
    assert_eq!(
        straight.corpus_train as usize + straight.corpus_valid + straight.excluded as usize,
        400
    );
    assert!(straight.excluded > 0);
    assert!(dir.path().join("a/model/model.safetensors").is_file());
    assert!(dir.path().join("a/mlm.png").is_file());

    // Interrupt after step 10 (checkpointed at the stop), then resume.
    let out = dir.path().join("b");
    let mut stop = |e: &Event| !matches!(e, Event::Step { step: 10, .. });
    let e = mlm::mlm(&r, Device::Cpu, &out, &mut stop).unwrap_err();
    assert!(matches!(e, lipo::Error::Cancelled(_)), "{e}");
    let resumed = mlm::mlm(&r, Device::Cpu, &out, &mut Silent).unwrap();
    assert_eq!(resumed.steps, straight.steps);
    assert_eq!(losses(&resumed.history), losses(&straight.history));
    assert_eq!(resumed.valid_accuracy, straight.valid_accuracy);

    // The MLM model is a valid --init for fine-tuning: its encoder loads under a new head.
    let m = Model::load(&dir.path().join("a/model"), Device::Cpu).unwrap();
    assert!(m.lm_head.is_some() && m.head.is_none());

    // A finished run is reused; one whose model was not kept (only its records travelled)
    // runs again, with the same result.
    // (Read back from metrics.json: JSON round trips may move the last digit.)
    let close = |a: &[mlm::MlmEval], b: &[mlm::MlmEval]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.step == y.step
                    && (x.train_loss - y.train_loss).abs() < 1e-9
                    && (x.valid_loss - y.valid_loss).abs() < 1e-9
            })
    };
    let again = mlm::mlm(&r, Device::Cpu, &dir.path().join("a"), &mut Silent).unwrap();
    assert!(close(&again.history, &straight.history));
    std::fs::remove_dir_all(dir.path().join("a/model")).unwrap();
    let mut steps = 0;
    let mut count = |e: &Event| {
        steps += matches!(e, Event::Step { .. }) as usize;
        true
    };
    let redone = mlm::mlm(&r, Device::Cpu, &dir.path().join("a"), &mut count).unwrap();
    assert!(steps > 0, "the run was not trained again");
    assert!(dir.path().join("a/model/model.safetensors").is_file());
    assert!(close(&redone.history, &straight.history));
    assert_eq!(redone.valid_accuracy, straight.valid_accuracy);
}

#[test]
fn augmented_mlm_resumes_exactly_and_sees_other_strings() {
    let _g = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.csv");
    write_corpus(&corpus, 200);
    let plain = run(&corpus, vec![]);
    let mut r = plain.clone();
    r.mlm.epochs = 3;
    r.mlm.augment = 1.0;
    let mut bad = r.clone();
    bad.mlm.augment = 1.5;
    let e = mlm::mlm(&bad, Device::Cpu, &dir.path().join("bad"), &mut Silent).unwrap_err();
    assert!(e.to_string().contains("invalid value for augment:"), "{e}");

    let straight = mlm::mlm(&r, Device::Cpu, &dir.path().join("a"), &mut Silent).unwrap();
    let out = dir.path().join("b");
    let mut stop = |e: &Event| !matches!(e, Event::Step { step: 9, .. });
    let e = mlm::mlm(&r, Device::Cpu, &out, &mut stop).unwrap_err();
    assert!(matches!(e, lipo::Error::Cancelled(_)), "{e}");
    let resumed = mlm::mlm(&r, Device::Cpu, &out, &mut Silent).unwrap();
    assert_eq!(losses(&resumed.history), losses(&straight.history));
    assert_eq!(resumed.valid_accuracy, straight.valid_accuracy);

    // The same molecules, other strings: the same number of steps, other training losses.
    let mut unaugmented = plain;
    unaugmented.mlm.epochs = 3;
    let without = mlm::mlm(
        &unaugmented,
        Device::Cpu,
        &dir.path().join("c"),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(without.steps, straight.steps);
    assert_ne!(losses(&without.history), losses(&straight.history));
}
