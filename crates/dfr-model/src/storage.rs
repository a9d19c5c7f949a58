//! Access to the host values of a custom op's operands (shared by the CPU kernels).

use candle_core::{CpuStorage, DType, Layout, Result, Tensor};

/// The f32 values of a contiguous CPU operand; an error naming `op` and the operand `what`
/// for another dtype or a strided layout.
pub(crate) fn contiguous_f32<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: {what} must be contiguous"),
    }
}

/// Whether `t` can be read on the host without a graph: f32 on the CPU, not tracked.
pub(crate) fn untracked_cpu_f32(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32 && !t.track_op()
}

/// Runs `f` on the f32 values of a CPU tensor (made contiguous first); an error naming `op`
/// and the operand `what` for another device or dtype.
pub(crate) fn with_host_f32<R>(
    t: &Tensor,
    op: &str,
    what: &str,
    f: impl FnOnce(&[f32]) -> Result<R>,
) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("{op}: {what} must be on the CPU")
    };
    f(contiguous_f32(cpu, layout, op, what)?)
}
