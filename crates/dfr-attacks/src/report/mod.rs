//! The result of a robust evaluation: metrics per attack and ε, per source, the
//! per-sample worst case, sanity checks; written as JSON and CSV (the text table is
//! in `table`).

mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dfr_metrics::{macro_f1_from_matrix, roc_auc, BinaryConfusion};
use serde::{Deserialize, Serialize};

use crate::attack::AttackKind;
use crate::collect::{Collected, Outcome};
use crate::config::RobustEvalConfig;
use crate::error::{AttackError, Result};
use crate::sanity::{sanity_checks, SanityCheck, SanityInputs};

/// Columns of [`RobustReport::to_csv`].
pub const CSV_HEADER: [&str; 19] = [
    "attack",
    "eps",
    "step_size",
    "steps",
    "source",
    "n",
    "accuracy",
    "macro_f1",
    "roc_auc",
    "tn",
    "fp",
    "fn",
    "tp",
    "attack_success_rate",
    "linf_mean",
    "linf_max",
    "l2_mean",
    "l2_max",
    "masked_samples",
];

/// Classification metrics of one evaluation (clean or under attack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Samples.
    pub n: usize,
    /// Accuracy (robust accuracy under attack).
    pub accuracy: f64,
    /// Mean of the real-class and fake-class F1.
    pub macro_f1: f64,
    /// ROC-AUC of the fake probability (`None` with a single class or non-finite scores).
    pub roc_auc: Option<f64>,
    /// Confusion counts (rows true, columns predicted; fake positive).
    pub confusion: BinaryConfusion,
}

/// Accuracy on one source (generation method).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceAccuracy {
    /// Source name (`ffhq`, `stylegan_ffhq`, …).
    pub source: String,
    /// Samples of the source.
    pub n: usize,
    /// Accuracy on them.
    pub accuracy: f64,
}

/// Results of one attack at one ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpsResult {
    /// The radius.
    pub eps: f64,
    /// The step size: ε (FGSM), α (PGD, MI-FGSM), the initial 2ε (APGD).
    pub step_size: f64,
    /// Iterations run (1 for FGSM and at ε = 0).
    pub steps: usize,
    /// Metrics on the adversarial images.
    pub metrics: Metrics,
    /// Fraction of the clean-correct samples that the attack made wrong.
    pub attack_success_rate: f64,
    /// Accuracy per source.
    pub per_source: Vec<SourceAccuracy>,
    /// Mean per-sample ‖δ‖∞.
    pub linf_mean: f64,
    /// Largest ‖δ‖∞.
    pub linf_max: f64,
    /// Mean per-sample ‖δ‖₂.
    pub l2_mean: f64,
    /// Largest ‖δ‖₂.
    pub l2_max: f64,
    /// Samples whose input gradient was zero at the start or non-finite (possible
    /// gradient masking).
    pub masked_samples: usize,
}

/// All ε of one attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    /// The attack.
    pub attack: AttackKind,
    /// One entry per ε of [`RobustEvalConfig::eps_grid`] (ε = 0 first).
    pub results: Vec<EpsResult>,
}

/// Per-sample worst case over all attacks at one ε: a sample counts as robust only
/// if every attack leaves it correctly classified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstCaseResult {
    /// The radius.
    pub eps: f64,
    /// Samples.
    pub n: usize,
    /// Worst-case robust accuracy.
    pub accuracy: f64,
    /// Worst-case accuracy per source.
    pub per_source: Vec<SourceAccuracy>,
}

/// The result of a robust evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustReport {
    /// The configuration used.
    pub config: RobustEvalConfig,
    /// Samples evaluated.
    pub n_samples: usize,
    /// Real samples among them.
    pub n_real: usize,
    /// Fake samples among them.
    pub n_fake: usize,
    /// Clean evaluation (ε = 0, no attack).
    pub clean: Metrics,
    /// Clean accuracy per source.
    pub clean_per_source: Vec<SourceAccuracy>,
    /// Results per attack.
    pub attacks: Vec<AttackResult>,
    /// Per-sample worst case over the attacks, per ε (empty with a single attack).
    pub worst_case: Vec<WorstCaseResult>,
    /// Sanity checks (AutoAttack-style).
    pub sanity: Vec<SanityCheck>,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Where the adversarial examples were saved.
    pub adversarial_dir: Option<PathBuf>,
    /// Per-sample labels and predictions, in evaluation order (for paired resampling of
    /// items across models evaluated on the same samples).
    #[serde(default)]
    pub per_sample: PerSample,
}

/// Per-sample labels, clean scores and predictions under every attack and ε of a
/// [`RobustReport`], in the order the samples were evaluated.
///
/// ```
/// let p = dfr_attacks::PerSample {
///     index: vec![0, 1, 2],
///     labels: vec![0, 1, 1],
///     clean_pred: vec![0, 1, 0],
///     clean_score: vec![0.1, 0.9, 0.4],
///     adv_pred: vec![vec![vec![1, 1, 0]]],
/// };
/// assert_eq!(p.correct(None, &[0, 1, 2]), Some(2.0 / 3.0));
/// assert_eq!(p.correct(Some((0, 0)), &[0, 1]), Some(0.5));
/// assert_eq!(p.correct(None, &[]), None);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PerSample {
    /// Each sample's id: its index in the list [`crate::evaluate_samples`] was given (the
    /// split), whatever `limit` or `subset` chose; the batch's ids otherwise. Empty in
    /// reports written before it existed.
    #[serde(default)]
    pub index: Vec<usize>,
    /// True labels (0 = real, 1 = fake).
    pub labels: Vec<u32>,
    /// Clean predictions.
    pub clean_pred: Vec<u32>,
    /// Clean fake-class probabilities.
    pub clean_score: Vec<f64>,
    /// Predictions under attack: `[attack][eps][sample]`, attacks as configured, ε as in
    /// the report's grid (ε = 0 first).
    pub adv_pred: Vec<Vec<Vec<u32>>>,
}

impl PerSample {
    /// Accuracy over the samples `items` (indices, repeats allowed) of the clean predictions
    /// (`at = None`) or of attack `at.0` at grid index `at.1`; `None` without items or when
    /// out of range.
    pub fn correct(&self, at: Option<(usize, usize)>, items: &[usize]) -> Option<f64> {
        let preds = match at {
            None => &self.clean_pred,
            Some((a, e)) => self.adv_pred.get(a)?.get(e)?,
        };
        if items.is_empty() {
            return None;
        }
        let mut k = 0usize;
        for &i in items {
            k += usize::from(preds.get(i)? == self.labels.get(i)?);
        }
        Some(k as f64 / items.len() as f64)
    }
}

impl RobustReport {
    /// The result of `attack` at `eps` (exact match of the configured value).
    pub fn get(&self, attack: AttackKind, eps: f64) -> Option<&EpsResult> {
        self.attacks
            .iter()
            .find(|a| a.attack == attack)?
            .results
            .iter()
            .find(|r| r.eps == eps)
    }

    /// Whether every sanity check passed.
    pub fn sanity_passed(&self) -> bool {
        self.sanity.iter().all(|c| c.passed)
    }
}

/// Metrics of hard predictions and scores against labels.
pub fn compute_metrics(labels: &[u32], preds: &[u32], scores: &[f64]) -> Metrics {
    let mut c = BinaryConfusion::default();
    for (&l, &p) in labels.iter().zip(preds) {
        match (l, p) {
            (0, 0) => c.true_negatives += 1,
            (0, _) => c.false_positives += 1,
            (_, 0) => c.false_negatives += 1,
            _ => c.true_positives += 1,
        }
    }
    let n = labels.len();
    let correct = c.true_negatives + c.true_positives;
    Metrics {
        n,
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
        macro_f1: macro_f1_from_matrix(&c.to_matrix()),
        roc_auc: roc_auc(labels, scores).ok(),
        confusion: c,
    }
}

fn per_source(sources: &[String], correct: &[bool]) -> Vec<SourceAccuracy> {
    let mut m: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (s, &c) in sources.iter().zip(correct) {
        let e = m.entry(s.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(c);
    }
    m.into_iter()
        .map(|(s, (n, k))| SourceAccuracy {
            source: s.to_string(),
            n,
            accuracy: k as f64 / n as f64,
        })
        .collect()
}

impl RobustReport {
    /// Aggregates what a pass collected over `eps_grid` into the report.
    pub(crate) fn from_collected(
        config: &RobustEvalConfig,
        eps_grid: &[f64],
        col: &Collected,
        elapsed_s: f64,
        adversarial_dir: Option<PathBuf>,
    ) -> Result<RobustReport> {
        let labels = &col.labels;
        let n = labels.len();
        let metrics_of = |o: &[Outcome]| {
            let preds: Vec<u32> = o.iter().map(|x| x.pred).collect();
            let scores: Vec<f64> = o.iter().map(|x| x.score).collect();
            compute_metrics(labels, &preds, &scores)
        };
        let correct_of = |o: &[Outcome]| -> Vec<bool> {
            o.iter().zip(labels).map(|(x, l)| x.pred == *l).collect()
        };
        let clean_correct = correct_of(&col.clean);
        let n_clean_correct = clean_correct.iter().filter(|c| **c).count();
        let mut attacks = Vec::new();
        for (ai, &kind) in config.attacks.iter().enumerate() {
            let mut results = Vec::new();
            for (ei, &eps) in eps_grid.iter().enumerate() {
                let o = &col.adv[ai][ei];
                let schedule = config.params(kind, eps)?.schedule();
                let correct = correct_of(o);
                let flipped = clean_correct
                    .iter()
                    .zip(&correct)
                    .filter(|(c, a)| **c && !**a)
                    .count();
                let nf = o.len().max(1) as f64;
                results.push(EpsResult {
                    eps,
                    step_size: schedule.step_size as f64,
                    steps: schedule.steps,
                    metrics: metrics_of(o),
                    attack_success_rate: if n_clean_correct == 0 {
                        0.0
                    } else {
                        flipped as f64 / n_clean_correct as f64
                    },
                    per_source: per_source(&col.sources, &correct),
                    linf_mean: o.iter().map(|x| x.linf as f64).sum::<f64>() / nf,
                    linf_max: o.iter().map(|x| x.linf as f64).fold(0.0, f64::max),
                    l2_mean: o.iter().map(|x| x.l2 as f64).sum::<f64>() / nf,
                    l2_max: o.iter().map(|x| x.l2 as f64).fold(0.0, f64::max),
                    masked_samples: o.iter().filter(|x| x.masked).count(),
                });
            }
            attacks.push(AttackResult {
                attack: kind,
                results,
            });
        }
        let mut worst_case = Vec::new();
        if config.attacks.len() > 1 {
            for (ei, &eps) in eps_grid.iter().enumerate() {
                let robust: Vec<bool> = (0..n)
                    .map(|i| {
                        (0..config.attacks.len()).all(|ai| col.adv[ai][ei][i].pred == labels[i])
                    })
                    .collect();
                worst_case.push(WorstCaseResult {
                    eps,
                    n,
                    accuracy: robust.iter().filter(|r| **r).count() as f64 / n as f64,
                    per_source: per_source(&col.sources, &robust),
                });
            }
        }
        let clean = metrics_of(&col.clean);
        let sanity = sanity_checks(&SanityInputs {
            config,
            eps_grid,
            collected: col,
        });
        Ok(RobustReport {
            config: config.clone(),
            n_samples: n,
            n_real: labels.iter().filter(|l| **l == 0).count(),
            n_fake: labels.iter().filter(|l| **l == 1).count(),
            clean,
            clean_per_source: per_source(&col.sources, &clean_correct),
            attacks,
            worst_case,
            sanity,
            elapsed_s,
            adversarial_dir,
            per_sample: PerSample {
                index: col.ids.iter().map(|&i| i as usize).collect(),
                labels: labels.clone(),
                clean_pred: col.clean.iter().map(|o| o.pred).collect(),
                clean_score: col.clean.iter().map(|o| o.score).collect(),
                adv_pred: col
                    .adv
                    .iter()
                    .map(|a| {
                        a.iter()
                            .map(|e| e.iter().map(|o| o.pred).collect())
                            .collect()
                    })
                    .collect(),
            },
        })
    }
}

impl RobustReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| AttackError::serialize("robust report", "JSON", &e))
    }

    /// Writes the report as JSON, atomically.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        dfr_fs::write_atomic(path, self.to_json()?.as_bytes()).map_err(|e| AttackError::io(path, e))
    }

    /// The results as CSV, one row per (attack, ε, source); source `all` rows carry
    /// every metric, per-source rows `n` and accuracy. `clean` rows are the clean
    /// evaluation, `worst` rows the per-sample worst case over the attacks.
    pub fn to_csv(&self) -> Result<String> {
        let csv_err = |e: &dyn std::fmt::Display| AttackError::serialize("robust report", "CSV", e);
        let num = |v: f64| v.to_string();
        let opt = |v: Option<f64>| v.map(num).unwrap_or_default();
        let metric_cols = |m: &Metrics| {
            let k = &m.confusion;
            [
                m.n.to_string(),
                num(m.accuracy),
                num(m.macro_f1),
                opt(m.roc_auc),
                k.true_negatives.to_string(),
                k.false_positives.to_string(),
                k.false_negatives.to_string(),
                k.true_positives.to_string(),
            ]
        };
        let mut rows: Vec<Vec<String>> = Vec::new();
        // a per-source row: the leading columns, source, n, accuracy, the rest empty
        let source_row = |lead: &[String; 4], source: &str, n: usize, accuracy: f64| {
            let mut r = lead.to_vec();
            r.extend([source.to_string(), n.to_string(), num(accuracy)]);
            r.resize(CSV_HEADER.len(), String::new());
            r
        };
        let zero = || "0".to_string();
        let clean_lead = ["clean".to_string(), zero(), zero(), zero()];
        let mut r = clean_lead.to_vec();
        r.push("all".into());
        r.extend(metric_cols(&self.clean));
        r.extend(std::iter::repeat_with(zero).take(6));
        rows.push(r);
        for p in &self.clean_per_source {
            rows.push(source_row(&clean_lead, &p.source, p.n, p.accuracy));
        }
        for a in &self.attacks {
            for r in &a.results {
                let lead = [
                    a.attack.to_string(),
                    num(r.eps),
                    num(r.step_size),
                    r.steps.to_string(),
                ];
                let mut row = lead.to_vec();
                row.push("all".into());
                row.extend(metric_cols(&r.metrics));
                row.extend([
                    num(r.attack_success_rate),
                    num(r.linf_mean),
                    num(r.linf_max),
                    num(r.l2_mean),
                    num(r.l2_max),
                    r.masked_samples.to_string(),
                ]);
                rows.push(row);
                for p in &r.per_source {
                    rows.push(source_row(&lead, &p.source, p.n, p.accuracy));
                }
            }
        }
        for w in &self.worst_case {
            let lead = [
                "worst".to_string(),
                num(w.eps),
                String::new(),
                String::new(),
            ];
            rows.push(source_row(&lead, "all", w.n, w.accuracy));
            for p in &w.per_source {
                rows.push(source_row(&lead, &p.source, p.n, p.accuracy));
            }
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(CSV_HEADER).map_err(|e| csv_err(&e))?;
        for r in &rows {
            out.write_record(r).map_err(|e| csv_err(&e))?;
        }
        let bytes = out.into_inner().map_err(|e| csv_err(&e))?;
        String::from_utf8(bytes).map_err(|e| csv_err(&e))
    }

    /// Writes the CSV of [`RobustReport::to_csv`], atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        dfr_fs::write_atomic(path, self.to_csv()?.as_bytes()).map_err(|e| AttackError::io(path, e))
    }
}
