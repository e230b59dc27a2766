//! The fast path: a dict whose [`Table`] lives in a [`LockedArray`] (a robust process-shared
//! lock and a segment of words) that the server makes and the proxies on its machine map, so
//! their calls never cross the socket. The server applies remote clients' calls to the same
//! words, under the same lock (`docs/manager.md`, "Fast path").
//!
//! Each thread keeps the mappings it made, one per object (`None` where the object has no
//! fast path, or its segment cannot be opened from here: another machine); a mapping inherited
//! through `fork` is never used, as with connections. Every local call first asks the server's
//! pidfd whether the server is alive, so a killed server fails every call at once with
//! [`Error::ManagerGone`], as it does on the socket path.

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use super::session::Object;
use super::table::{Table, words_for};
use super::wire::{Op, Reply};
use crate::LockedArray;
use crate::array::LockedArrayHandle;
use crate::error::{Error, Result};
use crate::sync::LockError;
use crate::sys;

/// How long a call waits for the table's lock before giving up: a holder is only ever inside
/// one short operation, so this is only reached by a holder that is stopped (SIGSTOP, a
/// debugger).
const LOCK_WAIT: Duration = Duration::from_secs(5);

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
    /// repaired first; if it died compacting, the map is emptied and this call fails saying so.
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
                reason: "a process died while compacting this shared dict, so it was emptied \
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

/// A mapping this thread made of one object's words.
struct Mapped {
    /// The process that made it (a fork child's copy is its parent's).
    pid: u32,
    instance: u64,
    id: u64,
    /// The words and the server's pidfd; `None`: no fast path for this object from here.
    local: Option<(SharedDict, OwnedFd)>,
}

thread_local! {
    static MAPPED: RefCell<Vec<Mapped>> = const { RefCell::new(Vec::new()) };
}

/// Opens what the server's `Reply::Shared` names; `None` if it cannot be reached from here.
fn open(handle: &LockedArrayHandle, server: u32) -> Option<(SharedDict, OwnedFd)> {
    let arr = LockedArray::<u64>::open_handle(handle).ok()?;
    let pidfd = sys::signal::pidfd_open(server).ok()??;
    Some((SharedDict { arr }, pidfd))
}

/// Runs `f` on `obj`'s table in this process, if it has one reachable from here (`None`:
/// use the server). Fails with [`Error::ManagerGone`] if the server has exited.
pub(crate) fn local<R>(obj: &Object, f: impl FnOnce(&mut Table<'_>) -> R) -> Option<Result<R>> {
    let me = sys::proc::getpid();
    MAPPED.with(|m| {
        let mut m = m.borrow_mut();
        if m.iter().any(|x| x.pid != me) {
            // A fork child's copies: the parent's mappings, which fork did not carry (shared
            // arrays are kept out of forks). Forgotten, never unmapped or closed from here.
            let (ours, theirs): (Vec<_>, Vec<_>) = m.drain(..).partition(|x| x.pid == me);
            theirs.into_iter().for_each(std::mem::forget);
            *m = ours;
        }
        let i = match m.iter().position(|x| x.instance == obj.remote.instance && x.id == obj.id) {
            Some(i) => i,
            None => {
                let local = match obj.call(Op::Shared, None) {
                    Ok(Reply::Shared { handle, pid }) => open(&handle, pid),
                    Ok(_) | Err(Error::ManagerRefused { .. }) => None,
                    Err(e) => return Some(Err(e)),
                };
                m.push(Mapped { pid: me, instance: obj.remote.instance, id: obj.id, local });
                m.len() - 1
            }
        };
        let (dict, server) = m[i].local.as_ref()?;
        match sys::fdpass::wait_readable(server.as_fd(), Some(Duration::ZERO)) {
            Ok(false) => {}
            Ok(true) => {
                return Some(Err(Error::ManagerGone {
                    address: obj.remote.address.to_string(),
                    reason: "its server process exited".into(),
                }));
            }
            Err(e) => return Some(Err(Error::io("poll")(e))),
        }
        Some(dict.with(f))
    })
}
