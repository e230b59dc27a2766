//! Attacks on the Manager's fast path (objects the proxies on the server's machine map): a
//! client killed or stopped inside `with_local`, a client killed mid-put on a shared queue's
//! ring, and a thread that maps many objects.

use std::time::{Duration, Instant};

use shmpool::manager::{ArrayProxy, DictProxy, EventProxy, QueueProxy};
use shmpool::{Manager, StartMethod, get_context};

use crate::harness::{Tests, register};

const PATIENCE: Duration = Duration::from_secs(20);
const PROMPTLY: Duration = Duration::from_secs(1);

pub fn tests() -> Tests {
    register! {
        a_client_killed_inside_with_local_leaves_the_array_usable,
        a_stopped_holder_ends_other_array_calls_in_seconds,
        a_client_killed_mid_put_leaves_the_shared_queue_usable,
        mapping_many_objects_keeps_few_descriptors,
        a_proxy_decoded_with_a_zero_sized_element_errs_not_panics,
        indices_near_the_top_of_usize_are_out_of_range_not_a_panic,
        a_client_killed_while_clearing_leaves_the_dict_usable,
        many_managers_started_and_stopped_leave_no_descriptor_or_mapping,
        a_server_killed_while_a_client_holds_the_lock_ends_every_call,
        a_fork_inside_with_local_cannot_write_the_parents_elements,
    }
}

fn manager() -> Manager {
    Manager::builder().start_method(StartMethod::Fork).start().unwrap()
}

/// A child: writes element 0 in place, says so, and stays inside `with_local` until killed.
fn hold_in_place(args: (ArrayProxy<u64>, EventProxy)) -> Result<(), String> {
    let (a, inside) = args;
    let mapped = a
        .with_local(|xs| {
            xs[0] = 7;
            inside.set().map(|()| std::thread::sleep(Duration::from_secs(60)))
        })
        .map_err(|e| e.to_string())?;
    Err(format!("was not killed ({mapped:?})"))
}

fn a_client_killed_inside_with_local_leaves_the_array_usable() {
    let m = manager();
    let (a, inside) = (m.array::<u64>(4).unwrap(), m.event().unwrap());
    let mut kid =
        get_context(StartMethod::Fork).start(hold_in_place, (a.clone(), inside.clone())).unwrap();
    assert!(inside.wait_timeout(PATIENCE).unwrap(), "the child never got inside");
    kid.kill().unwrap();
    assert!(!kid.join().unwrap().success());
    let t = Instant::now();
    assert_eq!(a.get(0).unwrap(), 7, "the dead holder's write is as it left it");
    assert!(t.elapsed() < PROMPTLY, "took {:?}", t.elapsed());
    assert_eq!(a.with_local(|xs| xs.iter().sum::<u64>()).unwrap(), Some(7));
    a.set(1, 1).unwrap();
    assert_eq!(a.to_vec().unwrap(), [7, 1, 0, 0]);
    m.shutdown().unwrap();
}

fn a_stopped_holder_ends_other_array_calls_in_seconds() {
    // A holder that is alive but never lets go (stopped, or a closure that never returns):
    // every other call gives up with an error, none waits forever.
    let m = manager();
    let (a, inside) = (m.array::<u64>(4).unwrap(), m.event().unwrap());
    let mut kid =
        get_context(StartMethod::Fork).start(hold_in_place, (a.clone(), inside.clone())).unwrap();
    assert!(inside.wait_timeout(PATIENCE).unwrap(), "the child never got inside");
    let t = Instant::now();
    let r = a.get(1);
    let took = t.elapsed();
    kid.kill().unwrap();
    assert!(!kid.join().unwrap().success());
    assert!(
        matches!(r, Err(shmpool::Error::Timeout { .. })),
        "a read while another process held the lock: {r:?}"
    );
    assert!(took < Duration::from_secs(10), "gave up after {took:?}");
    assert_eq!(a.get(0).unwrap(), 7);
    m.shutdown().unwrap();
}

/// A child: puts numbered items of 1 KiB on the queue until killed.
fn put_forever(args: (QueueProxy<Vec<u32>>, EventProxy)) -> Result<(), String> {
    let (q, started) = args;
    started.set().map_err(|e| e.to_string())?;
    for i in 0u32.. {
        q.put(&vec![i; 256]).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn a_client_killed_mid_put_leaves_the_shared_queue_usable() {
    let m = manager();
    let q = m.queue_with_capacity::<Vec<u32>>(64 << 10, 2 << 10).unwrap();
    for round in 0..6u64 {
        let started = m.event().unwrap();
        let mut kid = get_context(StartMethod::Fork)
            .start(put_forever, (q.clone(), started.clone()))
            .unwrap();
        assert!(started.wait_timeout(PATIENCE).unwrap(), "the writer never started");
        // Drain while it writes, so it is inside a put (not waiting for room) at the kill.
        let until = Instant::now() + Duration::from_millis(3 + round * 5);
        while Instant::now() < until {
            if let Some(item) = q.get_nowait().unwrap() {
                assert!(item.len() == 256 && item.iter().all(|&x| x == item[0]), "torn item");
            }
        }
        kid.kill().unwrap();
        assert!(!kid.join().unwrap().success());
        // Whatever it left: whole items, then room for ours, promptly.
        let t = Instant::now();
        while let Some(item) = q.get_nowait().unwrap() {
            assert!(item.len() == 256 && item.iter().all(|&x| x == item[0]), "torn item");
        }
        q.put_timeout(&vec![round as u32; 256], PATIENCE).unwrap();
        assert_eq!(q.get_timeout(PATIENCE).unwrap(), vec![round as u32; 256]);
        assert!(t.elapsed() < PROMPTLY, "took {:?}", t.elapsed());
    }
    m.shutdown().unwrap();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mapping_many_objects_keeps_few_descriptors() {
    // Each object a thread maps keeps its memory mapped (and the server alive-check); a thread
    // that touches hundreds of objects must not run the process out of descriptors.
    let m = manager();
    let arrays: Vec<_> = (0..300).map(|_| m.array::<u64>(1).unwrap()).collect();
    let before = open_fds();
    for round in 1..=2 {
        for a in &arrays {
            a.set(0, round).unwrap();
            assert_eq!(a.with_local(|xs| xs[0]).unwrap(), Some(round), "not mapped");
        }
    }
    // At most 64 objects mapped, two memfds each, and one pidfd for the server (it was 3 per
    // object, every object: 900 here, past the default limit of 1024 at about 340 objects).
    let grew = open_fds().saturating_sub(before);
    assert!(grew <= 2 * 64 + 1, "{grew} descriptors held for 300 mapped arrays");
    drop(arrays);
    m.shutdown().unwrap();
    assert!(open_fds() <= before + 5, "descriptors left after shutdown");
}

fn a_proxy_decoded_with_a_zero_sized_element_errs_not_panics() {
    // `array::<()>` is refused, but a proxy is serde: decoded as another element type (a bug in
    // a caller, bytes from elsewhere), a zero-sized one divided by its size.
    let m = manager();
    let a = m.array::<u8>(4).unwrap();
    let json = serde_json::to_string(&a).unwrap();
    let z: ArrayProxy<()> = serde_json::from_str(&json).unwrap();
    assert!(z.len().is_err());
    assert!(z.get(0).is_err());
    assert!(z.to_vec().is_err());
    assert!(z.set(0, ()).is_err());
    assert!(z.with_local(|xs| xs.len()).is_err());
    assert!(m.array::<()>(4).is_err());
    assert_eq!(a.len().unwrap(), 4);
    m.shutdown().unwrap();
}

fn indices_near_the_top_of_usize_are_out_of_range_not_a_panic() {
    let m = manager();
    let a = m.array::<u64>(4).unwrap();
    for i in [4, usize::MAX / 8, usize::MAX / 8 + 1, usize::MAX - 1, usize::MAX] {
        assert!(matches!(a.get(i), Err(shmpool::Error::InvalidArgument { .. })), "get({i})");
        assert!(a.set(i, 1).is_err(), "set({i})");
        assert!(a.set_slice(i, &[1, 2]).is_err(), "set_slice({i})");
    }
    assert_eq!(a.to_vec().unwrap(), [0; 4]);
    m.shutdown().unwrap();
}

/// A child: says it started, then clears the dict and sets one key, until it is killed.
fn clear_forever(args: (DictProxy<u32, u64>, EventProxy)) -> Result<(), String> {
    let (d, started) = args;
    started.set().map_err(|e| e.to_string())?;
    for i in 0u64.. {
        d.clear().map_err(|e| e.to_string())?;
        d.set(&1, &i).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn a_client_killed_while_clearing_leaves_the_dict_usable() {
    // A clear of a large table is the longest write there is: a holder killed inside it must
    // leave a dict the next caller can use, not words that no longer read as a table.
    let m = manager();
    let d = m.dict_with_capacity::<u32, u64>(1 << 16, 32 << 20).unwrap();
    for round in 0..8u64 {
        let started = m.event().unwrap();
        let mut kid = get_context(StartMethod::Fork)
            .start(clear_forever, (d.clone(), started.clone()))
            .unwrap();
        assert!(started.wait_timeout(PATIENCE).unwrap(), "the child never started");
        std::thread::sleep(Duration::from_millis(5 + round * 7));
        kid.kill().unwrap();
        assert!(!kid.join().unwrap().success());
        let t = Instant::now();
        let len = match d.len() {
            Err(shmpool::Error::ManagerRefused { reason }) if reason.contains("emptied") => {
                d.len().unwrap()
            }
            r => r.unwrap(),
        };
        assert!(len <= 1, "{len} keys");
        d.set(&2, &2).unwrap();
        assert_eq!(d.get(&2).unwrap(), Some(2));
        assert!(t.elapsed() < PROMPTLY, "took {:?}", t.elapsed());
    }
    m.shutdown().unwrap();
}

fn memfd_maps() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().filter(|l| l.contains("memfd:")).count()
}

fn many_managers_started_and_stopped_leave_no_descriptor_or_mapping() {
    // Measured after a first round: starting a manager makes a process-wide pipe once.
    let (mut fds, mut maps) = (0, 0);
    for round in 0..21u32 {
        let m = manager();
        let d = m.dict_with_capacity::<u32, u32>(16, 1024).unwrap();
        let a = m.array::<u32>(16).unwrap();
        let q = m.queue_with_capacity::<u32>(4096, 64).unwrap();
        d.set(&round, &round).unwrap();
        a.set(0, round).unwrap();
        q.put(&round).unwrap();
        assert_eq!(q.get().unwrap(), round);
        assert!(round == 0 || memfd_maps() > maps, "nothing was mapped");
        m.shutdown().unwrap();
        assert!(matches!(d.get(&round), Err(shmpool::Error::ManagerGone { .. })));
        if round == 0 {
            (fds, maps) = (open_fds(), memfd_maps());
        }
    }
    assert_eq!(memfd_maps(), maps, "mappings left behind");
    assert!(open_fds() <= fds, "{} descriptors before, {} after", fds, open_fds());
}

/// A child: waits for the array's lock (held by the parent), then reports what it got.
fn wait_for_the_lock(args: (ArrayProxy<u64>, EventProxy)) -> Result<(), String> {
    let (a, asking) = args;
    asking.set().map_err(|e| e.to_string())?;
    match a.get(0) {
        // The server died while it waited: either is an answer, and it came.
        Err(shmpool::Error::ManagerGone { .. }) | Ok(5) => Ok(()),
        r => Err(format!("{r:?}")),
    }
}

fn a_server_killed_while_a_client_holds_the_lock_ends_every_call() {
    let m = manager();
    let (a, asking) = (m.array::<u64>(2).unwrap(), m.event().unwrap());
    a.set(0, 1).unwrap(); // maps it here
    let pid = m.server_pid().unwrap();
    let t = Instant::now();
    let mut kid = None;
    let held = a
        .with_local(|xs| {
            let ctx = get_context(StartMethod::Spawn);
            kid = Some(ctx.start(wait_for_the_lock, (a.clone(), asking.clone())).unwrap());
            let waited = asking.wait_timeout(PATIENCE).unwrap();
            // Let it reach the lock.
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: kill only sends a signal, to the server this test started.
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
            xs[0] = 5;
            waited
        })
        .unwrap();
    assert_eq!(held, Some(true), "the child never asked");
    let mut kid = kid.unwrap();
    let st = kid.join().unwrap();
    assert!(st.success(), "{st}");
    loop {
        match a.get(0) {
            Err(shmpool::Error::ManagerGone { .. }) => break,
            Ok(5) if t.elapsed() < PATIENCE => std::thread::sleep(Duration::from_millis(1)),
            r => panic!("after {:?}: {r:?}", t.elapsed()),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    m.shutdown().unwrap();
}

fn a_fork_inside_with_local_cannot_write_the_parents_elements() {
    // `with_local` hands out `&mut [T]` into memory other processes map; a scoped fork child
    // that captures it must not write it behind the lock's back (the mapping is kept out of
    // forks: the child faults), nor may the fork be a way around the lock.
    let m = manager();
    let a = m.array::<u64>(4).unwrap();
    let st = a
        .with_local(|xs| {
            shmpool::scope(|s| {
                let child = s.fork(|| {
                    xs[0] = 99;
                    0
                });
                child.and_then(|c| c.join())
            })
        })
        .unwrap()
        .expect("mapped here");
    match st {
        Ok(Ok(st)) => assert!(!st.success(), "the child wrote through a captured slice: {st}"),
        Ok(Err(e)) | Err(e) => eprintln!("(the fork was refused: {e})"),
    }
    assert_eq!(a.to_vec().unwrap(), [0; 4]);
    m.shutdown().unwrap();
}
