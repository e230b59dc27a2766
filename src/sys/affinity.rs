//! CPU affinity: which CPUs this process may run on (`sched_getaffinity`) and pinning the
//! calling thread to a set of them (`sched_setaffinity`).
//!
//! Masks are read and written as vectors of `u64` words, grown until the kernel's mask fits (a
//! fixed `cpu_set_t` holds only 1024 CPUs: beyond that the kernel answers `EINVAL`).

use std::io;

/// The largest CPU number a mask here may name (Linux allows up to 2^22 CPUs).
const MAX_CPUS: usize = 1 << 22;

/// The CPUs the calling thread may run on, ascending.
pub(crate) fn allowed() -> io::Result<Vec<usize>> {
    let mut words = 1024 / 64;
    loop {
        let mut set = vec![0u64; words];
        let bytes = words * std::mem::size_of::<u64>();
        // SAFETY: `set` is writable for `bytes` bytes; the kernel writes a CPU bit mask, which
        // any u64 pattern can hold.
        let r = unsafe { libc::sched_getaffinity(0, bytes, set.as_mut_ptr().cast()) };
        if r == 0 {
            return Ok(cpus_of(&set));
        }
        let e = io::Error::last_os_error();
        // EINVAL: the kernel's mask is larger than the buffer.
        if e.raw_os_error() != Some(libc::EINVAL) || words >= MAX_CPUS / 64 {
            return Err(e);
        }
        words *= 2;
    }
}

/// Pins the calling thread (in a single-threaded process: the process) to `cpus`, which must
/// not be empty. The kernel refuses (`EINVAL`) a set with no CPU this process may use.
pub(crate) fn pin(cpus: &[usize]) -> io::Result<()> {
    let set = mask_of(cpus)?;
    let bytes = set.len() * std::mem::size_of::<u64>();
    // SAFETY: `set` is readable for `bytes` bytes, a CPU bit mask; the call only reads it.
    let r = unsafe { libc::sched_setaffinity(0, bytes, set.as_ptr().cast()) };
    super::cvt(r).map(drop)
}

/// The CPU numbers whose bits are set in `mask`, ascending.
fn cpus_of(mask: &[u64]) -> Vec<usize> {
    let mut cpus = Vec::new();
    for (w, &word) in mask.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            cpus.push(w * 64 + b);
            bits &= bits - 1;
        }
    }
    cpus
}

/// A mask with the bits of `cpus` set, as few words long as holds the largest.
fn mask_of(cpus: &[usize]) -> io::Result<Vec<u64>> {
    let Some(&max) = cpus.iter().max() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty CPU set"));
    };
    if max >= MAX_CPUS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a CPU number past 2^22"));
    }
    let mut set = vec![0u64; max / 64 + 1];
    for &c in cpus {
        set[c / 64] |= 1 << (c % 64);
    }
    Ok(set)
}

/// `cpus` as Linux's list format (`/proc/self/status` `Cpus_allowed_list`): "0-3,6,8-9".
pub(crate) fn list_format(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_cpu_lists_round_trip() {
        let cpus = [0, 3, 63, 64, 130];
        assert_eq!(cpus_of(&mask_of(&cpus).unwrap()), cpus);
        assert!(mask_of(&[]).is_err());
        assert_eq!(list_format(&[3, 0, 1, 2, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(list_format(&[5]), "5");
        assert_eq!(list_format(&[]), "");
    }

    #[test]
    fn the_allowed_set_matches_proc() {
        let cpus = allowed().unwrap();
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
        assert_eq!(list.trim(), list_format(&cpus));
    }

    #[test]
    fn a_thread_pinned_to_one_allowed_cpu_reports_only_it() {
        let cpus = allowed().unwrap();
        let last = *cpus.last().unwrap();
        // On a thread of its own, so the test runner's other threads keep their mask.
        let got = std::thread::spawn(move || {
            pin(&[last]).unwrap();
            allowed().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(got, [last]);
    }
}
