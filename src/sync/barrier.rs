//! `Barrier`: parties wait until all have arrived (Python's `multiprocessing.Barrier`), with an
//! optional action run once per round before anyone is released (Python's `action=`).

use std::fmt;
use std::panic::catch_unwind;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::object_methods;
use super::robust::{Acquired, RobustMutex, Wait};
use super::wait::{self, Deadline, Left};
use crate::error::{Error, Result};
use crate::process::code::{self, CodeRanges, Receiver};
use crate::segment::header::Kind;
use crate::segment::object::{ShmBox, ShmSafe};
use crate::segment::options::ShmOptions;
use crate::sys::pthread::MutexType;
use crate::sys::{futex, peer};

/// The shared part of a [`Barrier`]. The state fields are atomics so that `&self` access is
/// sound, but they change only under `lock`; `seq` is the futex word waiters sleep on.
#[repr(C)]
pub(crate) struct BarrierCell {
    lock: RobustMutex,
    /// Bumped (under `lock`) on every release, break and reset.
    seq: AtomicU32,
    parties: u32,
    /// Parties waiting in the current generation.
    count: AtomicU32,
    /// The current generation: one per release or reset.
    generation: AtomicU32,
    /// 1 while broken.
    broken: AtomicU32,
    /// How the last 64 generations ended, newest in bit 0: 1 released, 0 reset while broken.
    history: AtomicU64,
    /// The process token (`sys::peer`: pid and start time) of the party waiting at arrival
    /// index `i` in the current generation (the first `WATCHED` parties), so that waiters can
    /// notice one that died, even when a new process got its pid.
    parties_waiting: [AtomicU64; WATCHED],
    /// The action's code offset (`process::code::to_offset`) when `has_action` is 1; set at
    /// creation, never changed.
    action: AtomicU64,
    has_action: AtomicU32,
    /// 1 while the last party of the current round runs the action (arrivals wait).
    acting: AtomicU32,
    /// A hash of the creating program's build fingerprint and executable file ([`build_hash`]):
    /// the offset names the action only in a process running the same file.
    build: AtomicU64,
}

/// A hash of shmpool's build fingerprint (`process::code::build_fingerprint`) and of the
/// executable file this process runs (device, inode, size, modification time of
/// `/proc/self/exe`). The fingerprint alone measures two of shmpool's own functions, which every
/// program linking this shmpool build places alike: another program opening the barrier by name
/// would match it and call the action's offset in its own, different code. The file's identity
/// holds in a fork and in a re-executed copy (spawn, the forkserver), which run the same file;
/// `/proc/self/exe` unreadable makes it 0, which only ever refuses more.
fn build_hash() -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    static HASH: OnceLock<u64> = OnceLock::new();
    *HASH.get_or_init(|| {
        let mut h = DefaultHasher::new();
        code::build_fingerprint().hash(&mut h);
        let exe = std::fs::metadata("/proc/self/exe")
            .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
        exe.unwrap_or_default().hash(&mut h);
        h.finish()
    })
}

/// How many waiting parties' tokens are recorded and watched.
const WATCHED: usize = 64;

/// How often a waiting party checks that the others still run.
const CHECK_EVERY: Duration = Duration::from_millis(100);

// The action is a code offset in an atomic, called only after the checks of `Barrier::action`.
// SAFETY: `#[repr(C)]` of a process-shared pthread mutex, atomics and a constant, used through
// `&self` only; no pointers, no `Drop`; `keep_mapped` is true while a thread of ours holds the
// internal lock, the only time one links into the cell.
unsafe impl ShmSafe for BarrierCell {
    fn keep_mapped(&self) -> bool {
        self.lock.held_in_this_process()
    }
}

/// Held while the barrier's state is read or changed.
struct StateLock<'a>(&'a BarrierCell);

impl Drop for StateLock<'_> {
    fn drop(&mut self) {
        self.0.lock.release();
    }
}

impl BarrierCell {
    /// Takes the state lock, waiting as long as it takes.
    fn state(&self) -> Result<StateLock<'_>> {
        match self.state_until(Deadline::NEVER)? {
            Some(held) => Ok(held),
            None => unreachable!("an untimed lock does not time out"),
        }
    }

    /// Takes the state lock, or `None` once `deadline` passes: a party stopped (SIGSTOP, a
    /// debugger) while holding it must not make the other parties miss their timeouts. After
    /// the deadline it still tries briefly (one attempt and a short spin), so that a waiter
    /// whose time is up can still learn whether its round was released.
    fn state_until(&self, deadline: Deadline) -> Result<Option<StateLock<'_>>> {
        let how = match deadline.left() {
            Left::Forever => Wait::Block,
            Left::For(d) => Wait::Timeout(d),
            Left::Expired => Wait::Timeout(Duration::ZERO),
        };
        match self.lock.acquire(how) {
            Ok(Acquired::Clean) => Ok(Some(StateLock(self))),
            Ok(Acquired::OwnerDied) => {
                // A party died mid-update: the state cannot be trusted, so the barrier breaks
                // (reset() repairs it), which is what a lost party means anyway.
                let held = StateLock(self);
                self.lock.make_consistent();
                self.break_locked();
                Ok(Some(held))
            }
            Err(super::robust::Failed::Timeout(_)) => Ok(None),
            Err(super::robust::Failed::Io(e)) => Err(Error::io("locking a barrier")(e)),
            Err(super::robust::Failed::TooManyHeld) => Err(super::robust::too_many_held()),
            Err(_) => Err(Error::Io {
                op: "locking a barrier",
                source: std::io::Error::other("the barrier's internal lock is unusable"),
            }),
        }
    }

    /// Releases the current round; call with the state lock held.
    fn release_locked(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.history.store(self.history.load(Ordering::Relaxed) << 1 | 1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.bump();
    }

    fn bump(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&self.seq);
    }

    /// Breaks the barrier; call with the state lock held.
    fn break_locked(&self) {
        if self.broken.swap(1, Ordering::Relaxed) == 0 {
            self.bump();
        }
    }

    /// Breaks the barrier without the state lock, for a waiter whose time ran out while
    /// another party held the lock. Sound without the lock because `broken` is only ever set
    /// to 1 (idempotently) or cleared by `reset`, and every reader re-reads it under the lock:
    /// the break simply takes effect at this swap (a reset that clears it afterwards came
    /// after it; a release that completed before it stays released, as its waiters check the
    /// generation first).
    fn break_unlocked(&self) {
        if self.broken.swap(1, Ordering::SeqCst) == 0 {
            self.bump();
        }
    }

    /// Whether a party waiting in the current generation has died (exited, killed, a zombie,
    /// or its pid now names a newer process); call with the state lock.
    fn lost_party(&self) -> bool {
        let waiting = (self.count.load(Ordering::Relaxed) as usize).min(WATCHED);
        self.parties_waiting[..waiting].iter().any(|t| !peer::alive(t.load(Ordering::Relaxed)))
    }

    /// How generation `g` ended, once the current generation is past it: true if released.
    fn released(&self, g: u32) -> bool {
        let back = self.generation.load(Ordering::Relaxed).wrapping_sub(g).wrapping_sub(1);
        back >= 64 || (self.history.load(Ordering::Relaxed) >> back) & 1 == 1
    }
}

/// What [`Barrier::wait`] tells each party.
///
/// ```
/// let b = shmpool::Barrier::new(1)?;
/// let r = b.wait()?;
/// assert!(r.is_leader() && r.index() == 0);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    index: u32,
    leader: bool,
}

impl BarrierWaitResult {
    /// The order of arrival in this round, `0..parties` (Python's return value).
    ///
    /// ```
    /// assert_eq!(shmpool::Barrier::new(1)?.wait()?.index(), 0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn index(&self) -> u32 {
        self.index
    }

    /// True for exactly one party per round: the last to arrive, which released the others.
    ///
    /// ```
    /// assert!(shmpool::Barrier::new(1)?.wait()?.is_leader());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// A barrier for a fixed number of parties in any processes: each `wait` blocks until
/// `parties` calls are waiting, then all return, and the barrier is ready for the next round.
///
/// With a timeout, a wait that runs out breaks the barrier (Python's semantics): it returns
/// [`Error::Timeout`], every other waiter and every later caller gets
/// [`Error::BrokenBarrier`] until [`reset`](Barrier::reset).
///
/// A party that dies while waiting breaks the barrier too: waiters check every 100 ms that the
/// processes waiting with them still run (the first 64 of them), and a dead one means the round
/// can never complete. A party that dies before it arrives cannot be noticed: use a timeout
/// where that can happen.
///
/// The liveness check goes by pid and the process's start time (so a dead party whose pid a new
/// process took is still dead), and every party must be in the same PID namespace: a party in
/// another namespace (another container, say) records a pid that means nothing here, looks
/// dead, and breaks the barrier. Do not share a barrier across PID namespaces.
///
/// ```
/// let b = shmpool::Barrier::new(2)?;
/// std::thread::scope(|s| {
///     let other = s.spawn(|| b.wait().unwrap());
///     let me = b.wait().unwrap();
///     assert!(me.is_leader() != other.join().unwrap().is_leader());
/// });
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Barrier {
    cell: ShmBox<BarrierCell>,
}

impl Barrier {
    /// An anonymous barrier for `parties` parties.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `parties` is 0.
    ///
    /// ```
    /// let b = shmpool::Barrier::new(3)?;
    /// assert_eq!(b.parties(), 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(parties: u32) -> Result<Barrier> {
        Self::new_with(parties, &ShmOptions::new())
    }

    /// A barrier for `parties` parties, created as `opts` says.
    ///
    /// ```
    /// use shmpool::{Barrier, ShmOptions};
    /// let b = Barrier::new_with(2, &ShmOptions::new().generated_name())?;
    /// assert!(b.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(parties: u32, opts: &ShmOptions) -> Result<Barrier> {
        Self::create(parties, opts, None)
    }

    /// An anonymous barrier for `parties` parties that runs `action` once per round (Python's
    /// `Barrier(parties, action=f)`): the last party to arrive runs it, in its own process,
    /// before any party is released, and only then are all released.
    ///
    /// - The action is part of the barrier: every process that opens it (a `Process` argument
    ///   under any start method, `open_handle`, `open`) runs the same function when it arrives
    ///   last. It must be code of this program's own executable (a `fn` item or a closure
    ///   without captures), and only a process running the same executable file (the creator,
    ///   its forks, its spawn and forkserver children) can run it: in another program, or
    ///   another build of this one, the arrival that should run it breaks the barrier and
    ///   fails with [`Error::InvalidArgument`].
    /// - An action that panics breaks the barrier: the party that ran it gets
    ///   [`Error::BarrierActionPanicked`] with the panic's message, every other party
    ///   [`Error::BrokenBarrier`] (Python's `BrokenBarrierError`), until
    ///   [`reset`](Barrier::reset).
    /// - Timeouts keep running while the action runs: a waiter whose
    ///   [`wait_timeout`](Barrier::wait_timeout) ends first breaks the round, and the party that
    ///   ran the action then gets [`Error::BrokenBarrier`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `parties` is 0; [`Error::SpawnUnavailable`] when `action`
    /// is not code of the program's executable (a shared library's), where a re-executed copy
    /// could not find it.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// static ROUNDS: AtomicU32 = AtomicU32::new(0);
    /// fn count_round() {
    ///     ROUNDS.fetch_add(1, Ordering::SeqCst);
    /// }
    /// let b = shmpool::Barrier::with_action(2, count_round)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| b.wait().unwrap());
    ///     b.wait().unwrap();
    /// });
    /// assert_eq!(ROUNDS.load(Ordering::SeqCst), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with_action(parties: u32, action: fn()) -> Result<Barrier> {
        Self::with_action_with(parties, action, &ShmOptions::new())
    }

    /// As [`with_action`](Barrier::with_action), created as `opts` says.
    ///
    /// ```
    /// use shmpool::{Barrier, ShmOptions};
    /// fn announce() {}
    /// let b = Barrier::with_action_with(2, announce, &ShmOptions::new().generated_name())?;
    /// assert!(b.has_action());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with_action_with(parties: u32, action: fn(), opts: &ShmOptions) -> Result<Barrier> {
        code::check_sendable(action as usize, "the barrier's action", Receiver::Reexecuted)?;
        Self::create(parties, opts, Some(action))
    }

    fn create(parties: u32, opts: &ShmOptions, action: Option<fn()>) -> Result<Barrier> {
        if parties == 0 {
            return Err(Error::InvalidArgument {
                what: "barrier parties",
                reason: "a barrier needs at least one party".into(),
            });
        }
        // SAFETY: the closure initialises every field of the zeroed, aligned, exclusively owned
        // cell at its final address (zero is the right start for the atomics).
        let cell = unsafe {
            ShmBox::new_in_place(Kind::Barrier, opts, |p| {
                let p: *mut BarrierCell = p.as_ptr();
                RobustMutex::init(&raw mut (*p).lock, MutexType::ErrorCheck)
                    .map_err(Error::io("pthread_mutex_init"))?;
                (&raw mut (*p).parties).write(parties);
                if let Some(f) = action {
                    (&raw mut (*p).action).write(AtomicU64::new(code::to_offset(f as usize)));
                    (&raw mut (*p).build).write(AtomicU64::new(build_hash()));
                    (&raw mut (*p).has_action).write(AtomicU32::new(1));
                }
                Ok(())
            })?
        };
        Ok(Barrier { cell })
    }

    /// Whether the barrier runs an action each round ([`with_action`](Barrier::with_action)).
    ///
    /// ```
    /// assert!(!shmpool::Barrier::new(2)?.has_action());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn has_action(&self) -> bool {
        self.cell.has_action.load(Ordering::Relaxed) != 0
    }

    /// The action as a `fn` of this process, checked: made by a process of this build, and an
    /// address inside this program's code (its code ranges read once per process).
    fn action(&self) -> Result<Option<fn()>> {
        static CODE: OnceLock<CodeRanges> = OnceLock::new();
        let c = &*self.cell;
        if c.has_action.load(Ordering::Relaxed) == 0 {
            return Ok(None);
        }
        let refuse = |reason: String| Error::InvalidArgument { what: "barrier action", reason };
        if c.build.load(Ordering::Relaxed) != build_hash() {
            return Err(refuse(
                "the barrier's action was set by another program (or another build of this \
                 one), where its code lies elsewhere; wait on it only from processes running \
                 the executable that created it"
                    .into(),
            ));
        }
        let addr = code::from_offset(c.action.load(Ordering::Relaxed));
        // Where the creator's check (`with_action_with`) put it: executable code of the
        // program's own file, not any mapped file's (libc's, say), nor data.
        let in_exe = code::check_sendable(addr, "the action", Receiver::Reexecuted).is_ok();
        if !in_exe || !CODE.get_or_init(CodeRanges::of_this_process).contains(addr) {
            return Err(refuse(format!(
                "the barrier's action ({addr:#x}) is not in this program's code; the barrier's \
                 memory is corrupt"
            )));
        }
        // The creator, running this same executable file and shmpool build (checked above),
        // stored the offset of a `fn()` it checked lies in the executable (`with_action_with`);
        // measured from the same anchor it names that function here, and it lies in our
        // executable's code (checked above). A process that wrote the offset itself can still
        // name any code of the executable: writing into the barrier is trusting the writer.
        // SAFETY: so the address is that `fn()`.
        Ok(Some(unsafe { std::mem::transmute::<usize, fn()>(addr) }))
    }

    object_methods!(
        Kind::Barrier,
        "barrier",
        "shmpool::Barrier",
        "shmpool::Barrier::new_with(2, &opts)?"
    );

    /// Waits until `parties` parties wait, with no time limit.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken.
    ///
    /// ```
    /// let b = shmpool::Barrier::new(1)?;
    /// assert_eq!(b.wait()?.index(), 0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait(&self) -> Result<BarrierWaitResult> {
        self.wait_until(Deadline::NEVER, Duration::ZERO)
    }

    /// Waits at most `timeout`; running out breaks the barrier and returns [`Error::Timeout`].
    ///
    /// ```
    /// let b = shmpool::Barrier::new(2)?;
    /// let e = b.wait_timeout(std::time::Duration::from_millis(5)).unwrap_err();
    /// assert!(matches!(e, shmpool::Error::Timeout { .. }));
    /// assert!(b.is_broken());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<BarrierWaitResult> {
        self.wait_until(Deadline::after(Some(timeout)), timeout)
    }

    fn wait_until(&self, deadline: Deadline, timeout: Duration) -> Result<BarrierWaitResult> {
        let c = &*self.cell;
        // Outside the lock: the first call in a process reads /proc.
        let me = peer::me();
        // The state lock could not be had in time (its holder is stopped, say): time out as
        // promised, breaking the barrier as a timeout does (our arrival may already count).
        let timed_out = || {
            c.break_unlocked();
            Err(Error::Timeout { what: "waiting at a barrier", after: timeout })
        };
        let (generation, index) = loop {
            let seen = c.seq.load(Ordering::SeqCst);
            let Some(held) = c.state_until(deadline)? else { return timed_out() };
            if c.broken.load(Ordering::Relaxed) != 0 {
                return Err(Error::BrokenBarrier);
            }
            if c.acting.load(Ordering::Relaxed) != 0 {
                // The last round's action runs (so this is one party more than the barrier has):
                // arrive once its round is released, broken or reset, each of which bumps `seq`.
                // Its runner counts as waiting: if it (or a waiter) died, nothing will.
                if c.lost_party() {
                    c.break_locked();
                    return Err(Error::BrokenBarrier);
                }
                drop(held);
                let slice = match deadline.left() {
                    Left::Expired => return timed_out(),
                    Left::For(d) => Some(d.min(CHECK_EVERY)),
                    Left::Forever => Some(CHECK_EVERY),
                };
                wait::wait_for(&c.seq, None, Deadline::after(slice), |v| v != seen);
                continue;
            }
            let index = c.count.load(Ordering::Relaxed);
            if index + 1 == c.parties {
                let leader = BarrierWaitResult { index, leader: true };
                let action = match self.action() {
                    Ok(Some(f)) => f,
                    Ok(None) => {
                        c.release_locked();
                        return Ok(leader);
                    }
                    Err(e) => {
                        c.break_locked();
                        return Err(e);
                    }
                };
                // Run the action without the state lock (the others keep checking for a lost
                // party and their deadlines), counted as waiting, so that this party's death
                // while it runs breaks the round.
                if let Some(slot) = c.parties_waiting.get(index as usize) {
                    slot.store(me, Ordering::Relaxed);
                }
                c.count.store(index + 1, Ordering::Relaxed);
                c.acting.store(1, Ordering::Relaxed);
                let generation = c.generation.load(Ordering::Relaxed);
                drop(held);
                let ran = catch_unwind(action);
                let _held = c.state()?;
                if c.generation.load(Ordering::Relaxed) != generation {
                    // `reset` ran meanwhile (and cleared `acting`).
                    return Err(Error::BrokenBarrier);
                }
                c.acting.store(0, Ordering::Relaxed);
                if let Err(payload) = ran {
                    c.break_locked();
                    return Err(Error::BarrierActionPanicked { message: panic_message(&*payload) });
                }
                if c.broken.load(Ordering::Relaxed) != 0 {
                    // A waiter timed out or saw a dead party while the action ran.
                    return Err(Error::BrokenBarrier);
                }
                c.release_locked();
                return Ok(leader);
            }
            if let Some(slot) = c.parties_waiting.get(index as usize) {
                slot.store(me, Ordering::Relaxed);
            }
            c.count.store(index + 1, Ordering::Relaxed);
            break (c.generation.load(Ordering::Relaxed), index);
        };
        let passed = BarrierWaitResult { index, leader: false };
        loop {
            let seen = c.seq.load(Ordering::SeqCst);
            {
                let Some(_held) = c.state_until(deadline)? else { return timed_out() };
                if c.generation.load(Ordering::Relaxed) != generation {
                    return if c.released(generation) {
                        Ok(passed)
                    } else {
                        Err(Error::BrokenBarrier)
                    };
                }
                if c.broken.load(Ordering::Relaxed) != 0 {
                    return Err(Error::BrokenBarrier);
                }
            }
            // Sleep in slices, checking between them that no waiting party died: its arrival
            // counts, so the round could never complete.
            let slice = match deadline.left() {
                Left::Expired => None,
                Left::For(d) => Some(d.min(CHECK_EVERY)),
                Left::Forever => Some(CHECK_EVERY),
            };
            if let Some(slice) = slice {
                if wait::wait_for(&c.seq, None, Deadline::after(Some(slice)), |v| v != seen) {
                    continue;
                }
                if !matches!(deadline.left(), Left::Expired) {
                    let Some(_held) = c.state_until(deadline)? else { return timed_out() };
                    if c.generation.load(Ordering::Relaxed) == generation
                        && c.broken.load(Ordering::Relaxed) == 0
                        && c.lost_party()
                    {
                        c.break_locked();
                        return Err(Error::BrokenBarrier);
                    }
                    continue;
                }
            }
            {
                let Some(_held) = c.state_until(deadline)? else { return timed_out() };
                if c.generation.load(Ordering::Relaxed) != generation {
                    return if c.released(generation) {
                        Ok(passed)
                    } else {
                        Err(Error::BrokenBarrier)
                    };
                }
                if c.broken.load(Ordering::Relaxed) != 0 {
                    return Err(Error::BrokenBarrier);
                }
                c.break_locked();
                return Err(Error::Timeout { what: "waiting at a barrier", after: timeout });
            }
        }
    }

    /// Returns the barrier to its empty, unbroken state (Python's `reset`). Parties waiting
    /// in the current round get [`Error::BrokenBarrier`].
    ///
    /// ```
    /// let b = shmpool::Barrier::new(2)?;
    /// b.abort()?;
    /// assert!(b.is_broken());
    /// b.reset()?;
    /// assert!(!b.is_broken());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn reset(&self) -> Result<()> {
        let c = &*self.cell;
        let _held = c.state()?;
        if c.broken.load(Ordering::Relaxed) != 0 || c.count.load(Ordering::Relaxed) > 0 {
            c.count.store(0, Ordering::Relaxed);
            c.acting.store(0, Ordering::Relaxed);
            c.broken.store(0, Ordering::Relaxed);
            c.history.store(c.history.load(Ordering::Relaxed) << 1, Ordering::Relaxed);
            c.generation.fetch_add(1, Ordering::Relaxed);
            c.bump();
        }
        Ok(())
    }

    /// Breaks the barrier (Python's `abort`): waiters and later callers get
    /// [`Error::BrokenBarrier`] until [`reset`](Barrier::reset).
    ///
    /// ```
    /// let b = shmpool::Barrier::new(2)?;
    /// b.abort()?;
    /// assert!(matches!(b.wait(), Err(shmpool::Error::BrokenBarrier)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn abort(&self) -> Result<()> {
        let _held = self.cell.state()?;
        self.cell.break_locked();
        Ok(())
    }

    /// The number of parties.
    ///
    /// ```
    /// assert_eq!(shmpool::Barrier::new(4)?.parties(), 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn parties(&self) -> u32 {
        self.cell.parties
    }

    /// Parties waiting in the current round (a snapshot).
    ///
    /// ```
    /// assert_eq!(shmpool::Barrier::new(4)?.n_waiting(), 0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn n_waiting(&self) -> u32 {
        self.cell.count.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken.
    ///
    /// ```
    /// assert!(!shmpool::Barrier::new(4)?.is_broken());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_broken(&self) -> bool {
        self.cell.broken.load(Ordering::Relaxed) != 0
    }
}

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic whose payload is not a string".into())
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits on `b` (through a handle of its own) on another thread, which must be let go
    /// within 5 s; when it is not, `b` is aborted to let it go, and the result is `Err`.
    fn wait_on_a_thread(
        b: &Barrier,
    ) -> std::result::Result<Result<()>, std::sync::mpsc::RecvTimeoutError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let b = Barrier::open_handle(&b.handle()).unwrap();
            std::thread::spawn(move || tx.send(b.wait().map(drop)).unwrap())
        };
        let got = rx.recv_timeout(Duration::from_secs(5));
        if got.is_err() {
            b.abort().unwrap(); // let the waiter go before failing
        }
        waiter.join().unwrap();
        got
    }

    #[test]
    fn rounds_release_everyone_with_one_leader() {
        let b = Barrier::new(3).unwrap();
        for _ in 0..20 {
            let results: Vec<BarrierWaitResult> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..3)
                    .map(|_| s.spawn(|| b.wait_timeout(Duration::from_secs(10)).unwrap()))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(results.iter().filter(|r| r.is_leader()).count(), 1);
            let mut idx: Vec<u32> = results.iter().map(|r| r.index()).collect();
            idx.sort();
            assert_eq!(idx, [0, 1, 2]);
        }
    }

    #[test]
    fn a_timeout_breaks_it_for_everyone_and_reset_repairs_it() {
        let b = Barrier::new(3).unwrap();
        std::thread::scope(|s| {
            let other = s.spawn(|| b.wait_timeout(Duration::from_secs(10)));
            while b.n_waiting() == 0 {
                std::thread::yield_now();
            }
            assert!(matches!(
                b.wait_timeout(Duration::from_millis(20)),
                Err(Error::Timeout { .. })
            ));
            assert!(matches!(other.join().unwrap(), Err(Error::BrokenBarrier)));
        });
        assert!(matches!(b.wait_timeout(Duration::from_secs(1)), Err(Error::BrokenBarrier)));
        b.reset().unwrap();
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| s.spawn(|| b.wait_timeout(Duration::from_secs(10)).unwrap()))
                .collect();
            let mut leaders =
                u32::from(b.wait_timeout(Duration::from_secs(10)).unwrap().is_leader());
            for h in hs {
                leaders += u32::from(h.join().unwrap().is_leader());
            }
            assert_eq!(leaders, 1);
        });
    }

    #[test]
    fn reset_while_parties_wait_breaks_their_round() {
        let b = Barrier::new(2).unwrap();
        std::thread::scope(|s| {
            let other = s.spawn(|| b.wait_timeout(Duration::from_secs(10)));
            while b.n_waiting() == 0 {
                std::thread::yield_now();
            }
            b.reset().unwrap();
            assert!(matches!(other.join().unwrap(), Err(Error::BrokenBarrier)));
        });
        assert!(!b.is_broken());
    }

    #[test]
    fn it_stays_mapped_only_while_a_thread_of_ours_holds_the_internal_lock() {
        let b = Barrier::new(2).unwrap();
        assert!(!b.cell.keep_mapped());
        let held = b.cell.state().unwrap();
        assert!(b.cell.keep_mapped());
        drop(held);
        assert!(!b.cell.keep_mapped());
    }

    #[test]
    fn waiters_time_out_while_a_stopped_party_holds_the_internal_lock() {
        let b = Barrier::new(3).unwrap();
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let tx2 = tx.clone();
            // One party already waits when the lock is taken, one arrives while it is held.
            let b = &b;
            s.spawn(move || tx.send(b.wait_timeout(Duration::from_millis(150))).unwrap());
            while b.n_waiting() == 0 {
                std::thread::yield_now();
            }
            // This thread plays the party that was stopped while holding the internal lock; it
            // lets go after 5 s at the latest, so a regression fails instead of hanging.
            let held = b.cell.state().unwrap();
            s.spawn(move || tx2.send(b.wait_timeout(Duration::from_millis(50))).unwrap());
            let first = rx.recv_timeout(Duration::from_secs(5));
            let second = rx.recv_timeout(Duration::from_secs(1));
            drop(held);
            for r in [first, second] {
                let r = r.expect("a waiter overran its timeout while the lock was held");
                assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
            }
        });
        assert!(b.is_broken(), "timing out breaks the barrier, lock or no lock");
        assert!(matches!(b.wait_timeout(Duration::from_secs(1)), Err(Error::BrokenBarrier)));
        b.reset().unwrap();
        assert!(!b.is_broken());
    }

    #[test]
    fn a_waiting_party_whose_pid_a_new_process_took_counts_as_dead() {
        let b = Barrier::new(3).unwrap();
        let me = peer::me();
        let pid = peer::token_pid(me);
        // A party that died and whose pid this very process got: same pid, later start time.
        let reused = peer::pack(pid, peer::start_time(pid).unwrap() + 1);
        {
            let _held = b.cell.state().unwrap();
            b.cell.count.store(1, Ordering::Relaxed);
            b.cell.parties_waiting[0].store(me, Ordering::Relaxed);
            assert!(!b.cell.lost_party(), "this process runs");
            b.cell.parties_waiting[0].store(reused, Ordering::Relaxed);
            assert!(b.cell.lost_party(), "the pid runs, but not the process that waited");
        }
        // An untimed wait (the second party) is told the round can never complete. Checked by
        // pid alone, the dead party looked alive (its pid runs: this process) and this hung.
        let got = wait_on_a_thread(&b).expect("an untimed wait was not broken by the dead party");
        assert!(matches!(got, Err(Error::BrokenBarrier)), "{got:?}");
        assert!(b.is_broken());
    }

    static RAN: AtomicU32 = AtomicU32::new(0);

    fn note_round() {
        RAN.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn the_action_runs_once_per_round_before_the_release() {
        let b = Barrier::with_action(3, note_round).unwrap();
        let before = RAN.load(Ordering::SeqCst);
        for round in 1..=10 {
            std::thread::scope(|s| {
                let hs: Vec<_> = (0..3)
                    .map(|_| {
                        s.spawn(|| {
                            b.wait_timeout(Duration::from_secs(10)).unwrap();
                            // Released only after the action of this round.
                            RAN.load(Ordering::SeqCst) - before
                        })
                    })
                    .collect();
                for h in hs {
                    assert_eq!(h.join().unwrap(), round);
                }
            });
        }
        assert!(!b.is_broken());
    }

    fn panics() {
        panic!("boom");
    }

    #[test]
    fn a_panicking_action_breaks_the_barrier() {
        let b = Barrier::with_action(2, panics).unwrap();
        let results: Vec<Result<BarrierWaitResult>> = std::thread::scope(|s| {
            let hs: Vec<_> =
                (0..2).map(|_| s.spawn(|| b.wait_timeout(Duration::from_secs(10)))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ran = results
            .iter()
            .filter(
                |r| matches!(r, Err(Error::BarrierActionPanicked { message }) if message == "boom"),
            )
            .count();
        let broken = results.iter().filter(|r| matches!(r, Err(Error::BrokenBarrier))).count();
        assert_eq!((ran, broken), (1, 1), "{results:?}");
        assert!(b.is_broken());
        b.reset().unwrap();
        assert!(!b.is_broken());
    }

    fn slow() {
        std::thread::sleep(Duration::from_millis(300));
    }

    #[test]
    fn a_waiter_that_times_out_while_the_action_runs_breaks_the_round() {
        let b = Barrier::with_action(2, slow).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.wait_timeout(Duration::from_millis(50)));
            while b.n_waiting() == 0 {
                std::thread::yield_now();
            }
            // This party arrives last and runs the slow action; the waiter's time runs out.
            let leader = b.wait_timeout(Duration::from_secs(10));
            assert!(matches!(leader, Err(Error::BrokenBarrier)), "{leader:?}");
            let w = waiter.join().unwrap();
            assert!(matches!(w, Err(Error::Timeout { .. })), "{w:?}");
        });
        assert!(b.is_broken());
        b.reset().unwrap();
        assert_eq!(b.n_waiting(), 0);
    }

    #[test]
    fn an_action_from_another_build_is_refused_and_breaks_the_round() {
        let b = Barrier::with_action(1, note_round).unwrap();
        b.cell.build.store(build_hash() ^ 1, Ordering::Relaxed);
        assert!(matches!(b.wait(), Err(Error::InvalidArgument { .. })));
        assert!(b.is_broken());
    }

    /// What a barrier made by another program linking this same shmpool build recorded before:
    /// the hash of shmpool's build fingerprint alone, which that program shares with this one
    /// (the fingerprint measures two functions of shmpool, placed alike in every program), while
    /// its action's offset names other code here.
    #[test]
    fn an_action_recorded_by_another_program_of_this_shmpool_build_is_refused() {
        use std::hash::{DefaultHasher, Hash, Hasher};
        static FOREIGN: AtomicU32 = AtomicU32::new(0);
        fn foreign() {
            FOREIGN.fetch_add(1, Ordering::SeqCst);
        }
        let b = Barrier::with_action(1, foreign).unwrap();
        let mut h = DefaultHasher::new();
        code::build_fingerprint().hash(&mut h);
        b.cell.build.store(h.finish(), Ordering::Relaxed);
        let r = b.wait();
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
        assert_eq!(FOREIGN.load(Ordering::SeqCst), 0, "the foreign action ran");
        assert!(b.is_broken());
    }

    /// An offset a hostile process wrote into the barrier, naming code outside the program's
    /// executable (libc's getpid): the creator could never have recorded it, so it is refused
    /// before the call, not called because it is code of some file.
    #[test]
    fn an_action_outside_the_executable_is_refused() {
        let b = Barrier::with_action(1, note_round).unwrap();
        let libc_fn = libc::getpid as unsafe extern "C" fn() -> libc::pid_t as usize;
        b.cell.action.store(code::to_offset(libc_fn), Ordering::Relaxed);
        let r = b.wait();
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
        assert!(b.is_broken());
    }

    /// The party running the action died (its token is dead) and left `acting` set; a party
    /// arriving then (one more than the barrier has, which Python allows) waited untimed for
    /// a release that could never come. It must see the dead party and break the barrier.
    #[test]
    fn an_arrival_while_a_dead_party_was_running_the_action_is_not_stuck() {
        let b = Barrier::with_action(1, note_round).unwrap();
        let pid = peer::token_pid(peer::me());
        let dead = peer::pack(pid, peer::start_time(pid).unwrap() + 1);
        {
            let _held = b.cell.state().unwrap();
            b.cell.parties_waiting[0].store(dead, Ordering::Relaxed);
            b.cell.count.store(1, Ordering::Relaxed);
            b.cell.acting.store(1, Ordering::Relaxed);
        }
        let got =
            wait_on_a_thread(&b).expect("an arrival waited forever on an action whose runner died");
        assert!(matches!(got, Err(Error::BrokenBarrier)), "{got:?}");
        b.reset().unwrap();
        assert!(b.wait_timeout(Duration::from_secs(5)).unwrap().is_leader());
    }

    #[test]
    fn zero_parties_is_refused() {
        assert!(matches!(Barrier::new(0), Err(Error::InvalidArgument { .. })));
    }
}
