//! The Manager from several processes: every proxy kind passed to children under each start
//! method (the server under that method too), a custom registered type, objects found by name,
//! and a remote manager on 127.0.0.1 reached by a child that knows only address and key.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shmpool::connection::Address;
use shmpool::manager::{
    DictProxy, EventProxy, ListProxy, LockProxy, Managed, QueueProxy, RLockProxy, SemaphoreProxy,
    ValueProxy,
};
use shmpool::{Error, Manager, Pool, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];

/// Children per test.
const CHILDREN: u32 = 3;

/// How long a child waits for anything.
const PATIENCE: Duration = Duration::from_secs(20);

pub fn tests() -> Tests {
    register! {
        every_proxy_kind_works_from_children in METHODS,
        a_registered_custom_type_answers_children in METHODS,
        named_objects_are_one_object_per_name,
        a_child_that_knows_only_address_and_key_reaches_a_tcp_manager in METHODS,
        a_wrong_key_is_refused_and_the_manager_goes_on,
        proxies_are_pool_task_arguments,
    }
}

/// Stops the manager, then the forkserver its server or children may have used (the harness
/// fails a test that leaves a child unreaped).
fn finish(m: Manager) {
    m.shutdown().unwrap();
    shmpool::process::shutdown_forkserver().unwrap();
}

type Proxies = (
    u32,
    DictProxy<u32, String>,
    ListProxy<u32>,
    ValueProxy<u64>,
    QueueProxy<(u32, u32)>,
    LockProxy,
    RLockProxy,
    EventProxy,
    SemaphoreProxy,
);

/// A child: waits for the start event, then uses every proxy.
fn use_every_proxy(p: Proxies) -> Result<(), String> {
    let (me, dict, list, value, queue, lock, rlock, event, sem) = p;
    let e = |e: Error| e.to_string();
    if !event.wait_timeout(PATIENCE).map_err(e)? {
        return Err("the start event never came".into());
    }
    for i in 0..20 {
        // A read-modify-write under the manager lock: no update may be lost.
        let held = lock.guard().map_err(e)?;
        let n = value.get().map_err(e)?;
        value.set(&(n + 1)).map_err(e)?;
        drop(held);
        list.append(&(me * 100 + i)).map_err(e)?;
    }
    rlock.acquire().map_err(e)?;
    rlock.acquire().map_err(e)?;
    rlock.release().map_err(e)?;
    rlock.release().map_err(e)?;
    sem.acquire().map_err(e)?;
    dict.set(&me, &format!("child {me}")).map_err(e)?;
    sem.release().map_err(e)?;
    queue.put(&(me, me * me)).map_err(e)?;
    Ok(())
}

fn every_proxy_kind_works_from_children(method: StartMethod) {
    let m = Manager::builder().start_method(method).start().unwrap();
    let dict = m.dict::<u32, String>().unwrap();
    let list = m.list::<u32>().unwrap();
    let value = m.value(&0u64).unwrap();
    let queue = m.queue::<(u32, u32)>().unwrap();
    let (lock, rlock, event, sem) =
        (m.lock().unwrap(), m.rlock().unwrap(), m.event().unwrap(), m.semaphore(1).unwrap());
    let ctx = get_context(method);
    let mut kids: Vec<_> = (0..CHILDREN)
        .map(|me| {
            let p = (
                me,
                dict.clone(),
                list.clone(),
                value.clone(),
                queue.clone(),
                lock.clone(),
                rlock.clone(),
                event.clone(),
                sem.clone(),
            );
            ctx.start(use_every_proxy, p).unwrap()
        })
        .collect();
    event.set().unwrap();
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    assert_eq!(value.get().unwrap(), u64::from(CHILDREN) * 20, "an update was lost");
    let mut items = list.snapshot().unwrap();
    items.sort_unstable();
    let want: Vec<u32> = (0..CHILDREN).flat_map(|me| (0..20).map(move |i| me * 100 + i)).collect();
    assert_eq!(items, want);
    assert_eq!(dict.len().unwrap(), CHILDREN as usize);
    assert_eq!(dict.keys().unwrap(), (0..CHILDREN).collect::<Vec<_>>());
    assert_eq!(dict.get(&1).unwrap().as_deref(), Some("child 1"));
    let mut got: Vec<(u32, u32)> =
        (0..CHILDREN).map(|_| queue.get_timeout(PATIENCE).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..CHILDREN).map(|i| (i, i * i)).collect::<Vec<_>>());
    assert!(queue.is_empty().unwrap());
    // Nothing left held: the semaphore's unit and both locks are free.
    assert!(sem.acquire_timeout(Duration::ZERO).unwrap());
    assert!(lock.acquire_timeout(Duration::ZERO).unwrap());
    assert!(rlock.acquire_timeout(Duration::ZERO).unwrap());
    finish(m);
}

/// A custom managed type: an account with deposits and a history.
#[derive(Default)]
struct Account {
    balance: i64,
    history: Vec<i64>,
}

#[derive(Serialize, Deserialize)]
enum AccountOp {
    Deposit(i64),
    Balance,
    History,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum AccountReply {
    Balance(i64),
    History(Vec<i64>),
}

impl Managed for Account {
    const NAME: &'static str = "Account";
    type Request = AccountOp;
    type Reply = AccountReply;
    fn handle(&mut self, op: AccountOp) -> AccountReply {
        match op {
            AccountOp::Deposit(n) => {
                self.balance += n;
                self.history.push(n);
                AccountReply::Balance(self.balance)
            }
            AccountOp::Balance => AccountReply::Balance(self.balance),
            AccountOp::History => AccountReply::History(self.history.clone()),
        }
    }
}

fn deposit(a: (u32, shmpool::manager::CustomProxy<Account>)) -> Result<(), String> {
    for _ in 0..10 {
        a.1.call(AccountOp::Deposit(i64::from(a.0) + 1)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn a_registered_custom_type_answers_children(method: StartMethod) {
    let m = Manager::builder().start_method(method).register::<Account>().start().unwrap();
    let acct = m.custom::<Account>().unwrap();
    let ctx = get_context(method);
    let mut kids: Vec<_> =
        (0..CHILDREN).map(|me| ctx.start(deposit, (me, acct.clone())).unwrap()).collect();
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    // 10 deposits each of 1, 2 and 3.
    assert_eq!(acct.call(AccountOp::Balance).unwrap(), AccountReply::Balance(60));
    let AccountReply::History(h) = acct.call(AccountOp::History).unwrap() else { panic!() };
    assert_eq!(h.len(), 30);
    // A type that was not registered is refused, with the fix.
    #[derive(Default)]
    struct Other;
    impl Managed for Other {
        const NAME: &'static str = "Other";
        type Request = ();
        type Reply = ();
        fn handle(&mut self, (): ()) {}
    }
    let e = m.custom::<Other>().unwrap_err();
    assert!(matches!(e, Error::ManagerRefused { .. }) && e.to_string().contains("register"), "{e}");
    finish(m);
}

fn named_objects_are_one_object_per_name() {
    let m = Manager::start().unwrap();
    let a: QueueProxy<String> = m.named("jobs").unwrap();
    let b: QueueProxy<String> = m.named("jobs").unwrap();
    a.put(&"one".to_string()).unwrap();
    assert_eq!(b.get_timeout(PATIENCE).unwrap(), "one");
    let other: QueueProxy<String> = m.named("other").unwrap();
    assert!(other.get_nowait().unwrap().is_none());
    // The same name as another kind is refused.
    let e = m.named::<DictProxy<u8, u8>>("jobs").unwrap_err();
    assert!(matches!(e, Error::ManagerRefused { .. }), "{e}");
    finish(m);
}

/// A remote client: connects by address and key alone, takes jobs from the named queue and
/// puts results in the named dict, until a job of 0.
fn remote_worker(args: (String, Vec<u8>)) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    let addr: Address = args.0.parse().map_err(e)?;
    let m = Manager::connect(&addr, &args.1).map_err(e)?;
    let jobs: QueueProxy<u64> = m.named("jobs").map_err(e)?;
    let results: DictProxy<u64, u64> = m.named("results").map_err(e)?;
    loop {
        let n = jobs.get_timeout(PATIENCE).map_err(e)?;
        if n == 0 {
            return Ok(());
        }
        results.set(&n, &(n * n)).map_err(e)?;
    }
}

fn a_child_that_knows_only_address_and_key_reaches_a_tcp_manager(method: StartMethod) {
    let m = Manager::builder()
        .address(Address::localhost(0))
        .authkey(b"remote test key")
        .start()
        .unwrap();
    let Address::Tcp(a) = m.address() else { panic!("not TCP: {}", m.address()) };
    assert_ne!(a.port(), 0);
    let jobs: QueueProxy<u64> = m.named("jobs").unwrap();
    let results: DictProxy<u64, u64> = m.named("results").unwrap();
    let ctx = get_context(method);
    let args = (m.address().to_string(), m.authkey().to_vec());
    let mut kids: Vec<_> =
        (0..2).map(|_| ctx.start(remote_worker, args.clone()).unwrap()).collect();
    for n in 1..=20u64 {
        jobs.put(&n).unwrap();
    }
    for _ in &kids {
        jobs.put(&0).unwrap();
    }
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    let items = results.items().unwrap();
    assert_eq!(items, (1..=20u64).map(|n| (n, n * n)).collect::<Vec<_>>());
    finish(m);
}

fn a_wrong_key_is_refused_and_the_manager_goes_on() {
    let m = Manager::builder().address(Address::localhost(0)).start().unwrap();
    let d: DictProxy<u8, u8> = m.named("d").unwrap();
    d.set(&1, &2).unwrap();
    for _ in 0..5 {
        let e = Manager::connect(m.address(), b"not the key").unwrap_err();
        assert!(matches!(e, Error::AuthenticationFailed { .. }), "{e}");
    }
    let again = Manager::connect(m.address(), m.authkey()).unwrap();
    let d2: DictProxy<u8, u8> = again.named("d").unwrap();
    assert_eq!(d2.get(&1).unwrap(), Some(2));
    drop(again);
    finish(m);
}

/// A pool task: squares its number into the shared dict, returns the worker's pid.
fn square_into(args: (DictProxy<u32, u32>, u32)) -> u32 {
    let (d, n) = args;
    d.set(&n, &(n * n)).expect("the manager answers a pool worker");
    std::process::id()
}

fn proxies_are_pool_task_arguments() {
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let d = m.dict::<u32, u32>().unwrap();
    let mut pool = Pool::new(2).unwrap();
    let tasks: Vec<(DictProxy<u32, u32>, u32)> = (0..40).map(|n| (d.clone(), n)).collect();
    let pids = pool.map(square_into, &tasks, Some(4)).unwrap();
    assert_eq!(pids.len(), 40);
    assert!(pids.iter().all(|&p| p != std::process::id()), "a task ran in the parent");
    drop(pool);
    assert_eq!(d.items().unwrap(), (0..40).map(|n| (n, n * n)).collect::<Vec<_>>());
    finish(m);
}
