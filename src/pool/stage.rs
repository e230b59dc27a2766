//! A kernel job's trampoline: runs the stages of one publish (a group that fuses per chunk) on
//! one chunk, each stage's `fn(&Chunk<P>)` in turn while the chunk is hot in cache.

use bytemuck::Pod;

use super::chunk::Chunk;
use super::kernel::{Span, Views, check_span};

/// A kernel stage: a `fn` item or a closure that captures nothing.
pub(crate) type StageFn<P> = fn(&Chunk<P>);

/// Runs stages `views.job.first..first + count` on chunk `s`, in order.
///
/// # Safety
///
/// The [`Trampoline`](super::kernel::Trampoline) contract, where every running stage address in
/// `views.job` is a [`StageFn<P>`] of this image and the parameter slot holds a `P` (`kernel`
/// is the first stage's address, for the worker's code check, and is not used otherwise).
pub(crate) unsafe fn run_stages<P: Pod>(_kernel: usize, v: &Views, s: &Span) {
    check_span(s);
    for (k, &addr) in v.job.running().iter().enumerate() {
        // SAFETY: per the contract, `addr` is a `StageFn<P>` of this image.
        let f = unsafe { std::mem::transmute::<usize, StageFn<P>>(addr) };
        // SAFETY: the views satisfy the trampoline contract for this call, which the chunk
        // does not outlive; the chunk is exclusively ours (the claim).
        let c = unsafe { Chunk::<P>::new(v, s, v.job.first + k) };
        f(&c);
    }
}
