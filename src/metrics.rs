//! Regression metrics in label units and binary-classification metrics (accuracy, F1,
//! ROC-AUC with the class balance), as the protocol lists them.

use serde::{Deserialize, Serialize};

/// MSE, MAE, RMSE, R² and Pearson r of predictions against measured labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Mean squared error.
    #[serde(deserialize_with = "nan_if_null")]
    pub mse: f64,
    /// Mean absolute error.
    #[serde(deserialize_with = "nan_if_null")]
    pub mae: f64,
    /// Root mean squared error.
    #[serde(deserialize_with = "nan_if_null")]
    pub rmse: f64,
    /// 1 − SS_res / SS_tot over the measured labels.
    #[serde(deserialize_with = "nan_if_null")]
    pub r2: f64,
    /// Pearson correlation coefficient.
    #[serde(deserialize_with = "nan_if_null")]
    pub pearson: f64,
    /// Number of molecules.
    pub n: usize,
}

impl Regression {
    /// Computes the metrics; `pred` and `truth` must have the same, non-zero length.
    pub fn compute(pred: &[f64], truth: &[f64]) -> Regression {
        assert_eq!(
            pred.len(),
            truth.len(),
            "prediction and label counts differ"
        );
        let n = truth.len() as f64;
        let mean_t = truth.iter().sum::<f64>() / n;
        let mean_p = pred.iter().sum::<f64>() / n;
        let (mut se, mut ae, mut ss_tot, mut sp, mut cov) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&p, &t) in pred.iter().zip(truth) {
            se += (p - t) * (p - t);
            ae += (p - t).abs();
            ss_tot += (t - mean_t) * (t - mean_t);
            sp += (p - mean_p) * (p - mean_p);
            cov += (p - mean_p) * (t - mean_t);
        }
        let mse = se / n;
        let denom = (sp * ss_tot).sqrt();
        Regression {
            mse,
            mae: ae / n,
            rmse: mse.sqrt(),
            r2: if ss_tot > 0.0 {
                1.0 - se / ss_tot
            } else {
                f64::NAN
            },
            pearson: if denom > 0.0 { cov / denom } else { f64::NAN },
            n: truth.len(),
        }
    }
}

/// Reads a float that JSON may hold as `null` (serde_json writes NaN that way) as NaN.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Mean and sample standard deviation (n − 1); sd is 0 for one value.
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Accuracy, F1 and ROC-AUC of predicted probabilities against 0/1 labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Share of molecules whose predicted class (probability ≥ `decision_threshold`) is right.
    #[serde(deserialize_with = "nan_if_null")]
    pub accuracy: f64,
    /// F1 of the positive class (0 when nothing is predicted or labelled positive).
    #[serde(deserialize_with = "nan_if_null")]
    pub f1: f64,
    /// Precision of the positive class (NaN when nothing is predicted positive).
    #[serde(deserialize_with = "nan_if_null")]
    pub precision: f64,
    /// Recall of the positive class (NaN when no label is positive).
    #[serde(deserialize_with = "nan_if_null")]
    pub recall: f64,
    /// Area under the ROC curve (ties count one half; NaN when only one class occurs).
    #[serde(deserialize_with = "nan_if_null")]
    pub roc_auc: f64,
    /// Mean binary cross-entropy of the probabilities (clamped to [1e-7, 1 − 1e-7]).
    #[serde(deserialize_with = "nan_if_null")]
    pub bce: f64,
    /// Probability at or above which a molecule is called positive (0.5).
    #[serde(deserialize_with = "nan_if_null")]
    pub decision_threshold: f64,
    /// Share of positive labels (the class balance).
    #[serde(deserialize_with = "nan_if_null")]
    pub positive_share: f64,
    /// Number of molecules.
    pub n: usize,
}

impl Classification {
    /// Computes the metrics of probabilities `prob` against labels `truth` (0 or 1) at the
    /// decision threshold 0.5; both must have the same, non-zero length.
    pub fn compute(prob: &[f64], truth: &[f64]) -> Classification {
        Self::compute_at(prob, truth, 0.5)
    }

    /// As [`Classification::compute`] with another decision threshold.
    pub fn compute_at(prob: &[f64], truth: &[f64], decision_threshold: f64) -> Classification {
        assert_eq!(
            prob.len(),
            truth.len(),
            "prediction and label counts differ"
        );
        let n = truth.len();
        let (mut tp, mut fp, mut tn, mut fneg) = (0usize, 0usize, 0usize, 0usize);
        let mut bce = 0.0;
        for (&p, &t) in prob.iter().zip(truth) {
            let positive = t > 0.5;
            match (p >= decision_threshold, positive) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, false) => tn += 1,
                (false, true) => fneg += 1,
            }
            let q = p.clamp(1e-7, 1.0 - 1e-7);
            bce -= if positive { q.ln() } else { (1.0 - q).ln() };
        }
        let ratio = |a: usize, b: usize| {
            if b > 0 {
                a as f64 / b as f64
            } else {
                f64::NAN
            }
        };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fneg);
        Classification {
            accuracy: ratio(tp + tn, n),
            f1: if tp == 0 {
                0.0
            } else {
                2.0 * tp as f64 / (2 * tp + fp + fneg) as f64
            },
            precision,
            recall,
            roc_auc: roc_auc(prob, truth),
            bce: bce / n as f64,
            decision_threshold,
            positive_share: ratio(tp + fneg, n),
            n,
        }
    }
}

/// ROC-AUC as the Mann–Whitney statistic: the probability that a random positive scores above
/// a random negative, ties counting one half (average ranks). NaN when a class is absent.
pub fn roc_auc(score: &[f64], truth: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their average.
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if truth[k] > 0.5 {
                rank_sum_pos += avg;
            }
        }
        i = j + 1;
    }
    let n_pos = truth.iter().filter(|&&t| t > 0.5).count() as f64;
    let n_neg = truth.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Spearman rank correlation (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(x: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..x.len()).collect();
        idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
        let mut r = vec![0.0; x.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
                j += 1;
            }
            for k in i..=j {
                r[idx[k]] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    }
    let m = Regression::compute(&ranks(a), &ranks(b));
    m.pearson
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let m = Regression::compute(&[1.0, 2.0, 3.0, 5.0], &[1.0, 2.0, 4.0, 4.0]);
        assert!((m.mse - 0.5).abs() < 1e-12);
        assert!((m.mae - 0.5).abs() < 1e-12);
        // SS_tot = (1-2.75)^2 + (2-2.75)^2 + 2*(4-2.75)^2 = 6.75
        assert!((m.r2 - (1.0 - 2.0 / 6.75)).abs() < 1e-12);
        let (mean, sd) = mean_sd(&[1.0, 2.0, 3.0]);
        assert_eq!((mean, sd), (2.0, 1.0));
    }

    #[test]
    fn nan_metrics_survive_json() {
        let c = Classification::compute(&[0.1, 0.2], &[1.0, 1.0]);
        let back: Classification =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert!(back.roc_auc.is_nan() && back.precision.is_nan());
        assert_eq!(back.accuracy, c.accuracy);
    }

    #[test]
    fn classification_known_values() {
        // Labels 1,1,0,0,1,0; predictions called positive at 0.5: 1,0,1,0,1,0.
        let prob = [0.9, 0.4, 0.6, 0.1, 0.8, 0.3];
        let truth = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let c = Classification::compute(&prob, &truth);
        // tp 2, fn 1, fp 1, tn 2.
        assert!((c.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((c.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.positive_share - 0.5).abs() < 1e-12);
        // Positive scores 0.9, 0.4, 0.8 vs negatives 0.6, 0.1, 0.3: 8 of 9 pairs ordered.
        assert!((c.roc_auc - 8.0 / 9.0).abs() < 1e-12);
        let expected_bce =
            -(0.9f64.ln() + 0.4f64.ln() + 0.4f64.ln() + 0.9f64.ln() + 0.8f64.ln() + 0.7f64.ln())
                / 6.0;
        assert!((c.bce - expected_bce).abs() < 1e-12);
        // Ties count one half; one class only gives NaN.
        assert!((roc_auc(&[0.5, 0.5], &[1.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!(roc_auc(&[0.2, 0.7], &[1.0, 1.0]).is_nan());
        // Nothing predicted positive: F1 0, precision NaN.
        let none = Classification::compute(&[0.1, 0.2], &[1.0, 0.0]);
        assert_eq!(none.f1, 0.0);
        assert!(none.precision.is_nan());
        assert!((none.accuracy - 0.5).abs() < 1e-12);
    }
}
