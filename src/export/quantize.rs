//! Optional int8 weight quantization of an export (`lipo export --quantize int8`).
//!
//! Each encoder linear layer becomes one ONNX Runtime `DynamicQuantizeMatMul` node (operator
//! domain `com.microsoft`): the weights are stored as int8 with one symmetric scale per output
//! column, and the activations are quantized to uint8 at run time, per call. The weights use
//! 7 bits (|q| ≤ 63, ONNX Runtime's "reduce range") so that the uint8 × int8 pair sums of
//! AVX2 kernels without VNNI cannot saturate. The sequence head stays float32. The float32
//! export is the parity reference (|ort − tch| ≤ 1e-4); an int8 export trades a small,
//! measured error for speed (see `lipo bench --quantize int8`).

use serde::{Deserialize, Serialize};

/// Operator domain of `DynamicQuantizeMatMul`.
pub const DOMAIN: &str = "com.microsoft";

/// Largest |q| of a quantized weight (7-bit range).
pub const QMAX: f32 = 63.0;

/// How the weights of an export are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantize {
    /// Float32 everywhere (the default; matches tch within 1e-4).
    #[default]
    None,
    /// Int8 weights and dynamically quantized activations in the encoder's linear layers.
    Int8,
    /// Weights stored as float16 in the file, computed in float32 (ONNX Runtime converts
    /// them once when it loads the graph): half the size, predictions within about 1e-3.
    Float16,
}

impl Quantize {
    /// The name used on the command line and in the bundle's metadata.
    pub fn name(self) -> &'static str {
        match self {
            Quantize::None => "none",
            Quantize::Int8 => "int8",
            Quantize::Float16 => "float16",
        }
    }

    /// Parses `none`, `int8` or `float16`.
    pub fn parse(s: &str) -> Option<Quantize> {
        match s {
            "none" | "fp32" | "float32" => Some(Quantize::None),
            "int8" => Some(Quantize::Int8),
            "float16" | "fp16" => Some(Quantize::Float16),
            _ => None,
        }
    }
}

/// A matrix `[rows, cols]` quantized per column: `w[i, j] ≈ values[i, j] · scales[j]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PerColumn {
    /// Quantized values, row-major, |v| ≤ [`QMAX`].
    pub values: Vec<i8>,
    /// One scale per column.
    pub scales: Vec<f32>,
}

/// Quantizes the row-major matrix `w` of shape `[rows, cols]` symmetrically per column.
pub fn per_column(w: &[f32], rows: usize, cols: usize) -> PerColumn {
    debug_assert_eq!(w.len(), rows * cols);
    let mut scales = vec![0f32; cols];
    for row in w.chunks_exact(cols) {
        for (s, &v) in scales.iter_mut().zip(row) {
            *s = s.max(v.abs());
        }
    }
    for s in &mut scales {
        *s = if *s > 0.0 { *s / QMAX } else { 1.0 };
    }
    let values = w
        .chunks_exact(cols)
        .flat_map(|row| {
            row.iter()
                .zip(&scales)
                .map(|(&v, &s)| (v / s).round().clamp(-QMAX, QMAX) as i8)
        })
        .collect();
    PerColumn { values, scales }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_column_round_trip_is_within_half_a_step() {
        let (rows, cols) = (7, 5);
        let w: Vec<f32> = (0..rows * cols)
            .map(|k| ((k * 37 % 23) as f32 - 11.0) * 0.013 * (1 + k % cols) as f32)
            .collect();
        let q = per_column(&w, rows, cols);
        assert_eq!(q.values.len(), w.len());
        for (k, &v) in w.iter().enumerate() {
            let s = q.scales[k % cols];
            let back = q.values[k] as f32 * s;
            assert!((back - v).abs() <= 0.5 * s + 1e-7, "{v} vs {back}");
            assert!(q.values[k].unsigned_abs() as f32 <= QMAX);
        }
        // The largest magnitude of each column maps to ±QMAX.
        for j in 0..cols {
            let m = (0..rows)
                .map(|i| q.values[i * cols + j].unsigned_abs())
                .max();
            assert_eq!(m, Some(QMAX as u8));
        }
    }

    #[test]
    fn zero_column_gets_unit_scale() {
        let q = per_column(&[0.0, 1.0, 0.0, -4.0], 2, 2);
        assert_eq!(q.scales[0], 1.0);
        assert_eq!(q.values, vec![0, 16, 0, -63]);
    }

    #[test]
    fn names_parse_back() {
        for q in [Quantize::None, Quantize::Int8] {
            assert_eq!(Quantize::parse(q.name()), Some(q));
        }
        assert_eq!(Quantize::parse("int4"), None);
    }
}
