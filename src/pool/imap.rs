//! The streaming results of [`Pool::imap`](crate::Pool::imap),
//! [`Pool::imap_unordered`](crate::Pool::imap_unordered) and
//! [`Pool::imap_buffered`](crate::Pool::imap_buffered): each result is read from shared memory
//! as soon as its chunk is done. Dropping one cancels the tasks no worker started and returns
//! at once (`cancel.rs`).

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::SeqCst;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::job::JobHandle;
use super::staging::{ResultSource, copy_plain};
use super::state::Pool;
use super::task_kernel;
use crate::error::{Error, Result};

/// A streaming job's handle: results are read from the pool as chunks finish.
pub(crate) type KeepHandle<'p> = JobHandle<'p, ()>;

/// Where a streaming job's results are read from.
pub(crate) type Source<'p, R> = Box<dyn ResultSource<R> + 'p>;

/// Ordered streaming results of [`Pool::imap`].
pub struct IMap<'p, R> {
    pub(crate) handle: KeepHandle<'p>,
    pub(crate) results: Source<'p, R>,
    pub(crate) n: usize,
    pub(crate) cs: usize,
    pub(crate) next: usize,
    pub(crate) error_given: bool,
}

impl<'p, R> IMap<'p, R> {
    /// The results of `n` tasks in chunks of `cs`, in order.
    pub(crate) fn new(
        handle: KeepHandle<'p>,
        results: Source<'p, R>,
        n: usize,
        cs: usize,
    ) -> IMap<'p, R> {
        IMap { handle, results, n, cs, next: 0, error_given: false }
    }
}

/// The error for task `task` (its index in the job; `None`: the chunk as a whole) of a failed
/// chunk: [`Error::TaskTimedOut`] or [`Error::WorkerDied`] if its worker was killed or died
/// ([`Pool::lost_task`]); else the job's recorded panic for the first one, a pointer to it for
/// later ones.
pub(crate) fn chunk_error(pool: &Pool, chunk: u64, task: Option<u64>, first: &mut bool) -> Error {
    if let Some(e) = pool.lost_task(chunk, task) {
        return e;
    }
    match pool.ctl.read_error() {
        Some((_, c, pid, message)) if c == chunk && !*first => {
            *first = true;
            // A plain-result task's argument that did not deserialize reads as that.
            task_kernel::typed_arg_failure(Error::KernelPanicked { chunk, pid, message })
        }
        _ => Error::KernelPanicked {
            chunk,
            pid: 0,
            message: "this chunk's task panicked too; only the first panic's message is kept"
                .to_string(),
        },
    }
}

impl<R> Iterator for IMap<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        if self.next >= self.n {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let chunk = (i / self.cs) as u64;
        if let Err(e) = self.handle.wait_until(None, |p| p.ctl.is_done(chunk)) {
            self.next = self.n;
            return Some(Err(e));
        }
        let pool = self.handle.pool();
        if !pool.ctl.is_done(chunk) {
            self.next = self.n;
            return Some(Err(pool.stopped_error()));
        }
        if pool.ctl.is_failed(chunk) {
            return Some(Err(chunk_error(pool, chunk, Some(i as u64), &mut self.error_given)));
        }
        Some(self.results.read(pool, i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.n - self.next, Some(self.n - self.next))
    }
}

impl<R> Drop for IMap<'_, R> {
    fn drop(&mut self) {
        self.handle.cancel_and_detach();
    }
}

/// Streaming results of [`Pool::imap_unordered`]: `(index, result)` as chunks finish.
pub struct IMapUnordered<'p, R> {
    pub(crate) handle: KeepHandle<'p>,
    pub(crate) results: Source<'p, R>,
    pub(crate) n: usize,
    pub(crate) cs: usize,
    /// Chunks already handed out, one bit each.
    pub(crate) yielded: Vec<u64>,
    /// Words of `yielded` below this are full.
    pub(crate) low: usize,
    /// The chunk being handed out: next index, end.
    pub(crate) current: Option<(usize, usize)>,
    pub(crate) left: usize,
    pub(crate) error_given: bool,
}

impl<'p, R> IMapUnordered<'p, R> {
    /// The results of `n` tasks in chunks of `cs`, as they finish.
    pub(crate) fn new(
        handle: KeepHandle<'p>,
        results: Source<'p, R>,
        n: usize,
        cs: usize,
    ) -> IMapUnordered<'p, R> {
        let chunks = n.div_ceil(cs);
        IMapUnordered {
            handle,
            results,
            n,
            cs,
            yielded: vec![0; chunks.div_ceil(64)],
            low: 0,
            current: None,
            left: chunks,
            error_given: false,
        }
    }
}

impl<R> Drop for IMapUnordered<'_, R> {
    fn drop(&mut self) {
        self.handle.cancel_and_detach();
    }
}

/// Finds a finished chunk not yet handed out, and marks it handed out.
fn take_done(pool: &Pool, yielded: &mut [u64], low: &mut usize, chunks: usize) -> Option<usize> {
    while *low < yielded.len() && yielded[*low] == u64::MAX {
        *low += 1;
    }
    for (w, y) in yielded.iter_mut().enumerate().skip(*low) {
        let fresh = pool.ctl.done_bits[w].load(SeqCst) & !*y;
        if fresh != 0 {
            let c = w * 64 + fresh.trailing_zeros() as usize;
            if c < chunks {
                *y |= 1 << (c % 64);
                return Some(c);
            }
        }
    }
    None
}

impl<R> Iterator for IMapUnordered<'_, R> {
    type Item = Result<(usize, R)>;

    fn next(&mut self) -> Option<Result<(usize, R)>> {
        loop {
            if let Some((i, end)) = self.current {
                if i < end {
                    self.current = Some((i + 1, end));
                    return Some(self.results.read(self.handle.pool(), i).map(|r| (i, r)));
                }
                self.current = None;
            }
            if self.left == 0 {
                return None;
            }
            let chunks = self.n.div_ceil(self.cs);
            let pool = self.handle.pool();
            match take_done(pool, &mut self.yielded, &mut self.low, chunks) {
                Some(c) => {
                    self.left -= 1;
                    if pool.ctl.is_failed(c as u64) {
                        return Some(Err(chunk_error(pool, c as u64, None, &mut self.error_given)));
                    }
                    self.current = Some((c * self.cs, ((c + 1) * self.cs).min(self.n)));
                }
                None => {
                    let (yielded, low) = (&self.yielded, self.low);
                    let ok = self.handle.wait_until(None, |p| {
                        p.ctl.done_bits[low..yielded.len()]
                            .iter()
                            .zip(&yielded[low..])
                            .any(|(d, y)| d.load(SeqCst) & !y != 0)
                    });
                    match ok {
                        Err(e) => {
                            self.left = 0;
                            return Some(Err(e));
                        }
                        Ok(_) if self.handle.terminated() => {
                            // Terminated under us: nothing more will finish.
                            self.left = 0;
                            return Some(Err(self.handle.pool().stopped_error()));
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}

/// Ordered streaming results of [`Pool::imap_buffered`]: the input is read `buffersize`
/// items at a time, each batch one job, so at most `buffersize` arguments and results are
/// held at once however long (or endless) the input is.
pub struct IMapBuffered<'p, I, A, R> {
    /// The batch in flight (its indices are the batch's; errors name the whole call's).
    pub(crate) inner: IMap<'p, R>,
    /// The input; `None` once exhausted.
    pub(crate) source: Option<I>,
    pub(crate) buffersize: usize,
    /// Whether `A` and `R` are plain ([`is_plain`](super::staging::is_plain)): batches go as
    /// raw bytes, run by [`task_from`](super::task_kernel::task_from) (`trampoline`).
    pub(crate) plain: bool,
    pub(crate) trampoline: usize,
    pub(crate) kernel: usize,
    /// The index in the whole call of the next batch's first task.
    pub(crate) first: usize,
    pub(crate) _a: PhantomData<fn(A)>,
}

impl<'p, I, A, R> IMapBuffered<'p, I, A, R>
where
    I: Iterator<Item: Borrow<A>>,
    A: Serialize,
    R: DeserializeOwned + 'p,
{
    /// Stages and publishes the next batch (the last one is over: every result was read).
    fn start_batch(&mut self, items: &[I::Item]) -> Result<()> {
        let pool = self.inner.handle.pool_mut();
        let args = items.iter().map(Borrow::<A>::borrow);
        let (tramp, kernel) = (self.trampoline, self.kernel);
        let (spec, results): (_, Source<'p, R>) = if self.plain {
            // SAFETY: `A` and `R` are plain (`plain` says so, and was set by checking).
            let args = unsafe { copy_plain::<A>(args) };
            let first = [self.first as u64];
            // SAFETY: as above; `task_from` reads the batch's first index from array 1.
            let staged =
                unsafe { pool.stage_pod::<A, u64, R>(tramp, kernel, &args, Some(&first), 1)? };
            (staged.spec, Box::new(staged.results))
        } else {
            let staged = pool.stage_serial::<A, R>(tramp, kernel, args, Some(1), self.first)?;
            (staged.spec, Box::new(staged.results))
        };
        let job = if spec.len > 0 { pool.publish(&spec)? } else { 0 };
        self.inner.handle.rearm(job);
        self.inner.results = results;
        // The staged chunk size, not the 1 asked for: a batch of more tasks than a job has
        // chunks (`MAX_CHUNKS`) runs in larger chunks, and a task's result may be read only
        // once the chunk that holds it is done.
        (self.inner.n, self.inner.cs, self.inner.next) = (items.len(), spec.chunk_size, 0);
        self.inner.error_given = false;
        self.first += items.len();
        Ok(())
    }
}

impl<'p, I, A, R> Iterator for IMapBuffered<'p, I, A, R>
where
    I: Iterator<Item: Borrow<A>>,
    A: Serialize,
    R: DeserializeOwned + 'p,
{
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(r) = self.inner.next() {
                return Some(r);
            }
            let items: Vec<I::Item> = self.source.as_mut()?.take(self.buffersize).collect();
            if items.is_empty() {
                self.source = None;
                return None;
            }
            if let Err(e) = self.start_batch(&items) {
                self.source = None;
                return Some(Err(e));
            }
        }
    }
}
