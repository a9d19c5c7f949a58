//! Sanity checks of a robust evaluation, in the spirit of AutoAttack's checks.

use serde::{Deserialize, Serialize};

use crate::collect::Collected;
use crate::config::RobustEvalConfig;

/// One sanity check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanityCheck {
    /// Short identifier (`eps0_reproduces_clean`, `linf_within_eps`, …).
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was measured.
    pub detail: String,
}

impl SanityCheck {
    fn new(name: &str, passed: bool, detail: String) -> Self {
        Self {
            name: name.into(),
            passed,
            detail,
        }
    }
}

/// Tolerance of ‖δ‖∞ over ε (float rounding of `x + clamp(adv − x, −ε, ε)`).
pub const LINF_TOLERANCE: f64 = 1e-6;

pub(crate) struct SanityInputs<'a> {
    pub config: &'a RobustEvalConfig,
    pub eps_grid: &'a [f64],
    pub collected: &'a Collected,
}

/// Sampling noise allowed when comparing two accuracies on `n` samples at accuracy
/// `p`: one sample plus two binomial standard errors.
pub fn accuracy_noise(p: f64, n: usize) -> f64 {
    let n = n.max(1) as f64;
    1.0 / n + 2.0 * (p * (1.0 - p) / n).sqrt()
}

pub(crate) fn sanity_checks(s: &SanityInputs<'_>) -> Vec<SanityCheck> {
    let c = s.collected;
    let labels = &c.labels;
    let n = labels.len();
    let acc = |preds: &mut dyn Iterator<Item = u32>| -> f64 {
        let k = preds.zip(labels).filter(|(p, l)| p == *l).count();
        k as f64 / n.max(1) as f64
    };
    let clean_acc = acc(&mut c.clean.iter().map(|o| o.pred));
    let mut out = Vec::new();

    // 1. ε = 0 reproduces the clean predictions
    let zero = s.eps_grid.iter().position(|e| *e == 0.0);
    if let Some(z) = zero {
        let mut mismatches = 0;
        let mut parts = Vec::new();
        for (ai, kind) in s.config.attacks.iter().enumerate() {
            let o = &c.adv[ai][z];
            mismatches += o
                .iter()
                .zip(&c.clean)
                .filter(|(a, b)| a.pred != b.pred)
                .count();
            parts.push(format!("{kind} {:.4}", acc(&mut o.iter().map(|x| x.pred))));
        }
        out.push(SanityCheck::new(
            "eps0_reproduces_clean",
            mismatches == 0,
            format!(
                "clean accuracy {clean_acc:.4}; at eps = 0: {}; {mismatches} prediction(s) differ",
                parts.join(", ")
            ),
        ));
    }

    // 2. ‖δ‖∞ ≤ ε and images in [0, 1]
    let mut worst = (f64::NEG_INFINITY, String::new());
    let mut violations = 0usize;
    let mut out_of_range = 0usize;
    for (ai, kind) in s.config.attacks.iter().enumerate() {
        for (ei, &eps) in s.eps_grid.iter().enumerate() {
            for o in &c.adv[ai][ei] {
                let excess = o.linf as f64 - eps;
                if excess > worst.0 {
                    worst = (excess, format!("{kind} at eps {eps:.6}"));
                }
                if excess > LINF_TOLERANCE || !o.linf.is_finite() {
                    violations += 1;
                }
                if !o.in_range {
                    out_of_range += 1;
                }
            }
        }
    }
    out.push(SanityCheck::new(
        "linf_within_eps",
        violations == 0,
        format!(
            "{violations} sample(s) with ||delta||_inf > eps + {LINF_TOLERANCE:e}; largest ||delta||_inf - eps = {:.3e} ({})",
            worst.0, worst.1
        ),
    ));
    out.push(SanityCheck::new(
        "adversarial_in_unit_range",
        out_of_range == 0,
        format!("{out_of_range} adversarial image(s) outside [0, 1]"),
    ));

    // 3. attacks do not raise accuracy above the clean accuracy (beyond noise)
    let tol = accuracy_noise(clean_acc, n);
    let mut above = Vec::new();
    for (ai, kind) in s.config.attacks.iter().enumerate() {
        for (ei, &eps) in s.eps_grid.iter().enumerate() {
            if eps == 0.0 {
                continue;
            }
            let a = acc(&mut c.adv[ai][ei].iter().map(|x| x.pred));
            if a > clean_acc + tol {
                above.push(format!("{kind} at eps {eps:.6}: {a:.4}"));
            }
        }
    }
    out.push(SanityCheck::new(
        "robust_accuracy_not_above_clean",
        above.is_empty(),
        if above.is_empty() {
            format!("every robust accuracy <= clean {clean_acc:.4} + noise {tol:.4}")
        } else {
            format!(
                "above clean {clean_acc:.4} + noise {tol:.4}: {}",
                above.join("; ")
            )
        },
    ));

    // 4. more PGD steps are not weaker (optional)
    if !c.steps_check.is_empty() {
        let m = c.steps_check.len();
        let a1 = c.steps_check.iter().filter(|p| p.0).count() as f64 / m as f64;
        let a2 = c.steps_check.iter().filter(|p| p.1).count() as f64 / m as f64;
        let tol = accuracy_noise(a1, m);
        let steps = s.config.steps;
        let eps = s.eps_grid.last().copied().unwrap_or(0.0);
        out.push(SanityCheck::new(
            "more_steps_not_weaker",
            a2 <= a1 + tol,
            format!(
                "PGD at eps {eps:.6} on {m} samples: accuracy {a1:.4} with {steps} steps, {a2:.4} with {} steps (noise {tol:.4})",
                2 * steps
            ),
        ));
    }

    // 5. gradient masking: zero gradients at the start or non-finite gradients
    let mut flagged = vec![false; n];
    let mut parts = Vec::new();
    for (ai, kind) in s.config.attacks.iter().enumerate() {
        let mut k = vec![false; n];
        for per_eps in &c.adv[ai] {
            for (i, o) in per_eps.iter().enumerate() {
                k[i] |= o.masked;
            }
        }
        let cnt = k.iter().filter(|v| **v).count();
        parts.push(format!("{kind} {cnt}"));
        for (f, v) in flagged.iter_mut().zip(k) {
            *f |= v;
        }
    }
    let total = flagged.iter().filter(|v| **v).count();
    out.push(SanityCheck::new(
        "no_gradient_masking",
        total == 0,
        format!(
            "{total} of {n} sample(s) had an all-zero input gradient at the attack's start or a NaN/inf gradient (possible gradient masking; per attack: {})",
            parts.join(", ")
        ),
    ));
    out
}
