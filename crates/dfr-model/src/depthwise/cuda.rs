//! CUDA kernels of the depthwise op (`cuda` feature): `depthwise.cu`, compiled once per
//! process with NVRTC and loaded into each device as the module `dfr_depthwise`.

use super::Geom;
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result, Shape};
use std::sync::OnceLock;

/// The kernel source.
const SOURCE: &str = include_str!("depthwise.cu");
const MODULE: &str = "dfr_depthwise";
/// Threads per block of the weight-gradient reduction (`DFR_DW_BLOCK` in the source).
const REDUCE_BLOCK: u32 = 256;

fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(String::as_str)
    .map_err(|e| candle_core::Error::Cuda(format!("compiling depthwise.cu with NVRTC: {e}").into()))
}

fn view<'a>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, f32>> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("depthwise_conv2d: {what} must be contiguous")
    };
    Ok(s.as_cuda_slice::<f32>()?.slice(a..b))
}

fn int(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        candle_core::Error::Msg(format!(
            "depthwise_conv2d: {what} = {v} exceeds i32 on CUDA"
        ))
    })
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
    if len == 0 {
        return Ok(CudaStorage::wrap_cuda_slice(
            dev.alloc_zeros::<f32>(0)?,
            dev,
        ));
    }
    let (va, vb) = (view(a, la, wa)?, view(b, lb, wb)?);
    let d = dims(g)?;
    // SAFETY: every element is written by the kernel.
    let out = unsafe { dev.alloc::<f32>(len)? };
    let f = dev.get_or_load_custom_func(name, MODULE, ptx()?)?;
    let mut builder = f.builder();
    builder.arg(&va);
    builder.arg(&vb);
    builder.arg(&out);
    for v in &d {
        builder.arg(v);
    }
    // SAFETY: the argument list matches the kernel's signature in depthwise.cu.
    unsafe { builder.launch(cfg) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

fn elementwise(len: usize) -> Result<LaunchConfig> {
    Ok(LaunchConfig::for_num_elems(
        u32::try_from(len.max(1))
            .map_err(|_| candle_core::Error::Msg("tensor too large".into()))?,
    ))
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
