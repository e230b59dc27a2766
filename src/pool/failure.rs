//! Waiting for a job, and what happens when a worker dies.
//!
//! The parent waits with a brief spin on the completion condition, then sleeps in `poll` on
//! its wake pipe (one byte from the worker that finished the job) and every worker's exit
//! descriptor (a pidfd, or a forkserver worker's status pipe: `liveness.rs`), so it wakes when
//! the job is done *or* a worker dies, whichever comes first. Each time it wakes it reaps any
//! worker that ended (`waitpid(WNOHANG)` for a forked one, its `Process` status otherwise) and
//! starts its replacement. Where a worker has no exit descriptor (kernels before Linux 5.3 have
//! no pidfds) the sleep lasts at most [`SLICE`], so a death is still noticed within one slice.
//! The dead worker's `held` slot
//! names the chunk it was claiming or running; the chunk becomes a *suspect*, resolved once the
//! shared state is stable (README.md, "Death"): either someone else has it (nothing lost), or it
//! is lost and is re-queued (retries left) or counted as failed with [`Error::WorkerDied`].

use std::os::fd::AsFd;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::active::Active;
use super::codec;
use super::control::RETRY_RING;
use super::state::{Pool, PoolState};
use super::task_clock;
use super::words::{JobIndex, ParentSleep};
use super::worker;
use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::segment::handle::Locator;
use crate::sys;
use crate::sys::proc::Exit;

/// The longest the parent sleeps before checking worker liveness again when some worker has no
/// exit descriptor to wake it.
pub(crate) const SLICE: Duration = Duration::from_millis(10);
/// The longest the parent sleeps when every worker's death wakes it: a safety net only, for
/// nothing needs a periodic look then.
pub(crate) const WATCHED_SLICE: Duration = Duration::from_secs(1);
/// How soon the parent looks again at chunks held by dead workers that it could not resolve yet
/// (a live worker was taking the same chunk, or the retry ring was full): nothing wakes it for
/// those.
pub(crate) const SUSPECT_SLICE: Duration = Duration::from_millis(1);

/// How long the parent spins on the completion counter before it sleeps.
pub(crate) const PARENT_SPIN: Duration = Duration::from_micros(50);

/// The chunk of the job in flight that a dead worker's `held` word names, if any. The word is
/// the worker's to write: a chunk past the job (a corrupt or compromised worker) is none, so it
/// never becomes a lost chunk counted done, nor an index past the done bitmap.
fn held_chunk(held: JobIndex, a: &Active) -> Option<u64> {
    (held != JobIndex::NOTHING && held.job() == a.job && held.index() < a.chunks)
        .then(|| held.index())
}

impl Pool {
    /// Chunks finished and chunks in all, for the job in flight (or the last one).
    pub(crate) fn progress_now(&self) -> (u64, u64) {
        match &self.active {
            Some(a) => (self.ctl.finished(a.chunks, a.deaths), a.chunks),
            None => (0, 0),
        }
    }

    /// The error of task `task` (its index in the job; `None`: the chunk's error as a whole) of
    /// chunk `chunk` of the job in flight, if the chunk failed because the worker running it
    /// died (rather than because its kernel panicked): [`Error::TaskTimedOut`] for a task that
    /// ran past the task timeout, else [`Error::WorkerDied`] (saying so when the death was a
    /// timeout's kill for another task of the chunk).
    pub(crate) fn lost_task(&self, chunk: u64, task: Option<u64>) -> Option<Error> {
        let a = self.active.as_ref()?;
        let (_, pid, how, signal) = a.lost.iter().find(|l| l.0 == chunk)?;
        Some(self.lost_error(a, chunk, task, *pid, how.clone(), *signal))
    }

    /// What a lost chunk's death means for task `task` of it (see [`Pool::lost_task`]).
    fn lost_error(
        &self,
        a: &Active,
        chunk: u64,
        task: Option<u64>,
        pid: u32,
        how: String,
        signal: Option<i32>,
    ) -> Error {
        let timed = a.timed_out.iter().rfind(|t| t.0 == chunk && t.3 == pid);
        match (timed, self.task_timeout) {
            (Some(&(_, slow, in_call, _)), Some(after)) if task.is_none_or(|t| t == slow) => {
                Error::TaskTimedOut { task: in_call as usize, pid, after }
            }
            (Some(&(_, _, in_call, _)), Some(after)) => Error::WorkerDied {
                pid,
                how: format!(
                    "was killed (SIGKILL) by the pool because task {in_call} of the same chunk \
                     ran past the task timeout of {after:?}"
                ),
                chunk,
                signal,
            },
            _ => Error::WorkerDied { pid, how, chunk, signal },
        }
    }

    /// Kills every worker whose task has run past the pool's task timeout, noting which task
    /// it was; its death is then handled as any other (`check_workers`), its chunk lost or
    /// retried, and [`lost_task`](Pool::lost_task) reports the timeout. Before the kill the
    /// parent opens the worker's spill segments of the job's finished chunks
    /// ([`adopt_spills_of`](Pool::adopt_spills_of)): their memfds die with the worker, and
    /// those chunks' results must still read.
    fn enforce_task_timeout(&mut self) {
        let (Some(timeout), Some(a)) = (self.task_timeout, self.active.as_mut()) else { return };
        let now = task_clock::now_ns();
        let mut overdue = Vec::new();
        for (s, w) in self.slots.iter().enumerate() {
            let ws = &self.ctl.workers[s];
            let held = ws.held.load(SeqCst);
            if !w.alive || held == JobIndex::NOTHING || held.job() != a.job {
                continue;
            }
            let Some((task, in_call)) = task_clock::overdue(ws, timeout, now) else { continue };
            if a.timed_out.iter().any(|t| t.3 == w.pid) {
                continue; // killed already, not reaped yet
            }
            a.timed_out.push((held.index(), task, in_call, w.pid));
            overdue.push(s);
        }
        for s in overdue {
            // The worker is in its overdue task, so the done chunks' records name every spill
            // segment it holds of this job. (Should the task end in the instant between the
            // look and the kill and a next chunk spill into a new segment, that chunk's results
            // read as `Error::TaskValue`, as any dead worker's spills do.)
            self.adopt_spills_of(self.slots[s].pid);
            self.slots[s].kill();
        }
    }

    /// Opens the spill segments of the job in flight held by workers that retire
    /// (`maxtasksperchild`) and wait for that (`WorkerSlot::keeping`), keeping them in
    /// `Pool::adopted` for the results to read; then lets those workers exit.
    fn adopt_spills(&mut self) {
        for s in 0..self.slots.len() {
            let ws = &self.ctl.workers[s];
            if !self.slots[s].alive || !ws.keeping.is_set(SeqCst) {
                continue;
            }
            // Without a job in flight the results may be read next: the worker then waits for
            // the next publish.
            if self.active.is_none() {
                continue;
            }
            self.adopt_spills_of(self.slots[s].pid);
            self.ctl.workers[s].keeping.put(false, SeqCst);
        }
    }

    /// Opens the spill segments that worker `pid` (alive) holds for the finished chunks of the
    /// job in flight, keeping them in `Pool::adopted`, where the results are read from once
    /// the worker is gone (`staging.rs`). A segment that cannot be opened is left out: its
    /// results then read as `Error::TaskValue`, which says why.
    fn adopt_spills_of(&mut self, pid: u32) {
        let Some(a) = self.active.as_ref() else { return };
        let Some((base, n, chunk_size)) = a.results else { return };
        let base = base as *const u8;
        let adopted = self.adopted.get_mut();
        for chunk in 0..a.chunks {
            if !self.ctl.is_done(chunk) || self.ctl.is_failed(chunk) {
                continue;
            }
            let first = chunk as usize * chunk_size;
            // SAFETY: the region of the job in flight (staged for `n` tasks in chunks of
            // `chunk_size`), whose chunk is done without error: its entries and, when they are
            // spilled, its spill record are written.
            let t = unsafe { codec::entry_tag(base, first) };
            if t & codec::SPILLED == 0 {
                continue;
            }
            // SAFETY: as above, the entry is spilled.
            let key = unsafe { codec::spill_of(base, n, chunk as usize) };
            if key.0 != pid || adopted.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let loc = Locator::Anonymous { pid: key.0, fd: key.1 };
            if let Ok(seg) = Segment::open(&loc, Some(key.2), false) {
                adopted.push((key, seg));
            }
        }
    }

    /// How long until the next task of the job in flight reaches the task timeout.
    fn next_task_deadline(&self) -> Option<Duration> {
        let (timeout, a) = (self.task_timeout?, self.active.as_ref()?);
        let now = task_clock::now_ns();
        self.slots
            .iter()
            .enumerate()
            .filter(|(s, w)| {
                w.alive && !a.timed_out.iter().any(|t| t.3 == w.pid) && {
                    let held = self.ctl.workers[*s].held.load(SeqCst);
                    held != JobIndex::NOTHING && held.job() == a.job
                }
            })
            .filter_map(|(s, _)| task_clock::time_left(&self.ctl.workers[s], timeout, now))
            .min()
            // No task stamped yet: one may start right after this look (a lone `apply`'s
            // worker may not have woken), so look again within a quarter of the timeout.
            .or(Some(timeout / 4))
    }

    /// Whether the job in flight has finished every chunk.
    pub(crate) fn job_done(&self) -> bool {
        self.active.as_ref().is_none_or(|a| self.ctl.finished(a.chunks, a.deaths) >= a.chunks)
    }

    /// Waits until the job in flight is done or `deadline` passes; `Ok(true)` when done.
    pub(crate) fn wait_job(&mut self, deadline: Option<Instant>) -> Result<bool> {
        self.wait_until(deadline, false, Pool::job_done)
    }

    /// Waits until `ready` holds (or the job is over), or `deadline` passes; `Ok(true)` when
    /// `ready` holds. With `each_chunk`, workers wake the parent at every finished chunk.
    pub(crate) fn wait_until(
        &mut self,
        deadline: Option<Instant>,
        each_chunk: bool,
        ready: impl Fn(&Pool) -> bool,
    ) -> Result<bool> {
        self.check_owner()?;
        if self.active.is_none() || self.state == PoolState::Terminated {
            return Ok(true);
        }
        let t0 = Instant::now();
        let mut i = 0u32;
        while !ready(self) && i < 1 << 20 {
            std::hint::spin_loop();
            i += 1;
            if i.is_multiple_of(64) {
                // On an oversubscribed machine, let a runnable peer (the worker we wait for, or
                // the parent about to publish) have the core.
                std::thread::yield_now();
            }
            if i.is_multiple_of(64) && t0.elapsed() >= PARENT_SPIN {
                break;
            }
        }
        let mode = if each_chunk { ParentSleep::EACH_CHUNK } else { ParentSleep::UNTIL_DONE };
        loop {
            if ready(self) {
                return Ok(true);
            }
            // Without workers the job cannot end: on an error the pool has given up (it is
            // terminated, and records why for every later call) rather than hang.
            self.check_workers()?;
            if self.state == PoolState::Terminated || ready(self) {
                return Ok(true);
            }
            let now = Instant::now();
            let mut nap = self.nap();
            if let Some(d) = deadline {
                if now >= d {
                    return Ok(false);
                }
                nap = nap.min(d - now);
            }
            // Dekker-style with the workers (README.md, "Sleeping and waking"): say we sleep,
            // then look once more; a worker that finishes after that look sees the flag and
            // writes to the wake pipe, which makes the poll return at once.
            self.ctl.parent_sleeping.store(mode, SeqCst);
            if !ready(self) {
                self.sleep(nap);
            }
            self.ctl.parent_sleeping.store(ParentSleep::AWAKE, SeqCst);
        }
    }

    /// How long the parent may sleep before it must look again by itself.
    pub(crate) fn nap(&self) -> Duration {
        let nap = if self.active.as_ref().is_some_and(|a| !a.suspects.is_empty()) {
            SUSPECT_SLICE
        } else if self.slots.iter().any(|w| w.alive && w.exit_fd().is_none()) {
            SLICE
        } else {
            WATCHED_SLICE
        };
        // Wake at the next task deadline (a task that started between this look and the sleep
        // ends a full timeout later, after the next look).
        self.next_task_deadline().map_or(nap, |d| nap.min(d))
    }

    /// Sleeps at most `nap`, until a worker writes to the wake pipe or any worker ends; then
    /// empties the wake pipe if a worker wrote to it (no read syscall otherwise).
    pub(crate) fn sleep(&self, nap: Duration) {
        let mut fds = Vec::with_capacity(self.slots.len() + 1);
        fds.push(self.wake.r.as_fd());
        fds.extend(self.slots.iter().filter_map(|w| w.exit_fd()));
        // An error (none is expected: the descriptors are ours and open) only ends the nap
        // early; the caller looks at everything again anyway.
        if sys::fdpass::wait_readable_any(&fds, Some(nap)).unwrap_or(true) {
            sys::fdpass::drain(self.wake.r.as_fd());
        }
    }

    /// The result of the finished job in flight, which stops being in flight.
    pub(crate) fn take_outcome(&mut self) -> Result<()> {
        self.check_owner()?;
        let Some(a) = self.active.take() else { return Ok(()) };
        if self.state == PoolState::Terminated && self.ctl.finished(a.chunks, true) < a.chunks {
            return Err(self.stopped_error());
        }
        if let Some((chunk, pid, how, signal)) = a.lost.first().cloned() {
            return Err(self.lost_error(&a, chunk, None, pid, how, signal));
        }
        match self.ctl.read_error() {
            Some((_, chunk, pid, message)) => Err(Error::KernelPanicked { chunk, pid, message }),
            None => Ok(()),
        }
    }

    /// Waits out any job in flight and forgets its result (a handle that was leaked).
    pub(crate) fn finish_active(&mut self) -> Result<()> {
        if self.active.is_some() {
            self.wait_job(None)?;
            self.active = None;
        }
        Ok(())
    }

    /// Gives up: records why (`pid`, `how`: the words after "child process PID"), for every
    /// later call and pending result, and terminates the pool.
    pub(crate) fn give_up(&mut self, pid: u32, how: String) {
        if self.gave_up.is_none() && self.state != PoolState::Terminated {
            self.gave_up = Some((pid, how));
        }
        self.terminate();
    }

    /// Reaps workers that ended, replaces them, and resolves chunks they held.
    ///
    /// # Errors
    ///
    /// When the pool cannot go on (workers keep failing their initializer, a replacement cannot
    /// be started, a worker cannot be waited for), it gives up: it is terminated, and this and
    /// every later call report why ([`Pool::stopped_error`]).
    pub(crate) fn check_workers(&mut self) -> Result<()> {
        self.check_owner()?;
        self.enforce_task_timeout();
        self.adopt_spills();
        match self.replace_dead_workers() {
            Ok(()) => {
                self.resolve_suspects();
                Ok(())
            }
            Err((e, pid, why)) => {
                self.give_up(pid, why);
                Err(e)
            }
        }
    }

    /// [`check_workers`](Pool::check_workers) up to giving up: on an error, also the pid and
    /// the reason in words to record (after "child process PID").
    fn replace_dead_workers(&mut self) -> std::result::Result<(), (Error, u32, String)> {
        // Every worker that ended, before any replacement starts: a replacement may relaunch a
        // dead forkserver, which reaps the old one (`liveness.rs`).
        let mut ended = Vec::new();
        for slot in 0..self.slots.len() {
            let w = &mut self.slots[slot];
            // A forked worker through `waitpid`, a forkserver or spawn one through its
            // `Process` (`liveness.rs`).
            match w.try_exit(&mut self.server_death) {
                Ok(Some(end)) => ended.push((slot, w.pid, end)),
                Ok(None) => {}
                Err(e) => {
                    let why = format!(
                        "(a pool worker) could not be waited for ({e}); the pool gave up and is \
                         terminated: build a new pool"
                    );
                    return Err((e, w.pid, why));
                }
            }
        }
        for (slot, pid, end) in ended {
            let ws = &self.ctl.workers[slot];
            let retired = ws.retiring.is_set(SeqCst)
                && end.exit == Exit::Code(0)
                && end.server_died.is_none();
            let held = ws.held.load(SeqCst);
            let initialized = ws.initialized.is_set(SeqCst);
            if let Some(a) = self.active.as_mut() {
                // It may have died between its done bit and the done counter (H1).
                a.deaths = true;
            }
            if end.server_died.is_some() {
                // Killed with its forkserver: not the initializer's doing, nor proof that it
                // works (the new server's workers will tell).
            } else if initialized || retired {
                self.early_deaths = 0;
            } else {
                // Died before finishing the initializer: a failing initializer, say. Replacing
                // such workers forever would hang the job, so give up after a few in a row.
                // (Workers killed from outside once running do not count: README.md, "Death".)
                self.early_deaths += 1;
                if self.early_deaths > 2 * self.slots.len() as u32 + 2 {
                    let how = format!(
                        "failed in the pool's initializer ({}): the worker initializer failed {} \
                         times in a row, so the pool is terminated; fix the initializer, then \
                         build a new pool",
                        end.how(),
                        self.early_deaths
                    );
                    return Err((Error::PoolGaveUp { pid, how: how.clone() }, pid, how));
                }
            }
            let mut unheld = None;
            if !retired
                && let Some(a) = self.active.as_mut()
                && let Some(chunk) = held_chunk(held, a)
            {
                a.suspects.push((chunk, pid, end));
            } else {
                unheld = Some(end);
            }
            if self.state == PoolState::Running && !std::thread::panicking() {
                // With the pool's own start method.
                match worker::start(&self.ctl, &self.launch, &self.wake, slot) {
                    Ok(w) => self.slots[slot] = w,
                    Err(e) => {
                        let ended = unheld.map_or_else(|| "ended".to_string(), |h| h.how());
                        let why = format!(
                            "(a pool worker) {ended}, and a replacement could not be started \
                             ({e}); the pool gave up and is terminated: build a new pool"
                        );
                        return Err((e, pid, why));
                    }
                }
            }
        }
        Ok(())
    }

    /// Decides, for each chunk a dead worker held, whether it was lost. The reads go in the
    /// reverse order of the workers' writes (claim, then `held`, then the done bit), so a chunk
    /// is never judged lost while a live worker is taking or finishing it.
    fn resolve_suspects(&mut self) {
        let Some(a) = self.active.as_mut() else { return };
        if a.suspects.is_empty() {
            return;
        }
        let c = &*self.ctl;
        let mut keep = Vec::new();
        for (idx, pid, end) in std::mem::take(&mut a.suspects) {
            let e = JobIndex::new(a.job, idx);
            let pop = c.retry_pop.load(SeqCst);
            let push = c.retry_push.load(SeqCst);
            let in_ring = (pop..push).any(|k| c.retry_entry(k).load(SeqCst) == e);
            let cursor = c.cursor.load(SeqCst);
            // A cursor closed by a cancel (`cancel_unclaimed`: a dropped `imap`, a streamed
            // write that failed) marked every chunk nobody had claimed done, so a chunk of this
            // job not done under it was claimed. Read as unclaimed, a dead worker's chunk was
            // dropped as a suspect, never retried nor failed, and the wait never ended.
            let claimed = cursor.job() == a.job && (cursor.is_closed() || cursor.index() > idx);
            if in_ring || !claimed {
                continue; // it never got the chunk; another worker will.
            }
            let live_holder = self
                .slots
                .iter()
                .enumerate()
                .any(|(s, w)| w.alive && c.workers[s].held.load(SeqCst) == e);
            if live_holder {
                keep.push((idx, pid, end));
                continue;
            }
            if c.is_done(idx) {
                continue;
            }
            // Lost: nobody has it, it is not done, and it will not be claimed again.
            if a.retries_left > 0 && push - pop >= RETRY_RING as u64 {
                // Retries are left but the ring is full: keep the chunk a suspect and queue it
                // in a later slice, once workers have taken entries off the ring.
                keep.push((idx, pid, end));
            } else if a.retries_left > 0 {
                a.retries_left -= 1;
                c.retry_entry(push).store(e, SeqCst);
                c.retry_push.store(push + 1, SeqCst);
                c.wake_workers();
            } else {
                let (how, signal) = (end.how(), end.signal());
                a.lost.push((idx, pid, how, signal));
                c.mark_failed(idx);
                if c.mark_done(idx) {
                    c.done.fetch_add(1, SeqCst);
                }
            }
        }
        a.suspects = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_workers_chunk_past_the_job_is_none() {
        let a = Active::new(7, 4, 0);
        assert_eq!(held_chunk(JobIndex::new(7, 3), &a), Some(3));
        assert_eq!(held_chunk(JobIndex::new(7, 0), &a), Some(0));
        // Past the job's chunks, past the done bitmap, another job, nothing held.
        for held in [JobIndex::new(7, 4), JobIndex::new(7, 1 << 30), JobIndex::new(8, 1)] {
            assert_eq!(held_chunk(held, &a), None);
        }
        assert_eq!(held_chunk(JobIndex::NOTHING, &a), None);
    }
}
