//! The C ABI: called directly (threads, bad input, ensembles' sd and applicability domain),
//! and through the shipped C, C++ and Python programs built with the system compilers against
//! liblipo: the C example, the C++ example built from an installed prefix with pkg-config (and
//! CMake when it is installed), the C training example (cancel and resume), the Python
//! binding's tests, and valgrind over the C example linked to the inference-only library
//! (built here without libtorch). A tiny three-member ensemble is trained here once (seconds)
//! for the ensemble checks, and is the examples' default bundle (`LIPO_DEFAULT_BUNDLE`).

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use lipo::ffi::*;
use lipo::infer::{EnsembleInfo, Prediction, Predictor, PredictorOptions};
use lipo::model::{Config, Model, ModelMeta, ModelParts};
use lipo::tokenizer::SmilesTokenizer;

mod common;

const SMILES: [&str; 6] = [
    "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14",
    "CCO",
    "OC(=O)[C@@H](Cc1ccc(O)cc1)NC(=O)c2ccccc2",
    "C/C=C\\c1ccccc1",
    "N#Cc1ccccc1",
    "CS(=O)(=O)c1ccc(cc1)C2=C(C(=O)OC2)c3ccccc3F",
];

struct Fixture {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    /// ONNX Runtime predictions of SMILES through the Rust API.
    expected: Vec<f64>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let model = {
            let _g = common::lock();
            Model::new(
                Config {
                    initializer_range: 0.2,
                    ..Config::tiny()
                },
                ModelParts {
                    lm_head: false,
                    num_labels: Some(1),
                },
                ModelMeta {
                    label_name: Some("exp".into()),
                    label_mean: 2.186,
                    label_sd: 1.203,
                    ..ModelMeta::default()
                },
                SmilesTokenizer::molformer(),
                tch::Device::Cpu,
                5,
            )
            .unwrap()
        };
        let folder = dir.path().join("model");
        model.save(&folder).unwrap();
        let bundle = dir.path().join("tiny.lipo");
        lipo::export::export_model_dir(&folder, &bundle).unwrap();
        let p = Predictor::open(
            &bundle,
            &PredictorOptions {
                threads: 1,
                batch_size: 1,
                ..PredictorOptions::default()
            },
        )
        .unwrap();
        let expected = p
            .predict(&SMILES)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        Fixture {
            dir,
            bundle,
            expected,
        }
    })
}

struct Ensemble {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    /// ONNX Runtime predictions of SMILES through the Rust API, with sd and domain.
    expected: Vec<Prediction>,
    info: EnsembleInfo,
}

/// A three-member ensemble of tiny models trained for two epochs on a generated table,
/// exported as one float32 bundle.
fn ensemble() -> &'static Ensemble {
    static E: OnceLock<Ensemble> = OnceLock::new();
    E.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("toy.csv");
        common::write_toy_table(&data, 120);
        let base = common::tiny_toy_run(
            data,
            lipo::train::FinetuneConfig {
                epochs: 2,
                seed: 3,
                ..lipo::train::FinetuneConfig::default()
            },
        );
        let out = dir.path().join("ens");
        {
            let _g = common::lock();
            lipo::train::finetune_ensemble(
                &lipo::train::EnsembleRun::new(base, 3),
                tch::Device::Cpu,
                &out,
                None,
                &mut lipo::progress::Silent,
            )
            .unwrap()
            .expect("every member finished");
        }
        let bundle = dir.path().join("ens.lipo");
        lipo::export::export_model_dir_with(&out, &bundle, lipo::export::Quantize::None).unwrap();
        let p = Predictor::open(
            &bundle,
            &PredictorOptions {
                threads: 1,
                batch_size: 1,
                ..PredictorOptions::default()
            },
        )
        .unwrap();
        let expected = p
            .predict_detail(&SMILES)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let info = p.info().ensemble.clone().expect("an ensemble bundle");
        Ensemble {
            dir,
            bundle,
            expected,
            info,
        }
    })
}

/// target/release/deps, where cargo puts liblipo.so (the full library) for the tests.
fn deps_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn full_library() -> PathBuf {
    let lib = deps_dir().join("liblipo.so");
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

/// The inference-only liblipo (ort, no libtorch), built on first use in target/infer-only
/// together with the light `lipo` front.
fn inference_library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let target = deps_dir().join("../../infer-only");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--release",
                "--lib",
                "--bin",
                "lipo",
                "--no-default-features",
                "--features",
                "infer",
                "--target-dir",
            ])
            .arg(&target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the inference-only library failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lib = target.join("release/liblipo.so");
        assert!(lib.is_file());
        lib
    })
    .clone()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a program without the test harness's LD_LIBRARY_PATH (which names cargo's output
/// folders, possibly holding another build of liblipo), so the rpath decides.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

fn check(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Compiles a C example against the library in `lib` (its folder is the rpath).
fn build_c(source: &str, lib: &Path, exe: &Path) {
    let lib_dir = lib.parent().unwrap();
    check(
        Command::new("cc")
            .arg("-std=c11")
            .arg("-Wall")
            .arg("-Werror")
            .arg("-g")
            .arg(root().join(source))
            .arg("-I")
            .arg(root().join("include"))
            .arg(format!("-L{}", lib_dir.display()))
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .arg("-llipo")
            .arg("-o")
            .arg(exe),
    );
}

/// Checks "SMILES<TAB>value" lines against the Rust predictions.
fn check_output(stdout: &[u8], expected: &[f64]) {
    let text = String::from_utf8_lossy(stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    for ((line, smiles), want) in lines.iter().zip(SMILES).zip(expected) {
        let (s, v) = line.split_once('\t').unwrap();
        assert_eq!(s, smiles);
        let v: f64 = v.parse().unwrap();
        assert!((v - want).abs() < 1e-5, "{smiles}: {v} vs {want}");
    }
}

/// Checks the lines an example prints for an ensemble, "SMILES<TAB>value ± sd<TAB>in domain"
/// (or "out of domain"), against the Rust predictions.
fn check_detail_output(stdout: &[u8], expected: &[Prediction]) {
    let text = String::from_utf8_lossy(stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    for ((line, smiles), want) in lines.iter().zip(SMILES).zip(expected) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[0], smiles);
        let (v, sd) = fields[1]
            .split_once(" ± ")
            .unwrap_or_else(|| panic!("{line}"));
        let (v, sd): (f64, f64) = (v.parse().unwrap(), sd.parse().unwrap());
        assert!((v - want.value).abs() < 1e-5, "{smiles}: {v} vs {want:?}");
        assert!(
            (sd - want.sd.unwrap()).abs() < 1e-5,
            "{smiles}: sd {sd} vs {want:?}"
        );
        let inside = want.in_domain.unwrap();
        assert_eq!(
            fields[2],
            if inside { "in domain" } else { "out of domain" },
            "{line}"
        );
    }
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(lipo_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn cstring(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn open(path: &Path, options: &str) -> *mut LipoModel {
    let p = cstring(path.to_str().unwrap());
    let o = cstring(options);
    let mut m = std::ptr::null_mut();
    let s = unsafe { lipo_model_open_with(p.as_ptr(), o.as_ptr(), &mut m) };
    assert_eq!(s, LipoStatus::Ok, "{}", last_error());
    m
}

/// A handle shared by threads in the test.
struct Shared(*mut LipoModel);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

#[test]
fn eight_threads_share_one_model_and_agree_with_one_thread() {
    let f = fixture();
    let model = Shared(open(&f.bundle, r#"{"threads": 1, "sessions": 3}"#));
    let inputs: Vec<CString> = SMILES.iter().map(|s| cstring(s)).collect();
    let single: Vec<f64> = inputs
        .iter()
        .map(|s| {
            let mut v = 0.0;
            assert_eq!(
                unsafe { lipo_predict(model.0, s.as_ptr(), &mut v) },
                LipoStatus::Ok
            );
            v
        })
        .collect();
    for (a, b) in single.iter().zip(&f.expected) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (model, inputs, single) = (&model, &inputs, &single);
            scope.spawn(move || {
                for i in 0..1000 {
                    let k = (i + t) % inputs.len();
                    let mut v = f64::NAN;
                    let s = unsafe { lipo_predict(model.0, inputs[k].as_ptr(), &mut v) };
                    assert_eq!(s, LipoStatus::Ok, "{}", last_error());
                    assert_eq!(v, single[k], "thread {t}, call {i}, {:?}", inputs[k]);
                }
            });
        }
    });
    unsafe { lipo_model_close(model.0) };
}

#[test]
fn batch_reports_each_molecule_and_keeps_going() {
    let f = fixture();
    let model = open(&f.bundle, "{}");
    let owned: Vec<CString> = ["CCO", "not_a_smiles", "N#Cc1ccccc1"]
        .iter()
        .map(|s| cstring(s))
        .collect();
    let bad_utf8 = [b'C', 0xff, 0];
    let mut ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    ptrs.push(bad_utf8.as_ptr().cast());
    let mut values = vec![0.0; ptrs.len()];
    let mut statuses = vec![LipoStatus::Internal; ptrs.len()];
    let s = unsafe {
        lipo_predict_batch(
            model,
            ptrs.as_ptr(),
            ptrs.len(),
            values.as_mut_ptr(),
            statuses.as_mut_ptr(),
        )
    };
    assert_eq!(s, LipoStatus::Ok);
    assert_eq!(
        statuses,
        [
            LipoStatus::Ok,
            LipoStatus::InvalidSmiles,
            LipoStatus::Ok,
            LipoStatus::InvalidArgument,
            LipoStatus::InvalidArgument
        ]
    );
    assert!(last_error().contains("molecule 1") && last_error().contains("not_a_smiles"));
    assert!((values[0] - f.expected[1]).abs() < 1e-5);
    assert!((values[2] - f.expected[4]).abs() < 1e-5);
    assert!(values[1].is_nan() && values[3].is_nan());
    // Without a statuses array, a failed molecule is the call's status.
    let s = unsafe {
        lipo_predict_batch(
            model,
            ptrs.as_ptr(),
            2,
            values.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(s, LipoStatus::InvalidSmiles);
    unsafe { lipo_model_close(model) };
}

#[test]
fn null_pointers_bad_strings_and_bad_files_are_errors_not_crashes() {
    let f = fixture();
    let model = open(&f.bundle, "{}");
    let mut v = 0.0;
    let cco = cstring("CCO");
    unsafe {
        assert_eq!(
            lipo_predict(std::ptr::null(), cco.as_ptr(), &mut v),
            LipoStatus::InvalidArgument
        );
        assert!(last_error().contains("model"), "{}", last_error());
        assert_eq!(
            lipo_predict(model, std::ptr::null(), &mut v),
            LipoStatus::InvalidArgument
        );
        assert!(last_error().contains("smiles"));
        assert_eq!(
            lipo_predict(model, cco.as_ptr(), std::ptr::null_mut()),
            LipoStatus::InvalidArgument
        );
        let bad = cstring("not_a_smiles");
        assert_eq!(
            lipo_predict(model, bad.as_ptr(), &mut v),
            LipoStatus::InvalidSmiles
        );
        assert!(v.is_nan());
        assert!(last_error().contains("not_a_smiles"), "{}", last_error());
        assert_eq!(lipo_predict(model, cco.as_ptr(), &mut v), LipoStatus::Ok);
        assert_eq!(last_error(), "");
        // Strings of SMILES characters that are not SMILES get no number.
        for s in ["C)C(", "c1ccccc", "C==C", "CC(=O", "[Xx]", "C."] {
            let c = cstring(s);
            assert_eq!(
                lipo_predict(model, c.as_ptr(), &mut v),
                LipoStatus::InvalidSmiles
            );
            assert!(v.is_nan());
            assert!(last_error().contains("position"), "{s}: {}", last_error());
        }
        // Any integer has a status name.
        for k in [-1, 100_000] {
            let name = CStr::from_ptr(lipo_status_name(k)).to_str().unwrap();
            assert_eq!(name, "unknown status");
        }
        // A bundle whose metadata asks for 10^9 random SMILES per molecule is refused when
        // opened, before anything is allocated for them.
        let crafted = f.dir.path().join("tta.lipo");
        std::fs::create_dir_all(&crafted).unwrap();
        std::fs::copy(
            f.bundle.join("tokenizer.json"),
            crafted.join("tokenizer.json"),
        )
        .unwrap();
        let mut proto = <onnx_protobuf::ModelProto as protobuf::Message>::parse_from_bytes(
            &std::fs::read(f.bundle.join("model.onnx")).unwrap(),
        )
        .unwrap();
        proto.metadata_props.retain(|p| p.key != "tta");
        let mut tta = onnx_protobuf::StringStringEntryProto::new();
        tta.key = "tta".into();
        tta.value = "1000000000".into();
        proto.metadata_props.push(tta);
        std::fs::write(
            crafted.join("model.onnx"),
            protobuf::Message::write_to_bytes(&proto).unwrap(),
        )
        .unwrap();
        let mut m = std::ptr::null_mut();
        let p = cstring(crafted.to_str().unwrap());
        assert_eq!(lipo_model_open(p.as_ptr(), &mut m), LipoStatus::Model);
        assert!(
            m.is_null() && last_error().contains("tta"),
            "{}",
            last_error()
        );

        let mut m = std::ptr::null_mut();
        let missing = cstring("/nonexistent/model.lipo");
        let s = lipo_model_open(missing.as_ptr(), &mut m);
        assert_ne!(s, LipoStatus::Ok);
        assert!(m.is_null());
        assert!(
            last_error().contains("/nonexistent/model.lipo"),
            "{}",
            last_error()
        );
        let opts = cstring(r#"{"thread": 2}"#);
        let path = cstring(f.bundle.to_str().unwrap());
        let s = lipo_model_open_with(path.as_ptr(), opts.as_ptr(), &mut m);
        assert_eq!(s, LipoStatus::InvalidArgument);
        assert!(last_error().contains("thread"), "{}", last_error());

        let mut info = std::ptr::null_mut();
        assert_eq!(lipo_model_info(model, &mut info), LipoStatus::Ok);
        let text = CStr::from_ptr(info).to_str().unwrap().to_string();
        lipo_string_free(info);
        assert!(text.contains("\"regression\""), "{text}");

        let job = cstring(
            r#"{"command": "finetune", "out": "x", "run": {"data": "d.csv", "init": {"model": "m"}, "train": {"epoch": 3}}}"#,
        );
        let mut report = std::ptr::null_mut();
        assert_eq!(
            lipo_train(job.as_ptr(), None, std::ptr::null_mut(), &mut report),
            LipoStatus::InvalidArgument
        );
        assert!(report.is_null());
        assert!(last_error().contains("epoch"), "{}", last_error());
        let out = cstring(f.dir.path().join("never.lipo").to_str().unwrap());
        assert_ne!(lipo_export(missing.as_ptr(), out.as_ptr()), LipoStatus::Ok);
        assert!(
            last_error().contains("/nonexistent/model.lipo"),
            "{}",
            last_error()
        );
        lipo_model_close(model);
        lipo_model_close(std::ptr::null_mut());
        lipo_string_free(std::ptr::null_mut());
    }
}

fn info_of(model: *const LipoModel) -> serde_json::Value {
    let mut info = std::ptr::null_mut();
    assert_eq!(
        unsafe { lipo_model_info(model, &mut info) },
        LipoStatus::Ok,
        "{}",
        last_error()
    );
    let text = unsafe { CStr::from_ptr(info) }
        .to_str()
        .unwrap()
        .to_string();
    unsafe { lipo_string_free(info) };
    serde_json::from_str(&text).unwrap()
}

/// A prediction the library must overwrite.
const GARBAGE: LipoPrediction = LipoPrediction {
    value: 123.0,
    sd: 456.0,
    domain: 789.0,
    in_domain: 7,
};

/// What a failed molecule holds: no number.
fn is_none(p: &LipoPrediction) -> bool {
    p.value.is_nan() && p.sd.is_nan() && p.domain.is_nan() && p.in_domain == -1
}

fn assert_detail(got: &LipoPrediction, want: &Prediction, tol: f64) {
    assert!((got.value - want.value).abs() <= tol, "{got:?} vs {want:?}");
    assert!(
        (got.sd - want.sd.unwrap()).abs() <= tol,
        "{got:?} vs {want:?}"
    );
    assert!(
        (got.domain - want.domain.unwrap()).abs() <= tol,
        "{got:?} vs {want:?}"
    );
    assert_eq!(got.in_domain, i32::from(want.in_domain.unwrap()));
}

#[test]
fn ensemble_detail_through_the_c_abi_matches_rust() {
    let e = ensemble();
    let model = open(&e.bundle, r#"{"threads": 1}"#);
    let threshold = e.info.domain_threshold;
    // The same molecules one by one: Rust's numbers, sd > 0, the flag from the threshold.
    for (smiles, want) in SMILES.iter().zip(&e.expected) {
        let c = cstring(smiles);
        let mut p = GARBAGE;
        let s = unsafe { lipo_predict_detail(model, c.as_ptr(), &mut p) };
        assert_eq!(s, LipoStatus::Ok, "{}", last_error());
        assert_detail(&p, want, 1e-6);
        assert!(p.sd > 0.0 && p.sd.is_finite(), "{smiles}: {p:?}");
        assert!(p.domain >= 0.0, "{smiles}: {p:?}");
        assert_eq!(p.in_domain == 1, p.domain <= threshold, "{smiles}: {p:?}");
        // lipo_predict gives the ensemble's mean.
        let mut v = f64::NAN;
        assert_eq!(
            unsafe { lipo_predict(model, c.as_ptr(), &mut v) },
            LipoStatus::Ok
        );
        assert_eq!(v, p.value);
    }
    // What the bundle says about itself, as JSON and as a struct.
    let info = info_of(model);
    assert_eq!(info["members"], 3);
    assert_eq!(info["members"], e.info.members);
    assert_eq!(info["sd_scale"], e.info.sd_scale);
    assert_eq!(info["domain_threshold"], threshold);
    assert_eq!(info["domain_neighbours"], e.info.domain_neighbours);
    assert_eq!(info["training_molecules"], e.info.training_molecules);
    assert_eq!(info["out_of_fold_rmse"], e.info.out_of_fold_rmse);
    assert_eq!(info["task"], "regression");
    let mut ei = LipoEnsembleInfo {
        members: 99,
        sd_scale: 0.0,
        domain_threshold: 0.0,
        domain_neighbours: 0,
        training_molecules: 0,
        out_of_fold_rmse: 0.0,
    };
    assert_eq!(
        unsafe { lipo_model_ensemble_info(model, &mut ei) },
        LipoStatus::Ok
    );
    assert_eq!(
        (ei.members, ei.domain_neighbours, ei.training_molecules),
        (
            e.info.members,
            e.info.domain_neighbours,
            e.info.training_molecules
        )
    );
    assert_eq!(
        (ei.sd_scale, ei.domain_threshold, ei.out_of_fold_rmse),
        (e.info.sd_scale, threshold, e.info.out_of_fold_rmse)
    );

    unsafe {
        // An invalid SMILES: its status and message, no number (not a stale one).
        for bad in ["not_a_smiles", "C)C(", "c1ccccc"] {
            let c = cstring(bad);
            let mut p = GARBAGE;
            assert_eq!(
                lipo_predict_detail(model, c.as_ptr(), &mut p),
                LipoStatus::InvalidSmiles
            );
            assert!(is_none(&p), "{bad}: {p:?}");
            assert!(last_error().contains(bad), "{bad}: {}", last_error());
            assert!(last_error().contains("position"), "{bad}: {}", last_error());
        }
        // NULL pointers are InvalidArgument naming the parameter.
        let cco = cstring("CCO");
        let mut p = GARBAGE;
        assert_eq!(
            lipo_predict_detail(std::ptr::null(), cco.as_ptr(), &mut p),
            LipoStatus::InvalidArgument
        );
        assert!(last_error().contains("model"), "{}", last_error());
        assert!(is_none(&p));
        assert_eq!(
            lipo_predict_detail(model, std::ptr::null(), &mut p),
            LipoStatus::InvalidArgument
        );
        assert!(last_error().contains("smiles"), "{}", last_error());
        assert_eq!(
            lipo_predict_detail(model, cco.as_ptr(), std::ptr::null_mut()),
            LipoStatus::InvalidArgument
        );
        assert!(last_error().contains("out"), "{}", last_error());
        assert_eq!(
            lipo_model_ensemble_info(model, std::ptr::null_mut()),
            LipoStatus::InvalidArgument
        );
        assert_eq!(
            lipo_model_ensemble_info(std::ptr::null(), &mut ei),
            LipoStatus::InvalidArgument
        );
        assert_eq!(ei.members, 0);
        assert_eq!(
            lipo_predict_detail(model, cco.as_ptr(), &mut p),
            LipoStatus::Ok
        );
        assert_eq!(last_error(), "");

        // A batch with bad molecules in the middle: each gets its status, the rest their
        // numbers.
        let owned: Vec<CString> = [SMILES[0], "not_a_smiles", SMILES[4]]
            .iter()
            .map(|s| cstring(s))
            .collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        ptrs.insert(2, std::ptr::null());
        let mut out = vec![GARBAGE; ptrs.len()];
        let mut statuses = vec![LipoStatus::Internal; ptrs.len()];
        let s = lipo_predict_detail_batch(
            model,
            ptrs.as_ptr(),
            ptrs.len(),
            out.as_mut_ptr(),
            statuses.as_mut_ptr(),
        );
        assert_eq!(s, LipoStatus::Ok);
        assert_eq!(
            statuses,
            [
                LipoStatus::Ok,
                LipoStatus::InvalidSmiles,
                LipoStatus::InvalidArgument,
                LipoStatus::Ok
            ]
        );
        assert!(
            last_error().contains("molecule 1") && last_error().contains("not_a_smiles"),
            "{}",
            last_error()
        );
        // Batched with other lengths (64 per run): equal up to padding's rounding.
        assert_detail(&out[0], &e.expected[0], 1e-4);
        assert_detail(&out[3], &e.expected[4], 1e-4);
        assert!(is_none(&out[1]) && is_none(&out[2]), "{out:?}");
        // Without a statuses array, a failed molecule is the call's status.
        let s = lipo_predict_detail_batch(
            model,
            ptrs.as_ptr(),
            2,
            out.as_mut_ptr(),
            std::ptr::null_mut(),
        );
        assert_eq!(s, LipoStatus::InvalidSmiles);
        assert!(last_error().contains("not_a_smiles"), "{}", last_error());
        // Nothing to do is fine; NULL arrays are not.
        let none = lipo_predict_detail_batch(
            model,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        assert_eq!(none, LipoStatus::Ok);
        assert_eq!(
            lipo_predict_detail_batch(
                model,
                std::ptr::null(),
                1,
                out.as_mut_ptr(),
                std::ptr::null_mut()
            ),
            LipoStatus::InvalidArgument
        );
        assert_eq!(
            lipo_predict_detail_batch(
                model,
                ptrs.as_ptr(),
                1,
                std::ptr::null_mut(),
                std::ptr::null_mut()
            ),
            LipoStatus::InvalidArgument
        );
        assert!(last_error().contains("out"), "{}", last_error());
        assert_eq!(
            lipo_predict_detail_batch(
                std::ptr::null(),
                ptrs.as_ptr(),
                1,
                out.as_mut_ptr(),
                std::ptr::null_mut()
            ),
            LipoStatus::InvalidArgument
        );
        lipo_model_close(model);
    }
}

#[test]
fn single_model_detail_has_no_uncertainty_or_domain() {
    let f = fixture();
    let model = open(&f.bundle, "{}");
    let inputs: Vec<CString> = SMILES.iter().map(|s| cstring(s)).collect();
    for (c, want) in inputs.iter().zip(&f.expected) {
        let mut p = GARBAGE;
        let s = unsafe { lipo_predict_detail(model, c.as_ptr(), &mut p) };
        assert_eq!(s, LipoStatus::Ok, "{}", last_error());
        assert!((p.value - want).abs() < 1e-6, "{p:?} vs {want}");
        assert!(
            p.sd.is_nan() && p.domain.is_nan() && p.in_domain == -1,
            "{p:?}"
        );
    }
    let ptrs: Vec<*const c_char> = inputs.iter().map(|s| s.as_ptr()).collect();
    let mut out = vec![GARBAGE; ptrs.len()];
    let mut statuses = vec![LipoStatus::Internal; ptrs.len()];
    let s = unsafe {
        lipo_predict_detail_batch(
            model,
            ptrs.as_ptr(),
            ptrs.len(),
            out.as_mut_ptr(),
            statuses.as_mut_ptr(),
        )
    };
    assert_eq!(s, LipoStatus::Ok);
    assert!(statuses.iter().all(|&s| s == LipoStatus::Ok));
    for (p, want) in out.iter().zip(&f.expected) {
        assert!((p.value - want).abs() < 1e-5, "{p:?} vs {want}");
        assert!(
            p.sd.is_nan() && p.domain.is_nan() && p.in_domain == -1,
            "{p:?}"
        );
    }
    let info = info_of(model);
    for key in [
        "members",
        "sd_scale",
        "domain_threshold",
        "domain_neighbours",
        "training_molecules",
        "out_of_fold_rmse",
    ] {
        assert!(info[key].is_null(), "{key}: {info}");
    }
    assert_eq!(info["canonical"], false, "{info}");
    let mut ei = LipoEnsembleInfo {
        members: 99,
        sd_scale: 0.0,
        domain_threshold: 0.0,
        domain_neighbours: 1,
        training_molecules: 1,
        out_of_fold_rmse: 0.0,
    };
    assert_eq!(
        unsafe { lipo_model_ensemble_info(model, &mut ei) },
        LipoStatus::Ok
    );
    assert_eq!(
        (ei.members, ei.domain_neighbours, ei.training_molecules),
        (0, 0, 0)
    );
    assert!(ei.sd_scale.is_nan() && ei.domain_threshold.is_nan() && ei.out_of_fold_rmse.is_nan());
    unsafe { lipo_model_close(model) };
}

#[test]
fn default_model_path_is_the_rust_default_bundle() {
    let mut path = std::ptr::null_mut();
    let s = unsafe { lipo_default_model_path(&mut path) };
    // This process's environment decides (LIPO_DEFAULT_BUNDLE, or the shipped bundle when
    // it is there); the examples below check both cases in child processes.
    match lipo::bundle::default_bundle() {
        Some(want) => {
            assert_eq!(s, LipoStatus::Ok, "{}", last_error());
            let got = unsafe { CStr::from_ptr(path) }
                .to_str()
                .unwrap()
                .to_string();
            unsafe { lipo_string_free(path) };
            assert_eq!(Path::new(&got), want);
        }
        None => {
            assert_eq!(s, LipoStatus::Model);
            assert!(path.is_null());
            assert!(
                last_error().contains("LIPO_DEFAULT_BUNDLE"),
                "{}",
                last_error()
            );
        }
    }
    assert_eq!(
        unsafe { lipo_default_model_path(std::ptr::null_mut()) },
        LipoStatus::InvalidArgument
    );
}

/// Runs a predict example with no model argument and the ensemble as `LIPO_DEFAULT_BUNDLE`:
/// value ± sd and the domain on standard output, the library's message for `not_a_smiles` on
/// standard error, exit status 1. Without any default bundle, it says what to set and exits 2.
fn check_default_ensemble(cmd: impl Fn() -> Command) {
    let e = ensemble();
    let out = run(cmd()
        .args(SMILES)
        .arg("not_a_smiles")
        .env("LIPO_DEFAULT_BUNDLE", &e.bundle));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    check_detail_output(&out.stdout, &e.expected);
    assert!(err.contains("invalid SMILES \"not_a_smiles\""), "{err}");
    // Without LIPO_DEFAULT_BUNDLE: the shipped predictor, with its sd and domain.
    let out = run(cmd().arg("CCO").env_remove("LIPO_DEFAULT_BUNDLE"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim_end().split('\t').collect();
    assert_eq!(fields[0], "CCO", "{text}");
    assert!(
        fields[1].contains(" ± ") && fields[2].ends_with("domain"),
        "{text}"
    );
    // A default that is not there is a clear error.
    let out = run(cmd()
        .arg("CCO")
        .env("LIPO_DEFAULT_BUNDLE", "/nonexistent/x.lipo"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        out.stdout.is_empty() && err.contains("/nonexistent/x.lipo"),
        "{err}"
    );
}

/// Runs a predict example on SMILES plus `not_a_smiles`: predictions on standard output, the
/// library's message on standard error, exit status 1.
fn check_predicts_and_names_bad_smiles(exe: &Path, f: &Fixture) {
    let out = run(Command::new(exe)
        .arg(&f.bundle)
        .args(SMILES)
        .arg("not_a_smiles"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    check_output(&out.stdout, &f.expected);
    assert!(
        err.contains("not_a_smiles\terror (invalid SMILES): invalid SMILES \"not_a_smiles\""),
        "{err}"
    );
}

#[test]
fn c_example_predicts_from_arguments_and_stdin_and_prints_the_error() {
    let f = fixture();
    let exe = f.dir.path().join("predict_c");
    build_c("examples/predict.c", &full_library(), &exe);
    check_predicts_and_names_bad_smiles(&exe, f);
    check_default_ensemble(|| Command::new(&exe));
    let mut child = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .arg(&f.bundle)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", SMILES.join("\n")).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    check_output(&out.stdout, &f.expected);
}

/// Checks lipo.hpp's ensemble calls; args: ENSEMBLE SINGLE SMILES... (LIPO_DEFAULT_BUNDLE set
/// to ENSEMBLE). Prints the ensemble's predict_detail_batch of SMILES[0], two bad entries and
/// the rest, one "status value sd domain in_domain" line each (-1 for what is missing); any
/// other failed check exits with its line number.
const CPP_DETAIL: &str = r#"
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>
#include "lipo.hpp"
#define CHECK(c) do { if (!(c)) { std::fprintf(stderr, "line %d: %s\n", __LINE__, #c); return __LINE__; } } while (0)
int main(int argc, char **argv) {
    lipo::Model ens(argv[1]), single(argv[2]);
    std::vector<std::string> smiles(argv + 3, argv + argc);
    auto info = ens.ensemble_info();
    CHECK(info && info->members == 3 && info->domain_threshold > 0 && info->sd_scale > 0);
    CHECK(!single.ensemble_info());
    CHECK(ens.info_json().find("\"members\":3") != std::string::npos);
    lipo::Prediction p = ens.predict_detail(smiles[0]);
    CHECK(p.ok() && p.has_uncertainty() && *p.sd > 0);
    CHECK(*p.in_domain == (*p.domain <= info->domain_threshold));
    CHECK(p.value == ens.predict(smiles[0]));
    lipo::Prediction q = single.predict_detail(smiles[0]);
    CHECK(q.ok() && !q.has_uncertainty() && !q.domain && !q.in_domain && std::isfinite(q.value));
    CHECK(lipo::default_model_path() == argv[1]);
    CHECK(lipo::Model::open_default().predict_detail(smiles[0]).value == p.value);
    try {
        ens.predict_detail("C)C(");
        CHECK(false);
    } catch (const lipo::Error &e) {
        CHECK(e.status() == LIPO_STATUS_INVALID_SMILES);
        CHECK(std::string(e.what()).find("C)C(") != std::string::npos);
    }
    try {
        ens.predict_detail(std::string("CCO\0junk", 8));
        CHECK(false);
    } catch (const lipo::Error &e) {
        CHECK(e.status() == LIPO_STATUS_INVALID_SMILES);
    }
    for (const auto &r : single.predict_detail_batch(smiles)) CHECK(r.ok() && !r.has_uncertainty());
    std::vector<std::string> batch = smiles;
    batch.insert(batch.begin() + 1, {"not_a_smiles", std::string("CCO\0junk", 8)});
    for (const auto &r : ens.predict_detail_batch(batch)) {
        CHECK(r.has_uncertainty() == r.ok());
        std::printf("%d %.9g %.9g %.9g %d\n", (int)r.status, r.value, r.sd.value_or(-1),
                    r.domain.value_or(-1), r.in_domain ? (int)*r.in_domain : -1);
    }
    return 0;
}
"#;

#[test]
fn cpp_example_builds_from_an_installed_prefix_with_pkg_config() {
    let f = fixture();
    let prefix = f.dir.path().join("prefix");
    check(
        Command::new("bash")
            .arg(root().join("scripts/install.sh"))
            .arg(&prefix)
            .arg(full_library()),
    );
    // The installed front hands other commands to the full binary in libexec/lipo.
    let out = check(
        Command::new(prefix.join("bin/lipo"))
            .arg("--version")
            .env_remove("LIPO_FULL_EXE"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lipo 0.1.0");
    assert!(prefix.join("libexec/lipo/lipo").is_file());
    let pc = prefix.join("lib/pkgconfig");
    let flags = check(
        Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", &pc)
            .args(["--cflags", "--libs", "lipo"]),
    );
    let flags = String::from_utf8(flags.stdout).unwrap();
    let exe = f.dir.path().join("predict_cpp");
    check(
        Command::new("c++")
            .args(["-std=c++17", "-Wall", "-Werror"])
            .arg(root().join("examples/predict.cpp"))
            .args(flags.split_whitespace())
            .arg("-o")
            .arg(&exe),
    );
    check_predicts_and_names_bad_smiles(&exe, f);
    check_default_ensemble(|| Command::new(&exe));
    // A SMILES with a NUL byte is refused by the wrapper, not cut short to "CCO".
    let mut child = Command::new(&exe)
        .arg(&f.bundle)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env_remove("LD_LIBRARY_PATH")
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"CCO\0junk\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{err}");
    assert!(
        err.contains("invalid SMILES") && err.contains("NUL"),
        "{err}"
    );
    // The binding's ensemble calls, through a small program built the same way.
    let source = f.dir.path().join("detail.cpp");
    std::fs::write(&source, CPP_DETAIL).unwrap();
    let exe = f.dir.path().join("detail_cpp");
    check(
        Command::new("c++")
            .args(["-std=c++17", "-Wall", "-Werror"])
            .arg(&source)
            .args(flags.split_whitespace())
            .arg("-o")
            .arg(&exe),
    );
    let e = ensemble();
    let out = check(
        Command::new(&exe)
            .arg(&e.bundle)
            .arg(&f.bundle)
            .args(SMILES)
            .env("LIPO_DEFAULT_BUNDLE", &e.bundle),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // The batch: SMILES[0], two bad entries, then the rest; each "status value sd domain in".
    assert_eq!(lines.len(), SMILES.len() + 2, "{text}");
    let rows: Vec<Vec<f64>> = lines
        .iter()
        .map(|l| l.split(' ').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        rows[1][0],
        LipoStatus::InvalidSmiles as i32 as f64,
        "{text}"
    );
    assert_eq!(
        rows[2][0],
        LipoStatus::InvalidSmiles as i32 as f64,
        "{text}"
    );
    assert!(
        rows[1][1].is_nan() && rows[1][2] == -1.0 && rows[1][4] == -1.0,
        "{text}"
    );
    let good = std::iter::once(&rows[0]).chain(&rows[3..]);
    for (r, want) in good.zip(&e.expected) {
        assert_eq!(r[0], 0.0, "{text}");
        assert!((r[1] - want.value).abs() < 1e-4, "{text}");
        assert!((r[2] - want.sd.unwrap()).abs() < 1e-4, "{text}");
        assert!((r[3] - want.domain.unwrap()).abs() < 1e-4, "{text}");
        assert_eq!(r[4], f64::from(u8::from(want.in_domain.unwrap())), "{text}");
    }
    // The same examples through the CMake package, where CMake is installed.
    if Command::new("cmake").arg("--version").output().is_ok() {
        let build = f.dir.path().join("cmake-build");
        check(
            Command::new("cmake")
                .arg("-S")
                .arg(root().join("examples"))
                .arg("-B")
                .arg(&build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())),
        );
        check(Command::new("cmake").arg("--build").arg(&build));
        let out = run(Command::new(build.join("predict_cpp"))
            .arg(&f.bundle)
            .args(SMILES));
        assert!(out.status.success());
        check_output(&out.stdout, &f.expected);
    } else {
        eprintln!("cmake is not installed: the CMake package was not exercised");
    }
}

#[test]
fn c_training_example_cancels_resumes_exports_and_predicts() {
    let f = fixture();
    let exe = f.dir.path().join("train_c");
    build_c("examples/train.c", &full_library(), &exe);
    let table = f.dir.path().join("toy.csv");
    common::write_toy_table(&table, 40);
    let work = f.dir.path().join("c-train");
    let out = run(Command::new(&exe).arg(&table).arg(&work).arg("2").arg("3"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("cancelled after 3 steps"), "{text}");
    let out = check(Command::new(&exe).arg(&table).arg(&work).arg("2"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"event\":\"epoch\""), "{text}");
    assert!(text.contains("not_a_smiles\tinvalid SMILES"), "{text}");
    assert!(
        text.contains("first failure: molecule 1: invalid SMILES"),
        "{text}"
    );
    let preds: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("c1ccccc1Cl\t") || l.starts_with("CCO\t"))
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(preds.len(), 2, "{text}");
    assert!(preds.iter().all(|p| p.is_finite()));
    assert!(work.join("model.lipo/model.onnx").is_file());
}

#[test]
fn python_binding_tests_pass() {
    let f = fixture();
    let table = f.dir.path().join("py-toy.csv");
    common::write_toy_table(&table, 40);
    let expected: serde_json::Map<String, serde_json::Value> = SMILES
        .iter()
        .zip(&f.expected)
        .map(|(s, v)| (s.to_string(), (*v).into()))
        .collect();
    let e = ensemble();
    let ensemble_expected: serde_json::Map<String, serde_json::Value> = SMILES
        .iter()
        .zip(&e.expected)
        .map(|(s, p)| {
            let v = serde_json::json!([p.value, p.sd, p.domain, p.in_domain]);
            (s.to_string(), v)
        })
        .collect();
    let out = run(Command::new("python3")
        .args(["-m", "unittest", "-v", "test_lipo"])
        .current_dir(root().join("bindings/python/tests"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("LIPO_LIBRARY", full_library())
        .env("LIPO_TEST_BUNDLE", &f.bundle)
        .env("LIPO_TEST_ENSEMBLE", &e.bundle)
        .env(
            "LIPO_TEST_ENSEMBLE_EXPECTED",
            serde_json::json!({"info": {"members": e.info.members,
                                        "domain_threshold": e.info.domain_threshold},
                               "predictions": ensemble_expected})
            .to_string(),
        )
        .env("LIPO_TEST_TABLE", &table)
        .env(
            "LIPO_TEST_EXPECTED",
            serde_json::Value::Object(expected).to_string(),
        ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("skipped"), "{err}");
}

#[test]
fn valgrind_sees_no_leaks_or_invalid_accesses_in_the_c_example() {
    let f = fixture();
    let lib = inference_library();
    let exe = f.dir.path().join("predict_c_infer");
    build_c("examples/predict.c", &lib, &exe);
    let log = f.dir.path().join("valgrind.log");
    let out = run(Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--error-exitcode=99",
        ])
        .arg(format!(
            "--suppressions={}",
            root().join("tests/valgrind/onnxruntime.supp").display()
        ))
        .arg(format!("--log-file={}", log.display()))
        .arg(&exe)
        .arg(&f.bundle)
        .args(&SMILES[..2])
        .arg("not_a_smiles"));
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{report}");
    check_output(&out.stdout, &f.expected[..2]);
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
    assert!(!report.contains("Invalid read") && !report.contains("Invalid write"));
    assert!(report.contains("definitely lost: 0 bytes"), "{report}");
    // The ensemble, opened as the default bundle (lipo_default_model_path, a string to free).
    let e = ensemble();
    let log = f.dir.path().join("valgrind-ensemble.log");
    let out = run(Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--error-exitcode=99",
        ])
        .arg(format!(
            "--suppressions={}",
            root().join("tests/valgrind/onnxruntime.supp").display()
        ))
        .arg(format!("--log-file={}", log.display()))
        .arg(&exe)
        .args(&SMILES[..2])
        .arg("not_a_smiles")
        .env("LIPO_DEFAULT_BUNDLE", &e.bundle));
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{report}");
    check_detail_output(&out.stdout, &e.expected[..2]);
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
    assert!(report.contains("definitely lost: 0 bytes"), "{report}");
}

#[test]
fn inference_only_library_has_no_libtorch() {
    let lib = inference_library();
    let out = check(Command::new("readelf").arg("-d").arg(&lib));
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(!dynamic.contains("libtorch"), "{dynamic}");
    let size = std::fs::metadata(&lib).unwrap().len();
    eprintln!(
        "inference-only {}: {:.1} MB",
        lib.display(),
        size as f64 / 1e6
    );
}

/// `lipo_explain` on a member of the tiny ensemble (a run folder with its model): the JSON of
/// an explanation, and status codes for bad input.
#[test]
fn explain_through_the_c_abi() {
    let e = ensemble();
    let run = lipo::model::ensemble_files::member_dir(&e.dir.path().join("ens"), 0);
    let model = lipo::model::ensemble_files::member_model(&e.dir.path().join("ens"), 0);
    let (model_c, run_c) = (
        cstring(model.to_str().unwrap()),
        cstring(run.to_str().unwrap()),
    );
    let mut json: *mut c_char = std::ptr::null_mut();
    let _g = common::lock();
    let status = unsafe {
        lipo_explain(
            model_c.as_ptr(),
            run_c.as_ptr(),
            cstring("c1ccccc1CCO").as_ptr(),
            3,
            &mut json,
        )
    };
    assert_eq!(status, LipoStatus::Ok, "{}", last_error());
    let text = unsafe { CStr::from_ptr(json) }
        .to_str()
        .unwrap()
        .to_string();
    unsafe { lipo_string_free(json) };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["smiles"], "c1ccccc1CCO");
    assert!(v["prediction"].as_f64().unwrap().is_finite());
    assert_eq!(v["neighbours"].as_array().unwrap().len(), 3);
    let listed = v["positive"].as_array().unwrap().len() + v["negative"].as_array().unwrap().len();
    assert!((1..=6).contains(&listed), "{text}");
    // Bad input: an invalid SMILES, a missing run folder, a NULL output.
    let status = unsafe {
        lipo_explain(
            model_c.as_ptr(),
            run_c.as_ptr(),
            cstring("C1CC").as_ptr(),
            3,
            &mut json,
        )
    };
    assert_eq!(status, LipoStatus::InvalidSmiles);
    assert!(json.is_null() && last_error().contains("C1CC"));
    let missing = cstring("/nonexistent/run");
    let status = unsafe {
        lipo_explain(
            model_c.as_ptr(),
            missing.as_ptr(),
            cstring("CCO").as_ptr(),
            3,
            &mut json,
        )
    };
    assert_ne!(status, LipoStatus::Ok);
    assert!(
        last_error().contains("/nonexistent/run"),
        "{}",
        last_error()
    );
    let status = unsafe {
        lipo_explain(
            model_c.as_ptr(),
            run_c.as_ptr(),
            cstring("CCO").as_ptr(),
            3,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, LipoStatus::InvalidArgument);
}

/// The light `lipo` of the inference-only build: it predicts with a bundle without libtorch,
/// exactly as the full binary does, and hands every other command to the full binary.
#[test]
fn light_front_predicts_without_libtorch_and_hands_over_the_rest() {
    let f = fixture();
    let light = inference_library().with_file_name("lipo");
    let full = Path::new(env!("CARGO_BIN_EXE_lipo"));
    let out = check(Command::new("readelf").arg("-d").arg(&light));
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(!dynamic.contains("libtorch"), "{dynamic}");
    let input = f.dir.path().join("front.smi");
    std::fs::write(&input, format!("{}\nnot_a_smiles\n", SMILES.join("\n"))).unwrap();
    let predict = |exe: &Path| {
        check(
            Command::new(exe)
                .args(["--threads", "1", "predict", "--model"])
                .arg(&f.bundle)
                .arg("--input")
                .arg(&input)
                .env_remove("LIPO_FULL_EXE"),
        )
        .stdout
    };
    let csv = String::from_utf8(predict(&light)).unwrap();
    assert_eq!(csv, String::from_utf8(predict(full)).unwrap());
    let values: Vec<f64> = csv
        .lines()
        .skip(1)
        .take(SMILES.len())
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    for (v, e) in values.iter().zip(&f.expected) {
        assert!((v - e).abs() < 1e-5, "{v} vs {e}");
    }
    assert!(
        csv.contains("not_a_smiles,,") && csv.contains("invalid SMILES"),
        "{csv}"
    );
    // Other commands run in the full binary, with their arguments and exit status.
    let out = check(
        Command::new(&light)
            .arg("--version")
            .env("LIPO_FULL_EXE", full),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lipo 0.1.0");
    let out = run(Command::new(&light)
        .args(["finetune", "--epochs", "0"])
        .env("LIPO_FULL_EXE", full));
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap's usage error of the full binary"
    );
    // Without a full binary, the front says what it is and where it looked.
    let out = run(Command::new(&light)
        .args(["finetune", "--data", "x.csv"])
        .env_remove("LIPO_FULL_EXE"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("inference-only front") && err.contains("libexec/lipo/lipo"),
        "{err}"
    );
}

#[test]
fn python_and_rust_examples_predict_and_name_the_bad_smiles() {
    let f = fixture();
    let python = run(Command::new("python3")
        .arg(root().join("examples/predict.py"))
        .arg(&f.bundle)
        .args(SMILES)
        .arg("not_a_smiles")
        .env("PYTHONPATH", root().join("bindings/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("LIPO_LIBRARY", full_library()));
    // `cargo test` builds the examples beside the test binaries' folder.
    let rust_example = deps_dir().join("../examples/predict");
    assert!(
        rust_example.is_file(),
        "{} is missing: plain `cargo test --release` builds it (or `cargo build --release --examples`)",
        rust_example.display()
    );
    let rust = run(Command::new(rust_example)
        .arg(&f.bundle)
        .args(SMILES)
        .arg("not_a_smiles"));
    for out in [python, rust] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        check_output(&out.stdout, &f.expected);
        assert!(err.contains("invalid SMILES \"not_a_smiles\""), "{err}");
    }
    check_default_ensemble(|| {
        let mut c = Command::new("python3");
        c.arg(root().join("examples/predict.py"))
            .env("PYTHONPATH", root().join("bindings/python"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("LIPO_LIBRARY", full_library());
        c
    });
    check_default_ensemble(|| Command::new(deps_dir().join("../examples/predict")));
}

unsafe extern "C" fn count_steps(event: *const c_char, user: *mut std::ffi::c_void) -> i32 {
    let text = CStr::from_ptr(event).to_str().unwrap();
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    if v["event"] == "step" {
        *(user as *mut u64) += 1;
    }
    0
}

fn train_job(job: &serde_json::Value) -> (u64, serde_json::Value) {
    let text = cstring(&job.to_string());
    let mut steps = 0u64;
    let mut report = std::ptr::null_mut();
    let s = {
        let _g = common::lock();
        unsafe {
            lipo_train(
                text.as_ptr(),
                Some(count_steps),
                (&mut steps as *mut u64).cast(),
                &mut report,
            )
        }
    };
    assert_eq!(s, LipoStatus::Ok, "{}", last_error());
    let r = unsafe { CStr::from_ptr(report) }
        .to_str()
        .unwrap()
        .to_string();
    unsafe { lipo_string_free(report) };
    (steps, serde_json::from_str(&r).unwrap())
}

#[test]
fn train_runs_mlm_and_peft_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("toy.csv");
    common::write_toy_table(&table, 40);
    let tiny = serde_json::json!({"hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 64, "num_random_features": 16});
    let (steps, r) = train_job(&serde_json::json!({
        "command": "mlm", "out": dir.path().join("mlm"), "device": "cpu", "threads": 1,
        "run": {"corpus": table, "init": {"random": tiny},
                "mlm": {"max_steps": 4, "batch_size": 8, "valid_size": 8, "warmup_steps": 1,
                        "eval_every": 2, "checkpoint_every": 2}}
    }));
    assert_eq!(r["command"], "mlm");
    assert_eq!(r["report"]["steps"], 4);
    assert_eq!(steps, 4);
    let mlm_model = r["model"].as_str().unwrap().to_string();
    assert!(Path::new(&mlm_model).join("config.json").is_file());
    // LoRA on the MLM model, exported with its adapters merged.
    let (steps, r) = train_job(&serde_json::json!({
        "command": "finetune", "out": dir.path().join("lora"), "device": "cpu", "threads": 1,
        "export": dir.path().join("lora.lipo"),
        "run": {"data": table, "init": {"model": mlm_model},
                "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3,
                          "peft": {"method": "lora", "r": 4}}}
    }));
    assert!(steps > 0);
    assert_eq!(r["report"]["peft"]["method"], "lora");
    assert_eq!(r["report"]["peft"]["r"], 4);
    let bundle = r["bundle"].as_str().unwrap();
    let model = open(Path::new(bundle), "{}");
    let mut v = f64::NAN;
    let cco = cstring("CCO");
    assert_eq!(
        unsafe { lipo_predict(model, cco.as_ptr(), &mut v) },
        LipoStatus::Ok
    );
    assert!(v.is_finite());
    unsafe { lipo_model_close(model) };
}

#[test]
fn train_runs_a_graph_model_job_and_predicts_with_its_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("toy.csv");
    common::write_toy_table(&table, 40);
    let (steps, r) = train_job(&serde_json::json!({
        "command": "finetune", "out": dir.path().join("graph"), "device": "cpu", "threads": 1,
        "export": dir.path().join("graph.lipo"),
        "run": {"data": table, "init": {"graph": {"hidden": 16, "depth": 2, "ffn_hidden": 8}},
                "train": {"epochs": 2, "batch_size": 8, "lr": 3e-3, "schedule": "noam"}}
    }));
    assert!(steps > 0);
    let bundle = r["bundle"].as_str().unwrap();
    assert!(!Path::new(bundle).join("tokenizer.json").exists());
    let model = open(Path::new(bundle), "{}");
    let mut info = std::ptr::null_mut();
    assert_eq!(unsafe { lipo_model_info(model, &mut info) }, LipoStatus::Ok);
    let text = unsafe { CStr::from_ptr(info) }
        .to_str()
        .unwrap()
        .to_string();
    unsafe { lipo_string_free(info) };
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["graph"], true, "{info}");
    let (mut a, mut b) = (f64::NAN, f64::NAN);
    let (x, y) = (cstring("CC(=O)Nc1ccc(O)cc1"), cstring("Oc1ccc(NC(C)=O)cc1"));
    assert_eq!(
        unsafe { lipo_predict(model, x.as_ptr(), &mut a) },
        LipoStatus::Ok
    );
    assert_eq!(
        unsafe { lipo_predict(model, y.as_ptr(), &mut b) },
        LipoStatus::Ok
    );
    assert!(a.is_finite() && (a - b).abs() < 1e-6, "{a} {b}");
    let bad = cstring("C1CC");
    assert_eq!(
        unsafe { lipo_predict(model, bad.as_ptr(), &mut a) },
        LipoStatus::InvalidSmiles
    );
    assert!(last_error().contains("C1CC"), "{}", last_error());
    unsafe { lipo_model_close(model) };
}
