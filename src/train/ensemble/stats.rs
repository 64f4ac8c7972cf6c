//! The statistics of an ensemble: quantiles, the sd calibration and its coverage, and the
//! k-nearest-neighbour distance of the applicability domain.

use super::COVERAGE;

/// The `q` quantile (0–1) of `xs` (linear between order statistics); NaN when empty.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The factor on `sd` that puts a share [`COVERAGE`] of `|truth − pred|` within 1.96 sd.
pub fn calibrate(pred: &[f64], truth: &[f64], sd: &[f64]) -> f64 {
    let z: Vec<f64> = pred
        .iter()
        .zip(truth)
        .zip(sd)
        .filter(|(_, &s)| s > 0.0)
        .map(|((p, t), s)| (t - p).abs() / s)
        .collect();
    let scale = quantile(&z, COVERAGE) / 1.96;
    if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    }
}

/// Share of `|truth − pred| ≤ 1.96 sd`.
pub fn coverage(pred: &[f64], truth: &[f64], sd: &[f64]) -> f64 {
    let inside = pred
        .iter()
        .zip(truth)
        .zip(sd)
        .filter(|((p, t), s)| (*t - *p).abs() <= 1.96 * **s)
        .count();
    inside as f64 / pred.len().max(1) as f64
}

/// Mean distance from `query` to its `k` nearest rows of `train`, skipping row `skip`
/// (leave-one-out).
pub fn knn_distance(query: &[f32], train: &[Vec<f32>], k: usize, skip: Option<usize>) -> f64 {
    let mut d: Vec<f64> = train
        .iter()
        .enumerate()
        .filter(|(j, _)| Some(*j) != skip)
        .map(|(_, t)| {
            t.iter()
                .zip(query)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let k = k.min(d.len()).max(1);
    d.select_nth_unstable_by(k - 1, f64::total_cmp);
    d[..k].iter().sum::<f64>() / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_covers_the_asked_share() {
        // Distinct errors spread evenly over (-1, 1).
        let truth: Vec<f64> = (0..1000)
            .map(|i| (i as f64 * 0.618_033_988_75).fract() * 2.0 - 1.0)
            .collect();
        let pred = vec![0.0; 1000];
        let sd = vec![0.1; 1000];
        let scale = calibrate(&pred, &truth, &sd);
        let scaled: Vec<f64> = sd.iter().map(|s| s * scale).collect();
        let c = coverage(&pred, &truth, &scaled);
        assert!((c - COVERAGE).abs() < 0.002, "coverage {c}");
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[0.0, 10.0], 0.95), 9.5);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn knn_leaves_the_molecule_itself_out() {
        let t = vec![vec![0.0f32, 0.0], vec![3.0, 4.0], vec![6.0, 8.0]];
        assert_eq!(knn_distance(&t[0], &t, 1, None), 0.0);
        assert_eq!(knn_distance(&t[0], &t, 1, Some(0)), 5.0);
        assert_eq!(knn_distance(&t[0], &t, 2, Some(0)), 7.5);
    }
}
