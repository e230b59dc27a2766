//! Blocked matrix multiply `C = A x B` of row-major matrices.
//!
//! One block kernel, [`matmul_rows`], computes a band of rows of `C` from the same rows of `A`
//! and all of `B`; [`matmul`] runs it over the whole matrix, and the parallel drivers run it
//! over row bands in threads or pool workers. Inside a band the loops are blocked for the
//! caches: a `KC x NC` panel of `B` (256 x 512 elements, 1 MiB of `f64`) is reused by every row
//! of the band, and a 4 x 8 tile of `C` is accumulated in registers while `p` runs down the
//! panel, so each element of `B` loaded feeds four multiply-adds and each of `A` eight; the
//! tile's fixed-size loops are what the compiler vectorises.
//!
//! Every element of `C` is summed in the same order whatever the banding: over `p` in panels of
//! `KC`, each panel's products added left to right into an accumulator that starts at zero, then
//! added to the element. So the sequential, rayon and pool results are identical bit for bit.

use crate::float::Float;

/// Rows of `B` in one panel.
const KC: usize = 256;
/// Columns of `B` in one panel.
const NC: usize = 512;
/// Rows of `C` in one register tile.
const MR: usize = 4;
/// Columns of `C` in one register tile.
const NR: usize = 8;

/// The shape of a product `C (m x n) = A (m x k) x B (k x n)`, all row-major.
///
/// It is plain data (`#[repr(C)]`, three `u64`), so it can travel to pool workers as a kernel's
/// parameter block.
///
/// ```
/// let d = shmpool_kernels::MatDims::new(2, 3, 4);
/// assert_eq!((d.a_len(), d.b_len(), d.c_len()), (6, 12, 8));
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatDims {
    /// Rows of `A` and `C`.
    pub m: u64,
    /// Columns of `A`, rows of `B`.
    pub k: u64,
    /// Columns of `B` and `C`.
    pub n: u64,
}

impl MatDims {
    /// The shape `m x k` times `k x n`.
    ///
    /// ```
    /// let d = shmpool_kernels::MatDims::new(512, 512, 512);
    /// assert_eq!(d.c_len(), 512 * 512);
    /// ```
    pub fn new(m: usize, k: usize, n: usize) -> MatDims {
        MatDims { m: m as u64, k: k as u64, n: n as u64 }
    }

    /// `(m, k, n)` as `usize`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::MatDims::new(1, 2, 3).get(), (1, 2, 3));
    /// ```
    pub fn get(&self) -> (usize, usize, usize) {
        (self.m as usize, self.k as usize, self.n as usize)
    }

    /// Elements of `A`, `m * k`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::MatDims::new(2, 3, 4).a_len(), 6);
    /// ```
    pub fn a_len(&self) -> usize {
        (self.m * self.k) as usize
    }

    /// Elements of `B`, `k * n`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::MatDims::new(2, 3, 4).b_len(), 12);
    /// ```
    pub fn b_len(&self) -> usize {
        (self.k * self.n) as usize
    }

    /// Elements of `C`, `m * n`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::MatDims::new(2, 3, 4).c_len(), 8);
    /// ```
    pub fn c_len(&self) -> usize {
        (self.m * self.n) as usize
    }

    /// Whether `a`, `b` and `c` have the lengths this shape needs; the panics of [`matmul`] and
    /// the errors of the drivers come from here.
    pub(crate) fn check(&self, a: usize, b: usize, c: usize) -> Result<(), crate::DimsError> {
        if (a, b, c) == (self.a_len(), self.b_len(), self.c_len()) {
            Ok(())
        } else {
            Err(crate::DimsError::Matmul { dims: *self, lens: [a, b, c] })
        }
    }
}

/// `C = A x B` for row-major `A` (`m x k`), `B` (`k x n`) and `C` (`m x n`); `C` is overwritten.
///
/// # Panics
///
/// When a slice's length is not the one `dims` gives it (the message names the lengths).
///
/// ```
/// use shmpool_kernels::{MatDims, matmul};
/// let a = [1.0, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let b = [5.0, 6.0, 7.0, 8.0]; // [[5, 6], [7, 8]]
/// let mut c = [0.0f64; 4];
/// matmul(&a, &b, &mut c, MatDims::new(2, 2, 2));
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// ```
pub fn matmul<T: Float>(a: &[T], b: &[T], c: &mut [T], dims: MatDims) {
    if let Err(e) = dims.check(a.len(), b.len(), c.len()) {
        panic!("{e}");
    }
    let (_, k, n) = dims.get();
    matmul_rows(a, b, c, k, n);
}

/// The block kernel: a band of rows of `C` from the same rows of `A` and all of `B`.
///
/// `a_rows` holds `r` rows of `A` (`r * k` elements), `b` all of `B` (`k * n`), `c_rows` the
/// same `r` rows of `C` (`r * n`), overwritten. `r` is `c_rows.len() / n` (any number, 0
/// included); when `n` is 0, `C` has no elements and nothing is done.
///
/// # Panics
///
/// When the lengths do not fit together as above.
///
/// ```
/// // Row 1 of [[1, 2], [3, 4]] x [[5, 6], [7, 8]].
/// let mut c1 = [0.0f32; 2];
/// shmpool_kernels::matmul_rows(&[3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], &mut c1, 2, 2);
/// assert_eq!(c1, [43.0, 50.0]);
/// ```
pub fn matmul_rows<T: Float>(a_rows: &[T], b: &[T], c_rows: &mut [T], k: usize, n: usize) {
    if n == 0 {
        assert!(
            c_rows.is_empty() && b.is_empty(),
            "C has columns of zero elements but {} elements",
            c_rows.len()
        );
        return;
    }
    assert!(
        c_rows.len().is_multiple_of(n),
        "a band of C holds whole rows of {n} elements, got {}",
        c_rows.len()
    );
    let rows = c_rows.len() / n;
    assert!(
        a_rows.len() == rows * k && b.len() == k * n,
        "a band of {rows} rows needs {} elements of A and {} of B, got {} and {}",
        rows * k,
        k * n,
        a_rows.len(),
        b.len()
    );
    c_rows.fill(T::ZERO);
    for p0 in (0..k).step_by(KC) {
        let p1 = (p0 + KC).min(k);
        for j0 in (0..n).step_by(NC) {
            let j1 = (j0 + NC).min(n);
            let band = Band { a: a_rows, b, k, n, p0, p1 };
            let mut i = 0;
            while i + MR <= rows {
                band.row_tiles::<MR>(c_rows, i, j0, j1);
                i += MR;
            }
            while i < rows {
                band.row_tiles::<1>(c_rows, i, j0, j1);
                i += 1;
            }
        }
    }
}

/// One panel of the product: rows `p0..p1` of `B` against columns `p0..p1` of the band of `A`.
struct Band<'a, T> {
    a: &'a [T],
    b: &'a [T],
    k: usize,
    n: usize,
    p0: usize,
    p1: usize,
}

impl<T: Float> Band<'_, T> {
    /// Rows `i..i + R` of `C`, columns `j0..j1`, in tiles `NR` wide and then one wide.
    #[inline(always)]
    fn row_tiles<const R: usize>(&self, c: &mut [T], i: usize, j0: usize, j1: usize) {
        let mut j = j0;
        while j + NR <= j1 {
            self.tile::<R, NR>(c, i, j);
            j += NR;
        }
        while j < j1 {
            self.tile::<R, 1>(c, i, j);
            j += 1;
        }
    }

    /// `C[i..i+R][j..j+W] += A[i..i+R][p0..p1] x B[p0..p1][j..j+W]`, the tile summed in
    /// registers.
    #[inline(always)]
    fn tile<const R: usize, const W: usize>(&self, c: &mut [T], i: usize, j: usize) {
        let len = self.p1 - self.p0;
        let a: [&[T]; R] = std::array::from_fn(|r| {
            let start = (i + r) * self.k + self.p0;
            &self.a[start..start + len]
        });
        let mut acc = [[T::ZERO; W]; R];
        #[allow(clippy::needless_range_loop)] // `q` indexes `R` rows of `A` and a row of `B`
        for q in 0..len {
            let start = (self.p0 + q) * self.n + j;
            let b: &[T; W] = self.b[start..start + W].try_into().expect("W elements");
            for r in 0..R {
                let av = a[r][q];
                for w in 0..W {
                    acc[r][w] += av * b[w];
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let start = (i + r) * self.n + j;
            for (x, s) in c[start..start + W].iter_mut().zip(acc) {
                *x += *s;
            }
        }
    }
}

/// Rows of `C` in one band of the parallel drivers: a multiple of the register tile's height,
/// about eight bands per thread, at least one tile.
pub(crate) fn band_rows(m: usize, threads: usize) -> usize {
    m.div_ceil(8 * threads.max(1)).next_multiple_of(MR).max(MR)
}

/// [`matmul`] in rayon's current pool: bands of rows of `C` run the same block kernel
/// ([`matmul_rows`]) in threads; the result is identical bit for bit to [`matmul`]'s.
///
/// # Errors
///
/// [`DimsError::Matmul`](crate::DimsError::Matmul) when a slice's length does not fit `dims`
/// (nothing is computed).
///
/// ```
/// use shmpool_kernels::{MatDims, matmul_rayon};
/// let (a, b) = ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
/// let mut c = [0.0f64; 4];
/// matmul_rayon(&a, &b, &mut c, MatDims::new(2, 2, 2))?;
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// # Ok::<(), shmpool_kernels::DimsError>(())
/// ```
pub fn matmul_rayon<T: Float>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    dims: MatDims,
) -> Result<(), crate::DimsError> {
    use rayon::prelude::*;
    dims.check(a.len(), b.len(), c.len())?;
    let (m, k, n) = dims.get();
    if m == 0 || n == 0 {
        return Ok(());
    }
    let rows = band_rows(m, rayon::current_num_threads());
    c.par_chunks_mut(rows * n).enumerate().for_each(|(i, band)| {
        let first = i * rows;
        let a_band = &a[first * k..(first + band.len() / n) * k];
        matmul_rows(a_band, b, band, k, n);
    });
    Ok(())
}
