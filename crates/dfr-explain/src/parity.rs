//! Parity with the reference vectors (`gradcam_case.safetensors`,
//! `cam_consistency_case.safetensors` + `metrics_case.json`; see the fixtures'
//! README), callable from tests and from the project's parity runner.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::consistency::{non_containment, pearson};
use crate::error::{ExplainError, Result};
use crate::gradcam::{gradcam, postprocess_cam, Target};

/// Grad-CAM file of the reference vectors.
pub const GRADCAM_CASE_FILE: &str = "gradcam_case.safetensors";
/// CAM-consistency maps of the reference vectors.
pub const CAM_CONSISTENCY_CASE_FILE: &str = "cam_consistency_case.safetensors";
/// Reference metric values (keys `iinc`, `pearson`).
pub const METRICS_CASE_FILE: &str = "metrics_case.json";

/// Tolerance of `cam_lowres` (not normalised; up to ≈15 in the fixture), relative to
/// max(1, max |reference|). The error is that of the model's forward pass to
/// `features.8` (float32 convolutions summed in another order than PyTorch's), ≈1.3e-5
/// relative on the fixture; the Grad-CAM arithmetic itself adds ≈1e-7.
pub const LOWRES_RTOL: f64 = 5e-5;
/// Tolerance of the up-sampled, scaled `cam` (values in [0, 1]) computed end to end:
/// the relative error of `cam_lowres` carries over (≈1.2e-5 measured).
pub const CAM_TOLERANCE: f64 = 5e-5;
/// Tolerance of the post-processing alone (reference `cam_lowres` → `cam`): OpenCV
/// 5.0's own `cv2.resize` reproduces the reference `cam` to 1.01e-6, this crate to
/// 1.04e-6 (float32 rounding of the scaling and interpolation).
pub const POSTPROCESS_TOLERANCE: f64 = 2e-6;
/// Tolerance of non-containment (the fixture's `iinc`) and Pearson (f64 sums of the same float32 maps).
pub const METRIC_TOLERANCE: f64 = 1e-6;

pub use dfr_parity::Check;

fn load_st(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.is_file() {
        return Err(ExplainError::Fixture(format!(
            "{} not found",
            path.display()
        )));
    }
    candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| ExplainError::Fixture(format!("{}: {e}", path.display())))
}

fn get<'a>(m: &'a HashMap<String, Tensor>, k: &str, file: &str) -> Result<&'a Tensor> {
    m.get(k)
        .ok_or_else(|| ExplainError::Fixture(format!("{file}: tensor `{k}` missing")))
}

fn f32s(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// Largest absolute difference, infinite on a length mismatch or non-finite value.
fn max_abs_diff(got: &[f32], want: &[f32]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    got.iter().zip(want).fold(0f64, |m, (&a, &b)| {
        let d = (a as f64 - b as f64).abs();
        if d.is_finite() {
            m.max(d)
        } else {
            f64::INFINITY
        }
    })
}

/// Grad-CAM of the fixture B0 at `features.8` for the labels `y`: `cam_lowres` and
/// `cam` against the reference, plus the explained classes.
pub fn gradcam_checks(dir: &Path) -> Result<Vec<Check>> {
    let case = load_st(&dir.join(GRADCAM_CASE_FILE))?;
    let file = GRADCAM_CASE_FILE;
    let x = get(&case, "x", file)?.to_dtype(DType::F32)?;
    let y: Vec<i64> = get(&case, "y", file)?
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1()?;
    let labels: Vec<u32> = y
        .iter()
        .map(|&v| u32::try_from(v).map_err(|_| ExplainError::Fixture(format!("{file}: label {v}"))))
        .collect::<Result<_>>()?;
    let want_lowres = f32s(get(&case, "cam_lowres", file)?)?;
    let want_cam = f32s(get(&case, "cam", file)?)?;
    // post-processing alone: the reference low-resolution maps → the reference maps
    let (n, lh, lw) = get(&case, "cam_lowres", file)?.dims3()?;
    let (_, ch, cw) = get(&case, "cam", file)?.dims3()?;
    let mut post = Vec::with_capacity(n * ch * cw);
    for m in want_lowres.chunks_exact(lh * lw) {
        post.extend(postprocess_cam(m, lh, lw, ch, cw)?);
    }
    let post_check = Check::within(
        "gradcam/cam_from_reference_lowres",
        max_abs_diff(&post, &want_cam),
        POSTPROCESS_TOLERANCE,
    );
    let model = dfr_model::parity::load_b0_fixture_model(dir, &Device::Cpu)?;
    let out = gradcam(&model, &x, 8, &Target::Label(labels.clone()))?;
    let scale = want_lowres
        .iter()
        .fold(1f64, |m, &v| m.max((v as f64).abs()));
    Ok(vec![
        post_check,
        Check::within(
            "gradcam/cam_lowres",
            max_abs_diff(out.lowres.data(), &want_lowres),
            LOWRES_RTOL * scale,
        ),
        Check::within(
            "gradcam/cam",
            max_abs_diff(out.cam.data(), &want_cam),
            CAM_TOLERANCE,
        ),
        Check::within(
            "gradcam/targets",
            if out.targets == labels {
                0.0
            } else {
                f64::INFINITY
            },
            0.0,
        ),
    ])
}

/// Non-containment (key `iinc`) and Pearson of each pair in `cam_consistency_case.safetensors` against
/// `metrics_case.json` (`pearson` null ⇔ [`pearson`] returns `None`).
pub fn consistency_checks(dir: &Path) -> Result<Vec<Check>> {
    let file = CAM_CONSISTENCY_CASE_FILE;
    let case = load_st(&dir.join(file))?;
    let a = get(&case, "cam_a", file)?;
    let b = get(&case, "cam_b", file)?;
    if a.dims() != b.dims() || a.rank() != 3 {
        return Err(ExplainError::Fixture(format!(
            "{file}: cam_a {:?} and cam_b {:?} must both be N×H×W",
            a.dims(),
            b.dims()
        )));
    }
    let (n, h, w) = a.dims3()?;
    let (av, bv) = (f32s(a)?, f32s(b)?);
    let jpath = dir.join(METRICS_CASE_FILE);
    let text = std::fs::read_to_string(&jpath).map_err(|e| ExplainError::io(&jpath, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ExplainError::Fixture(format!("{}: {e}", jpath.display())))?;
    let list = |key: &str| -> Result<Vec<Option<f64>>> {
        let arr = json[key].as_array().ok_or_else(|| {
            ExplainError::Fixture(format!("{METRICS_CASE_FILE}: `{key}` is not an array"))
        })?;
        if arr.len() != n {
            return Err(ExplainError::Fixture(format!(
                "{METRICS_CASE_FILE}: `{key}` has {} entries for {n} map pairs",
                arr.len()
            )));
        }
        Ok(arr.iter().map(|v| v.as_f64()).collect())
    };
    let (want_iinc, want_pearson) = (list("iinc")?, list("pearson")?);
    let hw = h * w;
    let mut checks = Vec::with_capacity(2 * n);
    for i in 0..n {
        let (x, y) = (&av[i * hw..(i + 1) * hw], &bv[i * hw..(i + 1) * hw]);
        let want = want_iinc[i].ok_or_else(|| {
            ExplainError::Fixture(format!("{METRICS_CASE_FILE}: iinc[{i}] is not a number"))
        })?;
        let err = (non_containment(x, y)? - want).abs();
        checks.push(Check::within(
            format!("consistency/iinc[{i}]"),
            if err.is_finite() { err } else { f64::INFINITY },
            METRIC_TOLERANCE,
        ));
        let err = match (pearson(x, y)?, want_pearson[i]) {
            (Some(p), Some(q)) => (p - q).abs(),
            (None, None) => 0.0,
            _ => f64::INFINITY,
        };
        checks.push(Check::within(
            format!("consistency/pearson[{i}]"),
            err,
            METRIC_TOLERANCE,
        ));
    }
    Ok(checks)
}

/// Every parity check of this crate on the reference vectors in `dir`. An error means
/// a fixture is missing or malformed; numerical differences are failed checks.
pub fn check_fixtures(dir: &Path) -> Result<Vec<Check>> {
    let mut checks = gradcam_checks(dir)?;
    checks.extend(consistency_checks(dir)?);
    Ok(checks)
}
