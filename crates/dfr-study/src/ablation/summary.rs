//! The ablation summary: per grid point the mean over seeds with its CI half-width, heatmaps
//! of the means over α × r (and of the selection score's CI width), the point selected on
//! validation only, and that point against the baseline, paired by seed, with the same
//! statistics and verdict rule as a study. Never a "best of k cells on test" statement.

use super::{Ablation, Cell, CellResult};
use crate::error::Result;
use dfr_attacks::AttackKind;
use dfr_metrics::{compare_paired, mean_ci, Verdict};
use dfr_report::{frame, heatmap, write_all, MarkdownOptions, PlotStyle, ReportPage};
use std::path::PathBuf;

const KINDS: [AttackKind; 3] = [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::MiFgsm];

/// Reads one number of a cell.
type Getter = Box<dyn Fn(&CellResult) -> Option<f64>>;

/// A per-cell quantity: a table column (mean and CI half-width over seeds) and a heatmap.
struct Quantity {
    stem: String,
    title: String,
    /// Measured on the test split (never used to select).
    test: bool,
    get: Getter,
}

fn quantities() -> Vec<Quantity> {
    let q = |stem: &str, title: &str, test: bool, get: Getter| Quantity {
        stem: stem.into(),
        title: title.into(),
        test,
        get,
    };
    let mut v = vec![
        q(
            "selection_score",
            "selection score (validation)",
            false,
            Box::new(|c| Some(c.selection.score)),
        ),
        q(
            "val_macro_f1",
            "validation macro-F1",
            false,
            Box::new(|c| Some(c.selection.macro_f1)),
        ),
        q(
            "val_robust_macro_f1",
            "validation macro-F1 under the selection attack",
            false,
            Box::new(|c| Some(c.selection.robust_macro_f1)),
        ),
        q(
            "test_accuracy",
            "clean test accuracy",
            true,
            Box::new(|c| Some(c.test_clean.accuracy)),
        ),
        q(
            "test_macro_f1",
            "clean test macro-F1",
            true,
            Box::new(|c| Some(c.test_clean.macro_f1)),
        ),
        q(
            "test_roc_auc",
            "clean test ROC-AUC",
            true,
            Box::new(|c| c.test_clean.roc_auc),
        ),
    ];
    for k in KINDS {
        v.push(Quantity {
            stem: format!("{}_nauc_macro_f1", k.name()),
            title: format!(
                "{} normalised AUC of macro-F1 (test)",
                k.name().to_uppercase()
            ),
            test: true,
            get: Box::new(move |c| c.curve(k).and_then(|a| a.nauc_macro_f1)),
        });
        v.push(Quantity {
            stem: format!("{}_nauc_accuracy", k.name()),
            title: format!(
                "{} normalised AUC of accuracy (test)",
                k.name().to_uppercase()
            ),
            test: true,
            get: Box::new(move |c| c.curve(k).and_then(|a| a.nauc_accuracy)),
        });
    }
    v
}

/// One grid point's finished cells, in seed order of the study.
struct PointResults<'a> {
    id: String,
    alpha: Option<f64>,
    r: Option<f64>,
    cells: Vec<&'a CellResult>,
}

impl PointResults<'_> {
    fn values(&self, q: &Quantity) -> Option<Vec<f64>> {
        self.cells.iter().map(|c| (q.get)(c)).collect()
    }

    /// Mean and CI half-width over seeds (no half-width with one seed).
    fn stat(&self, q: &Quantity, level: f64) -> (Option<f64>, Option<f64>) {
        let Some(v) = self.values(q).filter(|v| !v.is_empty()) else {
            return (None, None);
        };
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let pm = (v.len() >= 2)
            .then(|| mean_ci(&v, level).ok())
            .flatten()
            .map(|c| (c.ci_high - c.ci_low) / 2.0);
        (Some(mean), pm)
    }
}

/// The selected point: the highest mean selection score (validation) among the points with
/// every seed finished; ties go to the earlier point. `None` when no point is complete.
pub fn selected(results: &[CellResult], seeds: usize) -> Option<&str> {
    let mut best: Option<(&str, f64)> = None;
    let mut ids: Vec<&str> = Vec::new();
    for c in results {
        if !ids.contains(&c.point.as_str()) {
            ids.push(&c.point);
        }
    }
    for id in ids {
        let s: Vec<f64> = results
            .iter()
            .filter(|c| c.point == id)
            .map(|c| c.selection.score)
            .collect();
        if s.len() < seeds {
            continue;
        }
        let m = s.iter().sum::<f64>() / s.len() as f64;
        if best.is_none_or(|(_, b)| m > b) {
            best = Some((id, m));
        }
    }
    best.map(|(id, _)| id)
}

/// Writes `tables/ablation.*` (one row per point), `tables/ablation_cells.*` (one row per
/// cell), `figures/ablation_*.png|svg` and `report.md` from the finished cells; returns the
/// report path.
pub fn write(
    ab: &Ablation,
    cells: &[Cell],
    results: &[CellResult],
    seconds: Option<f64>,
) -> Result<PathBuf> {
    let out = &ab.out;
    let level = ab.cfg.stats.level;
    let seeds = &ab.cfg.seeds;
    let qs = quantities();
    let sel = selected(results, seeds.len());
    let points: Vec<PointResults> = ab
        .grid
        .points()
        .into_iter()
        .map(|p| {
            let mut cs: Vec<&CellResult> = results.iter().filter(|c| c.point == p.id).collect();
            cs.sort_by_key(|c| seeds.iter().position(|s| *s == c.seed));
            PointResults {
                alpha: p.gradreg.map(|g| g.0),
                r: p.gradreg.map(|g| g.1),
                id: p.id,
                cells: cs,
            }
        })
        .collect();

    // Per point: mean and CI half-width of every quantity.
    let mut columns = vec![
        col!(
            "point",
            points.iter().map(|p| p.id.clone()).collect::<Vec<_>>()
        ),
        col!("alpha", points.iter().map(|p| p.alpha).collect::<Vec<_>>()),
        col!("r", points.iter().map(|p| p.r).collect::<Vec<_>>()),
        col!(
            "seeds",
            points
                .iter()
                .map(|p| p.cells.len() as u64)
                .collect::<Vec<_>>()
        ),
        col!(
            "selected",
            points
                .iter()
                .map(|p| sel == Some(p.id.as_str()))
                .collect::<Vec<_>>()
        ),
    ];
    for q in &qs {
        let st: Vec<(Option<f64>, Option<f64>)> = points.iter().map(|p| p.stat(q, level)).collect();
        columns.push(col!(&q.stem, st.iter().map(|s| s.0).collect::<Vec<_>>()));
        columns.push(col!(
            &format!("{}_pm", q.stem),
            st.iter().map(|s| s.1).collect::<Vec<_>>()
        ));
    }
    let table = frame(columns)?;
    write_all(&table, out.join("tables"), "ablation")?;
    let cell_table = frame(vec![
        col!(
            "cell",
            results.iter().map(|c| c.index as u64).collect::<Vec<_>>()
        ),
        col!(
            "point",
            results.iter().map(|c| c.point.clone()).collect::<Vec<_>>()
        ),
        col!("seed", results.iter().map(|c| c.seed).collect::<Vec<_>>()),
        col!(
            "selection_score",
            results
                .iter()
                .map(|c| c.selection.score)
                .collect::<Vec<_>>()
        ),
        col!(
            "test_macro_f1",
            results
                .iter()
                .map(|c| c.test_clean.macro_f1)
                .collect::<Vec<_>>()
        ),
        col!(
            "epochs",
            results.iter().map(|c| c.epochs as u64).collect::<Vec<_>>()
        ),
        col!(
            "train_images_per_s",
            results
                .iter()
                .map(|c| c.train_images_per_second)
                .collect::<Vec<_>>()
        ),
    ])?;
    write_all(&cell_table, out.join("tables"), "ablation_cells")?;

    // Heatmaps over α (rows) × r (columns) of the means; the baseline's mean in the title;
    // the selection score's CI half-width as its own map.
    let (alphas, rs) = (&ab.grid.alpha, &ab.grid.r);
    let baseline = points
        .iter()
        .find(|p| p.alpha.is_none() && !p.cells.is_empty());
    let style = PlotStyle::default();
    let grid_of = |f: &dyn Fn(&PointResults) -> Option<f64>| -> Vec<Vec<Option<f64>>> {
        alphas
            .iter()
            .map(|a| {
                rs.iter()
                    .map(|r| {
                        points
                            .iter()
                            .find(|p| p.alpha == Some(*a) && p.r == Some(*r))
                            .and_then(f)
                    })
                    .collect()
            })
            .collect()
    };
    let mut figures = Vec::new();
    for q in &qs {
        let values = grid_of(&|p| p.stat(q, level).0);
        let title = match baseline.and_then(|b| b.stat(q, level).0) {
            Some(v) => format!("{}, mean over seeds (baseline {v:.3})", q.title),
            None => format!("{}, mean over seeds", q.title),
        };
        let stem = out.join("figures").join(format!("ablation_{}", q.stem));
        let paths = heatmap(&stem, &title, "α", "r", alphas, rs, &values, &style)?;
        figures.push((q.title.clone(), paths.png));
    }
    let values = grid_of(&|p| p.stat(&qs[0], level).1);
    let stem = out.join("figures").join("ablation_selection_score_ci");
    let title = format!(
        "selection score, {:.0} % CI half-width over seeds",
        level * 100.0
    );
    let paths = heatmap(&stem, &title, "α", "r", alphas, rs, &values, &style)?;
    figures.push((title, paths.png));

    // The report.
    let s = &ab.grid.selection;
    let missing: Vec<&Cell> = cells
        .iter()
        .filter(|c| !results.iter().any(|r| r.index == c.index))
        .collect();
    let mut page = ReportPage::new(format!(
        "Ablation `{}`: gradient regularisation over α × r",
        ab.cfg.study.name
    ));
    page.paragraph(format!(
        "{} of {} cells finished{} ({} grid points × {} seeds {:?}). Each cell trains one model \
         (the baseline, or gradient regularisation with loss (1−α)·L_clean + α·L_perturbed at \
         radius r) and evaluates it on the {} split: clean, FGSM ε {:?}, PGD ε {:?}, MI-FGSM ε \
         {:?} ({} steps, step {}·ε). Every number is a mean over seeds; `_pm` columns give the \
         half-width of its {:.0} % t interval. Tables are also in `tables/` as CSV and Parquet \
         (`ablation_cells` holds every cell); per-cell results in `cells/`.",
        results.len(),
        cells.len(),
        seconds
            .map(|t| format!(" (this run: {t:.0} s)"))
            .unwrap_or_default(),
        points.len(),
        seeds.len(),
        seeds,
        ab.cfg.eval.split.name(),
        ab.cfg.attacks.fgsm,
        ab.cfg.attacks.pgd,
        ab.cfg.attacks.mifgsm,
        ab.cfg.attacks.steps,
        ab.cfg.attacks.alpha_ratio,
        level * 100.0,
    ));
    page.section("Selection");
    page.paragraph(format!(
        "Points are ranked on the {split} split, never on test, by the mean over seeds of \
         score = {a}·macro-F1 + {w}·macro-F1 under {atk} at ε = {eps}; only points with every \
         seed finished are ranked. The test numbers of the other points are shown, not ranked.",
        split = s.split.name(),
        a = 1.0 - s.robust_weight,
        w = s.robust_weight,
        atk = s.attack.name().to_uppercase(),
        eps = s.eps,
    ));
    let sel_point = sel.and_then(|id| points.iter().find(|p| p.id == id));
    if let Some(p) = sel_point {
        let (m, pm) = p.stat(&qs[0], level);
        page.paragraph(format!(
            "Selected: **{}** (mean selection score {}{}).",
            p.id,
            m.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
            pm.map(|v| format!(" ± {v:.3}")).unwrap_or_default(),
        ));
    }
    if let (Some(p), Some(b)) = (sel_point, baseline) {
        if p.id != b.id {
            page.section("The selected point against the baseline (test, paired by seed)");
            let mut lines = Vec::new();
            for q in qs.iter().filter(|q| q.test) {
                let (Some(vp), Some(vb)) = (p.values(q), b.values(q)) else {
                    continue;
                };
                // pair by seed
                let pairs: Vec<(f64, f64)> = p
                    .cells
                    .iter()
                    .zip(&vp)
                    .filter_map(|(c, x)| {
                        let i = b.cells.iter().position(|d| d.seed == c.seed)?;
                        Some((vb[i], *x))
                    })
                    .collect();
                let (a, bb): (Vec<f64>, Vec<f64>) = pairs.iter().cloned().unzip();
                let line = match compare_paired(&a, &bb, level) {
                    Ok(c) => {
                        let v = Verdict::from_interval(c.t_ci, c.sign_flip.p, 1.0 - level);
                        let word = match v {
                            Verdict::NotDetectable => {
                                format!("no detectable difference with {} seeds", c.n)
                            }
                            Verdict::Higher => format!("{} higher", p.id),
                            Verdict::Lower => format!("{} lower", p.id),
                        };
                        format!(
                            "- {}: {:+.3}, {:.0} % CI [{:+.3}, {:+.3}], sign-flip p {:.3} (smallest \
                             possible {:.3}): {word}.",
                            q.title,
                            c.mean_diff,
                            level * 100.0,
                            c.t_ci[0],
                            c.t_ci[1],
                            c.sign_flip.p,
                            c.min_possible_p
                        )
                    }
                    Err(_) => format!(
                        "- {}: {} paired seed(s), too few for an interval: no verdict.",
                        q.title,
                        pairs.len()
                    ),
                };
                lines.push(line);
            }
            page.paragraph(format!(
                "Differences are {} − baseline. The selected point was chosen on validation, so \
                 these test comparisons are not inflated by the selection; they are still one \
                 comparison among those the grid offered.\n{}",
                p.id,
                lines.join("\n")
            ));
        }
    }
    page.section("All points");
    page.table(&table, &MarkdownOptions::default())?;
    page.section("Heatmaps");
    page.paragraph("Rows α, columns r; blank points have no finished cell.");
    for (title, png) in &figures {
        page.image(title.clone(), png);
    }
    if !missing.is_empty() {
        page.section("Missing cells");
        page.paragraph(format!(
            "Not finished: {}. Run them with `cargo xtask ablation --cell I` (or all with \
             `cargo xtask ablation`), then merge with `cargo xtask ablation --merge`.",
            missing
                .iter()
                .map(|c| format!("{} (`{}`)", c.index, c.id))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(page.write(out)?)
}
