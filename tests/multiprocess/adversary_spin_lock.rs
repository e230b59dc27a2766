//! Attacks on the ring lock's takeover at the deadline (d7f7a4b). Each test stops the putter at
//! moments until it is stopped inside the lock (mid-copy of a frame), then:
//! - SIGKILLs it there and, while it is an unreaped zombie, polls only with zero-wait gets (a
//!   `MessageQueue`, and a manager's shared queue): the items behind its lock come out promptly,
//!   whole, in order, once (the manager's case fails before d7f7a4b);
//! - leaves it stopped, alive: every zero-wait get reads busy and every `put_nowait` fails, and
//!   once it runs again nothing is torn, lost or doubled;
//! - in a process whose main thread exited (its `/proc/<pid>/stat` reads as a zombie) while
//!   another thread holds the lock: found taken over (a zero-wait get freed it, a put went in
//!   beside the holder); fixed by judging the holder thread by thread (`peer::fate`).
//!
//! Not attacked here (no test can set them up in seconds): a holder that execs keeps its lock
//! for ever (the same pid and start time, alive); a holder in another pid namespace may read as
//! dead and be taken over (queue/README.md).

use std::time::{Duration, Instant};

use shmpool::manager::{EventProxy, QueueProxy};
use shmpool::process::ScopedChild;
use shmpool::queue::{MessageGetTimeoutError, MessageTryGetError, MessageTryPutError};
use shmpool::{Manager, MessageQueue, ShmOptions, StartMethod, get_context, scope};

use crate::harness::{Tests, register};

const PATIENCE: Duration = Duration::from_secs(20);
const PROMPTLY: Duration = Duration::from_secs(1);

/// Bytes per item: a put spends most of its time copying them under the ring lock.
const LEN: usize = 1 << 20;
const MAX_ITEM: usize = LEN + 64;
const RING: usize = 4 * MAX_ITEM;
/// The child's items and the parent's, told apart.
const CHILD: u64 = 0xA5A5_0000_0000_0000;
const PARENT: u64 = 0x5A5A_0000_0000_0000;

/// An item: its mark and number (8 bytes), then one byte derived from them, `LEN` bytes in all.
/// It serializes as one run of bytes, so that encoding it costs one copy, not one call per
/// element.
#[derive(Debug, PartialEq)]
struct Blob(Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, b: &[u8]) -> Result<Blob, E> {
                Ok(Blob(b.to_vec()))
            }
            fn visit_byte_buf<E>(self, b: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(b))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

fn fill_byte(word: u64) -> u8 {
    (word ^ (word >> 17) ^ (word >> 56)) as u8 | 1
}

pub fn tests() -> Tests {
    register! {
        a_killed_putter_hides_nothing_from_get_nowait_while_a_zombie,
        a_stopped_holder_is_never_taken_over,
        a_killed_putter_on_a_manager_queue_hides_nothing_from_get_nowait,
        a_holder_whose_main_thread_exited_is_not_taken_over,
    }
}

fn item(mark: u64, seq: u64) -> Blob {
    sized(LEN, mark, seq)
}

fn sized(len: usize, mark: u64, seq: u64) -> Blob {
    let word = mark | seq;
    let mut b = vec![fill_byte(word); len];
    b[..8].copy_from_slice(&word.to_le_bytes());
    Blob(b)
}

/// Checks an item is whole and returns its mark and sequence number.
fn whole(v: &Blob) -> (u64, u64) {
    whole_sized(v, LEN)
}

fn whole_sized(v: &Blob, len: usize) -> (u64, u64) {
    let v = &v.0;
    assert_eq!(v.len(), len, "torn item: {} bytes", v.len());
    let word = u64::from_le_bytes(v[..8].try_into().unwrap());
    let b = fill_byte(word);
    assert!(v[8..].iter().all(|&x| x == b), "torn item: mixed bytes");
    (word & 0xFFFF_0000_0000_0000, word & 0xFFFF_FFFF_FFFF)
}

/// Items seen so far from each writer: each must come once, in order.
#[derive(Default)]
struct Seen {
    child: u64,
    parent: u64,
}

impl Seen {
    fn take(&mut self, v: &Blob) {
        self.take_sized(v, LEN)
    }

    fn take_sized(&mut self, v: &Blob, len: usize) {
        match whole_sized(v, len) {
            (CHILD, s) => {
                assert_eq!(s, self.child, "child's item out of order (lost or duplicated)");
                self.child += 1;
            }
            (PARENT, s) => {
                assert_eq!(s, self.parent, "parent's item out of order (lost or duplicated)");
                self.parent += 1;
            }
            (m, _) => panic!("torn item: mark {m:#x}"),
        }
    }
}

/// The state letter of `/proc/<pid>/stat` (`None` once reaped).
fn state(pid: u32) -> Option<u8> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(") ").and_then(|(_, rest)| rest.bytes().next())
}

/// Waits until `pid` reads as `want` in `/proc`.
fn wait_state(pid: u32, want: u8) {
    let t = Instant::now();
    while state(pid) != Some(want) {
        assert!(t.elapsed() < PATIENCE, "{pid} never reached state {}", want as char);
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Sends `sig` to `pid`, our own unreaped child.
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory effects; `pid` is our child, not yet reaped, so the pid
    // cannot name another process.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Stops `pid` (a putter) at moments until `holds` says it stopped holding the ring lock;
/// leaves it stopped there and says so, or says it never did (within ten seconds), and leaves
/// it running. `holds` runs while it is stopped.
#[must_use]
fn stop_holding(pid: u32, mut holds: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    for attempt in 0u64.. {
        if t.elapsed() > Duration::from_secs(10) {
            break;
        }
        signal(pid, libc::SIGSTOP);
        wait_state(pid, b'T');
        if holds() {
            return true;
        }
        // Resumed, a putter woken (by a get in `holds`) while stopped goes straight into the
        // lock: stop it again a little later each time.
        signal(pid, libc::SIGCONT);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_micros(attempt % 50 * 2) {
            std::hint::spin_loop();
        }
    }
    false
}

const NEVER_HELD: &str = "the putter was never stopped holding the lock: nothing was attacked";

/// Whether `q`'s ring lock is held (by a live process): a zero-wait get reads it as busy.
fn held(q: &MessageQueue, seen: &mut Seen) -> bool {
    match q.get_nowait::<Blob>() {
        Ok(v) => {
            seen.take(&v);
            false
        }
        Err(MessageTryGetError::Timeout { .. }) => true,
        Err(MessageTryGetError::Empty) => false,
        Err(e) => panic!("{e}"),
    }
}

/// Takes from `q` until it is empty, within `PROMPTLY`: a lock left by a dead holder must not
/// read as busy for ever.
fn drain(q: &MessageQueue, seen: &mut Seen) {
    let t = Instant::now();
    loop {
        match q.get_timeout::<Blob>(Duration::ZERO) {
            Ok(v) => seen.take(&v),
            // Empty, or the lock is busy: which one, `is_empty` says without the lock.
            Err(MessageGetTimeoutError::Timeout { .. }) if q.is_empty() => return,
            Err(MessageGetTimeoutError::Timeout { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(t.elapsed() < PROMPTLY, "the queue still read as busy after {:?}", t.elapsed());
    }
}

/// Runs `body` beside a forked child that puts `item(CHILD, 0..)` on `q` until killed, once its
/// first item is taken: `body` gets the child (its to kill and join) and the record of what was
/// taken.
fn beside_a_putter(q: &MessageQueue, body: impl FnOnce(ScopedChild<'_, '_>, Seen)) {
    scope(|s| {
        let kid = s
            .fork(move || {
                for i in 0.. {
                    q.put(&item(CHILD, i)).unwrap();
                }
            })
            .unwrap();
        let mut seen = Seen::default();
        seen.take(&q.get_timeout::<Blob>(PATIENCE).unwrap());
        body(kid, seen);
    })
    .unwrap();
}

fn a_killed_putter_hides_nothing_from_get_nowait_while_a_zombie() {
    for round in 0..8u64 {
        let q = MessageQueue::bounded(RING, MAX_ITEM).unwrap();
        beside_a_putter(&q, |kid, mut seen| {
            // Take while it writes, so that it is inside a put (not waiting for room).
            let until = Instant::now() + Duration::from_millis(2 + round * 3);
            while Instant::now() < until {
                if let Ok(v) = q.get_nowait::<Blob>() {
                    seen.take(&v);
                }
            }
            // Kill it while it holds the lock, mid-copy of a frame.
            let hit = stop_holding(kid.pid(), || held(&q, &mut seen));
            kid.kill().unwrap();
            // Unreaped: a zombie holds nothing, and its lock is free to take over.
            wait_state(kid.pid(), b'Z');
            drain(&q, &mut seen);
            q.put(&item(PARENT, 0)).unwrap();
            assert_eq!(whole(&q.get_nowait::<Blob>().unwrap()), (PARENT, 0));
            assert_eq!(kid.join().unwrap().signal(), Some(libc::SIGKILL));
            assert!(hit, "round {round}: {NEVER_HELD}");
        });
    }
}

fn a_stopped_holder_is_never_taken_over() {
    // Stopped while it holds the lock, the putter is alive: for as long as it stays stopped
    // every get_nowait reads the lock as busy and every put_nowait fails. Taken over, a get
    // would see the ring (or read it empty) and our puts would share its tail: once it ran
    // again, a frame would be torn or lost.
    for round in 0..5u64 {
        let q = MessageQueue::bounded(RING, MAX_ITEM).unwrap();
        beside_a_putter(&q, |kid, mut seen| {
            let hit = stop_holding(kid.pid(), || held(&q, &mut seen));
            let t = Instant::now();
            while hit && t.elapsed() < Duration::from_millis(150) {
                match q.get_nowait::<Blob>() {
                    Err(MessageTryGetError::Timeout { .. }) => {}
                    other => panic!("round {round}: a stopped holder's lock was taken: {other:?}"),
                }
                match q.put_nowait(&item(PARENT, 0)) {
                    Err(MessageTryPutError::Timeout { .. }) => {}
                    Ok(()) => {
                        panic!("round {round}: a put went in while a live holder held the lock")
                    }
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            signal(kid.pid(), libc::SIGCONT);
            let until = Instant::now() + Duration::from_millis(5);
            while Instant::now() < until {
                if let Ok(v) = q.get_nowait::<Blob>() {
                    seen.take(&v);
                }
            }
            kid.kill().unwrap();
            assert_eq!(kid.join().unwrap().signal(), Some(libc::SIGKILL));
            drain(&q, &mut seen);
            assert!(hit, "round {round}: {NEVER_HELD}");
            assert_eq!(seen.parent, 0, "round {round}: the parent's items");
            assert!(seen.child > 1, "round {round}: the putter never went on after SIGCONT");
        });
    }
}

/// Bytes per item on the manager's queue: its proxy encodes an item byte by byte, so that a
/// large one is mostly encoding, outside the lock; this one's copy under the lock is ~10 us.
const SMALL: usize = 64 << 10;

/// A child: puts numbered items of `SMALL` bytes on the manager's queue until killed.
fn put_small_forever(args: (QueueProxy<Blob>, EventProxy)) -> Result<(), String> {
    let (q, started) = args;
    started.set().map_err(|e| e.to_string())?;
    for i in 0.. {
        q.put(&sized(SMALL, CHILD, i)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn a_killed_putter_on_a_manager_queue_hides_nothing_from_get_nowait() {
    // The putter fills the ring and waits for room. Take one item, which wakes it into the
    // lock to copy its next one; stop it a little later each time until it stopped holding the
    // lock; kill it there. While it is a zombie, the items it left must come out of zero-wait
    // gets promptly (before d7f7a4b a dead holder's lock read as busy to every zero-wait get,
    // for ever), whole, in order, once.
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    for round in 0..4u64 {
        let q = m.queue_with_capacity::<Blob>(8 * (SMALL + 64), SMALL + 64).unwrap();
        let started = m.event().unwrap();
        let mut kid = get_context(StartMethod::Fork)
            .start(put_small_forever, (q.clone(), started.clone()))
            .unwrap();
        assert!(started.wait_timeout(PATIENCE).unwrap(), "the writer never started");
        let mut seen = Seen::default();
        // Full: it waits for room.
        let t = Instant::now();
        while q.len().unwrap() < 7 {
            assert!(t.elapsed() < PATIENCE, "the writer never filled the queue");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        let hit = stop_holding(kid.pid(), || {
            q.len().unwrap() > 0
                && match q.get_nowait().unwrap() {
                    Some(v) => {
                        seen.take_sized(&v, SMALL);
                        false
                    }
                    None => true,
                }
        });
        kid.kill().unwrap();
        // Zero-wait gets only: every item it left, then none.
        let t = Instant::now();
        while q.len().unwrap() > 0 {
            if let Some(v) = q.get_nowait().unwrap() {
                seen.take_sized(&v, SMALL);
            }
            assert!(
                t.elapsed() < PROMPTLY,
                "round {round}: {} items stayed behind a dead putter's lock",
                q.len().unwrap()
            );
        }
        q.put(&sized(SMALL, PARENT, 0)).unwrap();
        let got = q.get_nowait().unwrap().expect("our own item did not come through get_nowait");
        assert_eq!(whole_sized(&got, SMALL), (PARENT, 0), "an item came after the drain");
        assert!(!kid.join().unwrap().success());
        assert!(hit, "round {round}: {NEVER_HELD}");
    }
    m.shutdown().unwrap();
}

/// Where a `MessageQueue`'s lock word (its holder's token, 0 when free) lies in its segment: the
/// control block's second line (queue/README.md).
const MQ_LOCK_OWNER: u64 = 192;

/// The lock word of the named queue, read through its `/dev/shm` file.
fn lock_owner(name: &str) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(format!("/dev/shm/{name}")).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, MQ_LOCK_OWNER).unwrap();
    u64::from_le_bytes(b)
}

/// The state letter of thread `tid` of `pid`.
fn task_state(pid: u32, tid: u32) -> Option<u8> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    s.rsplit_once(") ").and_then(|(_, rest)| rest.bytes().next())
}

fn a_holder_whose_main_thread_exited_is_not_taken_over() {
    // A process whose main thread exited while another runs on reads as a zombie in
    // `/proc/<pid>/stat` (the main thread's state), yet its other thread may hold the ring lock
    // mid-copy. Taken over, a second writer shares its tail. The ring lock judged its holder by
    // that one state letter and took the lock from such a live holder, at once for a zero-wait
    // call since d7f7a4b.
    let q =
        MessageQueue::bounded_with(RING, MAX_ITEM, &ShmOptions::new().generated_name()).unwrap();
    let name = q.name().unwrap().to_string();
    let mut seen = Seen::default();
    scope(|s| {
        let q2 = &q;
        let kid = s
            .fork(move || {
                std::thread::scope(|ts| {
                    ts.spawn(|| {
                        for i in 0.. {
                            q2.put(&item(CHILD, i)).unwrap();
                        }
                    });
                    std::thread::sleep(Duration::from_millis(20));
                    // SAFETY: exits this thread only (not the process), running no destructor
                    // and unwinding nothing; its stack stays mapped for the other thread, which
                    // borrows from it, until the process ends.
                    unsafe { libc::syscall(libc::SYS_exit, 0) };
                });
            })
            .unwrap();
        let pid = kid.pid();
        wait_state(pid, b'Z');
        let t = Instant::now();
        let tid = loop {
            let tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&t| t != pid)
                .collect();
            if let [t] = tids[..] {
                break t;
            }
            assert!(t.elapsed() < PATIENCE, "threads of the child: {tids:?}");
        };
        // Stop it until its putting thread stopped holding the lock.
        let mut hit = false;
        let t = Instant::now();
        for attempt in 0u64.. {
            if t.elapsed() > Duration::from_secs(10) {
                break;
            }
            signal(pid, libc::SIGSTOP);
            while task_state(pid, tid) != Some(b'T') {
                std::thread::sleep(Duration::from_micros(100));
            }
            if lock_owner(&name) != 0 {
                hit = true;
                break;
            }
            if let Ok(v) = q.get_nowait::<Blob>() {
                seen.take(&v);
            }
            signal(pid, libc::SIGCONT);
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(attempt % 50 * 2) {
                std::hint::spin_loop();
            }
        }
        let mut taken = None;
        if hit {
            let holder = lock_owner(&name);
            let got = q.get_timeout::<Blob>(Duration::ZERO);
            let put = q.put_nowait(&item(PARENT, 0));
            if lock_owner(&name) != holder || got.is_ok() || put.is_ok() {
                taken = Some(format!("get {:?}, put {put:?}", got.map(|b| whole(&b))));
            }
        }
        kid.kill().unwrap();
        assert_eq!(kid.join().unwrap().signal(), Some(libc::SIGKILL));
        assert!(hit, "{NEVER_HELD}");
        assert_eq!(taken, None, "a live holder's lock was taken over");
    })
    .unwrap();
}
