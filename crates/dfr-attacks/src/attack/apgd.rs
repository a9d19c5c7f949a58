//! APGD-CE, L∞ (Croce & Hein 2020, `autoattack/autopgd_base.py`): momentum 0.75,
//! step size starting at 2ε and halving at checkpoints where the loss oscillates or
//! stalls, restarts from the best point, sum-reduced CE, optional restarts.

use super::objective::{sign, uniform_noise, Problem};
use super::params::Schedule;
use crate::classifier::Classifier;
use crate::error::{AttackError, Result};

/// The result of [`apgd`].
pub(super) struct Apgd {
    /// Per sample: the last successful iterate if any, else the best-loss iterate,
    /// over all restarts.
    pub adv: Vec<f32>,
    /// Whether each sample reached the goal.
    pub success: Vec<bool>,
    /// Per iteration (row 0 = start), each sample's best loss so far, of the last restart.
    pub best_loss_trace: Vec<Vec<f32>>,
}

/// Runs `apgd_restarts` restarts (stopping once every sample succeeded) and keeps,
/// per sample, a successful point over an unsuccessful one, else the higher loss.
pub(super) fn apgd<M: Classifier + ?Sized>(p: &mut Problem<'_, M>, s: Schedule) -> Result<Apgd> {
    let (n, per) = (p.n, p.per);
    let mut best: Option<Run> = None;
    let mut trace = Vec::new();
    for restart in 0..p.params.apgd_restarts {
        let seed = p
            .params
            .seed
            .wrapping_add((restart as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut run = single_run(p, s, seed)?;
        trace = std::mem::take(&mut run.best_loss_trace);
        best = Some(match best {
            None => run,
            Some(mut b) => {
                for i in 0..n {
                    let take = (!b.success[i] && run.success[i])
                        || (b.success[i] == run.success[i] && run.loss_best[i] > b.loss_best[i]);
                    if take {
                        let r = i * per..(i + 1) * per;
                        b.adv[r.clone()].copy_from_slice(&run.adv[r]);
                        b.success[i] = run.success[i];
                        b.loss_best[i] = run.loss_best[i];
                    }
                }
                b
            }
        });
        if best.as_ref().is_some_and(|b| b.success.iter().all(|s| *s)) {
            break;
        }
    }
    let b = best.ok_or_else(|| AttackError::param("apgd_restarts", "must be at least 1"))?;
    Ok(Apgd {
        adv: b.adv,
        success: b.success,
        best_loss_trace: trace,
    })
}

struct Run {
    adv: Vec<f32>,
    success: Vec<bool>,
    loss_best: Vec<f32>,
    best_loss_trace: Vec<Vec<f32>>,
}

/// One APGD run (`attack_single_run` of the reference implementation, L∞, CE).
fn single_run<M: Classifier + ?Sized>(
    p: &mut Problem<'_, M>,
    s: Schedule,
    seed: u64,
) -> Result<Run> {
    let (n, per) = (p.n, p.per);
    let eps = p.params.eps;
    let n_iter = s.steps;
    // checkpoints: first after 22% of the iterations, then intervals shrinking by 3%
    // of the budget down to 6% (the reference's n_iter_2, size_decr, n_iter_min)
    let n_iter_2 = ((0.22 * n_iter as f64) as usize).max(1);
    let n_iter_min = ((0.06 * n_iter as f64) as usize).max(1);
    let size_decr = ((0.03 * n_iter as f64) as usize).max(1);
    let rho = p.params.apgd_rho as f64;
    let x = p.x.clone();

    // starting point
    let mut x_adv = x.clone();
    if p.params.random_start {
        for (i, id) in p.ids.iter().enumerate() {
            // t uniform in [-1, 1), scaled to ‖t‖∞ = 1, times ε
            let t = uniform_noise(seed, *id, per, 1.0);
            let m = t.iter().fold(0f32, |a, v| a.max(v.abs()));
            for (a, tv) in x_adv[i * per..(i + 1) * per].iter_mut().zip(t) {
                let r = if m > 0.0 { tv / m } else { 0.0 };
                *a = (*a + eps * r).clamp(0.0, 1.0);
            }
        }
    }
    let mut x_best = x_adv.clone();
    let mut x_best_adv = x_adv.clone();
    let mut loss_steps = vec![vec![0f32; n]; n_iter];
    let mut trace = Vec::with_capacity(n_iter + 1);

    let g0 = p.eval(&x_adv)?;
    let mut grad = g0.grad;
    let mut grad_best = grad.clone();
    let mut success: Vec<bool> = (0..n).map(|i| p.succeeded(g0.pred[i], i)).collect();
    let mut loss_best = g0.loss;
    trace.push(loss_best.clone());

    let mut step_size = vec![s.step_size; n];
    let mut x_adv_old = x_adv.clone();
    let mut k = n_iter_2;
    let mut counter3 = 0usize;
    let mut loss_best_last_check = loss_best.clone();
    let mut reduced_last_check = vec![true; n];

    for i in 0..n_iter {
        // gradient step with momentum
        let a = if i > 0 { 0.75f32 } else { 1.0 };
        let mut x_new = vec![0f32; x_adv.len()];
        for (smp, &st) in step_size.iter().enumerate() {
            for j in smp * per..(smp + 1) * per {
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

        let ev = p.eval(&x_adv)?;
        grad = ev.grad;
        for (smp, ok) in success.iter_mut().enumerate() {
            if p.succeeded(ev.pred[smp], smp) {
                *ok = true;
                let r = smp * per..(smp + 1) * per;
                x_best_adv[r.clone()].copy_from_slice(&x_adv[r]);
            }
        }
        // best-loss tracking
        loss_steps[i] = ev.loss.clone();
        for (smp, best) in loss_best.iter_mut().enumerate() {
            if ev.loss[smp] > *best {
                let r = smp * per..(smp + 1) * per;
                x_best[r.clone()].copy_from_slice(&x_adv[r.clone()]);
                grad_best[r.clone()].copy_from_slice(&grad[r]);
                *best = ev.loss[smp];
            }
        }
        trace.push(loss_best.clone());

        // step-size check at the checkpoints
        counter3 += 1;
        if counter3 == k {
            for smp in 0..n {
                // condition 1: fewer than rho·k of the last k steps increased the loss
                let mut increases = 0usize;
                for c in 0..k {
                    let cur = loss_steps[(i + n_iter - c) % n_iter][smp];
                    // index -1 wraps to the last row, as in the reference code
                    let prev = loss_steps[(i + 2 * n_iter - c - 1) % n_iter][smp];
                    if cur > prev {
                        increases += 1;
                    }
                }
                let oscillation = increases as f64 <= k as f64 * rho;
                // condition 2: step size not reduced at the last checkpoint and the
                // best loss did not improve since
                let no_improvement =
                    !reduced_last_check[smp] && loss_best_last_check[smp] >= loss_best[smp];
                let reduce = oscillation || no_improvement;
                reduced_last_check[smp] = reduce;
                loss_best_last_check[smp] = loss_best[smp];
                if reduce {
                    step_size[smp] /= 2.0;
                    let r = smp * per..(smp + 1) * per;
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
    for (smp, _) in success.iter().enumerate().filter(|(_, ok)| **ok) {
        let r = smp * per..(smp + 1) * per;
        adv[r.clone()].copy_from_slice(&x_best_adv[r]);
    }
    Ok(Run {
        adv,
        success,
        loss_best,
        best_loss_trace: trace,
    })
}
