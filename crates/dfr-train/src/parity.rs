//! Parity of the PIM step with PyTorch (`pim_case.safetensors` in a reference-vector
//! directory; format in `../shared/fixtures/README.md`).

use crate::config::{Direction, GradRegConfig, NormScope};
use crate::error::{Result, TrainError};
use crate::pim::pim_step;
use candle_core::{Device, Tensor};
use std::path::Path;

pub use dfr_parity::Check;

fn max_abs(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        return Err(TrainError::config(
            "pim_case",
            format!("shape {:?} vs reference {:?}", a.dims(), b.dims()),
        ));
    }
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()? as f64)
}

fn max_ref(b: &Tensor) -> Result<f64> {
    Ok(b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()? as f64)
}

/// Runs the PIM step of `pim_case` (B0 from `effnet_b0_torchvision.safetensors`, shallow
/// part frozen) and compares statistics, gradients, Δ, the three losses and the parameter
/// gradients. Tolerances: relative 1e-4 of the largest reference value for forward
/// quantities, 1e-3 for gradients and Δ.
pub fn check_pim_case(dir: &Path) -> Result<Vec<Check>> {
    let dev = Device::Cpu;
    let model = dfr_model::parity::load_b0_fixture_model(dir, &dev)?;
    model.set_stages_trainable(1, false);
    let path = dir.join("pim_case.safetensors");
    let case = candle_core::safetensors::load(&path, &dev)?;
    let get = |n: &str| -> Result<&Tensor> {
        case.get(n).ok_or_else(|| {
            TrainError::config("pim_case", format!("`{n}` missing in {}", path.display()))
        })
    };
    let scalar = |n: &str| -> Result<f32> { Ok(get(n)?.flatten_all()?.to_vec1::<f32>()?[0]) };
    let cfg = GradRegConfig {
        alpha: scalar("alpha")? as f64,
        r: scalar("r")? as f64,
        stage: 1,
        direction: Direction::Gradient,
        norm: NormScope::Batch,
        ..Default::default()
    };
    let y = get("y")?.to_dtype(candle_core::DType::U32)?;
    let out = pim_step(&model, get("x")?, &y, Some(get("class_weight")?), &cfg, 0)?;
    let mut checks = Vec::new();
    let mut push = |name: String, err: f64, tol: f64| checks.push(Check::within(name, err, tol));
    for (name, ours, rtol) in [
        ("shallow_features", &out.features, 1e-4),
        ("mu", &out.mu, 1e-4),
        ("sigma", &out.sigma, 1e-4),
        ("grad_mu", &out.grad_mu, 1e-3),
        ("grad_sigma", &out.grad_sigma, 1e-3),
        ("delta_mu", &out.delta_mu, 1e-3),
        ("delta_sigma", &out.delta_sigma, 1e-3),
    ] {
        let r = get(name)?;
        push(
            name.into(),
            max_abs(ours, r)?,
            rtol * max_ref(r)?.max(1e-6) + 1e-7,
        );
    }
    let lp = out.loss_perturbed.unwrap_or(f32::NAN);
    for (name, ours) in [
        ("loss_clean", out.loss_clean),
        ("loss_perturbed", lp),
        ("loss_total", out.loss_total),
    ] {
        let r = scalar(name)?;
        let err = (ours - r).abs() as f64;
        push(
            name.into(),
            if err.is_nan() { f64::INFINITY } else { err },
            1e-4 * (r.abs() as f64).max(1.0),
        );
    }
    let mut names: Vec<&String> = case.keys().filter(|k| k.starts_with("grad.")).collect();
    names.sort();
    for key in names {
        let pname = &key["grad.".len()..];
        let p = model
            .param(pname)
            .ok_or_else(|| TrainError::config("pim_case", format!("no parameter `{pname}`")))?;
        let r = &case[key];
        let err = match out.grads.get(p.var().as_tensor()) {
            Some(g) => max_abs(g, r)?,
            None => f64::INFINITY,
        };
        push(key.clone(), err, 1e-3 * max_ref(r)? + 1e-7);
    }
    Ok(checks)
}

/// Relative tolerance of each step's loss in [`check_train_trajectory`]. The loop tracks the
/// reference to about 2e-5 per step (measured); a loop that learns differently is off by far
/// more than 1e-3 within a few steps.
pub const TRAJECTORY_STEP_RTOL: f64 = 1e-3;

/// Tolerance of the final weights, running statistics and held-out logits of
/// [`check_train_trajectory`], relative to the largest reference value: 40 Adam steps
/// amplify float rounding (measured: at most 1e-4), so the bound is looser than per step.
pub const TRAJECTORY_FINAL_RTOL: f64 = 2e-3;

/// What [`check_train_trajectory`] ran and compared.
#[derive(Debug, Clone)]
pub struct Trajectory {
    /// Our loss before each update.
    pub loss: Vec<f32>,
    /// The reference's loss before each update.
    pub reference: Vec<f32>,
    /// Every compared quantity (`loss/step_NN`, `logits_heldout_after`, `final.<name>`).
    pub checks: Vec<Check>,
}

impl Trajectory {
    /// `|ours − reference| / |reference|` of each step's loss.
    pub fn relative_differences(&self) -> Vec<f64> {
        self.loss
            .iter()
            .zip(&self.reference)
            .map(|(a, b)| ((*a as f64 - *b as f64) / (*b as f64).abs().max(1e-12)).abs())
            .collect()
    }
}

/// Runs the whole-loop fixture `train_trajectory.safetensors`: torchvision-named initial
/// weights (`init.*`), one fixed batch fitted for `loss_per_step.len()` steps with the
/// trainer's own components — [`crate::pim::baseline_step`] (train-mode B0, BN momentum 0.1,
/// dropout and stochastic depth off, class-weighted CE) and [`Adam`](crate::adam::Adam) over
/// every parameter — then eval-mode logits on `x_heldout` and the recorded `final.*` tensors.
pub fn check_train_trajectory(dir: &Path) -> Result<Trajectory> {
    use crate::adam::{Adam, AdamParams};
    use dfr_model::parity::compare;
    use dfr_model::{Arch, EfficientNet, EfficientNetConfig};

    let dev = Device::Cpu;
    let path = dir.join("train_trajectory.safetensors");
    let bad = |m: String| TrainError::config("train_trajectory", m);
    if !path.is_file() {
        return Err(bad(format!("{} not found", path.display())));
    }
    let case = candle_core::safetensors::load(&path, &dev)?;
    let get = |n: &str| -> Result<&Tensor> {
        case.get(n)
            .ok_or_else(|| bad(format!("`{n}` missing in {}", path.display())))
    };
    let mut cfg = EfficientNetConfig::new(Arch::B0, 2).without_stochastic();
    cfg.bn_momentum = 0.1;
    let model = EfficientNet::new(cfg, &dev, 0)?;
    let init: std::collections::HashMap<String, Tensor> = case
        .iter()
        .filter_map(|(k, t)| k.strip_prefix("init.").map(|n| (n.to_string(), t.clone())))
        .collect();
    if init.is_empty() {
        return Err(bad(format!("no `init.*` tensors in {}", path.display())));
    }
    let report = dfr_model::weights::load_into(&model, init, 0)?;
    if report.head_initialised {
        return Err(bad("the `init.*` tensors lack a 2-class head".into()));
    }
    let lr = get("lr")?.flatten_all()?.to_vec1::<f32>()?[0] as f64;
    let mut adam = Adam::for_trainable(
        &model,
        AdamParams {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    )?;
    let x = get("x")?;
    let y = get("y")?.to_dtype(candle_core::DType::U32)?;
    let cw = get("class_weight")?;
    let reference: Vec<f32> = get("loss_per_step")?.to_vec1()?;
    let mut loss = Vec::with_capacity(reference.len());
    for step in 0..reference.len() {
        let (_, l, grads) = crate::pim::baseline_step(&model, x, &y, Some(cw), step as u64)?;
        loss.push(l);
        adam.step(&grads)?;
    }
    let mut checks = Vec::new();
    for (i, (a, b)) in loss.iter().zip(&reference).enumerate() {
        let ours = Tensor::new(&[*a], &dev)?;
        let want = Tensor::new(&[*b], &dev)?;
        checks.push(compare(
            &format!("loss/step_{i:02}"),
            &ours,
            &want,
            0.0,
            TRAJECTORY_STEP_RTOL,
        )?);
    }
    let logits = model.forward_t(get("x_heldout")?, false)?;
    checks.push(compare(
        "logits_heldout_after",
        &logits,
        get("logits_heldout_after")?,
        1e-4,
        TRAJECTORY_FINAL_RTOL,
    )?);
    let mut finals: Vec<&String> = case.keys().filter(|k| k.starts_with("final.")).collect();
    finals.sort();
    let state: std::collections::HashMap<String, Tensor> =
        model.state_tensors().into_iter().collect();
    for key in finals {
        let name = &key["final.".len()..];
        // Internal names are torchvision's; a missing one is a failed check.
        let check = match state.get(name) {
            Some(t) => compare(key, t, &case[key], 1e-6, TRAJECTORY_FINAL_RTOL)?,
            None => Check::within(key.clone(), f64::INFINITY, 0.0)
                .with_note(format!("no tensor `{name}` in the model")),
        };
        checks.push(check);
    }
    Ok(Trajectory {
        loss,
        reference,
        checks,
    })
}
