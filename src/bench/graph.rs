//! `lipo bench` on a graph model (`lipo finetune --model-kind graph`) or a graph ensemble:
//! molecules per second of tch eager and of ONNX Runtime on the same molecules at each batch
//! size, featurisation (SMILES → graph, in Rust) timed on its own, and the largest
//! difference between the two engines.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{row, BenchConfig, BenchRow};
use crate::data::{self, TableOptions};
use crate::error::{Error, Result};
use crate::export::Quantize;
use crate::graph::{featurize_smiles, GraphArrays, GraphModel, MolGraph};
use crate::infer::{Predictor, PredictorOptions};
use crate::model::ensemble_files;

/// The graph benchmark's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphBenchReport {
    /// The model (or ensemble) folder.
    pub model: PathBuf,
    /// The SMILES source.
    pub data: PathBuf,
    /// Molecules per timing.
    pub molecules: usize,
    /// Mean heavy atoms per molecule.
    pub mean_atoms: f64,
    /// CPU threads of tch.
    pub threads: usize,
    /// Intra-op threads of ONNX Runtime.
    pub ort_threads: usize,
    /// Passes per engine and batch size (the median is reported).
    pub repeats: usize,
    /// Every timing: `featurise` (SMILES to graphs, all molecules once per pass), `tch` and
    /// `ort` (one model: the folder, or an ensemble's first member), `ort-ensemble`.
    pub rows: Vec<BenchRow>,
    /// Largest |ort − tch| over the molecules (label units).
    pub max_abs_diff: f64,
}

/// Runs the graph benchmark; `bundle_dir` receives the exported bundles.
pub fn run(cfg: &BenchConfig, bundle_dir: &Path) -> Result<GraphBenchReport> {
    let threads = cfg.threads.max(1);
    let ort_threads = cfg.ort_threads.unwrap_or(threads).max(1);
    tch::set_num_threads(threads as i32);
    let ensemble = ensemble_files::is_ensemble(&cfg.model);
    let member = if ensemble {
        ensemble_files::member_model(&cfg.model, 0)
    } else {
        cfg.model.clone()
    };
    let model = GraphModel::load(&member, tch::Device::Cpu)?;
    let smiles = read_smiles(cfg)?;
    let featurise =
        || -> Result<Vec<MolGraph>> { smiles.iter().map(|s| featurize_smiles(s)).collect() };
    let graphs = featurise()?;
    let n = graphs.len();
    let mean_atoms = graphs.iter().map(|g| g.atoms).sum::<usize>() as f64 / n.max(1) as f64;
    let opts = PredictorOptions {
        threads: ort_threads,
        ..PredictorOptions::default()
    };
    let one = bundle_dir.join("bench-graph.lipo");
    crate::export::export_model_dir(&member, &one)?;
    let mut ort = vec![("ort", Predictor::open(&one, &opts)?)];
    if ensemble {
        let all = bundle_dir.join("bench-graph-ensemble.lipo");
        crate::export::export_model_dir_with(&cfg.model, &all, Quantize::None)?;
        ort.push(("ort-ensemble", Predictor::open(&all, &opts)?));
    }
    let refs: Vec<&MolGraph> = graphs.iter().collect();
    let mut rows = Vec::new();
    let mut max_abs_diff = 0f64;
    let mut feat_passes = Vec::new();
    for _ in 0..cfg.repeats {
        let t0 = Instant::now();
        std::hint::black_box(featurise()?);
        feat_passes.push(t0.elapsed().as_secs_f64());
    }
    rows.push(row("featurise", 0, n, feat_passes));
    for &bs in &cfg.batch_sizes {
        let mut tch_passes = Vec::new();
        let mut ort_passes = vec![Vec::new(); ort.len()];
        for _ in 0..cfg.repeats {
            let t0 = Instant::now();
            let want = model.predict(&refs, bs);
            tch_passes.push(t0.elapsed().as_secs_f64());
            for (e, (name, p)) in ort.iter().enumerate() {
                let t0 = Instant::now();
                let mut got = Vec::with_capacity(n);
                for chunk in refs.chunks(bs) {
                    got.extend(p.run_graph_batch(&GraphArrays::new(chunk))?.prediction);
                }
                ort_passes[e].push(t0.elapsed().as_secs_f64());
                if *name == "ort" {
                    for (a, b) in want.iter().zip(&got) {
                        max_abs_diff = max_abs_diff.max((a - *b as f64).abs());
                    }
                }
            }
        }
        rows.push(row("tch", bs, n, tch_passes));
        for ((name, _), p) in ort.iter().zip(ort_passes) {
            rows.push(row(name, bs, n, p));
        }
    }
    Ok(GraphBenchReport {
        model: cfg.model.clone(),
        data: cfg.data.clone(),
        molecules: n,
        mean_atoms,
        threads,
        ort_threads,
        repeats: cfg.repeats,
        rows,
        max_abs_diff,
    })
}

/// Writes the graphs of the benchmark's molecules, in table order, as safetensors for an
/// outside reference (`benches/eager_graph.py`): `atom_features` `[atoms, ATOM_FEATURES]`,
/// `bond_features` `[bonds, BOND_FEATURES]`, `bond_src` and `bond_dst` (int64, atom indices
/// within each molecule), and `atom_offsets`, `bond_offsets` (int64 `[molecules + 1]`).
pub fn dump_graphs(cfg: &BenchConfig, path: &Path) -> Result<usize> {
    use crate::graph::{ATOM_FEATURES, BOND_FEATURES};
    use tch::Tensor;
    let graphs = read_smiles(cfg)?
        .iter()
        .map(|s| featurize_smiles(s))
        .collect::<Result<Vec<MolGraph>>>()?;
    let (mut af, mut bf, mut src, mut dst) = (vec![], vec![], vec![], vec![]);
    let (mut ao, mut bo) = (vec![0i64], vec![0i64]);
    for g in &graphs {
        af.extend_from_slice(&g.atom_features);
        bf.extend_from_slice(&g.bond_features);
        src.extend_from_slice(&g.bond_src);
        dst.extend_from_slice(&g.bond_dst);
        ao.push(ao.last().unwrap() + g.atoms as i64);
        bo.push(bo.last().unwrap() + g.bond_src.len() as i64);
    }
    let tensors = [
        (
            "atom_features",
            Tensor::from_slice(&af).view([-1, ATOM_FEATURES as i64]),
        ),
        (
            "bond_features",
            Tensor::from_slice(&bf).view([-1, BOND_FEATURES as i64]),
        ),
        ("bond_src", Tensor::from_slice(&src)),
        ("bond_dst", Tensor::from_slice(&dst)),
        ("atom_offsets", Tensor::from_slice(&ao)),
        ("bond_offsets", Tensor::from_slice(&bo)),
    ];
    crate::fsutil::ensure_not_input(path, &[&cfg.data], "dump_graphs")?;
    let tmp = crate::fsutil::temp_file_for(path)?;
    Tensor::write_safetensors(&tensors, tmp.path())?;
    crate::fsutil::persist(tmp, path)?;
    Ok(graphs.len())
}

/// The benchmark's SMILES (rows that are not valid molecules are skipped).
fn read_smiles(cfg: &BenchConfig) -> Result<Vec<String>> {
    let opts = TableOptions {
        smiles_col: cfg.smiles_col.clone(),
        label_col: None,
        skip_bad_rows: true,
    };
    let table = data::read_smiles(
        &cfg.data,
        &crate::tokenizer::SmilesTokenizer::molformer(),
        &opts,
    )?;
    let mut smiles: Vec<String> = table.records.into_iter().map(|r| r.smiles).collect();
    if let Some(k) = cfg.limit {
        smiles.truncate(k.max(1));
    }
    if smiles.is_empty() {
        return Err(Error::param("data", "no valid molecules to time"));
    }
    Ok(smiles)
}

/// The report as a table.
pub fn table(r: &GraphBenchReport) -> String {
    let mut s = format!(
        "{} molecules (mean {:.1} heavy atoms), tch {} threads, ONNX Runtime {} threads; median of {} passes\n",
        r.molecules, r.mean_atoms, r.threads, r.ort_threads, r.repeats
    );
    if let Some(f) = r.rows.iter().find(|x| x.engine == "featurise") {
        s.push_str(&format!(
            "featurisation (SMILES to graph, Rust): {:.0} mol/s\n",
            f.molecules_per_s
        ));
    }
    let ensemble = r.rows.iter().any(|x| x.engine == "ort-ensemble");
    s.push_str("batch  tch mol/s   ort mol/s   ort/tch");
    if ensemble {
        s.push_str("   ensemble mol/s");
    }
    s.push('\n');
    let mut sizes: Vec<usize> = r
        .rows
        .iter()
        .filter(|x| x.engine == "tch")
        .map(|x| x.batch_size)
        .collect();
    sizes.dedup();
    for bs in sizes {
        let rate = |e: &str| {
            r.rows
                .iter()
                .find(|x| x.engine == e && x.batch_size == bs)
                .map_or(f64::NAN, |x| x.molecules_per_s)
        };
        s.push_str(&format!(
            "{bs:>5}  {:>9.1}   {:>9.1}   {:>6.2}x",
            rate("tch"),
            rate("ort"),
            rate("ort") / rate("tch")
        ));
        if ensemble {
            s.push_str(&format!("   {:>14.1}", rate("ort-ensemble")));
        }
        s.push('\n');
    }
    s.push_str(&format!("max |ort - tch| = {:.2e}\n", r.max_abs_diff));
    s
}

/// Whether `model` is a graph model folder or an ensemble of graph members.
pub fn is_graph(model: &Path) -> bool {
    let member = if ensemble_files::is_ensemble(model) {
        ensemble_files::member_model(model, 0)
    } else {
        model.to_path_buf()
    };
    GraphModel::is_graph_dir(&member)
}
