//! `cargo xtask bench model`: EfficientNet-B0 (2 classes) throughput on this machine, the
//! configurations of `../shared/bench/pt_bench.py`. With `--pytorch PYTHON` the PyTorch
//! reference runs in the same sitting, interleaved ours → PyTorch → ours, and the JSON holds
//! both figures, their ratios and the peak resident memory of each train step
//! ([`crate::bench_reference`]).

use crate::bench_reference::{self as reference, FIGURES};
use anyhow::{ensure, Result};
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
    /// Gradient-regularised train step (PIM after stage 1, α = 0.5, r = 0.05, shallow part
    /// frozen) and its matched control, the baseline step with the same frozen shallow part.
    Gradreg,
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
    /// A Python with torch, timm and torchattacks: run the PyTorch reference side by side.
    pub pytorch: Option<std::path::PathBuf>,
    /// Only measure the peak resident memory of a train step (one configuration, CPU): the
    /// fresh-process probe behind `--pytorch`'s memory figures.
    pub peak_rss: bool,
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

/// A B0 detector with a random batch at `res`×`bs`, and Adam over its parameters.
struct Setup {
    model: EfficientNet,
    x: Tensor,
    y: Tensor,
    w: Tensor,
    adam: Adam,
}

impl Setup {
    fn new(dev: &Device, res: usize, bs: usize) -> Result<Self> {
        let model = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), dev, 0)?;
        let x = Tensor::rand(0f32, 1.0, (bs, 3, res, res), dev)?;
        let y = Tensor::from_vec((0..bs as u32).map(|i| i % 2).collect::<Vec<_>>(), bs, dev)?;
        let w = Tensor::new(&[5.6f32, 1.0], dev)?;
        let vars = model
            .named_params()
            .iter()
            .map(|(n, p)| (n.clone(), p.var().clone()))
            .collect();
        let adam = Adam::new(
            vars,
            AdamParams {
                lr: 3e-5,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        )?;
        Ok(Setup {
            model,
            x,
            y,
            w,
            adam,
        })
    }

    /// One train step: forward, class-weighted loss, backward, Adam.
    fn train_step(&mut self) -> Result<()> {
        let logits = self.model.forward_t(&self.x, true)?;
        let loss = weighted_cross_entropy(&logits, &self.y, Some(&self.w))?;
        self.adam.step(&loss.backward()?)?;
        Ok(())
    }
}

/// Train step (Adam, class-weighted CE), eval forward (parameters frozen, no graph) and PGD-10
/// (input gradients only, parameters frozen) in images per second, on `dev`; with `opts.pytorch`, PyTorch's figures
/// beside them (see the module docs).
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
    if opts.peak_rss {
        ensure!(
            configs.len() == 1 && dev.is_cpu(),
            "--peak-rss measures one configuration on the CPU (give one --configs RESxBATCH)"
        );
        let (res, bs) = configs[0];
        return Ok(json!({
            "bench": "model-peak-rss",
            "resolution": res,
            "batch": bs,
            "train_peak_rss_mib": train_peak_rss(dev, res, bs)?,
        }));
    }
    let first = pass(opts, dev, &configs)?;
    let mut out = json!({
        "bench": "model",
        "model": "efficientnet_b0, 2 classes, f32",
        "device": format!("{dev:?}"),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    let Some(python) = &opts.pytorch else {
        out["results"] = first.into_iter().map(serde_json::Value::Object).collect();
        out["reference"] =
            "run with --pytorch PYTHON for PyTorch's figures side by side (../shared/bench/pt_bench.py)"
                .into();
        return Ok(out);
    };
    let mut pt = Vec::new();
    for &(res, bs) in &configs {
        let m = reference::throughput(python, dev.is_cuda(), res, bs)?;
        eprintln!(
            "pytorch {res}x{bs}: {}",
            serde_json::Value::Object(m.clone())
        );
        pt.push(m);
    }
    let second = pass(opts, dev, &configs)?;
    let mut results = Vec::new();
    for (i, &(res, bs)) in configs.iter().enumerate() {
        let mut row = compare(&first[i], &second[i], &pt[i]);
        row.insert("resolution".into(), res.into());
        row.insert("batch".into(), bs.into());
        if dev.is_cpu() && opts.only.is_none_or(|o| o == Part::Train) {
            let ours = reference::our_train_peak_rss(res, bs)?;
            let theirs = reference::pytorch_train_peak_rss(python, res, bs)?;
            row.insert(
                "train_peak_rss_mib".into(),
                json!({"ours": ours, "pytorch": theirs, "ratio_ours_over_pytorch": ours / theirs}),
            );
        }
        results.push(serde_json::Value::Object(row));
    }
    out["results"] = results.into();
    out["sequence"] =
        "ours, PyTorch, ours (per configuration), then peak memory in fresh processes".into();
    out["pytorch_cpu_script"] = "../shared/bench/pt_bench.py (2 threads)".into();
    Ok(out)
}

/// One row of the side-by-side JSON: our mean of the two passes, both passes, PyTorch's
/// figures and the ratios ours / PyTorch (> 1: we are faster).
fn compare(first: &Map, second: &Map, pt: &Map) -> Map {
    let (mut ours, mut ratio) = (Map::new(), Map::new());
    for k in FIGURES {
        let (Some(a), Some(b)) = (
            first.get(k).and_then(|v| v.as_f64()),
            second.get(k).and_then(|v| v.as_f64()),
        ) else {
            continue;
        };
        let mean = (a + b) / 2.0;
        ours.insert(k.into(), mean.into());
        if let Some(p) = pt.get(k).and_then(|v| v.as_f64()) {
            ratio.insert(k.into(), (mean / p).into());
        }
    }
    let mut row = Map::new();
    row.insert("ours".into(), ours.into());
    row.insert(
        "ours_runs".into(),
        vec![
            serde_json::Value::Object(first.clone()),
            serde_json::Value::Object(second.clone()),
        ]
        .into(),
    );
    row.insert("pytorch".into(), pt.clone().into());
    row.insert("ratio_ours_over_pytorch".into(), ratio.into());
    row
}

type Map = serde_json::Map<String, serde_json::Value>;

/// Every configuration once: our figures per configuration.
fn pass(opts: &ModelBenchOptions, dev: &Device, configs: &[(usize, usize)]) -> Result<Vec<Map>> {
    let run = |part: Part| opts.only.is_none_or(|o| o == part);
    let reps = if opts.quick { 2 } else { 3 };
    let mut results = Vec::new();
    for &(res, bs) in configs {
        let mut s = Setup::new(dev, res, bs)?;
        let mut r = Map::new();
        r.insert("resolution".into(), res.into());
        r.insert("batch".into(), bs.into());
        let per_second = |secs: f64| serde_json::Value::from(bs as f64 / secs);
        if run(Part::Train) {
            let train = timed(dev, reps, || s.train_step())?;
            r.insert("train_images_per_second".into(), per_second(train));
            // The same step with the composed candle ops instead of the fused CPU ones
            if dev.is_cpu() {
                dfr_model::batch_norm::force_unfused(true);
                let unfused = timed(dev, reps, || s.train_step());
                dfr_model::batch_norm::force_unfused(false);
                r.insert(
                    "train_images_per_second_unfused".into(),
                    per_second(unfused?),
                );
            }
        }
        if run(Part::Eval) {
            // Inference as the library runs it (`dfr_train::evaluate::score`, `predict_probs`)
            // and as PyTorch's figure is taken (under `no_grad`): parameters frozen, no graph.
            let eval = timed(dev, reps, || {
                let _frozen = s.model.freeze();
                s.model.forward_t(&s.x, false)?;
                Ok(())
            })?;
            r.insert("eval_images_per_second".into(), per_second(eval));
        }
        if run(Part::Pgd) {
            pgd_bench(dev, &s.model, (&s.x, &s.y), reps, &mut r)?;
        }
        if run(Part::Gradreg) {
            gradreg_bench(dev, res, bs, reps, &mut r)?;
        }
        eprintln!("{}", serde_json::Value::Object(r.clone()));
        results.push(r);
    }
    Ok(results)
}

/// The gradient-regularised step and the matched baseline-frozen step (the same frozen
/// shallow part, eval-mode), in images/s, and the cost of a gradreg step in baseline steps
/// (`gradreg_cost_over_baseline`: plain train step; `…_over_frozen`: the matched control).
fn gradreg_bench(dev: &Device, res: usize, bs: usize, reps: usize, r: &mut Map) -> Result<()> {
    let gr = dfr_train::config::GradRegConfig::default();
    let mut s = Setup::new(dev, res, bs)?;
    s.model.set_stages_trainable(gr.stage, false);
    let per_second = |secs: f64| bs as f64 / secs;
    let frozen = timed(dev, reps, || {
        let (_, _, grads) =
            dfr_train::pim::frozen_shallow_step(&s.model, &s.x, &s.y, Some(&s.w), gr.stage, 0)?;
        s.adam.step(&grads)?;
        Ok(())
    })?;
    let gradreg = timed(dev, reps, || {
        let out = dfr_train::pim::pim_step(&s.model, &s.x, &s.y, Some(&s.w), &gr, 0)?;
        s.adam.step(&out.grads)?;
        Ok(())
    })?;
    r.insert(
        "baseline_frozen_images_per_second".into(),
        per_second(frozen).into(),
    );
    r.insert(
        "gradreg_images_per_second".into(),
        per_second(gradreg).into(),
    );
    r.insert("gradreg_cost_over_frozen".into(), (gradreg / frozen).into());
    if let Some(train) = r.get("train_images_per_second").and_then(|v| v.as_f64()) {
        r.insert(
            "gradreg_cost_over_baseline".into(),
            (gradreg / (bs as f64 / train)).into(), // seconds per gradreg step / per train step
        );
    }
    Ok(())
}

/// Peak resident memory (MiB) of two train steps after a warm-up one, this process's mark
/// reset in between (run it in a fresh process: freed memory of earlier work stays resident).
fn train_peak_rss(dev: &Device, res: usize, bs: usize) -> Result<f64> {
    let mut s = Setup::new(dev, res, bs)?;
    s.train_step()?;
    reference::reset_peak_rss()?;
    s.train_step()?;
    s.train_step()?;
    reference::peak_rss_mib()
}

/// PGD-10 (input gradients only, parameters frozen) on `(x, y)`, with the A/B variants,
/// into `r`; each figure is the mean of `reps` attacks after a warm-up one.
fn pgd_bench(
    dev: &Device,
    model: &EfficientNet,
    (x, y): (&Tensor, &Tensor),
    reps: usize,
    r: &mut Map,
) -> Result<()> {
    let bs = x.dim(0)?;
    let per_second = |secs: f64| serde_json::Value::from(bs as f64 / secs);
    let _frozen = model.freeze(); // input gradients only, as an attack runs
    let steps = 10;
    let pgd_once = || {
        timed(dev, reps, || {
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
    // Without the fused CPU ops (BN + activation, squeeze-excitation; CUDA runs them apart).
    if dev.is_cpu() {
        dfr_model::batch_norm::force_unfused(true);
        let pgd_unfused = pgd_once();
        dfr_model::batch_norm::force_unfused(false);
        r.insert(
            "pgd10_images_per_second_unfused".into(),
            per_second(pgd_unfused?),
        );
    }
    Ok(())
}
