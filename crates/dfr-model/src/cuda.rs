//! This crate's CUDA kernels (`cuda` feature): each `.cu` source is compiled once per
//! process with NVRTC and loaded into each device as a named module on first use.

use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaSlice, CudaView, LaunchConfig};
use candle_core::cuda_backend::CudaDevice;
use candle_core::{CudaStorage, Layout, Result};
use std::sync::OnceLock;

/// A CUDA source file compiled on first use.
pub(crate) struct Kernels {
    module: &'static str,
    file: &'static str,
    source: &'static str,
    ptx: OnceLock<std::result::Result<String, String>>,
}

impl Kernels {
    /// `source` (the text of `file`) loaded into each device as `module`.
    pub(crate) const fn new(
        module: &'static str,
        file: &'static str,
        source: &'static str,
    ) -> Self {
        Self {
            module,
            file,
            source,
            ptx: OnceLock::new(),
        }
    }

    fn ptx(&self) -> Result<&str> {
        self.ptx
            .get_or_init(|| {
                candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(self.source)
                    .map(|p| p.to_src())
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map(String::as_str)
            .map_err(|e| {
                candle_core::Error::Cuda(format!("compiling {} with NVRTC: {e}", self.file).into())
            })
    }

    /// The kernel `name` on `dev`; launch it on `dev.cuda_stream()`.
    pub(crate) fn func(&self, dev: &CudaDevice, name: &str) -> Result<CudaFunction> {
        Ok(dev
            .get_or_load_custom_func(name, self.module, self.ptx()?)?
            .into_cuda_function())
    }
}

/// The f32 elements of a contiguous tensor; `op`/`what` name it in the error.
pub(crate) fn view<'a>(
    s: &'a CudaStorage,
    l: &Layout,
    op: &str,
    what: &str,
) -> Result<CudaView<'a, f32>> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: {what} must be contiguous")
    };
    Ok(s.as_cuda_slice::<f32>()?.slice(a..b))
}

/// `v` as a kernel's `int` argument.
pub(crate) fn int(v: usize, op: &str, what: &str) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| candle_core::Error::Msg(format!("{op}: {what} = {v} exceeds i32 on CUDA")))
}

/// One thread per element.
pub(crate) fn elementwise(len: usize) -> Result<LaunchConfig> {
    Ok(LaunchConfig::for_num_elems(
        u32::try_from(len.max(1))
            .map_err(|_| candle_core::Error::Msg("tensor too large for one CUDA launch".into()))?,
    ))
}

/// An output buffer of `len` f32 that the kernel writes entirely.
pub(crate) fn output(dev: &CudaDevice, len: usize) -> Result<CudaSlice<f32>> {
    if len == 0 {
        return dev.alloc_zeros::<f32>(0);
    }
    // SAFETY: callers launch a kernel that writes every element before the buffer is read.
    unsafe { dev.alloc::<f32>(len) }
}
