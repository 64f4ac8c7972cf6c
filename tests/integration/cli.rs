//! The command line end to end on generated data: finetune, evaluate, predict (with a bad
//! SMILES), embed; and clear errors for bad input.

use std::process::Command;

use crate::common;

fn lipo() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lipo"));
    c.arg("--threads").arg("1");
    c
}

fn write_table(path: &std::path::Path) {
    let mut s = String::from("id,smiles,logD\n");
    let frags = ["C", "O", "N", "c1ccccc1", "C(Cl)", "C(=O)", "CC"];
    let mut rng = lipo::rng::SplitMix64::new(5);
    for i in 0..50 {
        let mut smi = String::new();
        for _ in 0..(2 + rng.below(4)) {
            smi.push_str(frags[rng.below(frags.len() as u64) as usize]);
        }
        s.push_str(&format!("m{i},{smi},{:.2}\n", smi.len() as f64 / 5.0));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn finetune_evaluate_predict_embed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    write_table(&data);
    let out = dir.path().join("run");
    let o = lipo()
        .args([
            "finetune",
            "--arch",
            "tiny",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--label-col",
            "logD",
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("RMSE") && stdout.contains("molecules/s"),
        "{stdout}"
    );
    let model = out.join("model");

    let o = lipo()
        .args(["evaluate", "--label-col", "logD", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--run")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["n"], 10);
    // Another table with the run: refused, not scored on unrelated rows.
    let other = dir.path().join("other.csv");
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(&other, lines.join("\n") + "\n").unwrap();
    let o = lipo()
        .args(["evaluate", "--label-col", "logD", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&other)
        .arg("--run")
        .arg(&out)
        .output()
        .unwrap();
    let e = failure(&o);
    assert!(
        e.contains("other.csv") && e.contains("not the table"),
        "{e}"
    );

    let input = dir.path().join("in.csv");
    std::fs::write(&input, "smiles\nCCO\nnot_a_smiles\nc1ccccc1Cl\n").unwrap();
    let preds = dir.path().join("p.csv");
    let o = lipo()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&preds)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&preds).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "line,smiles,logD,error");
    assert!(
        lines[1].starts_with("2,CCO,") && lines[1].ends_with(','),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("not_a_smiles") && lines[2].contains("is not SMILES"),
        "{}",
        lines[2]
    );
    assert_eq!(lines.len(), 4);

    let npy = dir.path().join("e.npy");
    let smi = dir.path().join("in.smi");
    std::fs::write(&smi, "CCO ethanol\nc1ccccc1\n").unwrap();
    let o = lipo()
        .args(["embed", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&smi)
        .arg("--out")
        .arg(&npy)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let arr: ndarray::Array2<f32> = ndarray_npy::read_npy(&npy).unwrap();
    assert_eq!(arr.shape(), &[2, 32]);
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.csv");
    std::fs::write(&data, "smiles,exp\nCCO,1\nCCN,\n").unwrap();
    let o = lipo()
        .args(["finetune", "--arch", "tiny", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.csv:3") && err.contains("is not a number"),
        "{err}"
    );

    let o = lipo()
        .args(["predict", "--model"])
        .arg(dir.path().join("nope"))
        .args(["--input", "-"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("config.json"));

    let o = lipo()
        .args(["finetune", "--arch", "huge", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("r2"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("--arch"));
    let o = lipo()
        .args(["finetune", "--device", "tpu", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("r3"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("--device"));
}

#[test]
fn study_without_data_says_which_file_goes_where() {
    let dir = tempfile::tempdir().unwrap();
    let o = lipo()
        .args(["study", "--quick", "--out"])
        .arg(dir.path().join("study"))
        .env("LIPO_DATA_DIR", dir.path())
        .env("LIPO_DEFAULT_MODEL", dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let want = dir.path().join("lipophilicity.csv").display().to_string();
    assert!(
        err.contains(&want) && err.contains("lipo data fetch") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::write(dir.path().join("lipophilicity.csv"), "smiles,exp\nCCO,1\n").unwrap();
    let o = lipo()
        .args(["study", "--quick", "--out"])
        .arg(dir.path().join("study"))
        .env("LIPO_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("external.csv") && err.contains("SMILES,Label"),
        "{err}"
    );
    // Without LIPO_DATA_DIR and flags, the message names both ways to give the data.
    let o = lipo()
        .args(["study", "--quick"])
        .env_remove("LIPO_DATA_DIR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("LIPO_DATA_DIR") && err.contains("--data"),
        "{err}"
    );
}

#[test]
fn compare_peft_writes_its_config_and_repeats_it_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    write_table(&data);
    let run = |args: &[&str], out: &std::path::Path| {
        let o = lipo()
            .arg("compare-peft")
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let json = std::fs::read_to_string(out.join("comparison.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        // Methods and test metrics (timings differ between runs).
        let rows: Vec<_> = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["method"].clone(), r["test"].clone()))
            .collect();
        rows
    };
    let first = dir.path().join("first");
    let rows = run(
        &[
            "--arch",
            "tiny",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--label-col",
            "logD",
            "--data",
            data.to_str().unwrap(),
        ],
        &first,
    );
    let config = first.join("compare_config.json");
    assert!(config.is_file());
    let again = run(
        &["--device", "cpu", "--config", config.to_str().unwrap()],
        &dir.path().join("again"),
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(rows, again);
}

#[test]
fn enumerate_writes_random_smiles_of_the_same_molecules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    std::fs::write(
        &data,
        "smiles,exp\nCC(=O)Nc1ccc(O)cc1,0.5\nC[C@H](N)C(=O)O,-1.0\nF[C@TH1](Cl)(Br)I,2.0\n",
    )
    .unwrap();
    let out = dir.path().join("variants.csv");
    let o = lipo()
        .args(["enumerate", "--copies", "4", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 kept as given"));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 12);
    for r in &rows {
        assert_eq!(
            lipo::dedupe::graph_key(r[3]),
            lipo::dedupe::graph_key(r[1]),
            "{r:?}"
        );
    }
    // The centre with an extended chirality class is repeated as given.
    assert!(rows[8..].iter().all(|r| r[3] == "F[C@TH1](Cl)(Br)I"));
    assert!(rows[..4].iter().any(|r| r[3] != r[1]));
}

/// A random tiny regression model saved as a model folder in `dir`.
fn tiny_model(dir: &std::path::Path) -> std::path::PathBuf {
    let m = dir.join("m");
    common::regression_model(lipo::model::Config::tiny(), 0)
        .save(&m)
        .unwrap();
    m
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The standard error of a command that must have failed.
fn failure(o: &std::process::Output) -> String {
    let e = stderr_of(o);
    assert!(!o.status.success(), "succeeded: {e}");
    e
}

#[test]
fn outputs_never_destroy_inputs_or_files_lipo_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("big.csv");
    write_table(&data);
    let before = std::fs::read(&data).unwrap();
    let model = tiny_model(d);

    // predict --out onto its own input: refused, the input untouched.
    let o = lipo()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&data)
        .arg("--out")
        .arg(&data)
        .output()
        .unwrap();
    let e = failure(&o);
    assert!(e.contains("--out"), "{e}");
    assert_eq!(std::fs::read(&data).unwrap(), before);

    // export beside an unrelated best.old/, twice, then into a bundle with a file of ours.
    std::fs::create_dir_all(d.join("best.old")).unwrap();
    std::fs::write(d.join("best.old/keep"), "mine").unwrap();
    let export = |out: &std::path::Path| {
        lipo()
            .args(["export", "--model"])
            .arg(&model)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let bundle = d.join("best.lipo");
    for _ in 0..2 {
        let o = export(&bundle);
        assert!(o.status.success(), "{}", stderr_of(&o));
    }
    assert!(d.join("best.old/keep").is_file());
    std::fs::write(bundle.join("notes.txt"), "mine").unwrap();
    let o = export(&bundle);
    let e = failure(&o);
    assert!(e.contains("notes.txt"), "{e}");
    assert!(bundle.join("notes.txt").is_file() && bundle.join("model.onnx").is_file());
    let o = export(&bundle.join("model.onnx"));
    assert!(!o.status.success());
    assert!(bundle.join("model.onnx").is_file());

    // finetune into a folder lipo did not make: refused, its files kept.
    let theirs = d.join("theirs");
    std::fs::create_dir_all(theirs.join("model")).unwrap();
    std::fs::write(theirs.join("model/weights.bin"), "mine").unwrap();
    let o = lipo()
        .args([
            "finetune",
            "--arch",
            "tiny",
            "--epochs",
            "1",
            "--label-col",
            "logD",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&theirs)
        .output()
        .unwrap();
    let e = failure(&o);
    assert!(e.contains("not made by lipo"), "{e}");
    assert!(theirs.join("model/weights.bin").is_file());
    assert!(!theirs.join("run.json").exists());

    // --threads 0: a clear error, no panic.
    let o = Command::new(env!("CARGO_BIN_EXE_lipo"))
        .args(["--threads", "0", "predict", "--input", "-", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    let e = failure(&o);
    assert!(e.contains("--threads") && !e.contains("panicked"), "{e}");
}

#[test]
fn invalid_smiles_get_an_error_never_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let bundle = dir.path().join("m.lipo");
    let o = lipo()
        .args(["export", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let bad = [
        "C)C(", "CC(C", "((((", "1", "c1ccccc", "C1CC", "[Xx]", "C==C", "CC(=O", "N#", "=C", "C.",
    ];
    let input = dir.path().join("bad.smi");
    std::fs::write(&input, format!("CCO\n{}\n", bad.join("\n"))).unwrap();
    for m in [&model, &bundle] {
        let o = lipo()
            .args(["predict", "--model"])
            .arg(m)
            .arg("--input")
            .arg(&input)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr_of(&o));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 1 + bad.len(), "{text}");
        assert!(!rows[0][2].is_empty() && rows[0][3].is_empty(), "{text}");
        for (r, s) in rows[1..].iter().zip(bad) {
            assert_eq!(&r[1], s);
            assert!(r[2].is_empty(), "{s} got a number: {text}");
            assert!(r[3].contains("position"), "{s}: {}", &r[3]);
        }
    }
}

#[test]
fn a_table_with_extra_fields_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("comma.csv");
    std::fs::write(&data, "smiles,exp\nCCO,1.5\nCCN,3,54\nCCC,2\n").unwrap();
    let o = lipo()
        .args(["finetune", "--arch", "tiny", "--epochs", "1", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let e = failure(&o);
    assert!(e.contains("comma.csv:3") && e.contains("3 fields"), "{e}");
}

/// The numbers of a finished run that do not depend on timing.
fn outcome(run: &std::path::Path) -> (serde_json::Value, String) {
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    for k in ["train_mols_per_s", "wall_seconds", "memory"] {
        m.as_object_mut().unwrap().remove(k);
    }
    for e in m["history"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("train_seconds");
    }
    let preds = std::fs::read_to_string(run.join("test_predictions.csv")).unwrap();
    (m, preds)
}

#[test]
fn kill_nine_at_ten_moments_then_resume_gives_the_uninterrupted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    write_table(&data);
    let finetune = |out: &std::path::Path| {
        let mut c = lipo();
        c.args([
            "finetune",
            "--arch",
            "tiny",
            "--epochs",
            "4",
            "--label-col",
            "logD",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        c
    };
    let reference = dir.path().join("reference");
    let t0 = std::time::Instant::now();
    assert!(finetune(&reference).status().unwrap().success());
    let full = t0.elapsed();

    let run = dir.path().join("killed");
    let mut rng = lipo::rng::SplitMix64::new(7);
    for _ in 0..10 {
        let mut child = finetune(&run).spawn().unwrap();
        // Each call reloads libtorch and resumes, so the moments spread over the whole run.
        let at = full.mul_f64(0.6 * rng.next_f64());
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let o = finetune(&run)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert_eq!(outcome(&run), outcome(&reference));
    assert!(!run.join("checkpoint").exists() && !run.join("checkpoint-previous").exists());
}
