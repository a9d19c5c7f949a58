//! Matrix products on strided f32 views through the `gemm` crate (the kernels candle's own
//! matmul uses): shared by the 1×1 convolution and the squeeze-excitation op, so that no
//! transposed operand is ever copied.

use gemm::{gemm, Parallelism};

/// A read-only matrix operand: its first element and its row and column strides.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rs: isize,
    pub(crate) cs: isize,
}

/// `dst (m × n, row-major contiguous) = [dst +] lhs (m × k) · rhs (k × n)`.
///
/// Panics when `dst` is smaller than `m × n` or a view leaves its slice.
pub(crate) fn matmul_into(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    par: Parallelism,
) {
    assert!(dst.len() >= m * n, "matmul_into: destination too small");
    assert!(
        lhs.fits(m, k) && rhs.fits(k, n),
        "matmul_into: an operand view leaves its slice"
    );
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: `dst` holds m·n elements written row-major with stride n, and both views stay
    // inside their slices for their shapes (both asserted above).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs,
            lhs.rs,
            rhs.data.as_ptr(),
            rhs.cs,
            rhs.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

impl<'a> View<'a> {
    /// Whether a `rows × cols` matrix through these (non-negative) strides stays inside
    /// the slice.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        if self.rs < 0 || self.cs < 0 {
            return false;
        }
        let last = (rows - 1) * self.rs as usize + (cols - 1) * self.cs as usize;
        last < self.data.len()
    }

    /// A row-major matrix with `cols` columns.
    pub(crate) fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols as isize,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub(crate) fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols as isize,
        }
    }
}
