//! The ablation summary: one table, heatmaps over α × r, `report.md`.

use super::{Ablation, Cell, CellResult};
use crate::error::Result;
use dfr_attacks::AttackKind;
use dfr_report::{frame, heatmap, write_all, MarkdownOptions, PlotStyle, ReportPage};
use std::path::PathBuf;

const KINDS: [AttackKind; 3] = [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::MiFgsm];

/// Reads one number of a cell.
type Getter = Box<dyn Fn(&CellResult) -> Option<f64>>;

/// A per-cell quantity shown as a heatmap and a table column.
struct Quantity {
    stem: String,
    title: String,
    get: Getter,
}

fn quantities() -> Vec<Quantity> {
    let mut q = vec![
        Quantity {
            stem: "selection_score".into(),
            title: "selection score".into(),
            get: Box::new(|c| Some(c.selection.score)),
        },
        Quantity {
            stem: "val_macro_f1".into(),
            title: "validation macro-F1".into(),
            get: Box::new(|c| Some(c.selection.macro_f1)),
        },
        Quantity {
            stem: "test_macro_f1".into(),
            title: "clean test macro-F1".into(),
            get: Box::new(|c| Some(c.test_clean.macro_f1)),
        },
    ];
    for k in KINDS {
        q.push(Quantity {
            stem: format!("{}_nauc_macro_f1", k.name()),
            title: format!("{} normalised AUC of macro-F1", k.name().to_uppercase()),
            get: Box::new(move |c| c.curve(k).and_then(|a| a.nauc_macro_f1)),
        });
    }
    q
}

/// The selected cell: highest selection score; ties go to the earlier cell.
pub fn selected(results: &[CellResult]) -> Option<&CellResult> {
    results
        .iter()
        .fold(None, |best: Option<&CellResult>, c| match best {
            Some(b) if b.selection.score >= c.selection.score => Some(b),
            _ => Some(c),
        })
}

/// Writes `tables/ablation.*`, `figures/ablation_*.png|svg` and `report.md` from the finished
/// cells; returns the report path.
pub fn write(
    ab: &Ablation,
    cells: &[Cell],
    results: &[CellResult],
    seconds: Option<f64>,
) -> Result<PathBuf> {
    let out = &ab.out;
    let qs = quantities();
    let sel = selected(results);
    let opt = |v: Option<f64>| v;

    // The table: one row per finished cell.
    let mut columns = vec![
        col!(
            "cell",
            results.iter().map(|c| c.index as u64).collect::<Vec<_>>()
        ),
        col!(
            "id",
            results.iter().map(|c| c.id.clone()).collect::<Vec<_>>()
        ),
        col!(
            "alpha",
            results.iter().map(|c| opt(c.alpha)).collect::<Vec<_>>()
        ),
        col!("r", results.iter().map(|c| opt(c.r)).collect::<Vec<_>>()),
        col!(
            "selected",
            results
                .iter()
                .map(|c| sel.is_some_and(|s| s.index == c.index))
                .collect::<Vec<_>>(),
        ),
    ];
    let value = |q: &Quantity| results.iter().map(|c| (q.get)(c)).collect::<Vec<_>>();
    // selection score, validation macro-F1, then its robust part, then the test numbers.
    columns.push(col!(&qs[0].stem, value(&qs[0])));
    columns.push(col!(&qs[1].stem, value(&qs[1])));
    columns.push(col!(
        "val_robust_macro_f1",
        results
            .iter()
            .map(|c| c.selection.robust_macro_f1)
            .collect::<Vec<_>>(),
    ));
    columns.push(col!(
        "test_accuracy",
        results
            .iter()
            .map(|c| c.test_clean.accuracy)
            .collect::<Vec<_>>(),
    ));
    columns.push(col!(&qs[2].stem, value(&qs[2])));
    columns.push(col!(
        "test_roc_auc",
        results
            .iter()
            .map(|c| c.test_clean.roc_auc)
            .collect::<Vec<_>>(),
    ));
    for q in &qs[3..] {
        columns.push(col!(&q.stem, value(q)));
    }
    for k in KINDS {
        columns.push(col!(
            &format!("{}_nauc_accuracy", k.name()),
            results
                .iter()
                .map(|c| c.curve(k).and_then(|a| a.nauc_accuracy))
                .collect::<Vec<_>>(),
        ));
    }
    columns.push(col!(
        "epochs",
        results.iter().map(|c| c.epochs as u64).collect::<Vec<_>>()
    ));
    columns.push(col!(
        "train_images_per_s",
        results
            .iter()
            .map(|c| c.train_images_per_second)
            .collect::<Vec<_>>(),
    ));
    let table = frame(columns)?;
    write_all(&table, out.join("tables"), "ablation")?;

    // Heatmaps over α (rows) × r (columns); the baseline's value is in the title.
    let (alphas, rs) = (&ab.grid.alpha, &ab.grid.r);
    let baseline = results.iter().find(|c| c.alpha.is_none());
    let style = PlotStyle::default();
    let mut figures = Vec::new();
    for q in &qs {
        let values: Vec<Vec<Option<f64>>> = alphas
            .iter()
            .map(|a| {
                rs.iter()
                    .map(|r| {
                        results
                            .iter()
                            .find(|c| c.alpha == Some(*a) && c.r == Some(*r))
                            .and_then(|c| (q.get)(c))
                    })
                    .collect()
            })
            .collect();
        let title = match baseline.and_then(|b| (q.get)(b)) {
            Some(v) => format!("{} (baseline {v:.3})", q.title),
            None => q.title.clone(),
        };
        let stem = out.join("figures").join(format!("ablation_{}", q.stem));
        let paths = heatmap(&stem, &title, "α", "r", alphas, rs, &values, &style)?;
        figures.push((q.title.clone(), paths.png));
    }

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
        "{} of {} cells finished{}. Each cell trains one model (the baseline, or gradient \
         regularisation with loss (1−α)·L_clean + α·L_perturbed at radius r) and evaluates it on \
         the {} split: clean, FGSM ε {:?}, PGD ε {:?}, MI-FGSM ε {:?} ({} steps, step {}·ε). \
         Tables are also in `tables/` as CSV and Parquet; per-cell results in `cells/`.",
        results.len(),
        cells.len(),
        seconds
            .map(|t| format!(" (this run: {t:.0} s)"))
            .unwrap_or_default(),
        ab.cfg.eval.split,
        ab.cfg.attacks.fgsm,
        ab.cfg.attacks.pgd,
        ab.cfg.attacks.mifgsm,
        ab.cfg.attacks.steps,
        ab.cfg.attacks.alpha_ratio,
    ));
    page.section("Selection");
    page.paragraph(format!(
        "Cells are ranked on the {split} split, never on test: score = {a}·macro-F1 + {w}·macro-F1 \
         under {atk} at ε = {eps}.",
        split = s.split,
        a = 1.0 - s.robust_weight,
        w = s.robust_weight,
        atk = s.attack.name().to_uppercase(),
        eps = s.eps,
    ));
    if let Some(b) = sel {
        page.paragraph(format!(
            "Selected: **{}** (score {:.3}; validation macro-F1 {:.3}, under attack {:.3}; clean \
             test macro-F1 {:.3}).",
            b.id,
            b.selection.score,
            b.selection.macro_f1,
            b.selection.robust_macro_f1,
            b.test_clean.macro_f1
        ));
    }
    if let Some(b) = baseline {
        let reg: Vec<&CellResult> = results.iter().filter(|c| c.alpha.is_some()).collect();
        let mut lines = Vec::new();
        for q in qs.iter().filter(|q| q.stem != "val_macro_f1") {
            let Some(bv) = (q.get)(b) else { continue };
            let vals: Vec<(f64, &CellResult)> = reg
                .iter()
                .filter_map(|c| (q.get)(c).map(|v| (v, *c)))
                .collect();
            if vals.is_empty() {
                continue;
            }
            let above = vals.iter().filter(|(v, _)| *v > bv).count();
            let (best, cell) = vals
                .iter()
                .fold(vals[0], |a, x| if x.0 > a.0 { *x } else { a });
            lines.push(format!(
                "{}: baseline {bv:.3}; {above} of {} regularised cells above it; best {best:.3} \
                 (`{}`)",
                q.title,
                vals.len(),
                cell.id
            ));
        }
        if !lines.is_empty() {
            page.section("Regularised cells vs the baseline");
            page.paragraph(format!(
                "{}. Single runs per cell: another seed can move a cell by more than the \
                 differences between cells, so compare several seeds before concluding.",
                lines.join("; ")
            ));
        }
    }
    page.section("All cells");
    page.table(&table, &MarkdownOptions::default())?;
    page.section("Heatmaps");
    page.paragraph("Rows α, columns r; blank cells have not finished.");
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
