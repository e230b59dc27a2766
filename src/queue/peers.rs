//! Which processes produce into and consume from a queue, so a waiter can tell that the other
//! side is gone for good.
//!
//! A process registers its token (pid + start time, see `sys::peer`) in the producer table on
//! its first put and in the consumer table on its first get. The registration lasts as long as
//! the process: a waiter whose sleep slice ran out asks [`PeerTable::all_gone`], which answers
//! only when every registered process has exited (zombies and reused pids count as exited).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::error::PeersGone;
use crate::sys::peer;

/// How many processes each side of a queue can register. Past that, the table overflows and
/// the dead-peer check for that side is off (waits then end only by timeout or close).
pub(crate) const PEER_SLOTS: usize = 30;

/// One side's registered processes. 256 bytes, cache-line aligned.
#[repr(C, align(64))]
pub(crate) struct PeerTable {
    overflow: AtomicU32,
    _pad: u32,
    _pad2: u64,
    slots: [AtomicU64; PEER_SLOTS],
}

const _: () = assert!(std::mem::size_of::<PeerTable>() == 256);

impl PeerTable {
    /// Registers this process through a handle that remembers, in `cached`, the token it last
    /// registered (0 at first; a forked child's differs), so every put or get after a process's
    /// first costs one relaxed load.
    pub(crate) fn register_cached(&self, cached: &AtomicU64) {
        let me = peer::me();
        if cached.load(Ordering::Relaxed) != me {
            self.register(me);
            cached.store(me, Ordering::Relaxed);
        }
    }

    /// Records `me` (a `sys::peer` token). Reuses slots of processes that have exited.
    pub(crate) fn register(&self, me: u64) {
        if self.slots.iter().any(|s| s.load(Ordering::Acquire) == me) {
            return;
        }
        for s in &self.slots {
            if s.load(Ordering::Relaxed) == 0
                && s.compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                return;
            }
        }
        for s in &self.slots {
            let old = s.load(Ordering::Acquire);
            if old != 0
                && !peer::alive(old)
                && s.compare_exchange(old, me, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                return;
            }
        }
        self.overflow.store(1, Ordering::Release);
    }

    /// Whether some registered process has exited (the evidence a stuck slot needs before a
    /// wait blames it on a dead claimer). Slots of exited processes are only reused once the
    /// table is otherwise full, so the evidence stays while fewer than 30 processes register.
    pub(crate) fn any_dead(&self) -> bool {
        self.slots.iter().any(|s| {
            let t = s.load(Ordering::Acquire);
            t != 0 && !peer::alive(t)
        })
    }

    /// The pids of the registered processes if every one of them has exited; `None` while any
    /// runs, when none registered yet, or when the table overflowed (then nobody can tell).
    pub(crate) fn all_gone(&self) -> Option<Vec<u32>> {
        if self.overflow.load(Ordering::Acquire) != 0 {
            return None;
        }
        let mut pids = Vec::new();
        for s in &self.slots {
            let t = s.load(Ordering::Acquire);
            if t != 0 {
                if peer::alive(t) {
                    return None;
                }
                pids.push(peer::token_pid(t));
            }
        }
        if pids.is_empty() { None } else { Some(pids) }
    }

    /// The dead-peer check of a wait on the other side: `PeersGone` with their pids once
    /// [`all_gone`](Self::all_gone) says every registered process has exited.
    pub(crate) fn check_gone<E: From<PeersGone>>(&self) -> Result<(), E> {
        match self.all_gone() {
            Some(pids) => Err(PeersGone(pids).into()),
            None => Ok(()),
        }
    }
}
