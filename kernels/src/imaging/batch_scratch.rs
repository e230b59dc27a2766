//! `Scratch`: the shared arrays a batch that changes the images' size stages them through (and
//! one image's blur bands), kept from one run to the next.

use bytemuck::Pod;
use shmpool::SharedArray;

/// The scratch arrays of [`apply_into_with`](super::apply_into_with), kept between runs.
///
/// A job's arrays must all have one length (the pool's rule), so a pipeline that changes the
/// images' size stages the side with the smaller images through an array of `n` slots of the
/// larger size. Made fresh for each run, that array costs more than the copies it serves: its
/// pages are allocated, zeroed and mapped by every worker anew (on 64 1024x768 RGB images
/// through `resize=640x480; blur=1.5`, 151 MB each run, most of the batch's overhead over
/// sequential code). A `Scratch` reused for runs of the same sizes keeps the array, already
/// mapped in the workers. It holds the memory until it is dropped ([`bytes`](Scratch::bytes)
/// says how much); a run of other sizes replaces it, and one that needs none lets it go. One
/// image blurred or sharpened in bands of rows uses it too (its bands' copies).
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::imaging::batch::{self, Scratch};
/// let mut pool = shmpool::Pool::new(2)?;
/// let pipeline = "resize=16x12; blur=1".parse()?;
/// let photos = SharedArray::<u8>::zeroed_shape(&[4, 48, 64, 3])?;
/// let mut small = SharedArray::<u8>::zeroed_shape(&[4, 12, 16, 3])?;
/// let mut scratch = Scratch::new();
/// for _frame in 0..3 {
///     batch::apply_into_with(&mut pool, &pipeline, &photos, &mut small, &mut scratch)?;
/// }
/// assert_eq!(scratch.bytes(), 4 * 48 * 64 * 3); // the output's 4 slots of input size
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Scratch<T: Pod> {
    pub(crate) input: Option<SharedArray<T>>,
    pub(crate) output: Option<SharedArray<T>>,
}

impl<T: Pod> Scratch<T> {
    /// An empty scratch: the first run makes what it needs.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::batch::Scratch::<f32>::new().bytes(), 0);
    /// ```
    pub fn new() -> Scratch<T> {
        Scratch { input: None, output: None }
    }

    /// The bytes of shared memory it holds.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::batch::Scratch::<u8>::default().bytes(), 0);
    /// ```
    pub fn bytes(&self) -> usize {
        [&self.input, &self.output]
            .iter()
            .filter_map(|a| a.as_ref())
            .map(|a| a.len())
            .sum::<usize>()
            * size_of::<T>()
    }
}

impl<T: Pod> Default for Scratch<T> {
    fn default() -> Scratch<T> {
        Scratch::new()
    }
}

/// The array in `slot`, `len` elements long: the one there if it has that length, else a new
/// one (zeroed; the one there is dropped first, so the two are never held at once).
pub(crate) fn fit<T: Pod>(
    slot: &mut Option<SharedArray<T>>,
    len: usize,
) -> shmpool::Result<&mut SharedArray<T>> {
    if slot.as_ref().is_some_and(|a| a.len() != len || a.shape().len() != 1) {
        *slot = None;
    }
    if slot.is_none() {
        *slot = Some(SharedArray::<T>::zeroed(len)?);
    }
    Ok(slot.as_mut().expect("filled just above"))
}

/// [`fit`] where the run `needs` the array; else the slot let go and `None`.
pub(crate) fn fit_if<T: Pod>(
    slot: &mut Option<SharedArray<T>>,
    len: usize,
    needs: bool,
) -> shmpool::Result<Option<&mut SharedArray<T>>> {
    if !needs {
        *slot = None;
        return Ok(None);
    }
    fit(slot, len).map(Some)
}
