//! The sign-gradient attacks of torchattacks 3.5, operation by operation (mean-reduced
//! CE): FGSM (`x + ε·sign(∇)`), PGD (steps of α, optional uniform random start,
//! projection onto the ε-ball) and MI-FGSM (momentum over L1-normalised gradients).

use super::objective::{sign, uniform_noise, Problem};
use super::params::{AttackKind, Schedule};
use crate::classifier::Classifier;
use crate::error::Result;

/// Projection onto the ε-ball around `x` and [0, 1], torchattacks' order:
/// `x + clamp(adv - x, -eps, eps)`, clamped to [0, 1].
#[inline]
fn project(adv: f32, x: f32, eps: f32) -> f32 {
    (x + (adv - x).clamp(-eps, eps)).clamp(0.0, 1.0)
}

/// FGSM: one step of size ε along the sign of the gradient, clamped to [0, 1].
pub(super) fn fgsm<M: Classifier + ?Sized>(
    p: &mut Problem<'_, M>,
    s: Schedule,
) -> Result<Vec<f32>> {
    let g = fgsm_gradient(p)?;
    Ok(fgsm_step(&p.x, &g, s))
}

/// The gradient FGSM steps along: the objective's input gradient at the clean images.
pub(super) fn fgsm_gradient<M: Classifier + ?Sized>(p: &mut Problem<'_, M>) -> Result<Vec<f32>> {
    let x = p.x.clone();
    Ok(p.eval(&x)?.grad)
}

/// FGSM's image for one step size, from the clean images and [`fgsm_gradient`].
pub(super) fn fgsm_step(x: &[f32], grad: &[f32], s: Schedule) -> Vec<f32> {
    x.iter()
        .zip(grad)
        .map(|(xi, gi)| (xi + s.step_size * sign(*gi)).clamp(0.0, 1.0))
        .collect()
}

/// PGD and MI-FGSM: `s.steps` projected sign steps of size `s.step_size`.
pub(super) fn iterative<M: Classifier + ?Sized>(
    p: &mut Problem<'_, M>,
    s: Schedule,
) -> Result<Vec<f32>> {
    iterative_from(p, s, None)
}

/// [`iterative`], starting from `start` (host data of the batch's shape) instead of the
/// clean images or a random start when given: PGD continued from an earlier iterate (PGD
/// keeps no state between steps, so k steps then m more are k + m steps).
pub(super) fn iterative_from<M: Classifier + ?Sized>(
    p: &mut Problem<'_, M>,
    s: Schedule,
    start: Option<Vec<f32>>,
) -> Result<Vec<f32>> {
    let params = p.params;
    let (n, per, eps) = (p.n, p.per, params.eps);
    let momentum_on = params.kind == AttackKind::MiFgsm;
    let x = p.x.clone();
    let continued = start.is_some();
    let mut adv = start.unwrap_or_else(|| x.clone());
    if params.random_start && params.kind == AttackKind::Pgd && !continued {
        for (i, id) in p.ids.iter().enumerate() {
            let noise = uniform_noise(params.seed, *id, per, eps);
            for (a, r) in adv[i * per..(i + 1) * per].iter_mut().zip(noise) {
                *a = (*a + r).clamp(0.0, 1.0);
            }
        }
    }
    let mut momentum = vec![0f32; adv.len()];
    for _ in 0..s.steps {
        let mut g = p.eval(&adv)?.grad;
        if momentum_on {
            for i in 0..n {
                let gs = &mut g[i * per..(i + 1) * per];
                let mean = gs.iter().map(|v| v.abs()).sum::<f32>() / per as f32;
                // a zero gradient stays zero instead of becoming 0/0 = NaN
                let mean = if mean > 0.0 { mean } else { 1.0 };
                let ms = &mut momentum[i * per..(i + 1) * per];
                for (gv, mv) in gs.iter_mut().zip(ms.iter_mut()) {
                    *gv = *gv / mean + *mv * params.decay;
                    *mv = *gv;
                }
            }
        }
        for ((a, xi), gi) in adv.iter_mut().zip(&x).zip(&g) {
            *a = project(*a + s.step_size * sign(*gi), *xi, eps);
        }
    }
    Ok(adv)
}
