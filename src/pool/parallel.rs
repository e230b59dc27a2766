//! The data-parallel operations: run a `fn` kernel in place over disjoint chunks of shared
//! arrays. Only the job descriptor (addresses, handles, sizes) and chunk indices travel.
//!
//! Kernels are `fn` pointers. A closure that captures nothing coerces to one; a closure that
//! captures would read memory of the parent that a worker does not share, so it is refused at
//! compile time:
//!
//! ```compile_fail,E0308
//! let mut pool = shmpool::Pool::new(2).unwrap();
//! let mut a = shmpool::SharedArray::<f64>::zeroed(100).unwrap();
//! let factor = 3.0;
//! // error: closures can only be coerced to `fn` types if they do not capture any variables
//! pool.for_each_chunk(&mut a, |c| c.iter_mut().for_each(|x| *x *= factor)).unwrap();
//! ```

use bytemuck::Pod;

use super::control::SCRATCH_BYTES;
use super::job::JobHandle;
use super::job_builder::InlineArray;
use super::kernel::{self, Trampoline};
use super::publish::{ArraySpec, JobSpec, first_arrays};
use super::state::Pool;
use crate::array::SharedArray;
use crate::error::{Error, Result};

impl Pool {
    fn run_sync(&mut self, spec: &JobSpec) -> Result<()> {
        self.check_owner()?;
        if spec.len == 0 {
            return Ok(());
        }
        self.publish(spec)?;
        // `wait_job` returns only once the job is done, or after terminating the pool (every
        // worker reaped): either way no worker touches the caller's arrays after this.
        self.wait_job(None)?;
        self.take_outcome()
    }

    /// Runs `kernel` on every chunk of `array`, in place, in the workers.
    ///
    /// The caller's `&mut` borrow lasts until every chunk is done, so nothing else can touch
    /// the array meanwhile; the chunks are disjoint, so no two workers touch the same element.
    ///
    /// Like a kernel job ([`Pool::job`]), an operation touching fewer bytes (all its arrays
    /// together) than the pool's
    /// [inline threshold](crate::pool::PoolBuilder::inline_threshold) runs in the caller,
    /// chunk by chunk, on the same chunks (so with the same results, bit for bit): a kernel
    /// that crashes its process then takes the caller with it, where a worker would be
    /// replaced and the call fail with [`Error::WorkerDied`]; a pool built with
    /// `.inline_threshold(0)` keeps every call in the workers. The same holds for
    /// [`zip`](Pool::zip), [`map_reduce`](Pool::map_reduce) and [`stencil`](Pool::stencil);
    /// [`for_each_chunk_async`](Pool::for_each_chunk_async) always runs in the workers.
    ///
    /// # Errors
    ///
    /// [`Error::KernelPanicked`] (the other chunks still ran), [`Error::WorkerDied`] (a worker
    /// died on a chunk and no retry was left), [`Error::PoolNotRunning`].
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
    /// pool.for_each_chunk(&mut a, |c| c.iter_mut().for_each(|x| *x = *x * 1.0001 + 0.5))?;
    /// assert_eq!(a[0], 0.5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_chunk<T: Pod>(
        &mut self,
        array: &mut SharedArray<T>,
        kernel: fn(&mut [T]),
    ) -> Result<()> {
        let len = array.len();
        if len > 0 && self.is_small(len.saturating_mul(size_of::<T>())) {
            let chunk_size = self.chunk_size_quick(len, size_of::<T>());
            let arrays = [InlineArray::shared_write(0, array)];
            let tramp = kernel::for_each::<T> as Trampoline;
            // SAFETY: `for_each::<T>` takes a `fn(&mut [T])` and writes slot 0, the caller's
            // array, borrowed exclusively for this call.
            return unsafe {
                self.run_plain_inline(&arrays, tramp, kernel as usize, len, chunk_size, 0)
            };
        }
        let spec = self.spec_for_each(array, kernel);
        self.run_sync(&spec)
    }

    fn spec_for_each<T: Pod>(&self, array: &SharedArray<T>, kernel: fn(&mut [T])) -> JobSpec {
        let len = array.len();
        JobSpec {
            trampoline: kernel::for_each::<T> as Trampoline as usize,
            kernel: kernel as usize,
            len,
            chunk_size: self.chunk_size_quick(len, size_of::<T>()),
            radius: 0,
            arrays: first_arrays([
                ArraySpec::Handle(array.handle(), len),
                ArraySpec::None,
                ArraySpec::None,
                ArraySpec::None,
            ]),
            results: None,
            stages: None,
            streamed: false,
        }
    }

    /// Like [`for_each_chunk`](Pool::for_each_chunk), in the background: the handle owns the
    /// array while the job runs, reports progress, and gives the array back from
    /// [`JobHandle::wait`].
    ///
    /// # Errors
    ///
    /// [`Error::PoolNotRunning`], or OS errors replacing a dead worker.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::<u32>::zeroed(1 << 20)?;
    /// let mut job = pool.for_each_chunk_async(a, |c| c.fill(7))?;
    /// let (_done, total) = job.progress();
    /// assert!(total > 0);
    /// let a = job.wait()?;
    /// assert_eq!(a[12345], 7);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_chunk_async<T: Pod>(
        &mut self,
        array: SharedArray<T>,
        kernel: fn(&mut [T]),
    ) -> Result<JobHandle<'_, SharedArray<T>>> {
        self.check_owner()?;
        let spec = self.spec_for_each(&array, kernel);
        let job = if spec.len > 0 { self.publish(&spec)? } else { 0 };
        Ok(JobHandle::new(self, job, Box::new(move |_: &Pool| array)))
    }

    /// `out[i] = f(a[i], b[i])`, chunk-wise: `kernel(&a[r], &b[r], &mut out[r])` for each chunk
    /// range `r`. The three arrays must have the same length. Small calls run in the caller
    /// (see [`for_each_chunk`](Pool::for_each_chunk)).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], and as for [`for_each_chunk`](Pool::for_each_chunk).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::<f32>::from_fn(1000, |i| i as f32)?;
    /// let b = shmpool::SharedArray::<f32>::from_fn(1000, |_| 2.0)?;
    /// let mut out = shmpool::SharedArray::<f32>::zeroed(1000)?;
    /// pool.zip(&a, &b, &mut out, |a, b, o| {
    ///     for i in 0..o.len() {
    ///         o[i] = a[i] * b[i];
    ///     }
    /// })?;
    /// assert_eq!(out[10], 20.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zip<A: Pod, B: Pod, C: Pod>(
        &mut self,
        a: &SharedArray<A>,
        b: &SharedArray<B>,
        out: &mut SharedArray<C>,
        kernel: fn(&[A], &[B], &mut [C]),
    ) -> Result<()> {
        let len = out.len();
        if a.len() != len || b.len() != len {
            return Err(Error::LengthMismatch { lens: vec![a.len(), b.len(), len] });
        }
        let elem = size_of::<A>().max(size_of::<B>()).max(size_of::<C>());
        let chunk_size = self.chunk_size_quick(len, elem);
        let bytes = size_of::<A>() + size_of::<B>() + size_of::<C>();
        if len > 0 && self.is_small(len.saturating_mul(bytes)) {
            let arrays = [
                InlineArray::shared_read(0, a),
                InlineArray::shared_read(1, b),
                InlineArray::shared_write(2, out),
            ];
            let tramp = kernel::zip::<A, B, C> as Trampoline;
            // SAFETY: `zip::<A, B, C>` takes this `fn`, reads slots 0 and 1 (borrowed shared)
            // and writes slot 2 (borrowed exclusively, so another array than the inputs).
            return unsafe {
                self.run_plain_inline(&arrays, tramp, kernel as usize, len, chunk_size, 0)
            };
        }
        let spec = JobSpec {
            trampoline: kernel::zip::<A, B, C> as Trampoline as usize,
            kernel: kernel as usize,
            len,
            chunk_size,
            radius: 0,
            arrays: first_arrays([
                ArraySpec::Handle(a.handle(), len),
                ArraySpec::Handle(b.handle(), len),
                ArraySpec::Handle(out.handle(), len),
                ArraySpec::None,
            ]),
            results: None,
            stages: None,
            streamed: false,
        };
        self.run_sync(&spec)
    }

    /// Maps every chunk of `array` to one `R` in the workers, then folds the partials in chunk
    /// order with `reduce` in the caller (so the result does not depend on scheduling). An empty
    /// array gives `map(&[])`, computed in the caller. Small calls run in the caller, on the
    /// same chunks (see [`for_each_chunk`](Pool::for_each_chunk)).
    ///
    /// # Errors
    ///
    /// As for [`for_each_chunk`](Pool::for_each_chunk), and OS errors creating the array of
    /// partials.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::<u64>::from_fn(1000, |i| i as u64)?;
    /// let sum = pool.map_reduce(&a, |c| c.iter().sum::<u64>(), |x, y| x + y)?;
    /// assert_eq!(sum, 999 * 1000 / 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_reduce<T: Pod, R: Pod>(
        &mut self,
        array: &SharedArray<T>,
        map: fn(&[T]) -> R,
        reduce: fn(R, R) -> R,
    ) -> Result<R> {
        self.check_owner()?;
        let len = array.len();
        if len == 0 {
            return Ok(map(&[]));
        }
        let chunk_size = self.chunk_size_quick(len, size_of::<T>());
        // One chunk (the common inline case) without a division.
        let chunks = if chunk_size >= len { 1 } else { Self::chunks_of(len, chunk_size) };
        if self.is_small(len.saturating_mul(size_of::<T>())) {
            // The same chunks and partials as in the workers, folded in the same order; one
            // chunk (any array up to 64 KiB) keeps its partial on the stack, not in a `Vec`.
            let (mut one, mut many) = ([<R as bytemuck::Zeroable>::zeroed()], Vec::new());
            let partials: &mut [R] = if chunks == 1 {
                &mut one
            } else {
                many.resize(chunks, <R as bytemuck::Zeroable>::zeroed());
                &mut many
            };
            let arrays =
                [InlineArray::shared_read(0, array), InlineArray::write(3, &mut *partials)];
            let tramp = kernel::map::<T, R> as Trampoline;
            // SAFETY: `map::<T, R>` takes a `fn(&[T]) -> R`, reads slot 0 (borrowed shared) and
            // writes element `index` of slot 3, this call's own `chunks` partials.
            unsafe { self.run_plain_inline(&arrays, tramp, map as usize, len, chunk_size, 0) }?;
            let (&first, rest) = partials.split_first().expect("at least one chunk");
            return Ok(rest.iter().fold(first, |x, &y| reduce(x, y)));
        }
        // One partial per chunk: in the control block's scratch area when they fit (no segment
        // to create or map), else in an array of their own.
        let in_scratch = chunks * size_of::<R>() <= SCRATCH_BYTES && align_of::<R>() <= 8;
        let partials = if in_scratch { None } else { Some(SharedArray::<R>::zeroed(chunks)?) };
        let spec = JobSpec {
            trampoline: kernel::map::<T, R> as Trampoline as usize,
            kernel: map as usize,
            len,
            chunk_size,
            radius: 0,
            arrays: first_arrays([
                ArraySpec::Handle(array.handle(), len),
                ArraySpec::None,
                ArraySpec::None,
                match &partials {
                    Some(p) => ArraySpec::Handle(p.handle(), chunks),
                    None => ArraySpec::Scratch(0, chunks, size_of::<R>()),
                },
            ]),
            results: None,
            stages: None,
            streamed: false,
        };
        if in_scratch {
            // No job may be in flight while the scratch area is reused.
            self.check_running()?;
            self.finish_active()?;
        }
        self.run_sync(&spec)?;
        let read = |i: usize| match &partials {
            Some(p) => p[i],
            None => {
                assert!(i < chunks);
                // SAFETY: every chunk is done, so the workers' writes of the partials happened
                // before this read (acquire on `done`) and nothing writes them any more; the
                // scratch area is 8-aligned and `chunks` partials fit in it (checked above).
                unsafe { self.ctl.scratch_ptr().cast::<R>().add(i).read() }
            }
        };
        let mut it = (0..chunks).map(read);
        let first = it.next().expect("at least one chunk");
        Ok(it.fold(first, reduce))
    }

    /// A stencil: for each chunk `r` of `output`, `kernel(window, offset, &mut output[r])`,
    /// where `window` is `input` over `r` widened by up to `radius` elements each side (clipped
    /// at the array's ends) and `window[offset]` is `input[r.start]`. `input` and `output` must
    /// have the same length. Small calls run in the caller (see
    /// [`for_each_chunk`](Pool::for_each_chunk)).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], and as for [`for_each_chunk`](Pool::for_each_chunk).
    ///
    /// ```no_run
    /// // A 3-point moving average.
    /// fn blur(win: &[f64], off: usize, out: &mut [f64]) {
    ///     for (k, o) in out.iter_mut().enumerate() {
    ///         let i = off + k;
    ///         let lo = i.saturating_sub(1);
    ///         let hi = (i + 2).min(win.len());
    ///         *o = win[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
    ///     }
    /// }
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let input = shmpool::SharedArray::<f64>::from_fn(100, |i| i as f64)?;
    /// let mut out = shmpool::SharedArray::<f64>::zeroed(100)?;
    /// pool.stencil(&input, &mut out, 1, blur)?;
    /// assert_eq!(out[50], 50.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn stencil<T: Pod, U: Pod>(
        &mut self,
        input: &SharedArray<T>,
        output: &mut SharedArray<U>,
        radius: usize,
        kernel: fn(&[T], usize, &mut [U]),
    ) -> Result<()> {
        let len = output.len();
        if input.len() != len {
            return Err(Error::LengthMismatch { lens: vec![input.len(), len] });
        }
        let chunk_size = self.chunk_size_quick(len, size_of::<T>().max(size_of::<U>()));
        if len > 0 && self.is_small(len.saturating_mul(size_of::<T>() + size_of::<U>())) {
            let arrays = [InlineArray::shared_read(0, input), InlineArray::shared_write(2, output)];
            let tramp = kernel::stencil::<T, U> as Trampoline;
            // SAFETY: `stencil::<T, U>` takes this `fn`, reads slot 0 (borrowed shared) and
            // writes slot 2 (borrowed exclusively, so another array than the input).
            return unsafe {
                self.run_plain_inline(&arrays, tramp, kernel as usize, len, chunk_size, radius)
            };
        }
        let spec = JobSpec {
            trampoline: kernel::stencil::<T, U> as Trampoline as usize,
            kernel: kernel as usize,
            len,
            chunk_size,
            radius,
            arrays: first_arrays([
                ArraySpec::Handle(input.handle(), len),
                ArraySpec::None,
                ArraySpec::Handle(output.handle(), len),
                ArraySpec::None,
            ]),
            results: None,
            stages: None,
            streamed: false,
        };
        self.run_sync(&spec)
    }
}
