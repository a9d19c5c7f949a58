//! What an attack is asked to do: the kind, its parameters, the goal, and the one
//! place that decides the step size and number of steps an attack actually runs with
//! ([`AttackParams::schedule`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{AttackError, Result};

/// The attacks of this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttackKind {
    /// Fast gradient sign method (one step of size ε).
    Fgsm,
    /// Projected gradient descent (steps of size α, optional random start).
    Pgd,
    /// Momentum iterative FGSM (decay μ, gradient normalised by its mean |·|).
    MiFgsm,
    /// Auto-PGD with the cross-entropy loss (step-size schedule, momentum 0.75).
    Apgd,
}

impl AttackKind {
    /// All attacks, in the order `all` runs them.
    pub const ALL: [AttackKind; 4] = [
        AttackKind::Fgsm,
        AttackKind::Pgd,
        AttackKind::MiFgsm,
        AttackKind::Apgd,
    ];

    /// Short name (`fgsm`, `pgd`, `mifgsm`, `apgd`).
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Fgsm => "fgsm",
            AttackKind::Pgd => "pgd",
            AttackKind::MiFgsm => "mifgsm",
            AttackKind::Apgd => "apgd",
        }
    }

    /// Parses a name (case-insensitive; `mi-fgsm`, `apgd-ce` accepted).
    pub fn parse(s: &str) -> Option<AttackKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fgsm" => Some(AttackKind::Fgsm),
            "pgd" => Some(AttackKind::Pgd),
            "mifgsm" | "mi-fgsm" | "mi_fgsm" => Some(AttackKind::MiFgsm),
            "apgd" | "apgd-ce" | "apgd_ce" | "apgdce" => Some(AttackKind::Apgd),
            _ => None,
        }
    }

    /// Whether the attack iterates (`steps` matters).
    pub fn is_iterative(self) -> bool {
        !matches!(self, AttackKind::Fgsm)
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AttackKind {
    type Err = AttackError;
    fn from_str(s: &str) -> Result<Self> {
        AttackKind::parse(s).ok_or_else(|| {
            AttackError::param(
                "attack",
                format!("unknown attack `{s}` (expected fgsm, pgd, mifgsm or apgd)"),
            )
        })
    }
}

/// Parameters of one attack run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttackParams {
    /// The attack.
    pub kind: AttackKind,
    /// L∞ radius in [0, 1] pixel units.
    pub eps: f32,
    /// Iterations (PGD, MI-FGSM, APGD; FGSM ignores it).
    pub steps: usize,
    /// Absolute step size α of PGD and MI-FGSM; `None`: `alpha_ratio · ε`.
    pub alpha: Option<f32>,
    /// α / ε when `alpha` is `None` (the study uses ε/5, i.e. 0.2).
    pub alpha_ratio: f32,
    /// Random start: uniform in the ε-ball (PGD, as torchattacks), or APGD's
    /// `x + ε·t/‖t‖∞` with `t` uniform in [-1, 1] (the reference implementation).
    pub random_start: bool,
    /// MI-FGSM momentum decay μ.
    pub decay: f32,
    /// Seed of the random starts; the noise of a sample depends only on
    /// `(seed, sample id)`, not on the batch it is in.
    pub seed: u64,
    /// Optional class weights of the cross-entropy (PyTorch's weighted mean).
    /// With sign steps and independent samples they only rescale each sample's
    /// gradient, so they change results at most through float rounding.
    pub class_weights: Option<Vec<f32>>,
    /// APGD: fraction ρ of increasing steps below which the step size halves (0.75).
    pub apgd_rho: f32,
    /// APGD: number of restarts (1 = a single run); restarts re-seed the random start.
    pub apgd_restarts: usize,
}

impl Default for AttackParams {
    fn default() -> Self {
        Self {
            kind: AttackKind::Pgd,
            eps: 4.0 / 255.0,
            steps: 10,
            alpha: None,
            alpha_ratio: 0.2,
            random_start: false,
            decay: 1.0,
            seed: 0,
            class_weights: None,
            apgd_rho: 0.75,
            apgd_restarts: 1,
        }
    }
}

/// The step size and number of gradient steps an attack actually runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// FGSM: ε; PGD and MI-FGSM: α; APGD: the initial step 2ε (it halves later).
    pub step_size: f32,
    /// FGSM: 1; the iterative attacks: `steps`.
    pub steps: usize,
}

/// Checks an ε: finite, in [0, 1].
pub fn check_eps(eps: f64) -> Result<()> {
    if !eps.is_finite() || !(0.0..=1.0).contains(&eps) {
        return Err(AttackError::InvalidEps(eps));
    }
    Ok(())
}

impl AttackParams {
    /// Parameters of `kind` at radius `eps`, other fields at their defaults.
    pub fn new(kind: AttackKind, eps: f32) -> Self {
        Self {
            kind,
            eps,
            ..Self::default()
        }
    }

    /// The step size and steps the attack runs with: the only place that decides
    /// them (the attacks, the report and saved adversarial files all read it).
    ///
    /// ```
    /// use dfr_attacks::{AttackKind, AttackParams};
    /// let s = AttackParams::new(AttackKind::Fgsm, 0.03).schedule();
    /// assert_eq!((s.step_size, s.steps), (0.03, 1));
    /// let s = AttackParams::new(AttackKind::Apgd, 0.03).schedule();
    /// assert_eq!((s.step_size, s.steps), (0.06, 10));
    /// ```
    pub fn schedule(&self) -> Schedule {
        match self.kind {
            AttackKind::Fgsm => Schedule {
                step_size: self.eps,
                steps: 1,
            },
            AttackKind::Pgd | AttackKind::MiFgsm => Schedule {
                step_size: self.alpha.unwrap_or(self.alpha_ratio * self.eps),
                steps: self.steps,
            },
            AttackKind::Apgd => Schedule {
                step_size: 2.0 * self.eps,
                steps: self.steps,
            },
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_eps(self.eps as f64)?;
        if self.kind.is_iterative() && self.steps == 0 {
            return Err(AttackError::InvalidSteps {
                attack: self.kind.name().into(),
                steps: 0,
            });
        }
        let a = self.alpha.unwrap_or(self.alpha_ratio * self.eps);
        if !a.is_finite() || a < 0.0 {
            return Err(AttackError::param(
                "alpha",
                format!("step size must be finite and >= 0, got {a}"),
            ));
        }
        if !self.alpha_ratio.is_finite() || self.alpha_ratio < 0.0 {
            return Err(AttackError::param(
                "alpha_ratio",
                format!("must be finite and >= 0, got {}", self.alpha_ratio),
            ));
        }
        if !self.decay.is_finite() || self.decay < 0.0 {
            return Err(AttackError::param(
                "decay",
                format!("must be finite and >= 0, got {}", self.decay),
            ));
        }
        if !(self.apgd_rho.is_finite() && self.apgd_rho > 0.0 && self.apgd_rho <= 1.0) {
            return Err(AttackError::param(
                "apgd_rho",
                format!("must be in (0, 1], got {}", self.apgd_rho),
            ));
        }
        if self.apgd_restarts == 0 {
            return Err(AttackError::param("apgd_restarts", "must be at least 1"));
        }
        if let Some(w) = &self.class_weights {
            if w.is_empty() || w.iter().any(|v| !v.is_finite() || *v <= 0.0) {
                return Err(AttackError::param(
                    "class_weights",
                    format!("must be non-empty, finite and > 0, got {w:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// What the attack aims for.
#[derive(Debug, Clone, Copy)]
pub enum Goal<'a> {
    /// Any class but the true one (maximise CE of the true label).
    Untargeted,
    /// These classes, one per sample (minimise their CE).
    Targeted(&'a [u32]),
}
