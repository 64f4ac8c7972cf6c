//! `include/lipo.h` is generated from src/ffi by cbindgen: a header that no longer matches
//! the Rust source fails here. `LIPO_BLESS=1 cargo test --release --test header` rewrites it.

use std::path::Path;

fn generate() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    // src/ffi/mod.rs only: cbindgen follows its `mod` lines to the other files, so giving
    // those files as well would declare their functions twice.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_after_include(format!(
            "\n/** lipo's version when this header was generated. */\n#define LIPO_VERSION_STRING \"{}\"",
            env!("CARGO_PKG_VERSION")
        ))
        .with_src(root.join("src/ffi/mod.rs"));
    let mut out = Vec::new();
    builder
        .generate()
        .expect("cbindgen could not parse src/ffi")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn header_matches_the_rust_source() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/lipo.h");
    let fresh = generate();
    if std::env::var_os("LIPO_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/lipo.h is stale: run `LIPO_BLESS=1 cargo test --release --test header` and commit it"
    );
}

#[test]
fn header_documents_every_function() {
    let h = generate();
    for f in [
        "lipo_version",
        "lipo_abi_version",
        "lipo_last_error",
        "lipo_status_name",
        "lipo_string_free",
        "lipo_model_open",
        "lipo_model_open_with",
        "lipo_model_close",
        "lipo_model_info",
        "lipo_predict",
        "lipo_predict_batch",
        "lipo_predict_detail",
        "lipo_predict_detail_batch",
        "lipo_model_ensemble_info",
        "lipo_default_model_path",
        "lipo_train",
        "lipo_export",
    ] {
        let lines: Vec<&str> = h.lines().collect();
        let at = lines
            .iter()
            .position(|l| {
                l.contains(&format!("{f}("))
                    && !l.starts_with(|c: char| c.is_whitespace() || "/*#".contains(c))
            })
            .unwrap_or_else(|| panic!("{f} is not declared in the header"));
        assert!(
            at > 0 && lines[at - 1].trim() == "*/",
            "{f} has no doc comment right above it"
        );
    }
    let mut seen = std::collections::HashSet::new();
    for l in h
        .lines()
        .filter(|l| l.contains("lipo_") && l.contains('(') && !l.starts_with([' ', '/', '*', '#']))
    {
        assert!(seen.insert(l.to_string()), "declared twice: {l}");
    }
    assert!(h.contains("LIPO_STATUS_INVALID_SMILES"));
    assert!(h.contains("typedef struct LipoModel LipoModel;"));
}
