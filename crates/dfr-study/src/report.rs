//! Tables (mean ± CI over seeds, the published numbers beside), figures with CI bands, the
//! comparisons and the published study's claims, and `report.md`.

use crate::config::StudyConfig;
use crate::error::Result;
use crate::published::{AttackTable, Published, WHY_DIFFERENT};
use crate::run::RunResult;
use crate::summary::{
    noise_only_errors, worst_case_evals, worst_case_images, ComparisonSummary, MetricSummary,
    Summary,
};
use crate::worst::WorstEval;
use dfr_attacks::{AttackKind, EpsResult, RobustReport};
use dfr_metrics::{normalized_auc, AucNormalization, BinaryConfusion, Verdict};
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

/// Normalised area under a metric-vs-ε curve (the published convention).
pub(crate) fn nauc(eps: &[f64], v: &[f64]) -> Option<f64> {
    normalized_auc(eps, v, AucNormalization::ByMaxEps).ok()
}

/// Seed statistics of per-seed values (one per run of an arm).
fn stat(values: &[f64], level: f64) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let pm = (values.len() >= 2)
        .then(|| dfr_metrics::mean_ci(values, level).ok())
        .flatten()
        .map(|c| (c.ci_high - c.ci_low) / 2.0);
    (Some(mean), pm)
}

/// Mean and CI band over seeds at each ε, per arm: (ε, mean, lower, upper).
type Curve = Vec<(f64, f64, f64, f64)>;

fn curve(runs: &[RunResult], kind: AttackKind, f: fn(&EpsResult) -> f64, level: f64) -> Curve {
    let per_run: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .filter_map(|r| r.report(kind))
        .map(|r| {
            r.attacks
                .iter()
                .filter(|a| a.attack == kind)
                .flat_map(|a| a.results.iter())
                .map(|e| (e.eps, f(e)))
                .collect()
        })
        .collect();
    let Some(first) = per_run.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let v: Vec<f64> = per_run
                .iter()
                .filter_map(|p| p.get(i).map(|x| x.1))
                .collect();
            let (m, pm) = stat(&v, level);
            let (m, pm) = (m.unwrap_or(f64::NAN), pm.unwrap_or(0.0));
            (first[i].0, m, m - pm, m + pm)
        })
        .collect()
}

fn published_table(p: &Published, kind: AttackKind) -> Option<&AttackTable> {
    p.attacks.get(kind.name())
}

fn arm_label(cfg: &StudyConfig, i: usize) -> String {
    cfg.arms[i].name.clone()
}

struct Tables {
    training: DataFrame,
    clean: DataFrame,
    per_attack: Vec<(AttackKind, DataFrame)>,
    auc: DataFrame,
    worst: Option<DataFrame>,
    cam: DataFrame,
    localisation: Option<DataFrame>,
    datasets: Option<DataFrame>,
    comparisons: DataFrame,
}

fn ms(m: Option<&MetricSummary>) -> (Option<f64>, Option<f64>) {
    match m {
        Some(m) => (
            Some(m.mean),
            m.ci_high.zip(m.ci_low).map(|(h, l)| (h - l) / 2.0),
        ),
        None => (None, None),
    }
}

fn build(cfg: &StudyConfig, runs: &[Vec<RunResult>], s: &Summary, p: &Published) -> Result<Tables> {
    let level = s.level;
    // Training.
    let (mut names, mut vf1, mut vf1pm, mut vauc, mut vauc_min, mut epochs, mut ips) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, rs) in runs.iter().enumerate() {
        names.push(arm_label(cfg, i));
        let f1: Vec<f64> = rs
            .iter()
            .filter_map(|r| r.training.best_val_macro_f1)
            .collect();
        let (m, pm) = stat(&f1, level);
        vf1.push(m);
        vf1pm.push(pm);
        let auc: Vec<f64> = rs.iter().filter_map(|r| r.val_auc).collect();
        vauc.push(stat(&auc, level).0);
        vauc_min.push(auc.iter().cloned().reduce(f64::min));
        epochs.push(
            stat(
                &rs.iter()
                    .map(|r| r.training.epochs.len() as f64)
                    .collect::<Vec<_>>(),
                level,
            )
            .0,
        );
        ips.push(
            stat(
                &rs.iter()
                    .map(|r| r.training.images_per_second)
                    .collect::<Vec<_>>(),
                level,
            )
            .0,
        );
    }
    let training = frame(vec![
        col!("arm", names.clone()),
        col!("best_val_macro_f1", vf1),
        col!("best_val_macro_f1_pm", vf1pm),
        col!("val_roc_auc", vauc),
        col!("val_roc_auc_min", vauc_min),
        col!("epochs", epochs),
        col!("train_images_per_s", ips),
    ])?;

    // Clean.
    let mut cols: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    let mut rows = names.clone();
    for metric in ["clean_accuracy", "clean_macro_f1", "clean_roc_auc"] {
        let (mut m, mut pm) = (vec![], vec![]);
        for a in &cfg.arms {
            let (x, y) = ms(s.metric(&a.name, metric));
            m.push(x);
            pm.push(y);
        }
        cols.push((metric.trim_start_matches("clean_").to_string(), m));
        cols.push((format!("{}_pm", metric.trim_start_matches("clean_")), pm));
    }
    let mut ff1: Vec<Option<f64>> = runs
        .iter()
        .map(|rs| {
            let v: Vec<f64> = rs
                .iter()
                .filter_map(|r| r.clean().map(|c| fake_f1(&c.clean.confusion)))
                .collect();
            stat(&v, level).0
        })
        .collect();
    if let Some(pb) = p.clean.get("baseline") {
        rows.push("published baseline".into());
        for (name, v) in cols.iter_mut() {
            v.push(match name.as_str() {
                "accuracy" => Some(pb.accuracy),
                // The printed clean "F1" is macro-F1; the fake-class F1 follows from its matrix.
                "macro_f1" => Some(pb.f1),
                _ => None,
            });
        }
        ff1.push(Some(fake_f1(&pb.binary_confusion())));
    }
    let mut c = vec![col!("model", rows)];
    c.extend(cols.into_iter().map(|(n, v)| col!(&n, v)));
    c.push(col!("fake_f1", ff1));
    let clean = frame(c)?;

    // Per attack: arm × ε rows, published rows beside.
    let mut per_attack = Vec::new();
    let mut auc_rows: (Vec<String>, Vec<String>, [Vec<Option<f64>>; 4]) =
        (vec![], vec![], Default::default());
    for (kind, _) in cfg.attacks.grids() {
        let (mut model, mut eps, mut acc, mut accpm, mut mf1, mut mf1pm, mut ff) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (i, rs) in runs.iter().enumerate() {
            let a = curve(rs, kind, |e| e.metrics.accuracy, level);
            let f = curve(rs, kind, |e| e.metrics.macro_f1, level);
            let k = curve(rs, kind, |e| fake_f1(&e.metrics.confusion), level);
            for j in 0..a.len() {
                if a[j].0 == 0.0 {
                    continue;
                }
                model.push(arm_label(cfg, i));
                eps.push(a[j].0);
                acc.push(Some(a[j].1));
                accpm.push(Some(a[j].3 - a[j].1));
                mf1.push(Some(f[j].1));
                mf1pm.push(Some(f[j].3 - f[j].1));
                ff.push(Some(k[j].1));
            }
        }
        if let Some(t) = published_table(p, kind) {
            for (label, a, f) in [
                ("published baseline", &t.baseline_accuracy, &t.baseline_f1),
                (
                    "published regularised",
                    &t.regularized_accuracy,
                    &t.regularized_f1,
                ),
            ] {
                for (j, e) in t.eps.iter().enumerate() {
                    model.push(label.to_string());
                    eps.push(*e);
                    acc.push(Some(a[j]));
                    accpm.push(None);
                    mf1.push(None);
                    mf1pm.push(None);
                    ff.push(Some(f[j]));
                }
            }
        }
        per_attack.push((
            kind,
            frame(vec![
                col!("model", model),
                col!("eps", eps),
                col!("accuracy", acc),
                col!("accuracy_pm", accpm),
                col!("macro_f1", mf1),
                col!("macro_f1_pm", mf1pm),
                col!("fake_f1", ff),
            ])?,
        ));
        for (i, a) in cfg.arms.iter().enumerate() {
            let _ = i;
            auc_rows.0.push(kind.name().into());
            auc_rows.1.push(a.name.clone());
            let (x, y) = ms(s.metric(&a.name, &format!("{}_nauc_accuracy", kind.name())));
            let (z, w) = ms(s.metric(&a.name, &format!("{}_nauc_macro_f1", kind.name())));
            for (k, v) in [x, y, z, w].into_iter().enumerate() {
                auc_rows.2[k].push(v);
            }
        }
        if let Some(t) = published_table(p, kind) {
            for (j, label) in ["published baseline", "published regularised"]
                .iter()
                .enumerate()
            {
                auc_rows.0.push(kind.name().into());
                auc_rows.1.push(label.to_string());
                auc_rows.2[0].push(Some(t.nauc_accuracy[j]));
                auc_rows.2[1].push(None);
                auc_rows.2[2].push(None);
                auc_rows.2[3].push(None);
            }
        }
    }
    let [na, napm, nf, nfpm] = auc_rows.2;
    let auc = frame(vec![
        col!("attack", auc_rows.0),
        col!("model", auc_rows.1),
        col!("nauc_accuracy", na),
        col!("nauc_accuracy_pm", napm),
        col!("nauc_macro_f1", nf),
        col!("nauc_macro_f1_pm", nfpm),
    ])?;

    // Worst case.
    let worst = if cfg.worst_case.eps.is_empty() {
        None
    } else {
        let (mut model, mut eps, mut wc, mut wcpm, mut publ, mut evals, mut steps_ok, mut masked) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        let (mut noise_acc, mut noise_only) = (vec![], vec![]);
        for (i, rs) in runs.iter().enumerate() {
            for e in &cfg.worst_case.eps {
                let na: Vec<f64> = rs
                    .iter()
                    .filter_map(|r| r.noise.as_ref()?.get(AttackKind::Pgd, *e))
                    .map(|x| x.metrics.accuracy)
                    .collect();
                noise_acc.push(stat(&na, level).0);
                let (k, n) = rs
                    .iter()
                    .filter_map(|r| noise_only_errors(r, *e))
                    .fold((0, 0), |(k, n), (a, b)| (k + a, n + b));
                noise_only.push(format!("{k} of {n}"));
                model.push(arm_label(cfg, i));
                eps.push(*e);
                let (m, pm) = ms(s.metric(&cfg.arms[i].name, &format!("worst_case_accuracy@{e}")));
                wc.push(m);
                wcpm.push(pm);
                // On the worst-case images, so that the two columns compare like with like.
                let pgd: Vec<f64> = rs
                    .iter()
                    .filter_map(|r| {
                        let images = worst_case_images(r)?;
                        let all: Vec<usize> = (0..images.labels.len()).collect();
                        WorstEval::of(r.report(AttackKind::Pgd)?, images, *e)?.accuracy(&all)
                    })
                    .collect();
                publ.push(stat(&pgd, level).0);
                // The most attacks an image met (a run leaves out an attack when the
                // earlier ones left no image to attack).
                evals.push(
                    rs.iter()
                        .map(|r| worst_case_evals(r, *e).len() as u64)
                        .max(),
                );
                let checks: Vec<bool> = rs
                    .iter()
                    .flat_map(|r| r.worst.iter())
                    .flat_map(|w| w.sanity.iter())
                    .filter(|c| c.name == "more_steps_not_weaker")
                    .map(|c| c.passed)
                    .collect();
                steps_ok.push(format!(
                    "{} of {}",
                    checks.iter().filter(|c| **c).count(),
                    checks.len()
                ));
                let m: u64 = rs
                    .iter()
                    .flat_map(|r| r.worst.iter())
                    .flat_map(|w| w.attacks.iter())
                    .flat_map(|a| a.results.iter())
                    .filter(|x| x.eps == *e)
                    .map(|x| x.masked_samples as u64)
                    .sum();
                masked.push(m);
            }
        }
        Some(frame(vec![
            col!("model", model),
            col!("eps", eps),
            col!("worst_case_accuracy", wc),
            col!("worst_case_accuracy_pm", wcpm),
            col!("published_protocol_pgd_accuracy", publ),
            col!("attacks_per_image", evals),
            col!("noise_accuracy", noise_acc),
            col!("noise_only_errors", noise_only),
            col!("more_steps_not_weaker_passed", steps_ok),
            col!("masked_gradient_samples", masked),
        ])?)
    };

    // CAM consistency.
    let (mut attack, mut model, mut nc, mut ncpm, mut pear, mut ssim, mut iou) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut images, mut both, mut one) = (vec![], vec![], vec![]);
    for (kind, _) in cfg.attacks.grids() {
        for (i, rs) in runs.iter().enumerate() {
            let sums: Vec<_> = rs
                .iter()
                .filter_map(|r| r.cam.iter().find(|c| c.attack == kind))
                .collect();
            if sums.is_empty() {
                continue;
            }
            attack.push(kind.name().to_string());
            model.push(arm_label(cfg, i));
            let (m, pm) = ms(s.metric(
                &cfg.arms[i].name,
                &format!("{}_cam_non_containment", kind.name()),
            ));
            nc.push(m);
            ncpm.push(pm);
            let mean = |f: fn(&dfr_explain::ConsistencySummary) -> Option<f64>| {
                let v: Vec<f64> = sums.iter().filter_map(|c| f(&c.summary)).collect();
                stat(&v, level).0
            };
            pear.push(mean(|c| c.pearson));
            ssim.push(mean(|c| c.ssim));
            iou.push(mean(|c| c.top_k_iou));
            images.push(sums.iter().map(|c| c.summary.n as u64).sum::<u64>());
            both.push(
                sums.iter()
                    .map(|c| c.summary.both_empty as u64)
                    .sum::<u64>(),
            );
            one.push(sums.iter().map(|c| c.summary.one_empty as u64).sum::<u64>());
        }
    }
    let cam = frame(vec![
        col!("attack", attack),
        col!("model", model),
        col!("non_containment", nc),
        col!("non_containment_pm", ncpm),
        col!("pearson", pear),
        col!("ssim", ssim),
        col!("top20_iou", iou),
        col!("image_pairs", images),
        col!("both_empty", both),
        col!("one_empty", one),
    ])?;

    let comparisons = comparisons_frame(&s.comparisons)?;
    Ok(Tables {
        training,
        clean,
        per_attack,
        auc,
        worst,
        cam,
        localisation: localisation_table(cfg, runs, level)?,
        datasets: datasets_table(cfg, s)?,
        comparisons,
    })
}

/// Cross-dataset evaluation: per arm and `[[eval.datasets]]` entry, frame- and video-level
/// AUC, accuracy and EER (mean ± CI half width over seeds). `None` without entries.
fn datasets_table(cfg: &StudyConfig, s: &Summary) -> Result<Option<DataFrame>> {
    if cfg.eval.datasets.is_empty() {
        return Ok(None);
    }
    let names = [
        "frame_roc_auc",
        "frame_accuracy",
        "frame_eer",
        "video_roc_auc",
        "video_accuracy",
        "video_eer",
    ];
    let (mut model, mut dataset) = (vec![], vec![]);
    let mut cols: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for n in names {
        cols.push((n.to_string(), vec![]));
        cols.push((format!("{n}_pm"), vec![]));
    }
    for (i, arm) in cfg.arms.iter().enumerate() {
        for d in &cfg.eval.datasets {
            model.push(arm_label(cfg, i));
            dataset.push(d.name.clone());
            for (k, n) in names.iter().enumerate() {
                let (m, pm) = ms(s.metric(&arm.name, &format!("{}_{n}", d.name)));
                cols[2 * k].1.push(m);
                cols[2 * k + 1].1.push(pm);
            }
        }
    }
    let mut columns = vec![col!("model", model), col!("dataset", dataset)];
    for (name, v) in cols {
        columns.push(col!(name, v));
    }
    Ok(Some(frame(columns)?))
}

/// The localisation of the fake-class Grad-CAM against the manipulation masks: per arm,
/// over all fakes, all reals and each source, clean and under each attack (mean ± CI half
/// width over seeds). `None` when no run has masks.
fn localisation_table(
    cfg: &StudyConfig,
    runs: &[Vec<RunResult>],
    level: f64,
) -> Result<Option<DataFrame>> {
    use crate::cam::MapsLocalisation;
    use dfr_explain::LocalisationSummary;
    if !runs.iter().flatten().any(|r| r.localisation.is_some()) {
        return Ok(None);
    }
    // the image sets: all fakes, all reals, then each source in the order first met
    let mut sets: Vec<String> = vec!["all fakes".into(), "all reals".into()];
    for l in runs
        .iter()
        .flatten()
        .filter_map(|r| r.localisation.as_ref())
    {
        for s in &l.clean.per_source {
            if !sets.contains(&s.source) {
                sets.push(s.source.clone());
            }
        }
    }
    fn pick<'a>(m: &'a MapsLocalisation, set: &str) -> Option<&'a LocalisationSummary> {
        match set {
            "all fakes" => m.fakes.as_ref(),
            "all reals" => m.reals.as_ref(),
            src => m
                .per_source
                .iter()
                .find(|s| s.source == src)
                .map(|s| &s.summary),
        }
    }
    let attacks: Vec<AttackKind> = cfg.attacks.grids().into_iter().map(|(k, _)| k).collect();
    let mut cols: Vec<(String, Vec<Option<f64>>)> = [
        "iinc",
        "iinc_pm",
        "pbca",
        "pbca_pm",
        "top20_iou",
        "top20_iou_pm",
    ]
    .iter()
    .map(|n| (n.to_string(), vec![]))
    .collect();
    for k in &attacks {
        for n in ["iinc", "iinc_pm", "pbca"] {
            cols.push((format!("{}_{n}", k.name()), vec![]));
        }
    }
    let (mut model, mut set_col, mut images, mut empty_maps) = (vec![], vec![], vec![], vec![]);
    for (i, rs) in runs.iter().enumerate() {
        for set in &sets {
            let clean: Vec<&LocalisationSummary> = rs
                .iter()
                .filter_map(|r| pick(&r.localisation.as_ref()?.clean, set))
                .collect();
            if clean.is_empty() {
                continue;
            }
            model.push(arm_label(cfg, i));
            set_col.push(set.clone());
            images.push(clean.iter().map(|c| c.n as u64).sum::<u64>());
            empty_maps.push(clean.iter().map(|c| c.map_empty as u64).sum::<u64>());
            let mut values: Vec<Option<f64>> = Vec::new();
            let mut push = |v: Vec<f64>| {
                let (m, pm) = stat(&v, level);
                values.push(m);
                values.push(pm);
            };
            push(clean.iter().map(|c| c.iinc).collect());
            push(clean.iter().map(|c| c.pbca).collect());
            push(clean.iter().filter_map(|c| c.top_k_iou).collect());
            for k in &attacks {
                let adv: Vec<&LocalisationSummary> = rs
                    .iter()
                    .filter_map(|r| {
                        let a = r
                            .localisation
                            .as_ref()?
                            .adversarial
                            .iter()
                            .find(|a| a.attack == *k)?;
                        pick(&a.maps, set)
                    })
                    .collect();
                let (m, pm) = stat(&adv.iter().map(|c| c.iinc).collect::<Vec<_>>(), level);
                let (pb, _) = stat(&adv.iter().map(|c| c.pbca).collect::<Vec<_>>(), level);
                values.extend([m, pm, pb]);
            }
            for ((_, col), v) in cols.iter_mut().zip(values) {
                col.push(v);
            }
        }
    }
    let mut columns = vec![
        col!("model", model),
        col!("images", set_col),
        col!("maps", images),
        col!("empty_maps", empty_maps),
    ];
    for (name, v) in cols {
        columns.push(col!(name, v));
    }
    Ok(Some(frame(columns)?))
}

/// The comparisons table: one row per comparison and metric (b − a, CI, p, verdict).
pub(crate) fn comparisons_frame(c: &[ComparisonSummary]) -> Result<DataFrame> {
    frame(vec![
        col!("b", c.iter().map(|c| c.b.clone()).collect::<Vec<_>>()),
        col!("a", c.iter().map(|c| c.a.clone()).collect::<Vec<_>>()),
        col!(
            "metric",
            c.iter().map(|c| c.metric.clone()).collect::<Vec<_>>(),
        ),
        col!(
            "mean_diff",
            c.iter().map(|c| c.mean_diff).collect::<Vec<_>>(),
        ),
        col!("ci_low", c.iter().map(|c| c.ci_low).collect::<Vec<_>>()),
        col!("ci_high", c.iter().map(|c| c.ci_high).collect::<Vec<_>>()),
        col!(
            "p_sign_flip",
            c.iter().map(|c| c.p_value).collect::<Vec<_>>(),
        ),
        col!(
            "n_seeds",
            c.iter().map(|c| c.n_seeds as u64).collect::<Vec<_>>(),
        ),
        col!(
            "detectable_diff",
            c.iter()
                .map(|c| c.detectable_difference)
                .collect::<Vec<_>>(),
        ),
        col!("verdict", c.iter().map(verdict_word).collect::<Vec<_>>()),
    ])
    .map_err(Into::into)
}

/// `b higher`, `b lower` or `not detectable`, with better/worse for the metric's direction.
pub(crate) fn verdict_word(c: &ComparisonSummary) -> String {
    match c.verdict {
        Verdict::NotDetectable => "not detectable".into(),
        v => {
            let higher = v == Verdict::Higher;
            let better = higher == c.higher_is_better;
            format!(
                "{} {} ({})",
                c.b,
                if higher { "higher" } else { "lower" },
                if better { "better" } else { "worse" }
            )
        }
    }
}

fn curves(
    cfg: &StudyConfig,
    runs: &[Vec<RunResult>],
    p: &Published,
    level: f64,
    out: &Path,
) -> Result<Vec<(String, PathBuf)>> {
    let mut figs = Vec::new();
    for (kind, _) in cfg.attacks.grids() {
        for (metric, label) in [("accuracy", "accuracy"), ("macro_f1", "macro-F1")] {
            let f: fn(&EpsResult) -> f64 = if metric == "accuracy" {
                |e| e.metrics.accuracy
            } else {
                |e| e.metrics.macro_f1
            };
            let mut series = Vec::new();
            for (i, rs) in runs.iter().enumerate() {
                let c = curve(rs, kind, f, level);
                if c.is_empty() {
                    continue;
                }
                series.push(
                    Series::new(
                        format!("{} (mean, {:.0} % CI)", arm_label(cfg, i), level * 100.0),
                        c.iter().map(|x| x.0).collect(),
                        c.iter().map(|x| x.1).collect(),
                    )
                    .with_band(
                        c.iter().map(|x| x.2).collect(),
                        c.iter().map(|x| x.3).collect(),
                    ),
                );
            }
            if metric == "accuracy" {
                if let Some(t) = published_table(p, kind) {
                    series.push(Series::new(
                        "baseline (published)",
                        t.eps.clone(),
                        t.baseline_accuracy.clone(),
                    ));
                    series.push(Series::new(
                        "regularised (published)",
                        t.eps.clone(),
                        t.regularized_accuracy.clone(),
                    ));
                }
            }
            if series.is_empty() {
                continue;
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

/// The images a metric is computed from: the worst-case subset, the Grad-CAM images or the
/// whole evaluation split.
fn images_of(cfg: &StudyConfig, s: &Summary, metric: &str) -> String {
    if metric.starts_with("worst_case") {
        let n = cfg
            .worst_case
            .limit
            .map_or(s.test_images, |l| l.min(s.test_images));
        format!("{n} worst-case test images")
    } else if metric.ends_with("_cam_non_containment") {
        format!("{} Grad-CAM test images", cfg.cam.images.min(s.test_images))
    } else {
        format!("{} test images", s.test_images)
    }
}

/// One line per claim of the published study, judged by the primary comparison.
fn claims(cfg: &StudyConfig, s: &Summary) -> Vec<String> {
    let Some(primary) = cfg.comparisons().into_iter().next() else {
        return Vec::new();
    };
    let mut list: Vec<(String, String)> = Vec::new();
    for (k, _) in cfg.attacks.grids() {
        let n = k.name().to_uppercase();
        list.push((
            format!("the regularised model is more accurate under {n}"),
            format!("{}_nauc_accuracy", k.name()),
        ));
        list.push((
            format!("it has a higher normalised AUC of F1 under {n} (macro-F1 here)"),
            format!("{}_nauc_macro_f1", k.name()),
        ));
    }
    if let Some(e) = cfg.worst_case.eps.last() {
        list.push((
            format!("(not a published claim; the worst-case check) it is more robust to the strongest attacks at ε = {e}"),
            format!("worst_case_accuracy@{e}"),
        ));
    }
    for (k, _) in cfg.attacks.grids() {
        list.push((
            format!(
                "its Grad-CAMs are more stable under {} (lower clean-vs-adversarial non-containment)",
                k.name().to_uppercase()
            ),
            format!("{}_cam_non_containment", k.name()),
        ));
    }
    list.push((
        "its clean accuracy is no worse (the published clean numbers are the baseline's only)"
            .into(),
        "clean_accuracy".into(),
    ));
    let mut out = Vec::new();
    for (claim, metric) in list {
        let Some(c) = s.comparison(&primary.a, &primary.b, &metric) else {
            continue;
        };
        let ci = match (c.ci_low, c.ci_high) {
            (Some(l), Some(h)) => format!("[{l:+.3}, {h:+.3}]"),
            _ => "none (one seed)".into(),
        };
        let judged = match c.verdict {
            Verdict::NotDetectable => format!(
                "**not detectable** with {} seeds{}",
                c.n_seeds,
                match c.detectable_difference {
                    Some(d) =>
                        format!(" (this design detects differences of about {d:.3} or more)"),
                    None => format!(
                        " (no difference is detectable: the smallest possible p is {:.3})",
                        c.min_possible_p
                    ),
                }
            ),
            v => {
                let supports = (v == Verdict::Higher) == c.higher_is_better;
                if supports {
                    "**supported**".into()
                } else {
                    "**contradicted**".into()
                }
            }
        };
        out.push(format!(
            "- Claim: {claim}. `{metric}`, {} − {}: {:+.3}, {:.0} % CI {ci} ({}), sign-flip p {}, n = {} seeds × {}: {judged}.",
            c.b,
            c.a,
            c.mean_diff,
            s.level * 100.0,
            c.ci_method,
            c.p_value.map(|p| format!("{p:.3}")).unwrap_or("—".into()),
            c.n_seeds,
            images_of(cfg, s, &metric),
        ));
    }
    use AttackKind::*;
    for k in [Fgsm, Pgd, MiFgsm] {
        if !cfg.attacks.grids().iter().any(|(g, _)| *g == k) {
            out.push(format!(
                "- Claim: the regularised model is more accurate under {n} (and its normalised \
                 AUC and Grad-CAM stability under {n}): **not tested** here (this study's {} ε \
                 grid is empty).",
                k.name(),
                n = k.name().to_uppercase(),
            ));
        }
    }
    out
}

/// Writes every table (CSV, Parquet, Markdown), figure and `report.md`; returns its path.
pub fn write(
    cfg: &StudyConfig,
    out: &Path,
    runs: &[Vec<RunResult>],
    summary: &Summary,
    gallery: Option<&Path>,
    seconds: f64,
) -> Result<PathBuf> {
    let p = Published::course_2025();
    let t = build(cfg, runs, summary, &p)?;
    let tables = out.join("tables");
    let opts = MarkdownOptions::default();
    write_all(&t.training, &tables, "training")?;
    write_all(&t.clean, &tables, "clean")?;
    for (k, df) in &t.per_attack {
        write_all(df, &tables, k.name())?;
    }
    write_all(&t.auc, &tables, "normalized_auc")?;
    if let Some(w) = &t.worst {
        write_all(w, &tables, "worst_case")?;
    }
    write_all(&t.cam, &tables, "cam_consistency")?;
    if let Some(l) = &t.localisation {
        write_all(l, &tables, "localisation")?;
    }
    if let Some(d) = &t.datasets {
        write_all(d, &tables, "datasets")?;
    }
    write_all(&t.comparisons, &tables, "comparisons")?;
    let figs = curves(cfg, runs, &p, summary.level, out)?;
    let pct = summary.level * 100.0;

    let mut page = ReportPage::new(format!("Study `{}`", cfg.study.name));
    page.paragraph(format!(
        "Generated by `cargo xtask reproduce-tables` in {seconds:.0} s: {} arms × {} seeds ({:?}), \
         evaluated on n = {} {} images. Every number is a mean over seeds; `_pm` columns give the \
         half-width of its {pct:.0} % t interval over seeds. Published numbers: {} \
         (`{}`), beside ours where they exist. Tables are also in `tables/` as CSV and Parquet, \
         every statistic in `summary.json`.",
        cfg.arms.len(),
        summary.seeds.len(),
        summary.seeds,
        summary.test_images,
        cfg.eval.split.name(),
        p.source.title,
        p.source.reference,
    ));
    page.section("Arms");
    for a in &summary.arms {
        page.paragraph(format!(
            "**{}** — strategy {}, shallow part {}{}: {}.",
            a.name,
            a.strategy,
            if a.frozen_shallow {
                "frozen"
            } else {
                "trainable"
            },
            a.direction
                .as_ref()
                .map(|d| format!(", direction {d}"))
                .unwrap_or_default(),
            a.about
        ));
    }
    page.section("Claims of the published study");
    page.paragraph(format!(
        "Each claim is judged by the primary comparison (the first below: the regularised model \
         against its matched control). A claim is supported or contradicted only when the {pct:.0} % \
         CI of the difference excludes 0 and the exact two-sided sign-flip test over seeds gives \
         p ≤ {:.2}; otherwise the data cannot tell. With n seeds the smallest possible p is 2/2ⁿ.",
        1.0 - summary.level
    ));
    let cl = claims(cfg, summary);
    if cl.is_empty() {
        page.paragraph("No comparison was configured.");
    } else {
        page.paragraph(cl.join("\n"));
    }
    page.section("Training");
    page.paragraph(
        "Best validation macro-F1 (early-stopping metric) and validation ROC-AUC of the best epoch; \
         `val_roc_auc_min` is the worst seed's.",
    );
    page.table(&t.training, &opts)?;
    let weak: Vec<String> = summary
        .arms
        .iter()
        .filter_map(|a| {
            let m = a.metrics.get("val_roc_auc")?;
            let min = m.per_seed.iter().cloned().fold(f64::INFINITY, f64::min);
            (min < 0.8).then(|| format!("{} (lowest {min:.3})", a.name))
        })
        .collect();
    if !weak.is_empty() {
        page.paragraph(format!(
            "Warning: some seeds did not learn clearly (validation ROC-AUC below 0.8): {}. Their \
             robustness numbers describe a weak detector.",
            weak.join(", ")
        ));
    }
    page.section("Clean test results");
    page.table(&t.clean, &opts)?;
    for (k, df) in &t.per_attack {
        page.section(format!("{} (published protocol)", k.name().to_uppercase()));
        page.table(df, &opts)?;
        for (name, path) in figs
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{} ", k.name())))
        {
            page.image(name.clone(), path);
        }
    }
    page.section("Normalised area under the metric-vs-ε curves");
    page.table(&t.auc, &opts)?;
    if let Some(w) = &t.worst {
        page.section("Worst case (stronger attacks)");
        page.paragraph(format!(
            "Robust accuracy as the per-image minimum over PGD-{} with a random start ({} \
             restarts) and APGD-CE-{} (and the published-protocol attacks at the same ε, which \
             evaluated these images too), on {}: a sample counts as robust only if it \
             survives every attack. Each worst-case attack runs only on the images that the \
             attacks before it left correctly classified (AutoAttack's protocol: the same \
             per-image minimum as attacking every image with every attack, at the cost of the \
             survivors); `attacks_per_image` is the most attacks an image met, and \
             `masked_gradient_samples` counts over the images each attack ran on. The published protocol's \
             5-step PGD accuracy on the same images is beside it: if the worst case is far \
             below it, the published protocol overstates robustness. Gradient-masking checks, each of which can fail: \
             `noise_accuracy` is the accuracy under uniform random noise in the same ε-ball \
             and `noise_only_errors` counts the images (over all seeds) that every white-box \
             attack leaves correct but random noise flips — a white-box attack weaker than noise \
             on an image is not finding the model's errors there, so any count above 0 means \
             the worst case overstates robustness; `more_steps_not_weaker`: PGD with twice \
             the steps is not weaker (runs passed); `masked_gradient_samples`: samples whose \
             input gradient was zero or non-finite.",
            cfg.worst_case.pgd_steps,
            cfg.worst_case.pgd_restarts,
            cfg.worst_case.apgd_steps,
            match cfg.worst_case.limit.or(cfg.eval.limit) {
                Some(n) => format!("at most {n} test images spread evenly over the split"),
                None => "every test image".to_string(),
            }
        ));
        page.table(w, &opts)?;
    }
    page.section("CAM consistency under attack (largest ε of each grid)");
    if let Ok((stage, side)) = cfg.cam_layer() {
        page.paragraph(format!(
            "Grad-CAM of feature stage {stage} ({side}×{side} maps, upsampled to the image), \
             {} images per run.",
            cfg.cam.images
        ));
    }
    page.paragraph(
        "Non-containment: lower is more consistent (0 = identical maps). Pearson, SSIM, top-20 % \
         IoU: higher is more consistent. Means are over the image pairs where at least one of the \
         two maps is non-empty: `both_empty` pairs (two all-zero Grad-CAMs, which non-containment \
         would call identical and SSIM would score 1) are left out and counted over all seeds; \
         `one_empty` pairs stay in. Non-containment is Dang et al.'s IINC formula applied between \
         the clean and the adversarial map; it is not Dang et al.'s IINC, which compares a map \
         with the ground-truth manipulation mask (the name IINC is kept for that metric). The \
         published study calls its CAM score \"IINC\" but gives no values in its text (only a \
         chart).",
    );
    page.table(&t.cam, &opts)?;
    if let Some(g) = gallery {
        page.image("Grad-CAM gallery (first seed)", g);
    }
    if let Some(l) = &t.localisation {
        page.section("Localisation against the manipulation masks");
        page.paragraph(
            "The fake-class Grad-CAM (the same stage and images as above) against each image's \
             ground-truth manipulation mask, clean and under each attack at its largest ε: Dang \
             et al.'s IINC (CVPR 2020; lower is better, 0 = the map is the mask; an empty map on a \
             fake scores 1/(3 − mean mask), a non-empty map on a real image 1/(3 − mean map)), \
             PBCA (the share of pixels where map ≥ 0.5 agrees with mask ≥ 0.5; higher is better) \
             and the IoU of the map's top 20 % pixels with the mask (fakes only; higher is \
             better). Real images have all-zero masks, so their best map is empty. Means ± CI half \
             widths over seeds; `maps` counts the maps over all seeds, `empty_maps` the all-zero \
             ones. The synthetic masks are the regions the generator altered: the pasted mouth \
             (faceapp), the translated face and hair (stargan), the whole image (pggan, stylegan).",
        );
        page.table(l, &opts)?;
    }
    if let Some(d) = &t.datasets {
        page.section("Cross-dataset evaluation");
        page.paragraph(
            "Each run's checkpoint on the other data sets of `[[eval.datasets]]`, clean: \
             frame-level metrics over every image and video-level ones over the videos (a \
             video's score is the mean fake probability of its frames, grouped by the \
             manifest's `video` column; empty without one). Means ± CI half widths over seeds; \
             the paired comparisons below include these metrics.",
        );
        page.table(d, &opts)?;
    }
    page.section("Comparisons");
    page.paragraph(format!(
        "`mean_diff` = b − a averaged over seeds (paired by seed), its {pct:.0} % CI (a paired \
         bootstrap over seeds and test images for metrics computed from images; a t interval \
         over seeds for CAM scores), the exact two-sided sign-flip p over seeds, and the \
         smallest difference the design detects with 80 % power (`detectable_diff`, empty when \
         no difference is detectable with this many seeds)."
    ));
    page.table(&t.comparisons, &opts)?;
    page.section("Why the numbers differ");
    page.paragraph(
        WHY_DIFFERENT
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    );
    Ok(page.write(out)?)
}
