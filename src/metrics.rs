//! Regression metrics in label units, as the protocol lists them.

use serde::{Deserialize, Serialize};

/// MSE, MAE, RMSE, R² and Pearson r of predictions against measured labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Mean squared error.
    pub mse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// 1 − SS_res / SS_tot over the measured labels.
    pub r2: f64,
    /// Pearson correlation coefficient.
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
}
