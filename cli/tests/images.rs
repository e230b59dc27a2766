//! `shmpool images` end to end: the bundled samples, every per-file failure (corrupt,
//! truncated, empty, not an image, decompression bomb, a worker SIGKILLed mid-write, a hang, a
//! panic), `--fail-fast`, bad operations and `--pipeline`. Every case checks the exit status,
//! which files were written, and that no temporary file is left in the output directory.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod support;

use support::{Scratch, crc32, error_of, names, png_bytes, run_images};

/// The same image as a JPEG.
fn jpeg_bytes() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 20]));
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    buf.into_inner()
}

/// A valid PNG whose header claims `w` x `h` pixels (CRCs right), with almost no data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        out.extend(crc32(&out[start..]).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // A stored (uncompressed) zlib stream of 10 zero bytes.
    chunk(
        &mut out,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x0a, 0x00, 0xf5, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x0a,
            0x00, 0x01,
        ],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Runs `shmpool images` with `args` and `--json`: exit code and the parsed JSON.
fn run(args: &[&str]) -> (i32, Value, String) {
    let (code, json, stderr) = run_images(args);
    (code.expect("exited, not killed"), json, stderr)
}

/// A batch of `good.png` and `bad` holding `bytes`: exit 1, `good.png` written and decodable,
/// `bad` failed with an error containing `expect`, nothing else in the output directory.
fn one_bad_file(test: &str, bad: &str, bytes: &[u8], expect: &str, extra: &[&str]) {
    let s = Scratch::new("images", test);
    std::fs::write(s.input().join("good.png"), png_bytes()).unwrap();
    std::fs::write(s.input().join(bad), bytes).unwrap();
    let (input, out) = (s.input(), s.out());
    let mut args =
        vec![input.to_str().unwrap(), "--op", "resize=24x16", "--out", out.to_str().unwrap()];
    args.extend(extra);
    let (code, json, stderr) = run(&args);
    assert_eq!(code, 1, "one failed file makes the exit status 1; stderr: {stderr}");
    assert!(stderr.contains("1 of 2 files failed"), "{stderr}");
    let err = error_of(&json, bad).unwrap_or_else(|| panic!("{bad} not reported failed: {json}"));
    assert!(err.contains(expect), "{bad}: `{err}` does not say `{expect}`");
    assert_eq!(error_of(&json, "good.png"), None, "{json}");
    assert_eq!(names(&out), ["good.png"], "only the good file, and no temporary, in the output");
    let written = image::open(out.join("good.png")).unwrap();
    assert_eq!((written.width(), written.height()), (24, 16));
}

#[test]
fn bundled_samples_are_all_written() {
    let s = Scratch::new("images", "samples");
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
    let out = s.out();
    let (code, json, stderr) =
        run(&[samples, "--op", "resize=64x64", "--op", "blur=1.0", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let n = names(Path::new(samples)).len();
    assert_eq!(json["totals"]["written"], n);
    assert_eq!(names(&out).len(), n, "{:?}", names(&out));
    for name in names(&out) {
        assert!(name.ends_with(".png"), "{name}");
        let img = image::open(out.join(&name)).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64), "{name}");
    }
    for f in json["files"].as_array().unwrap() {
        let r = &f["report"];
        assert!(r["decode_ms"].as_f64().unwrap() >= 0.0 && r["encode_ms"].as_f64().unwrap() > 0.0);
        assert_eq!(r["out_shape"][0], 64);
    }
}

#[test]
fn every_output_format_decodes() {
    for (format, ext) in [("png", "png"), ("jpeg", "jpg"), ("webp", "webp"), ("tiff", "tiff")] {
        let s = Scratch::new("images", &format!("format-{format}"));
        std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
        std::fs::write(s.input().join("b.jpg"), jpeg_bytes()).unwrap();
        let (input, out) = (s.input(), s.out());
        let (code, _, stderr) = run(&[
            input.to_str().unwrap(),
            "--op",
            "rotate=90",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{format}: {stderr}");
        assert_eq!(names(&out), [format!("a.{ext}"), format!("b.{ext}")]);
        let a = image::open(out.join(format!("a.{ext}"))).unwrap();
        assert_eq!((a.width(), a.height()), (32, 48), "{format}: rotated");
    }
}

#[test]
fn corrupt_file_fails_alone() {
    let mut bytes = png_bytes();
    let n = bytes.len();
    for b in &mut bytes[n / 2..n / 2 + 40] {
        *b ^= 0x5a;
    }
    one_bad_file("corrupt", "corrupt.png", &bytes, "corrupt or truncated PNG", &[]);
}

#[test]
fn truncated_file_fails_alone() {
    let bytes = png_bytes();
    one_bad_file(
        "truncated",
        "truncated.png",
        &bytes[..bytes.len() / 2],
        "corrupt or truncated PNG",
        &[],
    );
}

#[test]
fn zero_byte_file_fails_alone() {
    one_bad_file("empty", "empty.png", &[], "empty (0 bytes)", &[]);
}

#[test]
fn wrong_extension_is_read_by_content() {
    // Text named .png fails; a JPEG named .png is a JPEG.
    one_bad_file(
        "text",
        "notes.png",
        b"hello, not an image\n",
        "not a PNG, JPEG, WebP or TIFF",
        &[],
    );
    let s = Scratch::new("images", "jpeg-named-png");
    std::fs::write(s.input().join("photo.png"), jpeg_bytes()).unwrap();
    let (input, out) = (s.input(), s.out());
    let (code, _, stderr) = run(&[input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&out), ["photo.png"]);
}

#[test]
fn decompression_bomb_is_refused_before_decoding() {
    let bomb = png_claiming(100_000, 100_000);
    one_bad_file("bomb", "bomb.png", &bomb, "over the limit of 100000000", &[]);
    // A lower --max-pixels refuses an ordinary 60x40 image (but not good.png's 48x32): the
    // limit is the option's.
    let mut big = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(60, 40).write_to(&mut big, image::ImageFormat::Png).unwrap();
    let big = big.into_inner();
    one_bad_file("bomb-limit", "big.png", &big, "raise --max-pixels", &["--max-pixels", "1600"]);
}

#[test]
fn worker_sigkilled_mid_write_fails_its_file_only() {
    one_bad_file(
        "sigkill",
        "kill-me.png",
        &png_bytes(),
        "SIGKILL",
        &["--workers", "2", "--test-kill-on", "kill-me.png"],
    );
}

#[test]
fn hanging_file_times_out_and_its_worker_is_replaced() {
    let t = std::time::Instant::now();
    one_bad_file(
        "hang",
        "hang.png",
        &png_bytes(),
        "timed out",
        &["--workers", "1", "--timeout", "1", "--test-hang-on", "hang.png"],
    );
    // One worker: good.png ran on the replacement (or before), and the wait was bounded.
    assert!(t.elapsed().as_secs() < 20);
}

#[test]
fn panicking_operation_fails_its_file_only() {
    one_bad_file("panic", "boom.png", &png_bytes(), "panicked", &["--test-panic-on", "boom.png"]);
}

#[test]
fn streamed_results_fail_each_bad_file_only() {
    // The path taken when the progress bar is drawn (a terminal): results one by one.
    let stream = "--test-stream-results";
    let kill = ["--workers", "2", "--test-kill-on", "kill-me.png", stream];
    one_bad_file("stream-sigkill", "kill-me.png", &png_bytes(), "SIGKILL", &kill);
    let hang = ["--workers", "1", "--timeout", "1", "--test-hang-on", "hang.png", stream];
    one_bad_file("stream-hang", "hang.png", &png_bytes(), "timed out", &hang);
    let panic = ["--test-panic-on", "boom.png", stream];
    one_bad_file("stream-panic", "boom.png", &png_bytes(), "panicked", &panic);
    one_bad_file("stream-empty", "empty.png", b"", "empty", &[stream]);
}

/// 24 files, two of which fail in their worker (one panics, one is SIGKILLed), on 2 workers,
/// with results taken as one job (the default off a terminal) or streamed: each failure is
/// reported against its own file, and the 22 others are written.
#[test]
fn failures_in_a_long_batch_are_reported_against_their_files() {
    for (case, extra) in [("one-job", &[][..]), ("streamed", &["--test-stream-results"][..])] {
        let s = Scratch::new("images", &format!("long-{case}"));
        for i in 0..24 {
            std::fs::write(s.input().join(format!("f{i:02}.png")), png_bytes()).unwrap();
        }
        let (input, out) = (s.input(), s.out());
        let mut args = vec![
            input.to_str().unwrap(),
            "--op",
            "resize=24x16",
            "--workers",
            "2",
            "--test-panic-on",
            "f07.png",
            "--test-kill-on",
            "f13.png",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let (code, json, stderr) = run(&args);
        assert_eq!(code, 1, "{case}: {stderr}");
        assert!(stderr.contains("2 of 24 files failed"), "{case}: {stderr}");
        let e07 = error_of(&json, "f07.png").unwrap_or_else(|| panic!("{case}: {json}"));
        assert!(e07.contains("panicked in its worker: test hook: panicking on f07.png"), "{e07}");
        let e13 = error_of(&json, "f13.png").unwrap_or_else(|| panic!("{case}: {json}"));
        assert!(e13.contains("SIGKILL"), "{case}: {e13}");
        let written = names(&out);
        assert_eq!(written.len(), 22, "{case}: {written:?}");
        for i in (0..24).filter(|i| ![7, 13].contains(i)) {
            let name = format!("f{i:02}.png");
            assert_eq!(error_of(&json, &name), None, "{case}: {json}");
            assert!(written.contains(&name), "{case}: {name} not written: {written:?}");
        }
    }
}

#[test]
fn failing_operation_fails_its_file_only() {
    // The crop fits good.png (48x32) but not the 40x30 JPEG.
    let s = Scratch::new("images", "crop");
    std::fs::write(s.input().join("good.png"), png_bytes()).unwrap();
    std::fs::write(s.input().join("small.jpg"), jpeg_bytes()).unwrap();
    let (input, out) = (s.input(), s.out());
    let (code, json, _) =
        run(&[input.to_str().unwrap(), "--op", "crop=0,0,44,32", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(error_of(&json, "small.jpg").unwrap().contains("reaches past"));
    assert_eq!(names(&out), ["good.png"]);
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let s = Scratch::new("images", "fail-fast");
    std::fs::write(s.input().join("a-empty.png"), b"").unwrap();
    for i in 0..6 {
        std::fs::write(s.input().join(format!("z{i}.png")), png_bytes()).unwrap();
    }
    let (input, out) = (s.input(), s.out());
    let (code, json, _) = run(&[
        input.to_str().unwrap(),
        "--workers",
        "1",
        "--fail-fast",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(error_of(&json, "a-empty.png").unwrap().contains("empty"));
    let not_run = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["error"].as_str().is_some_and(|e| e.contains("--fail-fast")))
        .count();
    assert!(not_run >= 1, "some files were never started: {json}");
    assert!(names(&out).iter().all(|n| !n.contains("shmpool-part")));
}

#[test]
fn bad_operation_is_refused_before_any_work() {
    let s = Scratch::new("images", "bad-op");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .args(["images", s.input().to_str().unwrap(), "--op", "blur=-2", "--out"])
        .arg(s.out())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad operation `blur=-2`") && stderr.contains("give blur=SIGMA"),
        "{stderr}"
    );
    assert!(!s.out().exists(), "nothing written");
}

#[test]
fn pipeline_file_runs_before_ops() {
    let s = Scratch::new("images", "pipeline");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    let file = s.0.join("ops.txt");
    std::fs::write(&file, "# thumbnails\ncrop=0,0,40,32\nrotate=270\n").unwrap();
    let (input, out) = (s.input(), s.out());
    let (code, json, stderr) = run(&[
        input.to_str().unwrap(),
        "--pipeline",
        file.to_str().unwrap(),
        "--op",
        "grayscale",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["pipeline"], serde_json::json!(["crop=0,0,40,32", "rotate=270", "grayscale"]));
    let img = image::open(out.join("a.png")).unwrap();
    assert_eq!((img.width(), img.height(), img.color().channel_count()), (32, 40, 1));
}

#[test]
fn pool_rayon_and_sequential_write_identical_files() {
    let s = Scratch::new("images", "engines");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    std::fs::write(s.input().join("b.jpg"), jpeg_bytes()).unwrap();
    let input = s.input();
    // PNG after resize + sharpen, and the benchmark's path: JPEG after resize + blur.
    for (format, ext, ops) in [
        ("png", "png", ["resize=30x20,lanczos3", "sharpen=1.0"]),
        ("jpeg", "jpg", ["resize=30x20", "blur=1.5"]),
    ] {
        let mut outputs = Vec::new();
        for engine in ["pool", "rayon", "sequential"] {
            let out = s.0.join(format!("{engine}-{format}"));
            let (code, json, stderr) = run(&[
                input.to_str().unwrap(),
                "--engine",
                engine,
                "--op",
                ops[0],
                "--op",
                ops[1],
                "--format",
                format,
                "--out",
                out.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{engine}: {stderr}");
            assert_eq!(json["totals"]["written"], 2, "{engine}");
            let bytes: Vec<Vec<u8>> = ["a", "b"]
                .iter()
                .map(|n| std::fs::read(out.join(format!("{n}.{ext}"))).unwrap())
                .collect();
            outputs.push(bytes);
        }
        assert_eq!(outputs[0], outputs[1], "{format}: pool and rayon differ");
        assert_eq!(outputs[0], outputs[2], "{format}: pool and sequential differ");
    }
}

#[test]
fn jpeg_output_of_every_channel_layout_decodes() {
    // Gray stays gray; gray+alpha and RGBA lose their alpha; 1x1 and 1xN encode; the quality
    // is the libjpeg one (a low quality makes a smaller file of the same image).
    let s = Scratch::new("images", "jpeg-layouts");
    let save = |name: &str, img: image::DynamicImage| img.save(s.input().join(name)).unwrap();
    let noise = |x: u32, y: u32| {
        (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_shr(7) as u8
    };
    save(
        "gray.png",
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(33, 17, |x, y| {
            image::Luma([noise(x, y)])
        })),
    );
    save(
        "gray-alpha.png",
        image::DynamicImage::ImageLumaA8(image::ImageBuffer::from_fn(20, 9, |x, y| {
            image::LumaA([noise(x, y), 7])
        })),
    );
    save(
        "rgba.png",
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(64, 48, |x, y| {
            image::Rgba([noise(x, y), noise(y, x), (x * 4) as u8, 30])
        })),
    );
    save(
        "one-pixel.png",
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1, 1, image::Rgb([9, 200, 30]))),
    );
    save(
        "column.png",
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(1, 40, |_, y| {
            image::Rgb([y as u8, 0, 9])
        })),
    );
    let input = s.input();
    let mut sizes = Vec::new();
    for quality in ["95", "10"] {
        let out = s.0.join(format!("q{quality}"));
        let (code, json, stderr) = run(&[
            input.to_str().unwrap(),
            "--format",
            "jpeg",
            "--quality",
            quality,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr} {json}");
        assert_eq!(names(&out).len(), 5, "{:?}", names(&out));
        for (name, color, w, h) in [
            ("gray", image::ColorType::L8, 33, 17),
            ("gray-alpha", image::ColorType::L8, 20, 9),
            ("rgba", image::ColorType::Rgb8, 64, 48),
            ("one-pixel", image::ColorType::Rgb8, 1, 1),
            ("column", image::ColorType::Rgb8, 1, 40),
        ] {
            let img = image::open(out.join(format!("{name}.jpg"))).unwrap();
            assert_eq!((img.color(), img.width(), img.height()), (color, w, h), "{name}");
        }
        sizes.push(std::fs::metadata(out.join("rgba.jpg")).unwrap().len());
    }
    assert!(sizes[1] < sizes[0], "quality 10 is not smaller than 95: {sizes:?}");
}

#[test]
fn image_too_wide_for_jpeg_fails_its_file_only() {
    // JPEG stores sizes in 16 bits: a 70000x1 image cannot be one; PNG can.
    let s = Scratch::new("images", "jpeg-too-wide");
    let wide = image::GrayImage::from_fn(70_000, 1, |x, _| image::Luma([(x % 251) as u8]));
    image::DynamicImage::ImageLuma8(wide).save(s.input().join("wide.png")).unwrap();
    std::fs::write(s.input().join("good.png"), png_bytes()).unwrap();
    let (input, out) = (s.input(), s.out());
    let (code, json, stderr) =
        run(&[input.to_str().unwrap(), "--format", "jpeg", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let err = error_of(&json, "wide.png").unwrap_or_else(|| panic!("not failed: {json}"));
    assert!(err.contains("65535") && err.contains("--format png"), "{err}");
    assert_eq!(names(&out), ["good.jpg"], "the failed file leaves nothing behind");
}

#[test]
fn edge_case_images_all_process() {
    let s = Scratch::new("images", "edge-cases");
    let save = |name: &str, img: image::DynamicImage| img.save(s.input().join(name)).unwrap();
    save(
        "one-pixel.png",
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1, 1, image::Rgb([9, 200, 30]))),
    );
    save(
        "row.png",
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 1, |x, _| {
            image::Luma([x as u8 * 6])
        })),
    );
    save(
        "column.png",
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(1, 40, |_, y| {
            image::Rgba([y as u8, 0, 9, 128])
        })),
    );
    save(
        "deep.png",
        image::DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(20, 10, |x, _| {
            image::Rgb([x as u16 * 3000, 65535, 0])
        })),
    );
    save(
        "gray-alpha.png",
        image::DynamicImage::ImageLumaA8(image::ImageBuffer::from_fn(12, 9, |x, y| {
            image::LumaA([(x * 20) as u8, (y * 25) as u8])
        })),
    );
    let (input, out) = (s.input(), s.out());
    for ops in
        [["resize=3x2,lanczos3", "blur=2"], ["sharpen=1.0", "edges"], ["rotate=270", "thumbnail=4"]]
    {
        let _ = std::fs::remove_dir_all(&out);
        let mut args = vec![input.to_str().unwrap(), "--out", out.to_str().unwrap()];
        for op in ops {
            args.extend(["--op", op]);
        }
        let (code, json, stderr) = run(&args);
        assert_eq!(code, 0, "{ops:?}: {stderr} {json}");
        assert_eq!(names(&out).len(), 5, "{ops:?}");
    }
    // 16-bit samples are decoded to 8 bits; alpha is kept.
    let alpha = image::open(out.join("gray-alpha.png")).unwrap();
    assert_eq!(alpha.color(), image::ColorType::La8);
}

#[test]
fn bad_timeout_is_refused() {
    let s = Scratch::new("images", "bad-timeout");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    for t in ["0", "-1", "1e30", "nan"] {
        let out = Command::new(env!("CARGO_BIN_EXE_shmpool"))
            .args(["images", s.input().to_str().unwrap(), &format!("--timeout={t}"), "--out"])
            .arg(s.out())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "--timeout {t}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("above 0"), "--timeout {t}");
        assert!(!s.out().exists(), "nothing written for --timeout {t}");
    }
}

#[test]
fn decode_over_the_allocation_limit_is_refused() {
    let s = Scratch::new("images", "alloc-limit");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    std::fs::write(s.input().join("b.jpg"), jpeg_bytes()).unwrap();
    let (input, out) = (s.input(), s.out());
    let (code, json, _) =
        run(&[input.to_str().unwrap(), "--max-alloc-mib", "0", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    for name in ["a.png", "b.jpg"] {
        let e = error_of(&json, name).unwrap();
        assert!(e.contains("raise --max-alloc-mib"), "{name}: {e}");
    }
    assert!(names(&out).is_empty());
}

/// The sampling factors (`h << 4 | v`) of a baseline JPEG's components, from its SOF0 header.
fn jpeg_sampling(bytes: &[u8]) -> Vec<u8> {
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline JPEG");
    let n = usize::from(bytes[sof + 9]);
    (0..n).map(|i| bytes[sof + 10 + 3 * i + 1]).collect()
}

#[test]
fn chroma_option_sets_the_jpeg_subsampling() {
    let s = Scratch::new("images", "chroma");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    let input = s.input();
    // (quality, --chroma, the luma component's factors: 0x22 is 4:2:0, 0x11 4:4:4)
    for (quality, chroma, luma) in
        [("90", "auto", 0x11), ("89", "auto", 0x22), ("90", "420", 0x22), ("50", "444", 0x11)]
    {
        let out = s.0.join(format!("q{quality}-{chroma}"));
        let (code, _, stderr) = run(&[
            input.to_str().unwrap(),
            "--format",
            "jpeg",
            "--quality",
            quality,
            "--chroma",
            chroma,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        let bytes = std::fs::read(out.join("a.jpg")).unwrap();
        assert_eq!(jpeg_sampling(&bytes), [luma, 0x11, 0x11], "quality {quality} {chroma}");
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (48, 32));
    }
}

/// An operation that would make an image past `--max-pixels` (here a 1048576x1048576 resize:
/// 3 TiB, which aborted the whole process under `rayon` and `sequential`, as an allocation
/// failure is not a panic) fails its file with the fix, before anything is allocated, under
/// every engine; an intermediate image past the limit counts too (shrunk again by a later
/// thumbnail); a raised limit lets a large-but-possible one through.
#[test]
fn output_over_the_pixel_limit_fails_its_file_under_every_engine() {
    let s = Scratch::new("images", "output-too-large");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    let (input, out) = (s.input(), s.out());
    for engine in ["pool", "rayon", "sequential"] {
        for ops in [["resize=1048576x1048576", "blur=1"], ["resize=20000x20000", "thumbnail=8"]] {
            let _ = std::fs::remove_dir_all(&out);
            let mut args = vec![input.to_str().unwrap(), "--out", out.to_str().unwrap()];
            args.extend(["--engine", engine, "--max-pixels", "100000000"]);
            for op in ops {
                args.extend(["--op", op]);
            }
            let (code, json, stderr) = run(&args);
            assert_eq!(code, 1, "{engine} {ops:?}: {stderr}");
            let err = error_of(&json, "a.png").unwrap_or_else(|| panic!("not failed: {json}"));
            assert!(err.contains("--max-pixels") && err.contains(ops[0]), "{engine}: {err}");
            assert!(names(&out).is_empty(), "{engine}: {:?}", names(&out));
        }
    }
    let args = [input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--max-pixels", "5000"];
    let (code, json, stderr) =
        run(&[&args[..], &["--op", "resize=100x50", "--op", "thumbnail=8"]].concat());
    assert_eq!(code, 0, "exactly at the limit is allowed: {stderr} {json}");
}

#[test]
fn pool_forks_while_single_threaded_and_uses_the_forkserver_otherwise() {
    let s = Scratch::new("images", "start-method");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    std::fs::write(s.input().join("b.jpg"), jpeg_bytes()).unwrap();
    let input = s.input();
    let mut outputs = Vec::new();
    for (name, extra, method) in [
        ("auto", &[][..], "fork"),
        ("thread", &["--test-extra-thread"][..], "forkserver"),
        ("spawn", &["--start-method", "spawn"][..], "spawn"),
    ] {
        let out = s.0.join(name);
        let mut args = vec![input.to_str().unwrap(), "--op", "blur=1.0", "--workers", "2"];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(extra);
        let (code, json, stderr) = run(&args);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(json["start_method"], method, "{name}: {json}");
        assert_eq!(json["totals"]["written"], 2, "{name}");
        outputs.push(
            names(&out).iter().map(|n| std::fs::read(out.join(n)).unwrap()).collect::<Vec<_>>(),
        );
    }
    assert_eq!(outputs[0], outputs[1], "fork and forkserver workers write the same files");
    assert_eq!(outputs[0], outputs[2], "fork and spawn workers write the same files");
    // Asked for fork with a second thread running: refused, with the fix, and nothing written.
    let out = s.0.join("refused");
    let refused = Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .args(["images", input.to_str().unwrap(), "--start-method", "fork", "--test-extra-thread"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing to fork") && stderr.contains("forkserver"), "{stderr}");
    assert!(!out.exists(), "nothing written");
    // The in-process engines start no pool.
    let (code, json, _) = run(&[
        input.to_str().unwrap(),
        "--engine",
        "rayon",
        "--out",
        s.0.join("rayon").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(json.get("start_method").is_none(), "{json}");
}

/// Set in the copy of this test binary that runs batches as a child subreaper.
const SUBREAPER: &str = "SHMPOOL_IMAGES_TEST_SUBREAPER";

#[test]
fn no_process_of_a_batch_outlives_the_command() {
    const TEST: &str = "no_process_of_a_batch_outlives_the_command";
    if std::env::var_os(SUBREAPER).is_some() {
        return batches_leave_no_process_behind();
    }
    // In a process of its own: it adopts every orphan, and must not reap other tests' children.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
        .env(SUBREAPER, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("checked 7 batches"), "the check did not run: {text}");
}

/// As a child subreaper, so that any process a batch leaves behind (a worker, the forkserver)
/// becomes this process's child once the command has exited: after each batch, this process
/// has no child at all.
fn batches_leave_no_process_behind() {
    // SAFETY: PR_SET_CHILD_SUBREAPER only changes which process adopts this one's orphans.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
    let s = Scratch::new("images", "reaped");
    std::fs::write(s.input().join("a.png"), png_bytes()).unwrap();
    std::fs::write(s.input().join("b.jpg"), jpeg_bytes()).unwrap();
    std::fs::write(s.input().join("c-empty.png"), b"").unwrap();
    let only_good = s.0.join("good");
    std::fs::create_dir_all(&only_good).unwrap();
    std::fs::write(only_good.join("a.png"), png_bytes()).unwrap();
    let no_images = s.0.join("none");
    std::fs::create_dir_all(&no_images).unwrap();
    std::fs::write(no_images.join("notes.txt"), b"no image here").unwrap();
    let (all, good, none) = (s.input(), only_good, no_images);
    let cases: [(&str, &Path, &[&str], i32); 7] = [
        ("every file written", &good, &["--workers", "2"], 0),
        ("a file failed", &all, &["--workers", "2"], 1),
        ("--fail-fast", &all, &["--fail-fast", "--workers", "1"], 1),
        ("a worker killed and replaced", &good, &["--workers", "2", "--test-kill-on", "a.png"], 1),
        ("forkserver workers", &good, &["--workers", "2", "--test-extra-thread"], 0),
        ("forkserver, a file failed", &all, &["--workers", "2", "--test-extra-thread"], 1),
        ("no image after the pool started", &none, &["--workers", "2"], 1),
    ];
    for (i, (what, input, extra, code)) in cases.iter().enumerate() {
        let out = s.0.join(format!("out-{i}"));
        let status = Command::new(env!("CARGO_BIN_EXE_shmpool"))
            .args(["images", input.to_str().unwrap(), "--json", "--out"])
            .arg(&out)
            .args(*extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(*code), "{what}");
        // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only `info`; WNOWAIT leaves any child found unreaped.
        let r = unsafe {
            libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
        };
        let errno = std::io::Error::last_os_error().raw_os_error();
        assert!(
            r == -1 && errno == Some(libc::ECHILD),
            "{what}: a process of the batch outlived the command (waitid: {r}, pid {})",
            // SAFETY: `info` was zeroed, and waitid filled it if it found a child.
            unsafe { info.si_pid() }
        );
    }
    println!("checked {} batches", cases.len());
}
