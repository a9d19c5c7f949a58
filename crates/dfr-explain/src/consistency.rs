//! CAM consistency between two maps of the same image (e.g. the clean and the
//! adversarial Grad-CAM), on plain row-major `f32` slices.
//!
//! | metric | range | identical maps | direction |
//! |---|---|---|---|
//! | [`non_containment`] (the IINC formula between two maps) | [0, 1] for maps in [0, 1] | 0 | **lower** is more consistent |
//! | [`pearson`] (correlation coefficient) | [−1, 1], `None` for a constant map | 1 | **higher** is more consistent |
//! | [`ssim`] (structural similarity) | [−1, 1] | 1 | **higher** is more consistent |
//! | [`top_k_iou`] (IoU of the top-k % pixels) | [0, 1] | 1 | **higher** is more consistent |
//!
//! Sums are accumulated in f64. Every function validates its input (equal lengths,
//! non-empty, finite values; non-negative maps for non-containment) and returns
//! [`ExplainError::InvalidInput`] instead of panicking.

use serde::{Deserialize, Serialize};

use crate::error::{ExplainError, Result};

/// Default share of pixels, in percent, taken as the "top" region by [`top_k_iou`].
pub const DEFAULT_TOP_K_PERCENT: f64 = 20.0;

fn check_pair(a: &[f32], b: &[f32]) -> Result<()> {
    if a.len() != b.len() {
        return Err(ExplainError::invalid(format!(
            "maps differ in size: {} vs {} values",
            a.len(),
            b.len()
        )));
    }
    if a.is_empty() {
        return Err(ExplainError::invalid("empty maps"));
    }
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return Err(ExplainError::invalid("maps contain non-finite values"));
    }
    Ok(())
}

/// The parts of the IINC formula of Dang et al. (CVPR 2020) that its two uses share, with
/// `|·|` the sum over pixels, `I = min(a, b)`, `U = max(a, b)` element-wise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IincTerms {
    /// `a` is all zero.
    pub a_empty: bool,
    /// `b` is all zero.
    pub b_empty: bool,
    /// `2 − |I|/|a| − |I|/|b|` (0 when either map is empty, where it is undefined).
    pub non_containment: f64,
    /// `|U| / npixels`, the mean of the union.
    pub mean_union: f64,
}

/// [`IincTerms`] of two maps; errors on unequal sizes, empty slices, negative or
/// non-finite values.
pub(crate) fn iinc_terms(a: &[f32], b: &[f32]) -> Result<IincTerms> {
    check_pair(a, b)?;
    if a.iter().chain(b).any(|&v| v < 0.0) {
        return Err(ExplainError::invalid(
            "the IINC formula needs non-negative maps",
        ));
    }
    let (mut sa, mut sb, mut si, mut su) = (0f64, 0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        sa += x;
        sb += y;
        si += x.min(y);
        su += x.max(y);
    }
    let (a_empty, b_empty) = (sa == 0.0, sb == 0.0);
    // (si/sa + si/sb) is commutative, so the result is exactly symmetric
    let non_containment = if a_empty || b_empty {
        0.0
    } else {
        2.0 - (si / sa + si / sb)
    };
    Ok(IincTerms {
        a_empty,
        b_empty,
        non_containment,
        mean_union: su / a.len() as f64,
    })
}

/// Non-containment of two maps of the same image (e.g. the clean and the adversarial
/// Grad-CAM): the IINC formula of Dang et al. ("On the Detection of Digital Face
/// Manipulation", CVPR 2020) applied between two maps, as the reference vectors define it,
/// with `|·|` the sum over pixels, `I = min(a, b)`, `U = max(a, b)` element-wise:
///
/// - 0 if both maps are all zero, 1 if exactly one is;
/// - else `(2 − |I|/|a| − |I|/|b|) / (3 − |U|/npixels)`.
///
/// 0 means identical maps; **lower is more consistent** (at most 1 for maps in [0, 1]).
/// Symmetric in `a` and `b`. Errors on negative or non-finite values.
///
/// This is not Dang et al.'s IINC, which compares an attention map with the ground-truth
/// manipulation mask and keeps the `1/(3 − |U|/npixels)` factor in the one-empty case
/// too: that metric is [`crate::localisation::iinc`].
///
/// ```
/// use dfr_explain::consistency::non_containment;
/// let a = [1.0, 1.0, 0.0, 0.0];
/// assert_eq!(non_containment(&a, &a)?, 0.0); // identical
/// assert_eq!(non_containment(&a, &[0.0; 4])?, 1.0); // one map empty
/// // half overlap: |I| = 1, |a| = |b| = 2, |U| = 3 → (2 − ½ − ½) / (3 − ¾) = 4/9
/// let b = [0.0, 1.0, 1.0, 0.0];
/// assert!((non_containment(&a, &b)? - 4.0 / 9.0).abs() < 1e-12);
/// # Ok::<(), dfr_explain::ExplainError>(())
/// ```
pub fn non_containment(a: &[f32], b: &[f32]) -> Result<f64> {
    let t = iinc_terms(a, b)?;
    Ok(match (t.a_empty, t.b_empty) {
        (true, true) => 0.0,
        (true, false) | (false, true) => 1.0,
        _ => t.non_containment / (3.0 - t.mean_union),
    })
}

/// Pearson correlation coefficient of the pixel values; `None` when either map is
/// constant (the coefficient is undefined; scikit-learn/NumPy give NaN).
/// **Higher is more consistent** (1 for identical non-constant maps).
pub fn pearson(a: &[f32], b: &[f32]) -> Result<Option<f64>> {
    check_pair(a, b)?;
    let constant = |m: &[f32]| m.iter().all(|&v| v == m[0]);
    if constant(a) || constant(b) {
        return Ok(None);
    }
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return Ok(None);
    }
    Ok(Some((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0)))
}

/// Parameters of [`ssim`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SsimOptions {
    /// Dynamic range `L` of the values (1 for maps in [0, 1]).
    pub data_range: f64,
    /// Standard deviation of the Gaussian window (1.5; with truncation at 3.5σ the
    /// window is 11×11).
    pub sigma: f64,
    /// `K1` in `C1 = (K1·L)²` (0.01).
    pub k1: f64,
    /// `K2` in `C2 = (K2·L)²` (0.03).
    pub k2: f64,
}

impl Default for SsimOptions {
    fn default() -> Self {
        Self {
            data_range: 1.0,
            sigma: 1.5,
            k1: 0.01,
            k2: 0.03,
        }
    }
}

/// The normalised 1-D Gaussian of SciPy's `gaussian_filter` (radius
/// `int(3.5·σ + 0.5)`).
fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let r = (3.5 * sigma + 0.5) as usize;
    let k: Vec<f64> = (0..=2 * r)
        .map(|i| {
            let x = i as f64 - r as f64;
            (-0.5 * x * x / (sigma * sigma)).exp()
        })
        .collect();
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// SciPy's `reflect` boundary (`d c b a | a b c d | d c b a`), any offset.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// Separable Gaussian filtering along rows then columns (SciPy's axis order for a
/// row-major H×W array is axis 0 first; the result is the same up to rounding).
fn gaussian_filter(x: &[f64], h: usize, w: usize, k: &[f64]) -> Vec<f64> {
    let r = (k.len() / 2) as isize;
    // axis 0 (vertical)
    let mut tmp = vec![0f64; h * w];
    for y in 0..h {
        for (j, &kv) in k.iter().enumerate() {
            let sy = reflect(y as isize + j as isize - r, h);
            let (src, dst) = (&x[sy * w..(sy + 1) * w], &mut tmp[y * w..(y + 1) * w]);
            for (d, &s) in dst.iter_mut().zip(src) {
                *d += kv * s;
            }
        }
    }
    // axis 1 (horizontal)
    let mut out = vec![0f64; h * w];
    for y in 0..h {
        let row = &tmp[y * w..(y + 1) * w];
        for xo in 0..w {
            let mut acc = 0f64;
            for (j, &kv) in k.iter().enumerate() {
                acc += kv * row[reflect(xo as isize + j as isize - r, w)];
            }
            out[y * w + xo] = acc;
        }
    }
    out
}

/// Mean structural similarity (Wang et al., IEEE TIP 2004) of two `height×width` maps
/// with a Gaussian window (σ = 1.5, 11×11), `C1 = (0.01·L)²`, `C2 = (0.03·L)²`,
/// population (not sample) covariances. **Higher is more consistent**; 1 for
/// identical maps.
///
/// Windowing at the borders follows scikit-image's
/// `structural_similarity(a, b, data_range=L, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False)`: local statistics are Gaussian-filtered with SciPy's
/// `reflect` boundary and the SSIM map is averaged over the pixels at least 5 (the
/// window radius) from every border ("valid" region). Maps smaller than the window in
/// either dimension (scikit-image refuses them) are averaged over all pixels instead.
pub fn ssim(a: &[f32], b: &[f32], height: usize, width: usize, opts: &SsimOptions) -> Result<f64> {
    check_pair(a, b)?;
    if height.checked_mul(width) != Some(a.len()) {
        return Err(ExplainError::invalid(format!(
            "{} values for a {height}×{width} map",
            a.len()
        )));
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let valid = positive(opts.data_range)
        && positive(opts.sigma)
        && opts.sigma <= 1e3
        && positive(opts.k1)
        && positive(opts.k2);
    if !valid {
        return Err(ExplainError::invalid(format!("bad SSIM options {opts:?}")));
    }
    let k = gaussian_kernel(opts.sigma);
    let (h, w) = (height, width);
    let x: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let y: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let prod = |p: &[f64], q: &[f64]| -> Vec<f64> { p.iter().zip(q).map(|(u, v)| u * v).collect() };
    let ux = gaussian_filter(&x, h, w, &k);
    let uy = gaussian_filter(&y, h, w, &k);
    let uxx = gaussian_filter(&prod(&x, &x), h, w, &k);
    let uyy = gaussian_filter(&prod(&y, &y), h, w, &k);
    let uxy = gaussian_filter(&prod(&x, &y), h, w, &k);
    let c1 = (opts.k1 * opts.data_range).powi(2);
    let c2 = (opts.k2 * opts.data_range).powi(2);
    let pad = k.len() / 2;
    let (y0, y1, x0, x1) = if h >= k.len() && w >= k.len() {
        (pad, h - pad, pad, w - pad)
    } else {
        (0, h, 0, w)
    };
    let mut sum = 0f64;
    for yy in y0..y1 {
        for xx in x0..x1 {
            let i = yy * w + xx;
            let vx = uxx[i] - ux[i] * ux[i];
            let vy = uyy[i] - uy[i] * uy[i];
            let vxy = uxy[i] - ux[i] * uy[i];
            let num = (2.0 * ux[i] * uy[i] + c1) * (2.0 * vxy + c2);
            let den = (ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2);
            sum += num / den;
        }
    }
    Ok(sum / ((y1 - y0) * (x1 - x0)) as f64)
}

/// Number of pixels in the top `percent` % of `n`: `ceil(percent·n/100)`, at least 1.
pub fn top_k_count(n: usize, percent: f64) -> usize {
    let m = (percent * n as f64 / 100.0 - 1e-9).ceil();
    (m.max(1.0) as usize).min(n)
}

/// Indices of the `m` largest values (ties: lower index first).
pub(crate) fn top_indices(v: &[f32], m: usize) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[j].total_cmp(&v[i]).then(i.cmp(&j)));
    let mut sel = vec![false; v.len()];
    for &i in &idx[..m] {
        sel[i] = true;
    }
    sel
}

/// Intersection over union of the regions made of each map's `top_k_count(n, percent)`
/// highest pixels (ties broken by position, row-major order first, so that the region
/// always has exactly that many pixels). **Higher is more consistent**: 1 for
/// identical maps, 0 for disjoint regions. `percent` must lie in (0, 100].
pub fn top_k_iou(a: &[f32], b: &[f32], percent: f64) -> Result<f64> {
    check_pair(a, b)?;
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(ExplainError::invalid(format!(
            "top-k percentage {percent} outside (0, 100]"
        )));
    }
    let m = top_k_count(a.len(), percent);
    let (sa, sb) = (top_indices(a, m), top_indices(b, m));
    let inter = sa.iter().zip(&sb).filter(|(x, y)| **x && **y).count();
    let union = 2 * m - inter;
    Ok(inter as f64 / union as f64)
}

/// Parameters of [`consistency`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyOptions {
    /// Share of pixels (percent) of the top-k regions (default 20).
    pub top_k_percent: f64,
    /// SSIM parameters.
    pub ssim: SsimOptions,
}

impl Default for ConsistencyOptions {
    fn default() -> Self {
        Self {
            top_k_percent: DEFAULT_TOP_K_PERCENT,
            ssim: SsimOptions::default(),
        }
    }
}

/// The consistency metrics of one pair of maps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// [`non_containment`]: 0 = identical, **lower is more consistent**, in [0, 1]
    /// (read as `iinc` from files written before the rename).
    #[serde(alias = "iinc")]
    pub non_containment: f64,
    /// [`pearson`]: **higher is more consistent**, in [−1, 1]; `None` (JSON `null`)
    /// when a map is constant.
    pub pearson: Option<f64>,
    /// [`ssim`]: 1 = identical, **higher is more consistent**.
    pub ssim: f64,
    /// [`top_k_iou`]: 1 = same top region, **higher is more consistent**, in [0, 1].
    pub top_k_iou: f64,
    /// The `k` (percent of pixels) used for `top_k_iou`.
    pub top_k_percent: f64,
    /// Whether the first map (`a`, e.g. the clean one) is all zero. An all-zero Grad-CAM (no
    /// positive evidence after the ReLU) says nothing about where the model looks.
    pub a_empty: bool,
    /// Whether the second map (`b`, e.g. the adversarial one) is all zero.
    pub b_empty: bool,
}

/// The metrics of [`ConsistencyReport`], for tables that need each one's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConsistencyMetric {
    /// [`non_containment`] (lower is more consistent).
    NonContainment,
    /// [`pearson`] (higher is more consistent).
    Pearson,
    /// [`ssim`] (higher is more consistent).
    Ssim,
    /// [`top_k_iou`] (higher is more consistent).
    TopKIou,
}

impl ConsistencyMetric {
    /// All metrics in report order.
    pub const ALL: [ConsistencyMetric; 4] = [
        ConsistencyMetric::NonContainment,
        ConsistencyMetric::Pearson,
        ConsistencyMetric::Ssim,
        ConsistencyMetric::TopKIou,
    ];

    /// Short name (the [`ConsistencyReport`] field).
    pub fn name(self) -> &'static str {
        match self {
            ConsistencyMetric::NonContainment => "non_containment",
            ConsistencyMetric::Pearson => "pearson",
            ConsistencyMetric::Ssim => "ssim",
            ConsistencyMetric::TopKIou => "top_k_iou",
        }
    }

    /// Whether a higher value means more consistent maps (false only for non-containment).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, ConsistencyMetric::NonContainment)
    }
}

impl ConsistencyReport {
    /// The value of `metric` (`None` only for an undefined Pearson coefficient).
    pub fn get(&self, metric: ConsistencyMetric) -> Option<f64> {
        match metric {
            ConsistencyMetric::NonContainment => Some(self.non_containment),
            ConsistencyMetric::Pearson => self.pearson,
            ConsistencyMetric::Ssim => Some(self.ssim),
            ConsistencyMetric::TopKIou => Some(self.top_k_iou),
        }
    }
}

/// All four metrics of two `height×width` maps (row-major, values in [0, 1]).
pub fn consistency(
    a: &[f32],
    b: &[f32],
    height: usize,
    width: usize,
    opts: &ConsistencyOptions,
) -> Result<ConsistencyReport> {
    Ok(ConsistencyReport {
        non_containment: non_containment(a, b)?,
        pearson: pearson(a, b)?,
        ssim: ssim(a, b, height, width, &opts.ssim)?,
        top_k_iou: top_k_iou(a, b, opts.top_k_percent)?,
        top_k_percent: opts.top_k_percent,
        a_empty: a.iter().all(|&v| v == 0.0),
        b_empty: b.iter().all(|&v| v == 0.0),
    })
}

/// [`consistency`] of each pair of maps of two batches (`a` and `b` hold `n` maps of
/// `height×width` each, map after map).
pub fn consistency_batch(
    a: &[f32],
    b: &[f32],
    height: usize,
    width: usize,
    opts: &ConsistencyOptions,
) -> Result<Vec<ConsistencyReport>> {
    let hw = height
        .checked_mul(width)
        .filter(|&v| v > 0)
        .ok_or_else(|| ExplainError::invalid(format!("bad map size {height}×{width}")))?;
    if a.len() != b.len() || !a.len().is_multiple_of(hw) {
        return Err(ExplainError::invalid(format!(
            "batches of {} and {} values are not whole {height}×{width} maps of equal count",
            a.len(),
            b.len()
        )));
    }
    a.chunks_exact(hw)
        .zip(b.chunks_exact(hw))
        .map(|(x, y)| consistency(x, y, height, width, opts))
        .collect()
}

/// Means of [`ConsistencyReport`]s over a set of image pairs.
///
/// Pairs of two all-zero maps are left out of every mean and counted instead: non-containment calls two
/// empty maps identical (0) and SSIM gives them 1, which would reward a model whose CAMs are
/// empty. Pairs with one empty map stay in (they are maximally inconsistent) and are counted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConsistencySummary {
    /// Number of pairs given.
    pub n: usize,
    /// Pairs the means are over: at least one of the two maps is non-empty.
    pub n_informative: usize,
    /// Pairs where both maps are all zero (left out of the means).
    pub both_empty: usize,
    /// Pairs where exactly one map is all zero.
    pub one_empty: usize,
    /// Pairs whose first map (`a`, clean) is all zero.
    pub a_empty: usize,
    /// Pairs whose second map (`b`, adversarial) is all zero.
    pub b_empty: usize,
    /// Mean [`non_containment`] (lower is more consistent); `None` without informative
    /// pairs (read as `iinc` from files written before the rename).
    #[serde(alias = "iinc")]
    pub non_containment: Option<f64>,
    /// Mean Pearson coefficient over the informative pairs where it is defined (higher is
    /// more consistent); `None` if it is defined for none.
    pub pearson: Option<f64>,
    /// Informative pairs with an undefined Pearson coefficient (a constant map).
    pub pearson_undefined: usize,
    /// Mean SSIM (higher is more consistent); `None` without informative pairs.
    pub ssim: Option<f64>,
    /// Mean top-k IoU (higher is more consistent); `None` without informative pairs.
    pub top_k_iou: Option<f64>,
}

impl ConsistencySummary {
    /// Averages `reports` over the informative pairs; `None` when there is no report.
    ///
    /// ```
    /// use dfr_explain::consistency::{consistency, ConsistencyOptions, ConsistencySummary};
    /// let o = ConsistencyOptions::default();
    /// let a = [1.0, 0.5, 0.0, 0.0];
    /// let reports = [
    ///     consistency(&a, &a, 2, 2, &o)?,             // identical: non-containment 0
    ///     consistency(&a, &[0.0; 4], 2, 2, &o)?,      // adversarial map empty: 1
    ///     consistency(&[0.0; 4], &[0.0; 4], 2, 2, &o)?, // both empty: left out
    /// ];
    /// let s = ConsistencySummary::from_reports(&reports).unwrap();
    /// assert_eq!((s.n, s.n_informative, s.both_empty, s.one_empty), (3, 2, 1, 1));
    /// assert_eq!((s.a_empty, s.b_empty), (1, 2));
    /// assert_eq!(s.non_containment, Some(0.5));
    /// # Ok::<(), dfr_explain::ExplainError>(())
    /// ```
    pub fn from_reports(reports: &[ConsistencyReport]) -> Option<Self> {
        if reports.is_empty() {
            return None;
        }
        let kept: Vec<&ConsistencyReport> = reports
            .iter()
            .filter(|r| !(r.a_empty && r.b_empty))
            .collect();
        let n = kept.len() as f64;
        let mean = |f: fn(&ConsistencyReport) -> f64| {
            (!kept.is_empty()).then(|| kept.iter().map(|r| f(r)).sum::<f64>() / n)
        };
        let defined: Vec<f64> = kept.iter().filter_map(|r| r.pearson).collect();
        Some(Self {
            n: reports.len(),
            n_informative: kept.len(),
            both_empty: reports.len() - kept.len(),
            one_empty: kept.iter().filter(|r| r.a_empty != r.b_empty).count(),
            a_empty: reports.iter().filter(|r| r.a_empty).count(),
            b_empty: reports.iter().filter(|r| r.b_empty).count(),
            non_containment: mean(|r| r.non_containment),
            pearson: (!defined.is_empty())
                .then(|| defined.iter().sum::<f64>() / defined.len() as f64),
            pearson_undefined: kept.len() - defined.len(),
            ssim: mean(|r| r.ssim),
            top_k_iou: mean(|r| r.top_k_iou),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 / (n - 1) as f32).collect()
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 10_000) as f32 / 9_999.0
            })
            .collect()
    }

    #[test]
    fn non_containment_properties() {
        let a = pseudo_random(64, 1);
        let b = pseudo_random(64, 2);
        assert_eq!(non_containment(&a, &a).unwrap(), 0.0);
        let z = vec![0f32; 64];
        assert_eq!(non_containment(&z, &z).unwrap(), 0.0);
        assert_eq!(non_containment(&a, &z).unwrap(), 1.0);
        assert_eq!(non_containment(&z, &b).unwrap(), 1.0);
        // symmetric
        assert_eq!(
            non_containment(&a, &b).unwrap(),
            non_containment(&b, &a).unwrap()
        );
        let v = non_containment(&a, &b).unwrap();
        assert!(v > 0.0 && v < 1.0, "{v}");
        // disjoint supports: I = 0, numerator 2, denominator 3 − |U|/n
        let mut d1 = vec![0f32; 4];
        let mut d2 = vec![0f32; 4];
        d1[0] = 1.0;
        d2[3] = 1.0;
        let want = 2.0 / (3.0 - 2.0 / 4.0);
        assert!((non_containment(&d1, &d2).unwrap() - want).abs() < 1e-12);
        // containment lowers non-containment compared with disjoint maps
        let mut d3 = d1.clone();
        d3[1] = 1.0;
        assert!(non_containment(&d1, &d3).unwrap() < non_containment(&d1, &d2).unwrap());
        // bad input
        assert!(non_containment(&a, &b[..10]).is_err());
        assert!(non_containment(&[], &[]).is_err());
        assert!(non_containment(&[-1.0, 0.5], &[0.5, 0.5]).is_err());
        assert!(non_containment(&[f32::NAN, 0.5], &[0.5, 0.5]).is_err());
    }

    #[test]
    fn pearson_properties() {
        let a = pseudo_random(100, 3);
        let p = pearson(&a, &a).unwrap().unwrap();
        assert!((p - 1.0).abs() < 1e-12);
        let neg: Vec<f32> = a.iter().map(|v| 1.0 - v).collect();
        assert!((pearson(&a, &neg).unwrap().unwrap() + 1.0).abs() < 1e-6);
        assert_eq!(pearson(&a, &vec![0.3; 100]).unwrap(), None);
        assert_eq!(pearson(&vec![0.0; 100], &a).unwrap(), None);
        assert!(pearson(&a, &a[..5]).is_err());
    }

    #[test]
    fn ssim_properties() {
        let o = SsimOptions::default();
        for (h, w) in [(16, 16), (12, 20), (7, 7), (1, 3)] {
            let a = pseudo_random(h * w, 4);
            let s = ssim(&a, &a, h, w, &o).unwrap();
            assert!((s - 1.0).abs() < 1e-12, "{h}×{w}: {s}");
            let b = pseudo_random(h * w, 5);
            let s = ssim(&a, &b, h, w, &o).unwrap();
            assert!(s < 1.0 && s > -1.0);
            assert!((s - ssim(&b, &a, h, w, &o).unwrap()).abs() < 1e-12);
        }
        let a = ramp(16);
        assert!(ssim(&a, &a, 4, 5, &o).is_err());
        let bad = SsimOptions { sigma: 0.0, ..o };
        assert!(ssim(&a, &a, 4, 4, &bad).is_err());
    }

    #[test]
    fn gaussian_window_is_11_taps() {
        let k = gaussian_kernel(1.5);
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(reflect(-1, 4), 0);
        assert_eq!(reflect(-2, 4), 1);
        assert_eq!(reflect(4, 4), 3);
        assert_eq!(reflect(9, 4), 1);
        assert_eq!(reflect(-6, 1), 0);
    }

    #[test]
    fn top_k_iou_properties() {
        let a = pseudo_random(100, 6);
        assert_eq!(top_k_iou(&a, &a, 20.0).unwrap(), 1.0);
        // disjoint: top 20 % of a ramp vs its reverse
        let r = ramp(100);
        let rev: Vec<f32> = r.iter().rev().copied().collect();
        assert_eq!(top_k_iou(&r, &rev, 20.0).unwrap(), 0.0);
        // half overlap: 20 of 40 pixels shared → 20/60
        let mut shifted = vec![0f32; 100];
        for (i, v) in shifted.iter_mut().enumerate().skip(60).take(40) {
            *v = 1.0 + i as f32;
        }
        let mut top = vec![0f32; 100];
        for (i, v) in top.iter_mut().enumerate().skip(80) {
            *v = 1.0 + i as f32;
        }
        let iou = top_k_iou(&top, &shifted, 40.0).unwrap();
        assert!((iou - 20.0 / 60.0).abs() < 1e-12, "{iou}");
        assert_eq!(top_k_count(256, 20.0), 52);
        assert_eq!(top_k_count(100, 20.0), 20);
        assert_eq!(top_k_count(10, 0.1), 1);
        assert_eq!(top_k_count(10, 100.0), 10);
        assert!(top_k_iou(&a, &a, 0.0).is_err());
        assert!(top_k_iou(&a, &a, 101.0).is_err());
        assert!(top_k_iou(&a, &a, f64::NAN).is_err());
    }

    #[test]
    fn report_and_summary() {
        let a = pseudo_random(256, 7);
        let b = pseudo_random(256, 8);
        let o = ConsistencyOptions::default();
        let r = consistency(&a, &a, 16, 16, &o).unwrap();
        assert_eq!(r.non_containment, 0.0);
        assert!((r.pearson.unwrap() - 1.0).abs() < 1e-12);
        assert!((r.ssim - 1.0).abs() < 1e-12);
        assert_eq!(r.top_k_iou, 1.0);
        let json = serde_json::to_string(&r).unwrap();
        let back: ConsistencyReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let z = vec![0f32; 256];
        let both: Vec<f32> = a.iter().chain(&a).copied().collect();
        let other: Vec<f32> = b.iter().chain(&z).copied().collect();
        let reports = consistency_batch(&both, &other, 16, 16, &o).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].non_containment, 1.0);
        assert_eq!(reports[1].pearson, None);
        assert!(serde_json::to_string(&reports[1])
            .unwrap()
            .contains("\"pearson\":null"));
        let s = ConsistencySummary::from_reports(&reports).unwrap();
        assert_eq!((s.n, s.pearson_undefined), (2, 1));
        assert_eq!(s.pearson, reports[0].pearson);
        assert!(consistency_batch(&both, &other[..300], 16, 16, &o).is_err());
        assert!(ConsistencySummary::from_reports(&[]).is_none());
        assert_eq!((s.one_empty, s.b_empty, s.a_empty), (1, 1, 0));
        // only empty pairs: counted, and no mean claims they are consistent
        let empty = consistency(&z, &z, 16, 16, &o).unwrap();
        assert!(empty.a_empty && empty.b_empty && empty.non_containment == 0.0);
        let s = ConsistencySummary::from_reports(&[empty, empty]).unwrap();
        assert_eq!((s.n, s.n_informative, s.both_empty), (2, 0, 2));
        assert_eq!(
            (s.non_containment, s.ssim, s.top_k_iou, s.pearson),
            (None, None, None, None)
        );
        assert!(!ConsistencyMetric::NonContainment.higher_is_better());
        assert!(ConsistencyMetric::ALL[1..]
            .iter()
            .all(|m| m.higher_is_better()));
        assert_eq!(r.get(ConsistencyMetric::TopKIou), Some(1.0));
    }
}
