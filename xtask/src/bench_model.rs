//! `cargo xtask bench model`: EfficientNet-B0 (2 classes) throughput on this machine, the
//! configurations of `../shared/bench/pt_bench.py` (run it side by side).

use anyhow::Result;
use candle_core::{Device, Tensor, Var};
use dfr_model::loss::weighted_cross_entropy;
use dfr_model::{Arch, EfficientNet, EfficientNetConfig};
use dfr_train::adam::{Adam, AdamParams};
use serde_json::json;
use std::time::Instant;

/// A part of the model benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Train step: forward, class-weighted loss, backward, Adam.
    Train,
    /// Eval-mode forward.
    Eval,
    /// 10-step PGD (input gradients only), with the A/B variants.
    Pgd,
}

/// What `bench model` measures.
#[derive(Clone, Debug, Default)]
pub struct ModelBenchOptions {
    /// One small configuration (64 px, batch 8), for a smoke run.
    pub quick: bool,
    /// Only this part (e.g. to profile it); all by default.
    pub only: Option<Part>,
    /// (resolution, batch) pairs instead of the defaults.
    pub configs: Option<Vec<(usize, usize)>>,
}

/// Mean seconds per call of `f` after one warm-up call; waits for `dev` to finish the
/// queued work (GPU kernels run asynchronously) before reading the clock.
fn timed(dev: &Device, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up
    dev.synchronize()?;
    let t = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    dev.synchronize()?;
    Ok(t.elapsed().as_secs_f64() / reps as f64)
}

/// Train step (Adam, class-weighted CE), eval forward and PGD-10 (input gradients only,
/// parameters frozen) in images per second, on `dev`.
pub fn bench_model(opts: &ModelBenchOptions, dev: &Device) -> Result<serde_json::Value> {
    let configs: Vec<(usize, usize)> = if let Some(c) = &opts.configs {
        c.clone()
    } else if opts.quick {
        vec![(64, 8)]
    } else if dev.is_cuda() {
        vec![(128, 32), (224, 16), (224, 64)] // a GPU is only busy with larger batches
    } else {
        vec![(128, 32), (224, 16)]
    };
    let quick = opts.quick;
    let run = |part: Part| opts.only.is_none_or(|o| o == part);
    let mut results = Vec::new();
    for (res, bs) in configs {
        let model = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), dev, 0)?;
        let x = Tensor::rand(0f32, 1.0, (bs, 3, res, res), dev)?;
        let y = Tensor::from_vec((0..bs as u32).map(|i| i % 2).collect::<Vec<_>>(), bs, dev)?;
        let w = Tensor::new(&[5.6f32, 1.0], dev)?;
        let vars = model
            .named_params()
            .iter()
            .map(|(n, p)| (n.clone(), p.var().clone()))
            .collect();
        let mut adam = Adam::new(
            vars,
            AdamParams {
                lr: 3e-5,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        )?;
        let reps = if quick { 2 } else { 3 };
        let mut r = serde_json::Map::new();
        r.insert("resolution".into(), res.into());
        r.insert("batch".into(), bs.into());
        let per_second = |secs: f64| serde_json::Value::from(bs as f64 / secs);
        if run(Part::Train) {
            let train = timed(dev, reps, || {
                let logits = model.forward_t(&x, true)?;
                let loss = weighted_cross_entropy(&logits, &y, Some(&w))?;
                adam.step(&loss.backward()?)?;
                Ok(())
            })?;
            r.insert("train_images_per_second".into(), per_second(train));
        }
        if run(Part::Eval) {
            let eval = timed(dev, reps, || {
                model.forward_t(&x, false)?;
                Ok(())
            })?;
            r.insert("eval_images_per_second".into(), per_second(eval));
        }
        if run(Part::Pgd) {
            pgd_bench(dev, &model, &x, &y, &mut r)?;
        }
        results.push(serde_json::Value::Object(r));
        eprintln!("{}", results.last().unwrap());
    }
    Ok(json!({
        "bench": "model",
        "model": "efficientnet_b0, 2 classes, f32",
        "device": format!("{dev:?}"),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "results": results,
        "reference": "run ../shared/bench/pt_bench.py 128 32 and 224 16 on the same machine",
    }))
}

/// PGD-10 (input gradients only, parameters frozen) on `(x, y)`, with the A/B variants,
/// into `r`.
fn pgd_bench(
    dev: &Device,
    model: &EfficientNet,
    x: &Tensor,
    y: &Tensor,
    r: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let bs = x.dim(0)?;
    let per_second = |secs: f64| serde_json::Value::from(bs as f64 / secs);
    let _frozen = model.freeze(); // input gradients only, as an attack runs
    let steps = 10;
    let pgd_once = || {
        timed(dev, 1, || {
            let eps = 0.001f64;
            let alpha = eps / 4.0;
            let mut adv = x.clone();
            for _ in 0..steps {
                let v = Var::from_tensor(&adv)?;
                let loss =
                    weighted_cross_entropy(&model.forward_t(v.as_tensor(), false)?, y, None)?;
                let g = loss
                    .backward()?
                    .remove(v.as_tensor())
                    .expect("input gradient");
                adv = (adv + (g.sign()? * alpha)?)?;
                let lo = (x - eps)?;
                let hi = (x + eps)?;
                adv = adv.maximum(&lo)?.minimum(&hi)?.clamp(0f32, 1f32)?;
            }
            Ok(())
        })
    };
    let pgd = pgd_once()?;
    // The same attack with candle's matmul for 1×1 convolutions (which also computes the
    // unused weight gradients): what the custom pointwise op saves.
    dfr_model::pointwise::force_reference_impl(true);
    let pgd_reference = pgd_once();
    dfr_model::pointwise::force_reference_impl(false);
    let pgd_reference = pgd_reference?;
    r.insert("pgd10_images_per_second".into(), per_second(pgd));
    r.insert(
        "pgd10_images_per_second_candle_matmul".into(),
        per_second(pgd_reference),
    );
    // Without the fused eval BN + activation (a CPU op; CUDA always runs them apart).
    if dev.is_cpu() {
        dfr_model::batch_norm::force_unfused(true);
        let pgd_unfused = pgd_once();
        dfr_model::batch_norm::force_unfused(false);
        r.insert(
            "pgd10_images_per_second_unfused_bn_act".into(),
            per_second(pgd_unfused?),
        );
    }
    Ok(())
}
