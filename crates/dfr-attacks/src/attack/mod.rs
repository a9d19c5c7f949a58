//! L∞ attacks: FGSM, PGD, MI-FGSM and APGD-CE, untargeted and targeted.
//!
//! Every attack maximises the cross-entropy of the true label (untargeted) or
//! minimises that of a target label (targeted: it maximises `-CE(target)`), takes
//! steps along the sign of the input gradient, projects onto the ε-ball around the
//! clean image and clamps to [0, 1]. FGSM, PGD and MI-FGSM follow torchattacks 3.5
//! operation by operation (mean-reduced CE, [`sign`](self) module), APGD-CE follows
//! the reference implementation of Croce & Hein (2020, `autoattack/autopgd_base.py`,
//! `apgd` module).
//!
//! Modules: `params` (kinds, parameters, [`AttackParams::schedule`]: the one place
//! that decides step size and steps), `objective` (validated batch, loss, gradient
//! diagnostics), `sign`, `apgd`; this file dispatches.
//!
//! The update arithmetic runs on host `f32` vectors (it is cheap next to a forward
//! and backward pass, and per-sample bookkeeping such as APGD's step-size halving is
//! plain indexing); only the model's forward and backward run in candle. The model's
//! parameters are frozen for the duration of an attack ([`Classifier::freeze`]), so a
//! backward pass computes the input gradient only.

mod apgd;
mod objective;
mod params;
mod sign;

use candle_core::{DType, Tensor};

pub use objective::GradStats;
pub use params::{check_eps, AttackKind, AttackParams, Goal, Schedule};

use crate::classifier::Classifier;
use crate::error::{AttackError, Result};
use objective::Problem;

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

/// Runs one attack on a batch.
///
/// `images`: `(N, C, H, W)` f32 in [0, 1]; `labels`: true classes; `goal`: untargeted
/// or per-sample targets; `sample_ids`: ids keying the random-start noise (default
/// `0..N`; pass dataset indices so that the noise does not depend on batching).
/// Parameters are frozen for the duration of the attack and restored afterwards.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dfr_attacks::{run_attack, AttackKind, AttackParams, FnClassifier, Goal};
///
/// // a linear "detector" on the mean pixel: logits (0, 8·mean − 4)
/// let model = FnClassifier::new(
///     |x: &Tensor| {
///         let m = x.flatten_from(1)?.mean_keepdim(1)?;
///         Tensor::cat(&[m.zeros_like()?, ((m * 8.0)? - 4.0)?], 1)
///     },
///     Some(2),
/// );
/// let images = Tensor::full(0.45f32, (1, 3, 4, 4), &Device::Cpu)?;
/// let params = AttackParams::new(AttackKind::Pgd, 8.0 / 255.0);
/// let out = run_attack(&model, &params, &images, &[0], Goal::Untargeted, None)?;
/// // the attack pushes the mean pixel up (towards "fake"), at most ε per pixel
/// let delta = (out.adversarial - &images)?.flatten_all()?.to_vec1::<f32>()?;
/// assert!(delta.iter().all(|d| *d > 0.0 && *d <= 8.0 / 255.0 + 1e-6));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_attack(
    model: &(impl Classifier + ?Sized),
    params: &AttackParams,
    images: &Tensor,
    labels: &[u32],
    goal: Goal<'_>,
    sample_ids: Option<&[u64]>,
) -> Result<AttackOutput> {
    let _frozen = model.freeze();
    let mut p = Problem::new(model, params, images, labels, goal, sample_ids)?;
    let schedule = params.schedule();
    let (adv, success, trace) = match params.kind {
        AttackKind::Fgsm => (sign::fgsm(&mut p, schedule)?, None, None),
        AttackKind::Pgd | AttackKind::MiFgsm => (sign::iterative(&mut p, schedule)?, None, None),
        AttackKind::Apgd => {
            let r = apgd::apgd(&mut p, schedule)?;
            (r.adv, Some(r.success), Some(r.best_loss_trace))
        }
    };
    Ok(AttackOutput {
        adversarial: p.tensor(&adv)?,
        grad_stats: p.stats,
        success,
        best_loss_trace: trace,
    })
}

/// Continues PGD from `start`, an earlier PGD iterate of the same batch and parameters:
/// `params.steps` more steps, without a random start. PGD keeps no state between steps, so
/// continuing a k-step run for m steps gives exactly (bit for bit) the (k + m)-step run: a
/// check of "more steps is not weaker" at 2k steps costs k more steps, not 2k.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dfr_attacks::{continue_pgd, run_attack, AttackKind, AttackParams, FnClassifier, Goal};
///
/// let model = FnClassifier::new(
///     |x: &Tensor| {
///         let m = x.flatten_from(1)?.mean_keepdim(1)?;
///         Tensor::cat(&[m.zeros_like()?, ((m * 8.0)? - 4.0)?], 1)
///     },
///     Some(2),
/// );
/// let images = Tensor::full(0.45f32, (1, 3, 4, 4), &Device::Cpu)?;
/// let mut p = AttackParams::new(AttackKind::Pgd, 8.0 / 255.0);
/// p.random_start = true;
/// p.alpha = Some(1.0 / 255.0);
/// p.steps = 2;
/// let two = run_attack(&model, &p, &images, &[0], Goal::Untargeted, None)?;
/// let four = continue_pgd(&model, &p, &images, &two.adversarial, &[0], Goal::Untargeted, None)?;
/// p.steps = 4;
/// let direct = run_attack(&model, &p, &images, &[0], Goal::Untargeted, None)?;
/// let d = (four.adversarial - direct.adversarial)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert_eq!(d, 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn continue_pgd(
    model: &(impl Classifier + ?Sized),
    params: &AttackParams,
    images: &Tensor,
    start: &Tensor,
    labels: &[u32],
    goal: Goal<'_>,
    sample_ids: Option<&[u64]>,
) -> Result<AttackOutput> {
    if params.kind != AttackKind::Pgd {
        return Err(AttackError::param(
            "kind",
            format!("only PGD can be continued, not {}", params.kind),
        ));
    }
    if start.dims() != images.dims() {
        return Err(AttackError::InvalidInput(format!(
            "the starting point has shape {:?}, the images {:?}",
            start.dims(),
            images.dims()
        )));
    }
    let _frozen = model.freeze();
    let mut p = Problem::new(model, params, images, labels, goal, sample_ids)?;
    let from: Vec<f32> = start.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let adv = sign::iterative_from(&mut p, params.schedule(), Some(from))?;
    Ok(AttackOutput {
        adversarial: p.tensor(&adv)?,
        grad_stats: p.stats,
        success: None,
        best_loss_trace: None,
    })
}

/// Runs one attack at several parameter sets (typically an ε grid) on a batch: the same
/// outputs, in the same order, as [`run_attack`] on each element of `params`.
///
/// FGSM's image at every ε is one step along the sign of the same clean-image gradient, so
/// when every element is FGSM and they differ in ε only (and in `steps`, which FGSM
/// ignores), that gradient is computed once for the whole grid (one backward pass instead of
/// one per ε; the outputs are bit-identical, `grad_stats` included). Anything else runs
/// attack by attack.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dfr_attacks::{run_attack, run_attack_grid, AttackKind, AttackParams, FnClassifier, Goal};
///
/// let model = FnClassifier::new(
///     |x: &Tensor| {
///         let m = x.flatten_from(1)?.mean_keepdim(1)?;
///         Tensor::cat(&[m.zeros_like()?, ((m * 8.0)? - 4.0)?], 1)
///     },
///     Some(2),
/// );
/// let images = Tensor::full(0.45f32, (2, 3, 4, 4), &Device::Cpu)?;
/// let grid: Vec<AttackParams> = [0.0, 0.01, 0.03]
///     .iter()
///     .map(|&e| AttackParams::new(AttackKind::Fgsm, e))
///     .collect();
/// let all = run_attack_grid(&model, &grid, &images, &[0, 1], Goal::Untargeted, None)?;
/// let one = run_attack(&model, &grid[2], &images, &[0, 1], Goal::Untargeted, None)?;
/// let (a, b) = (all[2].adversarial.flatten_all()?, one.adversarial.flatten_all()?);
/// assert_eq!(a.to_vec1::<f32>()?, b.to_vec1::<f32>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_attack_grid(
    model: &(impl Classifier + ?Sized),
    params: &[AttackParams],
    images: &Tensor,
    labels: &[u32],
    goal: Goal<'_>,
    sample_ids: Option<&[u64]>,
) -> Result<Vec<AttackOutput>> {
    let Some(first) = params.first() else {
        return Ok(Vec::new());
    };
    let shared_gradient = params.len() > 1
        && params.iter().all(|p| {
            let mut same_eps = p.clone();
            same_eps.eps = first.eps;
            same_eps.steps = first.steps;
            p.kind == AttackKind::Fgsm && same_eps == *first
        });
    if !shared_gradient {
        return params
            .iter()
            .map(|p| run_attack(model, p, images, labels, goal, sample_ids))
            .collect();
    }
    for p in params {
        p.validate()?;
    }
    let _frozen = model.freeze();
    let mut problem = Problem::new(model, first, images, labels, goal, sample_ids)?;
    let grad = sign::fgsm_gradient(&mut problem)?;
    params
        .iter()
        .map(|p| {
            let adv = sign::fgsm_step(&problem.x, &grad, p.schedule());
            Ok(AttackOutput {
                adversarial: problem.tensor(&adv)?,
                grad_stats: problem.stats.clone(),
                success: None,
                best_loss_trace: None,
            })
        })
        .collect()
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
