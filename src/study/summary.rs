//! Mean ± sample sd over seeds, and whether two rows differ by more than their spread — the
//! protocol's rule for every comparison table.

use serde::{Deserialize, Serialize};

use crate::metrics::{mean_sd, Regression};

/// Mean and sample sd of one metric over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one seed.
    pub sd: f64,
    /// Number of seeds.
    pub n: usize,
}

impl Spread {
    /// Summarises `values`.
    pub fn of(values: &[f64]) -> Spread {
        let (mean, sd) = mean_sd(values);
        Spread {
            mean,
            sd,
            n: values.len(),
        }
    }

    /// `0.7123 ± 0.0123` (or just the mean for one seed).
    pub fn fmt(&self, digits: usize) -> String {
        if self.n > 1 {
            format!("{:.*} ± {:.*}", digits, self.mean, digits, self.sd)
        } else {
            format!("{:.*}", digits, self.mean)
        }
    }

    /// True when the means differ by more than the sum of the two sds (a conservative,
    /// assumption-light reading of "larger than the spread"); false for single seeds.
    pub fn clearly_differs(&self, other: &Spread) -> bool {
        self.n > 1 && other.n > 1 && (self.mean - other.mean).abs() > self.sd + other.sd
    }
}

/// The regression metrics of one row of a table, summarised over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionRow {
    /// Row label.
    pub name: String,
    /// MSE.
    pub mse: Spread,
    /// MAE.
    pub mae: Spread,
    /// RMSE.
    pub rmse: Spread,
    /// R².
    pub r2: Spread,
    /// Pearson r.
    pub pearson: Spread,
    /// Per-seed test metrics.
    pub runs: Vec<Regression>,
}

impl RegressionRow {
    /// Summarises the per-seed test metrics of one configuration.
    pub fn new(name: impl Into<String>, runs: Vec<Regression>) -> Self {
        let col = |f: fn(&Regression) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        RegressionRow {
            name: name.into(),
            mse: col(|m| m.mse),
            mae: col(|m| m.mae),
            rmse: col(|m| m.rmse),
            r2: col(|m| m.r2),
            pearson: col(|m| m.pearson),
            runs,
        }
    }
}

/// A markdown table of regression rows (MSE, MAE, RMSE, R², Pearson).
pub fn regression_table(rows: &[RegressionRow]) -> String {
    let mut s = String::from(
        "| model | MSE | MAE | RMSE | R² | Pearson r | seeds |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.mse.fmt(4),
            r.mae.fmt(4),
            r.rmse.fmt(4),
            r.r2.fmt(4),
            r.pearson.fmt(4),
            r.runs.len()
        ));
    }
    s
}

/// One sentence comparing the RMSE of two rows against their spread.
pub fn compare_rmse(a: &RegressionRow, b: &RegressionRow) -> String {
    let (better, worse) = if a.rmse.mean <= b.rmse.mean {
        (a, b)
    } else {
        (b, a)
    };
    let verdict = if better.rmse.clearly_differs(&worse.rmse) {
        "a difference larger than their spread"
    } else if better.rmse.n > 1 {
        "within their spread, so not a clear difference"
    } else {
        "a single seed, so a smoke test rather than a result"
    };
    let mut s = format!(
        "{} has the lower test RMSE ({} vs {} for {}): {}.",
        better.name,
        better.rmse.fmt(4),
        worse.rmse.fmt(4),
        worse.name,
        verdict
    );
    if let Some(p) = paired_rmse(better, worse) {
        s.push(' ');
        s.push_str(&p);
    }
    s
}

/// The per-seed RMSE differences `a − b` of two rows run on the same seeds (so on the same
/// splits), which the split-to-split spread of each row does not blur: `None` unless both
/// rows have the same number (more than one) of runs.
pub fn paired_rmse(a: &RegressionRow, b: &RegressionRow) -> Option<String> {
    if a.runs.len() != b.runs.len() || a.runs.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a
        .runs
        .iter()
        .zip(&b.runs)
        .map(|(x, y)| x.rmse - y.rmse)
        .collect();
    let lower = d.iter().filter(|x| **x < 0.0).count();
    Some(format!(
        "Paired by seed (same split), {} minus {}: {} (mean {}); lower on {lower} of {} seeds.",
        a.name,
        b.name,
        d.iter()
            .map(|x| format!("{x:+.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        Spread::of(&d).fmt(4),
        d.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_verdicts() {
        let a = Spread::of(&[1.0, 1.1, 0.9]);
        assert!((a.sd - 0.1).abs() < 1e-12);
        assert_eq!(a.fmt(2), "1.00 ± 0.10");
        let b = Spread::of(&[1.5, 1.6, 1.4]);
        assert!(a.clearly_differs(&b));
        let c = Spread::of(&[1.15, 1.2, 1.1]);
        assert!(!a.clearly_differs(&c));
        assert!(!Spread::of(&[1.0]).clearly_differs(&Spread::of(&[2.0])));
    }

    fn row(name: &str, rmse: &[f64]) -> RegressionRow {
        let runs = rmse
            .iter()
            .map(|&r| Regression {
                n: 10,
                mse: r * r,
                mae: r,
                rmse: r,
                r2: 0.5,
                pearson: 0.7,
            })
            .collect();
        RegressionRow::new(name, runs)
    }

    #[test]
    fn paired_differences_show_what_the_spread_hides() {
        // Split-to-split spread larger than the gap, but b is lower on every seed.
        let a = row("a", &[0.84, 0.83, 0.80]);
        let b = row("b", &[0.82, 0.82, 0.78]);
        let s = compare_rmse(&a, &b);
        assert!(s.starts_with("b has the lower test RMSE"), "{s}");
        assert!(s.contains("within their spread"), "{s}");
        assert!(
            s.contains("b minus a: -0.0200, -0.0100, -0.0200 (mean -0.0167 ± 0.0058); lower on 3 of 3 seeds."),
            "{s}"
        );
        // One seed, or different seeds counts: no paired sentence.
        assert!(paired_rmse(&row("a", &[0.8]), &row("b", &[0.7])).is_none());
        assert!(paired_rmse(&a, &row("b", &[0.7, 0.8])).is_none());
    }
}
