//! The fast path: a dict whose [`Table`] lives in a [`LockedArray`] (a robust process-shared
//! lock and a segment of words), and a queue that is a bounded [`MessageQueue`], which the
//! server makes and the proxies on its machine map, so their calls never cross the socket. The
//! server applies remote clients' calls to the same memory, under the same locks
//! (`docs/manager.md`, "Fast path").
//!
//! Each thread keeps the mappings it made, one per object (`None` where the object has no
//! fast path, or its segment cannot be opened from here: another machine); a mapping inherited
//! through `fork` is never used, as with connections. Every local call first asks the server's
//! pidfd whether the server is alive, so a killed server fails every call at once with
//! [`Error::ManagerGone`], as it does on the socket path.

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::session::Object;
use super::table::{Table, words_for};
use super::wire::{Op, Reply};
use crate::array::LockedArrayHandle;
use crate::connection::Address;
use crate::error::{Error, Result};
use crate::queue::{MessageGetTimeoutError, MessagePutTimeoutError};
use crate::sync::LockError;
use crate::sys;
use crate::{LockedArray, MessageQueue};

/// How long a call waits for the table's lock before giving up: a holder is only ever inside
/// one short operation, so this is only reached by a holder that is stopped (SIGSTOP, a
/// debugger).
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// How long a queue wait sleeps between checks that the other side (the server, for a proxy;
/// the client, for the server) is still there.
const SLICE: Duration = Duration::from_millis(50);

/// One shared dict's words, as the server or a proxy maps them.
pub(crate) struct SharedDict {
    arr: LockedArray<u64>,
}

impl SharedDict {
    /// A new empty dict with room for `keys` keys and `bytes` bytes of encoded keys and values.
    pub(crate) fn create(keys: u64, bytes: u64) -> Result<SharedDict> {
        let too_big = || Error::InvalidArgument {
            what: "shared dict capacity",
            reason: format!("{keys} keys and {bytes} bytes do not fit in memory; ask for less"),
        };
        let (words, slots) = words_for(keys, bytes).ok_or_else(too_big)?;
        let arr = LockedArray::<u64>::zeroed(words)?;
        Table::init(&mut arr.lock()?, slots);
        Ok(SharedDict { arr })
    }

    /// What a proxy opens it by.
    pub(crate) fn handle(&self) -> LockedArrayHandle {
        self.arr.handle()
    }

    /// Runs `f` on the table under its lock. A holder that died inside an operation is
    /// repaired first; if it died compacting or clearing, the map is emptied and this call fails saying so.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Table<'_>) -> R) -> Result<R> {
        let corrupt = || Error::ManagerRefused {
            reason: "the shared dict's words are not a table (something other than a manager \
                     wrote them); make a new dict"
                .into(),
        };
        let (mut g, lost) = match self.arr.lock_timeout(LOCK_WAIT) {
            Ok(g) => (g, false),
            Err(LockError::OwnerDied(od)) => {
                let mut g = od.recover();
                let lost = Table::open(&mut g).ok_or_else(corrupt)?.repair();
                (g, lost)
            }
            Err(e) => return Err(e.into()),
        };
        let mut t = Table::open(&mut g).ok_or_else(corrupt)?;
        if lost {
            return Err(Error::ManagerRefused {
                reason: "a process died while compacting or clearing this shared dict, so it was emptied \
                         (its contents were lost); the call was not applied, repeat it"
                    .into(),
            });
        }
        Ok(f(&mut t))
    }

    /// Applies a dict operation, as the server does for a remote client.
    pub(crate) fn apply(&self, op: &Op) -> Reply {
        let r = self.with(|t| match op {
            Op::Len => Reply::Len(t.len()),
            Op::DictGet(k) => Reply::Item(t.get(k)),
            Op::DictSet(k, v) => match t.set(k, v) {
                Ok(()) => Reply::Done,
                Err(full) => Reply::Refused(full.reason()),
            },
            Op::DictRemove(k) => Reply::Item(t.remove(k)),
            Op::DictContains(k) => Reply::Bool(t.contains(k)),
            Op::DictUpdate(pairs) => {
                for (k, v) in pairs {
                    if let Err(full) = t.set(k, v) {
                        return Reply::Refused(full.reason());
                    }
                }
                Reply::Done
            }
            Op::DictKeys => Reply::Items(t.pairs().into_iter().map(|(k, _)| k).collect()),
            Op::DictItems => Reply::Pairs(t.pairs()),
            Op::Clear => {
                t.clear();
                Reply::Done
            }
            op => Reply::Refused(format!(
                "a shared dict has no operation {op:?}; the proxy and the object disagree"
            )),
        });
        r.unwrap_or_else(|e| Reply::Refused(e.to_string()))
    }
}

/// Puts `item` on `q`, waiting for room up to `wait`; `check` runs before each slice of the
/// wait and ends it with its error. `Ok(false)`: no room in time.
pub(crate) fn queue_put(
    q: &MessageQueue,
    item: &[u8],
    wait: Duration,
    check: impl Fn() -> Result<()>,
) -> Result<bool> {
    let deadline = Instant::now().checked_add(wait);
    loop {
        check()?;
        let left = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()));
        match q.put_timeout(item, left.min(SLICE)) {
            Ok(()) => return Ok(true),
            Err(MessagePutTimeoutError::Timeout { .. }) if left > SLICE => {}
            Err(MessagePutTimeoutError::Timeout { .. }) => return Ok(false),
            Err(e) => return Err(Error::ManagerRefused { reason: e.to_string() }),
        }
    }
}

/// Takes the oldest item of `q`, waiting up to `wait` (as [`queue_put`]). `Ok(None)`: none came.
pub(crate) fn queue_get(
    q: &MessageQueue,
    wait: Duration,
    check: impl Fn() -> Result<()>,
) -> Result<Option<Vec<u8>>> {
    let deadline = Instant::now().checked_add(wait);
    loop {
        check()?;
        let left = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()));
        match q.get_timeout::<Vec<u8>>(left.min(SLICE)) {
            Ok(item) => return Ok(Some(item)),
            Err(MessageGetTimeoutError::Timeout { .. }) if left > SLICE => {}
            Err(MessageGetTimeoutError::Timeout { .. }) => return Ok(None),
            Err(e) => return Err(Error::ManagerRefused { reason: e.to_string() }),
        }
    }
}

/// What a thread maps of one object.
pub(crate) enum Local {
    Dict(Box<SharedDict>),
    Queue(MessageQueue),
    Array(Box<LockedArray<u8>>),
}

/// The server's pidfd, which reads as readable once the server has exited.
pub(crate) struct Alive<'a> {
    pidfd: &'a OwnedFd,
    address: &'a Address,
}

impl Alive<'_> {
    /// Fails with [`Error::ManagerGone`] if the server has exited.
    pub(crate) fn check(&self) -> Result<()> {
        match sys::fdpass::wait_readable(self.pidfd.as_fd(), Some(Duration::ZERO)) {
            Ok(false) => Ok(()),
            Ok(true) => Err(Error::ManagerGone {
                address: self.address.to_string(),
                reason: "its server process exited".into(),
            }),
            Err(e) => Err(Error::io("poll")(e)),
        }
    }
}

fn wrong_proxy() -> Error {
    Error::ManagerRefused {
        reason: "the object's shared memory is of another kind than the proxy; the proxy was \
                 decoded as the wrong type"
            .into(),
    }
}

/// The most objects one thread keeps mapped. Each holds two descriptors (its lock's and its
/// words' memfds) and a mapping; past this, the least recently used is unmapped (and mapped
/// again, one round trip, if it is used again), so a thread that touches thousands of objects
/// does not run its process out of descriptors (1024 by default).
const MAX_MAPPED: usize = 64;

/// A mapping this thread made of one object's words.
struct Mapped {
    /// The process that made it (a fork child's copy is its parent's).
    pid: u32,
    instance: u64,
    id: u64,
    /// When this thread last used it (a count of uses), to unmap the least recently used.
    used: u64,
    /// The memory and the server's pidfd (one per server, shared by its objects' mappings);
    /// `None`: no fast path for this object from here.
    local: Option<Rc<(Local, Rc<OwnedFd>)>>,
}

thread_local! {
    static MAPPED: RefCell<Vec<Mapped>> = const { RefCell::new(Vec::new()) };
    static USES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Opens what the server's `Reply::Shared` names; `None` if it cannot be reached from here.
/// `pidfd`: the server's, if this thread already has it.
fn open(reply: Reply, pidfd: Option<Rc<OwnedFd>>) -> Option<(Local, Rc<OwnedFd>)> {
    let (local, server) = match reply {
        Reply::Shared { handle, pid } => (
            Local::Dict(Box::new(SharedDict { arr: LockedArray::open_handle(&handle).ok()? })),
            pid,
        ),
        Reply::SharedArray { handle, pid } => {
            (Local::Array(Box::new(LockedArray::open_handle(&handle).ok()?)), pid)
        }
        Reply::SharedQueue { handle, pid } => {
            (Local::Queue(MessageQueue::open_handle(&handle).ok()?), pid)
        }
        _ => return None,
    };
    let pidfd = match pidfd {
        Some(fd) => fd,
        None => Rc::new(sys::signal::pidfd_open(server).ok()??),
    };
    Some((local, pidfd))
}

/// Runs `f` on `obj`'s table in this process, if it has one reachable from here (`None`:
/// use the server). Fails with [`Error::ManagerGone`] if the server has exited.
pub(crate) fn local<R>(obj: &Object, f: impl FnOnce(&mut Table<'_>) -> R) -> Option<Result<R>> {
    mapped(obj, |local, alive| match local {
        Local::Dict(d) => {
            alive.check()?;
            d.with(f)
        }
        Local::Queue(_) | Local::Array(_) => Err(wrong_proxy()),
    })
}

/// Runs `f` on `obj`'s array bytes in this process, under their lock, if it has them reachable
/// from here (`None`: use the server). A holder that died mid-write leaves the bytes as it
/// left them (as with any lock); the lock is recovered and the call goes on.
pub(crate) fn local_array<R>(obj: &Object, f: impl FnOnce(&mut [u8]) -> R) -> Option<Result<R>> {
    mapped(obj, |local, alive| match local {
        Local::Array(a) => {
            alive.check()?;
            let mut g = match a.lock_timeout(LOCK_WAIT) {
                Ok(g) => g,
                Err(LockError::OwnerDied(od)) => od.recover(),
                Err(e) => return Err(e.into()),
            };
            Ok(f(&mut g))
        }
        _ => Err(wrong_proxy()),
    })
}

/// Runs `f` on `obj`'s queue in this process, if it has one reachable from here (`None`: use
/// the server); `f` checks `Alive` before and during its waits.
pub(crate) fn local_queue<R>(
    obj: &Object,
    f: impl FnOnce(&MessageQueue, &Alive<'_>) -> Result<R>,
) -> Option<Result<R>> {
    mapped(obj, |local, alive| match local {
        Local::Queue(q) => f(q, alive),
        _ => Err(wrong_proxy()),
    })
}

/// Unmaps what this thread maps of the server `instance` (its `Manager` is being stopped), so a
/// process that starts many managers does not keep their memory.
pub(crate) fn forget(instance: u64) {
    let me = sys::proc::getpid();
    // Fork copies stay, to be forgotten (never dropped) by the next `mapped`.
    MAPPED.with(|m| m.borrow_mut().retain(|x| x.pid != me || x.instance != instance));
}

/// Runs `f` on what this thread maps of `obj`, mapping it first if this thread has not asked
/// the server yet.
fn mapped<R>(obj: &Object, f: impl FnOnce(&Local, &Alive<'_>) -> Result<R>) -> Option<Result<R>> {
    let me = sys::proc::getpid();
    // The mapping is taken out of the list before `f` runs, so that `f` may call other proxies
    // (`with_local`'s closure, a user's).
    let found = MAPPED.with(|m| {
        let mut m = m.borrow_mut();
        if m.iter().any(|x| x.pid != me) {
            // A fork child's copies: the parent's mappings, which fork did not carry (shared
            // memory is kept out of forks). Forgotten, never unmapped or closed from here.
            let (ours, theirs): (Vec<_>, Vec<_>) = m.drain(..).partition(|x| x.pid == me);
            theirs.into_iter().for_each(std::mem::forget);
            *m = ours;
        }
        let x = m.iter_mut().find(|x| x.instance == obj.remote.instance && x.id == obj.id)?;
        x.used = USES.replace(USES.get() + 1);
        Some(x.local.clone())
    });
    let local = match found {
        Some(local) => local,
        None => {
            // Asked outside the list's borrow too: the call may take a while.
            let local = match obj.call(Op::Shared, None) {
                Ok(reply) => open(reply, server_pidfd(obj.remote.instance)).map(Rc::new),
                Err(Error::ManagerRefused { .. }) => None,
                Err(e) => return Some(Err(e)),
            };
            let used = USES.replace(USES.get() + 1);
            let (instance, id) = (obj.remote.instance, obj.id);
            let entry = Mapped { pid: me, instance, id, used, local: local.clone() };
            MAPPED.with(|m| {
                let mut m = m.borrow_mut();
                if m.len() >= MAX_MAPPED
                    && let Some(i) = (0..m.len()).min_by_key(|&i| m[i].used)
                {
                    // Unmapped once no call in progress (an outer `with_local`) holds it.
                    m.swap_remove(i);
                }
                m.push(entry);
            });
            local
        }
    }?;
    let (local, pidfd) = &*local;
    Some(f(local, &Alive { pidfd, address: &obj.remote.address }))
}

/// The pidfd this thread already holds for the server `instance`, if it maps any of its objects.
fn server_pidfd(instance: u64) -> Option<Rc<OwnedFd>> {
    let me = sys::proc::getpid();
    MAPPED.with(|m| {
        m.borrow().iter().filter(|x| x.pid == me && x.instance == instance).find_map(|x| {
            let local = x.local.as_ref()?;
            Some(Rc::clone(&local.1))
        })
    })
}
