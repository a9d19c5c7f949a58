//! Tables beside the published numbers, plots and `report.md`.

use super::config::StudyConfig;
use super::ModelResults;
use crate::published::{AttackTable, Published};
use anyhow::Result;
use dfr_attacks::{AttackKind, EpsResult, RobustReport};
use dfr_metrics::{normalized_auc, AucNormalization, BinaryConfusion};
use dfr_report::polars::prelude::DataFrame;
use dfr_report::{frame, write_all, CurveAxes, MarkdownOptions, PlotStyle, ReportPage, Series};
use std::path::{Path, PathBuf};

/// F1 of the fake class (positive = fake) from a confusion matrix; 0 without true positives.
pub(crate) fn fake_f1(c: &BinaryConfusion) -> f64 {
    let (tp, fp, fn_) = (
        c.true_positives as f64,
        c.false_positives as f64,
        c.false_negatives as f64,
    );
    if tp == 0.0 {
        0.0
    } else {
        2.0 * tp / (2.0 * tp + fp + fn_)
    }
}

/// The attack's results at ε > 0, in grid order.
pub(crate) fn results(r: &RobustReport, kind: AttackKind) -> Vec<&EpsResult> {
    r.attacks
        .iter()
        .filter(|a| a.attack == kind)
        .flat_map(|a| a.results.iter())
        .filter(|e| e.eps > 0.0)
        .collect()
}

fn report_of(m: &ModelResults, kind: AttackKind) -> &RobustReport {
    &m.reports
        .iter()
        .find(|(k, _)| *k == kind)
        .expect("every attack evaluated")
        .1
}

fn published_table(p: &Published, kind: AttackKind) -> Option<&AttackTable> {
    p.attacks.get(kind.name())
}

/// Normalised area under a metric-vs-ε curve (the published convention).
pub(crate) fn nauc(eps: &[f64], v: &[f64]) -> Option<f64> {
    normalized_auc(eps, v, AucNormalization::ByMaxEps).ok()
}

struct Tables {
    clean: DataFrame,
    per_attack_baseline: Vec<(AttackKind, DataFrame)>,
    per_attack_comparison: Vec<(AttackKind, DataFrame)>,
    auc: DataFrame,
    cam: DataFrame,
}

fn build(models: &[ModelResults], p: &Published) -> Result<Tables> {
    let kinds = [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::MiFgsm];
    // Clean results (from the FGSM run's clean pass; every run's clean pass is identical).
    let mut names = Vec::new();
    let (mut acc, mut mf1, mut ff1, mut auc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut tn, mut fp, mut fn_, mut tp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in models {
        let c = &report_of(m, AttackKind::Fgsm).clean;
        names.push(m.strategy.clone());
        acc.push(Some(c.accuracy));
        mf1.push(Some(c.macro_f1));
        ff1.push(Some(fake_f1(&c.confusion)));
        auc.push(c.roc_auc);
        tn.push(Some(c.confusion.true_negatives));
        fp.push(Some(c.confusion.false_positives));
        fn_.push(Some(c.confusion.false_negatives));
        tp.push(Some(c.confusion.true_positives));
    }
    if let Some(pb) = p.clean.get("baseline") {
        names.push("published baseline".into());
        acc.push(Some(pb.accuracy));
        // The printed clean "F1" is macro-F1; the fake-class F1 follows from its matrix.
        mf1.push(Some(pb.f1));
        ff1.push(Some(fake_f1(&pb.binary_confusion())));
        auc.push(None);
        tn.push(Some(pb.confusion[0][0]));
        fp.push(Some(pb.confusion[0][1]));
        fn_.push(Some(pb.confusion[1][0]));
        tp.push(Some(pb.confusion[1][1]));
    }
    let clean = frame(vec![
        col!("model", names),
        col!("accuracy", acc),
        col!("macro_f1", mf1),
        col!("fake_f1", ff1),
        col!("roc_auc", auc),
        col!("tn", tn),
        col!("fp", fp),
        col!("fn", fn_),
        col!("tp", tp),
    ])?;

    let base = models
        .iter()
        .find(|m| m.strategy == "baseline")
        .expect("baseline");
    let reg = models
        .iter()
        .find(|m| m.strategy == "gradreg")
        .expect("gradreg");
    let mut per_attack_baseline = Vec::new();
    let mut per_attack_comparison = Vec::new();
    let mut auc_rows: Vec<(String, [Option<f64>; 10])> = Vec::new();
    for kind in kinds {
        let b = results(report_of(base, kind), kind);
        let r = results(report_of(reg, kind), kind);
        let pt = published_table(p, kind);
        let eps: Vec<f64> = b.iter().map(|e| e.eps).collect();
        let pubv = |f: fn(&AttackTable) -> &Vec<f64>| -> Vec<Option<f64>> {
            eps.iter()
                .map(|e| pt.and_then(|t| Published::at(f(t), &t.eps, *e)))
                .collect()
        };
        let get = |v: &[&EpsResult], f: fn(&EpsResult) -> f64| -> Vec<f64> {
            v.iter().map(|e| f(e)).collect()
        };
        let acc_b = get(&b, |e| e.metrics.accuracy);
        let acc_r = get(&r, |e| e.metrics.accuracy);
        let mf1_b = get(&b, |e| e.metrics.macro_f1);
        let mf1_r = get(&r, |e| e.metrics.macro_f1);
        let ff1_b = get(&b, |e| fake_f1(&e.metrics.confusion));
        let ff1_r = get(&r, |e| fake_f1(&e.metrics.confusion));
        per_attack_baseline.push((
            kind,
            frame(vec![
                col!("eps", eps.clone()),
                col!("accuracy", acc_b.clone()),
                col!("macro_f1", mf1_b.clone()),
                col!("fake_f1", ff1_b.clone()),
                col!(
                    "roc_auc",
                    b.iter().map(|e| e.metrics.roc_auc).collect::<Vec<_>>()
                ),
                col!("published_accuracy", pubv(|t| &t.baseline_accuracy)),
                col!("published_fake_f1", pubv(|t| &t.baseline_f1)),
            ])?,
        ));
        per_attack_comparison.push((
            kind,
            frame(vec![
                col!("eps", eps.clone()),
                col!("accuracy_baseline", acc_b.clone()),
                col!("accuracy_regularized", acc_r.clone()),
                col!("macro_f1_baseline", mf1_b.clone()),
                col!("macro_f1_regularized", mf1_r.clone()),
                col!("fake_f1_baseline", ff1_b.clone()),
                col!("fake_f1_regularized", ff1_r.clone()),
                col!(
                    "published_accuracy_baseline",
                    pubv(|t| &t.baseline_accuracy)
                ),
                col!(
                    "published_accuracy_regularized",
                    pubv(|t| &t.regularized_accuracy)
                ),
                col!("published_fake_f1_baseline", pubv(|t| &t.baseline_f1)),
                col!("published_fake_f1_regularized", pubv(|t| &t.regularized_f1)),
            ])?,
        ));
        auc_rows.push((
            kind.name().to_string(),
            [
                nauc(&eps, &acc_b),
                nauc(&eps, &acc_r),
                nauc(&eps, &mf1_b),
                nauc(&eps, &mf1_r),
                nauc(&eps, &ff1_b),
                nauc(&eps, &ff1_r),
                pt.map(|t| t.nauc_accuracy[0]),
                pt.map(|t| t.nauc_accuracy[1]),
                pt.map(|t| t.nauc_f1[0]),
                pt.map(|t| t.nauc_f1[1]),
            ],
        ));
    }
    let auc_names = [
        "nauc_accuracy_baseline",
        "nauc_accuracy_regularized",
        "nauc_macro_f1_baseline",
        "nauc_macro_f1_regularized",
        "nauc_fake_f1_baseline",
        "nauc_fake_f1_regularized",
        "published_nauc_accuracy_baseline",
        "published_nauc_accuracy_regularized",
        "published_nauc_fake_f1_baseline",
        "published_nauc_fake_f1_regularized",
    ];
    let mut cols = vec![col!(
        "attack",
        auc_rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()
    )];
    for (i, n) in auc_names.iter().enumerate() {
        cols.push(col!(n, auc_rows.iter().map(|r| r.1[i]).collect::<Vec<_>>()));
    }
    let auc = frame(cols)?;

    let mut attack = Vec::new();
    let mut eps = Vec::new();
    let mut vals: [Vec<Option<f64>>; 13] = Default::default();
    for (cb, cr) in base.cam.iter().zip(&reg.cam) {
        attack.push(cb.attack.name().to_string());
        eps.push(cb.eps);
        let (b, r) = (&cb.summary, &cr.summary);
        let count = |c: usize| Some(c as f64);
        for (i, v) in [
            b.iinc,
            r.iinc,
            b.pearson,
            r.pearson,
            b.ssim,
            r.ssim,
            b.top_k_iou,
            r.top_k_iou,
            count(b.n),
            count(b.both_empty),
            count(r.both_empty),
            count(b.one_empty),
            count(r.one_empty),
        ]
        .into_iter()
        .enumerate()
        {
            vals[i].push(v);
        }
    }
    let names = [
        "iinc_baseline",
        "iinc_regularized",
        "pearson_baseline",
        "pearson_regularized",
        "ssim_baseline",
        "ssim_regularized",
        "top20_iou_baseline",
        "top20_iou_regularized",
        "images",
        "both_empty_baseline",
        "both_empty_regularized",
        "one_empty_baseline",
        "one_empty_regularized",
    ];
    let mut cols = vec![col!("attack", attack), col!("eps", eps)];
    for (n, v) in names.iter().zip(vals) {
        cols.push(col!(n, v));
    }
    let cam = frame(cols)?;
    Ok(Tables {
        clean,
        per_attack_baseline,
        per_attack_comparison,
        auc,
        cam,
    })
}

fn curves(models: &[ModelResults], p: &Published, out: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut figs = Vec::new();
    for kind in [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::MiFgsm] {
        for (metric, label) in [("accuracy", "accuracy"), ("macro_f1", "macro-F1")] {
            let mut series = Vec::new();
            for m in models {
                let r = report_of(m, kind);
                let mut eps = vec![0.0];
                let mut v = vec![if metric == "accuracy" {
                    r.clean.accuracy
                } else {
                    r.clean.macro_f1
                }];
                for e in results(r, kind) {
                    eps.push(e.eps);
                    v.push(if metric == "accuracy" {
                        e.metrics.accuracy
                    } else {
                        e.metrics.macro_f1
                    });
                }
                series.push(Series::new(
                    if m.strategy == "gradreg" {
                        "regularized (ours)"
                    } else {
                        "baseline (ours)"
                    },
                    eps,
                    v,
                ));
            }
            if metric == "accuracy" {
                if let Some(t) = published_table(p, kind) {
                    series.push(Series::new(
                        "baseline (published)",
                        t.eps.clone(),
                        t.baseline_accuracy.clone(),
                    ));
                    series.push(Series::new(
                        "regularized (published)",
                        t.eps.clone(),
                        t.regularized_accuracy.clone(),
                    ));
                }
            }
            let stem = out
                .join("figures")
                .join(format!("{}_{metric}", kind.name()));
            let paths = dfr_report::metric_vs_eps(
                &stem,
                &format!("{} — {label} vs ε", kind.name().to_uppercase()),
                "ε (L∞, images in [0, 1])",
                label,
                &series,
                &CurveAxes {
                    y_range: Some((0.0, 1.0)),
                    ..CurveAxes::default()
                },
                &PlotStyle::default(),
            )?;
            figs.push((format!("{} {label}", kind.name()), paths.png));
        }
    }
    Ok(figs)
}

const WHY_DIFFERENT: &str = "Why the numbers differ from the published ones. (1) Data: the quick \
study runs on the synthetic DFFD (64 px procedural faces with modelled GAN and editing traces, \
amplified 10× so that a randomly initialised B0 learns them in a few CPU minutes), not the real \
DFFD, and trains from random initialisation for a few epochs instead of fine-tuning ImageNet \
weights, so its clean numbers are far below the published ones and its ε curves start lower; \
`experiments/dffd-paper.toml` is the faithful configuration. (2) The published \
PGD and MI-FGSM fed the model un-normalised images; here normalisation is inside the model and \
every attack perturbs real pixels in [0, 1], so ε means the same for all attacks. (3) The \
published regularised model was trained and clean-tested on doubly normalised images. (4) The \
published PIM gradient was ~0 (the normalised map was built from the same μ, σ leaves), so its \
Δ was rounding noise; here Δ follows the true gradient of the clean loss (parity-tested against \
PyTorch). (5) The published \"F1\" under attack was the binary F1 of the fake class; tables here \
give macro-F1 (both classes) and, for comparison, the fake-class F1 (published values in the \
`published_fake_f1` columns). The published clean \"F1 Score\" 0.9786 is macro-F1 (the mean of \
the fake-class 0.9945 and real-class 0.9627 F1 of its confusion matrix) and is filed as such. (6) The published \
\"IINC\" was SSIM between the clean image and a saved CAM overlay; here IINC is Dang et al.'s \
metric between the clean and adversarial CAMs (0 = identical, lower is more consistent), with \
Pearson, SSIM and top-20 % IoU of the maps beside it. (7) The published final run used α = 1.0 \
although the text says 0.5; the configuration here says what was run. Normalised AUC follows \
the published convention: trapezoid over the attack's ε grid divided by its largest ε.";

/// One sentence per measurement: how the regularised model differs from the baseline.
fn effect(models: &[ModelResults]) -> Option<String> {
    let base = models.iter().find(|m| m.strategy == "baseline")?;
    let reg = models.iter().find(|m| m.strategy == "gradreg")?;
    let signed = |d: f64| format!("{d:+.3}");
    let (cb, cr) = (
        &report_of(base, AttackKind::Fgsm).clean,
        &report_of(reg, AttackKind::Fgsm).clean,
    );
    let mut parts = vec![format!(
        "clean test accuracy {:.3} → {:.3} ({}), macro-F1 {:.3} → {:.3} ({}), ROC-AUC {} → {}",
        cb.accuracy,
        cr.accuracy,
        signed(cr.accuracy - cb.accuracy),
        cb.macro_f1,
        cr.macro_f1,
        signed(cr.macro_f1 - cb.macro_f1),
        cb.roc_auc.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
        cr.roc_auc.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
    )];
    let (mut better, mut worse, mut total) = (0, 0, 0);
    for kind in [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::MiFgsm] {
        let curve = |m: &ModelResults| {
            let r = results(report_of(m, kind), kind);
            let eps: Vec<f64> = r.iter().map(|e| e.eps).collect();
            let f1: Vec<f64> = r.iter().map(|e| e.metrics.macro_f1).collect();
            nauc(&eps, &f1)
        };
        if let (Some(b), Some(r)) = (curve(base), curve(reg)) {
            total += 1;
            better += usize::from(r > b);
            worse += usize::from(r < b);
            parts.push(format!(
                "{} normalised AUC of macro-F1 {b:.3} → {r:.3} ({})",
                kind.name().to_uppercase(),
                signed(r - b)
            ));
        }
    }
    let counts = if total == 0 {
        "no attack curve to compare".to_string()
    } else {
        format!(
            "the regularised model's curve area is higher under {better}, lower under {worse} \
             and equal under {} of {total} attacks",
            total - better - worse
        )
    };
    Some(format!(
        "Regularised vs baseline in this run: {}; {counts}. No verdict: these are single runs \
         (one seed per model) on {} test images, which give no confidence interval and no paired \
         test, so no difference here is detectable; another seed (`--set run.seed=N`) or device \
         can move the numbers by more than these differences.",
        parts.join("; "),
        cb.n
    ))
}

/// Writes every table (CSV, Parquet, Markdown), figure and `report.md`; returns its path.
pub fn write(
    cfg: &StudyConfig,
    out: &Path,
    models: &[ModelResults],
    gallery: Option<&Path>,
    seconds: f64,
) -> Result<PathBuf> {
    let p = Published::course_2025();
    let t = build(models, &p)?;
    let tables = out.join("tables");
    let opts = MarkdownOptions::default();
    write_all(&t.clean, &tables, "clean")?;
    for (k, df) in &t.per_attack_baseline {
        write_all(df, &tables, &format!("{}_baseline", k.name()))?;
    }
    for (k, df) in &t.per_attack_comparison {
        write_all(df, &tables, &format!("{}_comparison", k.name()))?;
    }
    write_all(&t.auc, &tables, "normalized_auc")?;
    write_all(&t.cam, &tables, "cam_consistency")?;
    let figs = curves(models, &p, out)?;

    let mut page = ReportPage::new(format!(
        "Study `{}`: baseline vs gradient regularisation",
        cfg.study.name
    ));
    page.paragraph(format!(
        "Generated by `cargo xtask reproduce-tables` in {:.0} s. Published numbers: {} ({}). \
         Tables are also in `tables/` as CSV and Parquet.",
        seconds, p.source.title, p.source.reference
    ));
    page.section("Training");
    for m in models {
        let last = m.training.epochs.last();
        page.paragraph(format!(
            "**{}**: {} epochs, best validation macro-F1 {} (epoch {}), {}; {:.1} training images/s.",
            m.strategy,
            m.training.epochs.len(),
            m.training.best_val_macro_f1.map(|v| format!("{v:.3}")).unwrap_or("—".into()),
            m.training.best_epoch.map(|e| (e + 1).to_string()).unwrap_or("—".into()),
            m.training.stop_reason,
            last.map(|l| l.images_per_second).unwrap_or(0.0)
        ));
    }
    if let Some(e) = effect(models) {
        page.section("Effect of gradient regularisation");
        page.paragraph(e);
    }
    page.section("Clean test results");
    page.table(&t.clean, &opts)?;
    for (k, df) in &t.per_attack_baseline {
        page.section(format!("{} (baseline)", k.name().to_uppercase()));
        page.table(df, &opts)?;
    }
    for (k, df) in &t.per_attack_comparison {
        page.section(format!(
            "{}: baseline vs regularised",
            k.name().to_uppercase()
        ));
        page.table(df, &opts)?;
        for (name, path) in figs.iter().filter(|(n, _)| n.starts_with(k.name())) {
            page.image(name.clone(), path);
        }
    }
    page.section("Normalised area under the metric-vs-ε curves");
    page.table(&t.auc, &opts)?;
    page.section("CAM consistency under attack (largest ε of each grid)");
    if let Ok((stage, side)) = cfg.cam_layer() {
        page.paragraph(format!(
            "Grad-CAM of feature stage {stage} ({side}×{side} maps, upsampled to the image)."
        ));
    }
    page.paragraph(
        "IINC: lower is more consistent (0 = identical maps). Pearson, SSIM, top-20 % IoU: higher is \
         more consistent. Means are over the image pairs where at least one of the two maps is \
         non-empty: `both_empty_*` pairs (two all-zero Grad-CAMs, which IINC would call identical \
         and SSIM would score 1) are left out and counted; `one_empty_*` pairs stay in. This \
         clean-vs-adversarial score uses Dang et al.'s IINC formula but is not Dang et al.'s IINC, \
         which compares a map with a ground-truth manipulation mask. The published study gives no \
         IINC values in its text (only a chart).",
    );
    page.table(&t.cam, &opts)?;
    if let Some(g) = gallery {
        page.image("Grad-CAM gallery", g);
    }
    page.section("Why the numbers differ");
    page.paragraph(WHY_DIFFERENT);
    Ok(page.write(out)?)
}
