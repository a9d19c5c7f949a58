//! Access to the host values of a custom op's operands (shared by the CPU kernels).

use candle_core::{CpuStorage, Layout, Result};

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
