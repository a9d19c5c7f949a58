//! Hand-computed small cases for every metric.

use dfr_metrics::*;

const TOL: f64 = 1e-12;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL || (a.is_infinite() && a == b)
}

fn assert_vec_close(ours: &[f64], expected: &[f64]) {
    assert_eq!(ours.len(), expected.len(), "{ours:?} vs {expected:?}");
    for (a, b) in ours.iter().zip(expected) {
        assert!(close(*a, *b), "{ours:?} vs {expected:?}");
    }
}

// scikit-learn's roc_curve docstring example (pos_label=2 mapped to 1).
const SK_LABELS: [u8; 4] = [0, 0, 1, 1];
const SK_SCORES: [f64; 4] = [0.1, 0.4, 0.35, 0.8];

// ---------------------------------------------------------------- classification

#[test]
fn accuracy_counts_matches() {
    let acc = accuracy(&[0u8, 1, 1, 0, 1], &[0u8, 1, 0, 0, 0]).unwrap();
    assert!(close(acc, 0.6));
    // Mixed label types.
    let acc = accuracy(&[0usize, 1, 2], &[0u8, 2, 2]).unwrap();
    assert!(close(acc, 2.0 / 3.0));
}

#[test]
fn confusion_binary_and_multiclass() {
    let y = [0u8, 0, 1, 1, 1];
    let p = [0u8, 1, 1, 1, 0];
    let c = BinaryConfusion::from_labels(&y, &p).unwrap();
    assert_eq!(c.as_rows(), [[1, 1], [1, 2]]);
    assert_eq!((c.positives(), c.negatives(), c.total()), (3, 2, 5));
    assert_eq!(c.to_matrix().rows(), vec![vec![1, 1], vec![1, 2]]);

    let m = ConfusionMatrix::from_labels(&[0usize, 1, 2, 2, 1, 0], &[0usize, 2, 2, 1, 1, 1], 3)
        .unwrap();
    assert_eq!(m.rows(), vec![vec![1, 1, 0], vec![0, 1, 1], vec![0, 1, 1]]);
    assert_eq!(m.get(0, 1), Some(1));
    assert_eq!(m.get(3, 0), None);
    assert_eq!(
        (m.support(1), m.predicted(1), m.correct(), m.total()),
        (2, 3, 3, 6)
    );
    assert!(close(m.accuracy(), 0.5));
}

#[test]
fn confusion_serde_roundtrip_and_validation() {
    let m = ConfusionMatrix::from_rows(vec![vec![3, 1], vec![2, 4]]).unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(json, "[[3,1],[2,4]]");
    let back: ConfusionMatrix = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    assert!(serde_json::from_str::<ConfusionMatrix>("[[1,2],[3]]").is_err());
    assert!(ConfusionMatrix::from_rows(vec![]).is_err());
}

#[test]
fn per_class_precision_recall_f1() {
    let y = [0u8, 0, 1, 1, 1];
    let p = [0u8, 1, 1, 1, 0];
    let s = precision_recall_f1(&y, &p, 2).unwrap();
    // class 1: tp 2, fp 1, fn 1; class 0: tp 1, fp 1, fn 1.
    assert!(
        close(s[1].precision, 2.0 / 3.0)
            && close(s[1].recall, 2.0 / 3.0)
            && close(s[1].f1, 2.0 / 3.0)
    );
    assert!(close(s[0].precision, 0.5) && close(s[0].recall, 0.5) && close(s[0].f1, 0.5));
    assert_eq!((s[0].support, s[1].support), (2, 3));
    assert!(close(binary_f1(&y, &p).unwrap(), 2.0 / 3.0));
    assert!(close(binary_macro_f1(&y, &p).unwrap(), 7.0 / 12.0));
    assert!(close(macro_f1(&y, &p, 2).unwrap(), 7.0 / 12.0));
}

#[test]
fn zero_division_gives_zero() {
    // Nothing predicted fake: fake precision is 0/0 → 0, recall 0, F1 0.
    let y = [0u8, 0, 1];
    let p = [0u8, 0, 0];
    let s = precision_recall_f1(&y, &p, 2).unwrap();
    assert_eq!((s[1].precision, s[1].recall, s[1].f1), (0.0, 0.0, 0.0));
    // Real: tp 2, fp 1, fn 0 → P 2/3, R 1, F1 4/5.
    assert!(close(s[0].precision, 2.0 / 3.0) && close(s[0].recall, 1.0) && close(s[0].f1, 0.8));
    assert!(close(binary_macro_f1(&y, &p).unwrap(), 0.4));
    assert_eq!(binary_f1(&y, &p).unwrap(), 0.0);
    // A class absent from both truth and predictions still counts (F1 0) in the macro mean.
    assert!(close(macro_f1(&[0u8, 1], &[0u8, 1], 3).unwrap(), 2.0 / 3.0));
    // Binary macro-F1 averages both classes even when only fakes occur.
    assert!(close(binary_macro_f1(&[1u8, 1], &[1u8, 1]).unwrap(), 0.5));
}

#[test]
fn bool_labels_work() {
    assert!(close(accuracy(&[true, false], &[true, true]).unwrap(), 0.5));
}

// ---------------------------------------------------------------- errors

#[test]
fn bad_inputs_are_typed_errors() {
    assert!(matches!(
        accuracy(&[0u8, 1], &[0u8]),
        Err(MetricsError::LengthMismatch {
            left: 2,
            right: 1,
            ..
        })
    ));
    assert!(matches!(
        accuracy::<u8, u8>(&[], &[]),
        Err(MetricsError::Empty { .. })
    ));
    assert!(matches!(
        roc_auc(&[0u8, 2], &[0.1f32, 0.2]),
        Err(MetricsError::InvalidLabel {
            index: 1,
            label: 2,
            n_classes: 2
        })
    ));
    assert!(matches!(
        roc_auc(&[0u8, 1], &[0.1, f64::NAN]),
        Err(MetricsError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        roc_auc(&[0u8, 1], &[f64::INFINITY, 0.3]),
        Err(MetricsError::NonFinite { index: 0, .. })
    ));
    assert!(matches!(
        predict(&[0.3f32], f64::NAN),
        Err(MetricsError::InvalidThreshold(_))
    ));
    assert!(matches!(
        ConfusionMatrix::from_labels(&[0u8, 3], &[0u8, 1], 3),
        Err(MetricsError::InvalidLabel { label: 3, .. })
    ));
    assert!(matches!(
        BinaryReport::compute(&[0u8, 1], &[0.1f64, 0.2, 0.3], 0.5),
        Err(MetricsError::LengthMismatch { .. })
    ));
}

#[test]
fn single_class_errors() {
    let fakes = [1u8, 1, 1];
    let reals = [0u8, 0, 0];
    let s = [0.2f64, 0.5, 0.9];
    assert!(matches!(
        roc_auc(&fakes, &s),
        Err(MetricsError::SingleClass { present: 1, .. })
    ));
    assert!(matches!(
        roc_auc(&reals, &s),
        Err(MetricsError::SingleClass { present: 0, .. })
    ));
    assert!(matches!(
        roc_curve(&reals, &s),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        eer(&fakes, &s),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        youden_threshold(&fakes, &s),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        best_macro_f1_threshold(&reals, &s),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        BinaryReport::compute(&fakes, &s, 0.5),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        bootstrap_roc_auc(&fakes, &s, &BootstrapConfig::default()),
        Err(MetricsError::SingleClass { .. })
    ));
    // AP needs fakes; with only fakes it is 1.
    assert!(matches!(
        average_precision(&reals, &s),
        Err(MetricsError::SingleClass { present: 0, .. })
    ));
    assert_eq!(average_precision(&fakes, &s).unwrap(), 1.0);
}

// ---------------------------------------------------------------- ROC

#[test]
fn roc_curve_sklearn_docstring_example() {
    let c = roc_curve(&SK_LABELS, &SK_SCORES).unwrap();
    assert_vec_close(&c.fpr, &[0.0, 0.0, 0.5, 0.5, 1.0]);
    assert_vec_close(&c.tpr, &[0.0, 0.5, 0.5, 1.0, 1.0]);
    assert_vec_close(&c.thresholds, &[f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
    assert!(close(roc_auc(&SK_LABELS, &SK_SCORES).unwrap(), 0.75));
    // f32 scores give the same curve.
    let s32: Vec<f32> = SK_SCORES.iter().map(|&s| s as f32).collect();
    assert!(close(roc_auc(&SK_LABELS, &s32).unwrap(), 0.75));
}

#[test]
fn roc_curve_drops_collinear_points_unless_disabled() {
    // Sorted: 0.9 fake, 0.8 fake, 0.7 real, 0.6 real. (1/2, 1) … the point at 0.7 lies on
    // the segment from (0, 1) to (1, 1) and is dropped; the first point is always kept.
    let labels = [1u8, 1, 0, 0];
    let scores = [0.9f64, 0.8, 0.7, 0.6];
    let c = roc_curve(&labels, &scores).unwrap();
    assert_vec_close(&c.thresholds, &[f64::INFINITY, 0.9, 0.8, 0.6]);
    assert_vec_close(&c.fpr, &[0.0, 0.0, 0.0, 1.0]);
    assert_vec_close(&c.tpr, &[0.0, 0.5, 1.0, 1.0]);
    let full = roc_curve_with(&labels, &scores, false).unwrap();
    assert_vec_close(&full.thresholds, &[f64::INFINITY, 0.9, 0.8, 0.7, 0.6]);
    assert_vec_close(&full.fpr, &[0.0, 0.0, 0.0, 0.5, 1.0]);
    assert_vec_close(&full.tpr, &[0.0, 0.5, 1.0, 1.0, 1.0]);
    assert!(close(roc_auc(&labels, &scores).unwrap(), 1.0));
    // Reversed scores: perfectly wrong.
    assert!(close(
        roc_auc(&labels, &[0.1f64, 0.2, 0.3, 0.4]).unwrap(),
        0.0
    ));
}

#[test]
fn roc_auc_ties_count_half() {
    // Pairs (fake, real): (0.5, 0.5) tie → ½, (0.5, 0.2) → 1, (0.8, 0.5) → 1, (0.8, 0.2) → 1.
    let labels = [0u8, 1, 0, 1];
    let scores = [0.5f64, 0.5, 0.2, 0.8];
    assert!(close(roc_auc(&labels, &scores).unwrap(), 3.5 / 4.0));
    // Tied scores are one ROC point.
    let c = roc_curve_with(&labels, &scores, false).unwrap();
    assert_vec_close(&c.thresholds, &[f64::INFINITY, 0.8, 0.5, 0.2]);
    // All scores equal: chance level.
    assert!(close(
        roc_auc(&[0u8, 1, 1, 0, 1], &[0.3f32; 5]).unwrap(),
        0.5
    ));
    // -0.0 and 0.0 are the same score.
    assert!(close(roc_auc(&[0u8, 1], &[0.0f64, -0.0]).unwrap(), 0.5));
}

#[test]
fn roc_auc_equals_pairwise_probability_on_larger_case() {
    // Deterministic pseudo-random case with many ties, checked against the O(n²) definition.
    let n = 200;
    let labels: Vec<u8> = (0..n).map(|i| ((i * 7 + 3) % 5 < 2) as u8).collect();
    let scores: Vec<f64> = (0..n).map(|i| ((i * 37 + 11) % 23) as f64 / 22.0).collect();
    let mut num = 0.0;
    let mut pairs = 0.0;
    for i in 0..n {
        for j in 0..n {
            if labels[i] == 1 && labels[j] == 0 {
                pairs += 1.0;
                num += if scores[i] > scores[j] {
                    1.0
                } else if scores[i] == scores[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    let auc = roc_auc(&labels, &scores).unwrap();
    assert!(close(auc, num / pairs), "{auc} vs {}", num / pairs);
    // The float trapezoid over both curves gives the same area.
    for drop in [true, false] {
        let c = roc_curve_with(&labels, &scores, drop).unwrap();
        assert!(close(trapezoid(&c.fpr, &c.tpr).unwrap(), auc));
    }
}

// ---------------------------------------------------------------- AP

#[test]
fn average_precision_sklearn_docstring_example() {
    // 0.8: P 1, R ½; 0.4: P ½, R ½; 0.35: P ⅔, R 1; 0.1: P ½, R 1 → ½·1 + ½·⅔ = 5/6.
    assert!(close(
        average_precision(&SK_LABELS, &SK_SCORES).unwrap(),
        5.0 / 6.0
    ));
    let c = precision_recall_curve(&SK_LABELS, &SK_SCORES).unwrap();
    assert_vec_close(&c.precision, &[0.5, 2.0 / 3.0, 0.5, 1.0, 1.0]);
    assert_vec_close(&c.recall, &[1.0, 1.0, 0.5, 0.5, 0.0]);
    assert_vec_close(&c.thresholds, &[0.1, 0.35, 0.4, 0.8]);
}

#[test]
fn average_precision_with_ties() {
    // 0.9: fake → P 1, R ½; 0.5 (fake and real tied): P ⅔, R 1 → ½ + ½·⅔ = 5/6.
    assert!(close(
        average_precision(&[1u8, 0, 1], &[0.5f64, 0.5, 0.9]).unwrap(),
        5.0 / 6.0
    ));
    // All tied: one threshold, P = prevalence, R = 1.
    assert!(close(
        average_precision(&[1u8, 0, 0, 0], &[0.5f64; 4]).unwrap(),
        0.25
    ));
}

// ---------------------------------------------------------------- EER and thresholds

#[test]
fn eer_sklearn_docstring_example() {
    // fpr [0,0,½,½,1], fnr [1,½,½,0,0] → index 2, EER ½ at threshold 0.4.
    let p = eer_point(&SK_LABELS, &SK_SCORES).unwrap();
    assert_eq!(p.index, 2);
    assert!(close(p.eer, 0.5) && close(p.threshold, 0.4));
    assert!(close(eer(&SK_LABELS, &SK_SCORES).unwrap(), 0.5));
}

#[test]
fn eer_asymmetric_and_perfect() {
    // Sorted: 0.9 real, 0.8 fake, 0.2 real, 0.1 real. Kept points: (0,0) inf, (⅓,0) 0.9,
    // (⅓,1) 0.8, (1,1) 0.1 → |fnr − fpr| = 1, ⅔, ⅓, 1 → i = 2, EER = (⅓ + 0)/2.
    let p = eer_point(&[0u8, 0, 0, 1], &[0.1f64, 0.2, 0.9, 0.8]).unwrap();
    assert_eq!(p.index, 2);
    assert!(close(p.eer, 1.0 / 6.0) && close(p.fpr, 1.0 / 3.0) && close(p.fnr, 0.0));
    assert!(close(p.threshold, 0.8));
    let t = eer_threshold(&[0u8, 0, 0, 1], &[0.1f64, 0.2, 0.9, 0.8]).unwrap();
    assert!(close(t.threshold, 0.8) && close(t.value, 1.0 / 6.0));
    // Perfect separation: EER 0.
    let p = eer_point(&[0u8, 0, 1, 1], &[0.1f64, 0.2, 0.8, 0.9]).unwrap();
    assert!(close(p.eer, 0.0) && close(p.threshold, 0.8));
}

#[test]
fn predict_uses_greater_or_equal() {
    assert_eq!(predict(&[0.49f32, 0.5, 0.51], 0.5).unwrap(), vec![0, 1, 1]);
    assert_eq!(predict(&[0.9f64], f64::INFINITY).unwrap(), vec![0]);
}

#[test]
fn youden_threshold_picks_max_j() {
    // J = tpr − fpr on the ROC points: [0, ½, 0, ½, 0] → first max at threshold 0.8.
    let t = youden_threshold(&SK_LABELS, &SK_SCORES).unwrap();
    assert!(close(t.threshold, 0.8) && close(t.value, 0.5));
    // Perfect separation: J = 1 at the lowest fake score.
    let t = youden_threshold(&[0u8, 0, 1, 1], &[0.1f64, 0.3, 0.6, 0.9]).unwrap();
    assert!(close(t.threshold, 0.6) && close(t.value, 1.0));
}

#[test]
fn best_macro_f1_threshold_scans_scores() {
    // inf → ⅓; 0.8 → (⅔ + ⅘)/2 = 11/15; 0.4 → ½; 0.35 → (⅘ + ⅔)/2 = 11/15 (tie, higher kept); 0.1 → ⅓.
    let t = best_macro_f1_threshold(&SK_LABELS, &SK_SCORES).unwrap();
    assert!(close(t.threshold, 0.8) && close(t.value, 11.0 / 15.0));
    // The value is reproduced by applying the threshold.
    let preds = predict(&SK_SCORES, t.threshold).unwrap();
    assert!(close(binary_macro_f1(&SK_LABELS, &preds).unwrap(), t.value));
    // Perfect separation → macro-F1 1 at the lowest fake score.
    let t = best_macro_f1_threshold(&[1u8, 0, 1, 0], &[0.7f64, 0.2, 0.6, 0.3]).unwrap();
    assert!(close(t.threshold, 0.6) && close(t.value, 1.0));
}

#[test]
fn threshold_rules_dispatch() {
    assert_eq!(
        ThresholdRule::Fixed(0.3)
            .choose(&SK_LABELS, &SK_SCORES)
            .unwrap(),
        0.3
    );
    assert!(ThresholdRule::Fixed(f64::NAN)
        .choose(&SK_LABELS, &SK_SCORES)
        .is_err());
    assert!(close(
        ThresholdRule::YoudenJ
            .choose(&SK_LABELS, &SK_SCORES)
            .unwrap(),
        0.8
    ));
    assert!(close(
        ThresholdRule::Eer.choose(&SK_LABELS, &SK_SCORES).unwrap(),
        0.4
    ));
    assert!(close(
        ThresholdRule::MaxMacroF1
            .choose(&SK_LABELS, &SK_SCORES)
            .unwrap(),
        0.8
    ));
}

// ---------------------------------------------------------------- ε-curve AUC

#[test]
fn normalized_auc_trapezoid() {
    // Segments: [1,2] mean 1 → 1; [2,4] mean ½ → 1. Area 2; /max ε 4 = ½; /range 3 = ⅔.
    let eps = [1.0, 2.0, 4.0];
    let m = [1.0, 1.0, 0.0];
    assert!(close(normalized_auc_by_max_eps(&eps, &m).unwrap(), 0.5));
    assert!(close(normalized_auc_by_range(&eps, &m).unwrap(), 2.0 / 3.0));
    assert!(close(
        normalized_auc(&eps, &m, AucNormalization::ByRange).unwrap(),
        2.0 / 3.0
    ));
    // Unsorted input is sorted with its metric values.
    assert!(close(
        normalized_auc_by_max_eps(&[4.0, 1.0, 2.0], &[0.0, 1.0, 1.0]).unwrap(),
        0.5
    ));
    // Starting at ε = 0 both normalisations agree; a constant curve gives the constant.
    assert!(close(
        normalized_auc_by_max_eps(&[0.0, 0.5, 1.0], &[0.8; 3]).unwrap(),
        0.8
    ));
    assert!(close(
        normalized_auc_by_range(&[0.0, 0.5, 1.0], &[0.8; 3]).unwrap(),
        0.8
    ));
    assert!(close(
        trapezoid(&[0.0, 1.0, 3.0], &[0.0, 2.0, 2.0]).unwrap(),
        5.0
    ));
}

#[test]
fn normalized_auc_errors() {
    assert!(matches!(
        normalized_auc_by_max_eps(&[0.1, 0.1, 0.2], &[1.0, 0.9, 0.8]),
        Err(MetricsError::DuplicateEps { .. })
    ));
    assert!(matches!(
        normalized_auc_by_max_eps(&[-0.1, 0.2], &[1.0, 0.8]),
        Err(MetricsError::NegativeEps { index: 0, .. })
    ));
    assert!(matches!(
        normalized_auc_by_range(&[0.1, 0.2], &[1.0]),
        Err(MetricsError::LengthMismatch { .. })
    ));
    assert!(matches!(
        normalized_auc_by_range(&[0.1], &[1.0]),
        Err(MetricsError::TooFewPoints { got: 1, needed: 2 })
    ));
    assert!(matches!(
        normalized_auc_by_range(&[0.1, f64::NAN], &[1.0, 0.5]),
        Err(MetricsError::NonFinite { .. })
    ));
    assert!(matches!(
        normalized_auc_by_range(&[0.1, 0.2], &[1.0, f64::NAN]),
        Err(MetricsError::NonFinite { .. })
    ));
}

// ---------------------------------------------------------------- bootstrap

fn bootstrap_case() -> (Vec<u8>, Vec<f64>) {
    let n = 120;
    let labels: Vec<u8> = (0..n).map(|i| (i % 3 != 0) as u8).collect();
    let scores: Vec<f64> = (0..n)
        .map(|i| (0.3 * labels[i] as f64 + ((i * 29 + 5) % 17) as f64 / 17.0 * 0.7).min(1.0))
        .collect();
    (labels, scores)
}

#[test]
fn bootstrap_is_deterministic_and_seed_dependent() {
    let (labels, scores) = bootstrap_case();
    let cfg = BootstrapConfig {
        resamples: 300,
        level: 0.9,
        seed: 42,
    };
    let a = bootstrap_roc_auc(&labels, &scores, &cfg).unwrap();
    let b = bootstrap_roc_auc(&labels, &scores, &cfg).unwrap();
    assert_eq!(a, b);
    let c = bootstrap_roc_auc(&labels, &scores, &BootstrapConfig { seed: 43, ..cfg }).unwrap();
    assert_ne!((a.lower, a.upper), (c.lower, c.upper));
    assert!(close(a.estimate, roc_auc(&labels, &scores).unwrap()));
    assert!(a.lower < a.estimate && a.estimate < a.upper, "{a:?}");
    assert_eq!((a.resamples_used, a.resamples_skipped), (300, 0));
    assert_eq!(a.level, 0.9);

    let preds = predict(&scores, 0.5).unwrap();
    let acc = bootstrap_accuracy(&labels, &preds, &cfg).unwrap();
    assert_eq!(acc, bootstrap_accuracy(&labels, &preds, &cfg).unwrap());
    assert!(close(acc.estimate, accuracy(&labels, &preds).unwrap()));
    assert!(
        acc.lower < acc.estimate && acc.estimate < acc.upper,
        "{acc:?}"
    );
    // A wider level gives a wider (or equal) interval from the same resamples.
    let wide =
        bootstrap_accuracy(&labels, &preds, &BootstrapConfig { level: 0.99, ..cfg }).unwrap();
    assert!(wide.lower <= acc.lower && wide.upper >= acc.upper);
}

#[test]
fn bootstrap_auc_fast_path_matches_direct_resampling() {
    // Same seed → same resampled indices; the O(n) weighted AUC must equal roc_auc on
    // the materialised resample.
    let (labels, scores) = bootstrap_case();
    let cfg = BootstrapConfig {
        resamples: 200,
        level: 0.95,
        seed: 7,
    };
    let fast = bootstrap_roc_auc(&labels, &scores, &cfg).unwrap();
    let slow = bootstrap_statistic(labels.len(), &cfg, |idx| {
        let l: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
        let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
        roc_auc(&l, &s).ok()
    })
    .unwrap();
    assert!(
        close(fast.lower, slow.lower) && close(fast.upper, slow.upper),
        "{fast:?} vs {slow:?}"
    );
}

#[test]
fn bootstrap_skips_single_class_resamples() {
    // n = 3 with one real: a resample misses a class with probability (2/3)³ + (1/3)³ = 1/3.
    let cfg = BootstrapConfig {
        resamples: 600,
        level: 0.95,
        seed: 1,
    };
    let ci = bootstrap_roc_auc(&[0u8, 1, 1], &[0.2f64, 0.6, 0.1], &cfg).unwrap();
    assert_eq!(ci.resamples_used + ci.resamples_skipped, 600);
    assert!((150..250).contains(&ci.resamples_skipped), "{ci:?}");
    assert!(close(ci.estimate, 0.5));
}

#[test]
fn bootstrap_edge_cases() {
    let all_right = bootstrap_accuracy(
        &[0u8, 1, 1, 0],
        &[0u8, 1, 1, 0],
        &BootstrapConfig::default(),
    )
    .unwrap();
    assert_eq!(
        (all_right.lower, all_right.estimate, all_right.upper),
        (1.0, 1.0, 1.0)
    );
    let bad = BootstrapConfig {
        resamples: 0,
        ..Default::default()
    };
    assert!(matches!(
        bootstrap_accuracy(&[0u8], &[0u8], &bad),
        Err(MetricsError::InvalidConfig(_))
    ));
    let bad = BootstrapConfig {
        level: 1.0,
        ..Default::default()
    };
    assert!(matches!(
        bootstrap_accuracy(&[0u8], &[0u8], &bad),
        Err(MetricsError::InvalidConfig(_))
    ));
    // n = 2 with one sample per class and 1 resample: some seed draws a single class.
    let some_seed_skips_all = (0..50u64).any(|seed| {
        let cfg = BootstrapConfig {
            resamples: 1,
            level: 0.9,
            seed,
        };
        matches!(
            bootstrap_roc_auc(&[0u8, 1], &[0.1f64, 0.9], &cfg),
            Err(MetricsError::NoValidResamples { resamples: 1 })
        )
    });
    assert!(some_seed_skips_all);
}

// ---------------------------------------------------------------- report

#[test]
fn binary_report_agrees_with_individual_metrics() {
    let (labels, scores) = bootstrap_case();
    let r = BinaryReport::compute(&labels, &scores, 0.5).unwrap();
    let preds = predict(&scores, 0.5).unwrap();
    assert_eq!(r.n_samples, labels.len());
    assert!(close(r.accuracy, accuracy(&labels, &preds).unwrap()));
    assert!(close(r.macro_f1, binary_macro_f1(&labels, &preds).unwrap()));
    assert!(close(r.binary_f1, binary_f1(&labels, &preds).unwrap()));
    let per = precision_recall_f1(&labels, &preds, 2).unwrap();
    assert_eq!((r.real, r.fake), (per[0], per[1]));
    assert!(close(r.roc_auc, roc_auc(&labels, &scores).unwrap()));
    assert!(close(
        r.average_precision,
        average_precision(&labels, &scores).unwrap()
    ));
    assert!(close(r.eer, eer(&labels, &scores).unwrap()));
    assert_eq!(
        r.confusion,
        BinaryConfusion::from_labels(&labels, &preds).unwrap()
    );
    assert_ne!(r.macro_f1, r.binary_f1);

    let json = serde_json::to_string(&r).unwrap();
    let back: BinaryReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert!(json.contains("\"macro_f1\"") && json.contains("\"true_positives\""));
}

#[test]
fn binary_report_small_hand_case() {
    // Threshold 0.5 on the sklearn example: predictions [0, 0, 0, 1] → tn 2, fp 0, fn 1, tp 1.
    let r = BinaryReport::compute(&SK_LABELS, &SK_SCORES, 0.5).unwrap();
    assert_eq!(r.confusion.as_rows(), [[2, 0], [1, 1]]);
    assert!(close(r.accuracy, 0.75));
    assert!(close(r.binary_f1, 2.0 / 3.0)); // 2·1 / (2 + 0 + 1)
    assert!(close(r.real.f1, 0.8)); // 2·2 / (4 + 1 + 0)
    assert!(close(r.macro_f1, 11.0 / 15.0));
    assert!(close(r.roc_auc, 0.75) && close(r.average_precision, 5.0 / 6.0) && close(r.eer, 0.5));
}
