//! Table 3 as markdown: the methods with their test metrics, the floor, the verdicts, and
//! the learning-rate grid of a search.

use super::{metric_columns, Comparison, MethodRow};
use crate::model::Task;

pub(super) fn human(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The comparison as a markdown table with the floor and the spread verdicts.
pub fn markdown(c: &Comparison) -> String {
    let cols = metric_columns(c.task);
    let mut s = String::new();
    s.push_str(&format!(
        "Test metrics, mean ± sample sd over seeds {:?}{}.\n\n",
        c.seeds,
        if c.quick {
            " (--quick: a tenth of the epochs; a smoke test, not a result)"
        } else {
            ""
        }
    ));
    s.push_str("| method | epochs | lr | trainable params | share |");
    for col in cols {
        s.push_str(&format!(" {col} |"));
    }
    s.push_str(" wall s | train mol/s | peak RSS growth MB | train state MB | best epochs |\n");
    s.push_str(&"|---".repeat(5 + cols.len() + 5));
    s.push_str("|\n");
    for r in &c.rows {
        let share = r
            .parameters
            .map(|p| format!("{:.3} %", p.trainable_percent()))
            .unwrap_or_default();
        let lr = if r.search.is_empty() {
            format!("{:e}", r.method.lr)
        } else {
            let chosen: Vec<String> = r
                .search
                .iter()
                .filter(|p| p.chosen)
                .map(|p| format!("{:e}", p.lr))
                .collect();
            format!("chosen: {}", chosen.join(" / "))
        };
        s.push_str(&format!(
            "| {} | {} | {lr} | {} | {} |",
            r.method.name,
            r.method.epochs,
            human(r.trainable),
            share
        ));
        for col in cols {
            let v = r
                .test
                .iter()
                .find(|(n, _)| n == col)
                .map(|(_, v)| v.fmt(4))
                .unwrap_or_default();
            s.push_str(&format!(" {v} |"));
        }
        s.push_str(&format!(
            " {} | {} | {} | {:.1} | {:?} |\n",
            r.wall_seconds.fmt(1),
            r.train_mols_per_s.fmt(1),
            r.peak_rss_growth_mb.fmt(0),
            r.state_mb,
            r.best_epochs
        ));
    }
    let floor_name = match c.task {
        Task::Classification => "class-share predictor",
        _ => "mean predictor",
    };
    s.push_str(&format!("| {floor_name} | | | | |"));
    for col in cols {
        let v = c
            .floor
            .iter()
            .find(|(n, _)| n == col)
            .map(|(_, v)| v.fmt(4))
            .unwrap_or_default();
        s.push_str(&format!(" {v} |"));
    }
    s.push_str(" | | | | |\n\n");
    s.push_str(
        "Trainable params include the task head. Peak RSS growth: the training process's peak \
         resident memory (VmHWM) minus its resident memory when the run started. Train state: \
         all parameters plus gradient and two Adam moments per trainable element (float32); \
         activations excluded.\n",
    );
    if c.task == Task::Classification {
        s.push_str(
            "Classification: labels binarised at the stated threshold; a molecule is called \
             positive at probability ≥ 0.5; ROC-AUC from the probabilities.\n",
        );
    }
    s.push_str(&search_markdown(c));
    if !c.differences.is_empty() {
        s.push('\n');
        for d in &c.differences {
            s.push_str(&format!("- {d}\n"));
        }
    }
    s
}

/// The learning-rate grid of every searched method: validation loss at the best epoch (and
/// the best epoch) per rate and seed, the chosen rate of each seed in bold.
fn search_markdown(c: &Comparison) -> String {
    let searched: Vec<&MethodRow> = c.rows.iter().filter(|r| !r.search.is_empty()).collect();
    if searched.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\nLearning rates chosen on validation: each rate's validation loss at its best epoch \
         (best epoch in brackets); the chosen rate of each seed in bold. Test metrics play no \
         part in the choice.\n\n| method | lr |",
    );
    for seed in &c.seeds {
        s.push_str(&format!(" seed {seed} |"));
    }
    s.push_str(&format!("\n|---|---|{}\n", "---|".repeat(c.seeds.len())));
    for r in searched {
        let mut rates: Vec<f64> = r.search.iter().map(|p| p.lr).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        for lr in rates {
            s.push_str(&format!("| {} | {lr:e} |", r.method.name));
            for seed in &c.seeds {
                let cell = r
                    .search
                    .iter()
                    .find(|p| p.seed == *seed && p.lr == lr)
                    .map(|p| {
                        let v = format!("{:.4} ({})", p.valid_loss, p.best_epoch);
                        if p.chosen {
                            format!("**{v}**")
                        } else {
                            v
                        }
                    })
                    .unwrap_or_default();
                s.push_str(&format!(" {cell} |"));
            }
            s.push('\n');
        }
    }
    s
}
