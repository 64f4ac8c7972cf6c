//! ONNX export and ONNX Runtime inference: parity with tch on tiny models (regression,
//! classification, BitFit/LoRA/IA3 adapters merged), a snapshot of a deterministic fixture's
//! exported predictions, the int8 export, bad inputs, and the `export`/`predict`/`bench`
//! command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lipo::infer::{Predictor, PredictorOptions};
use lipo::model::{Config, Model, ModelMeta, ModelParts, Task};
use lipo::tokenizer::SmilesTokenizer;
use tch::{Device, Kind, Tensor};

use crate::common;
use common::lock;

/// Lipophilicity-like molecules of very different lengths, so batches carry padding.
const SMILES: [&str; 12] = [
    "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
    "COc1cc(OC)c(cc1NC(=O)CSCC(=O)O)S(=O)(=O)N2C(C)CCc3ccccc23",
    "CCO",
    "OC(=O)[C@@H](Cc1ccc(O)cc1)NC(=O)c2ccccc2",
    "Clc1ccc(cc1)C(=O)Nc2nc3ccccc3[nH]2",
    "C/C=C\\c1ccccc1",
    "[NH4+].[Cl-]",
    "CC(C)(C)c1ccc(cc1)S(=O)(=O)Nc2ccc(cc2)C(=O)N3CCC(CC3)N4CCCC4",
    "N#Cc1ccccc1",
    "O=C1CCCN1",
    "CS(=O)(=O)c1ccc(cc1)C2=C(C(=O)OC2)c3ccccc3F",
    "OC1CCN(CC1)C(=O)c2cc3cc(Cl)ccc3[nH]2",
];

fn config() -> Config {
    Config {
        // Larger weights than the default 0.02 so predictions differ visibly between molecules.
        initializer_range: 0.2,
        ..Config::tiny()
    }
}

fn tiny_model(meta: ModelMeta, seed: u64) -> Model {
    Model::new(
        config(),
        ModelParts {
            lm_head: false,
            num_labels: Some(1),
        },
        meta,
        SmilesTokenizer::molformer(),
        Device::Cpu,
        seed,
    )
    .unwrap()
}

fn regression_meta() -> ModelMeta {
    ModelMeta {
        label_name: Some("exp".into()),
        label_mean: 2.186,
        label_sd: 1.203,
        ..ModelMeta::default()
    }
}

fn options(batch_size: usize) -> PredictorOptions {
    PredictorOptions {
        threads: 1,
        batch_size,
        ..PredictorOptions::default()
    }
}

fn tch_predictions(m: &Model) -> Vec<f64> {
    let seqs: Vec<Vec<u32>> = SMILES
        .iter()
        .map(|s| m.tokenizer.encode(s).unwrap())
        .collect();
    lipo::predict::predict(m, &seqs, SMILES.len()).unwrap()
}

/// Saves `m`, exports the folder and returns the bundle's ONNX Runtime predictions.
fn ort_predictions_via_folder(m: &Model, dir: &Path, batch_size: usize) -> Vec<f64> {
    let folder = dir.join("model");
    m.save(&folder).unwrap();
    let bundle = dir.join("model.lipo");
    lipo::export::export_model_dir(&folder, &bundle).unwrap();
    let p = Predictor::open(&bundle, &options(batch_size)).unwrap();
    p.predict(&SMILES)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn assert_close(tch: &[f64], ort: &[f64], tol: f64) {
    assert_eq!(tch.len(), ort.len());
    for (i, (a, b)) in tch.iter().zip(ort).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "{}: tch {a} vs ort {b} (diff {:e})",
            SMILES[i],
            (a - b).abs()
        );
    }
}

#[test]
fn regression_export_matches_tch() {
    let dir = tempfile::tempdir().unwrap();
    let (m, tch) = {
        let _g = lock();
        let m = tiny_model(regression_meta(), 3);
        let tch = tch_predictions(&m);
        (m, tch)
    };
    // Batches of 5 with their own padding vs one fully padded tch batch.
    let ort = ort_predictions_via_folder(&m, dir.path(), 5);
    assert_close(&tch, &ort, 1e-4);
    let spread =
        tch.iter().cloned().fold(f64::MIN, f64::max) - tch.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 0.05, "predictions barely differ: {tch:?}");
    // Batch size 1 (no padding at all) agrees too.
    let p = Predictor::open(&dir.path().join("model.lipo"), &options(1)).unwrap();
    let one: Vec<f64> = p
        .predict(&SMILES)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_close(&tch, &one, 1e-4);
    let info = p.info();
    assert_eq!(info.task, Task::Regression);
    assert_eq!(info.label_name.as_deref(), Some("exp"));
    assert_eq!(info.label_mean, 2.186);
    assert_eq!(info.vocab_hash, SmilesTokenizer::molformer().vocab_hash());
}

#[test]
fn classification_export_gives_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let (m, tch) = {
        let _g = lock();
        let m = tiny_model(
            ModelMeta {
                task: Task::Classification,
                threshold: Some(2.5),
                ..ModelMeta::default()
            },
            5,
        );
        let tch = tch_predictions(&m);
        (m, tch)
    };
    let ort = ort_predictions_via_folder(&m, dir.path(), 4);
    assert_close(&tch, &ort, 1e-4);
    assert!(ort.iter().all(|p| (0.0..=1.0).contains(p)));
    let p = Predictor::open(&dir.path().join("model.lipo"), &options(4)).unwrap();
    assert_eq!(p.info().task, Task::Classification);
    assert_eq!(p.info().threshold, Some(2.5));
}

#[test]
fn adapters_are_merged_on_export() {
    let dir = tempfile::tempdir().unwrap();
    let (m, tch) = {
        let _g = lock();
        let mut m = tiny_model(regression_meta(), 7);
        tch::manual_seed(70);
        let h = m.config.hidden_size as i64;
        let inter = m.config.intermediate_size as i64;
        let r = 4;
        let opts = (Kind::Float, Device::Cpu);
        for layer in &mut m.encoder.layers {
            for lin in [&mut layer.attention.query, &mut layer.attention.value] {
                lin.lora = Some(lipo::model::molformer::Lora {
                    a: Tensor::randn([r, h], opts) * 0.3,
                    b: Tensor::randn([h, r], opts) * 0.3,
                    scale: 2.0,
                    dropout: 0.1,
                });
            }
            layer.attention.ia3_key = Some(Tensor::rand([h], opts) + 0.5);
            layer.attention.ia3_value = Some(Tensor::rand([h], opts) + 0.5);
            layer.ia3_ff = Some(Tensor::rand([inter], opts) + 0.5);
        }
        let tch = tch_predictions(&m);
        (m, tch)
    };
    let plain = {
        let _g = lock();
        tch_predictions(&tiny_model(regression_meta(), 7))
    };
    assert!(
        tch.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-3),
        "adapters should change the predictions"
    );
    let bundle = dir.path().join("peft.lipo");
    lipo::export::export_model(&m, &bundle).unwrap();
    let p = Predictor::open(&bundle, &options(5)).unwrap();
    let ort: Vec<f64> = p
        .predict(&SMILES)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_close(&tch, &ort, 1e-4);
}

#[test]
fn peft_model_folders_export_with_adapters_merged() {
    for method in ["bitfit", "lora", "ia3"] {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("model");
        let tch = {
            let _g = lock();
            let mut m = tiny_model(regression_meta(), 13);
            let cfg = lipo::peft::PeftConfig::by_name(method).unwrap();
            lipo::peft::attach(&mut m, &cfg, 1).unwrap();
            // Adapters start as the identity (LoRA B = 0, IA3 = 1): give them trained-looking
            // values so that merging matters.
            tch::manual_seed(130);
            let opts = (Kind::Float, Device::Cpu);
            tch::no_grad(|| {
                for (name, mut t) in m.named_tensors() {
                    let v = if name.contains(".ia3.") {
                        Tensor::rand(t.size(), opts) * 0.6 + 0.7
                    } else if lipo::peft::is_adapter(&name)
                        || (method == "bitfit" && name.ends_with(".bias"))
                    {
                        Tensor::randn(t.size(), opts) * 0.1
                    } else {
                        continue;
                    };
                    t.copy_(&v);
                }
            });
            m.save(&folder).unwrap();
            tch_predictions(&m)
        };
        let bundle = dir.path().join("m.lipo");
        lipo::export::export_model_dir(&folder, &bundle).unwrap();
        let p = Predictor::open(&bundle, &options(5)).unwrap();
        let ort: Vec<f64> = p
            .predict(&SMILES)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_close(&tch, &ort, 1e-4);
        let meta: ModelMeta = lipo::fsutil::read_json(&bundle.join(lipo::bundle::META)).unwrap();
        assert!(meta.peft.is_none(), "{method}: {meta:?}");
    }
}

/// The fixture: seed 20240, tiny config, regression with fixed label statistics.
fn fixture_bundle(dir: &Path) -> PathBuf {
    let m = {
        let _g = lock();
        tiny_model(regression_meta(), 20240)
    };
    let bundle = dir.join("fixture.lipo");
    lipo::export::export_model(&m, &bundle).unwrap();
    bundle
}

#[test]
fn exported_fixture_predictions_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p = Predictor::open(&fixture_bundle(dir.path()), &options(4)).unwrap();
    let rows: Vec<(String, String)> = SMILES
        .iter()
        .zip(p.predict(&SMILES).unwrap())
        .map(|(s, r)| (s.to_string(), format!("{:.4}", r.unwrap())))
        .collect();
    insta::assert_json_snapshot!("fixture_predictions", rows);
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.lipo");
    let e = Predictor::open(&missing, &options(4))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nowhere.lipo"), "{e}");
    // A model folder is not a bundle.
    std::fs::create_dir_all(dir.path().join("folder")).unwrap();
    let e = Predictor::open(&dir.path().join("folder"), &options(4))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.onnx"), "{e}");
    // Invalid SMILES fail alone, with the SMILES named.
    let p = Predictor::open(&fixture_bundle(dir.path()), &options(4)).unwrap();
    let out = p.predict(&["CCO", "not_a_smiles", "", "c1ccccc1"]).unwrap();
    assert!(out[0].is_ok() && out[3].is_ok());
    let e = out[1].as_ref().unwrap_err().to_string();
    assert!(e.contains("not_a_smiles"), "{e}");
    assert!(out[2].is_err());
    assert!(p.predict::<&str>(&[]).unwrap().is_empty());
    // Export refuses to replace a folder that is not a bundle.
    let e = lipo::export::export_model_dir(&dir.path().join("folder"), &dir.path().join("folder"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("folder"), "{e}");
}

#[test]
fn predictor_serves_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_bundle(dir.path());
    let opts = PredictorOptions {
        sessions: 2,
        ..options(3)
    };
    let p = Predictor::open(&bundle, &opts).unwrap();
    let want: Vec<f64> = p
        .predict(&SMILES)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3 {
                    let got: Vec<f64> = p
                        .predict(&SMILES)
                        .unwrap()
                        .into_iter()
                        .map(|r| r.unwrap())
                        .collect();
                    assert_close(&want, &got, 1e-6);
                }
            });
        }
    });
}

fn lipo_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lipo"))
}

#[test]
fn cli_export_and_predict_stream_with_error_column() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("model");
    {
        let _g = lock();
        tiny_model(regression_meta(), 11).save(&folder).unwrap();
    }
    let bundle = dir.path().join("m.lipo");
    let st = lipo_cmd()
        .args(["export", "--model"])
        .arg(&folder)
        .arg("--out")
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(st.success());
    // CSV input, small batches.
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "id,smiles\na,CCO\nb,not_a_smiles\nc,c1ccccc1O\n").unwrap();
    let out = dir.path().join("preds.csv");
    let st = lipo_cmd()
        .args(["predict", "--batch-size", "2", "--model"])
        .arg(&bundle)
        .arg("--input")
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("line,smiles,exp,error"), "{text}");
    assert!(lines[2].contains("not_a_smiles") && lines[2].contains("invalid SMILES"));
    // Standard input.
    let mut child = lipo_cmd()
        .args(["predict", "--model"])
        .arg(&bundle)
        .args(["--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"CCO\nCCN\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    // A missing ONNX Runtime library is named.
    let o = lipo_cmd()
        .env("ORT_DYLIB_PATH", dir.path().join("no-libonnxruntime.so"))
        .args(["predict", "--model"])
        .arg(&bundle)
        .arg("--input")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ORT_DYLIB_PATH"), "{err}");
}

#[test]
fn int8_export_is_smaller_and_stays_close_to_tch() {
    let dir = tempfile::tempdir().unwrap();
    let (m, tch) = {
        let _g = lock();
        let m = tiny_model(regression_meta(), 3);
        let tch = tch_predictions(&m);
        (m, tch)
    };
    let folder = dir.path().join("model");
    m.save(&folder).unwrap();
    let fp32 = dir.path().join("fp32.lipo");
    let int8 = dir.path().join("int8.lipo");
    lipo::export::export_model_dir(&folder, &fp32).unwrap();
    let s =
        lipo::export::export_model_dir_with(&folder, &int8, lipo::export::Quantize::Int8).unwrap();
    let graph = std::fs::read(int8.join("model.onnx")).unwrap();
    let has = |needle: &[u8]| graph.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"DynamicQuantizeMatMul") && has(b"com.microsoft"));
    assert!(s.onnx_bytes < std::fs::metadata(fp32.join("model.onnx")).unwrap().len() as usize);
    let p = Predictor::open(&int8, &options(5)).unwrap();
    assert_eq!(p.info().quantization, "int8");
    let q: Vec<f64> = p
        .predict(&SMILES)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    // Close to tch (within a tenth of a label sd on this tiny model with large random weights;
    // `lipo bench --int8` measures the error of real models), but not the float graph in
    // disguise.
    let max = tch
        .iter()
        .zip(&q)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(max <= 0.1 * 1.203, "int8 differs from tch by {max}");
    assert!(max > 1e-6, "int8 predictions equal the float ones exactly");
    let f = Predictor::open(&fp32, &options(5)).unwrap();
    assert_eq!(f.info().quantization, "none");
}

#[test]
fn cli_bench_times_tch_ort_and_int8() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("model");
    {
        let _g = lock();
        tiny_model(regression_meta(), 5).save(&folder).unwrap();
    }
    let csv = dir.path().join("smiles.csv");
    std::fs::write(&csv, format!("smiles\n{}\n", SMILES.join("\n"))).unwrap();
    let json = dir.path().join("bench.json");
    let o = lipo_cmd()
        .args(["--threads", "1", "bench", "--batch-sizes", "1,4", "--int8"])
        .args(["--repeats", "2", "--model"])
        .arg(&folder)
        .arg("--data")
        .arg(&csv)
        .arg("--out")
        .arg(&json)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("int8/tch") && text.contains("median of 2 passes"),
        "{text}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{r}");
    for e in ["tch", "ort", "ort-int8"] {
        for bs in [1, 4] {
            let row = rows
                .iter()
                .find(|x| x["engine"] == e && x["batch_size"] == bs)
                .unwrap_or_else(|| panic!("no {e} row at batch {bs}: {r}"));
            assert_eq!(row["molecules"], SMILES.len());
            assert_eq!(row["passes"].as_array().unwrap().len(), 2);
            assert!(row["molecules_per_s"].as_f64().unwrap() > 0.0);
        }
    }
    assert!(r["max_abs_diff"].as_f64().unwrap() <= 1e-4, "{r}");
    assert!(r["max_abs_diff_int8"].as_f64().unwrap() > 0.0, "{r}");
    // Zero passes is refused by name.
    let o = lipo_cmd()
        .args(["bench", "--repeats", "0", "--model"])
        .arg(&folder)
        .arg("--data")
        .arg(&csv)
        .arg("--out")
        .arg(&json)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--repeats"));
}

#[test]
fn test_time_augmentation_agrees_between_tch_and_ort() {
    let dir = tempfile::tempdir().unwrap();
    let meta = ModelMeta {
        tta: 4,
        ..regression_meta()
    };
    let (m, tch_tta, tch_plain) = {
        let _g = lock();
        let m = tiny_model(meta, 5);
        let tta = lipo::predict::predict_smiles(&m, &SMILES, 7).unwrap();
        let plain = tch_predictions(&m);
        (m, tta, plain)
    };
    // The average over random SMILES differs from the single given SMILES...
    assert!(
        tch_tta
            .iter()
            .zip(&tch_plain)
            .any(|(a, b)| (a - b).abs() > 1e-4),
        "{tch_tta:?} vs {tch_plain:?}"
    );
    // ...and the bundle, which records tta = 4, averages the same variants.
    let ort = ort_predictions_via_folder(&m, dir.path(), 3);
    assert_close(&tch_tta, &ort, 1e-4);
    let p = Predictor::open(&dir.path().join("model.lipo"), &options(8)).unwrap();
    assert_eq!(p.info().tta, 4);
    // A molecule's prediction does not depend on what is predicted with it.
    let alone = p.predict(&SMILES[2..3]).unwrap()[0]
        .as_ref()
        .copied()
        .unwrap();
    assert!((alone - ort[2]).abs() < 1e-5);
}

/// Rows of `predictions.csv` by SMILES: (set, prediction, sd, domain, in_domain).
fn ensemble_rows(dir: &Path) -> Vec<(String, String, f64, f64, f64, bool)> {
    let mut rdr = csv::Reader::from_path(dir.join("predictions.csv")).unwrap();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            let num = |i: usize| r[i].parse::<f64>().unwrap();
            (
                r[1].to_string(),
                r[3].to_string(),
                num(5),
                num(6),
                num(7),
                &r[8] == "1",
            )
        })
        .collect()
}

#[test]
fn ensembles_train_by_fold_and_export_as_one_graph() {
    use lipo::train::{self, EnsembleRun, FinetuneConfig};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy.csv");
    common::write_toy_table(&data, 120);
    let base = common::tiny_toy_run(
        data.clone(),
        FinetuneConfig {
            epochs: 2,
            seed: 3,
            ..FinetuneConfig::default()
        },
    );
    let run = EnsembleRun::new(base, 3);
    let out = dir.path().join("ens");
    let silent = &mut lipo::progress::Silent;
    let report = {
        let _g = lock();
        // One member alone leaves the ensemble ungathered; the next call finishes it.
        assert!(
            train::finetune_ensemble(&run, Device::Cpu, &out, Some(1), silent)
                .unwrap()
                .is_none()
        );
        let e = train::finetune_ensemble(&run, Device::Cpu, &out, Some(3), silent).unwrap_err();
        assert!(e.to_string().contains("member 3 of 3"), "{e}");
        train::finetune_ensemble(&run, Device::Cpu, &out, None, silent)
            .unwrap()
            .unwrap()
    };
    assert_eq!(report.members, 3);
    assert_eq!(report.sizes, [96, 24]);
    assert!(report.sd_scale > 0.0 && report.domain_threshold > 0.0);
    assert!((report.out_of_fold_coverage - 0.95).abs() < 0.03);
    let test = report.test.as_ref().unwrap();
    assert_eq!(test.members.len(), 3);
    assert_eq!(test.domain_bins.iter().map(|b| b.n).sum::<usize>(), 24);
    // Members validate on their own fold; all share the seed's usual test rows.
    let usual = lipo::data::Split::new(120, 3, 0.2, 0.1).unwrap();
    let mut valid = Vec::new();
    for k in 0..3 {
        let s: lipo::data::Split =
            lipo::fsutil::read_json(&out.join(format!("member-{k}/split.json"))).unwrap();
        assert_eq!(s.test, usual.test);
        valid.extend(s.valid);
    }
    valid.sort_unstable();
    valid.dedup();
    assert_eq!(
        valid.len(),
        96,
        "the folds cover every row that is not test"
    );
    // A finished ensemble is reused, and a different one is refused in its folder.
    let again = train::finetune_ensemble(&run, Device::Cpu, &out, None, silent)
        .unwrap()
        .unwrap();
    assert_eq!(again.sd_scale, report.sd_scale);
    let other = EnsembleRun::new(run.base.clone(), 4);
    let e = train::finetune_ensemble(&other, Device::Cpu, &out, None, silent).unwrap_err();
    assert!(e.to_string().contains("different ensemble"), "{e}");

    // One graph: the same numbers as the gathered ensemble, float32 and float16.
    let rows = ensemble_rows(&out);
    let test_rows: Vec<_> = rows.iter().filter(|r| r.1 == "test").collect();
    let smiles: Vec<&str> = test_rows.iter().map(|r| r.0.as_str()).collect();
    let mut sizes = vec![];
    for (q, tol) in [
        (lipo::export::Quantize::None, 1e-4),
        (lipo::export::Quantize::Float16, 2e-3),
    ] {
        let bundle = dir.path().join(format!("ens-{}.lipo", q.name()));
        let s = lipo::export::export_model_dir_with(&out, &bundle, q).unwrap();
        sizes.push(s.onnx_bytes);
        let p = Predictor::open(&bundle, &options(7)).unwrap();
        let info = p.info().ensemble.clone().unwrap();
        assert_eq!(info.members, 3);
        assert_eq!(info.training_molecules, 96);
        assert!((info.sd_scale - report.sd_scale).abs() < 1e-9);
        let got = p.predict_detail(&smiles).unwrap();
        for (r, g) in test_rows.iter().zip(&got) {
            let g = g.as_ref().unwrap();
            assert!(
                (g.value - r.2).abs() < tol,
                "{}: {} vs {}",
                r.0,
                g.value,
                r.2
            );
            assert!((g.sd.unwrap() - r.3).abs() < tol, "{}: sd", r.0);
            assert!(
                (g.domain.unwrap() - r.4).abs() < 10.0 * tol,
                "{}: domain",
                r.0
            );
            assert_eq!(
                g.in_domain.unwrap(),
                g.domain.unwrap() <= info.domain_threshold
            );
        }
        let bad = p.predict_detail(&["CCO", "C1CC", "c1ccccc1"]).unwrap();
        assert!(bad[0].is_ok() && bad[2].is_ok());
        assert!(bad[1].as_ref().unwrap_err().to_string().contains("C1CC"));
    }
    assert!(
        (sizes[1] as f64) < 0.6 * sizes[0] as f64,
        "float16 storage: {sizes:?}"
    );

    // The command line: the default bundle, and the trust columns.
    let bundle = dir.path().join("ens-none.lipo");
    let mut child = lipo_cmd()
        .args(["predict", "--input", "-"])
        .env("LIPO_DEFAULT_BUNDLE", &bundle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"CCO\nC1CC\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "line,smiles,exp,sd,domain,in_domain,error");
    assert_eq!(lines[1].split(',').count(), 7);
    assert!(lines[2].starts_with("2,C1CC,,,,,"), "{}", lines[2]);

    // A single model's bundle has no trust fields.
    let single = dir.path().join("single.lipo");
    lipo::export::export_model_dir(&out.join("member-0/model"), &single).unwrap();
    let p = Predictor::open(&single, &options(4)).unwrap();
    assert!(p.info().ensemble.is_none());
    let d = p.predict_detail(&["CCO"]).unwrap().remove(0).unwrap();
    assert!(d.sd.is_none() && d.domain.is_none() && d.in_domain.is_none());
}

#[test]
fn canonical_models_give_one_prediction_per_molecule() {
    let dir = tempfile::tempdir().unwrap();
    let molecules = [
        "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
        "OC(=O)[C@@H](Cc1ccc(O)cc1)NC(=O)c2ccccc2",
        "C/C=C\\c1ccccc1",
        "CC(C)(C)c1ccc(cc1)S(=O)(=O)Nc2ccc(cc2)C(=O)N3CCC(CC3)N4CCCC4",
    ];
    // Every molecule and 10 random writings of it.
    let mut rng = lipo::rng::SplitMix64::new(5);
    let writings: Vec<Vec<String>> = molecules
        .iter()
        .map(|s| {
            let m = lipo::smiles::Molecule::parse(s).unwrap();
            std::iter::once(s.to_string())
                .chain((0..10).map(|_| m.random_smiles(&mut rng).unwrap()))
                .collect()
        })
        .collect();
    let spread = |preds: &[f64]| {
        preds
            .chunks(11)
            .map(|c| {
                c.iter().cloned().fold(f64::MIN, f64::max)
                    - c.iter().cloned().fold(f64::MAX, f64::min)
            })
            .fold(0.0, f64::max)
    };
    let flat: Vec<&str> = writings.iter().flatten().map(String::as_str).collect();
    let folder = dir.path().join("model");
    let model = {
        let _g = lock();
        tiny_model(regression_meta(), 21)
    };
    model.save(&folder).unwrap();
    for canonical in [false, true] {
        let bundle = dir.path().join(format!("c{canonical}.lipo"));
        lipo::export::export_model_dir_as(
            &folder,
            &bundle,
            lipo::export::Quantize::None,
            canonical,
        )
        .unwrap();
        let p = Predictor::open(&bundle, &options(8)).unwrap();
        assert_eq!(p.info().canonical, canonical);
        let ort: Vec<f64> = p
            .predict(&flat)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let mut m = <Model as lipo::peft::LoadModel>::load(&folder, Device::Cpu).unwrap();
        m.meta.canonical = canonical;
        m.tokenizer = m.tokenizer.clone().with_canonical(canonical);
        let tch = lipo::predict::predict_smiles(&m, &flat, 8).unwrap();
        if canonical {
            assert!(spread(&ort) < 1e-6, "ort spread {}", spread(&ort));
            assert!(spread(&tch) < 1e-6, "tch spread {}", spread(&tch));
        } else {
            // The same model reading the SMILES as written: the writings disagree.
            assert!(spread(&ort) > 1e-4, "ort spread {}", spread(&ort));
        }
    }
}

/// The committed predictor `models/logd.lipo`: a graph ensemble of at most 30 MB that opens
/// from the source tree, reports its recipe's numbers, gives every writing of a molecule one
/// answer, and is what `lipo predict` uses without `--model`. Its predictions are
/// snapshot-tested, so a changed bundle shows up in review.
#[test]
fn shipped_bundle_predicts_out_of_the_box() {
    let shipped = Path::new(lipo::bundle::SHIPPED);
    assert!(
        shipped.join("model.onnx").is_file(),
        "{} is missing: export it with `bash scripts/graph.sh export`",
        shipped.display()
    );
    let size: u64 = std::fs::read_dir(shipped)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(size <= 30_000_000, "{size} bytes");
    let p = Predictor::open(
        shipped,
        &PredictorOptions {
            threads: 1,
            ..PredictorOptions::default()
        },
    )
    .unwrap();
    let info = p.info();
    assert!(info.graph, "the shipped predictor is the graph ensemble");
    let e = info.ensemble.clone().expect("an ensemble");
    assert_eq!(e.sd_method, "domain");
    assert_eq!(e.members, 5);
    assert!(e.training_molecules >= 4000, "{e:?}");
    assert!(
        e.out_of_fold_rmse > 0.3 && e.out_of_fold_rmse < 1.0,
        "{e:?}"
    );
    assert!(e.sd_scale > 0.0 && e.domain_threshold > 0.0, "{e:?}");
    let molecules = [
        "CCO",
        "c1ccccc1",
        "CC(=O)Nc1ccc(O)cc1",
        "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
        "OC(=O)[C@@H](Cc1ccc(O)cc1)NC(=O)c2ccccc2",
    ];
    let got = p.predict_detail(&molecules).unwrap();
    let rows: Vec<String> = molecules
        .iter()
        .zip(&got)
        .map(|(s, g)| {
            let g = g.as_ref().unwrap();
            format!(
                "{s}: {:.3} ± {:.3}, domain {:.3} ({})",
                g.value,
                g.sd.unwrap(),
                g.domain.unwrap(),
                if g.in_domain.unwrap() { "in" } else { "out" }
            )
        })
        .collect();
    insta::assert_snapshot!("shipped_bundle_predictions", rows.join("\n"));
    // Other writings of paracetamol: one answer.
    let writings = [
        "CC(=O)Nc1ccc(O)cc1",
        "Oc1ccc(NC(C)=O)cc1",
        "c1cc(O)ccc1NC(=O)C",
    ];
    let v: Vec<f64> = p
        .predict(&writings)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(v.iter().all(|x| (x - v[0]).abs() < 1e-6), "{v:?}");
    // `lipo predict` without --model uses it.
    let mut child = lipo_cmd()
        .args(["--threads", "1", "predict", "--input", "-"])
        .env_remove("LIPO_DEFAULT_BUNDLE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"CCO\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let line = text.lines().nth(1).unwrap();
    let value: f64 = line.split(',').nth(2).unwrap().parse().unwrap();
    assert!(
        (value - got[0].as_ref().unwrap().value).abs() < 1e-5,
        "{text}"
    );
}

/// The MoLFormer ensemble of `scripts/ensemble.sh` stays committed beside the shipped
/// predictor (`models/logd-molformer.lipo`, canonical SMILES input): it opens, reads tokens,
/// and gives every writing of paracetamol one answer.
#[test]
fn molformer_bundle_opens_beside_the_shipped_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/logd-molformer.lipo");
    let p = Predictor::open(
        &path,
        &PredictorOptions {
            threads: 1,
            ..PredictorOptions::default()
        },
    )
    .unwrap();
    let info = p.info();
    assert!(!info.graph && info.canonical && p.tokenizer().is_some());
    assert_eq!(info.ensemble.as_ref().unwrap().members, 5);
    let v: Vec<f64> = p
        .predict(&["CC(=O)Nc1ccc(O)cc1", "Oc1ccc(NC(C)=O)cc1"])
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        (v[0] - v[1]).abs() < 1e-6 && (v[0] - 0.357).abs() < 1e-3,
        "{v:?}"
    );
}
