//! Model tests on tiny configurations: padding invariance, save/load round trip, Hugging Face
//! folder loading, and that a tiny model can overfit 32 molecules.

use lipo::data::{Split, TableOptions};
use lipo::model::{Config, Model, ModelMeta, ModelParts};
use lipo::peft::LoadModel;
use lipo::tokenizer::{pad_batch, SmilesTokenizer, PAD_ID};
use lipo::train::{self, FinetuneConfig, FinetuneRun, InitFrom};
use tch::{Device, Kind, Tensor};

use crate::common;
use common::{lock, tiny_toy_run, write_toy_table};

const SMILES: [&str; 8] = [
    "CCO",
    "c1ccccc1O",
    "CC(=O)Nc1ccc(O)cc1",
    "Cl/C=C\\Br",
    "C[C@@H](N)C(=O)O",
    "[NH4+].[Cl-]",
    "C1CC2CCC1C2",
    "OC(=O)c1ccccc1C%10CC%10",
];

fn tiny_model(parts: ModelParts, seed: u64) -> Model {
    Model::new(
        Config::tiny(),
        parts,
        ModelMeta::default(),
        SmilesTokenizer::molformer(),
        Device::Cpu,
        seed,
    )
    .unwrap()
}

fn encode_all(t: &SmilesTokenizer) -> Vec<Vec<u32>> {
    SMILES.iter().map(|s| t.encode(s).unwrap()).collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn padding_does_not_change_pooled_output() {
    let _guard = lock();
    let m = tiny_model(
        ModelParts {
            lm_head: true,
            num_labels: Some(1),
        },
        1,
    );
    let seqs = encode_all(&m.tokenizer);
    let batch = pad_batch(&seqs);
    let (ids, mask) = m.batch_tensors(&batch);
    let pooled = tch::no_grad(|| m.pooled(&ids, &mask, false));
    // Append 13 extra padding columns.
    let extra = 13;
    let pad = Tensor::full(
        [batch.batch as i64, extra],
        PAD_ID as i64,
        (Kind::Int64, Device::Cpu),
    );
    let zeros = Tensor::zeros([batch.batch as i64, extra], (Kind::Int64, Device::Cpu));
    let ids2 = Tensor::cat(&[&ids, &pad], 1);
    let mask2 = Tensor::cat(&[&mask, &zeros], 1);
    let pooled2 = tch::no_grad(|| m.pooled(&ids2, &mask2, false));
    assert!(
        max_abs_diff(&pooled, &pooled2) < 1e-5,
        "diff {}",
        max_abs_diff(&pooled, &pooled2)
    );
    // Each molecule alone (no padding at all) gives the same pooled state as in the batch.
    for (i, s) in seqs.iter().enumerate() {
        let (ids1, mask1) = m.batch_tensors(&pad_batch(std::slice::from_ref(s)));
        let p1 = tch::no_grad(|| m.pooled(&ids1, &mask1, false));
        let d = max_abs_diff(&p1, &pooled.get(i as i64).unsqueeze(0));
        assert!(d < 1e-5, "molecule {i}: diff {d}");
    }
}

#[test]
fn eval_is_deterministic_and_train_mode_uses_dropout() {
    let _guard = lock();
    let m = tiny_model(
        ModelParts {
            lm_head: false,
            num_labels: Some(1),
        },
        2,
    );
    let (ids, mask) = m.batch_tensors(&pad_batch(&encode_all(&m.tokenizer)));
    let a = tch::no_grad(|| m.head_forward(&ids, &mask, false).unwrap());
    let b = tch::no_grad(|| m.head_forward(&ids, &mask, false).unwrap());
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    let c = tch::no_grad(|| m.head_forward(&ids, &mask, true).unwrap());
    assert!(max_abs_diff(&a, &c) > 0.0);
}

#[test]
fn save_load_round_trip() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_model(
        ModelParts {
            lm_head: true,
            num_labels: Some(1),
        },
        3,
    );
    m.meta.label_mean = 2.5;
    m.meta.label_sd = 1.25;
    m.save(dir.path()).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "lipo.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let back = Model::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(back.parts(), m.parts());
    assert_eq!(back.meta, m.meta);
    assert_eq!(back.config.num_labels, Some(1));
    let (ids, mask) = m.batch_tensors(&pad_batch(&encode_all(&m.tokenizer)));
    let a = tch::no_grad(|| m.head_forward(&ids, &mask, false).unwrap());
    let b = tch::no_grad(|| back.head_forward(&ids, &mask, false).unwrap());
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    let names: Vec<String> = back.named_tensors().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"molformer.encoder.layer.0.attention.self.query.weight".to_string()));
    assert!(
        names.contains(&"molformer.encoder.layer.1.attention.self.feature_map.weight".to_string())
    );
    assert!(names.contains(&"molformer.LayerNorm.bias".to_string()));
    assert!(names.contains(&"lm_head.transform.LayerNorm.weight".to_string()));
    assert!(names.contains(&"classifier.out_proj.weight".to_string()));
}

#[test]
fn hugging_face_folder_with_only_config_and_weights_loads() {
    let _guard = lock();
    let dir = tempfile::tempdir().unwrap();
    let m = tiny_model(
        ModelParts {
            lm_head: true,
            num_labels: None,
        },
        4,
    );
    m.save(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    std::fs::remove_file(dir.path().join("lipo.json")).unwrap();
    // Hugging Face also stores the tied decoder and may store half precision; both load.
    let mut tensors: Vec<(String, Tensor)> =
        Tensor::read_safetensors(dir.path().join("model.safetensors")).unwrap();
    let emb = tensors
        .iter()
        .find(|(n, _)| n == "molformer.embeddings.word_embeddings.weight")
        .unwrap()
        .1
        .shallow_clone();
    tensors.push(("lm_head.decoder.weight".into(), emb));
    let tensors: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(Kind::BFloat16).to_kind(Kind::Float)))
        .collect();
    Tensor::write_safetensors(&tensors, dir.path().join("model.safetensors")).unwrap();
    let back = Model::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(
        back.parts(),
        ModelParts {
            lm_head: true,
            num_labels: None
        }
    );
    assert_eq!(back.meta.task, lipo::model::Task::Encoder);
    // A missing weight is named.
    let partial: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter(|(n, _)| !n.contains("layer.1.output.dense.weight"))
        .collect();
    Tensor::write_safetensors(&partial, dir.path().join("model.safetensors")).unwrap();
    let e = Model::load(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer.1.output.dense.weight"), "{e}");
}

#[test]
fn tiny_model_overfits_32_molecules() {
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 32);
    let mut config = Config::tiny();
    config.hidden_dropout_prob = 0.0;
    config.embedding_dropout_prob = 0.0;
    let run = FinetuneRun {
        data: data.clone(),
        fold: None,
        extra: None,
        table: TableOptions::default(),
        init: InitFrom::Random(Box::new(config)),
        train: FinetuneConfig {
            epochs: 150,
            batch_size: 8,
            lr: 3e-3,
            test_frac: 0.0,
            valid_frac: 0.0,
            ..FinetuneConfig::default()
        },
    };
    // With no validation rows there is nothing to choose epochs by: lipo refuses.
    let e = train::finetune(
        &run,
        Device::Cpu,
        &dir.path().join("run"),
        &mut lipo::progress::Silent,
    )
    .unwrap_err();
    assert!(e.to_string().contains("validation"), "{e}");
    // Overfit all 32 rows with the library's pieces.
    let tok = SmilesTokenizer::molformer();
    let table = lipo::data::read_table(&data, &tok, &TableOptions::default(), true).unwrap();
    let model = common::regression_model(
        Config {
            hidden_dropout_prob: 0.0,
            embedding_dropout_prob: 0.0,
            ..Config::tiny()
        },
        0,
    );
    model.set_trainable(|_| true);
    let mut opt = lipo::optim::Adam::new(model.named_tensors(), lipo::optim::AdamConfig::adam());
    let seqs: Vec<&[u32]> = table.records.iter().map(|r| r.ids.as_slice()).collect();
    let labels: Vec<f32> = table
        .records
        .iter()
        .map(|r| r.label.unwrap() as f32)
        .collect();
    let (ids, mask) = model.batch_tensors(&pad_batch(&seqs));
    let y = Tensor::from_slice(&labels);
    let var = y.var(false).double_value(&[]);
    let mut last = f64::INFINITY;
    for _ in 0..300 {
        let pred = model
            .head_forward(&ids, &mask, true)
            .unwrap()
            .squeeze_dim(-1);
        let loss = pred.mse_loss(&y, tch::Reduction::Mean);
        opt.zero_grad();
        loss.backward();
        opt.step(3e-3);
        last = loss.double_value(&[]);
    }
    assert!(
        last < 0.02 * var,
        "final MSE {last} vs label variance {var}"
    );
}

/// A three-epoch fine-tuning run of a random tiny model on `n` toy molecules in `dir`.
fn three_epoch_run(dir: &std::path::Path, n: usize) -> FinetuneRun {
    let data = dir.join("toy.csv");
    write_toy_table(&data, n);
    tiny_toy_run(
        data,
        FinetuneConfig {
            epochs: 3,
            batch_size: 8,
            lr: 1e-3,
            ..FinetuneConfig::default()
        },
    )
}

/// `run` trained in one call, in `dir/straight`: what a resumed run must equal.
fn uninterrupted(run: &FinetuneRun, dir: &std::path::Path) -> train::FinetuneReport {
    train::finetune(
        run,
        Device::Cpu,
        &dir.join("straight"),
        &mut lipo::progress::Silent,
    )
    .unwrap()
}

#[test]
fn finetune_run_writes_its_folder_and_resumes() {
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let run = three_epoch_run(dir.path(), 60);
    let out = dir.path().join("run");
    // Cancel during epoch 2: epoch 1 is checkpointed.
    let mut cancel = cancel_in_epoch_two();
    let e = train::finetune(&run, Device::Cpu, &out, &mut cancel).unwrap_err();
    assert!(matches!(e, lipo::Error::Cancelled(_)), "{e}");
    assert!(out.join("checkpoint/state.json").is_file());
    let saved: serde_json::Value =
        lipo::fsutil::read_json(&out.join("checkpoint/state.json")).unwrap();
    let before = saved["seconds_before"].as_f64().unwrap();
    assert!(before > 0.0, "{saved}");
    let r = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    assert_eq!(r.history.len(), 3);
    // The interrupted call's time counts.
    assert!(r.wall_seconds > before);
    // Resuming gives exactly what an uninterrupted run gives.
    let straight = uninterrupted(&run, dir.path());
    let losses = |h: &[train::EpochRecord]| {
        h.iter()
            .map(|e| (e.train_loss, e.valid_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&straight.history), losses(&r.history));
    assert_eq!(straight.test, r.test);
    assert_eq!(r.history[0].epoch, 1);
    assert_eq!(r.sizes, [43, 5, 12]);
    let split: Split = lipo::fsutil::read_json(&out.join("split.json")).unwrap();
    assert_eq!(split.test.len(), 12);
    for f in [
        "metrics.json",
        "loss.png",
        "run.json",
        "test_predictions.csv",
        "model/model.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(!out.join("checkpoint").exists());
    // The same run again is answered from the folder; a different one is refused.
    let again = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    assert_eq!(again.test, r.test);
    let other = FinetuneRun {
        train: FinetuneConfig {
            seed: 9,
            ..run.train.clone()
        },
        ..run.clone()
    };
    assert!(train::finetune(&other, Device::Cpu, &out, &mut lipo::progress::Silent).is_err());
}

#[test]
fn a_finished_run_without_its_weights_is_trained_again_when_its_model_is_needed() {
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 40);
    let run = tiny_toy_run(
        data,
        FinetuneConfig {
            epochs: 2,
            batch_size: 8,
            ..FinetuneConfig::default()
        },
    );
    let out = dir.path().join("run");
    let first = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    let kept = train::kept_or_retrained_model(&out, Device::Cpu, &mut lipo::progress::Silent);
    assert_eq!(kept.unwrap(), (out.join("model"), false));
    // Only the run's records travel (as a study committed without weights does).
    std::fs::remove_dir_all(out.join("model")).unwrap();
    let again = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    assert_eq!(
        again.test.rmse, first.test.rmse,
        "the records are reused as they are"
    );
    let (model, retrained) =
        train::kept_or_retrained_model(&out, Device::Cpu, &mut lipo::progress::Silent).unwrap();
    assert!(retrained);
    assert_eq!(model, out.join("retrained").join("model"));
    assert!(model.join("config.json").is_file());
    // Same split, init and data order on the same thread count: the same numbers.
    let r: lipo::train::FinetuneReport =
        lipo::fsutil::read_json(&out.join("retrained").join("metrics.json")).unwrap();
    assert!((r.valid.rmse - first.valid.rmse).abs() < 1e-6);
}

#[test]
fn learning_rate_schedules_decay_to_zero_and_constant_stays_out_of_run_json() {
    use lipo::train::LrSchedule;
    assert_eq!(LrSchedule::Constant.rate(1e-4, 50, 100), 1e-4);
    assert!((LrSchedule::Linear.rate(1e-4, 25, 100) - 0.75e-4).abs() < 1e-15);
    assert!((LrSchedule::Cosine.rate(1e-4, 50, 100) - 0.5e-4).abs() < 1e-15);
    assert_eq!(LrSchedule::Linear.rate(1e-4, 0, 100), 1e-4);
    assert!(LrSchedule::Cosine.rate(1e-4, 100, 100).abs() < 1e-15);
    assert_eq!(LrSchedule::parse("cosine"), Some(LrSchedule::Cosine));
    assert_eq!(LrSchedule::parse("step"), None);
    // Records written before schedules existed still describe the same (constant) run.
    let json = serde_json::to_value(FinetuneConfig::default()).unwrap();
    assert!(json.get("schedule").is_none(), "{json}");
    let back: FinetuneConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, FinetuneConfig::default());

    // A linear run logs a falling rate that reaches lr / steps at its last step.
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 40);
    let run = tiny_toy_run(
        data,
        FinetuneConfig {
            epochs: 2,
            batch_size: 8,
            lr: 1e-3,
            schedule: LrSchedule::Linear,
            ..FinetuneConfig::default()
        },
    );
    let out = dir.path().join("run");
    train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    let text = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let lrs: Vec<f64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "step")
        .filter_map(|v| v["lr"].as_f64())
        .collect();
    assert!(lrs.len() >= 4, "{text}");
    assert_eq!(lrs[0], 1e-3);
    assert!(lrs.windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
    let last = *lrs.last().unwrap();
    assert!((last - 1e-3 / lrs.len() as f64).abs() < 1e-12, "{lrs:?}");
    let saved: FinetuneRun = lipo::fsutil::read_json(&out.join("run.json")).unwrap();
    assert_eq!(saved.train.schedule, LrSchedule::Linear);
}

#[test]
fn feature_redraw_changes_training_passes_only_and_stays_out_of_old_records() {
    let _guard = lock();
    let mut cfg = Config::tiny();
    cfg.hidden_dropout_prob = 0.0;
    cfg.embedding_dropout_prob = 0.0;
    let mut m = common::regression_model(cfg, 3);
    let seqs = encode_all(&m.tokenizer);
    let (ids, mask) = m.batch_tensors(&pad_batch(&seqs));
    let pass = |m: &Model, train: bool| tch::no_grad(|| m.pooled(&ids, &mask, train));
    // Without dropout and without redraw, a training pass is the evaluation pass.
    let eval = pass(&m, false);
    assert!(max_abs_diff(&pass(&m, true), &eval) < 1e-6);
    m.encoder.set_feature_redraw(true);
    // Each training pass draws new features: the outputs move, and differ from each other.
    let (a, b) = (pass(&m, true), pass(&m, true));
    assert!(max_abs_diff(&a, &eval) > 1e-4);
    assert!(max_abs_diff(&a, &b) > 1e-4);
    // Evaluation keeps the stored features: reproducible, and the same as before.
    assert!(max_abs_diff(&pass(&m, false), &eval) < 1e-7);

    // Records written before the option existed still describe the same run.
    let json = serde_json::to_value(FinetuneConfig::default()).unwrap();
    assert!(json.get("redraw_features").is_none(), "{json}");
    let mlm = serde_json::to_value(lipo::mlm::MlmConfig::default()).unwrap();
    assert!(mlm.get("redraw_features").is_none(), "{mlm}");
    let on = FinetuneConfig {
        redraw_features: true,
        ..FinetuneConfig::default()
    };
    let back: FinetuneConfig = serde_json::from_value(serde_json::to_value(&on).unwrap()).unwrap();
    assert!(back.redraw_features);
}

#[test]
fn augmented_finetuning_changes_the_inputs_and_resumes_exactly() {
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 60);
    let plain = tiny_toy_run(
        data,
        FinetuneConfig {
            epochs: 2,
            batch_size: 8,
            lr: 1e-3,
            ..FinetuneConfig::default()
        },
    );
    let augmented = FinetuneRun {
        train: FinetuneConfig {
            augment: 1.0,
            ..plain.train.clone()
        },
        ..plain.clone()
    };
    let silent = &mut lipo::progress::Silent;
    let p = train::finetune(&plain, Device::Cpu, &dir.path().join("plain"), silent).unwrap();
    let out = dir.path().join("aug");
    // Cancel in epoch 2, then resume: the same random SMILES as a straight run.
    let mut cancel = cancel_in_epoch_two();
    assert!(train::finetune(&augmented, Device::Cpu, &out, &mut cancel).is_err());
    let a = train::finetune(&augmented, Device::Cpu, &out, silent).unwrap();
    let straight = train::finetune(
        &augmented,
        Device::Cpu,
        &dir.path().join("straight"),
        silent,
    )
    .unwrap();
    let train_losses = |r: &train::FinetuneReport| -> Vec<f64> {
        r.history.iter().map(|e| e.train_loss).collect()
    };
    assert_eq!(train_losses(&a), train_losses(&straight));
    assert_eq!(a.test, straight.test);
    // Same split and seed, different training inputs.
    assert_eq!(a.sizes, p.sizes);
    assert_ne!(train_losses(&a), train_losses(&p));
    let saved: FinetuneRun = lipo::fsutil::read_json(&out.join("run.json")).unwrap();
    assert_eq!(saved.train.augment, 1.0);
    // An impossible share is refused, naming the flag.
    let bad = FinetuneRun {
        train: FinetuneConfig {
            augment: 1.5,
            ..plain.train.clone()
        },
        ..plain
    };
    let e = train::finetune(&bad, Device::Cpu, &dir.path().join("bad"), silent).unwrap_err();
    assert!(e.to_string().contains("augment"), "{e}");
}

#[test]
fn test_time_augmentation_is_recorded_and_reproduced_by_evaluate() {
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    write_toy_table(&data, 60);
    let run = tiny_toy_run(
        data.clone(),
        FinetuneConfig {
            epochs: 1,
            batch_size: 8,
            lr: 1e-3,
            augment: 0.5,
            tta: 3,
            ..FinetuneConfig::default()
        },
    );
    let out = dir.path().join("run");
    let r = train::finetune(&run, Device::Cpu, &out, &mut lipo::progress::Silent).unwrap();
    let model = Model::load(&out.join("model"), Device::Cpu).unwrap();
    assert_eq!(model.meta.tta, 3);
    let table =
        lipo::data::read_table(&data, &model.tokenizer, &TableOptions::default(), true).unwrap();
    let split: Split = lipo::fsutil::read_json(&out.join("split.json")).unwrap();
    let (m, _) = train::evaluate(&model, &table, &split.test, 64).unwrap();
    assert!(
        (m.rmse - r.test.rmse).abs() < 1e-9,
        "{} vs {}",
        m.rmse,
        r.test.rmse
    );
    // Without the averaging the same weights give other numbers.
    let mut plain = model;
    plain.meta.tta = 0;
    let (p, _) = train::evaluate(&plain, &table, &split.test, 64).unwrap();
    assert!((p.rmse - r.test.rmse).abs() > 1e-9);
}

/// A monitor that lets epoch 1 finish (and be checkpointed), then cancels at the first step
/// of epoch 2.
fn cancel_in_epoch_two() -> impl FnMut(&lipo::progress::Event) -> bool {
    let mut epochs_seen = 0;
    move |e: &lipo::progress::Event| {
        if let lipo::progress::Event::Epoch { .. } = e {
            epochs_seen += 1;
        }
        !(epochs_seen >= 1 && matches!(e, lipo::progress::Event::Step { .. }))
    }
}

#[test]
fn crafted_model_folders_are_errors_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    tiny_model(
        ModelParts {
            lm_head: false,
            num_labels: Some(1),
        },
        0,
    )
    .save(&good)
    .unwrap();
    let copy = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(&good).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        d
    };
    let edit_json = |path: &std::path::Path, key: &str, value: serde_json::Value| {
        let mut j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        j[key] = value;
        std::fs::write(path, serde_json::to_vec(&j).unwrap()).unwrap();
    };
    let load_err = |d: &std::path::Path| Model::load(d, Device::Cpu).unwrap_err().to_string();
    for (key, value) in [
        ("pad_token_id", serde_json::json!(99999)),
        ("hidden_size", serde_json::json!(1u64 << 40)),
        ("num_random_features", serde_json::json!(10_000_000)),
    ] {
        let d = copy(key);
        edit_json(&d.join("config.json"), key, value);
        let e = load_err(&d);
        assert!(e.contains("config.json") && e.contains(key), "{e}");
    }
    let d = copy("tta");
    edit_json(
        &d.join("lipo.json"),
        "tta",
        serde_json::json!(1_000_000_000u64),
    );
    let e = load_err(&d);
    assert!(e.contains("lipo.json") && e.contains("tta"), "{e}");
    // A head weight that is a scalar, or has no outputs.
    for (name, t) in [
        ("scalar", Tensor::from(1.0f32)),
        ("empty", Tensor::zeros([0, 32], (Kind::Float, Device::Cpu))),
    ] {
        let d = copy(name);
        let w = d.join("model.safetensors");
        let mut tensors = Tensor::read_safetensors(&w).unwrap();
        for (n, v) in tensors.iter_mut() {
            if n == "classifier.out_proj.weight" {
                *v = t.shallow_clone();
            }
        }
        Tensor::write_safetensors(&tensors, &w).unwrap();
        let e = load_err(&d);
        assert!(e.contains("classifier.out_proj.weight"), "{e}");
    }
    // Token ids outside the embedding table.
    let d = copy("vocab");
    edit_json(&d.join("config.json"), "vocab_size", serde_json::json!(100));
    let e = load_err(&d);
    assert!(
        e.contains("tokenizer.json") && e.contains("vocab_size"),
        "{e}"
    );
}

#[test]
fn a_damaged_newest_checkpoint_and_a_torn_log_line_resume_from_the_previous_one() {
    let _guard = lock();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let run = three_epoch_run(dir.path(), 40);
    let out = dir.path().join("run");
    // Cancel at the first step of epoch 3: epochs 1 and 2 are checkpointed.
    let mut epochs = 0;
    let mut cancel = |e: &lipo::progress::Event| {
        if let lipo::progress::Event::Epoch { .. } = e {
            epochs += 1;
        }
        !(epochs >= 2 && matches!(e, lipo::progress::Event::Step { .. }))
    };
    assert!(train::finetune(&run, Device::Cpu, &out, &mut cancel).is_err());
    assert!(out.join("checkpoint-previous/state.json").is_file());
    // Truncate the newest checkpoint's weights, and tear the log's last line.
    let w = out.join("checkpoint/model/model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let log = out.join("log.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(r#"{"kind":"step","ep"#);
    std::fs::write(&log, text).unwrap();
    let mut said = Vec::new();
    let mut listen = |e: &lipo::progress::Event| {
        if let lipo::progress::Event::Message { text } = e {
            said.push(text.clone());
        }
        true
    };
    let r = train::finetune(&run, Device::Cpu, &out, &mut listen).unwrap();
    assert!(
        said.iter()
            .any(|m| m.contains("damaged") && m.contains("previous")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|m| m.contains("resuming after epoch 1")),
        "{said:?}"
    );
    let straight = uninterrupted(&run, dir.path());
    assert_eq!(straight.test, r.test);
    assert_eq!(straight.best_epoch, r.best_epoch);
    assert!(!out.join("checkpoint").exists() && !out.join("checkpoint-previous").exists());
}
