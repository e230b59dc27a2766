//! Adversarial tests of issue 10's additions: what safe code in one process can make of shared
//! objects it builds from bytes (serde handles), rather than from objects it was given.

use shmpool::{LockedArray, LockedArrayHandle, SharedArray};

/// `array`'s handle with its `lock` field taken from `other`'s handle (serde, as any process
/// decoding bytes it received could).
fn mixed(array: serde_json::Value, lock_from: serde_json::Value) -> serde_json::Value {
    let mut v = array;
    v["lock"] = lock_from["lock"].clone();
    v
}

#[test]
fn a_locked_arrays_elements_under_another_lock_are_refused() {
    let a = LockedArray::<u64>::zeroed(4).unwrap();
    let other = LockedArray::<u64>::zeroed(4).unwrap();
    let v = mixed(
        serde_json::to_value(a.handle()).unwrap(),
        serde_json::to_value(other.handle()).unwrap(),
    );
    let h: LockedArrayHandle = serde_json::from_value(v.clone()).unwrap();
    // Opened, `a`'s elements would be reachable under `other`'s lock while `a.lock()` holds
    // its own: two `&mut [u64]` to the same memory from safe code.
    let e = LockedArray::<u64>::open_handle(&h).expect_err("elements paired with another lock");
    assert!(e.to_string().contains("lock"), "{e}");
    // The same bytes decoded as the array itself (how a Process argument arrives).
    assert!(serde_json::from_value::<LockedArray<u64>>(v).is_err());
    // The array's own handle still opens, and shares the elements.
    let b = LockedArray::<u64>::open_handle(&a.handle()).unwrap();
    b.set(3, 9).unwrap();
    assert_eq!(a.to_vec().unwrap(), [0, 0, 0, 9]);
    assert_eq!((a.len(), b.len()), (4, 4));
}

#[test]
fn a_plain_shared_array_cannot_be_opened_as_a_locked_one() {
    // `raw.as_mut_slice()` is safe: a locked view of the same elements would race with it.
    let raw = SharedArray::<u32>::zeroed(8).unwrap();
    let lock = LockedArray::<u32>::zeroed(1).unwrap();
    let v = mixed(
        serde_json::json!({ "lock": null, "data": serde_json::to_value(raw.handle()).unwrap() }),
        serde_json::to_value(lock.handle()).unwrap(),
    );
    let h: LockedArrayHandle = serde_json::from_value(v).unwrap();
    assert!(LockedArray::<u32>::open_handle(&h).is_err());
}

#[test]
fn with_lock_keeps_the_values_and_the_raw_handle_opens_no_locked_view() {
    let raw = SharedArray::<u16>::from_fn(3, |i| i as u16 + 1).unwrap();
    let raw_handle = raw.handle();
    let a = LockedArray::with_lock(raw).unwrap();
    assert_eq!(a.to_vec().unwrap(), [1, 2, 3]);
    let v = mixed(
        serde_json::json!({ "lock": null, "data": serde_json::to_value(&raw_handle).unwrap() }),
        serde_json::to_value(a.handle()).unwrap(),
    );
    let h: LockedArrayHandle = serde_json::from_value(v).unwrap();
    assert!(LockedArray::<u16>::open_handle(&h).is_err());
}

#[test]
fn empty_and_zero_sized_locked_arrays_round_trip() {
    let e = LockedArray::<u8>::zeroed(0).unwrap();
    let e2 = LockedArray::<u8>::open_handle(&e.handle()).unwrap();
    assert!(e2.is_empty() && e2.to_vec().unwrap().is_empty());
    let z = LockedArray::<()>::zeroed(5).unwrap();
    assert_eq!(LockedArray::<()>::open_handle(&z.handle()).unwrap().len(), 5);
}

#[test]
fn a_shared_array_forging_the_binding_is_still_refused() {
    // A plain array whose last bytes copy what a locked array's binding to `l`'s lock holds
    // (the magic word and the lock's nonce, which its handle shows).
    let l = LockedArray::<u8>::zeroed(1).unwrap();
    let lv = serde_json::to_value(l.handle()).unwrap();
    let nonce = lv["lock"]["nonce"].as_u64().expect("a handle shows its nonce");
    let mut bytes = vec![0u8; 8];
    bytes.extend_from_slice(b"shmpLKAR");
    bytes.extend_from_slice(&nonce.to_le_bytes());
    let raw = SharedArray::<u8>::from_slice(&bytes).unwrap();
    let v = mixed(
        serde_json::json!({ "lock": null, "data": serde_json::to_value(raw.handle()).unwrap() }),
        lv,
    );
    let h: LockedArrayHandle = serde_json::from_value(v).unwrap();
    assert!(LockedArray::<u8>::open_handle(&h).is_err());
}

/// Ring segments of this process's queues in /dev/shm (`shmpool-<pid>-<nonce>-r<n>`).
fn rings_of_this_process() -> usize {
    let prefix = format!("shmpool-{}-", std::process::id());
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| e.file_name().to_string_lossy().contains("-r"))
        .count()
}

#[test]
fn unbounded_queues_dropped_full_leave_no_rings() {
    // The only test here that makes rings, so the count is this test's own.
    let big = vec![7u8; 60_000];
    {
        let q = shmpool::queue::MessageQueue::new().unwrap();
        let second = shmpool::queue::MessageQueue::open_handle(&q.handle()).unwrap();
        for _ in 0..200 {
            q.put(&big).unwrap();
        }
        assert!(rings_of_this_process() > 1, "the queue grew past one ring");
        let got: Vec<u8> = second.get_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(got.len(), big.len());
        drop(q); // the creator first, the other handle after
    }
    assert_eq!(rings_of_this_process(), 0, "rings left in /dev/shm");
    {
        let q = shmpool::Queue::<[u64; 64]>::new().unwrap();
        for i in 0..20_000u64 {
            q.put([i; 64]).unwrap();
        }
        assert!(rings_of_this_process() > 1);
    }
    assert_eq!(rings_of_this_process(), 0, "rings left in /dev/shm");
}
