//! `report.md`, tables and figures of a generalisation study.

use super::summary::{common_items, gap_test, grid, GenMetric, Measure, Subset};
use super::{Generalization, UnitResult};
use crate::error::Result;
use crate::report::{comparisons_frame, verdict_word};
use crate::summary::{ComparisonSummary, Summary};
use dfr_report::{frame, labelled_heatmap, write_all, MarkdownOptions, PlotStyle, ReportPage};
use std::path::PathBuf;

/// Mean and CI half-width of a metric of an arm.
fn stat(s: &Summary, arm: &str, metric: &str) -> (Option<f64>, Option<f64>) {
    match s.metric(arm, metric) {
        Some(m) => (
            Some(m.mean),
            m.ci_low.zip(m.ci_high).map(|(l, h)| (h - l) / 2.0),
        ),
        None => (None, None),
    }
}

/// One table shaped like Guan et al.'s Table IV: rows arm, columns held-out group (mean and
/// CI half-width), last the mean over groups.
fn shaped(
    g: &Generalization,
    s: &Summary,
    subset: Subset,
    measure: Measure,
) -> Result<dfr_report::polars::prelude::DataFrame> {
    let names: Vec<String> = g.groups.iter().map(|h| h.name.clone()).collect();
    let arms: Vec<String> = g.arms.iter().map(|&a| g.cfg.arms[a].name.clone()).collect();
    let mut columns = vec![col!("arm", arms.clone())];
    for group in (0..names.len()).map(Some).chain([None]) {
        let m = GenMetric {
            subset,
            measure,
            group,
        };
        let label = group.map_or("mean".to_string(), |k| names[k].clone());
        let st: Vec<(Option<f64>, Option<f64>)> =
            arms.iter().map(|a| stat(s, a, &m.name(&names))).collect();
        columns.push(col!(&label, st.iter().map(|x| x.0).collect::<Vec<_>>()));
        columns.push(col!(
            &format!("{label}_pm"),
            st.iter().map(|x| x.1).collect::<Vec<_>>()
        ));
    }
    Ok(frame(columns)?)
}

/// A sentence for one comparison.
fn sentence(c: &ComparisonSummary, level: f64) -> String {
    let ci = match (c.ci_low, c.ci_high) {
        (Some(l), Some(h)) => format!(", {:.0} % CI [{l:+.3}, {h:+.3}]", level * 100.0),
        _ => String::new(),
    };
    let p = c
        .p_value
        .map(|p| {
            format!(
                ", sign-flip p {p:.3} (smallest possible {:.3})",
                c.min_possible_p
            )
        })
        .unwrap_or_default();
    let word = match c.verdict {
        dfr_metrics::Verdict::NotDetectable => {
            format!("no detectable difference with {} seeds", c.n_seeds)
        }
        _ => verdict_word(c),
    };
    format!(
        "- {} − {} on `{}`: {:+.3}{ci}{p}: {word}.",
        c.b, c.a, c.metric, c.mean_diff
    )
}

/// Writes `tables/`, `figures/` and `report.md` under the study's output directory; returns
/// the report path.
pub fn write(
    g: &Generalization,
    done: &[UnitResult],
    s: &Summary,
    seconds: Option<f64>,
) -> Result<PathBuf> {
    let out = &g.out;
    let level = g.cfg.stats.level;
    let pct = level * 100.0;
    let names: Vec<String> = g.groups.iter().map(|h| h.name.clone()).collect();
    let arms: Vec<String> = g.arms.iter().map(|&a| g.cfg.arms[a].name.clone()).collect();
    let tables = out.join("tables");
    let mut shown = Vec::new();
    for subset in Subset::ALL {
        for measure in Measure::ALL {
            let t = shaped(g, s, subset, measure)?;
            let stem = format!("{}_{}", subset.name(), measure.name());
            write_all(&t, &tables, &stem)?;
            if measure == Measure::RocAuc {
                shown.push((subset, t));
            }
        }
    }
    let units = grid(g, done);
    let n_items = common_items(done);
    let mut gaps = Vec::new();
    for measure in Measure::ALL {
        for a in 0..g.arms.len() {
            if let Some(c) = gap_test(g, &units, n_items, measure, a)? {
                gaps.push(c);
            }
        }
    }
    let gap_table = comparisons_frame(&gaps)?;
    write_all(&gap_table, &tables, "gap_tests")?;
    let comparisons = comparisons_frame(&s.comparisons)?;
    write_all(&comparisons, &tables, "comparisons")?;
    let seen_auc = |r: &UnitResult| {
        let h = g.groups.iter().find(|h| h.name == r.held_out)?;
        super::summary::subset_value(r, h, Subset::Seen, Measure::RocAuc, None)
    };
    let held_auc = |r: &UnitResult| {
        let h = g.groups.iter().find(|h| h.name == r.held_out)?;
        super::summary::subset_value(r, h, Subset::HeldOut, Measure::RocAuc, None)
    };
    let unit_table = frame(vec![
        col!(
            "unit",
            done.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
        ),
        col!(
            "held_out",
            done.iter().map(|r| r.held_out.clone()).collect::<Vec<_>>()
        ),
        col!(
            "arm",
            done.iter().map(|r| r.arm.clone()).collect::<Vec<_>>()
        ),
        col!("seed", done.iter().map(|r| r.seed).collect::<Vec<_>>()),
        col!(
            "epochs",
            done.iter().map(|r| r.epochs as u64).collect::<Vec<_>>()
        ),
        col!(
            "val_roc_auc",
            done.iter().map(|r| r.val_roc_auc).collect::<Vec<_>>()
        ),
        col!(
            "seen_roc_auc",
            done.iter().map(seen_auc).collect::<Vec<_>>()
        ),
        col!(
            "held_out_roc_auc",
            done.iter().map(held_auc).collect::<Vec<_>>()
        ),
        col!(
            "train_images_per_s",
            done.iter()
                .map(|r| r.train_images_per_second)
                .collect::<Vec<_>>()
        ),
        col!(
            "seconds",
            done.iter().map(|r| r.seconds).collect::<Vec<_>>()
        ),
    ])?;
    write_all(&unit_table, &tables, "units")?;

    // Figures: arms × (groups, mean).
    let style = PlotStyle::default();
    let mut cols = names.clone();
    cols.push("mean".into());
    let mut figures = Vec::new();
    for (subset, title) in [
        (Subset::HeldOut, "held-out ROC-AUC"),
        (Subset::Gap, "generalisation gap: seen − held-out ROC-AUC"),
    ] {
        let values: Vec<Vec<Option<f64>>> = arms
            .iter()
            .map(|a| {
                (0..names.len())
                    .map(Some)
                    .chain([None])
                    .map(|group| {
                        let m = GenMetric {
                            subset,
                            measure: Measure::RocAuc,
                            group,
                        };
                        s.metric(a, &m.name(&names)).map(|m| m.mean)
                    })
                    .collect()
            })
            .collect();
        let stem = out
            .join("figures")
            .join(format!("{}_roc_auc", subset.name()));
        let title = format!("{title}, mean over {} seeds", g.cfg.seeds.len());
        let paths = labelled_heatmap(
            &stem,
            &title,
            "arm",
            "held-out source",
            &arms,
            &cols,
            &values,
            &style,
        )?;
        figures.push((title, paths.png));
    }

    // The report.
    let mut page = ReportPage::new(format!(
        "Generalisation `{}`: leave-one-source-out",
        g.cfg.study.name
    ));
    let held: Vec<String> = g
        .groups
        .iter()
        .map(|h| {
            if h.sources == [h.name.clone()] {
                format!("`{}`", h.name)
            } else {
                format!("`{}` ({})", h.name, h.sources.join(", "))
            }
        })
        .collect();
    page.paragraph(format!(
        "{} units: {} held-out source(s) {} × {} arm(s) ({}) × {} seeds {:?}{}. For each held-out \
         source, every arm is trained with every seed on the other fake sources and all real \
         ones (the held-out source is removed from the train and validation splits, so early \
         stopping never sees it either), then scores all {} images of the {} split once. \
         *Seen* metrics use the real images and the fakes of the sources it trained on; \
         *held-out* metrics the real images and the held-out source's fakes; the *gap* is seen − \
         held-out (smaller is better). `mean` is the mean over the held-out sources, per seed. \
         Cells are means over seeds; `_pm` columns the half-width of their {pct:.0} % t \
         interval. Every table is also in `tables/` (CSV, Parquet), one row per unit in \
         `tables/units`.",
        done.len(),
        g.groups.len(),
        held.join(", "),
        arms.len(),
        arms.join(", "),
        g.cfg.seeds.len(),
        g.cfg.seeds,
        seconds
            .map(|t| format!(" (this run: {t:.0} s)"))
            .unwrap_or_default(),
        s.test_images,
        g.cfg.eval.split.name(),
    ));
    let opts = MarkdownOptions::default();
    // Guan et al.'s table first
    shown.sort_by_key(|(subset, _)| *subset != Subset::HeldOut);
    for (subset, t) in &shown {
        let caption = match subset {
            Subset::HeldOut => {
                "Held-out ROC-AUC, the shape of Guan et al.'s Table IV: rows arm, columns the \
                 held-out source, last the mean"
            }
            Subset::Seen => {
                "Seen ROC-AUC (the real images and the fake sources each model trained on)"
            }
            Subset::Gap => "Generalisation gap: seen − held-out ROC-AUC",
        };
        page.section(caption);
        page.table(t, &opts)?;
        if *subset == Subset::HeldOut {
            page.paragraph(
                "A held-out AUC below 0.5 is not noise around chance: the detector scores that \
                 source's fakes as *more real* than the real images — what it learned to call \
                 fake does not transfer, and the opposite of it does.",
            );
        }
    }
    page.section("The generalisation gap of each arm");
    let mut lines = Vec::new();
    for c in &gaps {
        lines.push(sentence(c, level));
    }
    page.paragraph(format!(
        "Held-out − seen, averaged over the held-out sources and paired by seed ({pct:.0} % CI \
         from a paired bootstrap over seeds and test images): a negative difference with a \
         verdict `lower` is a generalisation gap the data can tell from noise. Every subset \
         holds all the real test images, so the held-out subset has far fewer fakes against \
         its reals than the seen one: accuracy and macro-F1 move with that mix as well as with \
         the detector, while ROC-AUC and `fake_recall` (the share of fakes called fake) do \
         not — read the gap on those two.\n{}",
        lines.join("\n")
    ));
    page.section("Arms compared");
    let key: Vec<String> = s
        .comparisons
        .iter()
        .filter(|c| {
            c.metric == "held_out_roc_auc@mean"
                || c.metric == "gap_roc_auc@mean"
                || c.metric == "seen_roc_auc@mean"
        })
        .map(|c| sentence(c, level))
        .collect();
    page.paragraph(format!(
        "The study's comparisons among the arms that ran, on the means over held-out sources \
         (every metric, per source too, is in `tables/comparisons` and `summary.json`). The \
         differences are b − a, paired by seed, with a paired bootstrap over seeds and test \
         images; the verdict rule is the study's: a difference is called only when its CI \
         excludes 0 and the exact sign-flip test agrees. No correction for the number of \
         comparisons is made: read one verdict among many accordingly, and the primary \
         comparison (the first, the matched control) first.\n{}",
        key.join("\n")
    ));
    page.section("Figures");
    for (title, png) in &figures {
        page.image(title.clone(), png);
    }
    page.section("Why these numbers are not Guan et al.'s Table IV");
    page.paragraph(
        "Guan et al. train EfficientNet-b4 on FF++ and report video-level AUC on other data sets \
         (Celeb-DF-v2, DFDC-P, DFDC, WildDeepfake): generalisation across data sets, at full \
         resolution, with real videos. This study asks the same question — does the method help \
         on manipulations the detector never saw? — one source at a time inside one data set: \
         here the embedded default's synthetic DFFD (generated traces, not real manipulations), \
         EfficientNet-Lite0 at the study's small resolution, a few epochs on 2 CPU cores. The \
         table has their shape, not their quantity; cross-dataset numbers come from \
         `[[eval.datasets]]` in a study file or `dfr eval`. A difference between arms is only \
         claimed where the verdicts above say so.",
    );
    page.section("All comparisons");
    page.table(&comparisons, &opts)?;
    Ok(page.write(out)?)
}
