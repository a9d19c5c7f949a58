//! Parity of the PIM step with PyTorch (`pim_case.safetensors` in a reference-vector
//! directory; format in `../shared/fixtures/README.md`).

use crate::config::{Direction, GradRegConfig, NormScope};
use crate::error::{Result, TrainError};
use crate::pim::pim_step;
use candle_core::{Device, Tensor};
use std::path::Path;

/// One compared quantity.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PimCheck {
    /// What was compared.
    pub name: String,
    /// Largest absolute difference.
    pub max_abs_error: f64,
    /// Allowed difference.
    pub tolerance: f64,
    /// Whether it passed.
    pub pass: bool,
}

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
pub fn check_pim_case(dir: &Path) -> Result<Vec<PimCheck>> {
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
    };
    let y = get("y")?.to_dtype(candle_core::DType::U32)?;
    let out = pim_step(&model, get("x")?, &y, Some(get("class_weight")?), &cfg, 0)?;
    let mut checks = Vec::new();
    let mut push = |name: String, err: f64, tol: f64| {
        checks.push(PimCheck {
            name,
            max_abs_error: err,
            tolerance: tol,
            pass: err <= tol,
        })
    };
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
