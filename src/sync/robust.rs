//! `RobustMutex`: the robust pthread mutex every shmpool lock is built on, with a short spin
//! before the blocking call (glibc's adaptive mutexes cannot be robust, so the spin is ours),
//! and a record of which process holds it, so that a holder *thread* that died while its
//! process lives on (it leaked its guard) is not mistaken for a dead holder.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::wait;
use crate::sys::peer::{self, Fate};
use crate::sys::pthread::{LockStatus, MutexType, PthreadMutex, monotonic_deadline};

/// The most robust locks one thread may hold: the kernel walks at most this many entries of a
/// dead thread's robust list (`ROBUST_LIST_LIMIT`), newest first, so the oldest of any more
/// would stay locked forever when the thread dies. Taking one more fails with
/// [`Failed::TooManyHeld`].
pub(crate) const ROBUST_LIST_LIMIT: u32 = 2048;

/// The error for a lock refused because this thread holds [`ROBUST_LIST_LIMIT`] already.
pub(crate) fn too_many_held() -> crate::error::Error {
    crate::error::Error::TooManyLocksHeld { held: ROBUST_LIST_LIMIT }
}

/// How long a locker that found a dead holder's process still running (a thread of it neither
/// exiting nor killed) keeps checking before it counts as alive for good: it may be a thread
/// that exited with a leaked guard while its process lives on, or one whose siblings have not
/// yet been scheduled to start exiting. Measured from the first locker that saw it running
/// (`since`), across calls and processes. A process that is dying is waited for without a cap.
const RUNNING_HOLDER_GRACE: Duration = Duration::from_secs(2);

const GRACE_NS: u64 = RUNNING_HOLDER_GRACE.as_nanos() as u64;

/// The longest nap between two looks at a dead holder's process.
const MAX_NAP: Duration = Duration::from_millis(10);

/// `depth` bits: the holding thread's acquisitions.
const COUNT: u32 = (1 << 30) - 1;
/// `depth` bit, while held: the caller got [`Acquired::OwnerDied`] after a deferral (the pthread
/// mutex is consistent already), and has not recovered: releasing makes the lock [`DEAD`].
const UNRECOVERED: u32 = 1 << 30;
/// `depth` value, while free: the last holder died and no locker could yet tell whether its
/// process is gone (its call's time ran out); `holder` keeps the dead holder's token, and the
/// pthread mutex was made consistent so that the next locker gets it and decides.
const DEFERRED: u32 = 1 << 31;
/// `depth` value: not recoverable for good (ours, for a pthread mutex made consistent by a
/// deferral; the native state for one released without `consistent`).
const DEAD: u32 = DEFERRED | UNRECOVERED;
const STATE: u32 = DEFERRED | UNRECOVERED;

thread_local! {
    /// The robust locks this thread holds: each is an entry of its robust list.
    static HELD: Cell<u32> = const { Cell::new(0) };
}

/// How long a lock call may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all (`try_lock`).
    Try,
    /// Until the lock is acquired.
    Block,
    /// At most this long.
    Timeout(Duration),
}

/// A successful acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The previous holder released it normally.
    Clean,
    /// The previous holder died holding it: the caller holds it now, and must make it
    /// consistent before releasing it, or it becomes unusable.
    OwnerDied,
}

/// Why a lock call did not acquire.
#[derive(Debug)]
pub(crate) enum Failed {
    NotRecoverable,
    WouldBlock,
    Timeout(Duration),
    WouldDeadlock,
    /// The calling thread holds [`ROBUST_LIST_LIMIT`] robust locks already.
    TooManyHeld,
    Io(io::Error),
}

/// A robust, process-shared mutex, to be placed in shared memory and initialised in place.
///
/// `holder`, `depth` and `since` are written only by the thread that holds `m` (plain atomic
/// loads and stores inside the critical section), so they cost no read-modify-write.
#[repr(C)]
pub(crate) struct RobustMutex {
    m: PthreadMutex,
    /// The `sys::peer` token (pid and start time) of the process whose thread holds `m`; 0 when
    /// free, or when the holder died between acquiring and recording (before any guard). While
    /// [`DEFERRED`], the dead holder's.
    holder: AtomicU64,
    /// How many times the holding thread acquired `m` ([`COUNT`] bits; above 1 only for a
    /// recursive mutex), and the [`UNRECOVERED`], [`DEFERRED`] and [`DEAD`] states.
    depth: AtomicU32,
    /// While a dead holder's process is being judged: when (monotonic clock, ns) a locker first
    /// found it still running; 0 otherwise.
    since: AtomicU64,
}

/// What a locker that took over a dead holder's lock makes of the holder's process.
enum Verdict {
    /// Gone, or never to run user code again: the caller may have the data.
    Gone,
    /// This process, or one still running after [`RUNNING_HOLDER_GRACE`]: a `&mut` from the
    /// leaked guard may still be in use.
    Alive,
    /// Still dying or running when the call's time ran out: a later call decides.
    Undecided,
}

impl RobustMutex {
    /// Initialises the mutex at `this`.
    ///
    /// # Safety
    ///
    /// As for [`PthreadMutex::init`]: `this` is writable, aligned, unused, never moves, and stays
    /// mapped while any thread holds it (a cell holding one reports
    /// [`held_in_this_process`](RobustMutex::held_in_this_process) from `ShmSafe::keep_mapped`).
    pub(crate) unsafe fn init(this: *mut RobustMutex, ty: MutexType) -> io::Result<()> {
        // SAFETY: forwarded from the caller, who makes `this` valid for writes and aligned.
        unsafe {
            (&raw mut (*this).holder).write(AtomicU64::new(0));
            (&raw mut (*this).depth).write(AtomicU32::new(0));
            (&raw mut (*this).since).write(AtomicU64::new(0));
            PthreadMutex::init(&raw mut (*this).m, ty)
        }
    }

    /// Acquires the mutex: one attempt, then (unless `Wait::Try`) a short spin that watches the
    /// lock word and only tries when it looks free, then the blocking call. (A timed call takes
    /// its deadline after the first attempt, a few nanoseconds after the call's start.)
    ///
    /// [`Acquired::OwnerDied`] only when the recorded holder process can never use the guard
    /// again: it is gone, or every thread of it is exiting. If it is this process, or another
    /// that still runs, a thread of it exited with the lock held, which safe code does only by
    /// leaking its guard, and a `&mut` taken from that guard may still be in use. Handing out a
    /// second guard would alias it, so the mutex is released without being made consistent
    /// (not recoverable from then on, for every process, as a leaked `std::sync::MutexGuard`
    /// leaves a std mutex locked forever) and the call fails with [`Failed::NotRecoverable`].
    /// A holder process that is dying is waited for; one that still looks alive is given
    /// [`RUNNING_HOLDER_GRACE`] to start dying. Neither wait outlasts the call's own deadline:
    /// `Try` and `Timeout` give up with `WouldBlock`/`Timeout` and leave the decision to a
    /// later call ([`DEFERRED`]).
    ///
    /// [`Failed::TooManyHeld`] when the calling thread holds [`ROBUST_LIST_LIMIT`] robust locks
    /// already (a recursive re-entry adds none, and is allowed).
    pub(crate) fn acquire(&self, how: Wait) -> Result<Acquired, Failed> {
        // Before the lock: the first call in a process reads /proc.
        let me = peer::me();
        let held = HELD.get();
        if held < ROBUST_LIST_LIMIT {
            // The fast path: one attempt (a compare-and-swap in glibc), a free mutex in none of
            // our states.
            let first = self.m.try_lock();
            if let LockStatus::Acquired = first {
                let depth = self.depth.load(Ordering::Relaxed);
                if depth == 0 {
                    self.holder.store(me, Ordering::Relaxed);
                    self.depth.store(1, Ordering::Relaxed);
                    HELD.set(held + 1);
                    return Ok(Acquired::Clean);
                }
            }
            return self.acquire_slow(how, me, held, Some(first));
        }
        self.acquire_slow(how, me, held, None)
    }

    /// Everything but an uncontended acquisition: `first` is the outcome of the fast path's
    /// attempt (`None`: not made, the thread is at [`ROBUST_LIST_LIMIT`]).
    #[inline(never)]
    fn acquire_slow(
        &self,
        how: Wait,
        me: u64,
        held: u32,
        first: Option<LockStatus>,
    ) -> Result<Acquired, Failed> {
        if first.is_none() && !self.maybe_mine(me) {
            return Err(Failed::TooManyHeld);
        }
        let until = match how {
            Wait::Timeout(d) => Some(monotonic_deadline(d)),
            _ => None,
        };
        let got = self.take(how, until.as_ref(), first);
        match got {
            Ok(Acquired::Clean) => {
                let depth = self.depth.load(Ordering::Relaxed);
                if depth == 0 && held < ROBUST_LIST_LIMIT {
                    self.holder.store(me, Ordering::Relaxed);
                    self.depth.store(1, Ordering::Relaxed);
                    HELD.set(held + 1);
                    got
                } else {
                    self.clean_slow(depth, me, held, how, until.as_ref())
                }
            }
            Ok(Acquired::OwnerDied) => self.owner_died(me, held, how, until.as_ref()),
            Err(_) => got,
        }
    }

    /// Whether the calling thread may hold the mutex already, so that locking it again adds no
    /// robust-list entry (a recursive re-entry, or `WouldDeadlock`). Read outside the lock, so
    /// only a hint (another thread of this process may hold it): an acquisition that does add
    /// an entry past the limit is undone in [`clean_slow`](Self::clean_slow) and
    /// [`owner_died`](Self::owner_died).
    #[cold]
    #[inline(never)]
    fn maybe_mine(&self, me: u64) -> bool {
        self.depth.load(Ordering::Relaxed) & COUNT != 0 && self.holder.load(Ordering::Relaxed) == me
    }

    /// A clean acquisition off the fast path: a recursive re-entry, one past the limit, or a
    /// mutex in one of our own states ([`DEFERRED`], [`DEAD`]).
    #[cold]
    #[inline(never)]
    fn clean_slow(
        &self,
        depth: u32,
        me: u64,
        held: u32,
        how: Wait,
        until: Option<&libc::timespec>,
    ) -> Result<Acquired, Failed> {
        if depth & STATE == DEAD {
            let _ = self.m.unlock();
            return Err(Failed::NotRecoverable);
        }
        if depth & STATE == DEFERRED {
            if held >= ROBUST_LIST_LIMIT {
                let _ = self.m.unlock(); // still deferred, for a locker that may take it
                return Err(Failed::TooManyHeld);
            }
            let was = self.holder.load(Ordering::Relaxed);
            return self.decide(was, me, held, how, until, false);
        }
        if depth == 0 {
            // A new entry in our robust list, past the limit (the hint in `acquire` was wrong).
            let _ = self.m.unlock();
            return Err(Failed::TooManyHeld);
        }
        // The holding thread again (a recursive mutex): glibc counted it, no new list entry.
        if depth & COUNT == COUNT {
            let _ = self.m.unlock();
            return Err(Failed::Io(io::Error::from_raw_os_error(libc::EAGAIN)));
        }
        self.depth.store(depth + 1, Ordering::Relaxed);
        Ok(Acquired::Clean)
    }

    /// `EOWNERDEAD`: the kernel released the lock of a thread that died holding it.
    #[cold]
    #[inline(never)]
    fn owner_died(
        &self,
        me: u64,
        held: u32,
        how: Wait,
        until: Option<&libc::timespec>,
    ) -> Result<Acquired, Failed> {
        if self.depth.load(Ordering::Relaxed) & STATE == DEAD {
            // Declared not recoverable; the locker that found it so died before unlocking.
            let _ = self.m.unlock(); // without `consistent`: not recoverable, natively now
            return Err(Failed::NotRecoverable);
        }
        let was = self.holder.load(Ordering::Relaxed);
        if held >= ROBUST_LIST_LIMIT {
            self.defer(was, true);
            return Err(Failed::TooManyHeld);
        }
        self.decide(was, me, held, how, until, true)
    }

    /// Hands out (or not) a lock whose holder `was` died, held by the caller now. `native`: the
    /// pthread mutex is in the owner-died state (else it was [`DEFERRED`], and is consistent).
    fn decide(
        &self,
        was: u64,
        me: u64,
        held: u32,
        how: Wait,
        until: Option<&libc::timespec>,
        native: bool,
    ) -> Result<Acquired, Failed> {
        match self.verdict(was, me, how, until) {
            Verdict::Gone => {
                self.holder.store(me, Ordering::Relaxed);
                // glibc hands the owner-died mutex over with a count of 1, whatever the dead
                // holder's was.
                self.depth.store(if native { 1 } else { 1 | UNRECOVERED }, Ordering::Relaxed);
                self.since.store(0, Ordering::Relaxed);
                HELD.set(held + 1);
                Ok(Acquired::OwnerDied)
            }
            Verdict::Alive => {
                self.holder.store(0, Ordering::Relaxed);
                self.depth.store(DEAD, Ordering::Relaxed);
                self.since.store(0, Ordering::Relaxed);
                // A native owner-died mutex unlocked without `consistent` is not recoverable
                // for every later locker; a deferred one is, through `DEAD`.
                let _ = self.m.unlock();
                Err(Failed::NotRecoverable)
            }
            Verdict::Undecided => {
                self.defer(was, native);
                Err(match how {
                    Wait::Timeout(d) => Failed::Timeout(d),
                    Wait::Try | Wait::Block => Failed::WouldBlock,
                })
            }
        }
    }

    /// Gives a dead holder's lock back undecided, for a later locker to judge: consistent (so
    /// that unlocking leaves it usable), [`DEFERRED`], the dead holder's token kept.
    fn defer(&self, was: u64, native: bool) {
        if native {
            let _ = self.m.consistent();
        }
        self.holder.store(was, Ordering::Relaxed);
        self.depth.store(DEFERRED, Ordering::Relaxed);
        let _ = self.m.unlock();
    }

    /// Whether the process whose thread died holding the lock (token `was`) may still be using
    /// the guard's data. Judged by exit in progress, not by a timer: a process every thread of
    /// which is exiting (or gone) can never run user code again, however long the kernel takes
    /// to tear down its memory.
    fn verdict(&self, was: u64, me: u64, how: Wait, until: Option<&libc::timespec>) -> Verdict {
        if was == 0 {
            // It died between acquiring and recording: no guard existed.
            return Verdict::Gone;
        }
        if was == me {
            return Verdict::Alive;
        }
        let mut nap = Duration::from_micros(50);
        loop {
            match peer::fate(was) {
                Fate::Over => return Verdict::Gone,
                Fate::Dying => {} // waited for without a cap: it will be over soon
                Fate::Running => {
                    let now = now_ns();
                    match self.since.load(Ordering::Relaxed) {
                        0 => self.since.store(now.max(1), Ordering::Relaxed),
                        first if now.saturating_sub(first) >= GRACE_NS => return Verdict::Alive,
                        _ => {}
                    }
                }
            }
            let sleep = match (how, until) {
                (Wait::Block, _) => nap,
                (Wait::Timeout(_), Some(ts)) => match ns(ts).checked_sub(now_ns()) {
                    Some(left) if left > 0 => nap.min(Duration::from_nanos(left)),
                    _ => return Verdict::Undecided,
                },
                _ => return Verdict::Undecided,
            };
            std::thread::sleep(sleep);
            nap = (nap * 2).min(MAX_NAP);
        }
    }

    /// Takes the pthread mutex: `first` (the outcome of an attempt already made) or one
    /// attempt, then (unless `Wait::Try`) a short spin that watches the lock word and only
    /// tries when it looks free, then the blocking call (until `until` for `Wait::Timeout`).
    fn take(
        &self,
        how: Wait,
        until: Option<&libc::timespec>,
        first: Option<LockStatus>,
    ) -> Result<Acquired, Failed> {
        match first.unwrap_or_else(|| self.m.try_lock()) {
            LockStatus::Busy => {}
            other => return outcome(other, Duration::ZERO),
        }
        if matches!(how, Wait::Try) {
            return Err(Failed::WouldBlock);
        }
        let spun = wait::spin(|| {
            if self.m.looks_locked() {
                return None;
            }
            match self.m.try_lock() {
                LockStatus::Busy => None,
                other => Some(other),
            }
        });
        if let Some(st) = spun {
            return outcome(st, Duration::ZERO);
        }
        match (how, until) {
            (Wait::Timeout(d), Some(ts)) => outcome(self.m.lock_until(ts), d),
            _ => outcome(self.m.lock(), Duration::ZERO),
        }
    }

    /// Releases one acquisition. Only the thread that holds the mutex may call it (guards check
    /// that they were made in this process; being `!Send`, they drop on their own thread).
    pub(crate) fn release(&self) {
        let depth = self.depth.load(Ordering::Relaxed);
        if depth <= 1 {
            self.depth.store(0, Ordering::Relaxed);
            self.holder.store(0, Ordering::Relaxed);
            HELD.set(HELD.get().saturating_sub(1));
            let _ = self.m.unlock();
        } else {
            self.release_slow(depth);
        }
    }

    /// An inner release of a recursive mutex, or the last release of an owner-died outcome
    /// handed out after a deferral and never recovered (which makes the lock [`DEAD`], as
    /// glibc makes a native one not recoverable).
    #[cold]
    #[inline(never)]
    fn release_slow(&self, depth: u32) {
        if depth & COUNT > 1 {
            self.depth.store(depth - 1, Ordering::Relaxed);
        } else {
            self.holder.store(0, Ordering::Relaxed);
            self.since.store(0, Ordering::Relaxed);
            let last = if depth & UNRECOVERED != 0 { DEAD } else { 0 };
            self.depth.store(last, Ordering::Relaxed);
            HELD.set(HELD.get().saturating_sub(1));
        }
        let _ = self.m.unlock();
    }

    /// Whether a thread of this process holds the mutex, so that its memory must stay mapped
    /// (it is linked into that thread's robust list): what lock cells answer from
    /// [`ShmSafe::keep_mapped`](crate::segment::object::ShmSafe::keep_mapped).
    pub(crate) fn held_in_this_process(&self) -> bool {
        self.m.held_in_this_process()
    }

    /// The recorded holder's token (0: none).
    #[cfg(test)]
    pub(crate) fn holder_token(&self) -> u64 {
        self.holder.load(Ordering::Relaxed)
    }

    /// Marks a mutex acquired with [`Acquired::OwnerDied`] consistent, so that releasing it
    /// leaves it usable.
    pub(crate) fn make_consistent(&self) {
        // Fails (EINVAL, ignored) for an outcome handed out after a deferral: the pthread mutex
        // is consistent already, and `UNRECOVERED` is what says otherwise.
        let _ = self.m.consistent();
        let depth = self.depth.load(Ordering::Relaxed);
        if depth & UNRECOVERED != 0 {
            self.depth.store(depth & !UNRECOVERED, Ordering::Relaxed);
        }
    }
}

/// How many robust locks the calling thread holds.
#[cfg(test)]
pub(crate) fn held_by_this_thread() -> u32 {
    HELD.get()
}

/// Nanoseconds on the monotonic clock.
fn ns(ts: &libc::timespec) -> u64 {
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// Now, on the monotonic clock (the one `pthread_mutex_clocklock` deadlines use).
fn now_ns() -> u64 {
    ns(&monotonic_deadline(Duration::ZERO))
}

fn outcome(st: LockStatus, timeout: Duration) -> Result<Acquired, Failed> {
    match st {
        LockStatus::Acquired => Ok(Acquired::Clean),
        LockStatus::OwnerDied => Ok(Acquired::OwnerDied),
        LockStatus::NotRecoverable => Err(Failed::NotRecoverable),
        LockStatus::Busy => Err(Failed::WouldBlock),
        LockStatus::TimedOut => Err(Failed::Timeout(timeout)),
        LockStatus::Deadlock => Err(Failed::WouldDeadlock),
        LockStatus::Other(e) => Err(Failed::Io(e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::mem::MaybeUninit;
    use std::time::Instant;

    use super::*;

    /// Robust mutexes in this process's heap, for tests that need many (no segment, no fd).
    pub(crate) struct Many(Box<[MaybeUninit<RobustMutex>]>);

    impl Many {
        pub(crate) fn new(n: usize, ty: MutexType) -> Many {
            let mut b = Box::new_uninit_slice(n);
            for m in b.iter_mut() {
                // SAFETY: a fresh, aligned, unused slot of a boxed slice that never moves, and
                // that `Drop` leaks rather than frees while a thread of ours holds one.
                unsafe { RobustMutex::init(m.as_mut_ptr(), ty).unwrap() };
            }
            Many(b)
        }

        pub(crate) fn get(&self, i: usize) -> &RobustMutex {
            // SAFETY: every slot was initialised in `new`.
            unsafe { self.0[i].assume_init_ref() }
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }

    impl Drop for Many {
        fn drop(&mut self) {
            // A held robust mutex is linked into its thread's robust list through its memory.
            if (0..self.len()).any(|i| self.get(i).held_in_this_process()) {
                std::mem::forget(std::mem::take(&mut self.0));
            }
        }
    }

    fn one(ty: MutexType) -> Many {
        Many::new(1, ty)
    }

    #[test]
    fn a_thread_holding_as_many_as_the_kernel_releases_cannot_take_one_more() {
        // A thread of its own: the count is per thread, and starts at 0 there.
        std::thread::spawn(|| {
            let limit = ROBUST_LIST_LIMIT as usize;
            let many = Many::new(limit + 1, MutexType::ErrorCheck);
            let reentrant = one(MutexType::Recursive);
            let r = reentrant.get(0);
            assert!(matches!(r.acquire(Wait::Try), Ok(Acquired::Clean)));
            for i in 1..limit {
                assert!(matches!(many.get(i).acquire(Wait::Try), Ok(Acquired::Clean)), "{i}");
            }
            assert_eq!(held_by_this_thread(), ROBUST_LIST_LIMIT);
            let last = many.get(limit);
            let t0 = Instant::now();
            for how in [Wait::Try, Wait::Block, Wait::Timeout(Duration::from_secs(5))] {
                assert!(matches!(last.acquire(how), Err(Failed::TooManyHeld)), "{how:?}");
            }
            assert!(t0.elapsed() < Duration::from_secs(1), "refused at once");
            assert!(!last.held_in_this_process(), "nothing was taken");
            // Re-entering a recursive mutex it holds adds no robust-list entry: allowed, and
            // counted once.
            assert!(matches!(r.acquire(Wait::Block), Ok(Acquired::Clean)));
            r.release();
            assert_eq!(held_by_this_thread(), ROBUST_LIST_LIMIT);
            // Relocking an error-checking one it holds is still WouldDeadlock.
            assert!(matches!(many.get(1).acquire(Wait::Try), Err(Failed::WouldDeadlock)));
            // One released: one more may be taken.
            r.release();
            assert_eq!(held_by_this_thread(), ROBUST_LIST_LIMIT - 1);
            assert!(matches!(last.acquire(Wait::Block), Ok(Acquired::Clean)));
            assert!(matches!(r.acquire(Wait::Try), Err(Failed::TooManyHeld)));
            for i in 1..=limit {
                many.get(i).release();
            }
            assert_eq!(held_by_this_thread(), 0);
            assert!(matches!(r.acquire(Wait::Try), Ok(Acquired::Clean)));
            r.release();
        })
        .join()
        .unwrap();
    }

    /// A mutex whose holder thread died while `holder` named `token`'s process (the test plays
    /// another process's thread: it records `token` in place of its own).
    fn died_holding(token: u64) -> Many {
        let m = one(MutexType::ErrorCheck);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(m.get(0).acquire(Wait::Try), Ok(Acquired::Clean)));
                m.get(0).holder.store(token, Ordering::Relaxed);
            })
            .join()
            .unwrap(); // pthread_join: the kernel has walked the thread's robust list
        });
        m
    }

    #[test]
    fn a_running_holder_process_defers_try_and_timed_calls_then_is_not_recoverable() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let token = peer::pack(child.id(), peer::start_time(child.id()).unwrap_or(0));
        let m = died_holding(token);
        let m = m.get(0);
        // Neither call waits past its own deadline: it gives up undecided.
        let t0 = Instant::now();
        assert!(matches!(m.acquire(Wait::Try), Err(Failed::WouldBlock)));
        assert!(t0.elapsed() < Duration::from_millis(50), "{:?}", t0.elapsed());
        let t0 = Instant::now();
        let d = Duration::from_millis(30);
        assert!(matches!(m.acquire(Wait::Timeout(d)), Err(Failed::Timeout(t)) if t == d));
        let took = t0.elapsed();
        assert!(took >= d && took < Duration::from_millis(500), "{took:?}");
        assert_eq!(m.depth.load(Ordering::Relaxed), DEFERRED);
        assert_eq!(m.holder_token(), token, "the dead holder is remembered");
        // The grace counts from the first locker that saw it running, across calls: once it is
        // over, even a try decides.
        m.since.store(now_ns() - RUNNING_HOLDER_GRACE.as_nanos() as u64, Ordering::Relaxed);
        assert!(matches!(m.acquire(Wait::Try), Err(Failed::NotRecoverable)));
        for how in [Wait::Try, Wait::Block, Wait::Timeout(d)] {
            assert!(matches!(m.acquire(how), Err(Failed::NotRecoverable)), "{how:?}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(m.acquire(Wait::Block), Err(Failed::NotRecoverable)), "for good");
        assert_eq!(held_by_this_thread(), 0);
    }

    #[test]
    fn a_deferred_lock_goes_to_the_first_locker_after_the_holder_is_gone() {
        for recover in [true, false] {
            let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
            let token = peer::pack(child.id(), peer::start_time(child.id()).unwrap_or(0));
            let m = died_holding(token);
            let m = m.get(0);
            assert!(matches!(m.acquire(Wait::Try), Err(Failed::WouldBlock)));
            child.kill().unwrap();
            child.wait().unwrap();
            // Another thread than the deferring one, as would be the case in practice.
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert!(matches!(m.acquire(Wait::Try), Ok(Acquired::OwnerDied)));
                    assert_eq!(held_by_this_thread(), 1);
                    if recover {
                        m.make_consistent();
                    }
                    m.release();
                    assert_eq!(held_by_this_thread(), 0);
                });
            });
            if recover {
                assert!(matches!(m.acquire(Wait::Try), Ok(Acquired::Clean)));
                m.release();
                assert!(matches!(m.acquire(Wait::Block), Ok(Acquired::Clean)));
                m.release();
            } else {
                // Dropped unrecovered: unusable, as a native owner-died mutex would be.
                for how in [Wait::Try, Wait::Block, Wait::Timeout(Duration::from_millis(5))] {
                    assert!(matches!(m.acquire(how), Err(Failed::NotRecoverable)), "{how:?}");
                }
            }
        }
    }

    #[test]
    fn a_recursive_owner_died_outcome_after_a_deferral_counts_its_reentries() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let token = peer::pack(child.id(), peer::start_time(child.id()).unwrap_or(0));
        let m = one(MutexType::Recursive);
        let m = m.get(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(m.acquire(Wait::Try), Ok(Acquired::Clean)));
                m.holder.store(token, Ordering::Relaxed);
            })
            .join()
            .unwrap();
        });
        assert!(matches!(m.acquire(Wait::Try), Err(Failed::WouldBlock)));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(m.acquire(Wait::Block), Ok(Acquired::OwnerDied)));
        assert!(matches!(m.acquire(Wait::Try), Ok(Acquired::Clean))); // re-entered
        m.release(); // the inner one: still held, still unrecovered
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(m.acquire(Wait::Try), Err(Failed::WouldBlock))));
        });
        m.release();
        assert!(matches!(m.acquire(Wait::Try), Err(Failed::NotRecoverable)));
        assert_eq!(held_by_this_thread(), 0);
    }

    #[test]
    fn a_holder_that_died_before_recording_itself_gives_owner_died_at_once() {
        let m = died_holding(0);
        let t0 = Instant::now();
        assert!(matches!(m.get(0).acquire(Wait::Try), Ok(Acquired::OwnerDied)));
        assert!(t0.elapsed() < Duration::from_millis(50));
        m.get(0).make_consistent();
        m.get(0).release();
        assert!(matches!(m.get(0).acquire(Wait::Try), Ok(Acquired::Clean)));
        m.get(0).release();
    }
}
