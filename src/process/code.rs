//! How a code address crosses a process boundary: the one scheme, used by the process layer
//! (a job's function and trampoline, for spawn and the forkserver) and by the pool (a job
//! descriptor's trampoline and kernel, a worker's initializer).
//!
//! An address travels as its distance from one function of this crate, [`anchor`], as a
//! wrapping `u64` ([`to_offset`], [`from_offset`]). The linker fixes that distance for all code
//! of one executable, so it names the same code in a fork (same layout) and in a re-executed
//! copy of the executable (another base address under PIE and ASLR).
//!
//! ## What is accepted
//!
//! One rule, keyed on where the receiver comes from ([`Receiver`]):
//!
//! - a **fork** of the sender maps everything where the sender does, so any code address means
//!   the same there, a shared library's included; [`check_sendable`] reads nothing;
//! - a **re-executed** copy (spawn, the forkserver and its children) maps the main executable
//!   (`/proc/self/exe`) at another base but as one block, so only an address inside one of its
//!   mappings names the same code there; [`check_sendable`] refuses anything else (a shared
//!   library is loaded at its own base) with `Error::SpawnUnavailable`, before it is sent.
//!
//! A receiver that takes addresses from shared memory (a pool worker) also checks, before it
//! calls one, that it lies in an executable file-backed mapping of its own ([`CodeRanges`]), so
//! a corrupt descriptor fails a chunk instead of jumping into data. A process job is bound to the
//! sender's build by [`build_fingerprint`], a per-child secret and a checksum (`entry.rs`), so
//! its offsets are always ones a sender of this build checked.
//!
//! ## Why offsets from an anchor, not a registry of named entry points
//!
//! Considered: `linkme` / `inventory` distributed slices (a child dispatches by an index into a
//! table the linker builds), and a registry built at first use. Measured on the project's 2-core
//! VM with linkme 0.3.37 in a scratch crate (release build, PIE, 10^8 calls, three runs):
//!
//! | question | anchor offset (this module) | linkme slice | registry built at first use |
//! |---|---|---|---|
//! | cost per call | one add, 2.2-2.4 ns with the call (a plain `fn` pointer call: 2.1-3.0 ns) | one bounds-checked index, 2.1-3.2 ns | a locked `HashMap` lookup, 15-25 ns |
//! | PIE / ASLR | three runs: anchor at `0x5615b01d73c0`, `0x555eaff9e3c0`, `0x56041695b3c0`; offsets of the program's functions the same each run (-32, 32, -5488) | ids fixed at link time | ids depend on the order of registrations, and a re-executed child has run none |
//! | a shared library's code | libc's `getpid` at another offset each run: refused for a re-executed receiver, fine in a fork | one table per linked image: the child must load the same library first | as for linkme |
//! | shmpool inside a Python extension | `/proc/self/exe` is `python`, which neither diverts nor loads the extension: refused ([`check_own_code_reexecutable`]) | the same: nothing runs the table's image | the same |
//! | closures | a non-capturing closure coerces to a `fn`: accepted at any call site, as today's API takes them | only if written as a `static` item | only if registered before use, in every process |
//! | generics monomorphised per type | every instance is code at a fixed offset (the pool's trampolines, `entry`'s per-`A, R` trampoline) | cannot register them: a `static` in a generic `fn` is error E0401 ("can't use generic parameters from outer item") | must be registered per type, by hand |
//!
//! Two instances with the same machine code may share one address (the scratch crate's
//! `generic::<u8>` and `generic::<u32>` did): harmless for offsets, a collision for a table keyed
//! by address (which is how a sender holding a `fn` pointer finds its id). A registry would
//! change every public signature that takes a `fn` (the pool's kernels, tasks and initializer, a
//! spawned or forkserver `Process`'s target) into one that takes a registered name, and it would
//! not remove the need for the build fingerprint (ids, like offsets, mean something only within
//! one build), so the fingerprint check would not become simpler. It buys nothing for shared
//! libraries (the code still has to be loaded in the child) and costs generic trampolines,
//! which every typed entry point here needs. Offsets stay; a registry becomes worth it only for
//! entry points a child must find *by name* from another build (a Manager, scale-out), where the
//! name is the contract.
//!
//! Reading `/proc/self/maps` costs 37-117 us on the same VM, so a sender reads the main
//! executable's ranges once per process (cached), and a pool worker reads its [`CodeRanges`]
//! once, at its first job.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::sys::maps;

/// The function every offset is measured from.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x5348_4d50_4f4f_4c31)
}

/// A second function, whose distance from [`anchor`] changes from build to build.
#[inline(never)]
fn fingerprint_probe() -> u64 {
    std::hint::black_box(0x4255_494c_4449_4431)
}

/// The address of [`anchor`] in this process.
fn anchor_addr() -> usize {
    anchor as fn() -> u64 as usize
}

/// A code address as its offset from [`anchor`], for another process of this build.
pub(crate) fn to_offset(addr: usize) -> u64 {
    (addr as u64).wrapping_sub(anchor_addr() as u64)
}

/// The code address an offset from [`to_offset`] stands for in this process.
pub(crate) fn from_offset(off: u64) -> usize {
    (anchor_addr() as u64).wrapping_add(off) as usize
}

/// This build's fingerprint: the distance between two of its functions, and the crate version.
pub(crate) fn build_fingerprint() -> String {
    let distance = to_offset(fingerprint_probe as fn() -> u64 as usize) as i64;
    format!("{}/{distance}", env!("CARGO_PKG_VERSION"))
}

/// Where the code an address names will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// A fork of this process: every mapping is where it is here.
    Fork,
    /// A re-executed copy of the main executable (spawn, the forkserver and its children).
    Reexecuted,
}

/// The address ranges where the main executable (`/proc/self/exe`, which spawn and the
/// forkserver re-execute) is mapped, read from `/proc/self/maps`; cached once read.
fn exe_ranges() -> std::result::Result<&'static [(usize, usize)], String> {
    static RANGES: OnceLock<Vec<(usize, usize)>> = OnceLock::new();
    if let Some(r) = RANGES.get() {
        return Ok(r);
    }
    // A failure to read (EMFILE, say) is not cached: it may pass.
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| format!("/proc/self/exe is unreadable ({e})"))?;
    let text = maps::read_self().map_err(|e| format!("/proc/self/maps is unreadable ({e})"))?;
    Ok(RANGES.get_or_init(|| mappings_of(&text, &exe.to_string_lossy())))
}

/// The ranges of the mappings of the file `path` in a `/proc/<pid>/maps` text.
fn mappings_of(text: &str, path: &str) -> Vec<(usize, usize)> {
    maps::parse(text).filter(|m| m.path == path).map(|m| (m.start, m.end)).collect()
}

/// Whether `addr` lies in one of `ranges`.
fn within(ranges: &[(usize, usize)], addr: usize) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= addr && addr < hi)
}

/// Checks that the code at `addr` (`what`, for the message) means the same code in a receiver
/// of kind `to`: see the module's rule. Under [`Receiver::Fork`] nothing can differ and nothing
/// is read; the receiver's [`CodeRanges`] check stands.
pub(crate) fn check_sendable(addr: usize, what: &str, to: Receiver) -> Result<()> {
    if to == Receiver::Fork {
        return Ok(());
    }
    let ranges = exe_ranges().map_err(|reason| Error::SpawnUnavailable { reason })?;
    if within(ranges, addr) {
        Ok(())
    } else {
        Err(Error::SpawnUnavailable {
            reason: format!(
                "{what} (at {addr:#x}) is not in the program's own executable (a shared library?), \
                 so a re-executed copy could not find it"
            ),
        })
    }
}

/// Checks that shmpool's own code lives in the main executable, which is what spawn and the
/// forkserver re-execute: from a shared library (a Python extension, say) `/proc/self/exe` is
/// another program, which would neither run the constructor nor know the functions.
pub(crate) fn check_own_code_reexecutable() -> Result<()> {
    check_sendable(anchor_addr(), "shmpool's own code", Receiver::Reexecuted)
}

/// The executable, file-backed address ranges of this process: what a receiver accepts before it
/// calls an address it was sent. It cannot tell one function of the program from another, only
/// code from data, the stack, the vdso or a JIT page, so a corrupt offset fails with a message
/// instead of jumping there.
pub(crate) struct CodeRanges(Vec<(usize, usize)>);

impl CodeRanges {
    /// Reads this process's executable file mappings (empty if `/proc` cannot be read, which
    /// then refuses every address).
    pub(crate) fn of_this_process() -> CodeRanges {
        CodeRanges::of_maps(&maps::read_self().unwrap_or_default())
    }

    /// The executable file mappings of a `/proc/<pid>/maps` text.
    fn of_maps(text: &str) -> CodeRanges {
        let code = maps::parse(text).filter(|m| m.is_executable() && m.is_file());
        CodeRanges(code.map(|m| (m.start, m.end)).collect())
    }

    /// Whether `addr` lies in one of the ranges.
    pub(crate) fn contains(&self, addr: usize) -> bool {
        within(&self.0, addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add((a, b): (i32, i32)) -> i32 {
        a + b
    }

    #[inline(never)]
    fn some_fn() -> u32 {
        std::hint::black_box(7)
    }

    #[test]
    fn an_offset_names_the_same_address_back() {
        for f in [add as fn((i32, i32)) -> i32 as usize, some_fn as fn() -> u32 as usize, 0, 1] {
            assert_eq!(from_offset(to_offset(f)), f);
        }
        assert_eq!(to_offset(anchor_addr()), 0);
    }

    #[test]
    fn the_executables_code_is_sendable_anywhere() {
        check_own_code_reexecutable().unwrap();
        let f = add as fn((i32, i32)) -> i32 as usize;
        check_sendable(f, "add", Receiver::Reexecuted).unwrap();
        check_sendable(f, "add", Receiver::Fork).unwrap();
    }

    #[test]
    fn code_outside_the_executable_is_refused() {
        // getpid lives in libc.so, mapped from another file than the executable.
        let libc_fn = libc::getpid as unsafe extern "C" fn() -> libc::pid_t as usize;
        match check_sendable(libc_fn, "getpid", Receiver::Reexecuted) {
            Err(Error::SpawnUnavailable { reason }) => {
                assert!(reason.contains("getpid") && reason.contains("shared library"), "{reason}")
            }
            other => panic!("an address in libc must be refused, got {other:?}"),
        }
        // Nor is a heap address an executable's code.
        let heap = Box::new(0u8);
        let heap = &*heap as *const u8 as usize;
        assert!(check_sendable(heap, "heap", Receiver::Reexecuted).is_err());
        // A fork maps libc where we do, and its workers check for themselves.
        assert!(check_sendable(libc_fn, "getpid", Receiver::Fork).is_ok());
        assert!(CodeRanges::of_this_process().contains(libc_fn));
    }

    #[test]
    fn only_the_mappings_of_the_executable_count() {
        let maps = "\
00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/my prog
00651000-00652000 rw-p 00051000 08:02 173521      /usr/bin/my prog
7f0000000000-7f0000100000 r-xp 00000000 08:02 99  /usr/lib/libfoo.so
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0   [stack]
7ffe00000000-7ffe00001000 rw-p 00000000 00:00 0
";
        let r = mappings_of(maps, "/usr/bin/my prog");
        assert_eq!(r, [(0x400000, 0x452000), (0x651000, 0x652000)]);
        assert!(within(&r, 0x400000) && within(&r, 0x451fff) && within(&r, 0x651800));
        assert!(!within(&r, 0x452000) && !within(&r, 0x7f0000000010) && !within(&r, 0));
        assert!(mappings_of(maps, "/usr/lib/libfoo").is_empty());
    }

    #[test]
    fn functions_are_code_and_data_is_not() {
        let code = CodeRanges::of_this_process();
        assert!(code.contains(some_fn as fn() -> u32 as usize));
        assert!(code.contains(CodeRanges::contains as fn(&CodeRanges, usize) -> bool as usize));
        let heap = Box::new(0u64);
        assert!(!code.contains(&*heap as *const u64 as usize));
        let stack = 0u64;
        assert!(!code.contains(&stack as *const u64 as usize));
        assert!(!code.contains(0));
    }

    #[test]
    fn only_executable_file_mappings_are_code() {
        let l = "55d0c0a00000-55d0c0b00000 r-xp 00001000 08:01 123 /usr/bin/prog";
        assert_eq!(CodeRanges::of_maps(l).0, [(0x55d0c0a00000, 0x55d0c0b00000)]);
        assert!(CodeRanges::of_maps("7ffd-7ffe r-xp 00000000 00:00 0 [vdso]").0.is_empty());
        assert!(CodeRanges::of_maps("1000-2000 rw-p 00000000 00:00 0 /x").0.is_empty());
        assert!(CodeRanges::of_maps("1000-2000 r-xp 00000000 00:00 0").0.is_empty());
    }
}
