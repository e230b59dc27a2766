//! Python's task API on the same engine: `apply`, `map`, `starmap`, `imap`, `imap_unordered`
//! and their `_async` forms, with Python's chunking defaults, over any serializable value; the
//! `try_*` forms for tasks returning `Result`; and the `*_pod` forms, the explicit zero-copy
//! path for any `Pod` type (primitive numbers take it by themselves).
//!
//! A task call is one job whose iteration space is the task list: arguments go into shared
//! memory (`staging.rs`: the control block's scratch area when they fit, else the task arena),
//! each chunk of `chunksize` tasks is claimed like any chunk, and each result comes back
//! through shared memory. Functions are `fn` pointers, so nothing of the parent's heap is ever
//! needed in a worker.
//!
//! **Which path.** The Python names (`apply`, `apply_async`, `map`, `map_async`, `imap`,
//! `imap_unordered`, `imap_buffered`, `starmap`, `starmap_async` and the `*_timeout` forms) copy
//! arguments and results as raw bytes when both are primitive numbers, fixed arrays of them or
//! tuples of one of them (`staging::is_plain`, by `TypeId`, which needs
//! `A: 'static`), and serialize them (postcard) otherwise. The `*_pod` names are the explicit
//! form, for any `Pod` type (a user's `#[derive(Pod)]` struct, which no `TypeId` list can
//! know). *Why `TypeId` and not a trait:* a trait with a "plain" constant would have to be
//! implemented by every serializable user type; Rust has no specialization to give it a default.
//! *Why not a `Pod` bound:* the raw path's internals (`stage_pod`, `task_kernel::task`) take no
//! bound and are `unsafe fn`s whose contract is "plain data", which a `Pod` bound or the
//! `TypeId` check each discharge: one trampoline per type pair, where dispatching to concrete
//! `Pod` types would monomorphise every pair of listed types at each call site.
//! A plain result with a serialized argument (`map(process_file, paths)` returning a count)
//! comes back as a raw slot too (`staging::stage_serial_plain`): no result entry, encoding or
//! decoding per task (`map`, `imap`, `imap_unordered`, `starmap`). `try_*` always serialize.
//! `map` of a `fn(String)` with a plain result copies the strings' bytes in as they are
//! (`staging::StringArg`, no postcard). `map_ref` takes a `fn(&B) -> R` whose argument
//! (`&str`, `&Path`, `&[T: Pod]`: `InPlace`) a worker borrows in place from the argument
//! region: no serialization or allocation per task (`README.md`, "Arguments borrowed in
//! place").

use std::any::TypeId;
use std::borrow::Borrow;
use std::marker::PhantomData;
use std::mem::size_of;
use std::time::Duration;

use bytemuck::Pod;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::async_result::AsyncResult;
use super::imap::{IMap, IMapBuffered, IMapUnordered, KeepHandle, Source};
use super::in_place::InPlace;
use super::job::JobHandle;
use super::kernel::Trampoline;
use super::staging::{
    ArgSource, Borrowed, PodResults, ResultSource, SerialResults, Staged, StringArg, copy_plain,
    is_plain, postcard_str_len,
};
use super::star::StarArgs;
use super::state::Pool;
use super::task_kernel::{self, Fallible, Plain, Ref, SerialTask, Star};
use crate::error::Result;

/// A published streaming job: its handle, where its results are read, its task count and
/// chunk size.
type Stream<'p, R> = (KeepHandle<'p>, Source<'p, R>, usize, usize);

/// Whether a task `fn(A) -> R` takes the raw-bytes path: both types are plain
/// ([`is_plain`]).
fn plain_pair<A: 'static, R: 'static>() -> bool {
    is_plain::<A>() && is_plain::<R>()
}

/// Every result of a finished job, in order; the first (lowest-index) task error.
fn all<R, S: ResultSource<R>>(results: &S, pool: &Pool, n: usize) -> Result<Vec<R>> {
    results.read_all(pool, n)
}

impl Pool {
    /// Publishes a staged job and returns a handle whose output is `finish(results, pool)`.
    fn launch<S: 'static, T: 'static>(
        &mut self,
        staged: Staged<S>,
        finish: impl FnOnce(&S, &Pool) -> Result<T> + 'static,
    ) -> Result<JobHandle<'_, Result<T>>> {
        let Staged { spec, results, deferred } = staged;
        debug_assert!(deferred.is_none(), "a streamed job is launched by launch_writing");
        let job = if spec.len > 0 { self.publish(&spec)? } else { 0 };
        Ok(JobHandle::new(self, job, Box::new(move |pool: &Pool| finish(&results, pool))))
    }

    /// [`launch`](Pool::launch) of a job whose arguments `args` may still be to write
    /// ([`Staged::deferred`]): it is published first, then written chunk by chunk, each chunk
    /// claimable once written, so the workers run the first chunks while this process writes
    /// the rest. A write that fails (a user's `AsRef` that changed its values) cancels the
    /// chunks not staged, waits for the ones running, and returns its error.
    fn launch_writing<S: 'static, T: 'static>(
        &mut self,
        mut staged: Staged<S>,
        args: &impl ArgSource,
        finish: impl FnOnce(&S, &Pool) -> Result<T> + 'static,
    ) -> Result<JobHandle<'_, Result<T>>> {
        let Some(base) = staged.deferred.take() else { return self.launch(staged, finish) };
        let Staged { spec, results, .. } = staged;
        let job = self.publish(&spec)?;
        let ctl = &*self.ctl;
        // A user's `AsRef` may panic mid-write: the chunks not staged are then cancelled too,
        // else they would never be claimed and the next wait for this job would never end.
        // `base` is the argument region `stage_region_plain` placed for these `args` and this
        // job (in the arena, sized for them); no other job is in flight (this one was just
        // published).
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: `base` as above; workers read only the chunks `mark_staged` has made
            // claimable, which `write_chunks` never writes again.
            unsafe {
                args.write_chunks(base as *mut u8, spec.chunk_size, &mut |k| {
                    ctl.mark_staged(k as u64);
                })
            }
        }));
        if !matches!(written, Ok(Ok(()))) {
            self.cancel_unclaimed();
            // The caller gets the write's error or panic; a pool that gave up meanwhile says
            // so at the next call.
            let _ = self.finish_active();
            match written {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) => unreachable!("matched above"),
            }
        }
        Ok(JobHandle::new(self, job, Box::new(move |pool: &Pool| finish(&results, pool))))
    }

    /// Publishes a staged streaming job.
    fn launch_streaming<'p, R: 'p, S: ResultSource<R> + 'p>(
        &'p mut self,
        staged: Staged<S>,
    ) -> Result<Stream<'p, R>> {
        let Staged { spec, results, deferred } = staged;
        debug_assert!(deferred.is_none(), "a streamed job is launched by launch_writing");
        let (n, cs) = (spec.len, spec.chunk_size);
        let job = if n > 0 { self.publish(&spec)? } else { 0 };
        Ok((JobHandle::new(self, job, Box::new(|_: &Pool| ())), Box::new(results), n, cs))
    }

    /// Stages `f` over `args` (`chunksize` defaults to 1), serialized or, for plain values, as
    /// raw bytes, and publishes it as a streaming job, for [`imap`](Pool::imap) and
    /// [`imap_unordered`](Pool::imap_unordered).
    fn serial_stream<A, R>(
        &mut self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<Stream<'_, R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if plain_pair::<A, R>() {
            // SAFETY: `A` and `R` are plain (checked).
            let args = unsafe { copy_plain::<A>(args) };
            // SAFETY: as above.
            return unsafe { self.pod_stream(f, &args, chunksize) };
        }
        if is_plain::<R>() {
            let tramp = task_kernel::task_serial_plain::<A, R> as Trampoline as usize;
            let cs = Some(chunksize.unwrap_or(1));
            // SAFETY: `R` is plain (checked), and no listed type is zero-sized.
            let staged = unsafe { self.stage_serial_plain::<A, R>(tramp, f as usize, args, cs)? };
            return self.launch_streaming(staged);
        }
        let tramp = task_kernel::task_serial::<Plain<A, R>> as Trampoline as usize;
        let staged =
            self.stage_serial::<A, R>(tramp, f as usize, args, Some(chunksize.unwrap_or(1)), 0)?;
        self.launch_streaming(staged)
    }

    /// Stages `f` over plain `args` (`chunksize` defaults to 1) and publishes it as a streaming
    /// job, for [`imap_pod`](Pool::imap_pod), [`imap_unordered_pod`](Pool::imap_unordered_pod)
    /// and the plain values of [`imap`](Pool::imap) and
    /// [`imap_unordered`](Pool::imap_unordered).
    ///
    /// # Safety
    ///
    /// `A` and `R` are plain data ([`stage_pod`](Pool::stage_pod)'s contract).
    unsafe fn pod_stream<A, R: 'static>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<Stream<'_, R>> {
        let tramp = task_kernel::task::<A, R> as Trampoline as usize;
        let cs = chunksize.unwrap_or(1);
        // SAFETY: per this function's contract.
        let staged = unsafe { self.stage_pod::<A, (), R>(tramp, f as usize, args, None, cs)? };
        self.launch_streaming(staged)
    }

    /// Stages `f(arg)` on plain values as raw bytes and publishes it; the output is the result.
    ///
    /// # Safety
    ///
    /// `A` and `R` are plain data ([`stage_pod`](Pool::stage_pod)'s contract).
    unsafe fn pod_apply<A, R: 'static>(
        &mut self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<JobHandle<'_, Result<R>>> {
        let tramp = task_kernel::task::<A, R> as Trampoline as usize;
        // SAFETY: per this function's contract.
        let staged = unsafe { self.stage_pod::<A, (), R>(tramp, f as usize, &[arg], None, 1)? };
        self.launch(staged, |r: &PodResults<R>, p| r.read(p, 0))
    }

    /// The job of [`map`](Pool::map) and [`map_async`](Pool::map_async): raw bytes for plain
    /// values, serialized otherwise.
    fn map_job<A, R>(
        &mut self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<JobHandle<'_, Result<Vec<R>>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if plain_pair::<A, R>() {
            // SAFETY: `A` and `R` are plain (checked).
            let args = unsafe { copy_plain::<A>(args) };
            // SAFETY: as above.
            return unsafe { self.pod_job(f, &args, chunksize) };
        }
        if is_plain::<R>() && TypeId::of::<A>() == TypeId::of::<String>() {
            // `map(process_file, paths)`: the strings' bytes go in as they are, as for
            // `map_ref`, each `String` made in the worker from them.
            self.check_running()?;
            let items: Vec<_> = args.into_iter().map(|a| StringArg(a, PhantomData)).collect();
            // The limit counts the encoded size, as on the paths that encode.
            let limit = self.max_task_bytes;
            let borrowed = Borrowed::<str, _>::counted(&items, limit, 0, postcard_str_len)?;
            let tramp = task_kernel::task_string_plain::<R> as Trampoline as usize;
            // SAFETY: `R` is plain (checked), and no listed type is zero-sized; `f` is a
            // `fn(String) -> R`, since `A` is `String` (checked), as the trampoline asks.
            let staged = unsafe {
                self.stage_region_plain::<R>(tramp, f as usize, &borrowed, chunksize, true)?
            };
            let job =
                self.launch_writing(staged, &borrowed, |r: &PodResults<R>, p| all(r, p, r.n))?;
            return Ok(job.recast_errors(task_kernel::typed_arg_failure));
        }
        if is_plain::<R>() {
            let tramp = task_kernel::task_serial_plain::<A, R> as Trampoline as usize;
            // SAFETY: `R` is plain (checked), and no listed type is zero-sized.
            let staged =
                unsafe { self.stage_serial_plain::<A, R>(tramp, f as usize, args, chunksize)? };
            let job = self.launch(staged, |r: &PodResults<R>, p| all(r, p, r.n))?;
            return Ok(job.recast_errors(task_kernel::typed_arg_failure));
        }
        self.serial_job::<A, R, Plain<A, R>>(f as usize, args, chunksize)
    }

    /// Stages serialized tasks run by `T` and publishes them; the output is every result.
    fn serial_job<A, R, T>(
        &mut self,
        kernel: usize,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<JobHandle<'_, Result<Vec<R>>>>
    where
        A: Serialize,
        R: DeserializeOwned + 'static,
        T: SerialTask,
    {
        let tramp = task_kernel::task_serial::<T> as Trampoline as usize;
        let staged = self.stage_serial::<A, R>(tramp, kernel, args, chunksize, 0)?;
        self.launch(staged, |r: &SerialResults<R>, pool| {
            pool.learn_result_size(r);
            all(r, pool, r.n)
        })
    }

    /// Calls `f(arg)` in a worker and returns its result (Python's `apply`). Arguments and
    /// results are any serializable values (postcard); primitive numbers and arrays of them are
    /// copied as raw bytes instead, by themselves (see [`apply_pod`](Pool::apply_pod) for other
    /// `Pod` types).
    ///
    /// # Errors
    ///
    /// [`Error::KernelPanicked`](crate::Error::KernelPanicked) if `f` panicked,
    /// [`Error::WorkerDied`](crate::Error::WorkerDied) if the worker died, and as for
    /// [`apply_async`](Pool::apply_async).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.apply(|x: u64| x * x, 12)?, 144);
    /// assert_eq!(pool.apply(|s: String| s.len(), "four".to_string())?, 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply<A, R>(&mut self, f: fn(A) -> R, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if plain_pair::<A, R>() {
            // SAFETY: `A` and `R` are plain (checked).
            return unsafe { self.pod_apply(f, arg) }?.wait()?;
        }
        let mut v = self.serial_job::<A, R, Plain<A, R>>(f as usize, [arg], Some(1))?.wait()??;
        Ok(v.pop().expect("one task, one result"))
    }

    /// [`apply`](Pool::apply) in the background.
    ///
    /// # Errors
    ///
    /// [`Error::PoolNotRunning`](crate::Error::PoolNotRunning) (or
    /// [`Error::PoolGaveUp`](crate::Error::PoolGaveUp) with the reason, if the pool gave up),
    /// [`Error::TaskValueTooLarge`](crate::Error::TaskValueTooLarge) for an argument over
    /// [`PoolBuilder::max_task_bytes`](crate::pool::PoolBuilder::max_task_bytes),
    /// [`Error::TaskValue`](crate::Error::TaskValue) for one that does not serialize, or OS
    /// errors staging it. (Every task call has these.) Result errors come from
    /// [`AsyncResult::get`].
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: f64| x.sqrt(), 2.0)?;
    /// assert!((r.get()? - 1.4142).abs() < 1e-3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async<A, R>(&mut self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<'_, R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if plain_pair::<A, R>() {
            // SAFETY: `A` and `R` are plain (checked).
            return Ok(AsyncResult::new(unsafe { self.pod_apply(f, arg) }?));
        }
        let tramp = task_kernel::task_serial::<Plain<A, R>> as Trampoline as usize;
        let staged = self.stage_serial::<A, R>(tramp, f as usize, [arg], Some(1), 0)?;
        Ok(AsyncResult::new(self.launch(staged, |r, pool| {
            pool.learn_result_size(r);
            r.read(pool, 0)
        })?))
    }

    /// Like [`apply`](Pool::apply) for a task that returns `Result`: its `Err` comes back as
    /// [`Error::TaskFailed`](crate::Error::TaskFailed) with the error's text (a panic stays
    /// [`Error::KernelPanicked`](crate::Error::KernelPanicked)).
    ///
    /// # Errors
    ///
    /// As for [`apply`](Pool::apply), and `TaskFailed`.
    ///
    /// ```no_run
    /// fn parse(s: String) -> Result<f64, std::num::ParseFloatError> {
    ///     s.parse()
    /// }
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.try_apply(parse, "2.5".to_string())?, 2.5);
    /// let e = pool.try_apply(parse, "two".to_string()).unwrap_err();
    /// assert!(matches!(e, shmpool::Error::TaskFailed { task: 0, .. }));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_apply<A, R, E>(&mut self, f: fn(A) -> std::result::Result<R, E>, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
        E: std::fmt::Display,
    {
        let mut v =
            self.serial_job::<A, R, Fallible<A, R, E>>(f as usize, [arg], Some(1))?.wait()??;
        Ok(v.pop().expect("one task, one result"))
    }

    /// `f` over every argument, results in order (Python's `map`). `args` is anything
    /// iterable over the arguments or references to them (`Vec<String>`, `&[u64]`, a range);
    /// `chunksize` defaults to Python's `ceil(len / (4 * workers))`. Primitive numbers and
    /// arrays of them travel as raw bytes, by themselves (as [`map_pod`](Pool::map_pod), the
    /// explicit form for other `Pod` types); so does a plain result of any argument.
    ///
    /// # Errors
    ///
    /// The first failure: a panic or a death ([`Error::KernelPanicked`](crate::Error::KernelPanicked),
    /// whose message names the task index, or [`Error::WorkerDied`](crate::Error::WorkerDied));
    /// else the lowest-index task whose result could not come back
    /// ([`Error::TaskValue`](crate::Error::TaskValue),
    /// [`Error::TaskValueTooLarge`](crate::Error::TaskValueTooLarge)).
    ///
    /// ```no_run
    /// fn process_file(path: String) -> usize {
    ///     path.len()
    /// }
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let paths = vec!["a.txt".to_string(), "bb.txt".to_string()];
    /// assert_eq!(pool.map(process_file, paths, None)?, [5, 6]);
    /// assert_eq!(pool.map(|x: u32| x * x, &[1, 2, 3], None)?, [1, 4, 9]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map<A, R>(
        &mut self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.map_job(f, args, chunksize)?.wait()?
    }

    /// [`map`](Pool::map) in the background.
    ///
    /// # Errors
    ///
    /// As for [`apply_async`](Pool::apply_async).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.map_async(|x: i32| -x, &[1, 2], Some(1))?;
    /// assert_eq!(r.get()?, [-1, -2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_async<A, R>(
        &mut self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        Ok(AsyncResult::new(self.map_job(f, args, chunksize)?))
    }

    /// Like [`map`](Pool::map) for a task that borrows its argument instead of owning it:
    /// `f` takes `&str`, `&[u8]`, `&Path` or `&[T]` of a `Pod` `T` ([`InPlace`]), and each
    /// worker hands it a reference straight into the shared memory the arguments were copied
    /// to: no serialization, no allocation per task (a `fn(String)` allocates each `String` in
    /// the worker, as `clone` would). `args` is a slice of anything `AsRef` of that type
    /// (`&[String]`, `&[&str]`, `&[PathBuf]`, `&[Vec<f64>]`). `f` is higher-ranked
    /// (`for<'a> fn(&'a str) -> R`), so its result cannot keep the borrow. Results come back
    /// as in [`map`](Pool::map): plain values as raw slots, others serialized.
    ///
    /// # Errors
    ///
    /// As for [`map`](Pool::map), except that an argument's size against
    /// [`max_task_bytes`](crate::pool::PoolBuilder::max_task_bytes) is the raw bytes staged
    /// (what the task borrows), not a serialized size; [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// for a `Pod` type aligned to more than 8 bytes or zero-sized; an argument that fails its
    /// type's check in the worker (a `str` that is not UTF-8: the region was overwritten) is
    /// [`Error::TaskValue`](crate::Error::TaskValue) naming the task.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let names: Vec<String> = (0..1000).map(|i| format!("/data/file-{i}.csv")).collect();
    /// let lens = pool.map_ref(|s: &str| s.len(), &names, None)?;
    /// assert_eq!(lens[999], 18);
    /// let upper = pool.map_ref(|s: &str| s.to_uppercase(), &["a", "b"], None)?; // serialized results
    /// assert_eq!(upper, ["A", "B"]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_ref<B, S, R>(
        &mut self,
        f: fn(&B) -> R,
        args: &[S],
        chunksize: Option<usize>,
    ) -> Result<Vec<R>>
    where
        B: InPlace + ?Sized,
        S: AsRef<B>,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.ref_job(f, args, chunksize)?.wait()?
    }

    /// [`map_ref`](Pool::map_ref) in the background.
    ///
    /// # Errors
    ///
    /// As for [`map_ref`](Pool::map_ref).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.map_ref_async(|b: &[u8]| b.len(), &[vec![1u8, 2], vec![]], None)?;
    /// assert_eq!(r.get()?, [2, 0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_ref_async<B, S, R>(
        &mut self,
        f: fn(&B) -> R,
        args: &[S],
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>>
    where
        B: InPlace + ?Sized,
        S: AsRef<B>,
        R: Serialize + DeserializeOwned + 'static,
    {
        Ok(AsyncResult::new(self.ref_job(f, args, chunksize)?))
    }

    /// Stages and publishes a [`map_ref`](Pool::map_ref): plain results as raw slots, others
    /// serialized.
    fn ref_job<B, S, R>(
        &mut self,
        f: fn(&B) -> R,
        args: &[S],
        chunksize: Option<usize>,
    ) -> Result<JobHandle<'_, Result<Vec<R>>>>
    where
        B: InPlace + ?Sized,
        S: AsRef<B>,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.check_running()?;
        let borrowed = Borrowed::<B, S>::new(args, self.max_task_bytes, 0)?;
        let kernel = f as usize;
        if is_plain::<R>() {
            let tramp = task_kernel::task_ref_plain::<B, R> as Trampoline as usize;
            // SAFETY: `R` is plain (checked), and no listed type is zero-sized.
            let staged =
                unsafe { self.stage_region_plain::<R>(tramp, kernel, &borrowed, chunksize, true)? };
            let job =
                self.launch_writing(staged, &borrowed, |r: &PodResults<R>, p| all(r, p, r.n))?;
            return Ok(job.recast_errors(task_kernel::typed_arg_failure));
        }
        let tramp = task_kernel::task_serial::<Ref<B, R>> as Trampoline as usize;
        let staged = self.stage_region::<R>(tramp, kernel, borrowed, chunksize, 0)?;
        self.launch(staged, |r: &SerialResults<R>, pool| {
            pool.learn_result_size(r);
            all(r, pool, r.n)
        })
    }

    /// Like [`map`](Pool::map) for tasks that return `Result`: the lowest-index `Err` comes
    /// back as [`Error::TaskFailed`](crate::Error::TaskFailed) with its task index and text.
    ///
    /// # Errors
    ///
    /// As for [`map`](Pool::map), and `TaskFailed`.
    ///
    /// ```no_run
    /// fn ratio(x: f64) -> Result<f64, String> {
    ///     if x == 0.0 { Err("division by zero".into()) } else { Ok(1.0 / x) }
    /// }
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.try_map(ratio, &[1.0, 2.0], None)?, [1.0, 0.5]);
    /// match pool.try_map(ratio, &[1.0, 0.0], None) {
    ///     Err(shmpool::Error::TaskFailed { task, message }) => assert_eq!((task, &*message), (1, "division by zero")),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_map<A, R, E>(
        &mut self,
        f: fn(A) -> std::result::Result<R, E>,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
        E: std::fmt::Display,
    {
        self.serial_job::<A, R, Fallible<A, R, E>>(f as usize, args, chunksize)?.wait()?
    }

    /// [`try_map`](Pool::try_map) in the background.
    ///
    /// # Errors
    ///
    /// As for [`apply_async`](Pool::apply_async).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.try_map_async(|x: u8| x.checked_mul(2).ok_or("overflow"), &[1, 200], None)?;
    /// assert!(matches!(r.get(), Err(shmpool::Error::TaskFailed { task: 1, .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_map_async<A, R, E>(
        &mut self,
        f: fn(A) -> std::result::Result<R, E>,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
        E: std::fmt::Display,
    {
        let job = self.serial_job::<A, R, Fallible<A, R, E>>(f as usize, args, chunksize)?;
        Ok(AsyncResult::new(job))
    }

    /// Runs `call` with every task it publishes bounded by `timeout` instead of the pool's
    /// [`task_timeout`](crate::pool::PoolBuilder::task_timeout); the pool's own comes back after.
    fn with_task_timeout<T>(
        &mut self,
        timeout: Duration,
        call: impl FnOnce(&mut Pool) -> Result<T>,
    ) -> Result<T> {
        // A job still in flight keeps the timeout it was published under.
        self.finish_active()?;
        let pools = self.task_timeout.replace(timeout);
        // A panic in `call` (the caller's argument iterator, or a `Serialize` impl, while
        // staging) must not leave the call's timeout on the pool.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&mut *self)));
        // `call` waited for its job (or published none): nothing in flight runs under
        // `timeout` any more.
        self.task_timeout = pools;
        out.unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// [`apply`](Pool::apply) with a deadline: if `f` runs longer than `timeout`, its worker is
    /// killed (SIGKILL) and replaced, and the call returns
    /// [`Error::TaskTimedOut`](crate::Error::TaskTimedOut) naming the task; the pool stays
    /// usable. The per-call form of
    /// [`PoolBuilder::task_timeout`](crate::pool::PoolBuilder::task_timeout), which this call
    /// overrides (later calls use the pool's again). The timeout counts from when a worker
    /// starts the task; with every worker free that is at once.
    ///
    /// # Errors
    ///
    /// As for [`apply`](Pool::apply), and `TaskTimedOut`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// fn forever(x: u32) -> u32 {
    ///     loop { std::hint::black_box(x); }
    /// }
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let e = pool.apply_timeout(forever, 1, Duration::from_millis(200)).unwrap_err();
    /// assert!(matches!(e, shmpool::Error::TaskTimedOut { task: 0, .. }));
    /// assert_eq!(pool.apply(|x: u32| x + 1, 1)?, 2); // still usable
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_timeout<A, R>(&mut self, f: fn(A) -> R, arg: A, timeout: Duration) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.with_task_timeout(timeout, |pool| pool.apply(f, arg))
    }

    /// [`map`](Pool::map) with a deadline per task: a task that runs longer than `timeout` has
    /// its worker killed (SIGKILL) and replaced, and the call returns
    /// [`Error::TaskTimedOut`](crate::Error::TaskTimedOut) naming it (the other tasks run on;
    /// the pool stays usable). As for the pool-wide
    /// [`PoolBuilder::task_timeout`](crate::pool::PoolBuilder::task_timeout), which this call
    /// overrides, a chunk of several tasks is lost with its worker: pass `chunksize` 1 to keep
    /// the tasks apart.
    ///
    /// # Errors
    ///
    /// As for [`map`](Pool::map), and `TaskTimedOut`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// fn stuck_at_3(x: u32) -> u32 {
    ///     while std::hint::black_box(x == 3) {}
    ///     x
    /// }
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let e = pool.map_timeout(stuck_at_3, 0..8u32, Some(1), Duration::from_millis(200));
    /// assert!(matches!(e, Err(shmpool::Error::TaskTimedOut { task: 3, .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_timeout<A, R>(
        &mut self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
        timeout: Duration,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.with_task_timeout(timeout, |pool| pool.map(f, args, chunksize))
    }

    /// `f(a, b, ...)` for every tuple, results in order (Python's `starmap`): tuples of 1 to 8
    /// serializable values ([`StarArgs`]). `args` is a slice, so its tuple type, which picks
    /// `f`'s arity, is known before `f` is (an empty literal needs its type:
    /// `&[] as &[(u8, u8)]`). Tuples of 1 to 4 primitive numbers of one type (`(f64, f64)`)
    /// with a primitive result travel as raw bytes, by themselves, as in [`map`](Pool::map).
    ///
    /// # Errors
    ///
    /// As for [`map`](Pool::map).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let hypot = pool.starmap(|x: f64, y: f64| x.hypot(y), &[(3.0, 4.0)], None)?; // raw bytes
    /// assert_eq!(hypot, [5.0]);
    /// let sums = pool.starmap(|a: u8, b: u16| a as u32 + b as u32, &[(1, 2), (3, 4)], None)?;
    /// assert_eq!(sums, [3, 7]);
    /// let args = [(1u8, 2u8, "x".to_string())];
    /// let three = pool.starmap(|a: u8, b: u8, c: String| format!("{a}{b}{c}"), &args, None)?;
    /// assert_eq!(three, ["12x"]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap<T, R>(
        &mut self,
        f: T::Fn<R>,
        args: &[T],
        chunksize: Option<usize>,
    ) -> Result<Vec<R>>
    where
        T: StarArgs + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.star_job::<T, R>(f, args, chunksize)?.wait()?
    }

    /// [`starmap`](Pool::starmap) in the background.
    ///
    /// # Errors
    ///
    /// As for [`map_async`](Pool::map_async).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.starmap_async(|a: u8, b: u8| a.max(b), &[(1, 2), (5, 4)], None)?;
    /// assert_eq!(r.get()?, [2, 5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap_async<T, R>(
        &mut self,
        f: T::Fn<R>,
        args: &[T],
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>>
    where
        T: StarArgs + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        Ok(AsyncResult::new(self.star_job::<T, R>(f, args, chunksize)?))
    }

    /// Stages and publishes a `starmap`.
    fn star_job<T, R>(
        &mut self,
        f: T::Fn<R>,
        args: &[T],
        chunksize: Option<usize>,
    ) -> Result<JobHandle<'_, Result<Vec<R>>>>
    where
        T: StarArgs + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        assert_eq!(size_of::<T::Fn<R>>(), size_of::<usize>(), "a star fn is a fn pointer");
        // SAFETY: `StarArgs` is sealed to tuples whose `Fn<R>` is a `fn` pointer, one `usize`
        // (checked above), which any bit pattern of that size read as an integer is.
        let kernel = unsafe { std::mem::transmute_copy::<T::Fn<R>, usize>(&f) };
        if plain_pair::<T, R>() {
            let cs = chunksize.unwrap_or_else(|| self.default_map_chunksize(args.len()));
            let tramp = task_kernel::task_star::<T, R> as Trampoline as usize;
            // SAFETY: `T` and `R` are plain (checked).
            let staged = unsafe { self.stage_pod::<T, (), R>(tramp, kernel, args, None, cs)? };
            return self.launch(staged, |r: &PodResults<R>, p| all(r, p, r.n));
        }
        if is_plain::<R>() {
            let tramp = task_kernel::task_star_serial_plain::<T, R> as Trampoline as usize;
            // SAFETY: `R` is plain (checked), and no listed type is zero-sized.
            let staged =
                unsafe { self.stage_serial_plain::<T, R>(tramp, kernel, args, chunksize)? };
            let job = self.launch(staged, |r: &PodResults<R>, p| all(r, p, r.n))?;
            return Ok(job.recast_errors(task_kernel::typed_arg_failure));
        }
        self.serial_job::<T, R, Star<T, R>>(kernel, args, chunksize)
    }

    /// `f` over every argument, yielding results in order as they become available (Python's
    /// `imap`; `chunksize` defaults to 1).
    ///
    /// # Errors
    ///
    /// As for [`apply_async`](Pool::apply_async). Each item is a `Result`: a task whose chunk
    /// failed, or whose result could not come back, yields the error.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// for (i, r) in pool.imap(|x: u64| x + 1, 0..100u64, None)?.enumerate() {
    ///     assert_eq!(r?, i as u64 + 1);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap<A, R>(
        &mut self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<IMap<'_, R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let (handle, results, n, cs) = self.serial_stream(f, args, chunksize)?;
        Ok(IMap::new(handle, results, n, cs))
    }

    /// Like [`imap`](Pool::imap) over any iterator, endless ones included, holding at most
    /// `buffersize` tasks at once (Python 3.14's `buffersize`; a `buffersize` of 0 counts as
    /// 1): the input is read `buffersize` items at a time, each batch one job whose results
    /// are yielded as they finish. Dropping the iterator cancels the tasks of the batch that
    /// no worker started and returns at once; the pool's next call waits for the ones running.
    /// Plain values travel as raw bytes, as in [`imap`](Pool::imap).
    ///
    /// # Errors
    ///
    /// As for [`imap`](Pool::imap); an error staging a later batch ends the iteration with
    /// that error. Task indices in errors count from the start of the input.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let lines = (0..).map(|i| format!("line {i}")); // endless
    /// let lens: Vec<usize> = pool
    ///     .imap_buffered(|s: String| s.len(), lines, 8)?
    ///     .take(100)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(lens[10], 7);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_buffered<A, R, I>(
        &mut self,
        f: fn(A) -> R,
        args: I,
        buffersize: usize,
    ) -> Result<IMapBuffered<'_, I::IntoIter, A, R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item: Borrow<A>>,
    {
        let plain = plain_pair::<A, R>();
        let trampoline = if plain {
            task_kernel::task_from::<A, R> as Trampoline as usize
        } else {
            task_kernel::task_serial::<Plain<A, R>> as Trampoline as usize
        };
        let kernel = f as usize;
        let none = std::iter::empty::<&A>();
        let staged = self.stage_serial::<A, R>(trampoline, kernel, none, Some(1), 0)?;
        let (handle, results, n, cs) = self.launch_streaming(staged)?;
        Ok(IMapBuffered {
            inner: IMap::new(handle, results, n, cs),
            source: Some(args.into_iter()),
            buffersize: buffersize.max(1),
            plain,
            trampoline,
            kernel,
            first: 0,
            _a: std::marker::PhantomData,
        })
    }

    /// Like [`imap`](Pool::imap), yielding `(index, result)` in the order chunks finish
    /// (Python's `imap_unordered`, with the index added so callers can place results).
    ///
    /// # Errors
    ///
    /// As for [`imap`](Pool::imap).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut total = 0;
    /// for r in pool.imap_unordered(|x: u64| x * 2, 0..100u64, None)? {
    ///     total += r?.1;
    /// }
    /// assert_eq!(total, 9900);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_unordered<A, R>(
        &mut self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<IMapUnordered<'_, R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let (handle, results, n, cs) = self.serial_stream(f, args, chunksize)?;
        Ok(IMapUnordered::new(handle, results, n, cs))
    }

    /// [`apply`](Pool::apply) for `Pod` values, copied as raw bytes: no serialization. The
    /// explicit form, for a user's `#[derive(Pod)]` type: `apply` takes this path by itself for
    /// primitive numbers and arrays of them.
    ///
    /// # Errors
    ///
    /// As for [`apply`](Pool::apply); [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// if `A` or `R` is aligned to more than 4096 bytes.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.apply_pod(|x: u64| x * x, 12)?, 144);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_pod<A: Pod, R: Pod>(&mut self, f: fn(A) -> R, arg: A) -> Result<R> {
        // SAFETY: `Pod` values are plain.
        unsafe { self.pod_apply(f, arg) }?.wait()?
    }

    /// [`apply_pod`](Pool::apply_pod) in the background.
    ///
    /// # Errors
    ///
    /// As for [`apply_pod`](Pool::apply_pod).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_pod_async(|x: f64| x.sqrt(), 2.0)?;
    /// assert!((r.get()? - 1.4142).abs() < 1e-3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_pod_async<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<AsyncResult<'_, R>> {
        // SAFETY: `Pod` values are plain.
        Ok(AsyncResult::new(unsafe { self.pod_apply(f, arg) }?))
    }

    /// [`map`](Pool::map) for `Pod` values, copied as raw bytes: no serialization. The explicit
    /// form, for a user's `#[derive(Pod)]` type: `map` takes this path by itself for primitive
    /// numbers and arrays of them.
    ///
    /// # Errors
    ///
    /// As for [`map`](Pool::map) and [`apply_pod`](Pool::apply_pod).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.map_pod(|x: u32| x * x, &[1, 2, 3], None)?, [1, 4, 9]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_pod<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<Vec<R>> {
        // SAFETY: `Pod` values are plain.
        unsafe { self.pod_job(f, args, chunksize) }?.wait()?
    }

    /// [`map_pod`](Pool::map_pod) in the background.
    ///
    /// # Errors
    ///
    /// As for [`apply_pod`](Pool::apply_pod).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.map_pod_async(|x: i32| -x, &[1, 2], Some(1))?;
    /// assert_eq!(r.get()?, [-1, -2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_pod_async<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>> {
        // SAFETY: `Pod` values are plain.
        Ok(AsyncResult::new(unsafe { self.pod_job(f, args, chunksize) }?))
    }

    /// Stages and publishes a `map_pod` (or a `map` of plain values).
    ///
    /// # Safety
    ///
    /// `A` and `R` are plain data ([`stage_pod`](Pool::stage_pod)'s contract).
    unsafe fn pod_job<A, R: 'static>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<JobHandle<'_, Result<Vec<R>>>> {
        let cs = chunksize.unwrap_or_else(|| self.default_map_chunksize(args.len()));
        let tramp = task_kernel::task::<A, R> as Trampoline as usize;
        // SAFETY: per this function's contract.
        let staged = unsafe { self.stage_pod::<A, (), R>(tramp, f as usize, args, None, cs)? };
        self.launch(staged, |r: &PodResults<R>, p| all(r, p, r.n))
    }

    /// [`imap`](Pool::imap) for `Pod` values, copied as raw bytes: no serialization.
    ///
    /// # Errors
    ///
    /// As for [`imap`](Pool::imap) and [`apply_pod`](Pool::apply_pod).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let args: Vec<u64> = (0..100).collect();
    /// assert_eq!(pool.imap_pod(|x: u64| x + 1, &args, None)?.count(), 100);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_pod<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<IMap<'_, R>> {
        // SAFETY: `Pod` values are plain.
        let (handle, results, n, cs) = unsafe { self.pod_stream(f, args, chunksize)? };
        Ok(IMap::new(handle, results, n, cs))
    }

    /// [`starmap`](Pool::starmap) of two `Pod` arguments, copied as raw bytes: no
    /// serialization.
    ///
    /// # Errors
    ///
    /// As for [`map_pod`](Pool::map_pod).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let sums = pool.starmap_pod(|a: u8, b: u16| a as u32 + b as u32, &[(1, 2), (3, 4)], None)?;
    /// assert_eq!(sums, [3, 7]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap_pod<A: Pod, B: Pod, R: Pod>(
        &mut self,
        f: fn(A, B) -> R,
        args: &[(A, B)],
        chunksize: Option<usize>,
    ) -> Result<Vec<R>> {
        self.pod2_job(f, args, chunksize)?.wait()?
    }

    /// [`starmap_pod`](Pool::starmap_pod) in the background.
    ///
    /// # Errors
    ///
    /// As for [`map_pod`](Pool::map_pod).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.starmap_pod_async(|a: u8, b: u8| a.max(b), &[(1, 2), (5, 4)], None)?;
    /// assert_eq!(r.get()?, [2, 5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap_pod_async<A: Pod, B: Pod, R: Pod>(
        &mut self,
        f: fn(A, B) -> R,
        args: &[(A, B)],
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>> {
        Ok(AsyncResult::new(self.pod2_job(f, args, chunksize)?))
    }

    /// Stages and publishes a `starmap_pod`.
    fn pod2_job<A: Pod, B: Pod, R: Pod>(
        &mut self,
        f: fn(A, B) -> R,
        args: &[(A, B)],
        chunksize: Option<usize>,
    ) -> Result<JobHandle<'_, Result<Vec<R>>>> {
        let cs = chunksize.unwrap_or_else(|| self.default_map_chunksize(args.len()));
        let (a, b): (Vec<A>, Vec<B>) = args.iter().copied().unzip();
        let tramp = task_kernel::task2::<A, B, R> as Trampoline as usize;
        // SAFETY: `Pod` values are plain.
        let staged = unsafe { self.stage_pod::<A, B, R>(tramp, f as usize, &a, Some(&b), cs)? };
        self.launch(staged, |r: &PodResults<R>, p| all(r, p, r.n))
    }

    /// [`imap_unordered`](Pool::imap_unordered) for `Pod` values, copied as raw bytes.
    ///
    /// # Errors
    ///
    /// As for [`imap_pod`](Pool::imap_pod).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let args: Vec<u64> = (0..100).collect();
    /// assert_eq!(pool.imap_unordered_pod(|x: u64| x * 2, &args, None)?.count(), 100);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_unordered_pod<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<IMapUnordered<'_, R>> {
        // SAFETY: `Pod` values are plain.
        let (handle, results, n, cs) = unsafe { self.pod_stream(f, args, chunksize)? };
        Ok(IMapUnordered::new(handle, results, n, cs))
    }
}
