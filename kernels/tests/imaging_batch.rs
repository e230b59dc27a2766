//! `imaging::batch` against the single-image path: every pipeline run on shared arrays through
//! a pool (row bands with halos for one image, whole images for a batch, scratch arrays where
//! the size changes) must equal `Pipeline::apply` on each image bit for bit, at sizes from 1x1
//! up, with one row per chunk (more chunks than workers, blur radii past the band), in `u8`
//! and `f32`. Then the errors, each before anything runs and saying the fix.

use shmpool::{Pool, SharedArray};
use shmpool_kernels::imaging::batch::{self, BatchError};
use shmpool_kernels::imaging::{Filter, Image, Op, Pipeline, Sample, Shape};

/// A pool whose jobs always run in its workers, `chunk` elements per chunk (rounded up to rows).
fn pool(chunk: usize) -> Pool {
    Pool::builder().workers(2).inline_threshold(0).chunk_size(chunk).build().unwrap()
}

/// Photo-like sample `(y, x, ch)` of image `k`: a gradient, a hard-edged disc, noise.
fn sample(k: usize, y: usize, x: usize, ch: usize) -> f32 {
    let noise = ((y * 7919 + x * 104_729 + ch * 31 + k * 613) % 97) as f32 / 97.0;
    let (dy, dx) = (y as f32 - 6.0, x as f32 - 9.0);
    let disc = if dy * dy + dx * dx < 30.0 { 0.6 } else { 0.0 };
    ((x as f32 * 0.03 + y as f32 * 0.05 + ch as f32 * 0.2 + disc) * 0.5 + noise * 0.3).fract()
}

fn to<T: Sample>(v: f32) -> T {
    T::from_f32(v * T::MAX)
}

/// What `pipeline` makes of image `k` of `shape` on the single-image path.
fn reference<T: Sample>(pipeline: &Pipeline, shape: Shape, k: usize) -> Image<T> {
    let img = Image::from_fn(shape, |y, x, ch| to::<T>(sample(k, y, x, ch)));
    pipeline.apply(img).unwrap()
}

/// Sizes: 1x1, one row, one column, odd, and larger than a blur's radius many times over.
const SIZES: &[(usize, usize)] = &[(1, 1), (1, 17), (13, 1), (7, 5), (31, 23), (64, 48)];

/// Pipelines that run in row bands on one image (tone, flip=h, blur, sharpen, two blurs in a
/// row alternating their scratch arrays) and ones that run image by image.
const ROW_PIPELINES: &[&str] = &[
    "brightness=0.1",
    "flip=h; gamma=2.2",
    "blur=1.5",
    "sharpen=1,0.8,0.02",
    "blur=0.7; blur=2; contrast=1.3; sharpen=1.2; flip=h",
    "blur=6", // radius 18: wider than the small images, which then run whole
];
const IMAGE_PIPELINES: &[&str] = &[
    "resize=9x5",
    "resize=40x3,lanczos3; blur=1",
    "crop=0,0,1,1; resize=3x2",
    "rotate=90; flip=v",
    "rotate=270; sharpen=1; grayscale",
    "edges",
    "thumbnail=8; rotate=180",
    "",
    // A worker runs the operations after the last shape change on the output itself, and
    // resamples straight into it: with operations before the resize, and after another change.
    "blur=1; resize=7x4; brightness=0.2; sharpen=1",
    "grayscale; blur=1; flip=v",
    "rotate=180; blur=1",
];

fn check_one_image<T: Sample + bytemuck::Pod>(
    pool: &mut Pool,
    text: &str,
    h: usize,
    w: usize,
    c: usize,
) {
    let p: Pipeline = text.parse().unwrap();
    let shape = Shape::new(h, w, c);
    let Ok(want_dims) = batch::output_shape(&p, &[h, w, c]) else {
        return; // a crop past a small image: its error is checked below
    };
    let input =
        SharedArray::<T>::from_shape_fn(&[h, w, c], |ix| to::<T>(sample(0, ix[0], ix[1], ix[2])))
            .unwrap();
    let want = reference::<T>(&p, shape, 0);
    assert_eq!(want_dims, [want.shape().h, want.shape().w, want.shape().c], "{text} on {shape}");
    let got = batch::apply(pool, &p, &input).unwrap();
    assert!(
        &got[..] == want.as_slice(),
        "`{text}` on {shape}: the batch differs from Pipeline::apply"
    );
    if want.shape() == shape {
        let mut inplace = SharedArray::<T>::from_slice(&input).unwrap();
        inplace.reshape(&[h, w, c]).unwrap();
        batch::apply_in_place(pool, &p, &mut inplace).unwrap();
        assert!(&inplace[..] == want.as_slice(), "`{text}` on {shape} in place differs");
    }
}

#[test]
fn one_image_equals_the_single_image_path() {
    let mut pool = pool(1);
    for &(h, w) in SIZES {
        for c in [1, 3, 4] {
            for text in ROW_PIPELINES.iter().chain(IMAGE_PIPELINES) {
                check_one_image::<u8>(&mut pool, text, h, w, c);
            }
        }
        for text in ROW_PIPELINES.iter().chain(IMAGE_PIPELINES) {
            check_one_image::<f32>(&mut pool, text, h, w, 3);
        }
    }
}

fn check_batch<T: Sample + bytemuck::Pod>(
    pool: &mut Pool,
    text: &str,
    n: usize,
    h: usize,
    w: usize,
) {
    let p: Pipeline = text.parse().unwrap();
    let shape = Shape::new(h, w, 3);
    let Ok(dims) = batch::output_shape(&p, &[n, h, w, 3]) else { return };
    let input = SharedArray::<T>::from_shape_fn(&[n, h, w, 3], |ix| {
        to::<T>(sample(ix[0], ix[1], ix[2], ix[3]))
    })
    .unwrap();
    let mut out = SharedArray::<T>::zeroed_shape(&dims).unwrap();
    batch::apply_into(pool, &p, &input, &mut out).unwrap();
    assert_eq!(out.shape(), &dims[..], "the output keeps its shape");
    let per = out.len() / n;
    for k in 0..n {
        let want = reference::<T>(&p, shape, k);
        assert_eq!(dims[1..], [want.shape().h, want.shape().w, want.shape().c]);
        assert!(
            &out[k * per..(k + 1) * per] == want.as_slice(),
            "`{text}` on image {k} of {n} {shape}: the batch differs from Pipeline::apply"
        );
    }
    // In place too, where the pipeline keeps the shape (in-place operations run on the images
    // themselves, others on a copy).
    if dims == input.shape() {
        let mut images = input;
        batch::apply_in_place(pool, &p, &mut images).unwrap();
        assert!(images[..] == out[..], "`{text}` on {n} {shape}: in place differs");
    }
}

#[test]
fn a_batch_equals_the_single_image_path_image_by_image() {
    let mut pool = pool(1);
    for text in ROW_PIPELINES.iter().chain(IMAGE_PIPELINES) {
        // Growing ("resize=40x3" on 1x1), shrinking and same-sized; more images than workers.
        for (n, h, w) in [(5, 1, 1), (7, 13, 9), (3, 31, 23)] {
            check_batch::<u8>(&mut pool, text, n, h, w);
        }
        check_batch::<f32>(&mut pool, text, 4, 12, 10);
    }
    // One image given as a batch of one, and a big enough batch to fill chunks of several images.
    check_batch::<u8>(&mut pool, "resize=20x20; blur=1", 1, 33, 17);
    let mut big = Pool::builder().workers(2).inline_threshold(0).build().unwrap();
    check_batch::<u8>(&mut big, "blur=1; rotate=90", 40, 16, 24);
}

#[test]
fn the_default_pool_runs_small_jobs_inline_with_the_same_result() {
    let mut pool = Pool::new(2).unwrap();
    check_one_image::<u8>(&mut pool, "blur=1.5; brightness=0.2", 31, 23, 3);
    check_batch::<u8>(&mut pool, "resize=9x5; sharpen=1", 3, 31, 23);
}

#[test]
fn wrong_arrays_and_operations_are_refused_with_the_fix() {
    let mut pool = Pool::new(1).unwrap();
    let p: Pipeline = "blur=1".parse().unwrap();
    for dims in [&[12][..], &[3, 4], &[1, 1, 2, 2, 3], &[0, 4, 3], &[2, 0, 4, 3]] {
        let a = SharedArray::<u8>::zeroed_shape(dims)
            .unwrap_or_else(|_| SharedArray::zeroed(0).unwrap());
        let e = batch::apply(&mut pool, &p, &a).unwrap_err();
        assert!(matches!(e, BatchError::NotImages { .. }), "{dims:?}: {e}");
        assert!(e.to_string().contains("(h, w, c)"), "{e}");
    }
    let two = SharedArray::<u8>::zeroed_shape(&[4, 4, 2]).unwrap();
    let e = batch::apply(&mut pool, &p, &two).unwrap_err();
    assert!(matches!(e, BatchError::Channels { c: 2 }) && e.to_string().contains("1 (gray), 3"));

    let img = SharedArray::<u8>::zeroed_shape(&[4, 6, 3]).unwrap();
    let crop: Pipeline = "flip=h; crop=2,2,5,1".parse().unwrap();
    let e = batch::apply(&mut pool, &crop, &img).unwrap_err();
    assert!(matches!(e, BatchError::Op { index: 1, .. }), "{e}");
    assert!(e.to_string().contains("give a rectangle inside it"), "{e}");

    let mut wrong = SharedArray::<u8>::zeroed_shape(&[6, 4, 3]).unwrap();
    let e = batch::apply_into(&mut pool, &p, &img, &mut wrong).unwrap_err();
    assert!(matches!(e, BatchError::OutputShape { .. }) && e.to_string().contains("output_shape"));
    // The same length and shape turned is still the wrong shape.
    let mut flat = SharedArray::<u8>::zeroed(72).unwrap();
    assert!(batch::apply_into(&mut pool, &p, &img, &mut flat).is_err());

    let mut imgs = SharedArray::<u8>::zeroed_shape(&[2, 4, 6, 3]).unwrap();
    let e = batch::apply_in_place(&mut pool, &"rotate=90".parse().unwrap(), &mut imgs).unwrap_err();
    assert!(matches!(e, BatchError::NotInPlace { .. }) && e.to_string().contains("apply_into"));

    let long: Pipeline = vec!["flip=h"; 49].join(";").parse().unwrap();
    let e = batch::apply_in_place(&mut pool, &long, &mut imgs).unwrap_err();
    assert!(matches!(e, BatchError::TooManyOps { count: 49, max: 48 }), "{e}");
    // Sizes past any address space: refused before anything is allocated.
    let huge = Pipeline::new(vec![
        Op::Resize { w: 1 << 40, h: 1 << 40, filter: Filter::Bilinear },
        Op::Thumbnail { w: 8, h: 8 },
    ]);
    let e = batch::apply(&mut pool, &huge, &img).unwrap_err();
    assert!(matches!(e, BatchError::TooLarge { index: 0, .. }), "{e}");
    assert!(e.to_string().contains("smaller sizes"), "{e}");
    let zero = Pipeline::new(vec![Op::Resize { w: 0, h: 3, filter: Filter::Bilinear }]);
    let e = batch::apply(&mut pool, &zero, &img).unwrap_err();
    assert!(matches!(e, BatchError::Op { index: 0, .. }), "{e}");
    // 48 operations run.
    let most: Pipeline = vec!["flip=h"; 48].join(";").parse().unwrap();
    batch::apply_in_place(&mut pool, &most, &mut imgs).unwrap();
}

/// The `image_batch` example, built for this test's profile (`cargo test` of the kernels alone
/// does not build the root package's examples).
fn image_batch_example() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap(); // target/<profile>
    let profile = match dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "shmpool", "--example", "image_batch", "--profile"])
        .arg(profile)
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p shmpool --example image_batch failed: {status}");
    dir.join("examples").join("image_batch")
}

/// Whether `python3` imports `module`; a missing one fails under CI (`.ci/run` installs it).
fn python_has(module: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok || std::env::var_os("CI").is_none(), "python3 has no {module} under CI");
    ok
}

#[test]
fn a_numpy_batch_goes_through_the_rust_example_and_matches_pillow_and_numpy() {
    if !python_has("numpy") {
        eprintln!("skipped: python3 has no numpy (python3 -m pip install numpy pillow)");
        return;
    }
    let bin = image_batch_example();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../python/image_batch.py");
    let cases = [
        // NumPy only: exact copies, and one rounding each for grayscale and brightness.
        ("crop=3,5,50,40; grayscale; rotate=270; brightness=0.1; flip=v", "7", "61", "97"),
        // Pillow's bilinear resize (tolerance 1), then exact copies.
        ("resize=40x30; flip=h; rotate=90", "6", "61", "97"),
        // Growing the images, and one pixel wide.
        ("resize=7x9; rotate=180", "3", "5", "1"),
    ];
    for (pipeline, n, h, w) in cases {
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg(&bin)
            .args(["--pipeline", pipeline, "--n", n, "--h", h, "--w", w])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.code() == Some(3) {
            assert!(std::env::var_os("CI").is_none(), "Pillow is missing under CI: {stdout}");
            eprintln!("skipped `{pipeline}`: {stdout}");
            continue;
        }
        assert!(
            out.status.success() && stdout.contains(": OK"),
            "`{pipeline}` failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // Both arrays were made and unlinked.
        let names: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("arrays: ")).collect();
        assert_eq!(names.len(), 2, "{stdout}");
        for name in names {
            assert!(!std::path::Path::new("/dev/shm").join(name).exists(), "{name} was left");
        }
    }
}

#[test]
fn the_example_refuses_arrays_that_are_not_u8_images_with_the_fix() {
    use shmpool::ShmOptions;
    let bin = image_batch_example();
    let named = ShmOptions::new().generated_name();
    let flat = SharedArray::<u8>::zeroed_shape_with(&[4, 6], &named).unwrap();
    let floats = SharedArray::<f32>::zeroed_shape_with(&[4, 6, 3], &named).unwrap();
    let img = SharedArray::<u8>::zeroed_shape_with(&[4, 6, 3], &named).unwrap();
    let small = SharedArray::<u8>::zeroed_shape_with(&[2, 2, 3], &named).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let name = |a: &str| a.to_string();
    let (flat_n, float_n) = (name(flat.name().unwrap()), name(floats.name().unwrap()));
    let (img_n, small_n) = (name(img.name().unwrap()), name(small.name().unwrap()));
    for (args, code, says) in [
        (vec!["shape", &flat_n, "flip=h"], Some(1), "(h, w, c)"),
        (vec!["shape", &float_n, "flip=h"], Some(1), "cannot open"),
        (vec!["shape", &img_n, "blur=-1"], Some(1), "blur=SIGMA"),
        (vec!["shape", &img_n, "crop=0,0,9,9"], Some(1), "inside it"),
        (vec!["run", &img_n, &small_n, "flip=h"], Some(1), "output_shape"),
        (vec!["run", &img_n, &img_n, "flip=h", "x"], Some(1), "WORKERS"),
        // The same array as input and output: the pool refuses it, and says to pass it once.
        (vec!["run", &img_n, &img_n, "blur=1"], Some(1), "pass it once"),
        (vec!["shape", "shmpool-no-such-array", "flip=h"], Some(1), "cannot open"),
        (vec!["run", &img_n], Some(2), "usage"),
    ] {
        let (got, stderr) = run(&args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A good run, in place of nothing: input to a second array of its shape.
    let (got, stderr) = run(&["run", &img_n, &small_n, "resize=2x2", "1"]);
    assert_eq!(got, Some(0), "{stderr}");
}

#[test]
fn a_worker_that_dies_fails_the_batch_and_the_pool_runs_the_next() {
    let mut pool = pool(1);
    let img = SharedArray::<u8>::from_shape_fn(&[2, 6, 4, 3], |ix| ix[2] as u8).unwrap();
    // A size the plan accepts (its samples fit an address space) but no memory holds: the
    // worker's allocation fails, and the batch fails with the fix, its worker alive (this
    // aborted the worker before resize tried its allocation).
    let bomb = Pipeline::new(vec![
        Op::Resize { w: 4, h: 1 << 40, filter: Filter::Bilinear },
        Op::Thumbnail { w: 8, h: 8 },
    ]);
    let pids = pool.worker_pids();
    let e = batch::apply(&mut pool, &bomb, &img).unwrap_err().to_string();
    assert!(e.contains("give a smaller size"), "{e}");
    assert_eq!(pool.worker_pids(), pids, "no worker died of it");
    check_batch::<u8>(&mut pool, "resize=9x5; blur=1", 3, 31, 23);

    // A worker killed (SIGKILL) mid-batch: the batch fails with WorkerDied, a kept scratch and
    // the pool both serve the next batch.
    // Over a second of work for one worker in the optimized build the tests use (kernels at
    // opt-level 2; 48 images of 256x384 at blur=24 took only 125-135 ms, under the kill at
    // 150 ms, so the batch could end first): the kill lands 150 ms in, mid-batch.
    let big = SharedArray::<u8>::from_shape_fn(&[48, 512, 768, 3], |ix| (ix[1] ^ ix[2]) as u8);
    let big = big.unwrap();
    let slow: Pipeline = "blur=40; resize=64x48; sharpen=3".parse().unwrap();
    let mut out = SharedArray::<u8>::zeroed_shape(&[48, 48, 64, 3]).unwrap();
    let mut scratch = batch::Scratch::new();
    let victim = pool.worker_pids()[0];
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let status =
            std::process::Command::new("kill").args(["-KILL", &victim.to_string()]).status();
        assert!(status.unwrap().success(), "kill -KILL {victim} failed");
    });
    let t = std::time::Instant::now();
    let e = batch::apply_into_with(&mut pool, &slow, &big, &mut out, &mut scratch).unwrap_err();
    killer.join().unwrap();
    assert!(t.elapsed().as_millis() >= 150, "the batch ended before the kill: make it longer");
    assert!(
        matches!(e, BatchError::Pool(shmpool::Error::WorkerDied { .. })),
        "expected a dead worker, got {e}"
    );
    batch::apply_into_with(&mut pool, &slow, &big, &mut out, &mut scratch).unwrap();
    let want = reference_of(&slow, &big, 47);
    assert!(&out[47 * 48 * 64 * 3..] == want.as_slice(), "the run after the death is right");
}

/// What `pipeline` makes of image `k` of the batch `images`, on the single-image path.
fn reference_of(pipeline: &Pipeline, images: &SharedArray<u8>, k: usize) -> Image<u8> {
    let d = images.shape();
    let len = d[1] * d[2] * d[3];
    let img =
        Image::from_vec(Shape::new(d[1], d[2], d[3]), images[k * len..(k + 1) * len].to_vec());
    pipeline.apply(img.unwrap()).unwrap()
}

/// A `Scratch` kept between runs: shrinking, enlarging, both at once and same-sized batches, in
/// turns, on new images each time. A reused slot holds the last run's samples past what this
/// run writes; none of them may reach an output (each run equals `Pipeline::apply`), and the
/// scratch holds exactly the arrays the last run needed, no more.
#[test]
fn a_kept_scratch_gives_each_run_its_own_images() {
    let mut pool = pool(1);
    let mut scratch = batch::Scratch::<u8>::new();
    let runs = [
        ("resize=5x4; blur=1", 6, 13, 9, 6 * 13 * 9 * 3, 0),
        ("resize=5x4; blur=1", 6, 13, 9, 6 * 13 * 9 * 3, 0),
        ("resize=20x30,lanczos3", 3, 7, 5, 0, 3 * 30 * 20 * 3),
        ("resize=5x4; resize=30x20", 4, 13, 9, 0, 4 * 20 * 30 * 3),
        ("crop=0,0,9,2; resize=4x20", 4, 13, 9, 4 * 13 * 9 * 3, 0),
        ("flip=h", 4, 13, 9, 0, 0),
    ];
    for (i, &(text, n, h, w, out_side, in_side)) in runs.iter().enumerate() {
        let p: Pipeline = text.parse().unwrap();
        let input = SharedArray::<u8>::from_shape_fn(&[n, h, w, 3], |ix| {
            to::<u8>(sample(ix[0] + 10 * i, ix[1], ix[2], ix[3]))
        })
        .unwrap();
        let dims = batch::output_shape(&p, input.shape()).unwrap();
        let mut out = SharedArray::<u8>::zeroed_shape(&dims).unwrap();
        batch::apply_into_with(&mut pool, &p, &input, &mut out, &mut scratch).unwrap();
        let per = out.len() / n;
        for k in 0..n {
            let want = reference::<u8>(&p, Shape::new(h, w, 3), k + 10 * i);
            assert!(&out[k * per..(k + 1) * per] == want.as_slice(), "run {i} `{text}` image {k}");
        }
        // What a run does not use is let go (a same-sized run uses none).
        assert_eq!(scratch.bytes(), out_side + in_side, "run {i} `{text}`");
    }
    // One image in bands: its blurs' copies go through the same scratch (one array per blur
    // in a row, at most two), on new images each run.
    let (h, w) = (31, 23);
    for (i, (text, arrays)) in
        [("blur=1.5", 1), ("blur=1; sharpen=1; brightness=0.1", 2), ("blur=2", 1), ("gamma=2", 0)]
            .into_iter()
            .enumerate()
    {
        let p: Pipeline = text.parse().unwrap();
        let img = SharedArray::<u8>::from_shape_fn(&[h, w, 3], |ix| {
            to::<u8>(sample(i, ix[0], ix[1], ix[2]))
        })
        .unwrap();
        let mut out = SharedArray::<u8>::zeroed_shape(&[h, w, 3]).unwrap();
        batch::apply_into_with(&mut pool, &p, &img, &mut out, &mut scratch).unwrap();
        let want = reference::<u8>(&p, Shape::new(h, w, 3), i);
        assert!(out[..] == *want.as_slice(), "one image `{text}`");
        assert_eq!(scratch.bytes(), arrays * h * w * 3, "one image `{text}`");
    }
}

/// One named array opened twice, as input and, reshaped to the turned dimensions, as output of
/// a quarter turn (one length, so it reaches the pool, where the batch reshapes the output
/// back to the input's dimensions while the job runs): refused, as the same array passed
/// twice, not turned in place through itself (each chunk would read rows another overwrote).
#[test]
fn one_array_as_input_and_reshaped_output_is_refused() {
    let mut pool = pool(4);
    let opts = shmpool::ShmOptions::new().generated_name();
    let img = SharedArray::<u8>::from_shape_fn_with(&[4, 6, 3], &opts, |ix| ix[1] as u8).unwrap();
    // SAFETY: the second view is only handed to the batch, which must refuse it before any
    // worker writes through it; this thread reads `img` only after that call returned.
    let mut alias = unsafe { SharedArray::<u8>::open(img.name().unwrap()) }.unwrap();
    alias.reshape(&[6, 4, 3]).unwrap();
    let before = img.to_vec();
    let e = batch::apply_into(&mut pool, &"rotate=90".parse().unwrap(), &img, &mut alias);
    let e = e.unwrap_err().to_string();
    assert!(e.contains("pass it once"), "{e}");
    assert_eq!(img.to_vec(), before, "nothing was written");
    assert_eq!(alias.shape(), &[6, 4, 3], "the output's dimensions are given back");
}
