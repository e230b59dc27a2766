//! `tune_allocator`: glibc's malloc set up for a batch of images, so that a process reuses its
//! first file's buffers for the next files instead of faulting fresh pages in again.

/// Allocations from this size up get their own mapping (glibc's `M_MMAP_THRESHOLD`): 32 MiB,
/// the most glibc's own adaptive threshold reaches. Below it, a file's buffers come from the
/// heap and are reused by the next file.
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of the heap kept rather than given back to the system (glibc's
/// `M_TRIM_THRESHOLD`), so the next file does not fault its buffers in again.
const TRIM_THRESHOLD: i32 = 128 << 20;

/// Sets this process's allocator for a batch. A decoded 1024x768 RGB image (2.4 MB) is above
/// glibc's initial mmap threshold (128 KiB), so by default it is mapped, faulted in page by page
/// and unmapped for each file until glibc's adaptive threshold has grown past it: measured, the
/// second file of each process still paid ~900 page faults. With these settings every file
/// after the first reuses heap pages: a 4-file batch on 2 workers makes 2,396 page faults
/// instead of 4,201 and takes 53.9 instead of 57.6 ms of CPU (`perf stat -r 15`).
///
/// Run by each pool worker as its initializer, and by `--engine rayon` and `sequential` in
/// their own process, so the engines still compare the same code. A worker keeps up to
/// [`TRIM_THRESHOLD`] of freed heap until it exits with the batch.
pub(crate) fn tune_allocator() {
    // SAFETY: mallopt only changes glibc's malloc parameters (under the allocator's own lock,
    // like any malloc call); both values are in range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
