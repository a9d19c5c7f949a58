//! CUDA kernels of the depthwise op (`cuda` feature): `depthwise.cu`, compiled once per
//! process with NVRTC and loaded into each device as the module `dfr_depthwise`.

use super::Geom;
use crate::cuda::{elementwise, output, view, Kernels};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result, Shape};

static KERNELS: Kernels = Kernels::new(
    "dfr_depthwise",
    "depthwise.cu",
    include_str!("depthwise.cu"),
);
/// Threads per block of the weight-gradient reduction (`DFR_DW_BLOCK` in the source).
const REDUCE_BLOCK: u32 = 256;
const OP: &str = "depthwise_conv2d";

fn int(v: usize, what: &str) -> Result<i32> {
    crate::cuda::int(v, OP, what)
}

/// The geometry arguments every kernel takes after its three pointers.
fn dims(g: &Geom) -> Result<[i32; 11]> {
    Ok([
        int(g.n, "batch")?,
        int(g.c, "channels")?,
        int(g.h, "height")?,
        int(g.w, "width")?,
        int(g.kh, "kernel height")?,
        int(g.kw, "kernel width")?,
        int(g.ho, "output height")?,
        int(g.wo, "output width")?,
        int(g.stride, "stride")?,
        int(g.pad.top, "top padding")?,
        int(g.pad.left, "left padding")?,
    ])
}

/// Runs kernel `name` on `(a, b)` into a new buffer of `len` elements.
fn launch(
    name: &str,
    g: &Geom,
    (a, la, wa): (&CudaStorage, &Layout, &str),
    (b, lb, wb): (&CudaStorage, &Layout, &str),
    len: usize,
    cfg: LaunchConfig,
) -> Result<CudaStorage> {
    let dev = a.device().clone();
    let out = output(&dev, len)?;
    if len == 0 {
        return Ok(CudaStorage::wrap_cuda_slice(out, dev));
    }
    let (va, vb) = (view(a, la, OP, wa)?, view(b, lb, OP, wb)?);
    let d = dims(g)?;
    let f = KERNELS.func(&dev, name)?;
    let stream = dev.cuda_stream();
    let mut builder = stream.launch_builder(&f);
    builder.arg(&va);
    builder.arg(&vb);
    builder.arg(&out);
    for v in &d {
        builder.arg(v);
    }
    // SAFETY: the argument list matches the kernel's signature in depthwise.cu, and the
    // kernel writes every element of `out`.
    unsafe { builder.launch(cfg) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// Forward: `(N, C, Ho, Wo)`.
pub(super) fn forward(
    g: &Geom,
    x: (&CudaStorage, &Layout),
    k: (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let len = g.n * g.c * g.ho * g.wo;
    let out = launch(
        "dfr_dw_forward",
        g,
        (x.0, x.1, "input"),
        (k.0, k.1, "weight"),
        len,
        elementwise(len)?,
    )?;
    Ok((out, Shape::from((g.n, g.c, g.ho, g.wo))))
}

/// Input gradient: `(N, C, H, W)`.
pub(super) fn backward_input(
    g: &Geom,
    gout: (&CudaStorage, &Layout),
    k: (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let len = g.n * g.c * g.h * g.w;
    let out = launch(
        "dfr_dw_backward_input",
        g,
        (gout.0, gout.1, "grad"),
        (k.0, k.1, "weight"),
        len,
        elementwise(len)?,
    )?;
    Ok((out, Shape::from((g.n, g.c, g.h, g.w))))
}

/// Weight gradient: `(C, 1, kh, kw)`.
pub(super) fn backward_weight(
    g: &Geom,
    x: (&CudaStorage, &Layout),
    gout: (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let len = g.c * g.kh * g.kw;
    let cfg = LaunchConfig {
        grid_dim: (int(len, "weight elements")? as u32, 1, 1),
        block_dim: (REDUCE_BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    let out = launch(
        "dfr_dw_backward_weight",
        g,
        (x.0, x.1, "input"),
        (gout.0, gout.1, "grad"),
        len,
        cfg,
    )?;
    Ok((out, Shape::from((g.c, 1, g.kh, g.kw))))
}
