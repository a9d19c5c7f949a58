//! Attack throughput on CPU: PGD-10 images/s for EfficientNet-B0, compared with a
//! training step on the same batch, and the cost of one input-gradient step with
//! trainable vs frozen parameters.
//!
//! `cargo run -p dfr-attacks --release --example pgd_bench [-- BATCH SIZE [STEPS [REPS]]]`
//! (REPS > 1 adds a warm-up run)
//! (default: batch 32 at 128 px, then the cheaper batch 8 at 64 px).

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use dfr_attacks::{run_attack, AttackKind, AttackParams, Goal};
use dfr_model::loss::weighted_cross_entropy;
use dfr_model::{Arch, EfficientNet, EfficientNetConfig};

/// Mean seconds of `reps` runs, after one warm-up run when `reps > 1`.
fn secs<F: FnMut() -> dfr_attacks::Result<()>>(reps: usize, mut f: F) -> f64 {
    if reps > 1 {
        f().expect("warm-up");
    }
    let t = Instant::now();
    for _ in 0..reps {
        f().expect("timed run");
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn bench(batch: usize, size: usize, steps: usize, reps: usize) -> dfr_attacks::Result<()> {
    let dev = Device::Cpu;
    let model = EfficientNet::new(
        EfficientNetConfig::new(Arch::B0, 2).without_stochastic(),
        &dev,
        0,
    )?;
    let x = Tensor::rand(0f32, 1., (batch, 3, size, size), &dev)?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 2).collect();
    let y = Tensor::from_slice(&labels, batch, &dev)?;

    // one input-gradient step (forward + backward w.r.t. the input), eval mode
    let grad_step = |trainable: bool| {
        model.set_trainable(trainable);
        let t = secs(reps, || {
            let xv = Var::from_tensor(&x)?;
            let loss = weighted_cross_entropy(&model.forward_t(xv.as_tensor(), false)?, &y, None)?;
            let g = loss.backward()?;
            assert!(g.get(xv.as_tensor()).is_some());
            Ok(())
        });
        model.set_trainable(true);
        t
    };
    let trainable = grad_step(true);
    let frozen = grad_step(false);

    // PGD-10 through the public API (parameters frozen inside), + the eval forward
    let params = AttackParams {
        kind: AttackKind::Pgd,
        eps: 4.0 / 255.0,
        steps,
        random_start: true,
        ..AttackParams::default()
    };
    let pgd = secs(reps, || {
        let out = run_attack(&model, &params, &x, &labels, Goal::Untargeted, None)?;
        model.forward_t(&out.adversarial, false)?;
        Ok(())
    });

    // training step: train-mode forward, backward for all weights, AdamW update
    let mut opt = AdamW::new(model.trainable_vars(), ParamsAdamW::default())?;
    let train = secs(reps, || {
        let loss = weighted_cross_entropy(&model.forward_t(&x, true)?, &y, None)?;
        opt.backward_step(&loss)?;
        Ok(())
    });
    let eval_fwd = secs(reps, || {
        model.forward_t(&x.to_dtype(DType::F32)?, false)?;
        Ok(())
    });
    println!(
        "B0 batch {batch} at {size}x{size} ({} threads):\n  \
         eval forward                 {:8.1} ms  ({:7.1} img/s)\n  \
         input-gradient step, params trainable {:8.1} ms\n  \
         input-gradient step, params frozen    {:8.1} ms  ({:.2}x faster)\n  \
         PGD-{steps} (+ eval forward)       {:8.1} ms  ({:7.2} img/s)\n  \
         train step (fwd+bwd+AdamW)   {:8.1} ms  ({:7.1} img/s); PGD-{steps} costs {:.1} train steps",
        rayon::current_num_threads(),
        eval_fwd * 1e3,
        batch as f64 / eval_fwd,
        trainable * 1e3,
        frozen * 1e3,
        trainable / frozen,
        pgd * 1e3,
        batch as f64 / pgd,
        train * 1e3,
        batch as f64 / train,
        pgd / train
    );
    Ok(())
}

fn main() -> dfr_attacks::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    match args.as_slice() {
        [b, s, rest @ ..] => bench(
            *b,
            *s,
            rest.first().copied().unwrap_or(10),
            rest.get(1).copied().unwrap_or(1),
        )?,
        _ => {
            bench(8, 64, 10, 3)?;
            bench(32, 128, 10, 1)?;
        }
    }
    Ok(())
}
