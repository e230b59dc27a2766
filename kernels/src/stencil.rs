//! The 2-D 5-point stencil and Jacobi iteration over a row-major `(h, w)` grid.
//!
//! One step replaces every interior point by the mean of its four neighbours,
//! `new[i][j] = 0.25 * ((up + down) + (left + right))`, and keeps the boundary (first and last
//! row and column) fixed. Its residual is the largest `|new - old|` over the grid, the usual
//! convergence test; a NaN anywhere makes it NaN, so a diverging run is never reported as
//! converged.
//!
//! The block kernel [`jacobi_rows`] computes a band of whole rows from a window of the old grid
//! that reaches one row above and below the band (a one-row halo, clipped at the grid's first
//! and last rows), and returns the band's residual: the per-chunk half of a max reduction. The
//! parallel drivers hand it bands of rows in threads or pool workers and take the max of the
//! bands' residuals, which does not depend on the banding: every driver's grid and residual are
//! identical bit for bit to [`jacobi_step`]'s.

use crate::dims_error::DimsError;
use crate::float::Float;

/// The shape of a row-major grid: `h` rows of `w` points.
///
/// Plain data (`#[repr(C)]`, two `u64`), so it can travel to pool workers as a kernel's
/// parameter block.
///
/// ```
/// let d = shmpool_kernels::GridDims::new(3, 4);
/// assert_eq!(d.len(), 12);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GridDims {
    /// Rows.
    pub h: u64,
    /// Points per row.
    pub w: u64,
}

impl GridDims {
    /// A grid of `h` rows of `w` points.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::GridDims::new(2048, 2048).get(), (2048, 2048));
    /// ```
    pub fn new(h: usize, w: usize) -> GridDims {
        GridDims { h: h as u64, w: w as u64 }
    }

    /// `(h, w)` as `usize`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::GridDims::new(3, 5).get(), (3, 5));
    /// ```
    pub fn get(&self) -> (usize, usize) {
        (self.h as usize, self.w as usize)
    }

    /// Points in the grid, `h * w`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::GridDims::new(3, 5).len(), 15);
    /// ```
    pub fn len(&self) -> usize {
        (self.h * self.w) as usize
    }

    /// Whether the grid has no points.
    ///
    /// ```
    /// assert!(shmpool_kernels::GridDims::new(0, 5).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that a grid and its second buffer both have [`len`](GridDims::len) elements.
    ///
    /// # Errors
    ///
    /// [`DimsError::Grid`] with both lengths.
    ///
    /// ```
    /// let d = shmpool_kernels::GridDims::new(2, 2);
    /// assert!(d.check(&[0.0f32; 4], &[0.0; 4]).is_ok());
    /// assert!(d.check(&[0.0f32; 4], &[0.0; 5]).is_err());
    /// ```
    pub fn check<T>(&self, grid: &[T], other: &[T]) -> Result<(), DimsError> {
        if grid.len() == self.len() && other.len() == self.len() {
            Ok(())
        } else {
            Err(DimsError::Grid { dims: *self, lens: [grid.len(), other.len()] })
        }
    }
}

/// The block kernel: one Jacobi step over a band of whole rows, returning the band's residual
/// (largest `|new - old|`, NaN if any point is NaN).
///
/// `win` is the old grid from one row above the band to one row below it, each clipped at the
/// grid's ends; `off` is the index in `win` of the band's first point (`0` when the band starts
/// at row 0, else `w`); `out` is the band in the new grid, `w`-point rows. A row with no row
/// above or below it in `win` is a boundary row and is copied, as are the first and last
/// points of every row. `w` of 0 means an empty grid.
///
/// # Panics
///
/// When the lengths are not whole rows or the halo is more than one row.
///
/// ```
/// // A 3x3 grid: only the centre is interior; it becomes the mean of its 4 neighbours.
/// let old = [0.0, 4.0, 0.0, 8.0, 1.0, 0.0, 0.0, 4.0, 0.0f64];
/// let mut new = [0.0; 9];
/// let residual = shmpool_kernels::jacobi_rows(&old, 0, &mut new, 3);
/// assert_eq!(new[4], 4.0); // (4 + 4 + 8 + 0) / 4
/// assert_eq!(residual, 3.0);
/// assert_eq!(new[3], 8.0); // boundary kept
/// ```
pub fn jacobi_rows<T: Float>(win: &[T], off: usize, out: &mut [T], w: usize) -> T {
    if w == 0 {
        assert!(win.is_empty() && out.is_empty(), "rows of 0 points hold no elements");
        return T::ZERO;
    }
    let tail = win.len().checked_sub(off + out.len());
    assert!(
        win.len().is_multiple_of(w)
            && out.len().is_multiple_of(w)
            && (off == 0 || off == w)
            && tail.is_some_and(|t| t == 0 || t == w),
        "a band of {} points of {w}-point rows needs whole rows and a halo of at most one row each side, \
         got a window of {} points with the band at {off}",
        out.len(),
        win.len()
    );
    let rows = out.len() / w;
    let (has_above, has_below) = (off > 0, tail != Some(0));
    let mut residual = T::ZERO;
    for (r, out_row) in out.chunks_exact_mut(w).enumerate() {
        let at = off + r * w;
        let mid = &win[at..at + w];
        let boundary = (r == 0 && !has_above) || (r + 1 == rows && !has_below);
        if boundary || w <= 2 {
            out_row.copy_from_slice(mid);
            continue;
        }
        let up = &win[at - w..at];
        let down = &win[at + w..at + 2 * w];
        residual = residual.max_nan(interior_row(up, mid, down, out_row));
    }
    residual
}

/// One interior row: the two end points copied, the rest averaged; returns the row's residual.
#[inline(always)]
fn interior_row<T: Float>(up: &[T], mid: &[T], down: &[T], out: &mut [T]) -> T {
    let w = mid.len();
    out[0] = mid[0];
    out[w - 1] = mid[w - 1];
    let inner = &mut out[1..w - 1];
    let (up, down, left, centre, right) =
        (&up[1..w - 1], &down[1..w - 1], &mid[..w - 2], &mid[1..w - 1], &mid[2..]);
    // The residual as the max of integer keys (the bits of |new - old|): branch-free, and a
    // NaN, whose key is above every number's, wins.
    let mut worst = 0u64;
    let rows = up.iter().zip(down).zip(left.iter().zip(centre).zip(right));
    for (o, ((&u, &d), ((&l, &c), &r))) in inner.iter_mut().zip(rows) {
        let v = ((u + d) + (l + r)) * T::QUARTER;
        *o = v;
        worst = worst.max((v - c).abs_key());
    }
    T::from_abs_key(worst)
}

/// One Jacobi step of the whole grid, `old` into `new`; returns the residual.
///
/// # Panics
///
/// When either slice does not have `dims.len()` elements (see [`GridDims::check`]).
///
/// ```
/// use shmpool_kernels::{GridDims, jacobi_step};
/// let old = [1.0f32; 16]; // 4x4, constant: a fixed point
/// let mut new = [0.0; 16];
/// assert_eq!(jacobi_step(&old, &mut new, GridDims::new(4, 4)), 0.0);
/// assert_eq!(new, old);
/// ```
pub fn jacobi_step<T: Float>(old: &[T], new: &mut [T], dims: GridDims) -> T {
    if let Err(e) = dims.check(old, new) {
        panic!("{e}");
    }
    jacobi_rows(old, 0, new, dims.get().1)
}

/// `steps` Jacobi steps, alternating between `grid` and `scratch`; the result ends in `grid`
/// (after an odd number of steps it is copied back from `scratch`). Returns the last step's
/// residual, or 0 for no steps.
///
/// # Panics
///
/// When either slice does not have `dims.len()` elements.
///
/// ```
/// use shmpool_kernels::{GridDims, jacobi};
/// // 3x3 with a hot top edge: the centre converges to the mean of its neighbours.
/// let mut grid = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0f64];
/// let mut scratch = [0.0; 9];
/// let residual = jacobi(&mut grid, &mut scratch, GridDims::new(3, 3), 3);
/// assert_eq!(grid[4], 0.25);
/// assert_eq!(residual, 0.0);
/// ```
pub fn jacobi<T: Float>(grid: &mut [T], scratch: &mut [T], dims: GridDims, steps: usize) -> T {
    if let Err(e) = dims.check(grid, scratch) {
        panic!("{e}");
    }
    let mut residual = T::ZERO;
    for s in 0..steps {
        residual = if s % 2 == 0 {
            jacobi_step(grid, scratch, dims)
        } else {
            jacobi_step(scratch, grid, dims)
        };
    }
    if steps % 2 == 1 {
        grid.copy_from_slice(scratch);
    }
    residual
}

/// Rows in one band of the parallel drivers: about eight bands per thread.
fn band_rows(h: usize, threads: usize) -> usize {
    h.div_ceil(8 * threads.max(1)).max(1)
}

/// [`jacobi_step`] in rayon's current pool: bands of rows run [`jacobi_rows`] in threads, each
/// reading a one-row halo of `old`, and the bands' residuals are combined by max. Grid and
/// residual are identical bit for bit to [`jacobi_step`]'s.
///
/// # Errors
///
/// [`DimsError::Grid`] when a slice does not have `dims.len()` elements (nothing is computed).
///
/// ```
/// use shmpool_kernels::{GridDims, jacobi_step_rayon};
/// let old = [0.0, 4.0, 0.0, 8.0, 1.0, 0.0, 0.0, 4.0, 0.0f64];
/// let mut new = [0.0; 9];
/// assert_eq!(jacobi_step_rayon(&old, &mut new, GridDims::new(3, 3))?, 3.0);
/// assert_eq!(new[4], 4.0);
/// # Ok::<(), shmpool_kernels::DimsError>(())
/// ```
pub fn jacobi_step_rayon<T: Float>(
    old: &[T],
    new: &mut [T],
    dims: GridDims,
) -> Result<T, DimsError> {
    use rayon::prelude::*;
    dims.check(old, new)?;
    let (h, w) = dims.get();
    if dims.is_empty() {
        return Ok(T::ZERO);
    }
    let rows = band_rows(h, rayon::current_num_threads());
    let residual = new
        .par_chunks_mut(rows * w)
        .enumerate()
        .map(|(i, band)| {
            let start = i * rows * w;
            let lo = start.saturating_sub(w);
            let hi = (start + band.len() + w).min(old.len());
            jacobi_rows(&old[lo..hi], start - lo, band, w)
        })
        .reduce(|| T::ZERO, T::max_nan);
    Ok(residual)
}

/// [`jacobi`] in rayon's current pool: `steps` steps of [`jacobi_step_rayon`], alternating
/// between `grid` and `scratch`, the result in `grid`; returns the last step's residual.
///
/// # Errors
///
/// [`DimsError::Grid`] when a slice does not have `dims.len()` elements (nothing is computed).
///
/// ```
/// use shmpool_kernels::{GridDims, jacobi_rayon};
/// let mut grid = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0f64];
/// let mut scratch = [0.0; 9];
/// assert_eq!(jacobi_rayon(&mut grid, &mut scratch, GridDims::new(3, 3), 3)?, 0.0);
/// assert_eq!(grid[4], 0.25);
/// # Ok::<(), shmpool_kernels::DimsError>(())
/// ```
pub fn jacobi_rayon<T: Float>(
    grid: &mut [T],
    scratch: &mut [T],
    dims: GridDims,
    steps: usize,
) -> Result<T, DimsError> {
    dims.check(grid, scratch)?;
    let mut residual = T::ZERO;
    for s in 0..steps {
        residual = if s % 2 == 0 {
            jacobi_step_rayon(grid, scratch, dims)?
        } else {
            jacobi_step_rayon(scratch, grid, dims)?
        };
    }
    if steps % 2 == 1 {
        grid.copy_from_slice(scratch);
    }
    Ok(residual)
}
