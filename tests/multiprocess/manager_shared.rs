//! The Manager's fast path (`Manager::dict_with_capacity`): a dict whose table is in shared
//! memory, used by children under each start method without the server (shown by stopping
//! the server), a client killed while it writes, a server killed under mapped proxies, and a
//! dict that fills up.

use std::time::{Duration, Instant};

use shmpool::manager::{ArrayProxy, DictProxy, EventProxy, QueueProxy};
use shmpool::{Error, Manager, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];

const CHILDREN: u32 = 3;
const KEYS: u32 = 200;
const PATIENCE: Duration = Duration::from_secs(20);
const PROMPTLY: Duration = Duration::from_secs(1);

pub fn tests() -> Tests {
    register! {
        a_shared_dict_is_one_dict_for_children in METHODS,
        local_calls_need_no_server,
        a_client_killed_while_writing_leaves_the_dict_usable,
        a_killed_server_fails_mapped_calls_at_once,
        a_full_shared_dict_refuses_and_keeps_its_keys,
        a_shared_queue_carries_items_between_children in METHODS,
        a_killed_server_ends_a_mapped_queue_wait_within_a_second,
        an_array_is_updated_in_place_by_children in METHODS,
        a_client_that_cannot_map_goes_through_the_server_to_the_same_memory,
    }
}

fn server_signal(m: &Manager, sig: i32) {
    let pid = m.server_pid().unwrap();
    // SAFETY: kill only sends a signal, to the server process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    if sig == libc::SIGSTOP {
        // Stopped once every thread of it is: /proc says `T` for each.
        let t = Instant::now();
        let stopped = || {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
            tasks.map(|e| e.unwrap().path().join("stat")).all(|p| {
                let stat = std::fs::read_to_string(p).unwrap_or_default();
                stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T'))
            })
        };
        while !stopped() {
            assert!(t.elapsed() < PATIENCE, "the server never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A child: sets its keys, overwrites them, removes every tenth.
fn fill(args: (u32, DictProxy<u32, u64>)) -> Result<(), String> {
    let (me, d) = args;
    let e = |e: Error| e.to_string();
    for round in 0..3u64 {
        for i in 0..KEYS {
            d.set(&(me * KEYS + i), &(u64::from(me * KEYS + i) * 10 + round)).map_err(e)?;
        }
    }
    for i in (0..KEYS).step_by(10) {
        let old = d.remove(&(me * KEYS + i)).map_err(e)?;
        if old != Some(u64::from(me * KEYS + i) * 10 + 2) {
            return Err(format!("removed {old:?} for key {}", me * KEYS + i));
        }
    }
    Ok(())
}

fn a_shared_dict_is_one_dict_for_children(method: StartMethod) {
    let m = Manager::builder().start_method(method).start().unwrap();
    // Small enough that the children's overwrites compact it several times.
    let d = m.dict_with_capacity::<u32, u64>(u64::from(CHILDREN * KEYS), 16 << 10).unwrap();
    let ctx = get_context(method);
    let mut kids: Vec<_> =
        (0..CHILDREN).map(|me| ctx.start(fill, (me, d.clone())).unwrap()).collect();
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    let want: Vec<(u32, u64)> = (0..CHILDREN * KEYS)
        .filter(|k| !(k % KEYS).is_multiple_of(10))
        .map(|k| (k, u64::from(k) * 10 + 2))
        .collect();
    let mut items = d.items().unwrap();
    items.sort_unstable();
    assert_eq!(items, want);
    assert_eq!(d.len().unwrap(), want.len());
    assert!(d.contains_key(&1).unwrap() && !d.contains_key(&0).unwrap());
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
    m.shutdown().unwrap();
    shmpool::process::shutdown_forkserver().unwrap();
}

fn local_calls_need_no_server() {
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let d = m.dict_with_capacity::<u32, u32>(100, 4096).unwrap().with_timeout(PROMPTLY / 2);
    let plain = m.dict::<u32, u32>().unwrap().with_timeout(PROMPTLY / 2);
    let q = m.queue_with_capacity::<u32>(4096, 64).unwrap().with_timeout(PROMPTLY / 2);
    d.set(&1, &1).unwrap(); // maps the table
    q.put(&1).unwrap(); // maps the ring
    let a = m.array_from(&[1u16, 2, 3]).unwrap().with_timeout(PROMPTLY / 2);
    plain.set(&1, &1).unwrap();
    server_signal(&m, libc::SIGSTOP);
    let fast = (d.set(&2, &2), d.get(&1), d.len());
    let fast_q = (q.put(&2), q.get(), q.get(), q.get_nowait());
    let fast_a = (a.set(0, 9), a.get(0), a.with_local(|xs| xs.iter().sum::<u16>()), a.to_vec());
    let slow = plain.get(&1);
    server_signal(&m, libc::SIGCONT);
    assert_eq!((fast.0.unwrap(), fast.1.unwrap(), fast.2.unwrap()), ((), Some(1), 2));
    let fast_q = (fast_q.0.unwrap(), fast_q.1.unwrap(), fast_q.2.unwrap(), fast_q.3.unwrap());
    assert_eq!(fast_q, ((), 1, 2, None));
    let fast_a = (fast_a.0.unwrap(), fast_a.1.unwrap(), fast_a.2.unwrap(), fast_a.3.unwrap());
    assert_eq!(fast_a, ((), 9, Some(14), vec![9, 2, 3]));
    assert!(matches!(slow, Err(Error::Timeout { .. })), "{slow:?}");
    m.shutdown().unwrap();
}

/// A child: says it started, then sets keys (each value twice its key) until it is killed.
fn write_forever(args: (DictProxy<u32, u64>, EventProxy)) -> Result<(), String> {
    let (d, started) = args;
    started.set().map_err(|e| e.to_string())?;
    for i in 0u64.. {
        let k = (i % 64) as u32;
        d.set(&k, &(u64::from(k) * 2)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn a_client_killed_while_writing_leaves_the_dict_usable() {
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    // A tiny arena: the writer compacts every few sets, so a kill lands in every phase.
    let d = m.dict_with_capacity::<u32, u64>(64, 2048).unwrap();
    for round in 0..8u64 {
        let started = m.event().unwrap();
        let mut kid = get_context(StartMethod::Fork)
            .start(write_forever, (d.clone(), started.clone()))
            .unwrap();
        assert!(started.wait_timeout(PATIENCE).unwrap(), "the writer never started");
        std::thread::sleep(Duration::from_millis(5 + round * 7));
        kid.kill().unwrap();
        let st = kid.join().unwrap();
        assert!(!st.success(), "{st}");
        // The next call gets the state: consistent, or emptied and flagged once.
        let t = Instant::now();
        let items = match d.items() {
            Err(Error::ManagerRefused { reason }) if reason.contains("emptied") => {
                d.items().unwrap()
            }
            r => r.unwrap(),
        };
        assert!(t.elapsed() < PROMPTLY, "took {:?}", t.elapsed());
        assert!(items.iter().all(|&(k, v)| v == u64::from(k) * 2), "{items:?}");
        assert_eq!(d.len().unwrap(), items.len());
        d.set(&1000, &2000).unwrap();
        assert_eq!(d.get(&1000).unwrap(), Some(2000));
    }
    m.shutdown().unwrap();
}

fn a_killed_server_fails_mapped_calls_at_once() {
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let d = m.dict_with_capacity::<u8, u8>(16, 1024).unwrap();
    d.set(&1, &1).unwrap(); // maps the table
    server_signal(&m, libc::SIGKILL);
    let t = Instant::now();
    loop {
        match d.get(&1) {
            Err(Error::ManagerGone { .. }) => break,
            // The pidfd reads as exited once the kernel has torn the process down.
            Ok(_) if t.elapsed() < PROMPTLY => std::thread::sleep(Duration::from_millis(1)),
            r => panic!("after {:?}: {r:?}", t.elapsed()),
        }
    }
    assert!(matches!(d.set(&2, &2), Err(Error::ManagerGone { .. })));
    m.shutdown().unwrap();
}

/// How many memfd mappings this process has.
fn memfd_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("memfd:"))
        .count()
}

fn a_full_shared_dict_refuses_and_keeps_its_keys() {
    let before = memfd_maps();
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let d = m.dict_with_capacity::<u32, Vec<u8>>(8, 256).unwrap();
    let mut stored = 0;
    let err = loop {
        match d.set(&stored, &vec![7; 20]) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 100, "never full");
    };
    assert!(
        matches!(&err, Error::ManagerRefused { reason } if reason.contains("dict_with_capacity")),
        "{err}"
    );
    assert_eq!(d.len().unwrap(), stored as usize);
    assert_eq!(d.get(&0).unwrap(), Some(vec![7; 20]));
    // Absurd capacities are refused, not attempted.
    assert!(m.dict_with_capacity::<u8, u8>(u64::MAX, 1).is_err());
    assert!(m.dict_with_capacity::<u8, u8>(1, u64::MAX).is_err());
    assert!(memfd_maps() > before, "the dict was not mapped");
    m.shutdown().unwrap();
    // Stopping the manager unmaps its objects' memory from this thread.
    assert_eq!(memfd_maps(), before);
    assert!(matches!(d.get(&0), Err(Error::ManagerGone { .. })));
}

/// A child: puts its items, in order.
fn produce(args: (u32, QueueProxy<(u32, u32)>)) -> Result<(), String> {
    let (me, q) = args;
    for i in 0..KEYS {
        q.put(&(me, i)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn a_shared_queue_carries_items_between_children(method: StartMethod) {
    let m = Manager::builder().start_method(method).start().unwrap();
    // Room for a few dozen items: the producers wait for the parent.
    let q = m.queue_with_capacity::<(u32, u32)>(512, 32).unwrap();
    let ctx = get_context(method);
    let mut kids: Vec<_> =
        (0..CHILDREN).map(|me| ctx.start(produce, (me, q.clone())).unwrap()).collect();
    // Each producer's items arrive once each, in its order.
    let mut next = vec![0; CHILDREN as usize];
    for _ in 0..CHILDREN * KEYS {
        let (me, i) = q.get_timeout(PATIENCE).unwrap();
        assert_eq!(next[me as usize], i, "producer {me}'s items out of order");
        next[me as usize] += 1;
    }
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    assert_eq!(q.len().unwrap(), 0);
    assert_eq!(q.get_nowait().unwrap(), None);
    q.put(&(9, 9)).unwrap();
    assert_eq!(q.get().unwrap(), (9, 9));
    assert!(m.queue_with_capacity::<u8>(8, 100).is_err(), "a ring smaller than an item");
    m.shutdown().unwrap();
    shmpool::process::shutdown_forkserver().unwrap();
}

fn a_killed_server_ends_a_mapped_queue_wait_within_a_second() {
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let q = m.queue_with_capacity::<u8>(256, 8).unwrap();
    assert_eq!(q.get_nowait().unwrap(), None); // maps the ring
    let pid = m.server_pid().unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill only sends a signal, to the server process this test started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) }
    });
    let t = Instant::now();
    let r = q.get_timeout(PATIENCE);
    assert_eq!(killer.join().unwrap(), 0);
    assert!(matches!(r, Err(Error::ManagerGone { .. })), "{r:?}");
    assert!(t.elapsed() < Duration::from_millis(200) + PROMPTLY, "after {:?}", t.elapsed());
    assert!(matches!(q.put(&1), Err(Error::ManagerGone { .. })));
    m.shutdown().unwrap();
}

/// A child: adds one to every element, in place, ten times; then marks its own slot.
fn add_in_place(args: (u32, ArrayProxy<f64>, ArrayProxy<u32>)) -> Result<(), String> {
    let (me, a, marks) = args;
    let e = |e: Error| e.to_string();
    for _ in 0..10 {
        let mapped = a.with_local(|xs| xs.iter_mut().for_each(|x| *x += 1.0)).map_err(e)?;
        mapped.ok_or("the array was not mapped on the server's machine")?;
    }
    marks.set(me as usize, me + 1).map_err(e)?;
    Ok(())
}

fn an_array_is_updated_in_place_by_children(method: StartMethod) {
    let m = Manager::builder().start_method(method).start().unwrap();
    let a = m.array::<f64>(4096).unwrap();
    let marks = m.array::<u32>(CHILDREN as usize).unwrap();
    let ctx = get_context(method);
    let mut kids: Vec<_> = (0..CHILDREN)
        .map(|me| ctx.start(add_in_place, (me, a.clone(), marks.clone())).unwrap())
        .collect();
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    let xs = a.to_vec().unwrap();
    assert_eq!(xs.len(), 4096);
    assert_eq!(marks.to_vec().unwrap(), (1..=CHILDREN).collect::<Vec<_>>());
    let want = f64::from(CHILDREN * 10);
    assert!(xs.iter().all(|&x| x == want), "an in-place update was lost");
    assert!(matches!(a.get(4096), Err(Error::InvalidArgument { .. })));
    // Other proxies inside a closure on the elements: a nested call of the same array's lock
    // is an error, not a hang; another object's calls work.
    let nested = a.with_local(|_| (marks.get(0), a.get(0))).unwrap().unwrap();
    assert_eq!(nested.0.unwrap(), 1);
    assert!(nested.1.is_err(), "{:?}", nested.1);
    assert!(matches!(a.set_slice(4095, &[1.0, 2.0]), Err(Error::InvalidArgument { .. })));
    assert!(m.array::<()>(10).is_err() && m.array::<u64>(usize::MAX).is_err());
    let empty = m.array::<u32>(0).unwrap();
    assert!(empty.is_empty().unwrap() && empty.to_vec().unwrap().is_empty());
    assert_eq!(empty.with_local(|xs| xs.len()).unwrap(), Some(0));
    m.shutdown().unwrap();
    shmpool::process::shutdown_forkserver().unwrap();
}

fn a_client_that_cannot_map_goes_through_the_server_to_the_same_memory() {
    // A child that gives up root cannot open the server's memory (/proc/<pid>/fd of another
    // user): it is the remote client of another machine, on TCP. Not root: the child maps as
    // usual, and only the shared state is checked.
    // SAFETY: getuid has no preconditions and cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    let m = Manager::builder()
        .start_method(StartMethod::Fork)
        .address(shmpool::connection::Address::localhost(0))
        .start()
        .unwrap();
    let d = m.dict_with_capacity::<u32, u32>(64, 4096).unwrap();
    let q = m.queue_with_capacity::<u32>(1024, 16).unwrap();
    let a = m.array_from(&[0u64, 42]).unwrap();
    d.set(&1, &10).unwrap();
    q.put(&8).unwrap();
    let (d2, q2, a2) = (d.clone(), q.clone(), a.clone());
    let mut kid = get_context(StartMethod::Fork)
        .start_closure(move || -> Result<(), String> {
            let e = |e: Error| e.to_string();
            // SAFETY: setuid changes only this (single-threaded, freshly forked) child's ids.
            if root && unsafe { libc::setuid(65534) } != 0 {
                return Err("setuid failed".into());
            }
            let mapped = a2.with_local(|xs| xs.len()).map_err(e)?;
            if root && mapped.is_some() {
                return Err("mapped the server's memory without its user's rights".into());
            }
            d2.set(&2, &20).map_err(e)?;
            let got = (d2.get(&1).map_err(e)?, d2.len().map_err(e)?, d2.keys().map_err(e)?);
            if got != (Some(10), 2, vec![1, 2]) {
                return Err(format!("dict through the server: {got:?}"));
            }
            let item = q2.get_timeout(PATIENCE).map_err(e)?;
            q2.put(&7).map_err(e)?;
            a2.set(0, 5).map_err(e)?;
            let got = (item, a2.get(1).map_err(e)?, a2.to_vec().map_err(e)?, a2.len().map_err(e)?);
            if got != (8, 42, vec![5, 42], 2) {
                return Err(format!("queue and array through the server: {got:?}"));
            }
            Ok(())
        })
        .unwrap();
    let st = kid.join().unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(q.get_nowait().unwrap(), Some(7));
    assert_eq!(d.get(&2).unwrap(), Some(20));
    assert_eq!(a.to_vec().unwrap(), [5, 42]);
    m.shutdown().unwrap();
}
