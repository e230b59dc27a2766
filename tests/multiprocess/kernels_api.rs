//! Kernel jobs (`Pool::job`): parameters and chunk context, many arrays, stages (fused, and
//! halo stages after a barrier), reductions, shapes, the inline path, and every bad input as a
//! typed error; failures (a panic in a later stage, a killed worker) as for the older operations.

use std::time::Duration;

use shmpool::pool::Chunk;
use shmpool::{Error, Pool, SharedArray, StartMethod};

use crate::harness::{Tests, register};
use crate::soundness::{assert_inherited_refused, one_forked_worker};

/// Every start method: kernel stages travel as code offsets under the forkserver and spawn.
const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

pub fn tests() -> Tests {
    register! {
        params_and_context_reach_every_chunk in METHODS,
        six_arrays_of_three_types,
        mismatched_lengths_and_shapes_are_typed_errors,
        an_element_type_mismatch_is_a_job_error,
        the_same_array_as_input_and_output_is_refused,
        too_large_params_too_many_arrays_and_stages_are_refused,
        zero_length_arrays_run_nothing,
        a_chunk_size_that_splits_rows_is_refused,
        chunks_of_a_shaped_job_are_whole_rows,
        a_halo_larger_than_the_array_is_refused,
        a_fused_pipeline_equals_stage_by_stage,
        a_halo_stage_sees_the_previous_stages_complete_output,
        writing_an_output_read_with_a_halo_in_the_same_group_fails,
        an_output_taken_twice_fails,
        inline_and_pooled_runs_give_identical_results,
        a_panic_in_stage_two_is_a_typed_error_and_later_stages_do_not_run,
        a_killed_worker_mid_job_is_reported_and_the_pool_recovers,
        a_closed_pool_takes_no_job_not_even_inline,
        run_partials_gives_every_chunks_partial_in_order,
        a_panic_whose_payload_panics_when_dropped_is_still_a_typed_error,
        a_partial_of_another_size_is_a_job_error,
        zero_sized_elements_and_the_full_limits_run,
        a_killed_worker_in_the_first_group_stops_the_job_before_the_next,
        a_failed_halo_read_leaves_no_access_behind_for_the_next_job,
        the_work_hint_chooses_between_inline_and_the_workers,
        an_inline_job_sees_nothing_of_the_inline_job_before,
        inline_and_pooled_jobs_check_element_types_alike,
        the_older_operations_run_small_inputs_in_the_caller_and_large_ones_in_workers,
        the_older_operations_give_the_same_bits_and_errors_inline_and_pooled,
        a_job_after_a_longer_one_runs_only_its_own_stages,
        the_quick_inline_path_refuses_what_the_full_checks_refuse,
        named_arrays_run_inline_and_in_the_workers,
        an_inherited_array_is_refused_by_a_small_job_as_input_or_output,
        arrays_of_different_widths_chunk_together_by_items,
        items_that_do_not_divide_an_array_are_typed_errors,
        a_job_inside_an_inline_kernel_has_its_own_buffers_and_access_mask,
        every_view_of_one_segment_is_an_alias,
        a_dropped_or_panicked_builder_leaves_nothing_for_the_next_job,
        the_quick_path_declines_what_only_the_full_checks_see,
        items_of_zero_width_halos_and_prime_counts_chunk_exactly,
        an_inherited_array_is_refused_pooled_and_in_a_job_of_items,
        two_threads_with_two_pools_run_inline_jobs_over_one_input,
    }
}

/// A pool of two workers whose kernel jobs always go to the workers.
fn pooled(m: StartMethod) -> Pool {
    let pool = Pool::builder().workers(2).start_method(m).inline_threshold(0).build().unwrap();
    assert_eq!(pool.inline_threshold(), 0);
    pool
}

/// Closes and joins the pool (every worker exits cleanly), then ends the forkserver.
fn finish(mut pool: Pool) {
    let m = pool.start_method();
    pool.close();
    assert!(pool.join_timeout(Duration::from_secs(10)).unwrap(), "a worker did not exit");
    drop(pool);
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().unwrap();
    }
}

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Affine {
    k: f64,
    b: f64,
    seed: u64,
    _pad: u64,
}

fn affine_of_index(c: &Chunk<Affine>) {
    let p = c.params();
    let start = c.range().start;
    for (k, y) in c.output::<f64>(0).iter_mut().enumerate() {
        *y = (start + k) as f64 * p.k + p.b;
    }
    // One word per chunk: a seed made from the chunk's index.
    let seeds = c.output::<u64>(1);
    seeds.fill(p.seed ^ c.index() as u64);
}

fn params_and_context_reach_every_chunk(m: StartMethod) {
    let mut pool = pooled(m);
    let n = 10_007;
    let mut out = SharedArray::<f64>::zeroed(n).unwrap();
    let mut seeds = SharedArray::<u64>::zeroed(n).unwrap();
    let p = Affine { k: 3.0, b: -1.0, seed: 0xabcd_0000, _pad: 0 };
    pool.job(p)
        .output(&mut out)
        .unwrap()
        .output(&mut seeds)
        .unwrap()
        .chunk_size(100)
        .stage(affine_of_index)
        .run()
        .unwrap();
    for i in 0..n {
        assert_eq!(out[i], i as f64 * 3.0 - 1.0, "element {i}");
        assert_eq!(seeds[i], 0xabcd_0000 ^ (i / 100) as u64, "element {i}");
    }
    finish(pool);
}

fn six(c: &Chunk<u32>) {
    let (a, b, x) = (c.input::<f64>(0), c.input::<u32>(1), c.input::<u8>(2));
    let (s, t, u) = (c.output::<f64>(0), c.output::<u64>(1), c.output::<u8>(2));
    let k = *c.params();
    for i in 0..a.len() {
        s[i] = a[i] + f64::from(b[i]);
        t[i] = u64::from(b[i]) * u64::from(k);
        u[i] = x[i].wrapping_add(1);
    }
}

fn six_arrays_of_three_types() {
    let mut pool = pooled(StartMethod::ForkServer);
    let n = 50_000;
    let a = SharedArray::<f64>::from_fn(n, |i| i as f64 * 0.5).unwrap();
    let b = SharedArray::<u32>::from_fn(n, |i| i as u32).unwrap();
    let x = SharedArray::<u8>::from_fn(n, |i| i as u8).unwrap();
    let mut s = SharedArray::<f64>::zeroed(n).unwrap();
    let mut t = SharedArray::<u64>::zeroed(n).unwrap();
    let mut u = SharedArray::<u8>::zeroed(n).unwrap();
    pool.job(7u32)
        .input(&a)
        .unwrap()
        .input(&b)
        .unwrap()
        .input(&x)
        .unwrap()
        .output(&mut s)
        .unwrap()
        .output(&mut t)
        .unwrap()
        .output(&mut u)
        .unwrap()
        .chunk_size(4096)
        .stage(six)
        .run()
        .unwrap();
    for i in (0..n).step_by(97).chain([n - 1]) {
        assert_eq!(s[i], i as f64 * 0.5 + i as f64);
        assert_eq!(t[i], i as u64 * 7);
        assert_eq!(u[i], (i as u8).wrapping_add(1));
    }
    finish(pool);
}

fn copy0(c: &Chunk<()>) {
    c.output::<f64>(0).copy_from_slice(c.input::<f64>(0));
}

fn mismatched_lengths_and_shapes_are_typed_errors() {
    let mut pool = pooled(StartMethod::ForkServer);
    let a = SharedArray::<f64>::zeroed(100).unwrap();
    let mut b = SharedArray::<f64>::zeroed(99).unwrap();
    let e = pool.job(()).input(&a).unwrap().output(&mut b).unwrap().stage(copy0).run();
    match e {
        Err(Error::ShapeMismatch { array, found, expected }) => {
            assert_eq!((array.as_str(), found, expected), ("output 0", vec![99], vec![100]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    // Same length, other shape.
    let c = SharedArray::<f64>::zeroed_shape(&[10, 10]).unwrap();
    let mut d = SharedArray::<f64>::zeroed_shape(&[20, 5]).unwrap();
    let e = pool.job(()).input(&c).unwrap().output(&mut d).unwrap().stage(copy0).run();
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
    // A 1-D array of the same length goes with a shaped one.
    let mut flat = SharedArray::<f64>::zeroed(100).unwrap();
    pool.job(()).input(&c).unwrap().output(&mut flat).unwrap().stage(copy0).run().unwrap();
    // An explicit shape that does not hold the arrays' elements.
    let e = pool.job(()).input(&a).unwrap().shape(&[3, 3]).stage(|_| {}).run();
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
    assert_eq!(b[0], 0.0);
    finish(pool);
}

fn an_element_type_mismatch_is_a_job_error() {
    fn as_u64(c: &Chunk<()>) {
        c.output::<u64>(0).fill(1);
    }
    fn as_f32(c: &Chunk<()>) {
        c.output::<f32>(0).fill(1.0);
    }
    let mut pool = pooled(StartMethod::ForkServer);
    let mut a = SharedArray::<f64>::zeroed(1000).unwrap();
    for k in [as_u64 as fn(&Chunk<()>), as_f32] {
        let e = pool.job(()).output(&mut a).unwrap().stage(k).run();
        match e {
            Err(Error::KernelPanicked { message, .. }) => {
                assert!(message.contains("the array holds <f8"), "{message}");
            }
            other => panic!("expected KernelPanicked, got {other:?}"),
        }
    }
    assert!(a.iter().all(|&x| x == 0.0), "nothing was written");
    finish(pool);
}

fn the_same_array_as_input_and_output_is_refused() {
    let mut pool = pooled(StartMethod::ForkServer);
    let opts = shmpool::ShmOptions::new().generated_name();
    let a = SharedArray::<f64>::zeroed_with(100, &opts).unwrap();
    // SAFETY: nothing writes through either view: the job is refused before it runs.
    let mut again = unsafe { SharedArray::<f64>::open(a.name().unwrap()) }.unwrap();
    let e = pool.job(()).input(&a).unwrap().output(&mut again).map(drop);
    match e {
        Err(Error::ArrayAliased { first, second }) => {
            assert_eq!((first.as_str(), second.as_str()), ("input 0", "output 0"));
        }
        other => panic!("expected ArrayAliased, got {other:?}"),
    }
    // Twice as an output, through two handles of one segment.
    let mut b = SharedArray::<f64>::zeroed_with(100, &opts).unwrap();
    // SAFETY: as above.
    let mut b2 = unsafe { SharedArray::<f64>::open(b.name().unwrap()) }.unwrap();
    let e = pool.job(()).output(&mut b).unwrap().output(&mut b2).map(drop);
    assert!(matches!(e, Err(Error::ArrayAliased { .. })), "{e:?}");
    drop((again, b2, a, b));
    finish(pool);
}

fn too_large_params_too_many_arrays_and_stages_are_refused() {
    let mut pool = pooled(StartMethod::ForkServer);
    let a = SharedArray::<u8>::zeroed(10).unwrap();
    // 8 KiB of parameters.
    let big = [[0u64; 32]; 32];
    let e = pool.job(big).input(&a).unwrap().stage(|_| {}).run();
    match e {
        Err(Error::ParamsTooLarge { bytes, max }) => assert_eq!((bytes, max), (8192, 4096)),
        other => panic!("expected ParamsTooLarge, got {other:?}"),
    }
    let mut job = pool.job(());
    for _ in 0..16 {
        job = job.input(&a).unwrap();
    }
    match job.input(&a).map(drop) {
        Err(Error::TooManyArrays { count, max }) => assert_eq!((count, max), (17, 16)),
        other => panic!("expected TooManyArrays, got {other:?}"),
    }
    let mut job = pool.job(()).input(&a).unwrap();
    for _ in 0..17 {
        job = job.stage(|_| {});
    }
    assert!(matches!(job.run(), Err(Error::TooManyStages { count: 17, max: 16 })));
    let e = pool.job(()).input(&a).unwrap().run();
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "no stage: {e:?}");
    finish(pool);
}

fn zero_length_arrays_run_nothing() {
    fn boom(_: &Chunk<()>) {
        panic!("a kernel ran on an empty job");
    }
    let mut pool = pooled(StartMethod::ForkServer);
    let a = SharedArray::<f64>::zeroed(0).unwrap();
    let mut b = SharedArray::<f64>::zeroed(0).unwrap();
    pool.job(()).input(&a).unwrap().output(&mut b).unwrap().stage(boom).run().unwrap();
    let r = pool.job(()).input(&a).unwrap().stage(boom).run_reduce(42u64, |x, y| x + y).unwrap();
    assert_eq!(r, 42);
    let c = SharedArray::<f64>::zeroed_shape(&[0, 5]).unwrap();
    pool.job(()).input(&c).unwrap().stage(boom).run().unwrap();
    pool.job(()).shape(&[5, 0]).stage(boom).run().unwrap();
    finish(pool);
}

fn a_chunk_size_that_splits_rows_is_refused() {
    let mut pool = pooled(StartMethod::ForkServer);
    let mut img = SharedArray::<u8>::zeroed_shape(&[4, 6]).unwrap();
    let e = pool.job(()).output(&mut img).unwrap().chunk_size(4).stage(|_| {}).run();
    match e {
        Err(Error::ChunkSplitsRows { chunk_size, row_len }) => {
            assert_eq!((chunk_size, row_len), (4, 6))
        }
        other => panic!("expected ChunkSplitsRows, got {other:?}"),
    }
    finish(pool);
}

/// Each element gets its chunk's row range, to check no chunk split a row.
fn row_marks(c: &Chunk<()>) {
    let (rows, w) = (c.rows(), c.row_len());
    assert_eq!(c.shape(), &[37, 5, 3]);
    assert_eq!(w, 15);
    assert_eq!(rows.len() * w, c.len());
    assert_eq!(c.range().start, rows.start * w);
    let out = c.output::<u32>(0);
    for (k, r) in rows.clone().enumerate() {
        out[k * w..(k + 1) * w].fill((r as u32) << 16 | c.index() as u32);
    }
}

fn chunks_of_a_shaped_job_are_whole_rows() {
    // A pool-wide chunk size of 100 elements is rounded up to whole rows (of 15).
    let mut pool = Pool::builder().workers(2).chunk_size(100).inline_threshold(0).build().unwrap();
    let mut a = SharedArray::<u32>::zeroed_shape(&[37, 5, 3]).unwrap();
    pool.job(()).output(&mut a).unwrap().stage(row_marks).run().unwrap();
    for r in 0..37 {
        let row = &a[r * 15..(r + 1) * 15];
        assert!(row.iter().all(|&x| x == row[0]), "row {r} was split: {row:?}");
        assert_eq!(row[0] >> 16, r as u32);
        assert_eq!(row[0] & 0xffff, (r / 7) as u32, "105 elements = 7 rows per chunk");
    }
    finish(pool);
}

fn a_halo_larger_than_the_array_is_refused() {
    let mut pool = pooled(StartMethod::ForkServer);
    let a = SharedArray::<f64>::zeroed_shape(&[4, 8]).unwrap();
    let e = pool.job(()).input(&a).unwrap().stage(|_| {}).stage_halo(5, |_| {}).run();
    match e {
        Err(Error::HaloTooLarge { stage, radius, rows }) => {
            assert_eq!((stage, radius, rows), (1, 5, 4))
        }
        other => panic!("expected HaloTooLarge, got {other:?}"),
    }
    // A halo of the whole array is fine.
    pool.job(()).input(&a).unwrap().stage_halo(4, |_| {}).run().unwrap();
    finish(pool);
}

fn square_in(c: &Chunk<f64>) {
    let (x, y) = (c.input::<f64>(0), c.output::<f64>(0));
    for i in 0..x.len() {
        y[i] = x[i] * x[i];
    }
}
fn add_k(c: &Chunk<f64>) {
    let k = *c.params();
    c.output::<f64>(0).iter_mut().for_each(|y| *y += k);
}
fn sqrt_sum(c: &Chunk<f64>) {
    let y = c.output::<f64>(0);
    y.iter_mut().for_each(|v| *v = v.sqrt());
    c.set_partial(y.iter().sum::<f64>());
}

fn a_fused_pipeline_equals_stage_by_stage() {
    let mut pool = pooled(StartMethod::ForkServer);
    let n = 300_001;
    let a = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64 * 0.25).unwrap();
    let mut fused = SharedArray::<f64>::zeroed(n).unwrap();
    let total = pool
        .job(1.5f64)
        .input(&a)
        .unwrap()
        .output(&mut fused)
        .unwrap()
        .chunk_size(10_000)
        .stage(square_in)
        .stage(add_k)
        .stage(sqrt_sum)
        .run_reduce(0.0f64, |x, y| x + y)
        .unwrap();
    let mut apart = SharedArray::<f64>::zeroed(n).unwrap();
    let run_one = |pool: &mut Pool, out: &mut SharedArray<f64>, k: fn(&Chunk<f64>)| {
        pool.job(1.5f64)
            .input(&a)
            .unwrap()
            .output(out)
            .unwrap()
            .chunk_size(10_000)
            .stage(k)
            .run_reduce(0.0f64, |x, y| x + y)
            .unwrap()
    };
    run_one(&mut pool, &mut apart, square_in);
    run_one(&mut pool, &mut apart, add_k);
    let total_apart = run_one(&mut pool, &mut apart, sqrt_sum);
    assert_eq!(fused.as_slice(), apart.as_slice());
    assert_eq!(total.to_bits(), total_apart.to_bits(), "same chunks, same order: same bits");
    let expect: f64 = (0..n).map(|i| (((i % 1000) as f64 * 0.25).powi(2) + 1.5).sqrt()).sum();
    assert!((total - expect).abs() < 1e-6 * expect, "{total} vs {expect}");
    finish(pool);
}

fn write_index(c: &Chunk<()>) {
    let s = c.range().start;
    c.output::<u64>(0).iter_mut().enumerate().for_each(|(k, x)| *x = (s + k) as u64 + 1);
}
/// `out1[i] = out0[i - 1] + out0[i + 1]` (0 past the ends), from the previous stage's output.
fn neighbours(c: &Chunk<()>) {
    let (win, off) = c.output_halo::<u64>(0);
    let out = c.output::<u64>(1);
    for (k, y) in out.iter_mut().enumerate() {
        let i = off + k;
        let left = if i > 0 { win[i - 1] } else { 0 };
        *y = left + win.get(i + 1).copied().unwrap_or(0);
    }
}

fn a_halo_stage_sees_the_previous_stages_complete_output() {
    let mut pool = pooled(StartMethod::ForkServer);
    let n = 100_000;
    for _ in 0..3 {
        let mut a = SharedArray::<u64>::zeroed(n).unwrap();
        let mut b = SharedArray::<u64>::zeroed(n).unwrap();
        pool.job(())
            .output(&mut a)
            .unwrap()
            .output(&mut b)
            .unwrap()
            .chunk_size(997)
            .stage(write_index)
            .stage_halo(1, neighbours)
            .run()
            .unwrap();
        for i in 0..n {
            let left = if i > 0 { i as u64 } else { 0 };
            let right = if i + 1 < n { i as u64 + 2 } else { 0 };
            assert_eq!(b[i], left + right, "element {i}");
        }
    }
    finish(pool);
}

fn writing_an_output_read_with_a_halo_in_the_same_group_fails() {
    fn reads_and_writes(c: &Chunk<()>) {
        if c.index().is_multiple_of(2) {
            let _ = c.output_halo::<u64>(0);
        } else {
            c.output::<u64>(0).fill(9);
        }
    }
    fn reads_then_writes(c: &Chunk<()>) {
        let _ = c.output_halo::<u64>(0);
        c.output::<u64>(0).fill(9);
    }
    let mut pool = pooled(StartMethod::ForkServer);
    let mut a = SharedArray::<u64>::zeroed(10_000).unwrap();
    for k in [reads_and_writes as fn(&Chunk<()>), reads_then_writes] {
        let e = pool.job(()).output(&mut a).unwrap().chunk_size(500).stage_halo(1, k).run();
        match e {
            Err(Error::KernelPanicked { message, .. }) => {
                assert!(message.contains("halo"), "{message}")
            }
            other => panic!("expected KernelPanicked, got {other:?}"),
        }
    }
    finish(pool);
}

fn an_output_taken_twice_fails() {
    fn twice(c: &Chunk<()>) {
        let a = c.output::<u64>(0);
        let b = c.output::<u64>(0);
        a[0] = b[0];
    }
    fn once_per_stage(c: &Chunk<()>) {
        c.output::<u64>(0)[0] += 1;
    }
    let mut pool = pooled(StartMethod::ForkServer);
    let mut a = SharedArray::<u64>::zeroed(1000).unwrap();
    let e = pool.job(()).output(&mut a).unwrap().stage(twice).run();
    match e {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("twice"), "{message}")
        }
        other => panic!("expected KernelPanicked, got {other:?}"),
    }
    // Once in each of two stages is fine.
    let mut job = pool.job(()).output(&mut a).unwrap().chunk_size(1000);
    job = job.stage(once_per_stage).stage(once_per_stage);
    job.run().unwrap();
    assert_eq!(a[0], 2);
    finish(pool);
}

fn mix(c: &Chunk<u64>) {
    let seed = *c.params() ^ c.index() as u64;
    let x = c.input::<f64>(0);
    let y = c.output::<f64>(0);
    let mut s = seed;
    for i in 0..x.len() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        y[i] = x[i] * 1.0001 + (s >> 40) as f64 * 1e-9;
    }
}
fn blur_sum(c: &Chunk<u64>) {
    let (win, off) = c.output_halo::<f64>(0);
    let z = c.output::<f64>(1);
    for (k, v) in z.iter_mut().enumerate() {
        let i = off + k;
        *v = win[i.saturating_sub(2)..(i + 3).min(win.len())].iter().sum();
    }
    c.set_partial(z.iter().sum::<f64>());
}

/// One run of the mix-then-blur job over `a`: its total's bits and both outputs. `inline`
/// forces the choice; `None` leaves it to the pool's threshold.
fn mix_blur_run(
    pool: &mut Pool,
    a: &SharedArray<f64>,
    inline: Option<bool>,
) -> (u64, Vec<f64>, Vec<f64>) {
    let mut y = SharedArray::<f64>::zeroed(a.len()).unwrap();
    let mut z = SharedArray::<f64>::zeroed(a.len()).unwrap();
    let mut job = pool
        .job(77u64)
        .input(a)
        .unwrap()
        .output(&mut y)
        .unwrap()
        .output(&mut z)
        .unwrap()
        .chunk_size(5000);
    if let Some(inline) = inline {
        job = job.inline(inline);
    }
    let total = job.stage(mix).stage_halo(2, blur_sum).run_reduce(0.0f64, |x, y| x + y).unwrap();
    (total.to_bits(), y.to_vec(), z.to_vec())
}

fn inline_and_pooled_runs_give_identical_results() {
    let mut pool = pooled(StartMethod::ForkServer);
    let n = 123_457;
    let a = SharedArray::<f64>::from_fn(n, |i| (i as f64).sin()).unwrap();
    let runs: Vec<_> =
        [true, false].into_iter().map(|inline| mix_blur_run(&mut pool, &a, Some(inline))).collect();
    assert!(runs[0] == runs[1], "the inline and pooled runs differ");
    // And below the pool's threshold, the default goes inline with the same result.
    pool.set_inline_threshold(usize::MAX);
    let (total, _, z) = mix_blur_run(&mut pool, &a, None);
    assert_eq!(total, runs[0].0);
    assert_eq!(z, runs[0].2);
    finish(pool);
}

fn mark_stage(c: &Chunk<u64>) {
    c.output::<u64>(0).iter_mut().for_each(|x| *x += 1);
}
fn panics_on_chunk_3(c: &Chunk<u64>) {
    if c.index() == 3 {
        panic!("stage {} failed on chunk 3", c.stage());
    }
    mark_stage(c);
}

fn a_panic_in_stage_two_is_a_typed_error_and_later_stages_do_not_run() {
    for inline in [false, true] {
        let mut pool = pooled(StartMethod::ForkServer);
        let mut a = SharedArray::<u64>::zeroed(1000).unwrap();
        let e = pool
            .job(0u64)
            .output(&mut a)
            .unwrap()
            .chunk_size(100)
            .inline(inline)
            .stage(mark_stage)
            .stage(panics_on_chunk_3)
            .stage_halo(1, mark_stage)
            .run();
        match e {
            Err(Error::KernelPanicked { chunk, message, .. }) => {
                assert_eq!((chunk, message.as_str()), (3, "stage 1 failed on chunk 3"));
            }
            other => panic!("expected KernelPanicked, got {other:?}"),
        }
        // Stages 0 and 1 ran on every other chunk; stage 2 (after the barrier) on none.
        for i in 0..1000 {
            let expect = if (300..400).contains(&i) { 1 } else { 2 };
            assert_eq!(a[i], expect, "element {i} (inline: {inline})");
        }
        // The pool still works.
        pool.job(0u64).output(&mut a).unwrap().stage(mark_stage).run().unwrap();
        assert_eq!(a[0], 3);
        finish(pool);
    }
}

fn die_on_chunk_5(c: &Chunk<u32>) {
    if c.index() == 5 && *c.params() == 1 {
        // SAFETY: raise has no memory effects; it ends this worker process.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    c.output::<u32>(0).iter_mut().for_each(|x| *x += 1);
}

fn a_killed_worker_mid_job_is_reported_and_the_pool_recovers() {
    let mut pool = pooled(StartMethod::ForkServer);
    let before = pool.worker_pids();
    let mut a = SharedArray::<u32>::zeroed(1000).unwrap();
    let e = pool.job(1u32).output(&mut a).unwrap().chunk_size(100).stage(die_on_chunk_5).run();
    match e {
        Err(Error::WorkerDied { chunk, signal, .. }) => {
            assert_eq!((chunk, signal), (5, Some(libc::SIGKILL)))
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert!((0..1000).filter(|i| !(500..600).contains(i)).all(|i| a[i] == 1));
    // The dead worker was replaced, and the next job runs everywhere.
    pool.job(0u32).output(&mut a).unwrap().chunk_size(100).stage(die_on_chunk_5).run().unwrap();
    assert_ne!(pool.worker_pids(), before);
    assert!((500..600).all(|i| a[i] == 1) && a[0] == 2);
    finish(pool);
}

fn a_closed_pool_takes_no_job_not_even_inline() {
    let mut pool = Pool::new(1).unwrap();
    let mut a = SharedArray::<u8>::zeroed(16).unwrap();
    pool.close();
    for inline in [true, false] {
        let e = pool
            .job(())
            .output(&mut a)
            .unwrap()
            .inline(inline)
            .stage(|c| c.output::<u8>(0).fill(1))
            .run();
        assert!(matches!(e, Err(Error::PoolNotRunning { .. })), "inline {inline}: {e:?}");
    }
    assert!(a.iter().all(|&x| x == 0));
    assert!(pool.join_timeout(Duration::from_secs(10)).unwrap(), "a worker did not exit");
    drop(pool);
    shmpool::process::shutdown_forkserver().unwrap();
}

/// Chunk `i` of 10 elements sets `i * 1000 + (sum of its elements)`, except every 7th chunk,
/// which sets none.
fn partial_of_chunk(c: &Chunk<()>) {
    if c.index() % 7 != 3 {
        let sum: u64 = c.input::<u64>(0).iter().sum();
        c.set_partial(c.index() as u64 * 1000 + sum);
    }
}

fn run_partials_gives_every_chunks_partial_in_order() {
    let mut pool = pooled(StartMethod::Fork);
    // 600 chunks fit the control block's scratch area, 9000 do not (an array of partials):
    // both well past the 256 chunks a fixed-size result once allowed.
    for n in [6_000usize, 90_000] {
        let a = SharedArray::<u64>::from_fn(n, |i| i as u64).unwrap();
        let want: Vec<u64> = (0..n / 10)
            .map(|i| {
                let sum: u64 = (i * 10..i * 10 + 10).map(|x| x as u64).sum();
                if i % 7 == 3 { 0 } else { i as u64 * 1000 + sum }
            })
            .collect();
        for inline in [false, true] {
            let got = pool
                .job(())
                .input(&a)
                .unwrap()
                .chunk_size(10)
                .inline(inline)
                .stage(partial_of_chunk)
                .run_partials::<u64>()
                .unwrap();
            assert_eq!(got.len(), n / 10, "n {n} inline {inline}");
            assert!(got == want, "n {n} inline {inline}: partials differ");
        }
    }
    // An empty job has no chunk and no partial.
    let empty = SharedArray::<u64>::zeroed(0).unwrap();
    let got =
        pool.job(()).input(&empty).unwrap().stage(partial_of_chunk).run_partials::<u64>().unwrap();
    assert!(got.is_empty());
    finish(pool);
}

/// A panic payload whose `Drop` panics again.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics too");
    }
}

fn throws_a_bomb(c: &Chunk<()>) {
    if c.index() == 2 {
        std::panic::panic_any(Bomb);
    }
    c.output::<u32>(0).fill(1);
}

fn a_panic_whose_payload_panics_when_dropped_is_still_a_typed_error() {
    let mut pool = pooled(StartMethod::Fork);
    let before = pool.worker_pids();
    let mut a = SharedArray::<u32>::zeroed(100).unwrap();
    for inline in [true, false] {
        let e = pool
            .job(())
            .output(&mut a)
            .unwrap()
            .chunk_size(10)
            .inline(inline)
            .stage(throws_a_bomb)
            .run();
        match e {
            Err(Error::KernelPanicked { chunk, .. }) => assert_eq!(chunk, 2, "inline {inline}"),
            other => panic!("inline {inline}: expected KernelPanicked, got {other:?}"),
        }
    }
    // The worker that caught it lives on.
    assert_eq!(pool.worker_pids(), before);
    finish(pool);
}

fn sets_a_u32_partial(c: &Chunk<()>) {
    c.set_partial(7u32);
}

fn a_partial_of_another_size_is_a_job_error() {
    let mut pool = pooled(StartMethod::Fork);
    let a = SharedArray::<u8>::zeroed(100).unwrap();
    for inline in [true, false] {
        let job = pool.job(()).input(&a).unwrap().inline(inline).stage(sets_a_u32_partial);
        let e = job.run_partials::<u64>();
        match e {
            Err(Error::KernelPanicked { message, .. }) => {
                assert!(message.contains("4 bytes"), "inline {inline}: {message}")
            }
            other => panic!("inline {inline}: expected KernelPanicked, got {other:?}"),
        }
    }
    finish(pool);
}

/// Chunk `index` of a job of zero-sized elements: the output's length is the chunk's.
fn counts_unit_elements(c: &Chunk<()>) {
    let out = c.output::<()>(0);
    let (win, off) = c.input_halo::<()>(0);
    assert!(off <= win.len() && win.len() >= out.len());
    c.set_partial(out.len() as u64);
}

/// 16 outputs, a 4096-byte parameter block: output `j` gets `params[j]` plus the element index.
fn writes_sixteen(c: &Chunk<[u64; 512]>) {
    let p = c.params();
    let start = c.range().start as u64;
    for (j, &base) in p.iter().enumerate().take(16) {
        for (k, y) in c.output::<u64>(j).iter_mut().enumerate() {
            *y = base + start + k as u64;
        }
    }
    c.set_partial(p[511]);
}

fn zero_sized_elements_and_the_full_limits_run() {
    let mut pool = pooled(StartMethod::Fork);
    let a = SharedArray::<()>::zeroed(1000).unwrap();
    let mut b = SharedArray::<()>::zeroed(1000).unwrap();
    for inline in [false, true] {
        let got = pool
            .job(())
            .input(&a)
            .unwrap()
            .output(&mut b)
            .unwrap()
            .chunk_size(300)
            .inline(inline)
            .stage_halo(2, counts_unit_elements)
            .run_partials::<u64>()
            .unwrap();
        assert_eq!(got, [300, 300, 300, 100], "inline {inline}");
    }
    let mut outs: Vec<SharedArray<u64>> =
        (0..16).map(|_| SharedArray::<u64>::zeroed(100).unwrap()).collect();
    let mut params = [0u64; 512];
    for (j, p) in params.iter_mut().enumerate() {
        *p = j as u64 * 1000;
    }
    for inline in [false, true] {
        let mut job = pool.job(params).chunk_size(7).inline(inline);
        for o in outs.iter_mut() {
            job = job.output(o).unwrap();
        }
        let got = job.stage(writes_sixteen).run_partials::<u64>().unwrap();
        assert_eq!(got, vec![511_000; 15], "inline {inline}");
        for (j, o) in outs.iter_mut().enumerate() {
            assert!(o.iter().enumerate().all(|(i, &x)| x == j as u64 * 1000 + i as u64));
            o.fill(0);
        }
    }
    finish(pool);
}

/// Group 1: output 0 += 1 (chunk 5 kills its worker when the parameter is 1), partial = index.
fn add_one_or_die(c: &Chunk<u32>) {
    die_on_chunk_5(c);
    c.set_partial(c.index() as u64);
}

/// Group 2 (halo): output 1 = the window's sum of output 0.
fn halo_sum(c: &Chunk<u32>) {
    let (win, off) = c.output_halo::<u32>(0);
    for (k, y) in c.output::<u32>(1).iter_mut().enumerate() {
        let i = off + k;
        *y = win[i.saturating_sub(1)..(i + 2).min(win.len())].iter().sum();
    }
}

fn a_killed_worker_in_the_first_group_stops_the_job_before_the_next() {
    let mut pool = pooled(StartMethod::Fork);
    let mut a = SharedArray::<u32>::zeroed(1000).unwrap();
    let mut b = SharedArray::<u32>::zeroed(1000).unwrap();
    let e = pool
        .job(1u32)
        .output(&mut a)
        .unwrap()
        .output(&mut b)
        .unwrap()
        .chunk_size(100)
        .stage(add_one_or_die)
        .stage_halo(1, halo_sum)
        .run_partials::<u64>();
    match e {
        Err(Error::WorkerDied { chunk, signal, .. }) => {
            assert_eq!((chunk, signal), (5, Some(libc::SIGKILL)))
        }
        other => panic!("expected WorkerDied and no partials, got {other:?}"),
    }
    assert!(b.iter().all(|&x| x == 0), "the halo group ran after a failed group");
    // The same two groups run whole on the replaced worker.
    let got = pool
        .job(0u32)
        .output(&mut a)
        .unwrap()
        .output(&mut b)
        .unwrap()
        .chunk_size(100)
        .stage(add_one_or_die)
        .stage_halo(1, halo_sum)
        .run_partials::<u64>()
        .unwrap();
    assert_eq!(got, (0..10).collect::<Vec<u64>>());
    assert!((1..999).all(|i| b[i] == a[i - 1] + a[i] + a[i + 1]));
    finish(pool);
}

/// A halo read of output 0, failing on chunk 3.
fn halo_read_then_fail(c: &Chunk<()>) {
    let _ = c.output_halo::<u8>(0);
    assert!(c.index() != 3, "chunk 3 fails on purpose");
}

fn a_failed_halo_read_leaves_no_access_behind_for_the_next_job() {
    let mut pool = pooled(StartMethod::Fork);
    let mut a = SharedArray::<u8>::zeroed(100).unwrap();
    for inline in [false, true] {
        let e = pool
            .job(())
            .output(&mut a)
            .unwrap()
            .chunk_size(10)
            .inline(inline)
            .stage_halo(1, halo_read_then_fail)
            .run();
        assert!(matches!(e, Err(Error::KernelPanicked { chunk: 3, .. })), "{e:?}");
        // The next job writes the output the failed one read with a halo.
        pool.job(())
            .output(&mut a)
            .unwrap()
            .chunk_size(10)
            .inline(inline)
            .stage(|c| c.output::<u8>(0).fill(9))
            .run()
            .unwrap();
        assert!(a.iter().all(|&x| x == 9));
        a.fill(0);
    }
    finish(pool);
}

/// Every element: the pid of the process that ran the chunk.
fn write_pid(c: &Chunk<()>) {
    c.output::<u32>(0).fill(std::process::id());
}

fn the_work_hint_chooses_between_inline_and_the_workers() {
    let mut pool = Pool::new(2).unwrap();
    assert!(pool.inline_threshold() > 4096, "the default threshold runs 4 KiB inline");
    let me = std::process::id();
    let mut a = SharedArray::<u32>::zeroed(1000).unwrap();
    // (hint, explicit inline, expect inline): 4 KiB of memory-bound work runs in the caller; a
    // millisecond per element (1 s in all) goes to the workers; a hint that is no number of
    // nanoseconds counts as none; `.inline(..)` overrides the hint both ways.
    let cases: [(f64, Option<bool>, bool); 7] = [
        (0.0, None, true),
        (1e6, None, false),
        (f64::INFINITY, None, false),
        (-5.0, None, true),
        (f64::NAN, None, true),
        (1e6, Some(true), true),
        (0.0, Some(false), false),
    ];
    for (hint, inline, expect_inline) in cases {
        a.fill(0);
        let mut job = pool.job(()).output(&mut a).unwrap().cost_per_element(hint);
        if let Some(i) = inline {
            job = job.inline(i);
        }
        job.stage(write_pid).run().unwrap();
        let ran_here = a.iter().all(|&p| p == me);
        let ran_there = a.iter().all(|&p| p != me && p != 0);
        assert!(ran_here || ran_there, "hint {hint}: some elements were not written");
        assert_eq!(ran_here, expect_inline, "hint {hint}, inline {inline:?}");
    }
    finish(pool);
}

fn second_input(c: &Chunk<()>) {
    let _ = c.input::<u64>(1);
}

fn partial_without_reduce(c: &Chunk<()>) {
    c.set_partial(1u64);
}

fn add_inputs(c: &Chunk<()>) {
    let (x, y, z) = (c.input::<u64>(0), c.input::<u64>(1), c.output::<u64>(0));
    for i in 0..z.len() {
        z[i] = x[i] + y[i];
    }
    c.set_partial(z.iter().sum::<u64>());
}

/// An inline job reuses the caller's buffers of the one before (`job_builder.rs`, `Bufs`): a
/// job of fewer arrays, or without partials, must not reach the arrays or partials of the job
/// before through them.
fn an_inline_job_sees_nothing_of_the_inline_job_before() {
    let mut pool = Pool::new(1).unwrap();
    let x = SharedArray::<u64>::from_fn(64, |i| i as u64).unwrap();
    let y = SharedArray::<u64>::from_fn(64, |i| 2 * i as u64).unwrap();
    let mut z = SharedArray::<u64>::zeroed(64).unwrap();
    let job = pool.job(()).input(&x).unwrap().input(&y).unwrap().output(&mut z).unwrap();
    let sum = job.inline(true).stage(add_inputs).run_reduce(0u64, |a, b| a + b).unwrap();
    assert_eq!(sum, 3 * (0..64u64).sum::<u64>());
    // One input now: input 1 is past the job's arrays.
    let e = pool.job(()).input(&x).unwrap().inline(true).stage(second_input).run();
    match e {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("has 1 inputs"), "{message}")
        }
        other => panic!("expected KernelPanicked, got {other:?}"),
    }
    // No partials now: setting one is an error, not a write into the last job's.
    let e = pool.job(()).input(&x).unwrap().inline(true).stage(partial_without_reduce).run();
    match e {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("run_reduce"), "{message}")
        }
        other => panic!("expected KernelPanicked, got {other:?}"),
    }
    // A builder dropped unrun, and one that fails its checks, leave the next job whole.
    drop(pool.job(()).input(&x).unwrap().shape(&[8, 8]));
    assert!(pool.job(()).input(&x).unwrap().shape(&[9]).stage(second_input).run().is_err());
    let sum = pool
        .job(())
        .input(&x)
        .unwrap()
        .input(&y)
        .unwrap()
        .output(&mut z)
        .unwrap()
        .inline(true)
        .stage(add_inputs)
        .run_reduce(0u64, |a, b| a + b)
        .unwrap();
    assert_eq!(sum, 3 * (0..64u64).sum::<u64>());
    finish(pool);
}

fn as_usize(c: &Chunk<()>) {
    c.output::<usize>(0).fill(7);
}

fn as_i64(c: &Chunk<()>) {
    c.output::<i64>(0).fill(7);
}

/// The inline path checks a kernel's element type by `TypeId` first (`Chunk::typed`), then by
/// description, as a worker does by the header's: both paths accept and refuse the same types.
fn inline_and_pooled_jobs_check_element_types_alike() {
    let mut pool = Pool::new(2).unwrap();
    let mut a = SharedArray::<u64>::zeroed(100).unwrap();
    for inline in [true, false] {
        // `usize` is described as `u64` is (`<u8`): accepted by both.
        a.fill(0);
        pool.job(()).output(&mut a).unwrap().inline(inline).stage(as_usize).run().unwrap();
        assert!(a.iter().all(|&x| x == 7), "inline {inline}");
        // `i64` is not (`<i8`): refused by both, naming the array's type, nothing written.
        a.fill(0);
        let e = pool.job(()).output(&mut a).unwrap().inline(inline).stage(as_i64).run();
        match e {
            Err(Error::KernelPanicked { message, .. }) => {
                assert!(message.contains("the array holds <u8"), "inline {inline}: {message}")
            }
            other => panic!("inline {inline}: expected KernelPanicked, got {other:?}"),
        }
        assert!(a.iter().all(|&x| x == 0), "inline {inline}");
    }
    finish(pool);
}

fn fill_pid(c: &mut [u32]) {
    c.fill(std::process::id());
}

fn zip_pid(_: &[u32], _: &[u32], o: &mut [u32]) {
    o.fill(std::process::id());
}

fn stencil_pid(_: &[u32], _: usize, o: &mut [u32]) {
    o.fill(std::process::id());
}

/// The pid of the process that ran the chunk.
fn map_pid(_: &[u32]) -> u32 {
    std::process::id()
}

/// Whether every element was written by this process (`true`) or every one by another process
/// (`false`); panics on a mix or an element not written.
fn ran_here(a: &[u32]) -> bool {
    let me = std::process::id();
    let (here, there) = (a.iter().all(|&p| p == me), a.iter().all(|&p| p != me && p != 0));
    assert!(here || there, "some elements were not written, or written by both");
    here
}

/// Issue 9: `for_each_chunk`, `zip`, `map_reduce` and `stencil` obey the inline rule of kernel
/// jobs: 4 KiB arrays run in the caller under the default threshold, 8 MiB ones in the workers,
/// and a pool built with `inline_threshold(0)` sends even 4 KiB to the workers.
fn the_older_operations_run_small_inputs_in_the_caller_and_large_ones_in_workers() {
    let me = std::process::id();
    for (threshold, small_inline) in [(None, true), (Some(0), false)] {
        let mut b = Pool::builder().workers(2);
        if let Some(t) = threshold {
            b = b.inline_threshold(t);
        }
        let mut pool = b.build().unwrap();
        for (n, expect_inline) in [(1024, small_inline), (2 << 20, false)] {
            let what = format!("threshold {threshold:?}, {n} u32");
            let x = SharedArray::<u32>::zeroed(n).unwrap();
            let mut a = SharedArray::<u32>::zeroed(n).unwrap();
            pool.for_each_chunk(&mut a, fill_pid).unwrap();
            assert_eq!(ran_here(&a), expect_inline, "for_each_chunk, {what}");
            a.fill(0);
            pool.zip(&x, &x, &mut a, zip_pid).unwrap();
            assert_eq!(ran_here(&a), expect_inline, "zip, {what}");
            a.fill(0);
            pool.stencil(&x, &mut a, 3, stencil_pid).unwrap();
            assert_eq!(ran_here(&a), expect_inline, "stencil, {what}");
            let mut pids = Vec::new();
            let (lo, hi) = (
                pool.map_reduce(&x, map_pid, |p, q| p.min(q)).unwrap(),
                pool.map_reduce(&x, map_pid, |p, q| p.max(q)).unwrap(),
            );
            pids.extend([lo, hi]);
            let here = pids.iter().all(|&p| p == me);
            assert!(here || pids.iter().all(|&p| p != me), "map_reduce, {what}: {pids:?}");
            assert_eq!(here, expect_inline, "map_reduce, {what}");
        }
        finish(pool);
    }
}

fn scale_add(c: &mut [f64]) {
    shmpool_kernels::scale_add(c);
}

fn sum(c: &[f64]) -> f64 {
    c.iter().sum()
}

fn mul_add(a: &[f64], b: &[f64], o: &mut [f64]) {
    for i in 0..o.len() {
        o[i] = a[i].mul_add(b[i], o[i]);
    }
}

fn blur2(win: &[f64], off: usize, out: &mut [f64]) {
    for (k, o) in out.iter_mut().enumerate() {
        let i = off + k;
        let (lo, hi) = (i.saturating_sub(2), (i + 3).min(win.len()));
        *o = win[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
    }
}

/// Chunk 2 of 10-element chunks panics; the others run.
fn panics_on_chunk_2(c: &mut [u64]) {
    if c.first() == Some(&20) {
        panic!("chunk two");
    }
    c.iter_mut().for_each(|x| *x += 1000);
}

/// Inline and in the workers, the older operations run the same chunks, so a sum (which
/// depends on them) agrees bit for bit; a panicking chunk is the same `KernelPanicked` (its
/// chunk, its message) with the pid of the process that ran it, and the other chunks ran.
fn the_older_operations_give_the_same_bits_and_errors_inline_and_pooled() {
    let mut pool = Pool::new(2).unwrap();
    // 300,000 f64: 16 chunks of 18,750 by the pool's rule, 2.3 MiB: under the default threshold.
    let n = 300_000;
    let init = |i: usize| ((i * 7919) % 1000) as f64 * 0.37 + 1e-3 * i as f64;
    let mut results: Vec<Vec<u64>> = Vec::new();
    for threshold in [usize::MAX, 0] {
        pool.set_inline_threshold(threshold);
        let mut a = SharedArray::<f64>::from_fn(n, init).unwrap();
        pool.for_each_chunk(&mut a, scale_add).unwrap();
        let s = pool.map_reduce(&a, sum, |x, y| x + y).unwrap();
        let b = SharedArray::<f64>::from_fn(n, |i| init(n - i)).unwrap();
        let mut z = SharedArray::<f64>::from_fn(n, |i| i as f64).unwrap();
        pool.zip(&a, &b, &mut z, mul_add).unwrap();
        let mut st = SharedArray::<f64>::zeroed(n).unwrap();
        pool.stencil(&z, &mut st, 2, blur2).unwrap();
        let mut bits = vec![s.to_bits()];
        bits.extend(st.iter().map(|x| x.to_bits()));
        results.push(bits);
    }
    let sequential: f64 = {
        let mut v: Vec<f64> = (0..n).map(init).collect();
        shmpool_kernels::scale_add(&mut v);
        v.iter().sum()
    };
    assert!((f64::from_bits(results[0][0]) - sequential).abs() < 1e-6 * sequential);
    assert!(results[0] == results[1], "inline and pooled results differ");

    pool.set_chunk_size(Some(10));
    for (threshold, inline) in [(usize::MAX, true), (0, false)] {
        pool.set_inline_threshold(threshold);
        let mut a = SharedArray::<u64>::from_fn(50, |i| i as u64).unwrap();
        match pool.for_each_chunk(&mut a, panics_on_chunk_2) {
            Err(Error::KernelPanicked { chunk, pid, message }) => {
                assert_eq!(chunk, 2);
                assert_eq!(pid == std::process::id(), inline, "pid {pid}, inline {inline}");
                assert!(message.contains("chunk two"), "{message}");
            }
            other => panic!("inline {inline}: expected KernelPanicked, got {other:?}"),
        }
        for (i, &x) in a.iter().enumerate() {
            let ran = if (20..30).contains(&i) { i as u64 } else { i as u64 + 1000 };
            assert_eq!(x, ran, "element {i}, inline {inline}");
        }
    }
    // A closed pool takes no work, however small.
    pool.set_inline_threshold(usize::MAX);
    pool.close();
    let mut a = SharedArray::<u64>::zeroed(8).unwrap();
    let e = pool.for_each_chunk(&mut a, |c| c.fill(1));
    assert!(matches!(e, Err(Error::PoolNotRunning { .. })), "{e:?}");
    let e = pool.map_reduce(&a, |c| c.len(), |x, y| x + y);
    assert!(matches!(e, Err(Error::PoolNotRunning { .. })), "{e:?}");
    assert!(a.iter().all(|&x| x == 0));
    assert!(pool.join_timeout(Duration::from_secs(10)).unwrap(), "a worker did not exit");
    drop(pool);
    shmpool::process::shutdown_forkserver().unwrap();
}

fn plus_one(c: &Chunk<()>) {
    c.output::<u64>(0).iter_mut().for_each(|x| *x += 1);
}

fn times_ten(c: &Chunk<()>) {
    c.output::<u64>(0).iter_mut().for_each(|x| *x *= 10);
}

/// Stage kernels are kept per thread between jobs (`job_builder.rs`, `Bufs::push_stage`): a
/// job of one stage after one of three must run one, inline and in the workers, and a job of
/// more stages than a job may have is still refused after a shorter one.
fn a_job_after_a_longer_one_runs_only_its_own_stages() {
    let mut pool = Pool::new(2).unwrap();
    let mut a = SharedArray::<u64>::zeroed(1000).unwrap();
    for inline in [true, false] {
        a.fill(1);
        let job = pool.job(()).output(&mut a).unwrap().inline(inline);
        job.stage(plus_one).stage(times_ten).stage(plus_one).run().unwrap();
        assert!(a.iter().all(|&x| x == 21), "inline {inline}: {}", a[0]);
        pool.job(()).output(&mut a).unwrap().inline(inline).stage(times_ten).run().unwrap();
        assert!(a.iter().all(|&x| x == 210), "inline {inline}: {}", a[0]);
    }
    let mut job = pool.job(()).output(&mut a).unwrap();
    for _ in 0..40 {
        job = job.stage(plus_one);
    }
    assert!(matches!(job.run(), Err(Error::TooManyStages { count: 40, max: 16 })));
    assert!(a.iter().all(|&x| x == 210), "a refused job wrote");
    pool.job(()).output(&mut a).unwrap().stage(plus_one).run().unwrap();
    assert!(a.iter().all(|&x| x == 211), "{}", a[0]);
    finish(pool);
}

/// Small 1-D jobs take a short path (`JobBuilder::quick_plan`) that only declines what it does
/// not check: every bad input still comes back as the full checks' typed error, with nothing
/// written, on a pool that runs small jobs in the caller.
fn the_quick_inline_path_refuses_what_the_full_checks_refuse() {
    let mut pool = Pool::new(1).unwrap();
    assert!(pool.inline_threshold() > 0);
    let a = SharedArray::<u64>::from_fn(10, |i| i as u64).unwrap();
    let mut b = SharedArray::<u64>::zeroed(9).unwrap();
    let e = pool.job(()).input(&a).unwrap().output(&mut b).unwrap().stage(plus_one).run();
    match e {
        Err(Error::ShapeMismatch { array, found, expected }) => {
            assert_eq!((array.as_str(), found, expected), ("output 0", vec![9], vec![10]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    // A halo on the first stage (the only one, so one group): still checked against the rows.
    let e = pool.job(()).output(&mut b).unwrap().stage_halo(10, plus_one).run();
    match e {
        Err(Error::HaloTooLarge { stage, radius, rows }) => {
            assert_eq!((stage, radius, rows), (0, 10, 9))
        }
        other => panic!("expected HaloTooLarge, got {other:?}"),
    }
    // No stage; a chunk size that splits rows of a job given a shape.
    let e = pool.job(()).output(&mut b).unwrap().run();
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "{e:?}");
    let e = pool.job(()).output(&mut b).unwrap().shape(&[3, 3]).chunk_size(4);
    assert!(matches!(e.stage(plus_one).run(), Err(Error::ChunkSplitsRows { .. })));
    assert!(b.iter().all(|&x| x == 0), "a refused job wrote");
    finish(pool);
}

/// A job asks for its arrays' handles only when it goes to the workers: named arrays (whose
/// handle is their name) run inline and pooled alike, and leave nothing behind.
fn named_arrays_run_inline_and_in_the_workers() {
    let mut pool = Pool::new(2).unwrap();
    let opts = shmpool::ShmOptions::new().generated_name();
    let x = SharedArray::<f64>::from_fn_with(100_000, &opts, |i| i as f64).unwrap();
    let mut y = SharedArray::<f64>::zeroed_with(100_000, &opts).unwrap();
    for inline in [true, false] {
        y.fill(0.0);
        let job = pool.job(()).input(&x).unwrap().output(&mut y).unwrap().inline(inline);
        job.stage(copy0).run().unwrap();
        assert!(y.iter().enumerate().all(|(i, &v)| v == i as f64), "inline {inline}");
    }
    drop((x, y));
    finish(pool);
}

/// `.input`/`.output` no longer ask for a handle (it is made only when the job is published),
/// so they refuse an array the process got by inheritance through fork themselves: a forked
/// child handing its copy to a small job, which would run in the child and touch pages that
/// are not mapped there, stops with a panic saying why (not a SIGSEGV), as input and as
/// output, and the parent's data is untouched.
fn an_inherited_array_is_refused_by_a_small_job_as_input_or_output() {
    assert_inherited_refused("as output", one_forked_worker, |pool, inherited, _| {
        let _ = pool.job(()).output(inherited).map(|j| j.stage(plus_one).run());
    });
    assert_inherited_refused("as input", one_forked_worker, |pool, inherited, own| {
        let j = pool.job(()).input(inherited).and_then(|j| j.output(own));
        let _ = j.map(|j| j.stage(copy_u64).run());
    });
}

fn copy_u64(c: &Chunk<()>) {
    c.output::<u64>(0).copy_from_slice(c.input::<u64>(0));
}

/// One item: three `u8` channels in, their sum and the item's index out (a `u32` and two
/// `f32`s per item), checking the chunk's widths.
fn per_item(c: &Chunk<()>) {
    let (px, sum, pair) = (c.input::<u8>(0), c.output::<u32>(0), c.output::<f32>(1));
    assert_eq!((px.len(), sum.len(), pair.len()), (3 * c.len(), c.len(), 2 * c.len()));
    for (k, p) in px.chunks_exact(3).enumerate() {
        sum[k] = p.iter().map(|&v| u32::from(v)).sum();
        pair[2 * k] = (c.range().start + k) as f32;
        pair[2 * k + 1] = -1.0;
    }
}

/// Sums each item's channels over the item and its neighbours (a halo of one item).
fn neighbour_channels(c: &Chunk<()>) {
    let (win, off) = c.input_halo::<u8>(0);
    assert_eq!(off % 3, 0, "the window starts on an item");
    for (k, o) in c.output::<u32>(0).iter_mut().enumerate() {
        let i = off / 3 + k;
        let (lo, hi) = (i.saturating_sub(1), (i + 2).min(win.len() / 3));
        *o = win[3 * lo..3 * hi].iter().map(|&v| u32::from(v)).sum();
    }
}

/// `JobBuilder::items`: arrays of `n * k` elements for their own `k`, chunked by items, inline
/// and in the workers, chunk sizes that do and do not divide the job, and a halo counted in
/// items; the results equal a loop over the items.
fn arrays_of_different_widths_chunk_together_by_items() {
    let mut pool = Pool::new(2).unwrap();
    let n = 10_007; // prime: the last chunk is short
    let px = SharedArray::<u8>::from_fn(3 * n, |i| (i * 7 % 251) as u8).unwrap();
    let mut sum = SharedArray::<u32>::zeroed(n).unwrap();
    let mut pair = SharedArray::<f32>::zeroed(2 * n).unwrap();
    let chan = |i: usize| (0..3).map(|c| u32::from(px[3 * i + c])).sum::<u32>();
    for (inline, chunk) in [(true, None), (false, None), (true, Some(7)), (false, Some(1000))] {
        sum.fill(0);
        pair.fill(0.0);
        let mut job = pool.job(()).input(&px).unwrap().output(&mut sum).unwrap();
        job = job.output(&mut pair).unwrap().items(n).inline(inline);
        if let Some(c) = chunk {
            job = job.chunk_size(c);
        }
        job.stage(per_item).run().unwrap();
        for i in 0..n {
            assert_eq!(sum[i], chan(i), "inline {inline}, chunk {chunk:?}, item {i}");
            assert_eq!((pair[2 * i], pair[2 * i + 1]), (i as f32, -1.0), "item {i}");
        }
        let job = pool.job(()).input(&px).unwrap().output(&mut sum).unwrap().items(n);
        let job = job.inline(inline).chunk_size(chunk.unwrap_or(500));
        job.stage_halo(1, neighbour_channels).run().unwrap();
        for i in 0..n {
            let want: u32 = (i.saturating_sub(1)..(i + 2).min(n)).map(chan).sum();
            assert_eq!(sum[i], want, "halo, inline {inline}, item {i}");
        }
    }
    finish(pool);
}

/// Lengths that are not a whole number of items, items with a shape, and zero items are
/// refused before anything runs (nothing written), with the array named; an element type
/// mismatch is still a job error.
fn items_that_do_not_divide_an_array_are_typed_errors() {
    let mut pool = Pool::new(2).unwrap();
    let a = SharedArray::<u8>::zeroed(30).unwrap();
    let mut b = SharedArray::<u32>::zeroed(11).unwrap();
    for inline in [true, false] {
        let job = pool.job(()).input(&a).unwrap().output(&mut b).unwrap().inline(inline);
        match job.items(10).stage(|c| c.output::<u32>(0).fill(1)).run() {
            Err(Error::InvalidArgument { what, reason }) => {
                assert_eq!(what, "kernel job items");
                assert!(reason.contains("output 0 has 11 elements"), "{reason}");
            }
            other => panic!("inline {inline}: expected InvalidArgument, got {other:?}"),
        }
        assert!(b.iter().all(|&x| x == 0), "a refused job wrote");
    }
    let img = SharedArray::<u8>::zeroed_shape(&[5, 6]).unwrap();
    let e = pool.job(()).input(&img).unwrap().items(5).stage(|_| {}).run();
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "{e:?}");
    let e = pool.job(()).input(&a).unwrap().items(0).stage(|_| {}).run();
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "{e:?}");
    let empty = SharedArray::<u8>::zeroed(0).unwrap();
    pool.job(()).input(&empty).unwrap().items(0).stage(|_| panic!("ran")).run().unwrap();
    // Ten items of 3 bytes, asked for as u16: the type check still holds.
    let e = pool
        .job(())
        .input(&a)
        .unwrap()
        .items(10)
        .stage(|c| assert!(c.input::<u16>(0).is_empty()))
        .run();
    assert!(matches!(e, Err(Error::KernelPanicked { .. })), "{e:?}");
    finish(pool);
}

std::thread_local! {
    /// A second pool and its array, for a job run from inside a kernel on the same thread.
    static INNER: std::cell::RefCell<Option<(Pool, SharedArray<u64>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The inner job's stage: writes its output 0 (bit 0 of the inner job's access mask).
fn inner_write(c: &Chunk<u64>) {
    let k = *c.params();
    c.output::<u64>(0).iter_mut().for_each(|x| *x += k);
}

/// The inner job's stage that reads output 0 with a (zero) halo: refused if output 0 is
/// written in the same group, which is the inner job's own mask's business only.
fn inner_halo_read(c: &Chunk<u64>) {
    let (w, off) = c.output_halo::<u64>(0);
    c.set_partial(w[off..].iter().sum::<u64>());
}

/// Runs a job on the inner pool from inside an outer kernel: two groups of one job would not
/// do (the inner job's mask must be fresh), so one job writing output 0, then a second one
/// reading it with a halo, each built and run while the outer job's builder holds its buffers.
fn run_inner(k: u64) -> u64 {
    INNER.with_borrow_mut(|inner| {
        let (pool, a) = inner.as_mut().expect("the inner pool");
        // Odd `k`: the first inner job goes to the inner pool's workers (published from
        // inside the outer job's stage), even: inline as well.
        let job = pool.job(k).output(a).unwrap().inline(k.is_multiple_of(2));
        job.stage(inner_write).run().unwrap();
        let job = pool.job(k).output(a).unwrap().inline(true).stage(inner_halo_read);
        job.run_reduce(0u64, |x, y| x + y).unwrap()
    })
}

/// The outer stage: writes output 0, runs two jobs on the inner pool, then reads output 1
/// with a halo (never written in this group: allowed), reads its input and parameters, and
/// writes output 0 again through the same chunk: every view and mask bit of the outer job
/// must have survived the inner ones.
fn outer_with_inner(c: &Chunk<u64>) {
    let x = c.input::<u64>(0).to_vec();
    c.output::<u64>(0).copy_from_slice(&x);
    let inner_sum = run_inner(*c.params());
    let (w, off) = c.output_halo::<u64>(1);
    assert!(w[off..].iter().all(|&v| v == 7), "output 1 as the caller left it");
    assert_eq!(c.input::<u64>(0), &x[..], "the outer input after the inner jobs");
    c.set_partial(inner_sum + *c.params());
}

/// The outer stage that writes output 1, runs the inner jobs (whose masks are their own), then
/// reads output 1 with a halo: refused, since the outer mask's bit must have survived them.
fn outer_write_across_inner(c: &Chunk<u64>) {
    c.output::<u64>(1).fill(9);
    let _ = run_inner(0);
    let _ = c.output_halo::<u64>(1);
}

/// Builds a job on the inner pool (its output, a halo stage, items) and panics holding it.
fn outer_panics_holding_inner_builder(c: &Chunk<u64>) {
    c.output::<u64>(0).fill(1);
    INNER.with_borrow_mut(|inner| {
        let (pool, a) = inner.as_mut().expect("the inner pool");
        let _held = pool.job(()).output(a).unwrap().items(8).stage_halo(1, |_| {});
        panic!("held an inner builder");
    })
}

/// `JobBuilder` keeps its arrays, stages, views and settings in per-thread buffers, and a job
/// run inline checks its outputs through a mask written with plain loads and stores. A kernel
/// of an inline job may itself build and run jobs (on another pool) on the same thread: those
/// must get buffers and masks of their own, leave the outer job's views (arrays, parameters,
/// partials) and mask bits as they were, and be checked by their own masks alone.
fn a_job_inside_an_inline_kernel_has_its_own_buffers_and_access_mask() {
    let mut pool = Pool::new(1).unwrap();
    let inner = Pool::builder().workers(1).start_method(StartMethod::Fork).build().unwrap();
    INNER.with_borrow_mut(|i| {
        *i = Some((inner, SharedArray::<u64>::from_fn(64, |i| i as u64).unwrap()))
    });
    let x = SharedArray::<u64>::from_fn(256, |i| 3 * i as u64).unwrap();
    let mut y = SharedArray::<u64>::zeroed(256).unwrap();
    let mut z = SharedArray::<u64>::from_fn(256, |_| 7).unwrap();
    let job = pool.job(5u64).input(&x).unwrap().output(&mut y).unwrap();
    let job = job.output(&mut z).unwrap().inline(true).chunk_size(100);
    let got = job.stage(outer_with_inner).run_partials::<u64>().unwrap();
    // Inner array i + 5 per outer chunk (three chunks), summed after each.
    let inner_sums: Vec<u64> =
        (1..=3).map(|n| (0..64u64).map(|i| i + 5 * n).sum::<u64>() + 5).collect();
    assert_eq!(got, inner_sums);
    assert!(y.iter().enumerate().all(|(i, &v)| v == 3 * i as u64));
    // The outer mask still holds its own write after the inner jobs: a halo read of output 1
    // in the group that wrote it is refused, however many jobs ran in between.
    let job = pool.job(0u64).input(&x).unwrap().output(&mut y).unwrap();
    let e = job.output(&mut z).unwrap().inline(true).stage(outer_write_across_inner).run();
    match e {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("output 1 is written in this group"), "{message}")
        }
        other => panic!("expected KernelPanicked, got {other:?}"),
    }
    // A stage that panics while it holds an inner builder: the inner builder unwinds (its
    // buffers given back), the outer job is a typed error, and nothing is left behind.
    let job = pool.job(0u64).output(&mut y).unwrap().inline(true);
    match job.stage(outer_panics_holding_inner_builder).run() {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("held"), "{message}")
        }
        other => panic!("expected KernelPanicked, got {other:?}"),
    }
    // Both pools still run plain jobs afterwards, with nothing left of the above.
    // (The panicking stage filled `y` with 1 first.)
    pool.job(()).output(&mut y).unwrap().stage(plus_one).run().unwrap();
    assert!(y.iter().all(|&v| v == 2), "{}", y[10]);
    let (mut inner, mut a) = INNER.with_borrow_mut(Option::take).unwrap();
    inner.job(()).output(&mut a).unwrap().stage(plus_one).run().unwrap();
    drop(a);
    finish(inner);
    finish(pool);
}

fn must_not_run(_: &Chunk<()>) {
    panic!("a job with aliased arrays ran");
}

/// Aliasing is checked by segment nonce: every view of one segment is the same array, however
/// it was reached (the original, a second `open` of its name, `open_handle` of its handle,
/// which maps a memfd again through another descriptor), as input and output or output twice,
/// in either order, anonymous and named, inline and pooled; two reads of one segment are fine.
fn every_view_of_one_segment_is_an_alias() {
    let mut pool = Pool::new(1).unwrap();
    let named = shmpool::ShmOptions::new().generated_name();
    let arrays = [
        SharedArray::<u64>::from_fn(100, |i| i as u64).unwrap(),
        SharedArray::<u64>::from_fn_with(100, &named, |i| i as u64).unwrap(),
    ];
    for mut a in arrays {
        // SAFETY: nothing writes through any view while another is used: every job that
        // would is refused before it runs, and the last one only reads.
        let mut twins = unsafe {
            let mut t = vec![SharedArray::<u64>::open_handle(&a.handle()).unwrap()];
            if let Some(n) = a.name() {
                t.push(SharedArray::<u64>::open(n).unwrap());
            }
            t
        };
        for t in twins.iter_mut() {
            for inline in [true, false] {
                let j = pool.job(()).inline(inline).input(&a).unwrap().output(t).map(drop);
                assert!(matches!(j, Err(Error::ArrayAliased { .. })), "input, output: {j:?}");
                let j = pool.job(()).inline(inline).input(&*t).unwrap().output(&mut a).map(drop);
                assert!(matches!(j, Err(Error::ArrayAliased { .. })), "output, input: {j:?}");
                let j = pool.job(()).inline(inline).output(&mut a).unwrap().output(t);
                match j.map(|j| j.stage(must_not_run).run()) {
                    Err(Error::ArrayAliased { first, second }) => {
                        assert_eq!((first.as_str(), second.as_str()), ("output 0", "output 1"))
                    }
                    other => panic!("output twice: {other:?}"),
                }
                let j = pool.job(()).inline(inline).input(&*t).unwrap().input(&a).unwrap();
                let s = j.stage(|c| c.set_partial(c.input::<u64>(0)[0] + c.input::<u64>(1)[0]));
                assert_eq!(s.run_reduce(0u64, |x, y| x + y).unwrap(), 0);
            }
        }
        assert!(a.iter().enumerate().all(|(i, &x)| x == i as u64), "an aliased job wrote");
        drop(twins);
    }
    finish(pool);
}

fn index_partial(c: &Chunk<()>) {
    c.set_partial([c.index() as u64, c.range().start as u64, c.range().end as u64, 0]);
}

fn callers_pid(c: &Chunk<()>) {
    c.output::<u32>(0).fill(std::process::id());
}

/// A builder with every setting changed: items, a chunk size, a shape, a work hint,
/// `inline(false)`, a halo stage, 16 arrays.
fn spoil<'a>(
    pool: &'a mut Pool,
    inputs: &'a [SharedArray<u32>],
    b: &'a mut SharedArray<u32>,
) -> shmpool::pool::JobBuilder<'a, ()> {
    let mut job = pool.job(());
    for x in inputs {
        job = job.input(x).unwrap();
    }
    let job = job.output(b).unwrap().items(7).chunk_size(1).shape(&[7]);
    job.cost_per_element(1e9).inline(false).stage(callers_pid).stage_halo(3, callers_pid)
}

/// The builder's settings, stages and arrays live in per-thread buffers between jobs: a builder
/// dropped unrun, or unwound by a panic, with every setting changed (items, a chunk size, a
/// shape, a work hint, `inline(false)`, a halo stage, 16 arrays) leaves none of it to the next
/// job on the thread, which takes the quick inline path with the default plan.
fn a_dropped_or_panicked_builder_leaves_nothing_for_the_next_job() {
    let mut pool = Pool::new(2).unwrap();
    let inputs: Vec<SharedArray<u32>> = (0..15).map(|_| SharedArray::zeroed(7).unwrap()).collect();
    let mut a = SharedArray::<u32>::zeroed(1000).unwrap();
    let mut b = SharedArray::<u32>::zeroed(3000).unwrap();
    drop(spoil(&mut pool, &inputs, &mut b));
    for round in 0..2 {
        if round == 1 {
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _job = spoil(&mut pool, &inputs, &mut b);
                panic!("mid-build");
            }));
            assert!(unwound.is_err());
        }
        let got = pool.job(()).output(&mut a).unwrap().stage(index_partial);
        assert_eq!(got.run_partials::<[u64; 4]>().unwrap(), vec![[0, 0, 1000, 0]], "round {round}");
        pool.job(()).output(&mut a).unwrap().stage(callers_pid).run().unwrap();
        assert!(a.iter().all(|&p| p == std::process::id()), "round {round}: not inline");
    }
    assert!(b.iter().all(|&x| x == 0), "a dropped builder ran");
    finish(pool);
}

/// A parameter block aligned to 16 bytes (more than a job carries).
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(16))]
struct Wide {
    x: [u64; 2],
}

/// `quick_plan` takes the commonest small job in one pass and declines the rest to `plan`.
/// Inputs at its edges: an empty array beside a full one (either first), no array, a parameter
/// block aligned to 16, a job of 1-D arrays whose bytes overflow nothing but are absurd
/// (2^40 unit elements, `inline(true)`), and 16 stages exactly: each gets the full checks'
/// answer, and nothing is written by a refused job.
fn the_quick_path_declines_what_only_the_full_checks_see() {
    let mut pool = Pool::new(1).unwrap();
    let empty = SharedArray::<u64>::zeroed(0).unwrap();
    let mut a = SharedArray::<u64>::zeroed(10).unwrap();
    let e = pool.job(()).input(&empty).unwrap().output(&mut a).unwrap().stage(plus_one).run();
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "empty first: {e:?}");
    let mut e2 = SharedArray::<u64>::zeroed(0).unwrap();
    let a2 = SharedArray::<u64>::zeroed(10).unwrap();
    let e = pool.job(()).input(&a2).unwrap().output(&mut e2).unwrap().stage(plus_one).run();
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "empty second: {e:?}");
    let e = pool.job(()).stage(|_| panic!("ran")).run();
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "no array: {e:?}");
    let e = pool.job(Wide { x: [1, 2] }).output(&mut a).unwrap().stage(|_| {}).run();
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "align 16: {e:?}");
    assert!(a.iter().all(|&x| x == 0), "a refused job wrote");
    let mut job = pool.job(()).output(&mut a).unwrap();
    for _ in 0..16 {
        job = job.stage(plus_one);
    }
    job.run().unwrap();
    assert!(a.iter().all(|&x| x == 16));
    let mut units = SharedArray::<()>::zeroed(1 << 40).unwrap();
    let got = pool.job(()).output(&mut units).unwrap().inline(true).stage(|c| {
        c.set_partial(c.output::<()>(0).len() as u64);
    });
    assert_eq!(got.run_reduce(0u64, |x, y| x + y).unwrap(), 1 << 40);
    finish(pool);
}

fn item_bounds(c: &Chunk<()>) {
    let (r, k) = (c.range(), c.input::<u16>(0).len() / c.len().max(1));
    assert_eq!(c.input::<u16>(0).len(), 5 * c.len());
    assert!(c.output::<u64>(0).is_empty(), "zero elements per item");
    let (win, off) = c.input_halo::<u16>(0);
    let lo = r.start.saturating_sub(2);
    assert_eq!((off, win.len()), (5 * (r.start - lo), 5 * ((r.end + 2).min(c.shape()[0]) - lo)));
    assert_eq!(win[off], (5 * r.start) as u16);
    c.set_partial([r.start as u64, r.end as u64, k as u64, c.index() as u64]);
}

/// `JobBuilder::items` at its edges: an array of zero elements per item beside one of five, a
/// halo of two items, a prime count of items in chunks of a prime size (the last one short),
/// inline and in the workers: every chunk sees exactly its items' elements; a halo wider than
/// the items is refused.
fn items_of_zero_width_halos_and_prime_counts_chunk_exactly() {
    let mut pool = Pool::new(2).unwrap();
    let n = 101;
    let x = SharedArray::<u16>::from_fn(5 * n, |i| i as u16).unwrap();
    let mut none = SharedArray::<u64>::zeroed(0).unwrap();
    for inline in [true, false] {
        let job = pool.job(()).input(&x).unwrap().output(&mut none).unwrap().items(n);
        let job = job.chunk_size(7).inline(inline).stage_halo(2, item_bounds);
        let got = job.run_partials::<[u64; 4]>().unwrap();
        let want: Vec<[u64; 4]> = (0..n.div_ceil(7))
            .map(|i| [7 * i as u64, (7 * i + 7).min(n) as u64, 5, i as u64])
            .collect();
        assert_eq!(got, want, "inline {inline}");
        let job = pool.job(()).input(&x).unwrap().items(n).inline(inline);
        let e = job.stage_halo(n + 1, item_bounds).run();
        assert!(matches!(e, Err(Error::HaloTooLarge { .. })), "{e:?}");
    }
    finish(pool);
}

/// The inheritance refusal lives in `.input`/`.output`, before the job knows where it runs:
/// a forked child giving its inherited copy to a job that goes to the workers, or to a job of
/// items (inline or pooled), stops with the panic that says why, and the parent's data is
/// untouched.
fn an_inherited_array_is_refused_pooled_and_in_a_job_of_items() {
    assert_inherited_refused("pooled", one_forked_worker, |pool, inherited, _| {
        let j = pool.job(()).inline(false).output(inherited);
        let _ = j.map(|j| j.stage(plus_one).run());
    });
    assert_inherited_refused("items, inline", one_forked_worker, |pool, inherited, own| {
        let j = pool.job(()).output(own).and_then(|j| j.input(inherited));
        let _ = j.map(|j| j.items(1024).stage(copy_u64).run());
    });
    assert_inherited_refused("items, pooled", one_forked_worker, |pool, inherited, _| {
        let j = pool.job(()).items(2048).inline(false).output(inherited);
        let _ = j.map(|j| j.stage(plus_one).run());
    });
}

fn x_plus_params(c: &Chunk<u64>) {
    let p = *c.params();
    for (y, &x) in c.output::<u64>(0).iter_mut().zip(c.input::<u64>(0)) {
        *y = x + p;
    }
}

fn halo_centre_sum(c: &Chunk<u64>) {
    let (w, off) = c.output_halo::<u64>(0);
    c.set_partial(w[off..off + c.len()].iter().sum::<u64>());
}

fn write_then_halo_read(c: &Chunk<u64>) {
    c.output::<u64>(0)[0] = *c.params();
    let _ = c.output_halo::<u64>(0);
}

/// Two threads, each with its own pool, run inline jobs over one shared input at once (each
/// writing its own output): each thread's builder buffers and access masks are its own, so
/// every result is exact and every write-then-halo-read is still refused, however the
/// threads interleave.
fn two_threads_with_two_pools_run_inline_jobs_over_one_input() {
    let n = 512u64;
    let x = SharedArray::<u64>::from_fn(n as usize, |i| i as u64).unwrap();
    let mut pools = [Pool::new(1).unwrap(), Pool::new(1).unwrap()];
    let mut outs =
        [SharedArray::<u64>::zeroed(512).unwrap(), SharedArray::<u64>::zeroed(512).unwrap()];
    std::thread::scope(|s| {
        for (pool, y) in pools.iter_mut().zip(outs.iter_mut()) {
            let x = &x;
            s.spawn(move || {
                for r in 0..300u64 {
                    let job = pool.job(r).input(x).unwrap().output(&mut *y).unwrap();
                    let job = job.stage(x_plus_params).stage_halo(1, halo_centre_sum);
                    let got = job.run_reduce(0u64, |a, b| a + b).unwrap();
                    assert_eq!(got, n * (n - 1) / 2 + r * n, "round {r}");
                    let job = pool.job(r).input(x).unwrap().output(&mut *y).unwrap();
                    job.stage(x_plus_params).run().unwrap();
                    assert_eq!(y[7], 7 + r);
                    if r % 100 == 0 {
                        let job = pool.job(r).output(&mut *y).unwrap().stage(write_then_halo_read);
                        match job.run() {
                            Err(Error::KernelPanicked { message, .. }) => {
                                assert!(message.contains("written in this group"), "{message}")
                            }
                            other => panic!("round {r}: expected KernelPanicked, got {other:?}"),
                        }
                    }
                }
            });
        }
    });
    // Both pools may share the forkserver: stop it once, after both.
    let forkserver = pools.iter().any(|p| p.start_method() == StartMethod::ForkServer);
    for mut pool in pools {
        pool.close();
        assert!(pool.join_timeout(Duration::from_secs(10)).unwrap(), "a worker did not exit");
    }
    if forkserver {
        shmpool::process::shutdown_forkserver().unwrap();
    }
}
