//! The Manager's requests and replies: typed enums encoded with postcard, one per frame of the
//! listener's message format (`docs/manager.md`, "Wire format"). Values travel as their own
//! postcard bytes (`Vec<u8>`): the server stores and compares bytes and never needs the
//! proxies' types, and nothing received is ever run.

use serde::{Deserialize, Serialize};

/// What a client asks of the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The first request of every connection: which server answers (its instance number).
    Hello,
    /// Make a new object: [`Reply::Id`].
    Create(Kind),
    /// The object registered under `name`, made (as `kind`) by the first to ask:
    /// [`Reply::Id`]; refused when it exists with another kind.
    Named {
        /// The name every process asks for.
        name: String,
        /// Its kind and initial state, for the first.
        kind: Kind,
    },
    /// Apply `op` to object `id`.
    Call {
        /// The object.
        id: u64,
        /// What to do.
        op: Op,
    },
    /// Stop the server: [`Reply::Done`], then it exits.
    Shutdown,
}

/// The kind of object to create, with its initial state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// A map from encoded keys to encoded values.
    Dict,
    /// A list of encoded items.
    List,
    /// One encoded value.
    Value(Vec<u8>),
    /// A FIFO queue of encoded items, holding at most `maxsize` (0: unbounded).
    Queue {
        /// Its capacity; 0 for none.
        maxsize: u64,
    },
    /// A lock any connection may release (Python's `threading.Lock`).
    Lock,
    /// A lock its holder may take again and only it may release (`threading.RLock`).
    RLock,
    /// A flag processes wait for.
    Event,
    /// A counter with this initial value.
    Semaphore(u64),
    /// A registered custom type, by its `Managed::NAME`.
    /// A dict whose table lives in shared memory (the fast path): room for `keys` keys and
    /// `bytes` bytes of encoded keys and values.
    SharedDict {
        keys: u64,
        bytes: u64,
    },
    /// A barrier for this many parties.
    Barrier(u64),
    /// A condition variable with its own reentrant lock.
    Condition,
    /// A typed array in shared memory of this many bytes (its elements' type is the proxies'
    /// business).
    Array(u64),
    /// A queue in shared memory (the fast path): a ring of `capacity` bytes taking items of at
    /// most `max_item` encoded bytes.
    SharedQueue {
        capacity: u64,
        max_item: u64,
    },
    Custom(String),
}

/// An operation on an object. Waits carry their limit in milliseconds, so every wait on the
/// server ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// Dict, list, queue: how many entries.
    Len,
    /// Dict: the value of a key, if any.
    DictGet(Vec<u8>),
    /// Dict: set a key's value.
    DictSet(Vec<u8>, Vec<u8>),
    /// Dict: remove a key, returning its value if it had one.
    DictRemove(Vec<u8>),
    /// Dict: whether it holds a key.
    DictContains(Vec<u8>),
    /// Dict: set every pair.
    DictUpdate(Vec<(Vec<u8>, Vec<u8>)>),
    /// Dict: the keys, ordered by their encoded bytes.
    DictKeys,
    /// Dict: the pairs, ordered by their keys' encoded bytes.
    DictItems,
    /// Dict or list: remove everything.
    Clear,
    /// List: append an item.
    ListAppend(Vec<u8>),
    /// List: append items.
    ListExtend(Vec<Vec<u8>>),
    /// List: the item at an index (negative: from the end), if any.
    ListGet(i64),
    /// List: replace the item at an index; refused out of range.
    ListSet(i64, Vec<u8>),
    /// List: remove and return the item at an index (`None`: the last), if any.
    ListPop(Option<i64>),
    /// List: a copy of every item.
    ListSnapshot,
    /// Value: read it.
    ValueGet,
    /// Value: replace it.
    ValueSet(Vec<u8>),
    /// Queue: add an item, waiting up to `wait_ms` for room.
    QueuePut {
        /// The item.
        item: Vec<u8>,
        /// The wait's limit.
        wait_ms: u64,
    },
    /// Queue: take the oldest item, waiting up to `wait_ms` for one.
    QueueGet {
        /// The wait's limit.
        wait_ms: u64,
    },
    /// Lock, RLock, Semaphore: acquire, waiting up to `wait_ms`.
    Acquire {
        /// The wait's limit.
        wait_ms: u64,
    },
    /// Lock, RLock, Semaphore: release.
    Release,
    /// Event: set the flag.
    EventSet,
    /// Event: clear it.
    EventClear,
    /// Event: read it.
    EventIsSet,
    /// Event: wait up to `wait_ms` for the flag.
    EventWait {
        /// The wait's limit.
        wait_ms: u64,
    },
    /// A custom object's request, encoded by its proxy.
    /// Waits at a barrier: `Reply::Len(arrival index)`, or `Reply::Bool(false)` if it broke.
    BarrierWait {
        wait_ms: u64,
    },
    /// Breaks a barrier for its waiters and later arrivals.
    BarrierAbort,
    /// Breaks a barrier for its waiters, then makes it whole and empty.
    BarrierReset,
    /// `Reply::Len(parties)`.
    BarrierParties,
    /// `Reply::Bool(broken)`.
    BarrierBroken,
    /// Releases a held condition's lock, waits for a notification, takes the lock back:
    /// `Reply::Bool(notified)`.
    CondWait {
        wait_ms: u64,
    },
    /// Wakes up to this many of a held condition's waiters.
    CondNotify(u64),
    /// `len` bytes of an array from byte `at`: `Reply::Item`.
    ArrayRead {
        at: u64,
        len: u64,
    },
    /// Writes bytes into an array from byte `at`.
    ArrayWrite {
        at: u64,
        bytes: Vec<u8>,
    },
    /// Where the object's shared memory is, for a proxy on the server's machine.
    Shared,
    Custom(Vec<u8>),
}

/// The server's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// To `Hello`: the server's instance number.
    Hello {
        /// Random, made when the server started.
        instance: u64,
    },
    /// To `Create`: the new object's id.
    Id(u64),
    /// Done, nothing to return.
    Done,
    /// A yes or no (`DictContains`, `EventIsSet`, a wait's outcome).
    Bool(bool),
    /// A count (`Len`).
    Len(u64),
    /// One encoded value, or none.
    Item(Option<Vec<u8>>),
    /// Several encoded values.
    Items(Vec<Vec<u8>>),
    /// Encoded key and value pairs.
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    /// A custom object's reply.
    Custom(Vec<u8>),
    /// The request was refused; why, with the fix.
    /// The object's shared memory and the server's process id (for its pidfd).
    Shared {
        handle: crate::array::LockedArrayHandle,
        pid: u32,
    },
    /// The array's shared memory and the server's process id.
    SharedArray {
        handle: crate::array::LockedArrayHandle,
        pid: u32,
    },
    /// The queue's shared memory and the server's process id.
    SharedQueue {
        handle: crate::segment::SegmentHandle,
        pid: u32,
    },
    Refused(String),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Random bytes never panic the request decoder: a typed error or a request.
        #[test]
        fn random_frames_decode_or_fail_typed(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = postcard::from_bytes::<Request>(&bytes);
        }

        /// A valid request with bytes flipped or cut decodes to some request or fails typed.
        #[test]
        fn mutated_requests_decode_or_fail_typed(
            key in proptest::collection::vec(any::<u8>(), 0..32),
            flip in any::<(usize, u8)>(),
            cut in any::<usize>(),
        ) {
            let req = Request::Call { id: 3, op: Op::DictSet(key.clone(), key) };
            let mut bytes = postcard::to_stdvec(&req).unwrap();
            let i = flip.0 % bytes.len();
            bytes[i] ^= flip.1;
            let _ = postcard::from_bytes::<Request>(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = postcard::from_bytes::<Request>(&bytes);
        }
    }

    #[test]
    fn requests_round_trip() {
        let r = Request::Call { id: 9, op: Op::QueuePut { item: vec![1, 2], wait_ms: 5 } };
        let back: Request = postcard::from_bytes(&postcard::to_stdvec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
