//! The statistics of a study: per arm and metric, mean and CI over seeds; per comparison,
//! the paired difference, its CI (a bootstrap over seeds and test images where the metric
//! can be recomputed on resampled images, a t interval over seeds otherwise), the exact
//! sign-flip p-value and the one verdict rule ([`dfr_metrics::Verdict::from_interval`]).
//! Written as `summary.json`.

use crate::config::StudyConfig;
use crate::error::Result;
use crate::run::RunResult;
use crate::worst::{robust, WorstEval};
use dfr_attacks::{AttackKind, PerSample, RobustReport};
use dfr_metrics::{
    bootstrap_seeds_and_items, compare_paired, detectable_difference, mean_ci, normalized_auc,
    AucNormalization, BootstrapConfig, Verdict,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a metric is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricKind {
    /// Clean accuracy.
    CleanAccuracy,
    /// Clean macro-F1.
    CleanMacroF1,
    /// Clean ROC-AUC.
    CleanRocAuc,
    /// Normalised area under accuracy-vs-ε of a published attack.
    NaucAccuracy(AttackKind),
    /// Normalised area under macro-F1-vs-ε of a published attack.
    NaucMacroF1(AttackKind),
    /// Worst-case robust accuracy at the worst-case grid's ε index: a sample counts only if
    /// it survives every attack evaluated at that ε.
    WorstCase(usize),
    /// Mean clean-vs-adversarial non-containment (the IINC formula between the two maps) of
    /// the Grad-CAMs under an attack (lower: more stable).
    CamNonContainment(AttackKind),
    /// A localisation metric of the fake-class Grad-CAM against the manipulation masks,
    /// mean over the fake test images with a mask; clean (`attack` `None`) or under an
    /// attack at its largest ε.
    Localisation {
        /// The attack (`None`: clean images).
        attack: Option<AttackKind>,
        /// Which metric.
        metric: LocalisationMetric,
    },
    /// A clean metric on a `[[eval.datasets]]` entry (cross-dataset), frame- or
    /// video-level.
    Dataset {
        /// The entry's index in `eval.datasets`.
        index: usize,
        /// Video-level (the mean frame score per video) instead of frame-level.
        video: bool,
        /// Which metric.
        metric: DatasetMetric,
    },
    /// Best validation ROC-AUC seen in training.
    ValRocAuc,
}

/// The clean metrics of a cross-dataset evaluation ([`dfr_metrics::BinaryReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetMetric {
    /// ROC-AUC.
    RocAuc,
    /// Accuracy at 0.5.
    Accuracy,
    /// Average precision.
    AveragePrecision,
    /// Equal error rate (lower is better).
    Eer,
}

impl DatasetMetric {
    /// All, in report order.
    pub const ALL: [DatasetMetric; 4] = [
        DatasetMetric::RocAuc,
        DatasetMetric::Accuracy,
        DatasetMetric::AveragePrecision,
        DatasetMetric::Eer,
    ];

    /// Name in metric names (`<dataset>_video_roc_auc`, …).
    pub fn name(self) -> &'static str {
        match self {
            DatasetMetric::RocAuc => "roc_auc",
            DatasetMetric::Accuracy => "accuracy",
            DatasetMetric::AveragePrecision => "average_precision",
            DatasetMetric::Eer => "eer",
        }
    }

    /// Its value in a report.
    pub fn of(self, r: &dfr_metrics::BinaryReport) -> f64 {
        match self {
            DatasetMetric::RocAuc => r.roc_auc,
            DatasetMetric::Accuracy => r.accuracy,
            DatasetMetric::AveragePrecision => r.average_precision,
            DatasetMetric::Eer => r.eer,
        }
    }
}

/// The localisation metrics of a study ([`dfr_explain::localisation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalisationMetric {
    /// Dang et al.'s IINC (lower is better).
    Iinc,
    /// Pixel-wise binary classification accuracy (higher is better).
    Pbca,
    /// IoU of the top-20 % pixels with the mask (higher is better).
    TopKIou,
}

impl LocalisationMetric {
    /// All, in report order.
    pub const ALL: [LocalisationMetric; 3] = [
        LocalisationMetric::Iinc,
        LocalisationMetric::Pbca,
        LocalisationMetric::TopKIou,
    ];

    /// Name in metric names (`localisation_iinc`, …).
    pub fn name(self) -> &'static str {
        match self {
            LocalisationMetric::Iinc => "iinc",
            LocalisationMetric::Pbca => "pbca",
            LocalisationMetric::TopKIou => "top20_iou",
        }
    }

    /// Whether higher is better (false for IINC).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, LocalisationMetric::Iinc)
    }

    /// Its value in a summary.
    pub fn of(self, s: &dfr_explain::LocalisationSummary) -> Option<f64> {
        match self {
            LocalisationMetric::Iinc => Some(s.iinc),
            LocalisationMetric::Pbca => Some(s.pbca),
            LocalisationMetric::TopKIou => s.top_k_iou,
        }
    }
}

/// The name of a localisation metric: `localisation_<m>` clean, `<attack>_localisation_<m>`.
pub fn localisation_metric_name(attack: Option<AttackKind>, metric: LocalisationMetric) -> String {
    match attack {
        None => format!("localisation_{}", metric.name()),
        Some(k) => format!("{}_localisation_{}", k.name(), metric.name()),
    }
}

/// A named metric of a study.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Name in tables and `summary.json` (`clean_accuracy`, `pgd_nauc_macro_f1`, …).
    pub name: String,
    /// How it is computed.
    pub kind: MetricKind,
    /// Whether higher values are better.
    pub higher_is_better: bool,
}

impl Metric {
    fn new(name: impl Into<String>, kind: MetricKind, higher_is_better: bool) -> Metric {
        Metric {
            name: name.into(),
            kind,
            higher_is_better,
        }
    }

    /// Whether the metric can be recomputed on a resample of the test images.
    pub fn per_image(&self) -> bool {
        !matches!(
            self.kind,
            MetricKind::CamNonContainment(_)
                | MetricKind::ValRocAuc
                | MetricKind::Localisation { .. }
                | MetricKind::Dataset { .. }
        )
    }

    /// The number of test images the metric of `run` is computed from (0 when it is not
    /// computed from images).
    pub fn n_items(&self, run: &RunResult) -> usize {
        let p = match self.kind {
            MetricKind::CleanAccuracy | MetricKind::CleanMacroF1 | MetricKind::CleanRocAuc => {
                run.clean().map(|r| &r.per_sample)
            }
            MetricKind::NaucAccuracy(k) | MetricKind::NaucMacroF1(k) => {
                run.report(k).map(|r| &r.per_sample)
            }
            MetricKind::WorstCase(_) => worst_case_images(run),
            MetricKind::CamNonContainment(_)
            | MetricKind::ValRocAuc
            | MetricKind::Localisation { .. }
            | MetricKind::Dataset { .. } => None,
        };
        p.map_or(0, |p| p.labels.len())
    }

    /// The metric of `run` on the test images `items` (all when `None`).
    pub fn value(
        &self,
        cfg: &StudyConfig,
        run: &RunResult,
        items: Option<&[usize]>,
    ) -> Option<f64> {
        let items_of = |p: &PerSample| -> Vec<usize> {
            items
                .map(<[usize]>::to_vec)
                .unwrap_or_else(|| (0..p.labels.len()).collect())
        };
        match self.kind {
            MetricKind::CleanAccuracy | MetricKind::CleanMacroF1 | MetricKind::CleanRocAuc => {
                let p = &run.clean()?.per_sample;
                let it = items_of(p);
                let labels: Vec<u32> = it.iter().map(|&i| p.labels[i]).collect();
                match self.kind {
                    MetricKind::CleanAccuracy => p.correct(None, &it),
                    MetricKind::CleanMacroF1 => {
                        let preds: Vec<u32> = it.iter().map(|&i| p.clean_pred[i]).collect();
                        dfr_metrics::binary_macro_f1(&labels, &preds).ok()
                    }
                    _ => {
                        let scores: Vec<f64> = it.iter().map(|&i| p.clean_score[i]).collect();
                        dfr_metrics::roc_auc(&labels, &scores).ok()
                    }
                }
            }
            MetricKind::NaucAccuracy(k) | MetricKind::NaucMacroF1(k) => {
                let r = run.report(k)?;
                let p = &r.per_sample;
                let it = items_of(p);
                let labels: Vec<u32> = it.iter().map(|&i| p.labels[i]).collect();
                let (eps, idx) = eps_indices(r, k);
                let mut v = Vec::with_capacity(idx.len());
                for &e in &idx {
                    v.push(if matches!(self.kind, MetricKind::NaucAccuracy(_)) {
                        p.correct(Some((0, e)), &it)?
                    } else {
                        let preds: Vec<u32> = it.iter().map(|&i| p.adv_pred[0][e][i]).collect();
                        dfr_metrics::binary_macro_f1(&labels, &preds).ok()?
                    });
                }
                normalized_auc(&eps, &v, AucNormalization::ByMaxEps).ok()
            }
            MetricKind::WorstCase(ei) => {
                let eps = *cfg.worst_case.eps.get(ei)?;
                let evals = worst_case_evals(run, eps);
                if evals.is_empty() {
                    return None;
                }
                let it = items_of(worst_case_images(run)?);
                let mut n_robust = 0usize;
                for &i in &it {
                    n_robust += usize::from(robust(&evals, i)?);
                }
                (!it.is_empty()).then(|| n_robust as f64 / it.len() as f64)
            }
            MetricKind::CamNonContainment(k) => {
                run.cam
                    .iter()
                    .find(|c| c.attack == k)?
                    .summary
                    .non_containment
            }
            MetricKind::Localisation { attack, metric } => {
                let l = run.localisation.as_ref()?;
                let maps = match attack {
                    None => &l.clean,
                    Some(k) => &l.adversarial.iter().find(|a| a.attack == k)?.maps,
                };
                metric.of(maps.fakes.as_ref()?)
            }
            MetricKind::Dataset {
                index,
                video,
                metric,
            } => {
                let name = &cfg.eval.datasets.get(index)?.name;
                let (_, r) = run.datasets.iter().find(|(n, _)| n == name)?;
                Some(metric.of(if video { r.video.as_ref()? } else { &r.frame }))
            }
            MetricKind::ValRocAuc => run.val_auc,
        }
    }
}

/// The ε > 0 of an attack's report and their grid indices (the published convention: the
/// normalised area leaves ε = 0 out).
fn eps_indices(r: &RobustReport, k: AttackKind) -> (Vec<f64>, Vec<usize>) {
    let Some(a) = r.attacks.iter().find(|a| a.attack == k) else {
        return (Vec::new(), Vec::new());
    };
    a.results
        .iter()
        .enumerate()
        .filter(|(_, e)| e.eps > 0.0)
        .map(|(i, e)| (e.eps, i))
        .unzip()
}

/// The worst-case images of `run`: those of its random-noise probe, which runs first on
/// all of them (see [`crate::worst`]).
pub fn worst_case_images(run: &RunResult) -> Option<&PerSample> {
    run.noise.as_ref().map(|w| &w.per_sample)
}

/// Every single-attack evaluation of `run` at `eps` that covers worst-case images: the
/// worst-case attacks (each on the images the earlier ones left), and the published ones
/// whose grid holds `eps` (on the whole split, matched to the worst-case images by id). A
/// worst-case image is robust when it survives all of those that evaluated it.
pub fn worst_case_evals(run: &RunResult, eps: f64) -> Vec<WorstEval<'_>> {
    let Some(reference) = worst_case_images(run) else {
        return Vec::new();
    };
    run.worst
        .iter()
        .chain(run.reports.iter().map(|(_, r)| r))
        .filter_map(|r| WorstEval::of(r, reference, eps))
        .collect()
}

/// The masking probe of `run` at `eps`: (images robust to every white-box attack but
/// misclassified under random noise, images); `None` without a probe.
pub fn noise_only_errors(run: &RunResult, eps: f64) -> Option<(usize, usize)> {
    let noise = run.noise.as_ref()?;
    let a = noise.attacks.first()?;
    let ni = a.results.iter().position(|e| e.eps == eps)?;
    let p = &noise.per_sample;
    let evals = worst_case_evals(run, eps);
    let mut count = 0;
    for i in 0..p.labels.len() {
        let robust = robust(&evals, i) == Some(true);
        let noise_wrong = p.adv_pred.first()?.get(ni)?.get(i)? != &p.labels[i];
        count += usize::from(robust && noise_wrong);
    }
    Some((count, p.labels.len()))
}

/// The metrics a study reports, in order.
pub fn metrics(cfg: &StudyConfig) -> Vec<Metric> {
    use MetricKind::*;
    let mut m = vec![
        Metric::new("clean_accuracy", CleanAccuracy, true),
        Metric::new("clean_macro_f1", CleanMacroF1, true),
        Metric::new("clean_roc_auc", CleanRocAuc, true),
    ];
    for (k, _) in cfg.attacks.grids() {
        m.push(Metric::new(
            format!("{}_nauc_accuracy", k.name()),
            NaucAccuracy(k),
            true,
        ));
        m.push(Metric::new(
            format!("{}_nauc_macro_f1", k.name()),
            NaucMacroF1(k),
            true,
        ));
    }
    for (i, e) in cfg.worst_case.eps.iter().enumerate() {
        m.push(Metric::new(
            format!("worst_case_accuracy@{e}"),
            WorstCase(i),
            true,
        ));
    }
    for (k, _) in cfg.attacks.grids() {
        m.push(Metric::new(
            format!("{}_cam_non_containment", k.name()),
            CamNonContainment(k),
            false,
        ));
    }
    let attacks: Vec<Option<AttackKind>> = std::iter::once(None)
        .chain(cfg.attacks.grids().into_iter().map(|(k, _)| Some(k)))
        .collect();
    for attack in attacks {
        for metric in LocalisationMetric::ALL {
            m.push(Metric::new(
                localisation_metric_name(attack, metric),
                Localisation { attack, metric },
                metric.higher_is_better(),
            ));
        }
    }
    for (index, d) in cfg.eval.datasets.iter().enumerate() {
        for video in [false, true] {
            for metric in DatasetMetric::ALL {
                let level = if video { "video" } else { "frame" };
                m.push(Metric::new(
                    format!("{}_{level}_{}", d.name, metric.name()),
                    Dataset {
                        index,
                        video,
                        metric,
                    },
                    metric != DatasetMetric::Eer,
                ));
            }
        }
    }
    m.push(Metric::new("val_roc_auc", ValRocAuc, true));
    m
}

/// Mean, SD and CI of one metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 with one seed).
    pub sd: f64,
    /// Lower end of the t interval over seeds (`None` with one seed).
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// The value of each seed, in the study's seed order.
    pub per_seed: Vec<f64>,
}

impl MetricSummary {
    /// Mean, SD and t interval of per-seed `values` (`None` when empty).
    pub fn of(values: &[f64], level: f64) -> Option<MetricSummary> {
        if values.is_empty() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let ci = (values.len() >= 2)
            .then(|| mean_ci(values, level).ok())
            .flatten();
        Some(MetricSummary {
            mean,
            sd: ci.as_ref().map_or(0.0, |c| c.sd),
            ci_low: ci.as_ref().map(|c| c.ci_low),
            ci_high: ci.as_ref().map(|c| c.ci_high),
            per_seed: values.to_vec(),
        })
    }
}

/// One arm in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// Name.
    pub name: String,
    /// Strategy (`baseline`, `gradreg`).
    pub strategy: String,
    /// Whether the shallow part was frozen.
    pub frozen_shallow: bool,
    /// PIM direction (`gradient`, `random`; none for a baseline).
    pub direction: Option<String>,
    /// What the arm is for.
    pub about: String,
    /// Per metric.
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// One comparison of one metric in `summary.json`: `b − a`, paired by seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonSummary {
    /// Reference arm.
    pub a: String,
    /// Compared arm.
    pub b: String,
    /// Metric.
    pub metric: String,
    /// Whether higher values of the metric are better.
    pub higher_is_better: bool,
    /// Mean over seeds of `b − a`.
    pub mean_diff: f64,
    /// Lower end of the CI of the mean difference.
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// How the CI was made.
    pub ci_method: String,
    /// Two-sided exact sign-flip p over seeds (`None` with one seed).
    pub p_value: Option<f64>,
    /// Two-sided exact Wilcoxon signed-rank p (`None` with one seed).
    pub wilcoxon_p: Option<f64>,
    /// Seeds paired.
    pub n_seeds: usize,
    /// The smallest p the design allows, 2/2ⁿ.
    pub min_possible_p: f64,
    /// The smallest difference this design detects with 80 % power at α = 1 − level
    /// (`None`: no difference is detectable with this many seeds).
    pub detectable_difference: Option<f64>,
    /// `higher`, `lower` (b vs a) or `not_detectable`.
    pub verdict: Verdict,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Study name.
    pub study: String,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Test images evaluated.
    pub test_images: usize,
    /// Confidence level.
    pub level: f64,
    /// Per arm.
    pub arms: Vec<ArmSummary>,
    /// Per comparison and metric.
    pub comparisons: Vec<ComparisonSummary>,
    /// A generalisation study's held-out sources (`cargo xtask generalization`; absent in
    /// other studies), in the order of its metrics' `@<name>` suffixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_out: Vec<crate::generalization::HeldOut>,
}

impl Summary {
    /// The summary of `metric` in arm `arm`.
    pub fn metric(&self, arm: &str, metric: &str) -> Option<&MetricSummary> {
        self.arms
            .iter()
            .find(|a| a.name == arm)?
            .metrics
            .get(metric)
    }

    /// The comparison `b` vs `a` of `metric`.
    pub fn comparison(&self, a: &str, b: &str, metric: &str) -> Option<&ComparisonSummary> {
        self.comparisons
            .iter()
            .find(|c| c.a == a && c.b == b && c.metric == metric)
    }
}

/// One arm's entry in `summary.json`: its description (strategy, freezing, PIM direction)
/// and `metrics`.
pub fn arm_summary(
    cfg: &StudyConfig,
    spec: &crate::arm::ArmSpec,
    metrics: BTreeMap<String, MetricSummary>,
) -> Result<ArmSummary> {
    let ec = cfg.experiment_for(spec, cfg.seeds[0], &[])?;
    Ok(ArmSummary {
        name: spec.name.clone(),
        strategy: format!("{:?}", spec.strategy).to_lowercase(),
        frozen_shallow: ec.shallow_frozen(),
        direction: (spec.strategy == dfr_train::Strategy::Gradreg)
            .then(|| format!("{:?}", ec.gradreg.direction).to_lowercase()),
        about: spec.about.clone(),
        metrics,
    })
}

/// The statistics of `runs` (`runs[arm][seed]`, arms and seeds in study order).
pub fn summarize(cfg: &StudyConfig, runs: &[Vec<RunResult>]) -> Result<Summary> {
    let level = cfg.stats.level;
    let metrics = metrics(cfg);
    let mut arms = Vec::new();
    for (spec, rs) in cfg.arms.iter().zip(runs) {
        let mut m = BTreeMap::new();
        for metric in &metrics {
            let v: Option<Vec<f64>> = rs.iter().map(|r| metric.value(cfg, r, None)).collect();
            if let Some(s) = v.and_then(|v| MetricSummary::of(&v, level)) {
                m.insert(metric.name.clone(), s);
            }
        }
        arms.push(arm_summary(cfg, spec, m)?);
    }
    let mut comparisons = Vec::new();
    let index = |n: &str| cfg.arms.iter().position(|a| a.name == n);
    for c in cfg.comparisons() {
        let (Some(ia), Some(ib)) = (index(&c.a), index(&c.b)) else {
            continue;
        };
        for metric in metrics.iter().filter(|m| m.kind != MetricKind::ValRocAuc) {
            if let Some(s) = compare(cfg, metric, &runs[ia], &runs[ib], level)? {
                comparisons.push(ComparisonSummary {
                    a: c.a.clone(),
                    b: c.b.clone(),
                    ..s
                });
            }
        }
    }
    let test_images = runs
        .iter()
        .flatten()
        .find_map(|r| r.clean().map(|c| c.n_samples))
        .unwrap_or(0);
    Ok(Summary {
        study: cfg.study.name.clone(),
        seeds: cfg.seeds.clone(),
        test_images,
        level,
        arms,
        comparisons,
        held_out: Vec::new(),
    })
}

fn compare(
    cfg: &StudyConfig,
    metric: &Metric,
    a: &[RunResult],
    b: &[RunResult],
    level: f64,
) -> Result<Option<ComparisonSummary>> {
    let va: Option<Vec<f64>> = a.iter().map(|r| metric.value(cfg, r, None)).collect();
    let vb: Option<Vec<f64>> = b.iter().map(|r| metric.value(cfg, r, None)).collect();
    let (Some(va), Some(vb)) = (va, vb) else {
        return Ok(None);
    };
    // Paired items: every run of both arms must have evaluated the same number of images.
    let n_items = a.first().map_or(0, |r| metric.n_items(r));
    let n_items = if a.iter().chain(b).all(|r| metric.n_items(r) == n_items) {
        n_items
    } else {
        0
    };
    let diff = |s: usize, items: &[usize]| {
        Some(metric.value(cfg, &b[s], Some(items))? - metric.value(cfg, &a[s], Some(items))?)
    };
    let items: Option<ItemBootstrap<'_>> =
        (metric.per_image() && n_items > 0).then_some((n_items, &diff));
    compare_series(
        &metric.name,
        metric.higher_is_better,
        &va,
        &vb,
        level,
        cfg.stats.resamples,
        items,
    )
}

/// The test images a paired difference can be recomputed on: their number and the
/// difference `b − a` of seed `s` on a resample of them (`None` when undefined there).
pub type ItemBootstrap<'a> = (usize, &'a dyn Fn(usize, &[usize]) -> Option<f64>);

/// The comparison `b − a` of one metric from its per-seed values (`va[s]`, `vb[s]`, paired
/// by seed): mean difference; CI from a paired bootstrap over seeds and test images when
/// `items` is given (and it succeeds), a t interval over seeds otherwise; exact sign-flip
/// and Wilcoxon p; the smallest detectable difference; the one verdict rule. `None` without
/// seeds. `a` and `b` are left empty for the caller to fill.
///
/// ```
/// let a = [0.70, 0.72, 0.69, 0.71, 0.70, 0.73];
/// let b = [0.75, 0.78, 0.74, 0.77, 0.76, 0.79];
/// let c = dfr_study::summary::compare_series("auc", true, &a, &b, 0.95, 2000, None)
///     .unwrap()
///     .unwrap();
/// assert!((c.mean_diff - 0.0567).abs() < 1e-3);
/// assert_eq!(c.p_value, Some(2.0 / 64.0));
/// assert_eq!(c.verdict, dfr_metrics::Verdict::Higher);
/// ```
pub fn compare_series(
    metric: &str,
    higher_is_better: bool,
    va: &[f64],
    vb: &[f64],
    level: f64,
    resamples: usize,
    items: Option<ItemBootstrap<'_>>,
) -> Result<Option<ComparisonSummary>> {
    let n = va.len().min(vb.len());
    if n == 0 {
        return Ok(None);
    }
    let (va, vb) = (&va[..n], &vb[..n]);
    let d: Vec<f64> = va.iter().zip(vb).map(|(x, y)| y - x).collect();
    let mean_diff = d.iter().sum::<f64>() / n as f64;
    let alpha = 1.0 - level;
    let paired = (n >= 2)
        .then(|| compare_paired(va, vb, level))
        .transpose()?;
    let t = || {
        (
            paired.as_ref().map(|p| p.t_ci),
            "t interval over seeds".to_string(),
        )
    };
    let (ci, method) = match items {
        Some((n_items, diff)) => {
            let boot = bootstrap_seeds_and_items(
                n,
                n_items,
                &BootstrapConfig {
                    resamples,
                    level,
                    seed: 0,
                },
                diff,
            );
            match boot {
                Ok(c) => (
                    Some([c.lower, c.upper]),
                    format!(
                        "paired bootstrap over seeds and test images ({} resamples)",
                        c.resamples_used
                    ),
                ),
                Err(_) => t(),
            }
        }
        None => t(),
    };
    let p_value = paired.as_ref().map(|p| p.sign_flip.p);
    let verdict = match (ci, p_value) {
        (Some(ci), Some(p)) => Verdict::from_interval(ci, p, alpha),
        _ => Verdict::NotDetectable,
    };
    Ok(Some(ComparisonSummary {
        a: String::new(),
        b: String::new(),
        metric: metric.to_string(),
        higher_is_better,
        mean_diff,
        ci_low: ci.map(|c| c[0]),
        ci_high: ci.map(|c| c[1]),
        ci_method: method,
        p_value,
        wilcoxon_p: paired.as_ref().map(|p| p.wilcoxon_p),
        n_seeds: n,
        min_possible_p: dfr_metrics::min_sign_flip_p(n),
        detectable_difference: paired
            .as_ref()
            .and_then(|p| detectable_difference(p.sd_diff, n, alpha, 0.8)),
        verdict,
    }))
}
