//! Grad-CAM (Selvaraju et al., ICCV 2017) for any stage of the model and any target
//! class, numerically as pytorch-grad-cam 1.5 computes it.
//!
//! For images `x`, an activation `A` (N×C×h×w) of the chosen layer and target classes
//! `t_i`:
//!
//! ```text
//! w_ic       = mean_hw ∂logit_{i,t_i} / ∂A_ic            (gradient averaged per channel)
//! cam_lowres = ReLU(Σ_c w_ic · A_ic)                      (h×w, not normalised)
//! cam        = scale(resize(scale(cam_lowres)), H×W)      (input size, values in [0, 1])
//! scale(m)   = (m − min m) / (max(m − min m) + 1e-7)      (per image)
//! ```
//!
//! `resize` is bilinear with half-pixel centres and clamped edges, exactly OpenCV's
//! `cv2.resize(..., INTER_LINEAR)` on float32 ([`resize_bilinear`]). The second scaling
//! matters: up-sampling lowers the peak below 1.
//!
//! Everything runs in eval mode (BatchNorm running statistics, no dropout), so the
//! images of a batch are independent and one backward pass of `Σ_i logit_{i,t_i}`
//! gives every image's gradient. Model parameters are frozen while the graph is built
//! (no weight gradients are computed).
//!
//! Models plug in through [`CamModel`] (a split into "features at layer k" and "logits
//! from those features"), implemented for [`dfr_model::EfficientNet`] (layers 0..=8 =
//! torchvision `features.0` … `features.8`) and for closures via [`FnCamModel`]; the
//! core is also available on a precomputed activation ([`gradcam_from_features`]).

use candle_core::{DType, Device, Tensor, Var};
use dfr_model::EfficientNet;
use serde::{Deserialize, Serialize};

use crate::error::{ExplainError, Result};

/// The constant pytorch-grad-cam adds to the maximum when min-max scaling a map.
pub const SCALE_EPS: f32 = 1e-7;

/// Which class's logit Grad-CAM explains, per image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Target {
    /// One class per image (e.g. the ground-truth labels; 0 = real, 1 = fake).
    Label(Vec<u32>),
    /// The predicted class (arg-max of the logits, the first one on ties), as
    /// pytorch-grad-cam does without explicit targets. The default.
    #[default]
    Predicted,
    /// The same class for every image.
    Class(u32),
}

impl Target {
    /// The labels when there are some, else the prediction.
    pub fn label_or_predicted(labels: Option<Vec<u32>>) -> Self {
        labels.map_or(Target::Predicted, Target::Label)
    }

    /// The class of each image given the logits (N×K). Errors when the number of
    /// labels differs from N, a class is not below K, or (for [`Target::Predicted`])
    /// a logit is not finite.
    pub fn resolve(&self, logits: &Tensor) -> Result<Vec<u32>> {
        let (n, k) = logits.dims2().map_err(|_| {
            ExplainError::invalid(format!("logits must be N×K, got shape {:?}", logits.dims()))
        })?;
        let check = |c: u32| -> Result<u32> {
            if (c as usize) < k {
                Ok(c)
            } else {
                Err(ExplainError::invalid(format!(
                    "target class {c} out of range: the model has {k} classes"
                )))
            }
        };
        match self {
            Target::Label(labels) => {
                if labels.len() != n {
                    return Err(ExplainError::invalid(format!(
                        "{} target labels for a batch of {n} images",
                        labels.len()
                    )));
                }
                labels.iter().map(|&c| check(c)).collect()
            }
            Target::Class(c) => {
                let c = check(*c)?;
                Ok(vec![c; n])
            }
            Target::Predicted => {
                let v: Vec<f32> = logits
                    .detach()
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1()?;
                if k == 0 {
                    return Err(ExplainError::invalid("the model has no classes"));
                }
                v.chunks_exact(k)
                    .enumerate()
                    .map(|(i, row)| {
                        if row.iter().any(|x| !x.is_finite()) {
                            return Err(ExplainError::invalid(format!(
                                "non-finite logits for image {i}: cannot predict a class"
                            )));
                        }
                        let mut best = 0usize;
                        for (j, &x) in row.iter().enumerate() {
                            if x > row[best] {
                                best = j;
                            }
                        }
                        Ok(best as u32)
                    })
                    .collect()
            }
        }
    }
}

/// A batch of 2-D maps stored row-major on the host: `len()` maps of
/// `height() × width()` values each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CamMaps {
    n: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl CamMaps {
    /// Wraps `data` (N·H·W values, map after map, row-major). Errors when the length
    /// does not match.
    pub fn new(n: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        let want = n
            .checked_mul(height)
            .and_then(|v| v.checked_mul(width))
            .ok_or_else(|| ExplainError::invalid("map dimensions overflow"))?;
        if data.len() != want {
            return Err(ExplainError::invalid(format!(
                "{} values for {n} maps of {height}×{width}",
                data.len()
            )));
        }
        Ok(Self {
            n,
            height,
            width,
            data,
        })
    }

    /// Reads an N×H×W tensor (any float dtype, any device).
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let (n, h, w) = t.dims3().map_err(|_| {
            ExplainError::invalid(format!("maps must be N×H×W, got shape {:?}", t.dims()))
        })?;
        let data = t.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        Self::new(n, h, w, data)
    }

    /// Number of maps.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there is no map.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Height of each map.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Width of each map.
    pub fn width(&self) -> usize {
        self.width
    }

    /// All values, map after map, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, consuming the batch.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Map `i` (row-major), or `None` when out of range.
    pub fn map(&self, i: usize) -> Option<&[f32]> {
        // checked throughout: a deserialised value need not satisfy the invariant
        if i >= self.n {
            return None;
        }
        let hw = self.height.checked_mul(self.width)?;
        let start = i.checked_mul(hw)?;
        self.data.get(start..start.checked_add(hw)?)
    }

    /// The maps in order.
    pub fn iter(&self) -> impl Iterator<Item = &[f32]> + '_ {
        (0..self.n).filter_map(move |i| self.map(i))
    }

    /// An N×H×W f32 tensor on `device`.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.data,
            (self.n, self.height, self.width),
            device,
        )?)
    }
}

/// The result of Grad-CAM on a batch.
#[derive(Debug, Clone)]
pub struct CamOutput {
    /// `ReLU(Σ_c w_c A_c)` at the resolution of the layer (N×h×w), not normalised
    /// (the fixtures' `cam_lowres`).
    pub lowres: CamMaps,
    /// `scale(resize(scale(lowres)))` at the requested (input) resolution (N×H×W),
    /// values in [0, 1] (the fixtures' `cam`, pytorch-grad-cam's output).
    pub cam: CamMaps,
    /// The channel weights `w_ic = mean_hw ∂logit_{i,t_i}/∂A_ic` (N×C), detached.
    pub weights: Tensor,
    /// Eval-mode logits (N×K), detached.
    pub logits: Tensor,
    /// The explained class of each image.
    pub targets: Vec<u32>,
}

/// A classifier split at a layer, so that Grad-CAM can take the gradient of a logit
/// with respect to that layer's activation.
///
/// Both methods must run the model in eval mode (samples independent of each other).
pub trait CamModel {
    /// Number of layers Grad-CAM can target: valid indices are `0..num_cam_layers()`.
    fn num_cam_layers(&self) -> usize;

    /// The activation (N×C×h×w) of layer `layer` for images (N×3×H×W). Its gradient is
    /// not needed: it is detached before [`CamModel::cam_logits`].
    fn cam_features(&self, images: &Tensor, layer: usize) -> Result<Tensor>;

    /// The logits (N×K) computed from an activation of layer `layer`; the gradient
    /// must flow back to `features`.
    fn cam_logits(&self, features: &Tensor, layer: usize) -> Result<Tensor>;
}

impl<M: CamModel + ?Sized> CamModel for &M {
    fn num_cam_layers(&self) -> usize {
        (**self).num_cam_layers()
    }
    fn cam_features(&self, images: &Tensor, layer: usize) -> Result<Tensor> {
        (**self).cam_features(images, layer)
    }
    fn cam_logits(&self, features: &Tensor, layer: usize) -> Result<Tensor> {
        (**self).cam_logits(features, layer)
    }
}

/// Layers 0..=8 are torchvision's `features.0` (stem) … `features.7` (last MBConv
/// stage), `features.8` (head conv after its activation, the usual Grad-CAM layer).
///
/// Parameters are frozen while a forward pass builds its graph and restored
/// afterwards, so do not train the same model from another thread meanwhile.
impl CamModel for EfficientNet {
    fn num_cam_layers(&self) -> usize {
        self.num_stages()
    }

    fn cam_features(&self, images: &Tensor, layer: usize) -> Result<Tensor> {
        let _frozen = self.freeze();
        Ok(self.forward_to_stage(&images.detach(), layer, false)?)
    }

    fn cam_logits(&self, features: &Tensor, layer: usize) -> Result<Tensor> {
        let _frozen = self.freeze();
        Ok(self.forward_from_stage(features, layer, false)?)
    }
}

/// A [`CamModel`] made of two closures: `features(images, layer)` and
/// `logits(features, layer)`.
pub struct FnCamModel<F, G> {
    /// Number of layers (valid indices `0..num_layers`).
    pub num_layers: usize,
    /// Images (N×3×H×W) → activation of a layer (N×C×h×w).
    pub features: F,
    /// Activation of a layer → logits (N×K), differentiable in the activation.
    pub logits: G,
}

impl<F, G> FnCamModel<F, G>
where
    F: Fn(&Tensor, usize) -> Result<Tensor>,
    G: Fn(&Tensor, usize) -> Result<Tensor>,
{
    /// Wraps the two closures.
    pub fn new(num_layers: usize, features: F, logits: G) -> Self {
        Self {
            num_layers,
            features,
            logits,
        }
    }
}

impl<F, G> CamModel for FnCamModel<F, G>
where
    F: Fn(&Tensor, usize) -> Result<Tensor>,
    G: Fn(&Tensor, usize) -> Result<Tensor>,
{
    fn num_cam_layers(&self) -> usize {
        self.num_layers
    }
    fn cam_features(&self, images: &Tensor, layer: usize) -> Result<Tensor> {
        (self.features)(images, layer)
    }
    fn cam_logits(&self, features: &Tensor, layer: usize) -> Result<Tensor> {
        (self.logits)(features, layer)
    }
}

/// Grad-CAM of `images` (N×3×H×W, values in [0, 1]) at layer `layer` of `model` for
/// `target`; the up-sampled maps have the images' size H×W.
///
/// ```no_run
/// # fn main() -> dfr_explain::Result<()> {
/// use dfr_explain::{gradcam, Target};
/// # let dir = std::path::Path::new("fixtures");
/// # let device = candle_core::Device::Cpu;
/// let model = dfr_model::parity::load_b0_fixture_model(dir, &device)?;
/// let x = candle_core::Tensor::rand(0f32, 1f32, (2, 3, 128, 128), &device)?;
/// let out = gradcam(&model, &x, 8, &Target::Predicted)?;
/// assert_eq!((out.cam.height(), out.cam.width()), (128, 128));
/// # Ok(())
/// # }
/// ```
pub fn gradcam<M: CamModel + ?Sized>(
    model: &M,
    images: &Tensor,
    layer: usize,
    target: &Target,
) -> Result<CamOutput> {
    let (n, _c, h, w) = images.dims4().map_err(|_| {
        ExplainError::invalid(format!(
            "images must be N×C×H×W, got shape {:?}",
            images.dims()
        ))
    })?;
    if n == 0 || h == 0 || w == 0 {
        return Err(ExplainError::invalid(format!(
            "empty image batch {:?}",
            images.dims()
        )));
    }
    let layers = model.num_cam_layers();
    if layer >= layers {
        return Err(ExplainError::invalid(format!(
            "layer {layer} out of range: the model has layers 0..{layers}"
        )));
    }
    if let Target::Label(labels) = target {
        if labels.len() != n {
            return Err(ExplainError::invalid(format!(
                "{} target labels for a batch of {n} images",
                labels.len()
            )));
        }
    }
    tracing::debug!(n, h, w, layer, ?target, "grad-cam");
    let features = model.cam_features(images, layer)?;
    let fnum = features.dims().first().copied().unwrap_or(0);
    if features.rank() != 4 || fnum != n {
        return Err(ExplainError::invalid(format!(
            "layer {layer} gave an activation of shape {:?} for {n} images (want N×C×h×w)",
            features.dims()
        )));
    }
    gradcam_from_features(
        &features,
        |a: &Tensor| model.cam_logits(a, layer),
        target,
        (h, w),
    )
}

/// Grad-CAM on a precomputed activation `features` (N×C×h×w): `head` maps an
/// activation to logits (N×K) differentiably; the maps are up-sampled to
/// `output_size = (height, width)`.
pub fn gradcam_from_features<H>(
    features: &Tensor,
    head: H,
    target: &Target,
    output_size: (usize, usize),
) -> Result<CamOutput>
where
    H: FnOnce(&Tensor) -> Result<Tensor>,
{
    let (n, c, h, w) = features.dims4().map_err(|_| {
        ExplainError::invalid(format!(
            "activation must be N×C×h×w, got shape {:?}",
            features.dims()
        ))
    })?;
    if n == 0 || c == 0 || h == 0 || w == 0 {
        return Err(ExplainError::invalid(format!(
            "empty activation {:?}",
            features.dims()
        )));
    }
    let (out_h, out_w) = output_size;
    if out_h == 0 || out_w == 0 {
        return Err(ExplainError::invalid(format!(
            "output size {out_h}×{out_w} is empty"
        )));
    }
    let a = Var::from_tensor(&features.detach())?;
    let logits = head(a.as_tensor())?;
    let (ln, k) = logits.dims2().map_err(|_| {
        ExplainError::invalid(format!(
            "the head must return N×K logits, got shape {:?}",
            logits.dims()
        ))
    })?;
    if ln != n {
        return Err(ExplainError::invalid(format!(
            "the head returned logits for {ln} images, the activation has {n}"
        )));
    }
    let targets = target.resolve(&logits)?;
    let mut onehot = vec![0f32; n * k];
    for (i, &t) in targets.iter().enumerate() {
        onehot[i * k + t as usize] = 1.0;
    }
    let onehot = Tensor::from_vec(onehot, (n, k), logits.device())?.to_dtype(logits.dtype())?;
    // Σ_i logit_{i, t_i}: in eval mode each image's logit depends on its own activation
    // only, so the gradient of the sum is every image's own gradient.
    let score = (&logits * &onehot)?.sum_all()?;
    let grads = score.backward()?;
    let g = grads.get(a.as_tensor()).ok_or_else(|| {
        ExplainError::invalid(
            "the logits do not depend on the activation: no gradient reached the target layer",
        )
    })?;
    let weights = g.mean_keepdim((2, 3))?; // N×C×1×1
    let cam = a
        .as_tensor()
        .broadcast_mul(&weights)?
        .sum(1)?
        .relu()?
        .to_dtype(DType::F32)?;
    let lowres = CamMaps::from_tensor(&cam)?;
    if lowres.data().iter().any(|v| !v.is_finite()) {
        return Err(ExplainError::invalid(
            "non-finite Grad-CAM map (non-finite activations or gradients)",
        ));
    }
    let mut up = Vec::with_capacity(n * out_h * out_w);
    for m in lowres.iter() {
        up.extend(postprocess_cam(m, h, w, out_h, out_w)?);
    }
    Ok(CamOutput {
        lowres,
        cam: CamMaps::new(n, out_h, out_w, up)?,
        weights: weights.squeeze(3)?.squeeze(2)?.detach(),
        logits: logits.detach(),
        targets,
    })
}

/// Min-max scales a map in place as pytorch-grad-cam does:
/// `m ← (m − min m) / (max(m − min m) + 1e-7)` in float32. A constant map becomes 0.
/// Non-finite values are ignored for the minimum and maximum.
pub fn scale_map(map: &mut [f32]) {
    if map.is_empty() {
        return;
    }
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    if !min.is_finite() {
        return;
    }
    for v in map.iter_mut() {
        *v -= min;
    }
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let denom = SCALE_EPS + max;
    for v in map.iter_mut() {
        *v /= denom;
    }
}

/// Source index pairs and weights of OpenCV's INTER_LINEAR along one axis.
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32, f32)> {
    // OpenCV: inv_scale = dst/src, scale = 1/inv_scale, fx = (float)((d + 0.5)·scale − 0.5),
    // sx = floor(fx), fx −= sx, clamped to the first / last pixel with weight 0.
    let inv = dst as f64 / src as f64;
    let scale = 1.0 / inv;
    (0..dst)
        .map(|d| {
            let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor();
            f -= s;
            if s < 0.0 {
                f = 0.0;
                s = 0.0;
            }
            let last = (src - 1) as f32;
            if s >= last {
                f = 0.0;
                s = last;
            }
            let s = s as usize;
            let s1 = (s + 1).min(src - 1);
            (s, s1, 1.0 - f, f)
        })
        .collect()
}

/// Bilinear resize of a row-major `h×w` map to `out_h×out_w` with half-pixel centres
/// and clamped edges, in float32 and in OpenCV's order (horizontal pass, then
/// vertical): `cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_LINEAR)`.
pub fn resize_bilinear(
    src: &[f32],
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
) -> Result<Vec<f32>> {
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        return Err(ExplainError::invalid(format!(
            "cannot resize {h}×{w} to {out_h}×{out_w}: empty size"
        )));
    }
    if src.len() != h * w {
        return Err(ExplainError::invalid(format!(
            "{} values for a {h}×{w} map",
            src.len()
        )));
    }
    let xt = linear_taps(w, out_w);
    let yt = linear_taps(h, out_h);
    // horizontally resized source rows
    let rows: Vec<Vec<f32>> = (0..h)
        .map(|y| {
            let r = &src[y * w..(y + 1) * w];
            xt.iter()
                .map(|&(s0, s1, a0, a1)| r[s0] * a0 + r[s1] * a1)
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(s0, s1, b0, b1) in &yt {
        let (r0, r1) = (&rows[s0], &rows[s1]);
        out.extend(r0.iter().zip(r1).map(|(&p, &q)| p * b0 + q * b1));
    }
    Ok(out)
}

/// pytorch-grad-cam's post-processing of one low-resolution map (`h×w`):
/// `scale(resize(scale(lowres)))` at `out_h×out_w`, values in [0, 1].
pub fn postprocess_cam(
    lowres: &[f32],
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
) -> Result<Vec<f32>> {
    if lowres.len() != h * w {
        return Err(ExplainError::invalid(format!(
            "{} values for a {h}×{w} map",
            lowres.len()
        )));
    }
    let mut m = lowres.to_vec();
    scale_map(&mut m);
    let mut up = resize_bilinear(&m, h, w, out_h, out_w)?;
    scale_map(&mut up);
    Ok(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_match_opencv_half_pixel_rule() {
        // 4 → 8: centres at (d + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, …, 3.25
        let t = linear_taps(4, 8);
        assert_eq!(t[0], (0, 1, 1.0, 0.0)); // clamped left
        assert_eq!(t[1], (0, 1, 0.75, 0.25));
        assert_eq!(t[2], (0, 1, 0.25, 0.75));
        assert_eq!(t[3], (1, 2, 0.75, 0.25));
        assert_eq!(t[7], (3, 3, 1.0, 0.0)); // clamped right
                                            // identity
        let t = linear_taps(5, 5);
        for (d, &(s0, _, a0, a1)) in t.iter().enumerate() {
            assert_eq!((s0, a0, a1), (d, 1.0, 0.0));
        }
    }

    #[test]
    fn resize_constant_and_identity() {
        let m = vec![0.25f32; 12];
        let r = resize_bilinear(&m, 3, 4, 7, 9).unwrap();
        assert!(r.iter().all(|&v| (v - 0.25).abs() < 1e-7));
        let m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(resize_bilinear(&m, 3, 4, 3, 4).unwrap(), m);
        assert!(resize_bilinear(&m, 3, 3, 4, 4).is_err());
        assert!(resize_bilinear(&m, 3, 4, 0, 4).is_err());
    }

    #[test]
    fn scale_map_rules() {
        let mut m = vec![1.0f32, 2.0, 3.0];
        scale_map(&mut m);
        assert_eq!(m[0], 0.0);
        assert!((m[2] - 1.0).abs() < 1e-6 && m[2] <= 1.0);
        assert!((m[1] - 0.5).abs() < 1e-6);
        let mut c = vec![5.0f32; 4];
        scale_map(&mut c);
        assert!(c.iter().all(|&v| v == 0.0));
        scale_map(&mut []);
    }

    #[test]
    fn target_resolution() {
        let logits = Tensor::new(&[[0.0f32, 1.0], [2.0, 2.0], [3.0, -1.0]], &Device::Cpu).unwrap();
        assert_eq!(Target::Predicted.resolve(&logits).unwrap(), vec![1, 0, 0]);
        assert_eq!(Target::Class(1).resolve(&logits).unwrap(), vec![1, 1, 1]);
        assert_eq!(
            Target::Label(vec![1, 0, 1]).resolve(&logits).unwrap(),
            vec![1, 0, 1]
        );
        assert!(Target::Class(2).resolve(&logits).is_err());
        assert!(Target::Label(vec![0, 1]).resolve(&logits).is_err());
        assert!(Target::Label(vec![0, 1, 5]).resolve(&logits).is_err());
        assert_eq!(Target::label_or_predicted(None), Target::Predicted);
    }

    #[test]
    fn cam_maps_shapes() {
        assert!(CamMaps::new(2, 2, 2, vec![0.0; 7]).is_err());
        let m = CamMaps::new(2, 1, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m.map(1), Some(&[3.0f32, 4.0][..]));
        assert_eq!(m.map(2), None);
        assert_eq!(m.iter().count(), 2);
        let t = m.to_tensor(&Device::Cpu).unwrap();
        assert_eq!(CamMaps::from_tensor(&t).unwrap(), m);
    }
}
