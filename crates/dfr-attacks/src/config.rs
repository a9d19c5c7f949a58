//! Configuration of a robust evaluation and the attack parameters it implies.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::attack::{check_eps, AttackKind, AttackParams};
use crate::error::{AttackError, Result};

/// Configuration of a robust evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RobustEvalConfig {
    /// Attacks to run (`all`: every [`AttackKind`], which adds the worst case).
    pub attacks: Vec<AttackKind>,
    /// Radii ε > 0 in [0, 1] pixel units (ε = 0, the clean evaluation, is always added).
    pub eps: Vec<f64>,
    /// Iterations of PGD, MI-FGSM and APGD.
    pub steps: usize,
    /// Step size α of PGD / MI-FGSM as a fraction of ε (the study: ε/5 → 0.2).
    pub alpha_ratio: f64,
    /// Absolute step size α, overriding `alpha_ratio` when set.
    pub alpha: Option<f64>,
    /// Random start of PGD and APGD.
    pub random_start: bool,
    /// MI-FGSM decay μ.
    pub decay: f64,
    /// APGD restarts.
    pub apgd_restarts: usize,
    /// Seed of the random starts (noise keyed by sample index, batch-independent).
    pub seed: u64,
    /// Optional class weights (real, fake) of the attack loss.
    pub class_weights: Option<Vec<f32>>,
    /// Side length images are resized to ([`evaluate_samples`]) or must have.
    pub image_size: u32,
    /// Images per batch.
    pub batch_size: usize,
    /// Evaluate at most this many samples (evenly spread over the sample list by
    /// [`evaluate_samples`], the first ones otherwise).
    pub limit: Option<usize>,
    /// Evaluate exactly these samples of the list [`evaluate_samples`] is given (indices,
    /// strictly increasing) instead of `limit` of them: e.g. only the images that earlier
    /// attacks left correctly classified (AutoAttack's protocol). Left out of the
    /// serialised configuration when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<Vec<usize>>,
    /// Decision threshold on the fake probability (`score >= threshold → fake`).
    pub threshold: f64,
    /// Sanity check: compare PGD with `steps` and `2·steps` at the largest ε.
    pub steps_check: bool,
    /// Samples used by the steps check (the first ones evaluated).
    pub steps_check_samples: usize,
    /// Directory to save the adversarial examples to (f32 safetensors, lossless).
    pub save_adversarial: Option<PathBuf>,
    /// Loader worker threads (0: all cores).
    pub threads: usize,
    /// Fraction of unreadable images [`evaluate_samples`] skips before failing
    /// (skipped files are left out of every metric).
    pub max_bad_fraction: f64,
}

impl Default for RobustEvalConfig {
    fn default() -> Self {
        Self {
            attacks: vec![AttackKind::Pgd],
            eps: vec![1.0 / 255.0, 2.0 / 255.0, 4.0 / 255.0, 8.0 / 255.0],
            steps: 10,
            alpha_ratio: 0.2,
            alpha: None,
            random_start: false,
            decay: 1.0,
            apgd_restarts: 1,
            seed: 0,
            class_weights: None,
            image_size: 224,
            batch_size: 32,
            limit: None,
            subset: None,
            threshold: 0.5,
            steps_check: false,
            steps_check_samples: 64,
            save_adversarial: None,
            threads: 0,
            max_bad_fraction: 0.0,
        }
    }
}

/// Parses `fgsm`, `pgd`, `mifgsm`, `apgd`, `all` or a comma-separated list.
pub fn parse_attacks(s: &str) -> Result<Vec<AttackKind>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(AttackKind::ALL.to_vec());
    }
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let k: AttackKind = part.parse()?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(AttackError::param("attacks", "no attack given"));
    }
    Ok(out)
}

impl RobustEvalConfig {
    /// Checks the configuration (ε values, steps, step size, batch size, …).
    pub fn validate(&self) -> Result<()> {
        if self.attacks.is_empty() {
            return Err(AttackError::param("attacks", "no attack given"));
        }
        for &e in &self.eps {
            check_eps(e)?;
        }
        if self.batch_size == 0 {
            return Err(AttackError::param("batch_size", "must be at least 1"));
        }
        if self.image_size == 0 {
            return Err(AttackError::param("image_size", "must be at least 1"));
        }
        if !(self.max_bad_fraction.is_finite() && (0.0..=1.0).contains(&self.max_bad_fraction)) {
            return Err(AttackError::param(
                "max_bad_fraction",
                format!("must be in [0, 1], got {}", self.max_bad_fraction),
            ));
        }
        if self.limit == Some(0) {
            return Err(AttackError::param("limit", "must be at least 1"));
        }
        if let Some(s) = &self.subset {
            if s.is_empty() {
                return Err(AttackError::param(
                    "subset",
                    "must name at least one sample",
                ));
            }
            if s.windows(2).any(|w| w[0] >= w[1]) {
                return Err(AttackError::param("subset", "must be strictly increasing"));
            }
            if self.limit.is_some() {
                return Err(AttackError::param(
                    "subset",
                    "names the samples itself: leave `limit` unset",
                ));
            }
        }
        if !(self.threshold.is_finite() && (0.0..=1.0).contains(&self.threshold)) {
            return Err(AttackError::param(
                "threshold",
                format!("must be in [0, 1], got {}", self.threshold),
            ));
        }
        if self.steps_check && self.steps_check_samples == 0 {
            return Err(AttackError::param(
                "steps_check_samples",
                "must be at least 1",
            ));
        }
        if let Some(w) = &self.class_weights {
            if w.len() != 2 {
                return Err(AttackError::param(
                    "class_weights",
                    format!("need 2 weights (real, fake), got {}", w.len()),
                ));
            }
        }
        for &k in &self.attacks {
            self.params(k, self.eps.iter().cloned().fold(0.0, f64::max))?
                .validate()?;
        }
        Ok(())
    }

    /// The ε values evaluated: 0 first, then the configured ones, sorted, deduplicated.
    pub fn eps_grid(&self) -> Vec<f64> {
        let mut v: Vec<f64> = std::iter::once(0.0)
            .chain(self.eps.iter().copied())
            .collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    }

    /// Attack parameters of `kind` at `eps`. At ε = 0 every step is a no-op, so one
    /// step exercises the attack's code path (a sanity check requires it to reproduce
    /// the clean predictions).
    pub fn params(&self, kind: AttackKind, eps: f64) -> Result<AttackParams> {
        Ok(AttackParams {
            kind,
            eps: eps as f32,
            steps: if eps == 0.0 { 1 } else { self.steps },
            alpha: self.alpha.map(|a| a as f32),
            alpha_ratio: self.alpha_ratio as f32,
            random_start: self.random_start,
            decay: self.decay as f32,
            seed: self.seed,
            class_weights: self.class_weights.clone(),
            apgd_rho: 0.75,
            apgd_restarts: self.apgd_restarts,
        })
    }
}
