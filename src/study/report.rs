//! The study's report: `report.md` (figures linked by relative path) and `report.html`, the
//! same text as one self-contained file with every PNG embedded as a base64 data URI.

use std::path::Path;

use super::estimate::human_seconds;
use super::table3;
use super::{files, StudyConfig, StudyReport};
use crate::error::{Error, Result};

/// Writes `report.md` and `report.html` into `out` (the study folder).
pub fn write(r: &StudyReport, out: &Path) -> Result<()> {
    let md = markdown(r, out);
    crate::fsutil::write_atomic(&out.join(files::REPORT_MD), md.as_bytes())?;
    let html = to_html(&md, out)?;
    crate::fsutil::write_atomic(&out.join(files::REPORT_HTML), html.as_bytes())
}

/// Writes `report.md` and `report.html` of the study folder `out` again from its
/// `study_results.json`, with whatever it holds besides (the graph table of
/// `lipo compare-graph`); nothing is run.
pub fn rewrite(out: &Path) -> Result<()> {
    let path = out.join(files::RESULTS);
    if !path.is_file() {
        return Err(Error::param(
            "out",
            format!(
                "{} has no {} (run the study first)",
                out.display(),
                files::RESULTS
            ),
        ));
    }
    let mut r: StudyReport = crate::fsutil::read_json(&path)?;
    // A search gathered after the study (`lipo compare-peft --config` into its stage folder)
    // joins the report.
    let [reg, cls] = super::files::SEARCH_STAGES;
    for (slot, stage) in [
        (&mut r.table3_regression_search, reg),
        (&mut r.table3_classification_search, cls),
    ] {
        let gathered = out.join(stage).join(table3::files::TABLE_JSON);
        if slot.is_none() && gathered.is_file() {
            *slot = Some(crate::fsutil::read_json(&gathered)?);
        }
    }
    write(&r, out)
}

fn figure(s: &mut String, out: &Path, rel: &str, caption: &str) {
    if out.join(rel).is_file() {
        s.push_str(&format!("![{caption}]({rel})\n\n"));
    }
}

fn sha_line(path: &Path) -> String {
    match super::data::sha256_file(path) {
        Ok(h) => format!("`{}` (SHA-256 `{h}`)", path.display()),
        Err(_) => format!("`{}`", path.display()),
    }
}

/// The report as markdown.
pub fn markdown(r: &StudyReport, out: &Path) -> String {
    let mut s = String::from("# lipo study report\n\n");
    intro(&mut s, &r.config);
    reading_section(&mut s, r);
    table1_section(&mut s, r, out);
    table2_section(&mut s, r, out);
    table3_sections(&mut s, r, out);
    graph_section(&mut s, out);
    best_section(&mut s, r, out);
    timing_section(&mut s, r);
    reproduce_section(&mut s, r, out);
    s
}

/// The protocol in one paragraph, and the warning of a `--quick` study.
fn intro(s: &mut String, c: &StudyConfig) {
    s.push_str(
        "Fine-tuning MoLFormer on lipophilicity (MoleculeNet Lipophilicity, logD at pH 7.4): \
         the study's Tables 1–3 reproduced with lipo under one protocol (seeded 80/20 \
         train/test split, 10 % of train held out for validation, which alone chooses epochs \
         and models; test only for the final numbers; metrics in logD units; mean ± sample sd \
         over seeds).\n\n",
    );
    if c.quick {
        s.push_str(&format!(
            "**`--quick`: seed {:?} only, {} fine-tuning epoch(s), {} domain-MLM epoch(s), {} \
             epoch(s) per PEFT method. This is a smoke test of the pipeline, not a result: no \
             difference below can be judged against a spread.**\n\n",
            c.seeds,
            c.finetune.epochs,
            c.domain_mlm.epochs,
            c.peft_epochs
                .map(|e| e.to_string())
                .unwrap_or_else(|| "the preset".into())
        ));
    }
}

/// What each table says ([`readings`]) as a list.
fn reading_section(s: &mut String, r: &StudyReport) {
    s.push_str("## Reading\n\n");
    for line in readings(r) {
        s.push_str(&format!("- {line}\n"));
    }
    s.push('\n');
}

/// Table 1 with the domain-MLM accuracy and its figures.
fn table1_section(s: &mut String, r: &StudyReport, out: &Path) {
    let c = &r.config;
    s.push_str("## Table 1: fine-tuning from random, pre-trained and domain-MLM weights\n\n");
    s.push_str(&r.table1.markdown);
    s.push_str(&format!(
        "\nHeld-out masked-token accuracy after domain MLM, per seed: {}.\n\n",
        r.table1
            .domain_mlm_accuracy
            .iter()
            .map(|a| format!("{a:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    figure(
        s,
        out,
        "table1/table1_train_loss.png",
        "Training loss without vs with domain MLM (mean over seeds)",
    );
    let seed = c.seeds[0];
    for (row, what) in [
        ("random", "random init"),
        ("pretrained", "pre-trained"),
        ("domain-finetune", "pre-trained + domain MLM"),
    ] {
        figure(
            s,
            out,
            &format!("table1/seed{seed}/{row}/loss.png"),
            &format!("Train vs validation loss, {what}, seed {seed}"),
        );
    }
}

/// Table 2 with its figures.
fn table2_section(s: &mut String, r: &StudyReport, out: &Path) {
    s.push_str("## Table 2: influence-based selection of external data\n\n");
    s.push_str(&r.table2.markdown);
    s.push('\n');
    for (f, cap) in [
        (
            "table2_influence_hist.png",
            "Helpfulness of the external molecules (first seed)",
        ),
        (
            "table2_influence_vs_label.png",
            "Helpfulness vs label (first seed)",
        ),
        (
            "table2_valid_loss.png",
            "Validation loss per epoch of every row",
        ),
        (
            "table2_train_loss.png",
            "Training loss per epoch of every row",
        ),
    ] {
        figure(s, out, &format!("table2/{f}"), cap);
    }
}

/// Tables 3a (regression) and 3b (classification) with their figures.
fn table3_sections(s: &mut String, r: &StudyReport, out: &Path) {
    for (title, cmp, dir) in [
        (
            "Table 3a: parameter-efficient fine-tuning, Lipophilicity regression",
            &r.table3_regression,
            "table3-regression",
        ),
        (
            "Table 3b: parameter-efficient fine-tuning, external set as classification (as the study)",
            &r.table3_classification,
            "table3-classification",
        ),
    ] {
        s.push_str(&format!("## {title}\n\n"));
        s.push_str(&table3::markdown(cmp));
        s.push('\n');
        if dir == "table3-regression" {
            s.push_str(
                "The full row is Table 1's pre-trained run when their settings agree (computed \
                 once, inside the study's own process): its test metrics and wall time compare \
                 with the PEFT rows, its peak-RSS growth does not (each PEFT run had a process \
                 of its own).\n\n",
            );
        }
        for (f, cap) in [
            ("eval_loss.png", "Evaluation loss"),
            ("train_loss.png", "Training loss"),
            ("grad_norm.png", "Gradient norm"),
            ("eval_steps_per_second.png", "Evaluation steps per second"),
            ("eval_runtime.png", "Evaluation runtime"),
        ] {
            figure(s, out, &format!("{dir}/{f}"), &format!("{title}: {cap}"));
        }
    }
    for (title, cmp) in [
        (
            "Table 3a with validation-chosen learning rates (regression)",
            &r.table3_regression_search,
        ),
        (
            "Table 3b with validation-chosen learning rates (classification)",
            &r.table3_classification_search,
        ),
    ] {
        let Some(cmp) = cmp else { continue };
        s.push_str(&format!("## {title}\n\n"));
        s.push_str(
            "The tables above run each PEFT method at the study's presets, chosen for the 47 M \
             parameter XL model. Here each method trains at every rate of the grid on every \
             seed (with patience), and per seed the rate whose best epoch has the lowest \
             validation loss is kept; the test rows never enter the choice. The full row is \
             the same run as above.\n\n",
        );
        s.push_str(&table3::markdown(cmp));
        s.push('\n');
    }
}

/// The best model, its test metrics and the ONNX check.
/// The table beyond the study's own, when `lipo compare-graph` has gathered it.
fn graph_section(s: &mut String, out: &Path) {
    let Ok(md) = std::fs::read_to_string(out.join("graph/comparison.md")) else {
        return;
    };
    s.push_str("## Beyond the study: a graph member (D-MPNN over lipo's SMILES graph)\n\n");
    s.push_str(
        "Not part of the study's three tasks: the best logD lipo can make for `lipo_predict()`. \
         Gathered by `lipo compare-graph` from `scripts/graph.sh` and `scripts/ensemble.sh` runs.\n\n",
    );
    s.push_str(&md);
    s.push('\n');
}

fn best_section(s: &mut String, r: &StudyReport, out: &Path) {
    let b = &r.best;
    s.push_str("## Best model\n\n");
    s.push_str(&format!(
        "Chosen by the lowest validation RMSE among {} Lipophilicity regression runs: **{}** \
         (`{}`), validation RMSE {:.4}. On its test split ({} molecules): MSE {:.4}, MAE {:.4}, \
         RMSE {:.4}, R² {:.4}, Pearson r {:.4}.\n\n",
        b.candidates,
        b.label,
        b.run.display(),
        b.valid_rmse,
        b.test.n,
        b.test.mse,
        b.test.mae,
        b.test.rmse,
        b.test.r2,
        b.test.pearson
    ));
    if let Some(v) = b.retrained_valid_rmse {
        s.push_str(&format!(
            "Its weights were not kept with the run's records, so it was trained again from \
             its run.json (validation RMSE {v:.4} this time); the exported model is that one.\n\n"
        ));
    }
    s.push_str(&format!(
        "Exported to ONNX as `{}`; ONNX Runtime and tch agree on all {} test molecules to \
         {:.1e} (allowed {:.0e}).\n\n",
        b.bundle.display(),
        b.checked,
        b.max_abs_diff,
        b.tolerance
    ));
    figure(
        s,
        out,
        "best-model/parity.png",
        "Predicted vs measured (test split)",
    );
    figure(s, out, "best-model/residuals.png", "Test residuals");
}

/// Estimated and measured time of every stage.
fn timing_section(s: &mut String, r: &StudyReport) {
    s.push_str("## Timing\n\n| stage | estimated | measured | |\n|---|---|---|---|\n");
    let mut total = 0.0;
    for t in &r.timings {
        total += t.seconds;
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            t.stage,
            human_seconds(t.estimated_seconds),
            human_seconds(t.seconds),
            if t.reused {
                "finished before; reused"
            } else {
                ""
            }
        ));
    }
    s.push_str(&format!(
        "| total | {} | {} | |\n\nEstimate from a measured {:.0} training molecules/s. \
         Per-run wall time and molecules/s are in each run's `metrics.json` and in Tables 3a/3b.\n\n",
        human_seconds(r.estimate.total_seconds),
        human_seconds(total),
        r.estimate.train_mols_per_s
    ));
}

/// The command, the config that repeats it, and the inputs' fingerprints.
fn reproduce_section(s: &mut String, r: &StudyReport, out: &Path) {
    let c = &r.config;
    s.push_str("## Reproduce\n\n");
    s.push_str(&format!("This report: `{}`\n\n", r.command));
    s.push_str(&format!(
        "Again, exactly (finished runs are reused): `lipo study --config {}`\n\n",
        out.join(files::CONFIG).display()
    ));
    s.push_str(&format!("- seeds: {:?}\n", c.seeds));
    s.push_str(&format!("- Lipophilicity: {}\n", sha_line(&c.data)));
    s.push_str(&format!("- external set: {}\n", sha_line(&c.external)));
    s.push_str(&format!(
        "- pre-trained model: `{}`\n",
        c.pretrained.display()
    ));
    for (k, v) in &r.environment {
        s.push_str(&format!("- {k}: {v}\n"));
    }
    s.push_str(
        "- every run folder holds its resolved configuration (`run.json`, \
         `table1_config.json`, `table2_config.json`, `stage.json`) and re-runs with `--config`\n",
    );
}

/// What each table says, from the numbers.
pub fn readings(r: &StudyReport) -> Vec<String> {
    let mut out = Vec::new();
    for line in &r.table1.readings {
        out.push(format!("Table 1: {line}"));
    }
    for line in &r.table2.readings {
        out.push(format!("Table 2: {line}"));
    }
    for (name, cmp) in [
        ("Table 3a (regression)", Some(&r.table3_regression)),
        ("Table 3b (classification)", Some(&r.table3_classification)),
        (
            "Table 3a, validation-chosen rates",
            r.table3_regression_search.as_ref(),
        ),
        (
            "Table 3b, validation-chosen rates",
            r.table3_classification_search.as_ref(),
        ),
    ] {
        let Some(cmp) = cmp else { continue };
        for line in &cmp.differences {
            out.push(format!("{name}: {line}."));
        }
    }
    out.push(format!(
        "Best model by validation RMSE: {} (test RMSE {:.4} against the mean predictor's {:.4} on the same kind of split).",
        r.best.label,
        r.best.test.rmse,
        r.table1
            .rows
            .last()
            .map(|row| row.rmse.mean)
            .unwrap_or(f64::NAN)
    ));
    out
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Inline markdown: `code` and **bold** (on escaped text).
fn inline(t: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(t).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            for (j, p) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    out.push_str(&format!("<strong>{p}</strong>"));
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

/// Converts the report's markdown (headings, paragraphs, bullet lists, pipe tables, image
/// lines) to one HTML page; images under `base` are embedded as data URIs.
pub fn to_html(md: &str, base: &Path) -> Result<String> {
    let mut h = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>lipo study report</title>\n\
         <style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}\
         table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;padding:3px 7px}\
         th{background:#eee}img{max-width:100%;display:block;margin:1em 0}figure{margin:0}\
         figcaption{color:#555;font-size:90%}code{background:#f3f3f3}</style></head><body>\n",
    );
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim().is_empty() {
            i += 1;
        } else if let Some(t) = l.strip_prefix("### ") {
            h.push_str(&format!("<h3>{}</h3>\n", inline(t)));
            i += 1;
        } else if let Some(t) = l.strip_prefix("## ") {
            h.push_str(&format!("<h2>{}</h2>\n", inline(t)));
            i += 1;
        } else if let Some(t) = l.strip_prefix("# ") {
            h.push_str(&format!("<h1>{}</h1>\n", inline(t)));
            i += 1;
        } else if let Some(img) = l.strip_prefix("![") {
            let (alt, rest) = img.split_once("](").unwrap_or(("", ""));
            let rel = rest.trim_end_matches(')');
            let path = base.join(rel);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            h.push_str(&format!(
                "<figure><img alt=\"{a}\" src=\"data:image/png;base64,{}\"><figcaption>{a}</figcaption></figure>\n",
                base64(&bytes),
                a = escape(alt)
            ));
            i += 1;
        } else if l.starts_with('|') {
            h.push_str("<table>\n");
            let mut first = true;
            while i < lines.len() && lines[i].starts_with('|') {
                let row = lines[i].trim().trim_matches('|');
                i += 1;
                if row.split('|').all(|c| c.trim().chars().all(|ch| ch == '-')) {
                    continue;
                }
                let tag = if first { "th" } else { "td" };
                first = false;
                h.push_str("<tr>");
                for cell in row.split('|') {
                    h.push_str(&format!("<{tag}>{}</{tag}>", inline(cell.trim())));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
        } else if l.starts_with("- ") {
            h.push_str("<ul>\n");
            while i < lines.len() && lines[i].starts_with("- ") {
                h.push_str(&format!("<li>{}</li>\n", inline(&lines[i][2..])));
                i += 1;
            }
            h.push_str("</ul>\n");
        } else {
            let mut para = Vec::new();
            while i < lines.len()
                && !lines[i].trim().is_empty()
                && !lines[i].starts_with(['#', '|', '!'])
                && !lines[i].starts_with("- ")
            {
                para.push(lines[i]);
                i += 1;
            }
            if para.is_empty() {
                // A line starting with '!' that is not an image: show it as text.
                para.push(lines[i]);
                i += 1;
            }
            h.push_str(&format!("<p>{}</p>\n", inline(&para.join(" "))));
        }
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn html_has_tables_lists_and_embedded_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"png").unwrap();
        let md = "# T\n\nSome **bold** and `code` <x>.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n![cap](a.png)\n";
        let h = to_html(md, dir.path()).unwrap();
        assert!(h.contains("<h1>T</h1>"));
        assert!(h.contains("<strong>bold</strong>") && h.contains("<code>code</code>"));
        assert!(h.contains("&lt;x&gt;"));
        assert!(h.contains("<th>a</th>") && h.contains("<td>2</td>"));
        assert!(h.contains("<li>two</li>"));
        assert!(h.contains("data:image/png;base64,cG5n"));
        assert!(to_html("![x](missing.png)\n", dir.path()).is_err());
    }
}
