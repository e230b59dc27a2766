//! Sorting one shared array across processes: a sample sort whose splitters are exact.
//!
//! The steps, each a kernel over chunks that the drivers run in threads or pool workers:
//!
//! 1. **Local sort** ([`sort_run`]): every chunk of the array is sorted in place, giving sorted
//!    runs of `run_len` elements (the last may be shorter).
//! 2. **Splitters and bucket counts** ([`rank_split`]): the output is cut into buckets of equal
//!    size, one per output chunk; for the bucket that starts at global rank `r`, the splitter is
//!    the element of rank `r`, found by a binary search over the key space that counts, in each
//!    run, the elements below a candidate (the runs' sortedness makes each count a binary
//!    search). The split positions in every run are the per-run bucket counts, and their prefix
//!    sums are the offsets at which each run's share lands in the bucket.
//! 3. **Gather and sort buckets** ([`merge_ranks`]): each output chunk copies its share of every
//!    run to its offset and sorts the bucket by merging those sorted pieces pairwise
//!    (`O(m log runs)`).
//!
//! Random splitters give buckets of uneven size, which the pool, whose chunks are equal ranges,
//! cannot hand out; exact splitters make every bucket exactly one output chunk, so the buckets
//! are balanced and the result does not depend on the chunking.
//!
//! **Stability** does not arise: keys are the values themselves under a total order (integers
//! as usual, floats by [`f64::total_cmp`]: `-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf <
//! +NaN`), and two values with equal keys are the same bits, so every sort of the same input
//! gives the same output, equal to `sort_unstable_by(total_cmp)`.

use bytemuck::Pod;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
}

/// `u64`, `i64` or `f64`: the element types the sort handles, each with an order-preserving map
/// to `u64` (identity; sign bit flipped; the IEEE bits arranged so that unsigned order is
/// [`f64::total_cmp`]).
///
/// ```
/// use shmpool_kernels::SortKey;
/// assert!((-1i64).key() < 0i64.key());
/// assert!((-0.0f64).key() < 0.0f64.key());
/// assert!(f64::INFINITY.key() < f64::NAN.key());
/// ```
pub trait SortKey: sealed::Sealed + Pod + Send + Sync + PartialEq + std::fmt::Debug {
    /// The value as an unsigned key: `a.key() < b.key()` exactly when `a` sorts before `b`.
    fn key(self) -> u64;
}

impl SortKey for u64 {
    #[inline(always)]
    fn key(self) -> u64 {
        self
    }
}

impl SortKey for i64 {
    #[inline(always)]
    fn key(self) -> u64 {
        (self as u64) ^ (1 << 63)
    }
}

impl SortKey for f64 {
    #[inline(always)]
    fn key(self) -> u64 {
        let bits = self.to_bits();
        // Negative: all bits flipped (larger magnitude sorts first); positive: sign bit set.
        let mask = ((bits as i64 >> 63) as u64) | (1 << 63);
        bits ^ mask
    }
}

/// Step 1: sorts one chunk in place, making it a sorted run.
///
/// ```
/// let mut run = [3.0, -0.0, f64::NAN, 0.0, -1.0];
/// shmpool_kernels::sort_run(&mut run);
/// assert_eq!(run[..4], [-1.0, -0.0, 0.0, 3.0]);
/// assert!(run[4].is_nan());
/// ```
pub fn sort_run<T: SortKey>(run: &mut [T]) {
    run.sort_unstable_by_key(|x| x.key());
}

/// Step 2: where global rank `rank` falls in each run of `runs` (sorted runs of `run_len`
/// elements, the last possibly shorter): `split[i]` is how many elements of run `i` rank below
/// `rank`. The splits sum to `rank`, and every element they leave out ranks at or above every
/// element they keep; of elements equal to the splitter, the earlier runs' come first.
///
/// # Panics
///
/// When `rank > runs.len()`, or `run_len` is 0 for a non-empty array.
///
/// ```
/// // Runs [1, 4, 9] and [2, 3, 8]: the 3 smallest are 1 from the first, 2 and 3 from the second.
/// let runs = [1u64, 4, 9, 2, 3, 8];
/// assert_eq!(shmpool_kernels::rank_split(&runs, 3, 3), vec![1, 2]);
/// ```
pub fn rank_split<T: SortKey>(runs: &[T], run_len: usize, rank: usize) -> Vec<usize> {
    assert!(rank <= runs.len(), "rank {rank} is past the {} elements", runs.len());
    if runs.is_empty() {
        return Vec::new();
    }
    assert!(run_len > 0, "runs of 0 elements");
    let chunks: Vec<&[T]> = runs.chunks(run_len).collect();
    if rank == runs.len() {
        return chunks.iter().map(|c| c.len()).collect();
    }
    let below =
        |v: u64| -> usize { chunks.iter().map(|c| c.partition_point(|x| x.key() < v)).sum() };
    // The splitter: the largest key v with fewer than rank + 1 elements below it, i.e. the key
    // of the element of rank `rank`.
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if below(mid) <= rank {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let splitter = lo;
    let mut equal_wanted = rank - below(splitter);
    chunks
        .iter()
        .map(|c| {
            let lt = c.partition_point(|x| x.key() < splitter);
            let le = c.partition_point(|x| x.key() <= splitter);
            let take = (le - lt).min(equal_wanted);
            equal_wanted -= take;
            lt + take
        })
        .collect()
}

/// Step 3: fills `out` with the elements of global ranks `first_rank..first_rank + out.len()`
/// of `runs` (sorted runs of `run_len` elements), in order: one bucket of the sorted array.
///
/// # Panics
///
/// When the ranks reach past the end of `runs`, or `run_len` is 0 for a non-empty array.
///
/// ```
/// let runs = [1u64, 4, 9, 2, 3, 8];
/// let mut out = [0; 3];
/// shmpool_kernels::merge_ranks(&runs, 3, 2, &mut out);
/// assert_eq!(out, [3, 4, 8]);
/// ```
pub fn merge_ranks<T: SortKey>(runs: &[T], run_len: usize, first_rank: usize, out: &mut [T]) {
    if out.is_empty() {
        return;
    }
    let from = rank_split(runs, run_len, first_rank);
    let to = rank_split(runs, run_len, first_rank + out.len());
    // The run's pieces, side by side in `out`; `bounds` are where each starts, and the end.
    let mut bounds = vec![0];
    let mut at = 0;
    for ((run, a), b) in runs.chunks(run_len).zip(from).zip(to) {
        if b > a {
            out[at..at + (b - a)].copy_from_slice(&run[a..b]);
            at += b - a;
            bounds.push(at);
        }
    }
    debug_assert_eq!(at, out.len());
    merge_pieces(out, bounds);
}

/// Merges the sorted pieces of `v` (`bounds`: where each starts, then the end) pairwise, in
/// `log2(pieces)` passes through a buffer: `O(m log pieces)`, a branch-free merge loop.
fn merge_pieces<T: SortKey>(v: &mut [T], mut bounds: Vec<usize>) {
    if bounds.len() <= 2 {
        return;
    }
    let mut buf = vec![T::zeroed(); v.len()];
    let mut in_buf = false;
    while bounds.len() > 2 {
        let (src, dst): (&[T], &mut [T]) = if in_buf { (&buf, v) } else { (v, &mut buf) };
        let mut next = vec![0];
        // Pieces 0 and 1, 2 and 3, ...; an odd one out is copied.
        for p in (0..bounds.len() - 1).step_by(2) {
            let (lo, mid) = (bounds[p], bounds[p + 1]);
            let hi = match bounds.get(p + 2) {
                Some(&hi) => {
                    merge_two(&src[lo..mid], &src[mid..hi], &mut dst[lo..hi]);
                    hi
                }
                None => {
                    dst[lo..mid].copy_from_slice(&src[lo..mid]);
                    mid
                }
            };
            next.push(hi);
        }
        bounds = next;
        in_buf = !in_buf;
    }
    if in_buf {
        v.copy_from_slice(&buf);
    }
}

/// `out = merge(a, b)`, ties from `a` first.
fn merge_two<T: SortKey>(a: &[T], b: &[T], out: &mut [T]) {
    let (mut i, mut j) = (0, 0);
    let mut k = 0;
    while i < a.len() && j < b.len() {
        let pair = [a[i], b[j]];
        // An index, not a branch: which side wins is a coin toss on random data.
        let take_b = usize::from(pair[1].key() < pair[0].key());
        out[k] = pair[take_b];
        j += take_b;
        i += 1 - take_b;
        k += 1;
    }
    let rest = if i < a.len() { &a[i..] } else { &b[j..] };
    out[k..].copy_from_slice(rest);
}

/// Sorts `data` in place under the total order of [`SortKey`], sequentially (the reference the
/// parallel drivers agree with).
///
/// ```
/// let mut v = [3i64, -7, 0, 2];
/// shmpool_kernels::sort(&mut v);
/// assert_eq!(v, [-7, 0, 2, 3]);
/// ```
pub fn sort<T: SortKey>(data: &mut [T]) {
    sort_run(data);
}

/// The length of the sorted runs (and of the buckets) the parallel drivers use for `len`
/// elements over `threads` threads or workers: two runs per thread, at least 4096 elements.
///
/// Few runs, because each bucket merges one piece of every run in `log2(runs)` passes: with
/// 16 runs the merge step cost as much CPU as the local sorts. Buckets are cut by exact rank,
/// so they are balanced whatever their number; two per thread leave some slack for a slow one.
pub(crate) fn run_len(len: usize, threads: usize) -> usize {
    len.div_ceil(2 * threads.max(1)).max(4096)
}

/// [`sort`] in rayon's current pool, through the three steps of the sample sort (see the
/// module documentation); `scratch` space of `data.len()` elements is allocated. The result is
/// identical to [`sort`]'s.
///
/// ```
/// let mut v: Vec<u64> = (0..100_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
/// let mut expected = v.clone();
/// expected.sort_unstable();
/// shmpool_kernels::sort_rayon(&mut v);
/// assert_eq!(v, expected);
/// ```
pub fn sort_rayon<T: SortKey>(data: &mut [T]) {
    use rayon::prelude::*;
    let run = run_len(data.len(), rayon::current_num_threads());
    if data.len() <= run {
        sort(data);
        return;
    }
    data.par_chunks_mut(run).for_each(sort_run);
    let mut scratch = vec![T::zeroed(); data.len()];
    let runs = &*data;
    scratch
        .par_chunks_mut(run)
        .enumerate()
        .for_each(|(i, bucket)| merge_ranks(runs, run, i * run, bucket));
    data.par_chunks_mut(run).zip(scratch.par_chunks(run)).for_each(|(d, s)| d.copy_from_slice(s));
}
