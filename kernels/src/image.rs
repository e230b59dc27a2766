//! Image kernels over row-major grayscale images stored flat in a shared array.
//!
//! A pool hands a stencil kernel a window of the input (its chunk plus `radius` elements each
//! side, clipped at the image's ends), the offset of its chunk in that window, and its chunk of
//! the output. For a 2-D neighbourhood the radius is whole rows (`W` elements per row of
//! neighbours), and chunks must start on row boundaries: give the pool a chunk size that is a
//! multiple of `W` (`Pool::set_chunk_size(Some(rows * W))`). The width is a const parameter
//! because kernels are plain `fn` items: they capture nothing.

/// 3x3 box blur of an image `W` pixels wide: each output pixel is the mean of the input pixels in
/// its 3x3 neighbourhood that lie inside the image (edges average fewer pixels).
///
/// `win` is the input from one row above the chunk to one row below it (clipped at the image's
/// first and last rows), `off` the index in `win` of the chunk's first pixel, and `out` the
/// chunk, which starts on a row boundary. As a stencil: `pool.stencil(&img, &mut out, W,
/// box_blur3x3::<W>)`.
///
/// ```
/// // A 3x3 image, one chunk: the centre becomes the mean of all nine pixels.
/// let img = [0.0f32, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0];
/// let mut out = [0.0f32; 9];
/// shmpool_kernels::box_blur3x3::<3>(&img, 0, &mut out);
/// assert_eq!(out[4], 1.0);
/// assert_eq!(out[0], 9.0 / 4.0); // a corner averages its 4 in-image neighbours
/// ```
pub fn box_blur3x3<const W: usize>(win: &[f32], off: usize, out: &mut [f32]) {
    for (k, o) in out.iter_mut().enumerate() {
        let i = off + k;
        let col = k % W; // the chunk starts at column 0
        let (c0, c1) = (col.saturating_sub(1), (col + 1).min(W - 1));
        let mut acc = 0.0f32;
        let mut n = 0u32;
        for row_start in [i.checked_sub(W), Some(i), Some(i + W).filter(|&j| j < win.len())]
            .into_iter()
            .flatten()
            .map(|j| j - col)
        {
            for c in c0..=c1 {
                acc += win[row_start + c];
                n += 1;
            }
        }
        *o = acc / n as f32;
    }
}

/// Brightness and contrast in place: `p = (p - 0.5) * contrast + 0.5 + brightness`, clamped to
/// `[0, 1]`, for pixels in `[0, 1]`.
///
/// ```
/// let mut px = [0.5f32, 1.0];
/// shmpool_kernels::brighten(&mut px);
/// assert_eq!(px, [0.6, 1.0]);
/// ```
pub fn brighten(px: &mut [f32]) {
    const BRIGHTNESS: f32 = 0.1;
    const CONTRAST: f32 = 1.2;
    for p in px {
        *p = ((*p - 0.5) * CONTRAST + 0.5 + BRIGHTNESS).clamp(0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blur of a whole image in one chunk.
    fn blur_whole<const W: usize>(img: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; img.len()];
        box_blur3x3::<W>(img, 0, &mut out);
        out
    }

    #[test]
    fn chunked_blur_equals_whole_image_blur() {
        const W: usize = 7;
        let h = 9;
        let img: Vec<f32> = (0..W * h).map(|i| ((i * 37) % 11) as f32).collect();
        let whole = blur_whole::<W>(&img);
        // Chunks of 2 rows, each given one row of halo either side, as a pool's stencil does.
        for start_row in (0..h).step_by(2) {
            let rows = 2.min(h - start_row);
            let lo = (start_row * W).saturating_sub(W);
            let hi = ((start_row + rows) * W + W).min(img.len());
            let mut out = vec![0.0; rows * W];
            box_blur3x3::<W>(&img[lo..hi], start_row * W - lo, &mut out);
            assert_eq!(out, whole[start_row * W..(start_row + rows) * W], "rows from {start_row}");
        }
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = vec![0.25f32; 5 * 4];
        assert!(blur_whole::<5>(&img).iter().all(|&p| (p - 0.25).abs() < 1e-6));
    }
}
