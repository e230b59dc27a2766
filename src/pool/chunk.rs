//! `Chunk`: what a kernel job's stage sees of one chunk: where it lies (index, element range,
//! rows of the outer axis), the job's shape and parameter block, typed slices of the job's
//! arrays over the chunk (with a halo on request), and a slot for a per-chunk partial.
//!
//! Every slice is checked before it is made: the element type against the array's header, the
//! range against the mapping and the job's length, each output taken at most once per chunk
//! and stage (the `&mut` it returns is then the only one), and an output read with a halo never
//! written in the same publish (`control::AccessMask`). A failed check panics, which the pool
//! reports as the job's error ([`Error::KernelPanicked`](crate::Error::KernelPanicked)), never
//! as a wrong slice.
//!
//! Nothing a chunk hands out outlives the stage call: a stage is a `for<'c> fn(&'c Chunk<P>)`,
//! so a slice cannot be kept past it, in a `static` or a thread-local:
//!
//! ```compile_fail,E0521
//! use std::cell::Cell;
//! use shmpool::pool::Chunk;
//!
//! thread_local! {
//!     static KEPT: Cell<Option<&'static [f64]>> = const { Cell::new(None) };
//! }
//! // error: borrowed data escapes outside of function
//! fn keep(c: &Chunk<()>) {
//!     KEPT.with(|k| k.set(Some(c.input::<f64>(0))));
//! }
//! ```
//!
//! and a kernel that asks for a longer-lived chunk is not a stage:
//!
//! ```compile_fail,E0308
//! use shmpool::pool::Chunk;
//!
//! fn keep(c: &'static Chunk<()>) {
//!     let _ = c;
//! }
//! let mut pool = shmpool::Pool::new(1).unwrap();
//! let mut a = shmpool::SharedArray::<f64>::zeroed(10).unwrap();
//! // error: mismatched types (one type is more general than the other)
//! pool.job(()).output(&mut a).unwrap().stage(keep).run().unwrap();
//! ```

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Range;

use bytemuck::Pod;

use super::control::{PARAMS_SLOT, PARTIALS_SLOT};
use super::kernel::{Span, Views, array};
use crate::segment::header::TypeDesc;

/// `TypeDesc::of::<T>()`, from a small per-thread cache: it allocates, and a kernel asks for
/// its arrays' types in every chunk (a job that runs inline pays it on every call).
pub(crate) fn type_desc<T: 'static>() -> TypeDesc {
    use std::any::TypeId;
    use std::cell::RefCell;
    type Entries = [Option<(TypeId, TypeDesc)>; 4];
    thread_local! {
        static CACHE: RefCell<Entries> = const { RefCell::new([None; 4]) };
    }
    let id = TypeId::of::<T>();
    // Looked up in place (a `Cell` would copy all four entries in and out on every call).
    let hit = CACHE.with_borrow(|e| e.iter().flatten().find(|(k, _)| *k == id).map(|&(_, t)| t));
    if let Some(t) = hit {
        return t;
    }
    let t = TypeDesc::of::<T>();
    CACHE.with_borrow_mut(|e| {
        e.rotate_right(1);
        e[0] = Some((id, t));
    });
    t
}

/// One chunk of a kernel job, as one stage's kernel sees it (see
/// [`Pool::job`](crate::Pool::job)).
///
/// A kernel is a `fn(&Chunk<P>)` (a `fn` item, or a closure that captures nothing): it reaches
/// its parameters through [`params`](Chunk::params) and its data through the job's arrays.
/// Inputs (`input(i)`, in the order given to [`JobBuilder::input`]) are read-only; outputs
/// (`output(j)`, in the order given to [`JobBuilder::output`]) are the chunk's own elements,
/// writable. The element type `T` asked for must be the array's: a mismatch, an index past the
/// job's arrays, or an output taken twice in one stage panics, which fails the job with
/// [`Error::KernelPanicked`](crate::Error::KernelPanicked).
///
/// ```
/// use shmpool::pool::Chunk;
///
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Affine {
///     k: f64,
///     b: f64,
/// }
///
/// fn affine(c: &Chunk<Affine>) {
///     let p = c.params();
///     let (x, y) = (c.input::<f64>(0), c.output::<f64>(0));
///     for (x, y) in x.iter().zip(y.iter_mut()) {
///         *y = x * p.k + p.b;
///     }
/// }
///
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// let mut out = shmpool::SharedArray::<f64>::zeroed(1000)?;
/// pool.job(Affine { k: 2.0, b: 1.0 }).input(&a)?.output(&mut out)?.stage(affine).run()?;
/// assert_eq!(out[10], 21.0);
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
///
/// [`JobBuilder::input`]: crate::pool::JobBuilder::input
/// [`JobBuilder::output`]: crate::pool::JobBuilder::output
pub struct Chunk<P> {
    /// The job's views; valid for the stage call (`Chunk::new`'s contract). A raw pointer makes
    /// `Chunk` neither `Send` nor `Sync`: it stays in the call that got it.
    views: *const Views,
    index: usize,
    start: usize,
    end: usize,
    /// Halo radius, in rows of the outer axis.
    radius: usize,
    stage: usize,
    /// Outputs taken mutably by this stage call (one bit each).
    taken: Cell<u32>,
    _params: PhantomData<*const P>,
}

impl<P: Pod> Chunk<P> {
    /// The chunk `span` of stage `stage`, over `views`.
    ///
    /// # Safety
    ///
    /// `views` satisfies the [`Trampoline`](super::kernel::Trampoline) contract for the whole
    /// life of the returned `Chunk` (which must not outlive the stage call it is made for), its
    /// parameter slot holds a `P`, and the chunk `span` is exclusively the caller's.
    #[inline]
    pub(crate) unsafe fn new(views: &Views, span: &Span, stage: usize) -> Chunk<P> {
        Chunk {
            views,
            index: usize::try_from(span.index).unwrap_or(usize::MAX),
            start: span.start,
            end: span.end,
            radius: span.radius,
            stage,
            taken: Cell::new(0),
            _params: PhantomData,
        }
    }

    #[inline]
    fn views(&self) -> &Views {
        // SAFETY: `new`'s contract: the views outlive this chunk.
        unsafe { &*self.views }
    }

    /// The chunk's index in the job (0, 1, ... in element order).
    ///
    /// ```
    /// fn seed(c: &shmpool::pool::Chunk<u64>) -> u64 {
    ///     c.params() ^ c.index() as u64 // a per-chunk random seed
    /// }
    /// # let _ = seed;
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The chunk's elements: indices into every array of the job (`a[i] = f(i)` is
    /// `out[k] = f(c.range().start + k)`). In a job of items
    /// ([`JobBuilder::items`](crate::pool::JobBuilder::items)), the chunk's items: an array of
    /// `k` elements per item gives the chunk elements `k * start..k * end`.
    ///
    /// ```
    /// fn iota(c: &shmpool::pool::Chunk<()>) {
    ///     let start = c.range().start;
    ///     for (k, y) in c.output::<u64>(0).iter_mut().enumerate() {
    ///         *y = (start + k) as u64;
    ///     }
    /// }
    /// # let _ = iota;
    /// ```
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Elements in the chunk.
    ///
    /// ```
    /// fn f(c: &shmpool::pool::Chunk<()>) {
    ///     assert_eq!(c.len(), c.range().len());
    ///     assert!(!c.is_empty());
    /// }
    /// # let _ = f;
    /// ```
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the chunk has no elements (never, for a chunk a kernel is given).
    ///
    /// ```
    /// fn f(c: &shmpool::pool::Chunk<()>) {
    ///     assert!(!c.is_empty());
    /// }
    /// # let _ = f;
    /// ```
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The chunk's rows of the outer axis (for a 1-D job, the same as [`range`](Chunk::range)).
    /// A chunk never splits a row.
    ///
    /// ```
    /// fn rows(c: &shmpool::pool::Chunk<()>) {
    ///     assert_eq!(c.rows().len() * c.row_len(), c.len());
    /// }
    /// # let _ = rows;
    /// ```
    pub fn rows(&self) -> Range<usize> {
        let w = self.row_len().max(1);
        self.start / w..self.end / w
    }

    /// Elements per row of the outer axis: the product of every dimension but the first (1
    /// for a 1-D job).
    ///
    /// ```
    /// fn width(c: &shmpool::pool::Chunk<()>) -> usize {
    ///     c.row_len()
    /// }
    /// # let _ = width;
    /// ```
    pub fn row_len(&self) -> usize {
        self.views().job.row_len()
    }

    /// The job's shape, outer axis first (`[len]` for a 1-D job).
    ///
    /// ```
    /// fn dims(c: &shmpool::pool::Chunk<()>) -> (usize, usize) {
    ///     let s = c.shape();
    ///     (s[0], s.get(1).copied().unwrap_or(1))
    /// }
    /// # let _ = dims;
    /// ```
    pub fn shape(&self) -> &[usize] {
        let j = &self.views().job;
        &j.dims[..j.ndim.min(j.dims.len())]
    }

    /// The halo radius of this stage's group, in rows (elements for a 1-D job): what
    /// [`input_halo`](Chunk::input_halo) and [`output_halo`](Chunk::output_halo) add each side.
    ///
    /// ```
    /// fn r(c: &shmpool::pool::Chunk<()>) -> usize {
    ///     c.radius()
    /// }
    /// # let _ = r;
    /// ```
    pub fn radius(&self) -> usize {
        self.radius
    }

    /// Which stage of the job runs (0 for the first).
    ///
    /// ```
    /// fn s(c: &shmpool::pool::Chunk<()>) -> usize {
    ///     c.stage()
    /// }
    /// # let _ = s;
    /// ```
    pub fn stage(&self) -> usize {
        self.stage
    }

    /// The job's parameter block, as given to [`Pool::job`](crate::Pool::job).
    ///
    /// ```
    /// fn scale(c: &shmpool::pool::Chunk<f64>) {
    ///     let k = *c.params();
    ///     c.output::<f64>(0).iter_mut().for_each(|x| *x *= k);
    /// }
    /// # let _ = scale;
    /// ```
    pub fn params(&self) -> &P {
        let p = array::<P>(self.views(), PARAMS_SLOT, 1);
        // SAFETY: `array` checked the slot holds one element of `P`'s size, aligned for `P`;
        // the parent wrote a `P` there before publishing and nobody writes it during the job;
        // any bytes are a valid `P` (`Pod`).
        unsafe { &*p }
    }

    /// The slot of input `i` (panics past the job's inputs).
    #[inline]
    fn input_slot(&self, i: usize) -> usize {
        let n = self.views().job.inputs;
        assert!(i < n, "the kernel asked for input {i}, but the job has {n} inputs");
        i
    }

    /// The slot of output `j` (panics past the job's outputs).
    #[inline]
    fn output_slot(&self, j: usize) -> usize {
        let job = &self.views().job;
        assert!(
            j < job.outputs,
            "the kernel asked for output {j}, but the job has {} outputs",
            job.outputs
        );
        job.inputs + j
    }

    /// Array `slot` (`what` and its index, for messages) as `T` up to element `end`, after
    /// checking its element type.
    #[inline]
    fn typed<T: Pod>(&self, slot: usize, what: (&str, usize), end: usize) -> *mut T {
        let v = self.views();
        let have = match v.tid[slot] {
            // Inline, the same type as the caller's array: nothing to describe.
            Some((id, _)) if id == std::any::TypeId::of::<T>() => None,
            Some((_, describe)) => Some(describe()),
            None => v.ty[slot],
        };
        let want = || type_desc::<T>();
        if let Some(have) = have
            && have != want()
        {
            let want = want();
            panic!(
                "the kernel asked for {} {} as {} ({}), but the array holds {}; ask for the array's element type",
                what.0,
                what.1,
                std::any::type_name::<T>(),
                want.describe(),
                have.describe()
            );
        }
        array::<T>(v, slot, end)
    }

    /// Array `slot` over the chunk widened by `radius` rows each side (clipped at the array's
    /// ends): a pointer to the first element, the window's length and the chunk's offset in it.
    fn halo<T: Pod>(&self, slot: usize, what: (&str, usize)) -> (*mut T, usize, usize) {
        let (k, start, end) = self.elements(slot);
        let p = self.typed::<T>(slot, what, end);
        let v = self.views();
        let reach = self.radius.saturating_mul(self.row_len()).saturating_mul(k);
        // `typed` checked `end <= len` and `end <= expected_len`, so `lo <= start <= end <= hi`.
        let lo = start.saturating_sub(reach);
        let hi = end.saturating_add(reach).min(v.len[slot]).min(v.expected_len[slot]);
        // SAFETY: `lo <= start`, inside the mapping.
        (unsafe { p.add(lo) }, hi - lo, start - lo)
    }

    /// Array `slot`'s elements per item of the job, and the chunk's first and last elements
    /// in it. 1 and the chunk's range but in a job of items
    /// ([`JobBuilder::items`](crate::pool::JobBuilder::items)): a 1-D job whose array holds
    /// `k` elements per item (its length, over the job's, which the builder checked is whole).
    #[inline]
    fn elements(&self, slot: usize) -> (usize, usize, usize) {
        let job = &self.views().job;
        let (items, len) = (job.dims[0], self.views().expected_len[slot]);
        if job.ndim != 1 || len == items || items == 0 {
            return (1, self.start, self.end);
        }
        // A corrupt descriptor saturates here and fails `array`'s bounds check.
        let k = len / items;
        (k, self.start.saturating_mul(k), self.end.saturating_mul(k))
    }

    /// The chunk's elements of input `i` (read-only).
    ///
    /// ```
    /// fn copy(c: &shmpool::pool::Chunk<()>) {
    ///     c.output::<f32>(0).copy_from_slice(c.input::<f32>(0));
    /// }
    /// # let _ = copy;
    /// ```
    pub fn input<T: Pod>(&self, i: usize) -> &[T] {
        let slot = self.input_slot(i);
        let (_, start, end) = self.elements(slot);
        let p = self.typed::<T>(slot, ("input", i), end);
        // SAFETY: `typed` checked type, alignment and that `..end` lies in the mapping and the job
        // (`start <= end`: the span was checked); inputs are not written while the job runs (the
        // caller holds `&` on them; the builder refuses an output sharing an input's segment).
        unsafe { std::slice::from_raw_parts(p.add(start), end - start) }
    }

    /// Input `i` over the chunk widened by [`radius`](Chunk::radius) rows each side, clipped
    /// at the array's ends, and the offset of the chunk's first element in it.
    ///
    /// ```
    /// // A 3-point moving sum (radius 1).
    /// fn blur(c: &shmpool::pool::Chunk<()>) {
    ///     let (win, off) = c.input_halo::<f64>(0);
    ///     for (k, y) in c.output::<f64>(0).iter_mut().enumerate() {
    ///         let i = off + k;
    ///         *y = win[i.saturating_sub(1)..(i + 2).min(win.len())].iter().sum();
    ///     }
    /// }
    /// # let _ = blur;
    /// ```
    pub fn input_halo<T: Pod>(&self, i: usize) -> (&[T], usize) {
        let slot = self.input_slot(i);
        let (p, n, off) = self.halo::<T>(slot, ("input", i));
        // SAFETY: `halo` returns a window inside the mapping and the job; inputs are never
        // written while the job runs (see `input`).
        (unsafe { std::slice::from_raw_parts(p, n) }, off)
    }

    /// The chunk's elements of output `j`, writable. Each output may be taken once per stage
    /// call (a second take panics: the first `&mut` is then the only one), and not in a group
    /// of stages that reads it with [`output_halo`](Chunk::output_halo).
    ///
    /// ```
    /// fn fill(c: &shmpool::pool::Chunk<u8>) {
    ///     c.output::<u8>(0).fill(*c.params());
    /// }
    /// # let _ = fill;
    /// ```
    #[allow(clippy::mut_from_ref)] // once per output and chunk, checked by `taken`
    pub fn output<T: Pod>(&self, j: usize) -> &mut [T] {
        let slot = self.output_slot(j);
        let bit = 1u32 << j;
        assert!(
            self.taken.get() & bit == 0,
            "the kernel took output {j} twice in one stage; take each output once and reuse the slice"
        );
        let job = &self.views().job;
        // SAFETY: the job context's access mask lives as long as the views (`new`'s contract).
        let access = unsafe { &*job.access };
        assert!(
            if job.local { access.write_local(j) } else { access.write(j) },
            "output {j} is read with a halo (output_halo) in this group of stages, so no chunk may write it; \
             write it in another stage, after a halo stage boundary"
        );
        let (_, start, end) = self.elements(slot);
        let p = self.typed::<T>(slot, ("output", j), end);
        self.taken.set(self.taken.get() | bit);
        // The caller holds `&mut` on the output for the whole job.
        // SAFETY: `typed` checked type, alignment and bounds; the chunk's elements are ours (the
        // claim: chunks cover disjoint item ranges, so disjoint element ranges), no other `&mut`
        // to them exists (`taken`), no halo reads them here (`access`).
        unsafe { std::slice::from_raw_parts_mut(p.add(start), end - start) }
    }

    /// Output `j` as written by the stages before this group, over the chunk widened by
    /// [`radius`](Chunk::radius) rows each side (read-only), and the chunk's offset in it. A
    /// stage with a halo starts only once every chunk of the stages before it is done, so the
    /// window is complete; no chunk may write output `j` in the same group (that panics).
    ///
    /// ```
    /// fn smooth(c: &shmpool::pool::Chunk<()>) {
    ///     let (win, off) = c.output_halo::<f64>(0); // written by the stage before
    ///     let out = c.output::<f64>(1);
    ///     for (k, y) in out.iter_mut().enumerate() {
    ///         *y = win[off + k];
    ///     }
    /// }
    /// # let _ = smooth;
    /// ```
    pub fn output_halo<T: Pod>(&self, j: usize) -> (&[T], usize) {
        let slot = self.output_slot(j);
        let job = &self.views().job;
        // SAFETY: as in `output`.
        let access = unsafe { &*job.access };
        assert!(
            if job.local { access.halo_read_local(j) } else { access.halo_read(j) },
            "output {j} is written in this group of stages, so it cannot be read with a halo; \
             read it in a later stage with a halo (stage_halo), which starts after every chunk is written"
        );
        let (p, n, off) = self.halo::<T>(slot, ("output", j));
        // SAFETY: `halo` returns a window inside the mapping and the job; no chunk writes
        // output `j` in this publish (`access`, set before either side makes a reference).
        (unsafe { std::slice::from_raw_parts(p, n) }, off)
    }

    /// Sets this chunk's partial for [`JobBuilder::run_reduce`](crate::pool::JobBuilder::run_reduce)
    /// or [`JobBuilder::run_partials`](crate::pool::JobBuilder::run_partials) (`R` must be the
    /// type it collects, or one of the same size; the last value set wins; a chunk that sets
    /// none contributes the identity, or `R::zeroed()` for `run_partials`).
    ///
    /// ```
    /// fn sum(c: &shmpool::pool::Chunk<()>) {
    ///     c.set_partial(c.input::<f64>(0).iter().sum::<f64>());
    /// }
    /// # let _ = sum;
    /// ```
    pub fn set_partial<R: Pod>(&self, value: R) {
        let v = self.views();
        assert!(
            !v.ptr[PARTIALS_SLOT].is_null(),
            "the kernel set a partial, but the job was started with run(); use run_reduce or run_partials"
        );
        assert!(
            v.elem_size[PARTIALS_SLOT] == size_of::<R>(),
            "the kernel set a partial of {} bytes ({}), but the job collects {}-byte values; set the type given to run_reduce or run_partials",
            size_of::<R>(),
            std::any::type_name::<R>(),
            v.elem_size[PARTIALS_SLOT]
        );
        let p = array::<R>(v, PARTIALS_SLOT, self.index.saturating_add(1));
        // SAFETY: `array` checked the slot's element size, alignment, and that element `index`
        // lies inside it; element `index` is written only by the chunk `index`'s claimant.
        unsafe { p.add(self.index).write(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::control::AccessMask;
    use crate::pool::kernel::JobCtx;

    /// Views of input `a` and output `b` (f64), a shape of `dims`, params `p`.
    fn views(
        a: &mut [f64],
        b: &mut [f64],
        dims: &[usize],
        p: &mut u32,
        access: &AccessMask,
    ) -> Views {
        let mut v = Views::default();
        for (i, buf) in [a, b].into_iter().enumerate() {
            v.ptr[i] = buf.as_mut_ptr().cast();
            (v.len[i], v.elem_size[i], v.expected_len[i]) = (buf.len(), 8, buf.len());
            v.ty[i] = Some(TypeDesc::of::<f64>());
        }
        v.ptr[PARAMS_SLOT] = (p as *mut u32).cast();
        (v.len[PARAMS_SLOT], v.elem_size[PARAMS_SLOT], v.expected_len[PARAMS_SLOT]) = (1, 4, 1);
        v.job = JobCtx { inputs: 1, outputs: 1, ndim: dims.len(), access, ..JobCtx::default() };
        v.job.dims[..dims.len()].copy_from_slice(dims);
        v
    }

    fn panics(f: impl FnOnce()) -> String {
        let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("no panic");
        crate::pool::kernel::panic_text(&*p)
    }

    #[test]
    fn context_slices_and_halo_windows() {
        let (mut a, mut b) = ((0..24).map(f64::from).collect::<Vec<_>>(), vec![0.0; 24]);
        let (mut p, access) = (7u32, AccessMask::default());
        let v = views(&mut a, &mut b, &[6, 4], &mut p, &access);
        let span = Span { index: 1, start: 8, end: 16, radius: 1 };
        // SAFETY: the views map live buffers of the lengths they state, used by nobody else,
        // for the chunk's whole life.
        let c = unsafe { Chunk::<u32>::new(&v, &span, 0) };
        assert_eq!(
            (c.index(), c.range(), c.rows(), c.row_len(), c.shape()),
            (1, 8..16, 2..4, 4, &[6, 4][..])
        );
        assert_eq!(*c.params(), 7);
        assert_eq!(c.input::<f64>(0), &[8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]);
        // One row each side, in elements.
        let (win, off) = c.input_halo::<f64>(0);
        assert_eq!((win.len(), off, win[0], win[15]), (16, 4, 4.0, 19.0));
        c.output::<f64>(0).fill(1.0);
        // Clipped at the first row.
        let first = Span { index: 0, start: 0, end: 4, radius: 2 };
        // SAFETY: as above.
        let c = unsafe { Chunk::<u32>::new(&v, &first, 0) };
        let (win, off) = c.input_halo::<f64>(0);
        assert_eq!((win.len(), off), (12, 0));
        assert_eq!(&b[8..16], &[1.0; 8]);
    }

    #[test]
    fn wrong_type_index_twice_and_halo_conflicts_panic() {
        let (mut a, mut b) = (vec![0.0; 16], vec![0.0; 16]);
        let (mut p, access) = (0u32, AccessMask::default());
        let v = views(&mut a, &mut b, &[16], &mut p, &access);
        let span = Span { index: 0, start: 0, end: 8, radius: 1 };
        // SAFETY: as in the test above.
        let c = unsafe { Chunk::<u32>::new(&v, &span, 0) };
        assert!(
            panics(|| {
                let _ = c.input::<u64>(0);
            })
            .contains("the array holds <f8")
        );
        assert!(
            panics(|| {
                let _ = c.input::<f64>(1);
            })
            .contains("has 1 inputs")
        );
        assert!(
            panics(|| {
                let _ = c.output::<f64>(1);
            })
            .contains("has 1 outputs")
        );
        let _first = c.output::<f64>(0);
        assert!(
            panics(|| {
                let _ = c.output::<f64>(0);
            })
            .contains("twice")
        );
        // Written in this group: another chunk may not read it with a halo.
        let other = Span { index: 1, start: 8, end: 16, radius: 1 };
        // SAFETY: as above; the second chunk only tries a halo read, which is refused.
        let d = unsafe { Chunk::<u32>::new(&v, &other, 0) };
        assert!(
            panics(|| {
                let _ = d.output_halo::<f64>(0);
            })
            .contains("written in this group")
        );
        // A partial without run_reduce.
        assert!(panics(|| c.set_partial(1u64)).contains("run_reduce"));
    }

    #[test]
    fn the_access_mask_refuses_both_orders() {
        let m = AccessMask::default();
        assert!(m.halo_read(3));
        assert!(!m.write(3));
        assert!(m.write(2));
        assert!(!m.halo_read(2));
        m.clear();
        assert!(m.write(3) && m.write(3));
        let m = AccessMask::default();
        assert!(m.halo_read_local(3) && !m.write_local(3));
        assert!(m.write_local(2) && !m.halo_read_local(2));
    }
}
