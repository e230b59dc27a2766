//! The words of the control block that mean more than a number: packed job/index words, the
//! pool's phase, the parent's sleep mode, the error slot's state, an array's kind, and 0/1
//! flags. Each is a `Copy` newtype with named constructors, accessors and constants, beside an
//! atomic twin (`#[repr(transparent)]` over the integer, so the control block's layout is the
//! integers'). The layout and meaning of each word is documented here, once, at its type
//! (README.md points here); the protocol that reads and writes them is in README.md.
//!
//! Every bit pattern is a valid value of every type here (the control block is mapped from a
//! memfd by workers that trust nothing of its contents but their checks), and all-zero is the
//! state of a fresh block: job 0 index 0, running, parent awake, no error, no array, flags clear.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A job id and an index in that job, packed into one 64-bit word so that one atomic operation
/// reads or changes both.
///
/// | bits | field |
/// |---|---|
/// | 63..32 | the job id (`u32`; job 0 is "no job yet") |
/// | 31..0 | the index: a chunk of the job, or [`CLOSED`](JobIndex::CLOSED) (`u32::MAX`) |
///
/// All 64 bits set is [`NOTHING`](JobIndex::NOTHING): no chunk at all.
///
/// Three kinds of word in the control block hold one:
/// - the claim cursor (`ControlBlock::cursor`): the current job and the next chunk to claim,
///   [`closed`](JobIndex::closed) while the descriptor is being written;
/// - each worker's `held`: the chunk it is claiming or running, else `NOTHING`;
/// - each retry ring entry: a lost chunk to run again.
///
/// Because the job id travels with the index, a compare-and-swap of the cursor from `(J, i)` to
/// `(J, i + 1)` fails for a worker whose snapshot of the descriptor is of another job: a
/// successful claim proves the descriptor it read is current (README.md, "Publishing a job").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct JobIndex(u64);

impl JobIndex {
    /// The index half of a closed cursor: nothing of the job can be claimed.
    pub(crate) const CLOSED: u64 = u32::MAX as u64;
    /// No chunk (a worker's `held` when it holds none).
    pub(crate) const NOTHING: JobIndex = JobIndex(u64::MAX);

    /// Index `index` of job `job` (only the low 32 bits of `index` are kept).
    pub(crate) const fn new(job: u32, index: u64) -> JobIndex {
        JobIndex(((job as u64) << 32) | (index & Self::CLOSED))
    }

    /// The cursor of job `job` with claiming closed.
    pub(crate) const fn closed(job: u32) -> JobIndex {
        JobIndex::new(job, Self::CLOSED)
    }

    /// The job id.
    pub(crate) const fn job(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The index in the job.
    pub(crate) const fn index(self) -> u64 {
        self.0 & Self::CLOSED
    }

    /// Whether this is a closed cursor.
    pub(crate) const fn is_closed(self) -> bool {
        self.index() == Self::CLOSED
    }

    /// The next index of the same job: a claim moves the cursor from `self` to this. Only for an
    /// open cursor (an index below `CLOSED`), whose index then never reaches the job bits.
    pub(crate) const fn next(self) -> JobIndex {
        JobIndex(self.0 + 1)
    }
}

/// Declares the atomic twin of a newtype word: `load` and `store` (and, with `cas`,
/// `compare_exchange`) in the newtype, on the integer inside.
macro_rules! atomic_word {
    ($(#[$doc:meta])* $atomic:ident($raw:ty) holds $word:ident $(, $cas:ident)?) => {
        $(#[$doc])*
        #[repr(transparent)]
        pub(crate) struct $atomic($raw);

        impl $atomic {
            /// Loads the word.
            pub(crate) fn load(&self, order: Ordering) -> $word {
                $word(self.0.load(order))
            }

            /// Stores `w`.
            pub(crate) fn store(&self, w: $word, order: Ordering) {
                self.0.store(w.0, order)
            }

            $(atomic_word!(@$cas $word);)?
        }
    };
    (@cas $word:ident) => {
        /// Replaces `current` with `new` if it is still there; the value found either way.
        pub(crate) fn compare_exchange(
            &self,
            current: $word,
            new: $word,
            success: Ordering,
            failure: Ordering,
        ) -> Result<$word, $word> {
            self.0.compare_exchange(current.0, new.0, success, failure).map($word).map_err($word)
        }
    };
}

/// Declares a `u32` state word: the newtype, its named values (the only place they are
/// defined), and its atomic twin.
macro_rules! state_word {
    (
        $(#[$doc:meta])* $word:ident, atomic $atomic:ident $(, $cas:ident)? {
            $($(#[$vdoc:meta])* $value:ident = $n:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) struct $word(u32);

        impl $word {
            $($(#[$vdoc])* pub(crate) const $value: $word = $word($n);)+
        }

        atomic_word!(
            #[doc = concat!("An atomic [`", stringify!($word), "`].")]
            $atomic(AtomicU32) holds $word $(, $cas)?
        );
    };
}

state_word! {
    /// What the parent tells the workers about the pool's life (`ControlBlock::state`). A worker
    /// reads it each time round its loop: under [`TERMINATING`](Phase::TERMINATING) it exits at
    /// once, under [`CLOSING`](Phase::CLOSING) once it finds no chunk to claim. Any other value
    /// reads as running.
    Phase, atomic AtomicPhase {
        /// Taking work (the value of a fresh block).
        RUNNING = 0,
        /// `close` was called: workers exit once idle.
        CLOSING = 1,
        /// `terminate` was called: workers exit at once.
        TERMINATING = 2,
    }
}

state_word! {
    /// Whether the parent sleeps in a job, and what should wake it
    /// (`ControlBlock::parent_sleeping`). The parent sets it before its last look at the job and
    /// clears it after the sleep; a worker that finishes the job (any chunk, under
    /// [`EACH_CHUNK`](ParentSleep::EACH_CHUNK)) while it is set writes a byte to the wake pipe
    /// (README.md, "Sleeping and waking").
    ParentSleep, atomic AtomicParentSleep {
        /// Not sleeping: nobody writes to the wake pipe.
        AWAKE = 0,
        /// Sleeping until the job completes.
        UNTIL_DONE = 1,
        /// Sleeping until any chunk finishes (streaming results).
        EACH_CHUNK = 2,
    }
}

impl ParentSleep {
    /// Whether the parent is (about to be) asleep, in either mode.
    pub(crate) const fn is_asleep(self) -> bool {
        self.0 != Self::AWAKE.0
    }
}

state_word! {
    /// The state of the job's error slot (`ErrorSlot::kind`): empty, being written by the worker
    /// that won it, or the kind of the first failure, once written (the message, chunk and pid
    /// are then readable).
    FailKind, atomic AtomicFailKind, cas {
        /// No failure recorded.
        NONE = 0,
        /// The kernel panicked (or its chunk could not run: corrupt code address, unmappable
        /// array).
        PANIC = 1,
        /// A worker is writing the slot.
        WRITING = 2,
    }
}

state_word! {
    /// Where one array of a job lives (`ArrayRef::tag`), which says which other fields of the
    /// `ArrayRef` mean something.
    ArrayKind, atomic AtomicArrayKind {
        /// No array in this position.
        UNUSED = 0,
        /// An anonymous memfd segment: `pid`, `fd`, `nonce`.
        MEMFD = 1,
        /// A named segment: `name`, `name_len`, `nonce`.
        NAMED = 2,
        /// The control block's scratch area, from byte `offset`, elements of `elem_size` bytes.
        SCRATCH = 3,
    }
}

atomic_word!(
    /// An atomic [`JobIndex`]: the claim cursor, a worker's `held`, a retry ring entry.
    AtomicJobIndex(AtomicU64) holds JobIndex, cas
);

/// A 0/1 word (a worker's `retiring` and `initialized`, an array's `region`): set is 1, any
/// other value reads as clear.
#[repr(transparent)]
pub(crate) struct AtomicFlag(AtomicU32);

impl AtomicFlag {
    /// Whether it is set.
    pub(crate) fn is_set(&self, order: Ordering) -> bool {
        self.0.load(order) == 1
    }

    /// Sets it, or clears it.
    pub(crate) fn put(&self, set: bool, order: Ordering) {
        self.0.store(u32::from(set), order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_index_packs_the_job_above_the_index() {
        let w = JobIndex::new(7, 5);
        assert_eq!((w.job(), w.index()), (7, 5));
        assert_eq!(w.0, (7 << 32) | 5);
        assert_eq!(w.next(), JobIndex::new(7, 6));
        assert!(!w.is_closed());
        let c = JobIndex::closed(u32::MAX - 1);
        assert!(c.is_closed());
        assert_eq!((c.job(), c.index()), (u32::MAX - 1, JobIndex::CLOSED));
        // Only the low 32 bits of an index are kept; NOTHING is all ones.
        assert_eq!(JobIndex::new(1, (1 << 32) | 3), JobIndex::new(1, 3));
        assert_eq!(JobIndex::NOTHING, JobIndex::closed(u32::MAX));
    }

    #[test]
    fn all_zero_is_a_fresh_block() {
        assert_eq!(AtomicJobIndex(AtomicU64::new(0)).load(Ordering::Relaxed), JobIndex::new(0, 0));
        assert_eq!(AtomicPhase(AtomicU32::new(0)).load(Ordering::Relaxed), Phase::RUNNING);
        let sleep = AtomicParentSleep(AtomicU32::new(0)).load(Ordering::Relaxed);
        assert!(sleep == ParentSleep::AWAKE && !sleep.is_asleep());
        assert_eq!(AtomicFailKind(AtomicU32::new(0)).load(Ordering::Relaxed), FailKind::NONE);
        assert_eq!(AtomicArrayKind(AtomicU32::new(0)).load(Ordering::Relaxed), ArrayKind::UNUSED);
        assert!(!AtomicFlag(AtomicU32::new(0)).is_set(Ordering::Relaxed));
    }
}
