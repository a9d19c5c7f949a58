//! Losses.

use candle_core::{DType, Result, Tensor, D};

/// Cross-entropy of `logits` `(N, C)` against integer class `targets` `(N)`
/// (u8/u32/i64), optionally class-weighted with `weights` `(C)`.
///
/// Without weights this is the mean over the batch; with weights PyTorch's
/// reduction `sum_i w[y_i] * l_i / sum_i w[y_i]`.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Tensor> {
    let (n, _c) = logits.dims2()?;
    if targets.dims() != [n] {
        candle_core::bail!(
            "weighted_cross_entropy: targets {:?} do not match logits {:?}",
            targets.dims(),
            logits.dims()
        )
    }
    let targets = match targets.dtype() {
        DType::U8 | DType::U32 | DType::I64 => targets.clone(),
        _ => targets.to_dtype(DType::I64)?,
    };
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    match weights {
        None => nll.mean_all(),
        Some(w) => {
            let wi = w.to_dtype(logits.dtype())?.index_select(&targets, 0)?;
            (nll * &wi)?.sum_all()?.broadcast_div(&wi.sum_all()?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_manual_values() -> Result<()> {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[1.0f32, 2.0], [0.5, -0.5], [0.0, 0.0]], &dev)?;
        let y = Tensor::new(&[1i64, 0, 1], &dev)?;
        let l = |a: f32, b: f32, t: usize| {
            let m = a.max(b);
            let lse = m + ((a - m).exp() + (b - m).exp()).ln();
            lse - [a, b][t]
        };
        let ls = [l(1.0, 2.0, 1), l(0.5, -0.5, 0), l(0.0, 0.0, 1)];
        let mean = weighted_cross_entropy(&logits, &y, None)?.to_scalar::<f32>()?;
        assert!((mean - ls.iter().sum::<f32>() / 3.0).abs() < 1e-6);
        let w = Tensor::new(&[0.25f32, 2.0], &dev)?;
        let wl = weighted_cross_entropy(&logits, &y, Some(&w))?.to_scalar::<f32>()?;
        let expect = (2.0 * ls[0] + 0.25 * ls[1] + 2.0 * ls[2]) / (2.0 + 0.25 + 2.0);
        assert!((wl - expect).abs() < 1e-6);
        Ok(())
    }
}
