//! The statistics of a generalisation study: per unit, AUC / accuracy / macro-F1 on the seen
//! and on the held-out test images and their gap, per held-out group and averaged over the
//! groups; per arm the mean over seeds with its t interval; per comparison of arms the
//! study's paired statistics (bootstrap over seeds and test images, exact sign-flip test,
//! one verdict rule).

use super::{Generalization, HeldOut, UnitResult};
use crate::error::Result;
use crate::summary::{
    arm_summary, compare_series, ComparisonSummary, ItemBootstrap, MetricSummary, Summary,
};
use std::collections::BTreeMap;

/// A classification measure computed on a subset of the scored images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// ROC-AUC.
    RocAuc,
    /// Accuracy at 0.5.
    Accuracy,
    /// Macro-F1 at 0.5.
    MacroF1,
    /// The share of fakes called fake at 0.5 (the detection rate): unlike accuracy and
    /// macro-F1 it does not depend on how many fakes a subset holds against its reals.
    FakeRecall,
}

impl Measure {
    /// All, in report order.
    pub const ALL: [Measure; 4] = [
        Measure::RocAuc,
        Measure::Accuracy,
        Measure::MacroF1,
        Measure::FakeRecall,
    ];

    /// Name in metric names.
    pub fn name(self) -> &'static str {
        match self {
            Measure::RocAuc => "roc_auc",
            Measure::Accuracy => "accuracy",
            Measure::MacroF1 => "macro_f1",
            Measure::FakeRecall => "fake_recall",
        }
    }

    /// The measure of `labels` (0 real, 1 fake) and fake probabilities; `None` when
    /// undefined (one class only).
    ///
    /// ```
    /// use dfr_study::generalization::summary::Measure;
    /// let (y, p) = ([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]);
    /// assert_eq!(Measure::RocAuc.of(&y, &p), Some(0.75));
    /// assert_eq!(Measure::Accuracy.of(&y, &p), Some(0.5));
    /// assert_eq!(Measure::RocAuc.of(&[1, 1], &[0.2, 0.3]), None);
    /// ```
    pub fn of(self, labels: &[u32], probs: &[f64]) -> Option<f64> {
        let fakes = labels.iter().filter(|&&l| l == 1).count();
        if fakes == 0 || fakes == labels.len() {
            return None;
        }
        let t = dfr_metrics::DEFAULT_THRESHOLD;
        match self {
            Measure::RocAuc => dfr_metrics::roc_auc(labels, probs).ok(),
            Measure::FakeRecall => {
                let hit = labels
                    .iter()
                    .zip(probs)
                    .filter(|(&l, &p)| l == 1 && p >= t)
                    .count();
                Some(hit as f64 / fakes as f64)
            }
            Measure::Accuracy | Measure::MacroF1 => {
                let pred = dfr_metrics::predict(probs, t).ok()?;
                if self == Measure::Accuracy {
                    dfr_metrics::accuracy(labels, &pred).ok()
                } else {
                    dfr_metrics::binary_macro_f1(labels, &pred).ok()
                }
            }
        }
    }
}

/// Which test images a metric is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    /// The reals and the fakes of the sources the model trained on.
    Seen,
    /// The reals and the fakes of the held-out sources.
    HeldOut,
    /// Seen − held-out (lower is better: a smaller generalisation gap).
    Gap,
}

impl Subset {
    /// All, in report order.
    pub const ALL: [Subset; 3] = [Subset::Seen, Subset::HeldOut, Subset::Gap];

    /// Prefix in metric names.
    pub fn name(self) -> &'static str {
        match self {
            Subset::Seen => "seen",
            Subset::HeldOut => "held_out",
            Subset::Gap => "gap",
        }
    }
}

/// One metric of the summary: `<subset>_<measure>@<group>` (`@mean`: the mean over groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenMetric {
    /// Subset.
    pub subset: Subset,
    /// Measure.
    pub measure: Measure,
    /// Group index; `None` for the mean over groups.
    pub group: Option<usize>,
}

impl GenMetric {
    /// The metric's name, e.g. `held_out_roc_auc@faceapp`.
    ///
    /// ```
    /// use dfr_study::generalization::summary::{GenMetric, Measure, Subset};
    /// let groups = ["faceapp".to_string()];
    /// let m = GenMetric { subset: Subset::HeldOut, measure: Measure::RocAuc, group: Some(0) };
    /// assert_eq!(m.name(&groups), "held_out_roc_auc@faceapp");
    /// let m = GenMetric { subset: Subset::Gap, measure: Measure::Accuracy, group: None };
    /// assert_eq!(m.name(&groups), "gap_accuracy@mean");
    /// ```
    pub fn name(&self, groups: &[String]) -> String {
        format!(
            "{}_{}@{}",
            self.subset.name(),
            self.measure.name(),
            self.group.map_or("mean", |g| groups[g].as_str())
        )
    }

    /// Whether higher values are better (the gap: lower).
    pub fn higher_is_better(&self) -> bool {
        self.subset != Subset::Gap
    }
}

/// Every metric for `n_groups` groups: per group, then the means.
pub fn metrics(n_groups: usize) -> Vec<GenMetric> {
    let mut v = Vec::new();
    for group in (0..n_groups).map(Some).chain([None]) {
        for subset in Subset::ALL {
            for measure in Measure::ALL {
                v.push(GenMetric {
                    subset,
                    measure,
                    group,
                });
            }
        }
    }
    v
}

/// The measure of one unit on one subset, on the images `items` (indices into the scored
/// images, repeats allowed; all when `None`): the real images with the held-out fakes, or
/// with the fakes of the sources trained on (fakes of neither are left out).
///
/// ```
/// use dfr_study::generalization::summary::{subset_value, Measure, Subset};
/// use dfr_study::generalization::{HeldOut, UnitResult};
/// let scores = dfr_train::evaluate::ScoredSamples {
///     indices: vec![0, 1, 2, 3, 4],
///     sources: ["ffhq", "ffhq", "faceapp", "stargan", "other"].map(String::from).to_vec(),
///     labels: vec![0, 0, 1, 1, 1],
///     fake_prob: vec![0.2, 0.6, 0.9, 0.4, 0.1],
///     bad_images: 0,
/// };
/// let r = UnitResult {
///     id: "held-out-stargan/baseline/seed-0".into(), held_out: "stargan".into(),
///     arm: "baseline".into(), seed: 0, key: serde_json::Value::Null, epochs: 1,
///     best_epoch: Some(0), val_roc_auc: None, train_images_per_second: 1.0, scores,
///     seconds: 1.0,
/// };
/// let h = HeldOut { name: "stargan".into(), sources: vec!["stargan".into()],
///                   seen: vec!["faceapp".into()] };
/// // seen: the reals (0.2, 0.6) and faceapp (0.9); held-out: the reals and stargan (0.4)
/// assert_eq!(subset_value(&r, &h, Subset::Seen, Measure::RocAuc, None), Some(1.0));
/// assert_eq!(subset_value(&r, &h, Subset::HeldOut, Measure::RocAuc, None), Some(0.5));
/// assert_eq!(subset_value(&r, &h, Subset::Gap, Measure::RocAuc, None), Some(0.5));
/// assert_eq!(subset_value(&r, &h, Subset::HeldOut, Measure::FakeRecall, None), Some(0.0));
/// // on a resample: the first real twice and faceapp
/// assert_eq!(subset_value(&r, &h, Subset::Seen, Measure::Accuracy, Some(&[0, 0, 2])), Some(1.0));
/// ```
pub fn subset_value(
    r: &UnitResult,
    held: &HeldOut,
    subset: Subset,
    measure: Measure,
    items: Option<&[usize]>,
) -> Option<f64> {
    let on = |held_out: bool| {
        let s = &r.scores;
        let fakes = if held_out { &held.sources } else { &held.seen };
        let keep = |i: usize| s.labels[i] == 0 || fakes.iter().any(|h| h == &s.sources[i]);
        let all: Vec<usize>;
        let idx = match items {
            Some(i) => i,
            None => {
                all = (0..s.labels.len()).collect();
                &all
            }
        };
        let (y, p): (Vec<u32>, Vec<f64>) = idx
            .iter()
            .filter(|&&i| keep(i))
            .map(|&i| (s.labels[i], s.fake_prob[i]))
            .unzip();
        measure.of(&y, &p)
    };
    match subset {
        Subset::Seen => on(false),
        Subset::HeldOut => on(true),
        Subset::Gap => Some(on(false)? - on(true)?),
    }
}

/// The units of a study arranged `[group][arm][seed]` (arm positions as in
/// [`Generalization::arms`], seeds in study order).
pub type Grid<'a> = Vec<Vec<Vec<&'a UnitResult>>>;

/// Arranges finished units (every unit present).
pub fn grid<'a>(g: &Generalization, done: &'a [UnitResult]) -> Grid<'a> {
    g.groups
        .iter()
        .map(|h| {
            g.arms
                .iter()
                .map(|&a| {
                    let arm = &g.cfg.arms[a].name;
                    g.cfg
                        .seeds
                        .iter()
                        .filter_map(|s| {
                            done.iter()
                                .find(|r| r.held_out == h.name && &r.arm == arm && r.seed == *s)
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The value of metric `m` for arm position `a` and seed index `s`.
pub fn value(
    g: &Generalization,
    units: &Grid<'_>,
    m: &GenMetric,
    a: usize,
    s: usize,
    items: Option<&[usize]>,
) -> Option<f64> {
    match m.group {
        Some(k) => subset_value(units[k][a][s], &g.groups[k], m.subset, m.measure, items),
        None => {
            let mut sum = 0.0;
            for (k, h) in g.groups.iter().enumerate() {
                sum += subset_value(units[k][a][s], h, m.subset, m.measure, items)?;
            }
            Some(sum / g.groups.len() as f64)
        }
    }
}

/// The number of scored images when every unit scored the same images (same sources and
/// labels in the same order), the condition of a bootstrap over images; 0 otherwise.
pub fn common_items(done: &[UnitResult]) -> usize {
    let Some(first) = done.first() else {
        return 0;
    };
    let same = done.iter().all(|r| {
        r.scores.indices == first.scores.indices
            && r.scores.sources == first.scores.sources
            && r.scores.labels == first.scores.labels
    });
    if same {
        first.scores.labels.len()
    } else {
        0
    }
}

/// The per-seed values of `m` for arm position `a` (`None` if undefined for a seed).
fn series(g: &Generalization, units: &Grid<'_>, m: &GenMetric, a: usize) -> Option<Vec<f64>> {
    (0..g.cfg.seeds.len())
        .map(|s| value(g, units, m, a, s, None))
        .collect()
}

/// The paired comparison `b − a` of metric `m` between arm positions.
pub fn compare_arms(
    g: &Generalization,
    units: &Grid<'_>,
    n_items: usize,
    m: &GenMetric,
    a: usize,
    b: usize,
) -> Result<Option<ComparisonSummary>> {
    let (Some(va), Some(vb)) = (series(g, units, m, a), series(g, units, m, b)) else {
        return Ok(None);
    };
    let names: Vec<String> = g.groups.iter().map(|h| h.name.clone()).collect();
    let diff = |s: usize, items: &[usize]| {
        Some(value(g, units, m, b, s, Some(items))? - value(g, units, m, a, s, Some(items))?)
    };
    let items: Option<ItemBootstrap<'_>> = (n_items > 0).then_some((n_items, &diff));
    compare_series(
        &m.name(&names),
        m.higher_is_better(),
        &va,
        &vb,
        g.cfg.stats.level,
        g.cfg.stats.resamples,
        items,
    )
}

/// Held-out against seen for one arm position: `held_out − seen` of `measure` averaged over
/// the groups, paired by seed (and bootstrapped over the test images): the generalisation
/// gap with its test. Its `a` is `<arm> seen`, its `b` `<arm> held-out`.
pub fn gap_test(
    g: &Generalization,
    units: &Grid<'_>,
    n_items: usize,
    measure: Measure,
    a: usize,
) -> Result<Option<ComparisonSummary>> {
    let seen = GenMetric {
        subset: Subset::Seen,
        measure,
        group: None,
    };
    let held = GenMetric {
        subset: Subset::HeldOut,
        ..seen.clone()
    };
    let (Some(vs), Some(vh)) = (series(g, units, &seen, a), series(g, units, &held, a)) else {
        return Ok(None);
    };
    let diff = |s: usize, items: &[usize]| {
        Some(
            value(g, units, &held, a, s, Some(items))? - value(g, units, &seen, a, s, Some(items))?,
        )
    };
    let items: Option<ItemBootstrap<'_>> = (n_items > 0).then_some((n_items, &diff));
    let arm = &g.cfg.arms[g.arms[a]].name;
    Ok(compare_series(
        &format!("{}@mean", measure.name()),
        true,
        &vs,
        &vh,
        g.cfg.stats.level,
        g.cfg.stats.resamples,
        items,
    )?
    .map(|c| ComparisonSummary {
        a: format!("{arm} seen"),
        b: format!("{arm} held-out"),
        ..c
    }))
}

/// `summary.json` of a generalisation study.
pub fn summarize(g: &Generalization, done: &[UnitResult]) -> Result<Summary> {
    let level = g.cfg.stats.level;
    let units = grid(g, done);
    let n_items = common_items(done);
    let names: Vec<String> = g.groups.iter().map(|h| h.name.clone()).collect();
    let ms = metrics(g.groups.len());
    let mut arms = Vec::new();
    for (pos, &ai) in g.arms.iter().enumerate() {
        let mut m = BTreeMap::new();
        for metric in &ms {
            if let Some(s) =
                series(g, &units, metric, pos).and_then(|v| MetricSummary::of(&v, level))
            {
                m.insert(metric.name(&names), s);
            }
        }
        for (k, h) in g.groups.iter().enumerate() {
            let v: Option<Vec<f64>> = units[k][pos].iter().map(|r| r.val_roc_auc).collect();
            if let Some(s) = v.and_then(|v| MetricSummary::of(&v, level)) {
                m.insert(format!("val_roc_auc@{}", h.name), s);
            }
        }
        arms.push(arm_summary(&g.cfg, &g.cfg.arms[ai], m)?);
    }
    let mut comparisons = Vec::new();
    let pos = |n: &str| g.arms.iter().position(|&a| g.cfg.arms[a].name == n);
    for c in g.cfg.comparisons() {
        let (Some(a), Some(b)) = (pos(&c.a), pos(&c.b)) else {
            continue;
        };
        for metric in &ms {
            if let Some(s) = compare_arms(g, &units, n_items, metric, a, b)? {
                comparisons.push(ComparisonSummary {
                    a: c.a.clone(),
                    b: c.b.clone(),
                    ..s
                });
            }
        }
    }
    Ok(Summary {
        study: g.cfg.study.name.clone(),
        seeds: g.cfg.seeds.clone(),
        test_images: done.first().map_or(0, |r| r.scores.labels.len()),
        level,
        arms,
        comparisons,
        held_out: g.groups.clone(),
    })
}
