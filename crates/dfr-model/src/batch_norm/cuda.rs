//! CUDA kernels of the BatchNorm ops (`cuda` feature): `batch_norm.cu`, compiled once per
//! process with NVRTC. The batch statistics the CPU ops keep on the host (f64) are copied
//! to the device per call (C values).

use crate::cuda::{elementwise, int, output, view, Kernels};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::{CudaStorage, Layout, Result, Shape};

static KERNELS: Kernels = Kernels::new(
    "dfr_batch_norm",
    "batch_norm.cu",
    include_str!("batch_norm.cu"),
);
const OP: &str = "batch_norm";
/// Threads per block of the per-channel reductions (`DFR_BN_BLOCK` in the source).
const REDUCE_BLOCK: u32 = 256;

type Input<'a> = (&'a CudaStorage, &'a Layout);

/// One block per channel.
fn per_channel(c: usize) -> Result<LaunchConfig> {
    Ok(LaunchConfig {
        grid_dim: (int(c.max(1), OP, "channels")? as u32, 1, 1),
        block_dim: (REDUCE_BLOCK, 1, 1),
        shared_mem_bytes: 0,
    })
}

fn host<T: candle_core::cuda_backend::cudarc::driver::DeviceRepr + 'static>(
    dev: &CudaDevice,
    v: &[T],
) -> Result<CudaSlice<T>> {
    dev.clone_htod(v)
}

/// `y = x * scale[c] + shift[c]` over NCHW `x`.
pub(super) fn channel_affine(x: Input, a: Input, b: Input) -> Result<(CudaStorage, Shape)> {
    let (_, c, hw) = super::nchw(x.1)?;
    let len = x.1.shape().elem_count();
    let dev = x.0.device().clone();
    let out = output(&dev, len)?;
    if len > 0 {
        let (vx, va, vb) = (
            view(x.0, x.1, OP, "input")?,
            view(a.0, a.1, OP, "scale")?,
            view(b.0, b.1, OP, "shift")?,
        );
        let (len64, hw, c) = (len as i64, int(hw, OP, "H·W")?, int(c, OP, "channels")?);
        let f = KERNELS.func(&dev, "dfr_channel_affine")?;
        let stream = dev.cuda_stream();
        let mut builder = stream.launch_builder(&f);
        builder.arg(&vx).arg(&va).arg(&vb).arg(&out);
        builder.arg(&len64).arg(&hw).arg(&c);
        // SAFETY: the arguments match the kernel's signature in batch_norm.cu; it writes
        // every element of `out`.
        unsafe { builder.launch(elementwise(len)?) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), x.1.shape().clone()))
}

/// Per-channel (mean, biased variance), shape (2, C).
pub(super) fn stats(x: Input) -> Result<(CudaStorage, Shape)> {
    let (n, c, hw) = super::nchw(x.1)?;
    let dev = x.0.device().clone();
    let out = output(&dev, 2 * c)?;
    if c > 0 {
        let vx = view(x.0, x.1, OP, "input")?;
        let (n, ci, hw) = (
            int(n, OP, "batch")?,
            int(c, OP, "channels")?,
            int(hw, OP, "H·W")?,
        );
        let f = KERNELS.func(&dev, "dfr_bn_stats")?;
        let stream = dev.cuda_stream();
        let mut builder = stream.launch_builder(&f);
        builder.arg(&vx).arg(&out).arg(&n).arg(&ci).arg(&hw);
        // SAFETY: as above; block ch writes out[ch] and out[c + ch].
        unsafe { builder.launch(per_channel(c)?) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from((2, c))))
}

/// `y = (x − mean) · invstd · gamma + beta`.
pub(super) fn train_forward(
    x: Input,
    gamma: Input,
    beta: Input,
    mean: &[f64],
    invstd: &[f64],
) -> Result<(CudaStorage, Shape)> {
    let (_, c, hw) = super::nchw(x.1)?;
    let len = x.1.shape().elem_count();
    let dev = x.0.device().clone();
    let out = output(&dev, len)?;
    if len > 0 {
        let (vx, vg, vb) = (
            view(x.0, x.1, OP, "input")?,
            view(gamma.0, gamma.1, OP, "weight")?,
            view(beta.0, beta.1, OP, "bias")?,
        );
        let (m, is) = (host(&dev, mean)?, host(&dev, invstd)?);
        let (len64, hw, c) = (len as i64, int(hw, OP, "H·W")?, int(c, OP, "channels")?);
        let f = KERNELS.func(&dev, "dfr_bn_train_fwd")?;
        let stream = dev.cuda_stream();
        let mut builder = stream.launch_builder(&f);
        builder
            .arg(&vx)
            .arg(&vg)
            .arg(&vb)
            .arg(&m)
            .arg(&is)
            .arg(&out);
        builder.arg(&len64).arg(&hw).arg(&c);
        // SAFETY: as above.
        unsafe { builder.launch(elementwise(len)?) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), x.1.shape().clone()))
}

/// (Σ dy, Σ dy · xhat) per channel, shape (2, C).
pub(super) fn backward_sums(
    x: Input,
    dy: Input,
    mean: &[f64],
    invstd: &[f64],
) -> Result<(CudaStorage, Shape)> {
    let (n, c, hw) = super::nchw(x.1)?;
    let dev = x.0.device().clone();
    let out = output(&dev, 2 * c)?;
    if c > 0 {
        let (vx, vdy) = (view(x.0, x.1, OP, "input")?, view(dy.0, dy.1, OP, "grad")?);
        let (m, is) = (host(&dev, mean)?, host(&dev, invstd)?);
        let (n, ci, hw) = (
            int(n, OP, "batch")?,
            int(c, OP, "channels")?,
            int(hw, OP, "H·W")?,
        );
        let f = KERNELS.func(&dev, "dfr_bn_bwd_sums")?;
        let stream = dev.cuda_stream();
        let mut builder = stream.launch_builder(&f);
        builder.arg(&vx).arg(&vdy).arg(&m).arg(&is).arg(&out);
        builder.arg(&n).arg(&ci).arg(&hw);
        // SAFETY: as above; block ch writes out[ch] and out[c + ch].
        unsafe { builder.launch(per_channel(c)?) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from((2, c))))
}

/// The batch statistics and sums [`backward_input`] needs, on the host.
pub(super) struct BackwardInputArgs<'a> {
    pub mean: &'a [f64],
    pub invstd: &'a [f64],
    pub gamma: &'a [f32],
    pub sums: &'a [f32],
}

/// The input gradient of train-mode BN (closed form).
pub(super) fn backward_input(
    x: Input,
    dy: Input,
    a: BackwardInputArgs,
) -> Result<(CudaStorage, Shape)> {
    let (n, c, hw) = super::nchw(x.1)?;
    let len = x.1.shape().elem_count();
    let dev = x.0.device().clone();
    let out = output(&dev, len)?;
    if len > 0 {
        let (vx, vdy) = (view(x.0, x.1, OP, "input")?, view(dy.0, dy.1, OP, "grad")?);
        let (m, is) = (host(&dev, a.mean)?, host(&dev, a.invstd)?);
        let (g, s) = (host(&dev, a.gamma)?, host(&dev, a.sums)?);
        let count = (n * hw) as f64;
        let (len64, hw, c) = (len as i64, int(hw, OP, "H·W")?, int(c, OP, "channels")?);
        let f = KERNELS.func(&dev, "dfr_bn_bwd_input")?;
        let stream = dev.cuda_stream();
        let mut builder = stream.launch_builder(&f);
        builder
            .arg(&vx)
            .arg(&vdy)
            .arg(&m)
            .arg(&is)
            .arg(&g)
            .arg(&s)
            .arg(&out);
        builder.arg(&len64).arg(&hw).arg(&c).arg(&count);
        // SAFETY: as above.
        unsafe { builder.launch(elementwise(len)?) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), x.1.shape().clone()))
}
