//! L∞ attacks: FGSM, PGD, MI-FGSM and APGD-CE, untargeted and targeted.
//!
//! Every attack maximises the cross-entropy of the true label (untargeted) or
//! minimises that of a target label (targeted: it maximises `-CE(target)`), takes
//! steps along the sign of the input gradient, projects onto the ε-ball around the
//! clean image and clamps to [0, 1]. FGSM, PGD and MI-FGSM follow torchattacks 3.5
//! operation by operation (mean-reduced CE), APGD-CE follows the reference
//! implementation of Croce & Hein (2020, `autoattack/autopgd_base.py`).
//!
//! The update arithmetic runs on host `f32` vectors (it is cheap next to a forward
//! and backward pass, and per-sample bookkeeping such as APGD's step-size halving is
//! plain indexing); only the model's forward and backward run in candle. The model's
//! parameters are frozen for the duration of an attack ([`FrozenGuard`]), so a
//! backward pass computes the input gradient only.

use std::fmt;

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::classifier::{Classifier, FrozenGuard};
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

    /// The step size α of PGD / MI-FGSM.
    pub fn step_size(&self) -> f32 {
        self.alpha.unwrap_or(self.alpha_ratio * self.eps)
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
        let a = self.step_size();
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

/// Per-sample gradient diagnostics of one attack run (possible gradient masking).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GradStats {
    /// Gradient evaluations (forward + backward passes) per sample.
    pub evaluations: usize,
    /// Samples whose input gradient was exactly zero at the first evaluation.
    pub zero_at_start: Vec<bool>,
    /// Number of evaluations at which a sample's gradient was exactly zero.
    pub zero_count: Vec<usize>,
    /// Samples whose gradient was NaN or infinite at some evaluation.
    pub non_finite: Vec<bool>,
}

impl GradStats {
    fn new(n: usize) -> Self {
        Self {
            evaluations: 0,
            zero_at_start: vec![false; n],
            zero_count: vec![0; n],
            non_finite: vec![false; n],
        }
    }

    /// Samples flagged as possibly masked (zero gradient at the start or a
    /// non-finite gradient anywhere).
    pub fn masked(&self) -> Vec<bool> {
        self.zero_at_start
            .iter()
            .zip(&self.non_finite)
            .map(|(a, b)| *a || *b)
            .collect()
    }
}

/// The result of [`run_attack`].
#[derive(Debug, Clone)]
pub struct AttackOutput {
    /// Adversarial images, same shape and device as the input, in [0, 1] and within
    /// ε of the clean images in L∞.
    pub adversarial: Tensor,
    /// Gradient diagnostics.
    pub grad_stats: GradStats,
    /// Whether the attack reached its goal on the returned image (prediction ≠ label,
    /// or = target), as seen by the attack's last forward pass on it (APGD) or `None`
    /// where the attack does not evaluate its final iterate (FGSM, PGD, MI-FGSM).
    pub success: Option<Vec<bool>>,
    /// APGD only: per iteration (row 0 = starting point), each sample's best loss so
    /// far (non-decreasing by construction), of the last restart.
    pub best_loss_trace: Option<Vec<Vec<f32>>>,
}

/// Host copy of a batch.
struct HostBatch {
    n: usize,
    dims: Vec<usize>,
    per: usize,
    device: Device,
}

impl HostBatch {
    fn tensor(&self, data: &[f32]) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            data,
            self.dims.as_slice(),
            &self.device,
        )?)
    }
}

/// One forward + backward at `x`.
struct GradEval {
    grad: Vec<f32>,
    /// Per-sample objective (CE of the label, or −CE of the target).
    loss: Vec<f32>,
    /// Per-sample argmax of the logits.
    pred: Vec<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduction {
    /// Mean (or weighted mean) over the batch, as torchattacks.
    Mean,
    /// Sum over the batch, as the APGD reference implementation.
    Sum,
}

struct Objective<'a> {
    /// Labels of the CE (true labels, or targets when targeted).
    ce_labels: Tensor,
    targeted: bool,
    weights: Option<Tensor>,
    reduction: Reduction,
    num_classes: usize,
    hb: &'a HostBatch,
}

impl Objective<'_> {
    fn eval(
        &self,
        model: &(impl Classifier + ?Sized),
        x: &[f32],
        stats: &mut GradStats,
    ) -> Result<GradEval> {
        let hb = self.hb;
        let xv = Var::from_tensor(&self.hb.tensor(x)?)?;
        let logits = model.logits(xv.as_tensor())?;
        let (ln, lk) = logits.dims2().map_err(|_| {
            AttackError::InvalidInput(format!(
                "the model returned logits of shape {:?}, expected (N, classes)",
                logits.dims()
            ))
        })?;
        if ln != hb.n || lk != self.num_classes {
            return Err(AttackError::InvalidInput(format!(
                "the model returned logits of shape {:?}, expected ({}, {})",
                logits.dims(),
                hb.n,
                self.num_classes
            )));
        }
        let logits = logits.to_dtype(DType::F32)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let nll = logp
            .gather(&self.ce_labels.unsqueeze(1)?, 1)?
            .squeeze(1)?
            .neg()?;
        let ce = match (&self.weights, self.reduction) {
            (None, Reduction::Mean) => nll.mean_all()?,
            (None, Reduction::Sum) => nll.sum_all()?,
            (Some(w), red) => {
                let wi = w.index_select(&self.ce_labels, 0)?;
                let s = (&nll * &wi)?.sum_all()?;
                match red {
                    Reduction::Mean => s.broadcast_div(&wi.sum_all()?)?,
                    Reduction::Sum => s,
                }
            }
        };
        let objective = if self.targeted { ce.neg()? } else { ce };
        let grads = objective.backward()?;
        let grad: Vec<f32> = match grads.get(xv.as_tensor()) {
            Some(g) => g.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            // The logits do not depend on the input at all.
            None => vec![0.0; hb.n * hb.per],
        };
        let nll: Vec<f32> = nll.to_vec1()?;
        let loss = if self.targeted {
            nll.iter().map(|v| -v).collect()
        } else {
            nll
        };
        let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        let first = stats.evaluations == 0;
        for i in 0..hb.n {
            let g = &grad[i * hb.per..(i + 1) * hb.per];
            let mut zero = true;
            let mut finite = true;
            for v in g {
                zero &= *v == 0.0;
                finite &= v.is_finite();
            }
            if zero {
                stats.zero_count[i] += 1;
                if first {
                    stats.zero_at_start[i] = true;
                }
            }
            if !finite {
                stats.non_finite[i] = true;
            }
        }
        stats.evaluations += 1;
        Ok(GradEval { grad, loss, pred })
    }
}

/// sign() with sign(0) = sign(NaN) = 0.
#[inline]
fn sign(v: f32) -> f32 {
    f32::from(v > 0.0) - f32::from(v < 0.0)
}

/// Uniform noise in [-eps, eps) for sample `id`, from the stream `(seed, id)`.
fn uniform_noise(seed: u64, id: u64, len: usize, eps: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(id);
    (0..len)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * eps)
        .collect()
}

/// Validates a batch of images `(N, C, H, W)` in [0, 1] and copies it to the host.
fn host_images(images: &Tensor) -> Result<(HostBatch, Vec<f32>)> {
    let dims = images.dims().to_vec();
    if dims.len() != 4 || dims.contains(&0) {
        return Err(AttackError::InvalidInput(format!(
            "images must be a non-empty (N, C, H, W) tensor, got shape {dims:?}"
        )));
    }
    if images.dtype() != DType::F32 {
        return Err(AttackError::InvalidInput(format!(
            "images must be f32, got {:?}",
            images.dtype()
        )));
    }
    let x: Vec<f32> = images.flatten_all()?.to_vec1()?;
    if let Some(bad) = x.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(AttackError::InvalidInput(format!(
            "image values must be finite and in [0, 1], found {bad}"
        )));
    }
    let n = dims[0];
    let per = x.len() / n;
    Ok((
        HostBatch {
            n,
            dims,
            per,
            device: images.device().clone(),
        },
        x,
    ))
}

fn check_labels(labels: &[u32], n: usize, classes: usize, what: &str) -> Result<()> {
    if labels.len() != n {
        return Err(AttackError::InvalidInput(format!(
            "{} {what} for a batch of {n} images",
            labels.len()
        )));
    }
    if let Some(bad) = labels.iter().find(|l| **l as usize >= classes) {
        return Err(AttackError::InvalidInput(format!(
            "{what} {bad} out of range for a model with {classes} classes"
        )));
    }
    Ok(())
}

/// Projection onto the ε-ball around `x` and [0, 1], torchattacks' order:
/// `x + clamp(adv - x, -eps, eps)`, clamped to [0, 1].
#[inline]
fn project(adv: f32, x: f32, eps: f32) -> f32 {
    (x + (adv - x).clamp(-eps, eps)).clamp(0.0, 1.0)
}

/// Runs one attack on a batch.
///
/// `images`: `(N, C, H, W)` f32 in [0, 1]; `labels`: true classes; `goal`: untargeted
/// or per-sample targets; `sample_ids`: ids keying the random-start noise (default
/// `0..N`; pass dataset indices so that the noise does not depend on batching).
/// Parameters are frozen for the duration of the attack and restored afterwards.
pub fn run_attack(
    model: &(impl Classifier + ?Sized),
    params: &AttackParams,
    images: &Tensor,
    labels: &[u32],
    goal: Goal<'_>,
    sample_ids: Option<&[u64]>,
) -> Result<AttackOutput> {
    params.validate()?;
    let (hb, x) = host_images(images)?;
    let n = hb.n;
    let ids: Vec<u64> = match sample_ids {
        Some(ids) if ids.len() == n => ids.to_vec(),
        Some(ids) => {
            return Err(AttackError::InvalidInput(format!(
                "{} sample ids for a batch of {n} images",
                ids.len()
            )))
        }
        None => (0..n as u64).collect(),
    };
    let _frozen = FrozenGuard::new(model);
    // Number of classes: declared, else from one forward pass.
    let num_classes = match model.num_classes() {
        Some(k) => k,
        None => {
            let l = model.logits(&hb.tensor(&x)?.narrow(0, 0, 1)?)?;
            l.dims2()
                .map_err(|_| {
                    AttackError::InvalidInput(format!(
                        "the model returned logits of shape {:?}, expected (N, classes)",
                        l.dims()
                    ))
                })?
                .1
        }
    };
    if num_classes < 2 {
        return Err(AttackError::ClassMismatch {
            expected: 2,
            found: num_classes,
        });
    }
    check_labels(labels, n, num_classes, "labels")?;
    let (ce_labels, targeted) = match goal {
        Goal::Untargeted => (labels, false),
        Goal::Targeted(t) => {
            check_labels(t, n, num_classes, "targets")?;
            (t, true)
        }
    };
    let weights = match &params.class_weights {
        Some(w) if w.len() != num_classes => {
            return Err(AttackError::param(
                "class_weights",
                format!("{} weights for {num_classes} classes", w.len()),
            ))
        }
        Some(w) => Some(Tensor::from_slice(w.as_slice(), w.len(), &hb.device)?),
        None => None,
    };
    let reduction = if params.kind == AttackKind::Apgd {
        Reduction::Sum
    } else {
        Reduction::Mean
    };
    let obj = Objective {
        ce_labels: Tensor::from_slice(ce_labels, n, &hb.device)?,
        targeted,
        weights,
        reduction,
        num_classes,
        hb: &hb,
    };
    let succeeded = |pred: u32, i: usize| -> bool {
        match goal {
            Goal::Untargeted => pred != labels[i],
            Goal::Targeted(t) => pred == t[i],
        }
    };
    let mut stats = GradStats::new(n);
    let eps = params.eps;
    let (adv, success, trace) = match params.kind {
        AttackKind::Fgsm => {
            let g = obj.eval(model, &x, &mut stats)?;
            let adv: Vec<f32> = x
                .iter()
                .zip(&g.grad)
                .map(|(xi, gi)| (xi + eps * sign(*gi)).clamp(0.0, 1.0))
                .collect();
            (adv, None, None)
        }
        AttackKind::Pgd | AttackKind::MiFgsm => {
            let alpha = params.step_size();
            let mut adv = x.clone();
            if params.random_start && params.kind == AttackKind::Pgd {
                for (i, id) in ids.iter().enumerate() {
                    let noise = uniform_noise(params.seed, *id, hb.per, eps);
                    let s = i * hb.per;
                    for (a, r) in adv[s..s + hb.per].iter_mut().zip(noise) {
                        *a = (*a + r).clamp(0.0, 1.0);
                    }
                }
            }
            let mut momentum = vec![0f32; adv.len()];
            for _ in 0..params.steps {
                let mut g = obj.eval(model, &adv, &mut stats)?.grad;
                if params.kind == AttackKind::MiFgsm {
                    for i in 0..n {
                        let s = i * hb.per;
                        let gs = &mut g[s..s + hb.per];
                        let mean = gs.iter().map(|v| v.abs()).sum::<f32>() / hb.per as f32;
                        // a zero gradient stays zero instead of becoming 0/0 = NaN
                        let mean = if mean > 0.0 { mean } else { 1.0 };
                        let ms = &mut momentum[s..s + hb.per];
                        for (gv, mv) in gs.iter_mut().zip(ms.iter_mut()) {
                            *gv = *gv / mean + *mv * params.decay;
                            *mv = *gv;
                        }
                    }
                }
                for ((a, xi), gi) in adv.iter_mut().zip(&x).zip(&g) {
                    *a = project(*a + alpha * sign(*gi), *xi, eps);
                }
            }
            (adv, None, None)
        }
        AttackKind::Apgd => {
            let mut best_adv: Option<(Vec<f32>, Vec<bool>, Vec<f32>)> = None;
            let mut trace = None;
            for restart in 0..params.apgd_restarts {
                let seed = params
                    .seed
                    .wrapping_add((restart as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let run = apgd_single_run(
                    model, &obj, params, seed, &x, &ids, &hb, &succeeded, &mut stats,
                )?;
                trace = Some(run.best_loss_trace);
                best_adv = Some(match best_adv {
                    None => (run.adv, run.success, run.loss_best),
                    Some((mut adv, mut succ, mut loss)) => {
                        for i in 0..n {
                            let take = (!succ[i] && run.success[i])
                                || (succ[i] == run.success[i] && run.loss_best[i] > loss[i]);
                            if take {
                                let s = i * hb.per;
                                adv[s..s + hb.per].copy_from_slice(&run.adv[s..s + hb.per]);
                                succ[i] = run.success[i];
                                loss[i] = run.loss_best[i];
                            }
                        }
                        (adv, succ, loss)
                    }
                });
                if best_adv.as_ref().is_some_and(|b| b.1.iter().all(|s| *s)) {
                    break;
                }
            }
            let (adv, succ, _) =
                best_adv.ok_or_else(|| AttackError::param("apgd_restarts", "0"))?;
            (adv, Some(succ), trace)
        }
    };
    Ok(AttackOutput {
        adversarial: hb.tensor(&adv)?,
        grad_stats: stats,
        success,
        best_loss_trace: trace,
    })
}

struct ApgdRun {
    /// Per sample: the last successful iterate if any, else the best-loss iterate.
    adv: Vec<f32>,
    success: Vec<bool>,
    loss_best: Vec<f32>,
    best_loss_trace: Vec<Vec<f32>>,
}

/// One APGD run (`attack_single_run` of the reference implementation, L∞, CE).
#[allow(clippy::too_many_arguments)]
fn apgd_single_run(
    model: &(impl Classifier + ?Sized),
    obj: &Objective<'_>,
    params: &AttackParams,
    seed: u64,
    x: &[f32],
    ids: &[u64],
    hb: &HostBatch,
    succeeded: &dyn Fn(u32, usize) -> bool,
    stats: &mut GradStats,
) -> Result<ApgdRun> {
    let (n, per) = (hb.n, hb.per);
    let eps = params.eps;
    let n_iter = params.steps;
    // checkpoints: first after 22% of the iterations, then intervals shrinking by 3%
    // of the budget down to 6% (the reference's n_iter_2, size_decr, n_iter_min)
    let n_iter_2 = ((0.22 * n_iter as f64) as usize).max(1);
    let n_iter_min = ((0.06 * n_iter as f64) as usize).max(1);
    let size_decr = ((0.03 * n_iter as f64) as usize).max(1);
    let rho = params.apgd_rho as f64;

    // starting point
    let mut x_adv = x.to_vec();
    if params.random_start {
        for (i, id) in ids.iter().enumerate() {
            // t uniform in [-1, 1), scaled to ‖t‖∞ = 1, times ε
            let t = uniform_noise(seed, *id, per, 1.0);
            let m = t.iter().fold(0f32, |a, v| a.max(v.abs()));
            let s = i * per;
            for (a, tv) in x_adv[s..s + per].iter_mut().zip(t) {
                let r = if m > 0.0 { tv / m } else { 0.0 };
                *a = (*a + eps * r).clamp(0.0, 1.0);
            }
        }
    }
    let mut x_best = x_adv.clone();
    let mut x_best_adv = x_adv.clone();
    let mut loss_steps = vec![vec![0f32; n]; n_iter];
    let mut trace = Vec::with_capacity(n_iter + 1);

    let g0 = obj.eval(model, &x_adv, stats)?;
    let mut grad = g0.grad;
    let mut grad_best = grad.clone();
    let mut success: Vec<bool> = (0..n).map(|i| succeeded(g0.pred[i], i)).collect();
    let mut loss_best = g0.loss;
    trace.push(loss_best.clone());

    let mut step_size = vec![2.0 * eps; n];
    let mut x_adv_old = x_adv.clone();
    let mut k = n_iter_2;
    let mut counter3 = 0usize;
    let mut loss_best_last_check = loss_best.clone();
    let mut reduced_last_check = vec![true; n];

    for i in 0..n_iter {
        // gradient step with momentum
        let a = if i > 0 { 0.75f32 } else { 1.0 };
        let mut x_new = vec![0f32; x_adv.len()];
        for (s, &st) in step_size.iter().enumerate() {
            for j in s * per..(s + 1) * per {
                let (xa, xo, x0) = (x_adv[j], x_adv_old[j], x[j]);
                let grad2 = xa - xo;
                let z = (xa + st * sign(grad[j])).max(x0 - eps).min(x0 + eps);
                let z = z.clamp(0.0, 1.0);
                let z = (xa + (z - xa) * a + grad2 * (1.0 - a))
                    .max(x0 - eps)
                    .min(x0 + eps);
                x_new[j] = z.clamp(0.0, 1.0);
            }
        }
        x_adv_old = std::mem::replace(&mut x_adv, x_new);

        let ev = obj.eval(model, &x_adv, stats)?;
        grad = ev.grad;
        for s in 0..n {
            if succeeded(ev.pred[s], s) {
                success[s] = true;
                x_best_adv[s * per..(s + 1) * per].copy_from_slice(&x_adv[s * per..(s + 1) * per]);
            }
        }
        // best-loss tracking
        loss_steps[i] = ev.loss.clone();
        for (s, best) in loss_best.iter_mut().enumerate() {
            if ev.loss[s] > *best {
                let r = s * per..(s + 1) * per;
                x_best[r.clone()].copy_from_slice(&x_adv[r.clone()]);
                grad_best[r.clone()].copy_from_slice(&grad[r]);
                *best = ev.loss[s];
            }
        }
        trace.push(loss_best.clone());

        // step-size check at the checkpoints
        counter3 += 1;
        if counter3 == k {
            for s in 0..n {
                // condition 1: fewer than rho·k of the last k steps increased the loss
                let mut increases = 0usize;
                for c in 0..k {
                    let cur = loss_steps[(i + n_iter - c) % n_iter][s];
                    // index -1 wraps to the last row, as in the reference code
                    let prev = loss_steps[(i + 2 * n_iter - c - 1) % n_iter][s];
                    if cur > prev {
                        increases += 1;
                    }
                }
                let oscillation = increases as f64 <= k as f64 * rho;
                // condition 2: step size not reduced at the last checkpoint and the
                // best loss did not improve since
                let no_improvement =
                    !reduced_last_check[s] && loss_best_last_check[s] >= loss_best[s];
                let reduce = oscillation || no_improvement;
                reduced_last_check[s] = reduce;
                loss_best_last_check[s] = loss_best[s];
                if reduce {
                    step_size[s] /= 2.0;
                    let r = s * per..(s + 1) * per;
                    x_adv[r.clone()].copy_from_slice(&x_best[r.clone()]);
                    grad[r.clone()].copy_from_slice(&grad_best[r]);
                }
            }
            k = k.saturating_sub(size_decr).max(n_iter_min);
            counter3 = 0;
        }
    }
    // successful samples: the last successful iterate; others: the best-loss iterate
    let mut adv = x_best;
    for (s, _) in success.iter().enumerate().filter(|(_, ok)| **ok) {
        let r = s * per..(s + 1) * per;
        adv[r.clone()].copy_from_slice(&x_best_adv[r]);
    }
    Ok(ApgdRun {
        adv,
        success,
        loss_best,
        best_loss_trace: trace,
    })
}

/// Per-sample L∞ and L2 norms of `adv - clean` (`(N, …)` tensors of equal shape).
pub fn perturbation_norms(clean: &Tensor, adv: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
    if clean.dims() != adv.dims() || clean.rank() == 0 {
        return Err(AttackError::InvalidInput(format!(
            "shapes {:?} and {:?} differ",
            clean.dims(),
            adv.dims()
        )));
    }
    let n = clean.dim(0)?;
    let d = (adv.to_dtype(DType::F32)? - clean.to_dtype(DType::F32)?)?.reshape((n, ()))?;
    let linf: Vec<f32> = d.abs()?.max(1)?.to_vec1()?;
    let l2: Vec<f32> = d.sqr()?.sum(1)?.sqrt()?.to_vec1()?;
    Ok((linf, l2))
}
