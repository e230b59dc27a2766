//! Kernel jobs: [`Pool::job`] and its [`JobBuilder`]: a parameter block, any number of input
//! and output arrays (up to 16), one or more stages of `fn(&Chunk<P>)`, run in the workers or,
//! below the pool's inline threshold, in the caller (same kernels, same chunks).
//!
//! A job is published once per **group** of stages: a group starts at the first stage and at
//! every stage with a halo, and runs each chunk through all its stages in turn (fused: the
//! chunk is still in cache). A halo stage reads beyond its chunk, so it waits for every chunk
//! of the group before it: the parent publishes the next group only when the previous one is
//! done (README.md, "Kernel jobs"). The parameter block and the per-chunk partials stay in the
//! control block's scratch area across the groups.
//!
//! A stage reaches data only through the job's arrays and parameter block: a closure that
//! captures is not a `fn` and does not compile:
//!
//! ```compile_fail,E0308
//! let mut pool = shmpool::Pool::new(1).unwrap();
//! let mut a = shmpool::SharedArray::<f64>::zeroed(100).unwrap();
//! let factor = 3.0;
//! // error: closures can only be coerced to `fn` types if they do not capture any variables
//! let job = pool.job(()).output(&mut a).unwrap();
//! job.stage(|c| c.output::<f64>(0).iter_mut().for_each(|x| *x *= factor)).run().unwrap();
//! ```

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::mem::{align_of, size_of};
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytemuck::Pod;

use super::chunk::{Chunk, type_desc};
use super::control::{
    AccessMask, MAX_ARRAYS, MAX_CHUNKS, MAX_DIMS, MAX_JOB_ARRAYS, MAX_PARAMS_BYTES, MAX_STAGES,
    PARAMS_SLOT, PARTIALS_SLOT, SCRATCH_BYTES,
};
use super::kernel::{ElemType, Span, Trampoline, Views, take_panic};
use super::publish::{ArraySpec, JobSpec, StageSpec};
use super::stage::run_stages;
use super::state::Pool;
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::segment::SegmentHandle;

/// The most bytes (of all the job's arrays together) in one default chunk of a job whose
/// stages fuse: the fused stages then find the chunk in the core's L2 cache.
const FUSED_CHUNK_BYTES: usize = 256 << 10;

/// The pace at which the inline rule turns a job's work hint (nanoseconds per element) into
/// bytes: an in-place `f64` kernel run inline goes through about 50 bytes per nanosecond
/// (`benches/kernels_api.rs`: 4 Ki elements, 32 KiB, in 0.6 us), so 1 ns of work weighs as
/// much as 50 bytes of a memory-bound job.
const INLINE_BYTES_PER_NS: f64 = 50.0;

/// The buffers a job builder needs, kept per thread between jobs: a small job runs inline in
/// a couple of hundred nanoseconds, where a `malloc` and a `free` per `Vec`, a 2 KiB `Views`
/// cleared per job, or a builder of a few hundred bytes moved by every call would be most of
/// it. A builder takes the thread's box (a builder made while another holds it, e.g. inside
/// an inline kernel, makes its own) and hands it back, cleared, when it is dropped.
struct Bufs {
    inputs: Vec<JobArray>,
    outputs: Vec<JobArray>,
    /// Stages added (`plan` refuses more than `MAX_STAGES`). The first `MAX_STAGES` kernels
    /// (`StageFn<P>` addresses) are `views.job.stages`, where a job run inline reads them.
    stages: usize,
    /// Their halo radii (rows).
    radii: [usize; MAX_STAGES],
    /// The shape given with `shape` (`shape_given`).
    shape: Vec<usize>,
    /// The views of a job run inline; every pointer null between jobs.
    views: Views,
    /// The builder's settings, reset between jobs (`Settings::default`).
    set: Settings,
}

/// A job's settings besides its arrays and stages.
#[derive(Clone, Copy, Default)]
struct Settings {
    chunk_size: Option<usize>,
    shape_given: bool,
    /// Some array has more than one dimension (`plan` then works out the shape in full).
    shaped: bool,
    /// The stages with a halo (bit `i` for stage `i`; `plan` refuses more than `MAX_STAGES`).
    halos: u32,
    inline: Option<bool>,
    /// Nanoseconds of work per element, all stages together (`cost_per_element`).
    cost_ns: f64,
    /// The job's items, when its arrays hold a whole number of elements per item (`items`).
    items: Option<usize>,
}

thread_local! {
    static SPARE: Cell<Option<Box<Bufs>>> = const { Cell::new(None) };
}

impl Bufs {
    /// Adds a stage (a `StageFn`'s address) with its halo radius: to the list `plan` checks
    /// and publishes, and to the inline views' stage table, where a job run inline reads it
    /// (past `MAX_STAGES` stages only to the list, which `plan` then refuses).
    fn push_stage(&mut self, kernel: usize, radius: usize) {
        let i = self.stages;
        if i < MAX_STAGES {
            (self.views.job.stages[i], self.radii[i]) = (kernel, radius);
            if radius > 0 {
                self.set.halos |= 1 << i;
            }
        }
        self.stages = i.saturating_add(1);
    }

    /// Stage `i`'s kernel and halo radius (`i < MAX_STAGES`).
    fn stage(&self, i: usize) -> (usize, usize) {
        (self.views.job.stages[i], self.radii[i])
    }
}

/// Takes this thread's buffers (new ones if another builder holds them).
fn take_bufs() -> Box<Bufs> {
    SPARE.try_with(Cell::take).ok().flatten().unwrap_or_else(|| {
        Box::new(Bufs {
            inputs: Vec::new(),
            outputs: Vec::new(),
            stages: 0,
            radii: [0; MAX_STAGES],
            shape: Vec::new(),
            views: Views::default(),
            set: Settings::default(),
        })
    })
}

/// Hands buffers back, cleared, for the next job on this thread.
fn give_back(mut b: Box<Bufs>) {
    b.inputs.clear();
    b.outputs.clear();
    b.stages = 0;
    b.shape.clear();
    if b.shape.capacity() > MAX_DIMS {
        // A shape of more dimensions than a job may have (which `plan` refused) keeps no
        // buffer of its size on the thread for good.
        b.shape = Vec::new();
    }
    b.set = Settings::default();
    // A thread being torn down drops them instead.
    let _ = SPARE.try_with(|s| s.set(Some(b)));
}

/// One array of a job, as the builder took it: plain data (`Copy`), so taking one and clearing
/// the list cost a few stores. The handle is made only when the job goes to the workers.
#[derive(Clone, Copy)]
struct JobArray {
    /// The caller's `SharedArray<T>`, borrowed by the builder (shared or unique) for `'a`.
    array: *const (),
    /// `handle_of::<T>`: the array's handle, for a job published to the workers.
    handle: unsafe fn(*const ()) -> SegmentHandle,
    /// Its segment's nonce: two views of one segment have the same (the aliasing check).
    nonce: u64,
    /// The caller's view (for a job run inline); only outputs are written through it.
    ptr: *mut u8,
    len: usize,
    elem_size: usize,
    /// Its element type, described only if a kernel asks for another one.
    ty: ElemType,
    /// Its shape (`[len]` for a 1-D array): the array's own, which the builder borrows for as
    /// long as it holds this entry (entries are cleared before the builder's buffers are kept).
    shape: *const [usize],
    /// "input" or "output", and its index there (for messages).
    name: (&'static str, usize),
}

impl JobArray {
    /// `array` as a job takes it, seen through `ptr` (its first element: from a shared borrow
    /// for an input, a unique one for an output, which the job writes through).
    fn of<T: Pod>(array: &SharedArray<T>, ptr: *mut u8, name: (&'static str, usize)) -> JobArray {
        JobArray {
            array: (array as *const SharedArray<T>).cast::<()>(),
            handle: handle_of::<T>,
            nonce: array.nonce(),
            ptr,
            len: array.len(),
            elem_size: size_of::<T>(),
            ty: (std::any::TypeId::of::<T>(), type_desc::<T>),
            shape: array.shape(),
            name,
        }
    }

    fn name(&self) -> String {
        format!("{} {}", self.name.0, self.name.1)
    }

    /// The array's handle, for a job published to the workers.
    fn handle(&self) -> SegmentHandle {
        // SAFETY: `array` is the `SharedArray<T>` of `handle_of::<T>` (`of`), borrowed by the
        // builder that holds this entry, so it is alive.
        unsafe { (self.handle)(self.array) }
    }

    fn shape(&self) -> &[usize] {
        // SAFETY: the builder that holds this entry borrows the array (`&'a` or `&'a mut`), so
        // its shape lives and is not changed while the entry exists.
        unsafe { &*self.shape }
    }
}

/// The handle of the `SharedArray<T>` at `array`.
///
/// # Safety
///
/// `array` points to a live `SharedArray<T>`.
unsafe fn handle_of<T: Pod>(array: *const ()) -> SegmentHandle {
    // SAFETY: per the contract.
    unsafe { &*array.cast::<SharedArray<T>>() }.handle()
}

/// A shape of up to [`MAX_DIMS`] dimensions, kept inline (a job allocates as little as it can:
/// small jobs run inline, where every allocation shows).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Dims {
    d: [usize; MAX_DIMS],
    n: usize,
}

impl Dims {
    /// `dims`, or `None` past [`MAX_DIMS`] dimensions.
    #[inline]
    fn new(dims: &[usize]) -> Option<Dims> {
        if dims.len() > MAX_DIMS {
            return None;
        }
        // Element by element, inlined: built in place, not copied out of a call's frame; a
        // 1-D shape (most jobs) without a `memcpy` call.
        let mut d = [0; MAX_DIMS];
        if let [n] = dims {
            d[0] = *n;
        } else {
            for (x, &y) in d.iter_mut().zip(dims) {
                *x = y;
            }
        }
        Some(Dims { d, n: dims.len() })
    }

    fn as_slice(&self) -> &[usize] {
        &self.d[..self.n]
    }
}

/// A kernel job being built: see [`Pool::job`]. Nothing runs until [`run`](JobBuilder::run) or
/// [`run_reduce`](JobBuilder::run_reduce).
pub struct JobBuilder<'a, P: Pod> {
    pool: &'a mut Pool,
    params: P,
    /// Arrays, stages, shape and views: this thread's (`Bufs`), given back on drop.
    /// (The builder is a few words, the rest lives there: each call of the chain moves it.)
    b: ManuallyDrop<Box<Bufs>>,
    /// The inputs are borrowed shared and the outputs mutably for `'a`.
    _arrays: PhantomData<&'a mut ()>,
}

impl Pool {
    /// Starts a kernel job with the parameter block `params` (any `Pod` of up to 4096 bytes,
    /// copied once per job; every chunk reads it through [`Chunk::params`]). Add arrays with
    /// [`input`](JobBuilder::input) and [`output`](JobBuilder::output) (16 in all), stages with
    /// [`stage`](JobBuilder::stage) and [`stage_halo`](JobBuilder::stage_halo), then
    /// [`run`](JobBuilder::run) or [`run_reduce`](JobBuilder::run_reduce).
    ///
    /// Every chunk of the job runs each stage's kernel, a `fn(&Chunk<P>)` (a `fn` item or a
    /// closure that captures nothing), over the chunk's elements of the arrays. Consecutive
    /// stages without a halo fuse (one pass over memory per chunk); a stage with a halo starts
    /// only once every chunk of the stages before it is done. Jobs touching fewer bytes than
    /// the pool's [inline threshold](crate::pool::PoolBuilder::inline_threshold) run in the
    /// caller, chunk by chunk, through the same kernels: a kernel that crashes its process
    /// (an abort, a signal) then takes the caller with it, where a worker would be replaced
    /// and the job fail with [`Error::WorkerDied`]; `.inline(false)` keeps such a job in the
    /// workers.
    ///
    /// ```
    /// use shmpool::pool::Chunk;
    ///
    /// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct P {
    ///     k: f64,
    /// }
    ///
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
    /// let mut out = shmpool::SharedArray::<f64>::zeroed(1000)?;
    /// pool.job(P { k: 2.0 })
    ///     .input(&a)?
    ///     .output(&mut out)?
    ///     .stage(|c: &Chunk<P>| {
    ///         let (x, y) = (c.input::<f64>(0), c.output::<f64>(0));
    ///         let start = c.range().start as f64;
    ///         for i in 0..x.len() {
    ///             y[i] = x[i] * c.params().k + start;
    ///         }
    ///     })
    ///     .run()?;
    /// assert_eq!(out[0], 0.0);
    /// let total = pool
    ///     .job(())
    ///     .input(&out)?
    ///     .stage(|c: &Chunk<()>| c.set_partial(c.input::<f64>(0).iter().sum::<f64>()))
    ///     .run_reduce(0.0, |x, y| x + y)?;
    /// assert!(total > 0.0);
    /// # drop(pool);
    /// # shmpool::process::shutdown_forkserver()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn job<P: Pod>(&mut self, params: P) -> JobBuilder<'_, P> {
        JobBuilder { pool: self, params, b: ManuallyDrop::new(take_bufs()), _arrays: PhantomData }
    }
}

impl<P: Pod> Drop for JobBuilder<'_, P> {
    fn drop(&mut self) {
        // SAFETY: `b` is taken once, here, and the builder is gone after this.
        give_back(unsafe { ManuallyDrop::take(&mut self.b) });
    }
}

impl<'a, P: Pod> JobBuilder<'a, P> {
    /// Checks there is room for one more array.
    fn room(&self) -> Result<()> {
        let count = self.b.inputs.len() + self.b.outputs.len() + 1;
        if count > MAX_JOB_ARRAYS {
            return Err(Error::TooManyArrays { count, max: MAX_JOB_ARRAYS });
        }
        Ok(())
    }

    /// Adds a read-only input: `Chunk::input(i)` for the `i`th input added.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyArrays`] past 16 arrays; [`Error::ArrayAliased`] when it is one of the
    /// job's outputs.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let a = shmpool::SharedArray::<u32>::zeroed(10)?;
    /// let job = pool.job(()).input(&a)?.input(&a)?; // an input may be given twice
    /// # drop(job);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn input<T: Pod>(mut self, array: &'a SharedArray<T>) -> Result<JobBuilder<'a, P>> {
        let name = ("input", self.b.inputs.len());
        self.room()?;
        // An array this process inherited through fork is refused here, pooled or inline.
        array.assert_given();
        let nonce = array.nonce();
        if let Some(o) = self.b.outputs.iter().find(|o| o.nonce == nonce) {
            return Err(Error::ArrayAliased {
                first: o.name(),
                second: format!("input {}", name.1),
            });
        }
        self.b.set.shaped |= array.ndim() > 1;
        let ptr = array.as_slice().as_ptr().cast::<u8>().cast_mut();
        self.b.inputs.push(JobArray::of(array, ptr, name));
        Ok(self)
    }

    /// Adds an output: `Chunk::output(j)` for the `j`th output added, the chunk's elements,
    /// writable (and readable: an output can carry data from one stage to the next).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyArrays`] past 16 arrays; [`Error::ArrayAliased`] when it is already an
    /// input or output of the job.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let a = shmpool::SharedArray::<u32>::zeroed(10)?;
    /// let mut b = shmpool::SharedArray::<u32>::zeroed(10)?;
    /// let job = pool.job(()).input(&a)?.output(&mut b)?;
    /// # drop(job);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn output<T: Pod>(mut self, array: &'a mut SharedArray<T>) -> Result<JobBuilder<'a, P>> {
        let name = ("output", self.b.outputs.len());
        self.room()?;
        // An array this process inherited through fork is refused here, pooled or inline.
        array.assert_given();
        let nonce = array.nonce();
        let seen = self.b.inputs.iter().chain(&self.b.outputs);
        if let Some(o) = seen.into_iter().find(|o| o.nonce == nonce) {
            return Err(Error::ArrayAliased {
                first: o.name(),
                second: format!("output {}", name.1),
            });
        }
        self.b.set.shaped |= array.ndim() > 1;
        let ptr = array.as_mut_slice().as_mut_ptr().cast::<u8>();
        self.b.outputs.push(JobArray::of(array, ptr, name));
        Ok(self)
    }

    /// Adds a stage without a halo: it runs on each chunk right after the stage before it,
    /// while the chunk is in cache.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let mut a = shmpool::SharedArray::<f32>::zeroed(10)?;
    /// pool.job(3.0f32)
    ///     .output(&mut a)?
    ///     .stage(|c| c.output::<f32>(0).fill(*c.params()))
    ///     .stage(|c| c.output::<f32>(0).iter_mut().for_each(|x| *x *= 2.0))
    ///     .run()?;
    /// assert_eq!(a[9], 6.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn stage(mut self, kernel: fn(&Chunk<P>)) -> JobBuilder<'a, P> {
        self.b.push_stage(kernel as usize, 0);
        self
    }

    /// Adds a stage with a halo of `radius` rows (elements for 1-D arrays) each side: its
    /// chunks see [`Chunk::input_halo`] and [`Chunk::output_halo`] windows, and it starts only
    /// once every chunk of the stages before it is done. The stages after it, up to the next
    /// halo stage, fuse with it.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let mut a = shmpool::SharedArray::<f64>::zeroed(100)?;
    /// let mut b = shmpool::SharedArray::<f64>::zeroed(100)?;
    /// pool.job(())
    ///     .output(&mut a)?
    ///     .output(&mut b)?
    ///     .stage(|c| {
    ///         let s = c.range().start;
    ///         c.output::<f64>(0).iter_mut().enumerate().for_each(|(k, x)| *x = (s + k) as f64);
    ///     })
    ///     .stage_halo(1, |c| {
    ///         let (win, off) = c.output_halo::<f64>(0);
    ///         for (k, y) in c.output::<f64>(1).iter_mut().enumerate() {
    ///             let i = off + k;
    ///             let (lo, hi) = (i.saturating_sub(1), (i + 2).min(win.len()));
    ///             *y = win[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
    ///         }
    ///     })
    ///     .run()?;
    /// assert_eq!(b[50], 50.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn stage_halo(mut self, radius: usize, kernel: fn(&Chunk<P>)) -> JobBuilder<'a, P> {
        self.b.push_stage(kernel as usize, radius);
        self
    }

    /// Elements per chunk (default: the pool's rule, [`Pool::chunk_size_for`], rounded up to
    /// whole rows). For a shaped job it must be a multiple of the row length.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let mut a = shmpool::SharedArray::<u64>::zeroed(10)?;
    /// pool.job(()).output(&mut a)?.chunk_size(3).stage(|c| {
    ///     let i = c.index() as u64;
    ///     c.output::<u64>(0).fill(i)
    /// }).run()?;
    /// assert_eq!(a[9], 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn chunk_size(mut self, elements: usize) -> JobBuilder<'a, P> {
        self.b.set.chunk_size = Some(elements.max(1));
        self
    }

    /// The job's shape, outer axis first (default: the shape of the first array with more than
    /// one dimension, else the first array's length). Every array must hold as many elements,
    /// and an array with more than one dimension must have exactly this shape; chunks are whole
    /// rows of the outer axis.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let mut img = shmpool::SharedArray::<u8>::zeroed(4 * 6)?;
    /// pool.job(()).output(&mut img)?.shape(&[4, 6]).chunk_size(6).stage(|c| {
    ///     let row = c.rows().start as u8;
    ///     c.output::<u8>(0).fill(row)
    /// }).run()?;
    /// assert_eq!(img[23], 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn shape(mut self, dims: &[usize]) -> JobBuilder<'a, P> {
        self.b.shape.clear();
        self.b.shape.extend_from_slice(dims);
        self.b.set.shape_given = true;
        self
    }

    /// Makes the job `n` items long, each array holding a whole number of elements per item
    /// (its own: an input of `n * 3` RGB bytes and an output of `n` grey ones), instead of
    /// every array having the job's length. Chunks are ranges of items: chunk `[a, b)` sees
    /// elements `[a * k, b * k)` of an array of `k` elements per item, in `Chunk::input`,
    /// `Chunk::output` and (`radius` items each side) the halo windows; `Chunk::range` and
    /// `Chunk::len` count items, and `chunk_size` is in items. For 1-D arrays only.
    ///
    /// # Errors
    ///
    /// At [`run`](JobBuilder::run): [`Error::InvalidArgument`] when an array's length is not a
    /// whole number of items, or the job has a shape or a shaped array.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let rgb = shmpool::SharedArray::<u8>::from_fn(4 * 3, |i| i as u8)?;
    /// let mut grey = shmpool::SharedArray::<u8>::zeroed(4)?;
    /// pool.job(())
    ///     .input(&rgb)?
    ///     .output(&mut grey)?
    ///     .items(4)
    ///     .stage(|c| {
    ///         let (px, out) = (c.input::<u8>(0), c.output::<u8>(0));
    ///         for (o, p) in out.iter_mut().zip(px.chunks_exact(3)) {
    ///             *o = p.iter().map(|&v| v / 3).sum();
    ///         }
    ///     })
    ///     .run()?;
    /// assert_eq!(grey[1], 1 + 4 / 3 + 5 / 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn items(mut self, n: usize) -> JobBuilder<'a, P> {
        self.b.set.items = Some(n);
        self
    }

    /// Runs the job in the caller (`true`) or in the workers (`false`) whatever its size,
    /// instead of by the pool's [inline threshold](crate::pool::PoolBuilder::inline_threshold).
    /// The kernels, chunks and results are the same either way.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let mut a = shmpool::SharedArray::<u8>::zeroed(8)?;
    /// pool.job(()).output(&mut a)?.inline(true).stage(|c| c.output::<u8>(0).fill(1)).run()?;
    /// assert_eq!(a[7], 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn inline(mut self, inline: bool) -> JobBuilder<'a, P> {
        self.b.set.inline = Some(inline);
        self
    }

    /// Says how long the job's stages take per element, all together, in nanoseconds on one
    /// core (default 0: the job is memory-bound and its bytes measure it). The pool runs a job
    /// in the caller when it is small ([`PoolBuilder::inline_threshold`]): its size is the
    /// bytes of its arrays times its stages, or its work at `INLINE_BYTES_PER_NS` = 50 bytes
    /// per nanosecond (the pace of an in-place `f64` kernel run inline), whichever is larger.
    /// A compute-bound job (a polynomial, a Monte-Carlo sample, a row of a product) gives its
    /// cost here so that a few bytes of heavy work still go to the workers. A negative or NaN
    /// hint counts as 0.
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let mut a = shmpool::SharedArray::<u32>::zeroed(1 << 20)?; // 4 MiB: under the threshold
    /// pool.job(())
    ///     .output(&mut a)?
    ///     .cost_per_element(200.0) // 1 Mi elements x 200 ns: 0.2 s of work, to the workers
    ///     .stage(|c| c.output::<u32>(0).fill(std::process::id()))
    ///     .run()?;
    /// assert_ne!(a[0], std::process::id());
    /// # drop(pool);
    /// # shmpool::process::shutdown_forkserver()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// [`PoolBuilder::inline_threshold`]: crate::pool::PoolBuilder::inline_threshold
    pub fn cost_per_element(mut self, ns: f64) -> JobBuilder<'a, P> {
        self.b.set.cost_ns = if ns > 0.0 { ns } else { 0.0 };
        self
    }

    /// Runs the job and waits for it.
    ///
    /// # Errors
    ///
    /// Before anything runs: [`Error::InvalidArgument`] (no stage; no array and no shape; too
    /// many dimensions; a parameter block aligned to more than 8 bytes),
    /// [`Error::TooManyStages`], [`Error::ParamsTooLarge`], [`Error::ShapeMismatch`],
    /// [`Error::ChunkSplitsRows`], [`Error::HaloTooLarge`]. While it runs, as for
    /// [`Pool::for_each_chunk`]: [`Error::KernelPanicked`] (including a kernel that asked for
    /// the wrong element type or took an output twice; the job stops after that chunk's group
    /// of stages), [`Error::WorkerDied`], [`Error::PoolNotRunning`].
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(1)?;
    /// let mut a = shmpool::SharedArray::<u8>::zeroed(8)?;
    /// let e = pool.job(()).output(&mut a)?.stage(|c| c.output::<u16>(0)[0] = 1).run();
    /// assert!(matches!(e, Err(shmpool::Error::KernelPanicked { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn run(self) -> Result<()> {
        self.execute::<()>(None).map(drop)
    }

    /// Runs the job and folds the chunks' partials ([`Chunk::set_partial`]) in chunk order with
    /// `combine`, starting from `identity` (a chunk that sets none contributes `identity`), so
    /// the result does not depend on scheduling. An empty job gives `identity`.
    ///
    /// # Errors
    ///
    /// As for [`run`](JobBuilder::run); a chunk that sets a partial of another size panics
    /// ([`Error::KernelPanicked`]).
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::<u64>::from_fn(1000, |i| i as u64)?;
    /// let sum = pool
    ///     .job(())
    ///     .input(&a)?
    ///     .stage(|c| c.set_partial(c.input::<u64>(0).iter().sum::<u64>()))
    ///     .run_reduce(0u64, |x, y| x + y)?;
    /// assert_eq!(sum, 999 * 1000 / 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn run_reduce<R: Pod>(self, identity: R, mut combine: impl FnMut(R, R) -> R) -> Result<R> {
        let partials = self.execute(Some(identity))?;
        Ok(partials.into_iter().fold(identity, &mut combine))
    }

    /// Runs the job and returns every chunk's partial ([`Chunk::set_partial`]), one per chunk
    /// in chunk order (a chunk that sets none gives `R::zeroed()`), for a second pass that
    /// needs them all: a prefix sum's per-chunk offsets, per-chunk histograms. The chunks are
    /// the job's ([`chunk_size`](JobBuilder::chunk_size)), up to 4M of them; an empty job
    /// gives an empty `Vec`.
    ///
    /// # Errors
    ///
    /// As for [`run_reduce`](JobBuilder::run_reduce).
    ///
    /// ```
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::<u64>::from_fn(1000, |i| i as u64)?;
    /// let sums = pool
    ///     .job(())
    ///     .input(&a)?
    ///     .chunk_size(100)
    ///     .stage(|c| c.set_partial(c.input::<u64>(0).iter().sum::<u64>()))
    ///     .run_partials::<u64>()?;
    /// assert_eq!(sums.len(), 10);
    /// assert_eq!(sums[1], (100..200).sum::<u64>());
    /// # drop(pool);
    /// # shmpool::process::shutdown_forkserver()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn run_partials<R: Pod>(self) -> Result<Vec<R>> {
        self.execute(Some(<R as bytemuck::Zeroable>::zeroed()))
    }

    /// Checks the job, then runs it inline or in the workers; returns the partials.
    fn execute<R: Pod>(self, identity: Option<R>) -> Result<Vec<R>> {
        // Inline or not, a closed or terminated pool takes no more work (and a forked copy of
        // the pool none: `check_running` checks the owner first).
        self.pool.check_running()?;
        if let Some(plan) = self.quick_plan() {
            return self.run_inline(&plan, identity);
        }
        let plan = self.plan()?;
        if plan.len == 0 {
            return Ok(Vec::new());
        }
        let inline = self.b.set.inline.unwrap_or_else(|| self.is_small(plan.len));
        if inline { self.run_inline(&plan, identity) } else { self.run_pooled(&plan, identity) }
    }

    /// The plan of the commonest small job, in one pass over its arrays, when it runs inline:
    /// 1-D arrays of one length, no halo, the default chunk size and no work hint, under the
    /// threshold (or `.inline(true)`). `None` for any other job, which `plan` then checks in
    /// full (and refuses with the error that says why, where this one only declines).
    #[inline]
    fn quick_plan(&self) -> Option<Plan> {
        let stages = self.b.stages;
        if self.b.set.shape_given
            || self.b.set.shaped
            || self.b.set.halos != 0
            || self.b.set.chunk_size.is_some()
            || self.b.set.inline == Some(false)
            || self.b.set.cost_ns != 0.0
            || self.b.set.items.is_some()
            || stages == 0
            || stages > MAX_STAGES
            || size_of::<P>() > MAX_PARAMS_BYTES
            || align_of::<P>() > 8
        {
            return None;
        }
        let len = self.b.inputs.first().or(self.b.outputs.first())?.len;
        let (mut bytes, mut widest, mut per_elem) = (0usize, 0usize, 0usize);
        for a in self.b.inputs.iter().chain(&self.b.outputs) {
            if a.len != len {
                return None;
            }
            // A mapped array's bytes fit a `usize`; their sum saturates (16 of them).
            (bytes, widest, per_elem) = (
                bytes.saturating_add(len * a.elem_size),
                widest.max(a.elem_size),
                per_elem + a.elem_size,
            );
        }
        if len == 0
            || (self.b.set.inline.is_none() && !self.pool.is_small(bytes.saturating_mul(stages)))
        {
            return None;
        }
        let mut n = self.pool.chunk_size_quick(len, widest);
        if stages > 1 {
            // As `plan_chunks`: fused stages find the chunk in L2.
            n = n.min(FUSED_CHUNK_BYTES / per_elem.max(1)).max(1);
        }
        let mut d = [0; MAX_DIMS];
        d[0] = len;
        Some(Plan {
            dims: Dims { d, n: 1 },
            len,
            chunk_size: n.max(len.div_ceil(MAX_CHUNKS)),
            groups: Groups { starts: 1, stages },
        })
    }

    /// The inline rule: whether the job's size (the bytes of all its arrays times its stages,
    /// or its work hint in the same unit, whichever is larger) is under the pool's threshold.
    fn is_small(&self, len: usize) -> bool {
        let bytes: usize =
            self.b.inputs.iter().chain(&self.b.outputs).map(|a| a.len * a.elem_size).sum();
        let touched = bytes.saturating_mul(self.b.stages);
        if self.b.set.cost_ns == 0.0 {
            // No hint (most jobs): no conversion from a float, which costs more than the rest.
            return self.pool.is_small(touched);
        }
        // `as` saturates: an absurd hint is simply a large job.
        let work = (len as f64 * self.b.set.cost_ns * INLINE_BYTES_PER_NS) as usize;
        self.pool.is_small(touched.max(work))
    }

    /// Validates the job and works out its shape, chunks and groups of stages.
    fn plan(&self) -> Result<Plan> {
        if self.b.stages == 0 {
            return Err(Error::InvalidArgument {
                what: "kernel job",
                reason: "it has no stage; add one with .stage(kernel)".into(),
            });
        }
        if self.b.stages > MAX_STAGES {
            return Err(Error::TooManyStages { count: self.b.stages, max: MAX_STAGES });
        }
        if size_of::<P>() > MAX_PARAMS_BYTES {
            return Err(Error::ParamsTooLarge { bytes: size_of::<P>(), max: MAX_PARAMS_BYTES });
        }
        if align_of::<P>() > 8 {
            return Err(Error::InvalidArgument {
                what: "kernel job parameter block",
                reason: format!(
                    "it is aligned to {} bytes, more than the 8 a job carries; use a #[repr(C)] struct of plain numbers",
                    align_of::<P>()
                ),
            });
        }
        let arrays = || self.b.inputs.iter().chain(&self.b.outputs);
        if let Some(items) = self.b.set.items {
            return self.plan_items(items);
        }
        if !self.b.set.shape_given
            && !self.b.set.shaped
            && let Some(first) = arrays().next()
        {
            // 1-D arrays only (most jobs, and every small one that runs inline): the shape is
            // the first array's length, which every array must have; rows are elements.
            let len = first.len;
            if let Some(a) = arrays().find(|a| a.len != len) {
                return Err(Error::ShapeMismatch {
                    array: a.name(),
                    found: a.shape().to_vec(),
                    expected: vec![len],
                });
            }
            let mut d = [0; MAX_DIMS];
            d[0] = len;
            return self.plan_chunks(Dims { d, n: 1 }, len, 1);
        }
        // The job's shape: as given, else the first shaped array's, else the first's length.
        let shaped = arrays().find(|a| a.shape().len() > 1).or(arrays().next());
        let dims = match (self.b.set.shape_given, shaped) {
            (true, _) => Dims::new(&self.b.shape).ok_or_else(|| Error::InvalidArgument {
                what: "kernel job shape",
                reason: format!("it has {} dimensions; give 1 to {MAX_DIMS}", self.b.shape.len()),
            })?,
            (false, Some(a)) => Dims::new(a.shape()).ok_or_else(|| Error::InvalidArgument {
                what: "kernel job shape",
                reason: format!(
                    "{} has {} dimensions, more than the {MAX_DIMS} a job splits; give .shape(..)",
                    a.name(),
                    a.shape().len()
                ),
            })?,
            (false, None) => {
                return Err(Error::InvalidArgument {
                    what: "kernel job",
                    reason: "it has no array and no shape; add arrays, or give .shape(&[n])".into(),
                });
            }
        };
        if dims.n == 0 {
            return Err(Error::InvalidArgument {
                what: "kernel job shape",
                reason: "it has no dimension; give 1 to 8".into(),
            });
        }
        let dims_s = dims.as_slice();
        let len = dims_s.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| {
            Error::InvalidArgument {
                what: "kernel job shape",
                reason: format!("{dims_s:?} overflows"),
            }
        })?;
        // A shaped array must have the job's shape; a 1-D one its number of elements.
        for a in arrays() {
            if a.len != len || (a.shape().len() > 1 && a.shape() != dims_s) {
                return Err(Error::ShapeMismatch {
                    array: a.name(),
                    found: a.shape().to_vec(),
                    expected: dims_s.to_vec(),
                });
            }
        }
        let row_len: usize = dims_s[1..].iter().product();
        self.plan_chunks(dims, len, row_len)
    }

    /// `plan` for a job of `items` items (`JobBuilder::items`): 1-D arrays, each a whole number
    /// of elements per item.
    fn plan_items(&self, items: usize) -> Result<Plan> {
        let what = "kernel job items";
        if self.b.set.shape_given || self.b.set.shaped {
            return Err(Error::InvalidArgument {
                what,
                reason: "the job has a shape or a shaped array; chunk shaped arrays by rows \
                         (the default), or give 1-D arrays with .items(n)"
                    .into(),
            });
        }
        for a in self.b.inputs.iter().chain(&self.b.outputs) {
            let whole = if items == 0 { a.len == 0 } else { a.len.is_multiple_of(items) };
            if !whole {
                return Err(Error::InvalidArgument {
                    what,
                    reason: format!(
                        "{} has {} elements, not a whole number per item of the job's {items}; \
                         give arrays of items x k elements",
                        a.name(),
                        a.len
                    ),
                });
            }
        }
        let mut d = [0; MAX_DIMS];
        d[0] = items;
        self.plan_chunks(Dims { d, n: 1 }, items, 1)
    }

    /// The rest of `plan` once the shape is known: the row and halo checks, the groups of
    /// stages and the chunk size.
    fn plan_chunks(&self, dims: Dims, len: usize, row_len: usize) -> Result<Plan> {
        let arrays = || self.b.inputs.iter().chain(&self.b.outputs);
        let rows = dims.d[0];
        if let Some(n) = self.b.set.chunk_size
            && row_len > 1
            && !n.is_multiple_of(row_len)
        {
            return Err(Error::ChunkSplitsRows { chunk_size: n, row_len });
        }
        if self.b.set.halos != 0 {
            for (stage, &radius) in self.b.radii[..self.b.stages].iter().enumerate() {
                if radius > rows {
                    return Err(Error::HaloTooLarge { stage, radius, rows });
                }
            }
        }
        // Stage 0 starts a group, and so does every stage with a halo (`stage_halo` set their
        // bits; `plan` refused more than MAX_STAGES stages).
        let groups = Groups { starts: 1 | self.b.set.halos, stages: self.b.stages };
        // Bytes per element of the job in each array (more than its element in a job of items:
        // `a.len / len` elements per item).
        let bytes = |a: &JobArray| a.elem_size * a.len.checked_div(len).unwrap_or(1);
        let elem = arrays().map(bytes).max().unwrap_or(8);
        let row = row_len.max(1);
        let chunk_size = match self.b.set.chunk_size {
            Some(n) => n,
            None => {
                let mut n = self.pool.chunk_size_quick(len, elem);
                // Fused stages pass over the chunk once each: small enough to stay in a core's
                // L2 between them (docs/architecture.md, "Kernel jobs").
                if groups.any_fused() {
                    let per_elem: usize = arrays().map(bytes).sum();
                    n = n.min(FUSED_CHUNK_BYTES / per_elem.max(1)).max(1);
                }
                round_up(n, row)
            }
        };
        // Never more chunks than the done bitmap holds (a whole number of rows per chunk).
        let chunk_size = chunk_size.max(round_up(len.div_ceil(MAX_CHUNKS), row));
        Ok(Plan { dims, len, chunk_size, groups })
    }

    /// Runs every chunk of every group in the caller, through the same trampoline the workers
    /// run; the first panic of a group ends the job after that group, as in the workers.
    fn run_inline<R: Pod>(mut self, plan: &Plan, identity: Option<R>) -> Result<Vec<R>> {
        // Counted (a division) only for a job with partials.
        let chunks =
            if identity.is_some() { Pool::chunks_of(plan.len, plan.chunk_size) } else { 0 };
        let mut params = self.params;
        let mut partials: Vec<R> = identity.map(|r| vec![r; chunks]).unwrap_or_default();
        let b = &mut **self.b;
        // This thread's views, every pointer null between jobs: each slot a chunk can reach is
        // set below.
        let v = &mut b.views;
        for (i, a) in b.inputs.iter().chain(&b.outputs).enumerate() {
            (v.ptr[i], v.len[i], v.elem_size[i], v.expected_len[i]) =
                (a.ptr, a.len, a.elem_size, a.len);
            (v.ty[i], v.tid[i]) = (None, Some(a.ty));
        }
        v.ptr[PARAMS_SLOT] = (&raw mut params).cast::<u8>();
        (v.len[PARAMS_SLOT], v.elem_size[PARAMS_SLOT], v.expected_len[PARAMS_SLOT]) =
            (1, size_of::<P>(), 1);
        if identity.is_some() {
            v.ptr[PARTIALS_SLOT] = partials.as_mut_ptr().cast::<u8>();
            (v.len[PARTIALS_SLOT], v.elem_size[PARTIALS_SLOT], v.expected_len[PARTIALS_SLOT]) =
                (chunks, size_of::<R>(), chunks);
        } else {
            // Null whatever happened before: `set_partial` then fails instead of writing.
            v.ptr[PARTIALS_SLOT] = std::ptr::null_mut();
        }
        let j = &mut v.job;
        (j.inputs, j.outputs, j.ndim, j.dims) =
            (b.inputs.len(), b.outputs.len(), plan.dims.n, plan.dims.d);
        // The mask is this thread's alone (`local`): plain stores and loads, no fences.
        j.local = true;
        // The stage table `j.stages` was filled as the stages were added (`push_stage`); only
        // the running stages are read (`JobCtx::running`), what lies past them is stale.
        let radii = &b.radii;
        let mut run_group = |first: usize, count: usize| {
            // A fresh mask per group: what one group wrote, the next may read with a halo.
            let access = AccessMask::default();
            (v.job.first, v.job.count, v.job.access) = (first, count, &raw const access);
            let (kernel, radius) = (v.job.stages[first], radii[first]);
            let v = &*v;
            run_chunks(plan.len, plan.chunk_size, radius, |span| {
                // The views point at the caller's arrays, borrowed by this builder (inputs
                // shared, outputs exclusively), each valid for the length it states; no
                // output shares its segment, so its bytes, with an input or another output
                // (`input`/`output` refused a repeated nonce: every view of one segment has
                // its nonce, `every_view_of_one_segment_is_an_alias`).
                // SAFETY: as above; the parameter slot holds a `P` and the partials slot
                // `chunks` `R`s; every stage is a `StageFn<P>`; chunks run one at a time, on
                // this thread, each with the group's mask (`access`, this frame's own).
                unsafe { run_stages::<P>(kernel, v, span) }
            })
        };
        let outcome = if plan.groups.starts == 1 {
            // One group (no halo past stage 0): every stage fuses.
            run_group(0, plan.groups.stages)
        } else {
            // The first panic of a group ends the job after that group.
            plan.groups.iter().try_for_each(|(first, count)| run_group(first, count))
        };
        // No chunk runs any more: nothing may point into this call's frame from the views
        // kept for the next job.
        let v = &mut b.views;
        v.ptr = [std::ptr::null_mut(); MAX_ARRAYS];
        v.job.access = std::ptr::null();
        outcome.map(|()| partials)
    }

    /// Publishes each group of stages in turn and waits for it.
    fn run_pooled<R: Pod>(self, plan: &Plan, identity: Option<R>) -> Result<Vec<R>> {
        let chunks = Pool::chunks_of(plan.len, plan.chunk_size);
        let pool = &mut *self.pool;
        // The scratch area is rewritten below: no job may be in flight.
        pool.check_running()?;
        pool.finish_active()?;
        let scratch = pool.ctl.scratch_ptr();
        // SAFETY: no job is in flight, so no worker reads the scratch area; it is 8-aligned,
        // `P` is aligned to at most 8 and at most MAX_PARAMS_BYTES long (checked in `plan`).
        unsafe { scratch.cast::<P>().write(self.params) };
        let in_scratch = chunks
            .checked_mul(size_of::<R>())
            .is_some_and(|bytes| bytes <= SCRATCH_BYTES - MAX_PARAMS_BYTES)
            && align_of::<R>() <= 8;
        let own = match identity {
            Some(r) if !in_scratch => Some(SharedArray::<R>::from_fn(chunks, |_| r)?),
            Some(r) => {
                for i in 0..chunks {
                    // SAFETY: as above; the partials fit after the parameter block (checked),
                    // at an offset aligned for `R` (a multiple of 8).
                    unsafe { scratch.add(MAX_PARAMS_BYTES).cast::<R>().add(i).write(r) };
                }
                None
            }
            None => None,
        };
        for group in plan.groups.iter() {
            let mut arrays: [ArraySpec; MAX_ARRAYS] = Default::default();
            for (dst, a) in arrays.iter_mut().zip(self.b.inputs.iter().chain(&self.b.outputs)) {
                *dst = ArraySpec::Handle(a.handle(), a.len);
            }
            arrays[PARAMS_SLOT] = ArraySpec::Scratch(0, 1, size_of::<P>());
            arrays[PARTIALS_SLOT] = match (&own, identity.is_some()) {
                (Some(p), _) => ArraySpec::Handle(p.handle(), chunks),
                (None, true) => ArraySpec::Scratch(MAX_PARAMS_BYTES, chunks, size_of::<R>()),
                (None, false) => ArraySpec::None,
            };
            let (kernel, radius) = self.b.stage(group.0);
            let spec = JobSpec {
                trampoline: run_stages::<P> as Trampoline as usize,
                kernel,
                len: plan.len,
                chunk_size: plan.chunk_size,
                radius,
                arrays,
                results: None,
                stages: Some(StageSpec {
                    kernels: self.b.views.job.stages[..self.b.stages].to_vec(),
                    first: group.0,
                    count: group.1,
                    inputs: self.b.inputs.len(),
                    outputs: self.b.outputs.len(),
                    dims: plan.dims.as_slice().to_vec(),
                }),
                streamed: false,
            };
            pool.publish(&spec)?;
            // `wait_job` returns only once the job is done, or after terminating the pool
            // (every worker reaped): either way no worker touches the arrays after this.
            pool.wait_job(None)?;
            pool.take_outcome()?;
        }
        if identity.is_none() {
            return Ok(Vec::new());
        }
        Ok(match &own {
            Some(p) => p.as_slice().to_vec(),
            None => (0..chunks)
                .map(|i| {
                    // SAFETY: every chunk of every group is done, so the workers' writes happened
                    // before this read (acquire on `done`) and nothing writes any more; the
                    // partials lie inside the scratch area (checked above).
                    unsafe { scratch.add(MAX_PARAMS_BYTES).cast::<R>().add(i).read() }
                })
                .collect(),
        })
    }
}

/// Runs chunk after chunk of a job of `len` elements in the caller (`run` on each chunk's span,
/// under `catch_unwind`), as the workers would claim them: every chunk runs, and the job's
/// error is the first chunk that panicked ([`Error::KernelPanicked`], with the caller's pid).
/// The one chunk loop of every job run inline: kernel jobs' groups and the older operations.
fn run_chunks(
    len: usize,
    chunk_size: usize,
    radius: usize,
    mut run: impl FnMut(&Span),
) -> Result<()> {
    let chunk_size = chunk_size.max(1);
    let panicked = |chunk, p| {
        let message = take_panic(p);
        Err(Error::KernelPanicked { chunk, pid: crate::sys::proc::getpid(), message })
    };
    if chunk_size >= len && len != 0 {
        // One chunk (every job under 64 KiB by default): no loop, no bookkeeping. An empty job
        // has no chunk (the loop below runs none), as in the workers.
        let span = Span { index: 0, start: 0, end: len, radius };
        return catch_unwind(AssertUnwindSafe(|| run(&span))).or_else(|p| panicked(0, p));
    }
    let mut failed = None;
    let (mut index, mut start) = (0u64, 0usize);
    // Chunk `index` starts at `index * chunk_size`, as in a worker; added up, not multiplied.
    while start < len {
        let end = len.min(start.saturating_add(chunk_size));
        let span = Span { index, start, end, radius };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| run(&span))) {
            // The first panic is the job's; later payloads are dropped (`take_panic`).
            match failed {
                None => failed = Some((index, p)),
                Some(_) => drop(take_panic(p)),
            }
        }
        (index, start) = (index + 1, end);
    }
    match failed {
        None => Ok(()),
        Some((chunk, p)) => panicked(chunk, p),
    }
}

/// One array of an older data-parallel operation (`for_each_chunk`, `zip`, `map_reduce`,
/// `stencil`) run inline: the slot its trampoline reads it from and the caller's view of it.
pub(crate) struct InlineArray {
    slot: usize,
    ptr: *mut u8,
    len: usize,
    elem_size: usize,
}

impl InlineArray {
    /// The shared array `a`, read, in slot `slot`.
    ///
    /// # Panics
    ///
    /// When this process holds `a` only by inheritance through fork: the pooled path refuses
    /// it when it asks for a handle, and this path must refuse it before a kernel touches it.
    pub(crate) fn shared_read<T: Pod>(slot: usize, a: &SharedArray<T>) -> InlineArray {
        a.assert_given();
        InlineArray::read(slot, a.as_slice())
    }

    /// The shared array `a`, written, in slot `slot`.
    ///
    /// # Panics
    ///
    /// As [`shared_read`](InlineArray::shared_read).
    pub(crate) fn shared_write<T: Pod>(slot: usize, a: &mut SharedArray<T>) -> InlineArray {
        a.assert_given();
        InlineArray::write(slot, a.as_mut_slice())
    }

    /// `a`, which the trampoline only reads, in slot `slot`.
    pub(crate) fn read<T: Pod>(slot: usize, a: &[T]) -> InlineArray {
        InlineArray {
            slot,
            ptr: a.as_ptr().cast::<u8>().cast_mut(),
            len: a.len(),
            elem_size: size_of::<T>(),
        }
    }

    /// `a`, which the trampoline writes, in slot `slot`.
    pub(crate) fn write<T: Pod>(slot: usize, a: &mut [T]) -> InlineArray {
        InlineArray {
            slot,
            ptr: a.as_mut_ptr().cast::<u8>(),
            len: a.len(),
            elem_size: size_of::<T>(),
        }
    }
}

impl Pool {
    /// [`Pool::chunk_size_for`]`(len, elem_size)`, or `len` when that makes the same single
    /// chunk (the default rule never makes a chunk under 64 KiB, and an inline job is short
    /// enough for its two divisions to show).
    pub(crate) fn chunk_size_quick(&self, len: usize, elem_size: usize) -> usize {
        if self.chunk_size.is_none() && len.saturating_mul(elem_size.max(1)) <= 64 << 10 {
            len
        } else {
            self.chunk_size_for(len, elem_size)
        }
    }

    /// The inline rule's last step: whether a job of `size` (bytes touched, or their worth in
    /// work) is under the pool's threshold (0: never).
    pub(crate) fn is_small(&self, size: usize) -> bool {
        self.inline_threshold > 0 && size < self.inline_threshold
    }

    /// Runs an older operation's `trampoline` with `kernel` on every chunk of `len` elements in
    /// the caller, through this thread's views (as a kernel job run inline), the same chunks
    /// as the workers would run ([`run_chunks`]).
    ///
    /// # Safety
    ///
    /// The [`Trampoline`] contract for `kernel` and views holding `arrays` (their `len`s being
    /// both mapped and expected lengths); the caller borrows each array for the call, shared
    /// when the trampoline only reads it and exclusively when it writes it, and no two
    /// arrays the trampoline writes or reads overlap one written.
    pub(crate) unsafe fn run_plain_inline(
        &self,
        arrays: &[InlineArray],
        trampoline: Trampoline,
        kernel: usize,
        len: usize,
        chunk_size: usize,
        radius: usize,
    ) -> Result<()> {
        // Inline or not, a closed or terminated pool takes no more work.
        self.check_running()?;
        let mut b = take_bufs();
        let v = &mut b.views;
        for a in arrays {
            let i = a.slot;
            (v.ptr[i], v.len[i], v.elem_size[i], v.expected_len[i]) =
                (a.ptr, a.len, a.elem_size, a.len);
        }
        let v = &*v;
        let outcome = run_chunks(len, chunk_size, radius, |span| {
            // SAFETY: forwarded from this function's contract; every other slot's pointer is
            // null (the views' state between jobs), which a trampoline refuses.
            unsafe { trampoline(kernel, v, span) }
        });
        // Nothing may point at the caller's arrays from the views kept for the next job.
        b.views.ptr = [std::ptr::null_mut(); MAX_ARRAYS];
        give_back(b);
        outcome
    }
}

/// `n` rounded up to a multiple of `row` (at least 1), without a division for a 1-D job (an
/// inline job is short enough for a division or two to show).
fn round_up(n: usize, row: usize) -> usize {
    if row == 1 { n } else { n.div_ceil(row) * row }
}

/// Groups of stages that fuse, as a mask of the stages that start one (stage 0 and every stage
/// with a halo): a few bytes, not a table to copy out of `plan` for every job.
struct Groups {
    starts: u32,
    /// The job's stages, at most `MAX_STAGES`.
    stages: usize,
}

impl Groups {
    /// Each group's first stage and stage count, in order.
    fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.stages).filter(|&i| self.starts & (1 << i) != 0).map(|first| {
            let rest = (first + 1..self.stages).take_while(|&i| self.starts & (1 << i) == 0);
            (first, 1 + rest.count())
        })
    }

    /// Whether some group has more than one stage: some stage starts none (it fuses with the
    /// stage before it).
    fn any_fused(&self) -> bool {
        let all = (1u32 << self.stages) - 1;
        all & !self.starts != 0
    }
}

/// A checked job: its shape, length, chunk size and groups of stages (first, count).
struct Plan {
    dims: Dims,
    len: usize,
    chunk_size: usize,
    groups: Groups,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spans `run_chunks` runs for a job of `len` elements in chunks of `chunk_size`.
    fn spans(len: usize, chunk_size: usize) -> Vec<(u64, usize, usize)> {
        let mut seen = Vec::new();
        run_chunks(len, chunk_size, 0, |s| seen.push((s.index, s.start, s.end))).unwrap();
        seen
    }

    #[test]
    fn run_chunks_runs_the_workers_chunks_and_none_for_an_empty_job() {
        // The one-chunk path must not turn an empty job into one empty chunk.
        assert_eq!(spans(0, 0), []);
        assert_eq!(spans(0, 64), []);
        assert_eq!(spans(5, 5), [(0, 0, 5)]);
        assert_eq!(spans(5, usize::MAX), [(0, 0, 5)]);
        assert_eq!(spans(10, 3), [(0, 0, 3), (1, 3, 6), (2, 6, 9), (3, 9, 10)]);
        // A chunk size of 0 is one element per chunk.
        assert_eq!(spans(2, 0), [(0, 0, 1), (1, 1, 2)]);
        // Near the top of the range the ends saturate instead of wrapping.
        let top = spans(usize::MAX, usize::MAX / 2 + 1);
        assert_eq!(top.last().map(|s| s.2), Some(usize::MAX));
        assert_eq!(top.len(), 2);
    }

    #[test]
    fn a_huge_shape_leaves_no_buffer_of_its_size_on_the_thread() {
        let mut b = take_bufs();
        b.shape.extend(std::iter::repeat_n(1, 1 << 20));
        give_back(b);
        let b = take_bufs();
        assert!(b.shape.capacity() <= MAX_DIMS, "{} kept", b.shape.capacity());
        give_back(b);
        let mut b = take_bufs();
        b.shape.extend_from_slice(&[2, 3]);
        let kept = b.shape.as_ptr();
        give_back(b);
        // A shape a job may have keeps its buffer (no allocation per shaped job).
        let b = take_bufs();
        assert_eq!(b.shape.as_ptr(), kept);
        give_back(b);
    }

    #[test]
    fn run_chunks_runs_every_chunk_and_reports_the_first_panic() {
        let mut ran = Vec::new();
        let e = run_chunks(9, 2, 0, |s| {
            ran.push(s.index);
            assert!(s.index % 2 == 0, "chunk {} fails", s.index);
        });
        assert_eq!(ran, [0, 1, 2, 3, 4]);
        match e {
            Err(Error::KernelPanicked { chunk, message, .. }) => {
                assert_eq!(chunk, 1);
                assert!(message.contains("chunk 1 fails"), "{message}");
            }
            other => panic!("expected KernelPanicked, got {other:?}"),
        }
        let e = run_chunks(3, 8, 0, |_| panic!("one chunk"));
        assert!(matches!(e, Err(Error::KernelPanicked { chunk: 0, .. })), "{e:?}");
    }
}
