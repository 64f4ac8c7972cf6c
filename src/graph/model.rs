//! A graph model in memory ([`GraphModel`]: the D-MPNN, its sizes and lipo's metadata) and
//! its folder on disk: `config.json` ([`GraphConfig`], `model_type` "dmpnn"),
//! `model.safetensors` and `lipo.json` ([`ModelMeta`]), the same file names as a MoLFormer
//! folder.

use std::path::Path;

use tch::{nn, Device, Tensor};

use super::batch::{GraphArrays, GraphBatch};
use super::config::GraphConfig;
use super::dmpnn::Dmpnn;
use super::features::MolGraph;
use crate::error::{Error, Result};
use crate::model::{files, ModelMeta, Task};

/// A D-MPNN with one output, its sizes and metadata; parameters live in `vs`.
pub struct GraphModel {
    /// Sizes.
    pub config: GraphConfig,
    /// Task, label statistics, provenance.
    pub meta: ModelMeta,
    /// Every parameter.
    pub vs: nn::VarStore,
    /// The layers.
    pub net: Dmpnn,
}

impl std::fmt::Debug for GraphModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphModel")
            .field("config", &self.config)
            .field("meta", &self.meta)
            .finish()
    }
}

impl GraphModel {
    /// New weights (tch's default initialisation, drawn from `seed`).
    pub fn new(config: GraphConfig, meta: ModelMeta, device: Device, seed: u64) -> Result<Self> {
        config.validate()?;
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let net = Dmpnn::new(&vs.root(), &config, 1);
        Ok(GraphModel {
            config,
            meta,
            vs,
            net,
        })
    }

    /// Whether `dir` is a graph model folder (its `config.json` says "dmpnn").
    pub fn is_graph_dir(dir: &Path) -> bool {
        GraphConfig::is_graph_config(&dir.join(files::CONFIG))
    }

    /// Reads a graph model folder.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let config = GraphConfig::load(&dir.join(files::CONFIG))?;
        let meta: ModelMeta = crate::fsutil::read_json(&dir.join(files::META))?;
        meta.validate()
            .map_err(|e| Error::model(dir.join(files::META), e))?;
        let mut model = GraphModel::new(config, meta, device, 0)?;
        let weights = dir.join(files::WEIGHTS);
        let tensors = Tensor::read_safetensors(&weights)
            .map_err(|e| Error::model(&weights, e.to_string()))?;
        model.copy_from(&tensors, &weights)?;
        Ok(model)
    }

    /// Copies named tensors into the parameters; every parameter must be present with its
    /// shape.
    pub fn copy_from(&mut self, tensors: &[(String, Tensor)], source: &Path) -> Result<()> {
        let by_name: std::collections::HashMap<&str, &Tensor> =
            tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        tch::no_grad(|| {
            for (name, mut p) in self.vs.variables() {
                let t = by_name
                    .get(name.as_str())
                    .ok_or_else(|| Error::model(source, format!("the weights lack {name}")))?;
                if t.size() != p.size() {
                    return Err(Error::model(
                        source,
                        format!("{name} has shape {:?}, expected {:?}", t.size(), p.size()),
                    ));
                }
                p.copy_(t);
            }
            Ok(())
        })
    }

    /// Writes the folder (atomically: a staging folder renamed over `dir`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = crate::fsutil::staging_dir(dir, ".lipo-save")?;
        crate::fsutil::write_json(&tmp.path().join(files::CONFIG), &self.config)?;
        let tensors: Vec<(String, Tensor)> = self
            .named_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu).contiguous()))
            .collect();
        Tensor::write_safetensors(&tensors, tmp.path().join(files::WEIGHTS))?;
        crate::fsutil::write_json(&tmp.path().join(files::META), &self.meta)?;
        let tmp = tmp.keep();
        crate::fsutil::replace_dir(&tmp, dir)
    }

    /// Every parameter, sorted by name.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Number of parameter elements.
    pub fn num_parameters(&self) -> usize {
        self.vs.variables().values().map(|t| t.numel()).sum()
    }

    /// The device holding the parameters.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Raw head outputs (standardised units, or logits) of `graphs`, in batches.
    pub fn raw(&self, graphs: &[&MolGraph], batch_size: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(graphs.len());
        tch::no_grad(|| {
            for chunk in graphs.chunks(batch_size.max(1)) {
                let b = GraphBatch::new(&GraphArrays::new(chunk), self.device());
                let z = self.net.forward(&b, false).squeeze_dim(-1);
                out.extend(Vec::<f64>::try_from(z.to_kind(tch::Kind::Double)).unwrap_or_default());
            }
        });
        out
    }

    /// Molecule vectors of `graphs` (the D-MPNN's readout, before the head).
    pub fn embed(&self, graphs: &[&MolGraph], batch_size: usize) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(graphs.len());
        tch::no_grad(|| {
            for chunk in graphs.chunks(batch_size.max(1)) {
                let b = GraphBatch::new(&GraphArrays::new(chunk), self.device());
                let h = self.net.encode(&b, false).to_device(Device::Cpu);
                out.extend(Vec::<Vec<f32>>::try_from(h).unwrap_or_default());
            }
        });
        out
    }

    /// A raw output in label units: `z·sd + mean` (regression) or a probability.
    pub fn to_label_units(&self, z: f64) -> f64 {
        match self.meta.task {
            Task::Classification => 1.0 / (1.0 + (-z).exp()),
            _ => z * self.meta.label_sd + self.meta.label_mean,
        }
    }

    /// Predictions of `graphs` in label units.
    pub fn predict(&self, graphs: &[&MolGraph], batch_size: usize) -> Vec<f64> {
        self.raw(graphs, batch_size)
            .into_iter()
            .map(|z| self.to_label_units(z))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{featurize_smiles, FEATURES_VERSION};

    fn tiny() -> GraphModel {
        GraphModel::new(GraphConfig::tiny(), ModelMeta::default(), Device::Cpu, 5).unwrap()
    }

    #[test]
    fn every_writing_of_a_molecule_gets_one_output() {
        let m = tiny();
        for (a, b) in [
            ("OCC", "CCO"),
            ("c1ccccc1O", "Oc1ccccc1"),
            ("CC(=O)Nc1ccc(O)cc1", "Oc1ccc(NC(C)=O)cc1"),
            ("C1CC2CCC1C2", "C2CC1CCC2C1"),
            // The mark flips with the neighbour order; the marks move between bonds.
            ("N[C@@H](C)C#N", "N[C@H](C#N)C"),
            ("F/C=C/F", "F\\C=C\\F"),
            ("F/C=C/F", "C(\\F)=C/F"),
        ] {
            let (ga, gb) = (featurize_smiles(a).unwrap(), featurize_smiles(b).unwrap());
            let (pa, pb) = (m.raw(&[&ga], 1)[0], m.raw(&[&gb], 1)[0]);
            assert!((pa - pb).abs() < 1e-5, "{a} {pa} vs {b} {pb}");
        }
    }

    #[test]
    fn batching_does_not_change_outputs() {
        let m = tiny();
        let smiles = ["CCO", "[NH4+].[Cl-]", "C", "c1ccc2ccccc2c1", "Cl/C=C\\Br"];
        let graphs: Vec<MolGraph> = smiles
            .iter()
            .map(|s| featurize_smiles(s).unwrap())
            .collect();
        let refs: Vec<&MolGraph> = graphs.iter().collect();
        let together = m.raw(&refs, 8);
        let alone = m.raw(&refs, 1);
        for (x, y) in together.iter().zip(&alone) {
            assert!((x - y).abs() < 1e-5, "{together:?} vs {alone:?}");
        }
        assert_eq!(m.embed(&refs, 2).len(), smiles.len());
    }

    #[test]
    fn folder_round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let m = tiny();
        m.save(&dir.path().join("m")).unwrap();
        let back = GraphModel::load(&dir.path().join("m"), Device::Cpu).unwrap();
        let g = featurize_smiles("CC(=O)O").unwrap();
        assert_eq!(m.raw(&[&g], 1), back.raw(&[&g], 1));
        assert!(GraphModel::is_graph_dir(&dir.path().join("m")));
        // A config whose feature widths are not this lipo's is refused, naming them.
        let path = dir.path().join("m").join(files::CONFIG);
        let text = std::fs::read_to_string(&path).unwrap();
        let bad = text.replace(
            &format!("\"atom_features\": {}", m.config.atom_features),
            "\"atom_features\": 3",
        );
        assert_ne!(bad, text);
        std::fs::write(&path, bad).unwrap();
        let e = GraphModel::load(&dir.path().join("m"), Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("feature layout"), "{e}");
        // So is one that does not say which feature layout it was trained with.
        let unversioned = text.replace(&format!("\"features\": {FEATURES_VERSION}"), "\"x\": 0");
        assert_ne!(unversioned, text);
        std::fs::write(&path, unversioned.replace(",\n  \"x\": 0", "")).unwrap();
        let e = GraphModel::load(&dir.path().join("m"), Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("records no feature layout"), "{e}");
    }
}
