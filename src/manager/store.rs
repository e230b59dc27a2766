//! The server's objects and what each operation does to them: one table under one mutex, with
//! one condition variable every change wakes (waits are few and short-lived: a queue, a lock,
//! an event). Locks remember the connection that holds them, so a connection that ends
//! releases what it held.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::custom::Erased;
use super::shared::{SharedDict, queue_get, queue_put};
use super::wire::{Kind, Op, Reply};
use crate::{LockedArray, MessageQueue};

/// How often a waiting request checks that its client is still connected.
const RECHECK: Duration = Duration::from_millis(50);

/// One object the server holds.
enum Obj {
    Dict(BTreeMap<Vec<u8>, Vec<u8>>),
    List(Vec<Vec<u8>>),
    Value(Vec<u8>),
    Queue {
        items: VecDeque<Vec<u8>>,
        maxsize: u64,
    },
    Lock {
        owner: Option<u64>,
    },
    RLock {
        owner: Option<u64>,
        count: u64,
    },
    /// A condition: its reentrant lock, its waiters' tickets in arrival order, the tickets
    /// notified and not yet collected, and the next ticket.
    Condition {
        owner: Option<u64>,
        count: u64,
        waiting: VecDeque<u64>,
        woken: Vec<u64>,
        next: u64,
    },
    /// A barrier: arrivals of the current round, rounds completed, resets so far.
    Barrier {
        parties: u64,
        waiting: u64,
        round: u64,
        resets: u64,
        broken: bool,
    },
    Event(bool),
    Semaphore(u64),
    Custom(Box<dyn Erased>),
    /// The fast path's dict: its table in shared memory, applied outside the table's mutex
    /// (its own robust lock guards it).
    SharedDict(Arc<SharedDict>),
    /// The fast path's queue: a bounded ring in shared memory, waited on outside the table's
    /// mutex.
    SharedQueue(MessageQueue),
    /// An array: bytes in shared memory under their robust lock, which local proxies map.
    Array(Arc<LockedArray<u8>>),
}

impl Obj {
    fn kind(&self) -> &'static str {
        match self {
            Obj::Dict(_) => "dict",
            Obj::List(_) => "list",
            Obj::Value(_) => "value",
            Obj::Queue { .. } => "queue",
            Obj::Lock { .. } => "lock",
            Obj::RLock { .. } => "rlock",
            Obj::Condition { .. } => "condition",
            Obj::Barrier { .. } => "barrier",
            Obj::Event(_) => "event",
            Obj::Semaphore(_) => "semaphore",
            Obj::Custom(_) => "custom object",
            Obj::SharedDict(_) => "shared dict",
            Obj::SharedQueue(_) => "shared queue",
            Obj::Array(_) => "array",
        }
    }
}

#[derive(Default)]
struct Table {
    objects: HashMap<u64, Obj>,
    /// Named objects: id and kind.
    names: HashMap<String, (u64, &'static str)>,
    next: u64,
}

/// Every object of one server.
#[derive(Default)]
pub(crate) struct Store {
    table: Mutex<Table>,
    changed: Condvar,
}

/// What a waiting operation found.
enum Step {
    /// Finished, with this reply.
    Reply(Reply),
    /// Not yet: wait for a change.
    Wait,
}

fn refuse(reason: impl Into<String>) -> Reply {
    Reply::Refused(reason.into())
}

/// `i` as an index into `len` items (negative: from the end).
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic in a custom object's handler poisons the table; its state is still whole
        // (each operation changes it in one step), so go on.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes an object; `custom` makes a registered custom one by name.
    pub(crate) fn create(
        &self,
        kind: Kind,
        custom: impl FnOnce(&str) -> Option<Box<dyn Erased>>,
    ) -> Reply {
        let obj = match kind {
            Kind::Dict => Obj::Dict(BTreeMap::new()),
            Kind::List => Obj::List(Vec::new()),
            Kind::Value(v) => Obj::Value(v),
            Kind::Queue { maxsize } => Obj::Queue { items: VecDeque::new(), maxsize },
            Kind::Lock => Obj::Lock { owner: None },
            Kind::RLock => Obj::RLock { owner: None, count: 0 },
            Kind::Event => Obj::Event(false),
            Kind::Semaphore(n) => Obj::Semaphore(n),
            Kind::Condition => Obj::Condition {
                owner: None,
                count: 0,
                waiting: VecDeque::new(),
                woken: Vec::new(),
                next: 0,
            },
            Kind::Barrier(0) => return refuse("a barrier needs at least one party"),
            Kind::Barrier(parties) => {
                Obj::Barrier { parties, waiting: 0, round: 0, resets: 0, broken: false }
            }
            Kind::SharedDict { keys, bytes } => match SharedDict::create(keys, bytes) {
                Ok(d) => Obj::SharedDict(Arc::new(d)),
                Err(e) => return refuse(e.to_string()),
            },
            Kind::Array(bytes) => match usize::try_from(bytes).map(LockedArray::<u8>::zeroed) {
                Ok(Ok(a)) => Obj::Array(Arc::new(a)),
                Ok(Err(e)) => return refuse(e.to_string()),
                Err(_) => return refuse("an array's size must fit in memory"),
            },
            Kind::SharedQueue { capacity, max_item } => {
                let ring = usize::try_from(capacity).ok().zip(usize::try_from(max_item).ok());
                match ring.map(|(c, m)| MessageQueue::bounded(c, m)) {
                    Some(Ok(q)) => Obj::SharedQueue(q),
                    Some(Err(e)) => return refuse(e.to_string()),
                    None => return refuse("a shared queue's capacity must fit in memory"),
                }
            }
            Kind::Custom(name) => match custom(&name) {
                Some(obj) => Obj::Custom(obj),
                None => {
                    return refuse(format!(
                        "no custom type named {name:?} is registered on this manager; register \
                         it with ManagerBuilder::register::<T>() before start()"
                    ));
                }
            },
        };
        let mut t = self.lock();
        t.next += 1;
        let id = t.next;
        t.objects.insert(id, obj);
        Reply::Id(id)
    }

    /// The object named `name`, made as `kind` if there is none yet.
    pub(crate) fn named(
        &self,
        name: String,
        kind: Kind,
        custom: impl FnOnce(&str) -> Option<Box<dyn Erased>>,
    ) -> Reply {
        let t = self.lock();
        if let Some(&(id, k)) = t.names.get(&name) {
            let wanted = kind_name(&kind);
            if k != wanted {
                return refuse(format!(
                    "the object named {name:?} is a {k}, not a {wanted}; ask for it as a {k}, \
                     or use another name"
                ));
            }
            return Reply::Id(id);
        }
        let k = kind_name(&kind);
        drop(t);
        let made = self.create(kind, custom);
        let Reply::Id(id) = made else { return made };
        let mut t = self.lock();
        match t.names.get(&name) {
            // Another asker made it in between: theirs wins, ours is dropped.
            Some(&(other, _)) => {
                t.objects.remove(&id);
                Reply::Id(other)
            }
            None => {
                t.names.insert(name, (id, k));
                Reply::Id(id)
            }
        }
    }

    /// Applies `op` to object `id` for connection `conn`. A wait ends at its limit, or early
    /// when `gone()` says the client disconnected (its reply could not be delivered).
    pub(crate) fn call(&self, conn: u64, id: u64, op: Op, gone: impl Fn() -> bool) -> Reply {
        let wait_ms = match &op {
            Op::QueuePut { wait_ms, .. }
            | Op::QueueGet { wait_ms }
            | Op::Acquire { wait_ms }
            | Op::EventWait { wait_ms }
            | Op::BarrierWait { wait_ms }
            | Op::CondWait { wait_ms } => *wait_ms,
            _ => 0,
        };
        let deadline = Instant::now().checked_add(Duration::from_millis(wait_ms));
        let mut t = self.lock();
        if let Some(Obj::SharedDict(d)) = t.objects.get(&id) {
            let d = Arc::clone(d);
            drop(t);
            return match op {
                Op::Shared => Reply::Shared { handle: d.handle(), pid: crate::sys::proc::getpid() },
                op => d.apply(&op),
            };
        }
        if let Some(Obj::Array(a)) = t.objects.get(&id) {
            let a = Arc::clone(a);
            drop(t);
            return shared_array(&a, op);
        }
        if let Some(Obj::SharedQueue(q)) = t.objects.get(&id) {
            let q = q.clone();
            drop(t);
            return shared_queue(&q, op, gone);
        }
        match op {
            Op::BarrierWait { .. } => return self.barrier_wait(t, id, deadline, gone),
            Op::CondWait { .. } => return self.cond_wait(t, conn, id, deadline, gone),
            _ => {}
        }
        loop {
            let Some(obj) = t.objects.get_mut(&id) else {
                return no_object(id);
            };
            let (step, changed) = apply(obj, conn, &op);
            if changed {
                self.changed.notify_all();
            }
            match step {
                Step::Reply(r) => return r,
                Step::Wait => {}
            }
            let now = Instant::now();
            let left = deadline.map_or(RECHECK, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                return timed_out(&op);
            }
            t = self
                .changed
                .wait_timeout(t, left.min(RECHECK))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            if gone() {
                return refuse("the client disconnected while waiting");
            }
        }
    }

    /// Waits on the table's condition variable for a change, until `deadline` and a recheck
    /// slice at most.
    fn wait_change<'a>(
        &'a self,
        t: MutexGuard<'a, Table>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, Table> {
        let left = deadline.map_or(RECHECK, |d| d.saturating_duration_since(Instant::now()));
        self.changed
            .wait_timeout(t, left.min(RECHECK).max(Duration::from_millis(1)))
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// A party arrives at barrier `id` and waits for the others (Python's `Barrier.wait`):
    /// `Len(arrival index)` when the round completes, `Bool(false)` when the barrier is or
    /// becomes broken. A party whose wait times out, or whose client hangs up, breaks it, as in
    /// Python, so the others learn at once instead of waiting for a party that is not coming.
    fn barrier_wait<'a>(
        &'a self,
        mut t: MutexGuard<'a, Table>,
        id: u64,
        deadline: Option<Instant>,
        gone: impl Fn() -> bool,
    ) -> Reply {
        let (index, round, resets) = match t.objects.get_mut(&id) {
            Some(Obj::Barrier { parties, waiting, round, resets, broken }) => {
                if *broken {
                    return Reply::Bool(false);
                }
                let index = *waiting;
                *waiting += 1;
                if *waiting == *parties {
                    *waiting = 0;
                    *round += 1;
                    self.changed.notify_all();
                    return Reply::Len(index);
                }
                (index, *round, *resets)
            }
            Some(other) => return no_such_op(other.kind(), "BarrierWait"),
            None => return no_object(id),
        };
        loop {
            t = self.wait_change(t, deadline);
            let Some(Obj::Barrier { waiting, round: r, resets: z, broken, .. }) =
                t.objects.get_mut(&id)
            else {
                return no_object(id);
            };
            if *r != round {
                return Reply::Len(index);
            }
            if *broken || *z != resets {
                return Reply::Bool(false);
            }
            let out = deadline.is_some_and(|d| Instant::now() >= d);
            if out || gone() {
                *broken = true;
                *waiting = 0;
                self.changed.notify_all();
                return if out {
                    Reply::Bool(false)
                } else {
                    refuse("the client disconnected while waiting")
                };
            }
        }
    }

    /// Python's `Condition.wait`: releases the condition's lock (which the caller must hold,
    /// however many times), waits for a notification until `deadline`, then takes the lock back
    /// with its count: `Bool(notified)`.
    fn cond_wait<'a>(
        &'a self,
        mut t: MutexGuard<'a, Table>,
        conn: u64,
        id: u64,
        deadline: Option<Instant>,
        gone: impl Fn() -> bool,
    ) -> Reply {
        let (held, ticket) = match t.objects.get_mut(&id) {
            Some(Obj::Condition { owner, count, waiting, next, .. }) => {
                if *owner != Some(conn) {
                    return refuse(
                        "wait on a condition this thread does not hold; acquire it first (as \
                         Python's Condition.wait requires)",
                    );
                }
                let held = std::mem::take(count);
                *owner = None;
                let ticket = *next;
                *next += 1;
                waiting.push_back(ticket);
                self.changed.notify_all();
                (held, ticket)
            }
            Some(other) => return no_such_op(other.kind(), "CondWait"),
            None => return no_object(id),
        };
        // Wait for the notification (or the deadline), then for the lock (no deadline: Python
        // takes the lock back however long it takes; a hung-up client ends it).
        let mut notified = None;
        loop {
            t = self.wait_change(t, deadline);
            let Some(Obj::Condition { owner, count, waiting, woken, .. }) = t.objects.get_mut(&id)
            else {
                return no_object(id);
            };
            if notified.is_none() {
                if let Some(i) = woken.iter().position(|&w| w == ticket) {
                    woken.swap_remove(i);
                    notified = Some(true);
                } else if deadline.is_some_and(|d| Instant::now() >= d) {
                    waiting.retain(|&w| w != ticket);
                    notified = Some(false);
                }
            }
            if gone() {
                waiting.retain(|&w| w != ticket);
                let before = woken.len();
                woken.retain(|&w| w != ticket);
                // Notified but gone before it took the lock back: the notification goes to the
                // next waiter, or a notify(1) would wake no one that is alive.
                if (notified == Some(true) || woken.len() < before)
                    && let Some(next) = waiting.pop_front()
                {
                    woken.push(next);
                    self.changed.notify_all();
                }
                return refuse("the client disconnected while waiting");
            }
            if let Some(n) = notified
                && owner.is_none()
            {
                *owner = Some(conn);
                *count = held;
                return Reply::Bool(n);
            }
        }
    }

    /// Releases every lock connection `conn` holds (it ended): the next waiter gets it.
    pub(crate) fn release_all(&self, conn: u64) {
        let mut t = self.lock();
        let mut any = false;
        for obj in t.objects.values_mut() {
            match obj {
                Obj::Lock { owner } | Obj::RLock { owner, .. } | Obj::Condition { owner, .. }
                    if *owner == Some(conn) =>
                {
                    *owner = None;
                    if let Obj::RLock { count, .. } | Obj::Condition { count, .. } = obj {
                        *count = 0;
                    }
                    any = true;
                }
                _ => {}
            }
        }
        if any {
            self.changed.notify_all();
        }
    }
}

/// The kind's name, as `Obj::kind` says it.
fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Dict => "dict",
        Kind::List => "list",
        Kind::Value(_) => "value",
        Kind::Queue { .. } => "queue",
        Kind::Lock => "lock",
        Kind::RLock => "rlock",
        Kind::Event => "event",
        Kind::Semaphore(_) => "semaphore",
        Kind::Condition => "condition",
        Kind::Barrier(_) => "barrier",
        Kind::Custom(_) => "custom object",
        Kind::SharedDict { .. } => "shared dict",
        Kind::SharedQueue { .. } => "shared queue",
        Kind::Array(_) => "array",
    }
}

/// The reply of a wait that ran out of time.
/// Applies `op` to an array for a client that reaches it through the server.
fn shared_array(a: &LockedArray<u8>, op: Op) -> Reply {
    let out_of_range = |at: u64, len: u64| {
        refuse(format!(
            "bytes {at}..{at}+{len} are outside the array's {} bytes; check len() first",
            a.len()
        ))
    };
    let range = |at: u64, len: u64| {
        let at = usize::try_from(at).ok()?;
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        (end <= a.len()).then_some(at..end)
    };
    let guard = || {
        a.lock_timeout(Duration::from_secs(5)).or_else(|e| match e {
            // The holder died mid-write: as with any lock, the data may be half-updated.
            crate::sync::LockError::OwnerDied(od) => Ok(od.recover()),
            e => Err(e),
        })
    };
    let r = match op {
        Op::Shared => {
            Ok(Reply::SharedArray { handle: a.handle(), pid: crate::sys::proc::getpid() })
        }
        Op::Len => Ok(Reply::Len(a.len() as u64)),
        Op::ArrayRead { at, len } => match range(at, len) {
            Some(r) => guard().map(|g| Reply::Item(Some(g[r].to_vec()))),
            None => Ok(out_of_range(at, len)),
        },
        Op::ArrayWrite { at, bytes } => match range(at, bytes.len() as u64) {
            Some(r) => guard().map(|mut g| {
                g[r].copy_from_slice(&bytes);
                Reply::Done
            }),
            None => Ok(out_of_range(at, bytes.len() as u64)),
        },
        op => Ok(refuse(format!(
            "an array has no operation {op:?}; the proxy and the object disagree"
        ))),
    };
    r.unwrap_or_else(|e| refuse(e.to_string()))
}

/// Applies `op` to a shared queue for a client that reaches it through the server; a wait
/// ends early when `gone()` says the client disconnected.
fn shared_queue(q: &MessageQueue, op: Op, gone: impl Fn() -> bool) -> Reply {
    let check = || {
        if gone() {
            return Err(crate::Error::ManagerRefused {
                reason: "the client disconnected while waiting".into(),
            });
        }
        Ok(())
    };
    let r = match op {
        Op::Shared => {
            Ok(Reply::SharedQueue { handle: q.handle(), pid: crate::sys::proc::getpid() })
        }
        Op::Len => Ok(Reply::Len(q.qsize() as u64)),
        Op::QueuePut { item, wait_ms } => {
            queue_put(q, &item, Duration::from_millis(wait_ms), check).map(Reply::Bool)
        }
        Op::QueueGet { wait_ms } => {
            queue_get(q, Duration::from_millis(wait_ms), check).map(Reply::Item)
        }
        op => Ok(refuse(format!(
            "a shared queue has no operation {op:?}; the proxy and the object disagree"
        ))),
    };
    r.unwrap_or_else(|e| refuse(e.to_string()))
}

fn no_object(id: u64) -> Reply {
    refuse(format!("this manager holds no object {id}; the proxy belongs to another manager"))
}

fn no_such_op(kind: &str, op: &str) -> Reply {
    refuse(format!(
        "a {kind} has no operation {op}; the proxy and the object disagree (a handle decoded as \
         the wrong proxy type?)"
    ))
}

fn timed_out(op: &Op) -> Reply {
    match op {
        Op::QueueGet { .. } => Reply::Item(None),
        _ => Reply::Bool(false),
    }
}

/// One attempt at `op` on `obj`: its step, and whether it changed anything (waiters wake).
fn apply(obj: &mut Obj, conn: u64, op: &Op) -> (Step, bool) {
    let done = |r| (Step::Reply(r), false);
    let changed = |r| (Step::Reply(r), true);
    let kind = obj.kind();
    match (obj, op) {
        (Obj::Dict(d), Op::Len) => done(Reply::Len(d.len() as u64)),
        (Obj::List(l), Op::Len) => done(Reply::Len(l.len() as u64)),
        (Obj::Queue { items, .. }, Op::Len) => done(Reply::Len(items.len() as u64)),
        (Obj::Dict(d), Op::DictGet(k)) => done(Reply::Item(d.get(k).cloned())),
        (Obj::Dict(d), Op::DictSet(k, v)) => {
            d.insert(k.clone(), v.clone());
            done(Reply::Done)
        }
        (Obj::Dict(d), Op::DictRemove(k)) => done(Reply::Item(d.remove(k))),
        (Obj::Dict(d), Op::DictContains(k)) => done(Reply::Bool(d.contains_key(k))),
        (Obj::Dict(d), Op::DictUpdate(pairs)) => {
            d.extend(pairs.iter().cloned());
            done(Reply::Done)
        }
        (Obj::Dict(d), Op::DictKeys) => done(Reply::Items(d.keys().cloned().collect())),
        (Obj::Dict(d), Op::DictItems) => {
            done(Reply::Pairs(d.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
        }
        (Obj::Dict(d), Op::Clear) => {
            d.clear();
            done(Reply::Done)
        }
        (Obj::List(l), Op::Clear) => {
            l.clear();
            done(Reply::Done)
        }
        (Obj::List(l), Op::ListAppend(v)) => {
            l.push(v.clone());
            done(Reply::Done)
        }
        (Obj::List(l), Op::ListExtend(vs)) => {
            l.extend(vs.iter().cloned());
            done(Reply::Done)
        }
        (Obj::List(l), Op::ListGet(i)) => {
            done(Reply::Item(index(*i, l.len()).map(|i| l[i].clone())))
        }
        (Obj::List(l), Op::ListSet(i, v)) => match index(*i, l.len()) {
            Some(i) => {
                l[i] = v.clone();
                done(Reply::Done)
            }
            None => done(refuse(format!(
                "list index {i} out of range for a list of {} items; check len() first",
                l.len()
            ))),
        },
        (Obj::List(l), Op::ListPop(i)) => {
            let at = match i {
                None => l.len().checked_sub(1),
                Some(i) => index(*i, l.len()),
            };
            done(Reply::Item(at.map(|i| l.remove(i))))
        }
        (Obj::List(l), Op::ListSnapshot) => done(Reply::Items(l.clone())),
        (Obj::Value(v), Op::ValueGet) => done(Reply::Item(Some(v.clone()))),
        (Obj::Value(v), Op::ValueSet(new)) => {
            *v = new.clone();
            done(Reply::Done)
        }
        (Obj::Queue { items, maxsize }, Op::QueuePut { item, .. }) => {
            if *maxsize != 0 && items.len() as u64 >= *maxsize {
                return (Step::Wait, false);
            }
            items.push_back(item.clone());
            changed(Reply::Bool(true))
        }
        (Obj::Queue { items, .. }, Op::QueueGet { .. }) => match items.pop_front() {
            Some(item) => changed(Reply::Item(Some(item))),
            None => (Step::Wait, false),
        },
        (Obj::Lock { owner }, Op::Acquire { .. }) => {
            if owner.is_some() {
                return (Step::Wait, false);
            }
            *owner = Some(conn);
            done(Reply::Bool(true))
        }
        (Obj::Lock { owner }, Op::Release) => {
            if owner.take().is_none() {
                return done(refuse("release of an unlocked lock; acquire it first"));
            }
            changed(Reply::Done)
        }
        (Obj::RLock { owner, count } | Obj::Condition { owner, count, .. }, Op::Acquire { .. }) => {
            if owner.is_some_and(|o| o != conn) {
                return (Step::Wait, false);
            }
            *owner = Some(conn);
            *count += 1;
            done(Reply::Bool(true))
        }
        (Obj::Condition { owner, waiting, woken, .. }, Op::CondNotify(n)) => {
            if *owner != Some(conn) {
                return done(refuse(
                    "notify on a condition this thread does not hold; acquire it first (as \
                     Python's Condition.notify requires)",
                ));
            }
            let n = usize::try_from(*n).unwrap_or(usize::MAX).min(waiting.len());
            woken.extend(waiting.drain(..n));
            changed(Reply::Done)
        }
        (Obj::Barrier { parties, .. }, Op::BarrierParties) => done(Reply::Len(*parties)),
        (Obj::Barrier { waiting, .. }, Op::Len) => done(Reply::Len(*waiting)),
        (Obj::Barrier { broken, .. }, Op::BarrierBroken) => done(Reply::Bool(*broken)),
        (Obj::Barrier { waiting, broken, .. }, Op::BarrierAbort) => {
            *broken = true;
            *waiting = 0;
            changed(Reply::Done)
        }
        (Obj::Barrier { waiting, broken, resets, .. }, Op::BarrierReset) => {
            *resets += 1;
            *waiting = 0;
            *broken = false;
            changed(Reply::Done)
        }
        (Obj::RLock { owner, count } | Obj::Condition { owner, count, .. }, Op::Release) => {
            if *owner != Some(conn) {
                return done(refuse(
                    "release of an rlock this thread does not hold; only its holder (the \
                     thread that acquired it) may release it",
                ));
            }
            *count -= 1;
            if *count == 0 {
                *owner = None;
                return changed(Reply::Done);
            }
            done(Reply::Done)
        }
        (Obj::Semaphore(n), Op::Acquire { .. }) => {
            if *n == 0 {
                return (Step::Wait, false);
            }
            *n -= 1;
            done(Reply::Bool(true))
        }
        (Obj::Semaphore(n), Op::Release) => {
            *n = n.saturating_add(1);
            changed(Reply::Done)
        }
        (Obj::Event(f), Op::EventSet) => {
            *f = true;
            changed(Reply::Done)
        }
        (Obj::Event(f), Op::EventClear) => {
            *f = false;
            done(Reply::Done)
        }
        (Obj::Event(f), Op::EventIsSet) => done(Reply::Bool(*f)),
        (Obj::Event(f), Op::EventWait { .. }) => {
            if *f {
                done(Reply::Bool(true))
            } else {
                (Step::Wait, false)
            }
        }
        (Obj::Custom(c), Op::Custom(req)) => match c.handle_bytes(req) {
            Ok(reply) => changed(Reply::Custom(reply)),
            Err(e) => done(refuse(e)),
        },
        (_, op) => done(refuse(format!(
            "a {kind} has no operation {op:?}; the proxy and the object disagree (a handle \
             decoded as the wrong proxy type?)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    #[test]
    fn a_lock_held_by_a_connection_that_ended_goes_to_the_next() {
        let s = Store::default();
        let Reply::Id(id) = s.create(Kind::Lock, |_| None) else { panic!() };
        let acquire = Op::Acquire { wait_ms: 0 };
        assert_eq!(s.call(1, id, acquire.clone(), never), Reply::Bool(true));
        assert_eq!(s.call(2, id, acquire.clone(), never), Reply::Bool(false));
        s.release_all(1);
        assert_eq!(s.call(2, id, acquire, never), Reply::Bool(true));
    }

    #[test]
    fn an_rlock_counts_and_only_its_holder_releases_it() {
        let s = Store::default();
        let Reply::Id(id) = s.create(Kind::RLock, |_| None) else { panic!() };
        let acquire = Op::Acquire { wait_ms: 0 };
        assert_eq!(s.call(1, id, acquire.clone(), never), Reply::Bool(true));
        assert_eq!(s.call(1, id, acquire.clone(), never), Reply::Bool(true));
        assert!(matches!(s.call(2, id, Op::Release, never), Reply::Refused(_)));
        assert_eq!(s.call(1, id, Op::Release, never), Reply::Done);
        assert_eq!(s.call(2, id, acquire.clone(), never), Reply::Bool(false));
        assert_eq!(s.call(1, id, Op::Release, never), Reply::Done);
        assert_eq!(s.call(2, id, acquire, never), Reply::Bool(true));
    }

    #[test]
    fn an_operation_of_another_kind_or_object_is_refused() {
        let s = Store::default();
        let Reply::Id(id) = s.create(Kind::Event, |_| None) else { panic!() };
        assert!(matches!(s.call(1, id, Op::ListSnapshot, never), Reply::Refused(_)));
        assert!(matches!(s.call(1, id + 1, Op::EventSet, never), Reply::Refused(_)));
        assert!(matches!(s.create(Kind::Custom("Nope".into()), |_| None), Reply::Refused(_)));
    }

    #[test]
    fn a_bounded_queue_waits_for_room_until_its_limit() {
        let s = Store::default();
        let Reply::Id(id) = s.create(Kind::Queue { maxsize: 1 }, |_| None) else { panic!() };
        let put = |b: u8| Op::QueuePut { item: vec![b], wait_ms: 20 };
        assert_eq!(s.call(1, id, put(1), never), Reply::Bool(true));
        assert_eq!(s.call(1, id, put(2), never), Reply::Bool(false));
        assert_eq!(s.call(1, id, Op::QueueGet { wait_ms: 0 }, never), Reply::Item(Some(vec![1])));
        assert_eq!(s.call(1, id, Op::QueueGet { wait_ms: 10 }, never), Reply::Item(None));
    }

    #[test]
    fn a_shared_dict_answers_through_the_server_from_the_table_proxies_map() {
        let s = Store::default();
        let kind = Kind::SharedDict { keys: 8, bytes: 256 };
        let Reply::Id(id) = s.create(kind, |_| None) else { panic!() };
        assert_eq!(s.call(1, id, Op::DictSet(vec![1], vec![2]), never), Reply::Done);
        let Reply::Shared { handle, .. } = s.call(1, id, Op::Shared, never) else { panic!() };
        // What a local proxy maps: the server's writes are there, and its writes reach the server.
        let arr = crate::LockedArray::<u64>::open_handle(&handle).unwrap();
        let mut g = arr.lock().unwrap();
        let mut t = super::super::table::Table::open(&mut g).unwrap();
        assert_eq!(t.get(&[1]), Some(vec![2]));
        t.set(&[3], &[4]).unwrap();
        drop(g);
        assert_eq!(s.call(1, id, Op::DictGet(vec![3]), never), Reply::Item(Some(vec![4])));
        assert_eq!(s.call(1, id, Op::Len, never), Reply::Len(2));
        assert!(matches!(s.call(1, id, Op::ListSnapshot, never), Reply::Refused(_)));
        let huge = Kind::SharedDict { keys: u64::MAX, bytes: 1 };
        assert!(matches!(s.create(huge, |_| None), Reply::Refused(_)));
        // Other objects have no shared memory: their proxies use the socket.
        let Reply::Id(plain) = s.create(Kind::Dict, |_| None) else { panic!() };
        assert!(matches!(s.call(1, plain, Op::Shared, never), Reply::Refused(_)));
    }

    #[test]
    fn a_shared_queue_answers_through_the_server_from_the_ring_proxies_map() {
        let s = Store::default();
        let kind = Kind::SharedQueue { capacity: 256, max_item: 16 };
        let Reply::Id(id) = s.create(kind, |_| None) else { panic!() };
        let put = |b: u8| Op::QueuePut { item: vec![b], wait_ms: 0 };
        assert_eq!(s.call(1, id, put(1), never), Reply::Bool(true));
        let Reply::SharedQueue { handle, .. } = s.call(1, id, Op::Shared, never) else { panic!() };
        let q = MessageQueue::open_handle(&handle).unwrap();
        assert_eq!(q.get::<Vec<u8>>().unwrap(), vec![1]);
        q.put(&[2u8][..]).unwrap();
        assert_eq!(s.call(1, id, Op::Len, never), Reply::Len(1));
        assert_eq!(s.call(1, id, Op::QueueGet { wait_ms: 0 }, never), Reply::Item(Some(vec![2])));
        assert_eq!(s.call(1, id, Op::QueueGet { wait_ms: 20 }, never), Reply::Item(None));
        assert!(matches!(
            s.call(1, id, Op::QueuePut { item: vec![0; 17], wait_ms: 0 }, never),
            Reply::Refused(_)
        ));
        assert!(matches!(s.call(1, id, Op::DictKeys, never), Reply::Refused(_)));
        let bad = Kind::SharedQueue { capacity: 4, max_item: 16 };
        assert!(matches!(s.create(bad, |_| None), Reply::Refused(_)));
    }

    #[test]
    fn an_array_reads_and_writes_through_the_server_within_its_bytes() {
        let s = Store::default();
        let Reply::Id(id) = s.create(Kind::Array(8), |_| None) else { panic!() };
        let write = Op::ArrayWrite { at: 2, bytes: vec![1, 2] };
        assert_eq!(s.call(1, id, write, never), Reply::Done);
        let read = |at, len| Op::ArrayRead { at, len };
        assert_eq!(s.call(1, id, read(1, 3), never), Reply::Item(Some(vec![0, 1, 2])));
        assert_eq!(s.call(1, id, Op::Len, never), Reply::Len(8));
        for op in [read(7, 2), read(u64::MAX, 2), Op::ArrayWrite { at: 8, bytes: vec![0] }] {
            assert!(matches!(s.call(1, id, op, never), Reply::Refused(_)));
        }
        let Reply::SharedArray { handle, .. } = s.call(1, id, Op::Shared, never) else { panic!() };
        let a = crate::LockedArray::<u8>::open_handle(&handle).unwrap();
        assert_eq!(a.to_vec().unwrap(), [0, 0, 1, 2, 0, 0, 0, 0]);
        assert!(matches!(s.create(Kind::Array(u64::MAX), |_| None), Reply::Refused(_)));
    }

    #[test]
    fn absurd_sizes_are_refused_not_attempted() {
        let s = Store::default();
        for kind in [
            Kind::SharedDict { keys: 1 << 40, bytes: 0 },
            Kind::SharedDict { keys: 1, bytes: 1 << 50 },
            Kind::Array(1 << 50),
            Kind::SharedQueue { capacity: 1 << 50, max_item: 16 },
            Kind::SharedQueue { capacity: u64::MAX, max_item: u64::MAX },
        ] {
            let r = s.create(kind.clone(), |_| None);
            assert!(matches!(r, Reply::Refused(_)), "{kind:?}: {r:?}");
        }
    }
}
