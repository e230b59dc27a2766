//! Attacks on the EXIF orientation of PNG, WebP and TIFF inputs (`shmpool images`, sixth
//! session: `decode`'s walk of a PNG's chunks, the WebP VP8X flag and `Exif\0\0` prefixes): a
//! PNG with several eXIf chunks before and after its pixels (the last one is the EXIF, as for
//! Pillow's `exif_transpose` of a freshly opened file), WebP RIFF chunks whose sizes, padding,
//! flags and order lie, TIFF IFD cycles and orientation in odd types and counts, every
//! truncation of small files with EXIF, and a turn of a PNG whose EXIF follows its pixels at
//! exactly `--max-alloc-mib`. Every hostile file must decode, or fail alone with a message,
//! quickly, under the engines that decode in the parent process too (`rayon`, `sequential`),
//! where a panic would be the whole batch.

use std::time::{Duration, Instant};

use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use serde_json::Value;

mod support;

use support::{
    Scratch, UPRIGHT, error_of, exif_orientation, images_json, pillow_pixels, png_exif_chunk,
    png_with_exif, stored,
};

const ENGINES: [&str; 3] = ["pool", "rayon", "sequential"];

/// A TIFF IFD entry: tag, type, count, value field.
use support::TiffEntry as Entry;

/// A PNG case: its name, the EXIF of its eXIf chunks before and after the pixels, whether it
/// comes out turned upright from `stored(6)`, whether Pillow opens it.
type PngCase = (&'static str, Vec<Vec<u8>>, Vec<Vec<u8>>, bool, bool);

/// A TIFF case: its name, the orientation entry, the next-IFD offset (`None`: a cycle), and
/// `Some(turned)` where it must decode.
type TiffCase = (&'static str, Vec<Entry>, Option<u32>, Option<bool>);

/// A little-endian TIFF structure whose first IFD holds the orientation `o` (SHORT, count 1):
/// EXIF as a PNG's eXIf or a WebP's EXIF chunk holds it, without JPEG's `Exif\0\0`.
fn tiff_exif(o: u16) -> Vec<u8> {
    exif_orientation(o, false)[6..].to_vec()
}

/// `exif` after `n` of JPEG's `Exif\0\0`.
fn prefixed(n: usize, exif: &[u8]) -> Vec<u8> {
    [b"Exif\0\0".repeat(n), exif.to_vec()].concat()
}

/// `img` as a PNG with an eXIf chunk for each of `before` (after IHDR, in order) and `after`
/// (before IEND, in order).
fn png(img: &RgbImage, before: &[Vec<u8>], after: &[Vec<u8>]) -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let mut png = png.into_inner();
    for exif in before.iter().rev() {
        png = png_with_exif(&png, exif);
    }
    let iend = png.len() - 12;
    assert_eq!(&png[iend + 4..iend + 8], b"IEND");
    let late: Vec<u8> = after.iter().flat_map(|e| png_exif_chunk(e)).collect();
    png.splice(iend..iend, late);
    png
}

/// Runs `shmpool images` on `dir` with `args`, checks it did not crash (exit 0 or 1, every file
/// of `dir` in the JSON, no error saying a worker died, panicked or timed out) and returns the
/// JSON.
fn run_alone(s: &Scratch, args: &[&str]) -> Value {
    let t = Instant::now();
    let (code, json, stderr) = images_json(&s.input(), &s.out(), args);
    assert!(matches!(code, Some(0 | 1)), "{args:?}: exit {code:?}: {stderr}");
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), std::fs::read_dir(s.input()).unwrap().count(), "{args:?}: {json}");
    for f in files {
        if let Some(e) = f["error"].as_str() {
            let crash = ["worker", "panicked", "timed out"].iter().any(|w| e.contains(w));
            assert!(!crash, "{args:?}: {}: {e}", f["input"]);
        }
    }
    assert!(t.elapsed() < Duration::from_secs(60), "{args:?}: {:?}", t.elapsed());
    json
}

/// The output of `name` (written as PNG) as RGB.
fn output(s: &Scratch, name: &str) -> RgbImage {
    let stem = name.rsplit_once('.').unwrap().0;
    image::open(s.out().join(format!("{stem}.png"))).unwrap().into_rgb8()
}

/// A PNG's EXIF is its last eXIf chunk, before or after the pixels: Pillow's `exif_transpose`
/// loads a freshly opened image before it reads the EXIF, and each eXIf it reads replaces the
/// one before. (The decoder took the first before the pixels, and one after them only where
/// none came before: eXIf 1 before and 6 after came out as stored, where Pillow turns it.) An
/// unreadable last one counts as none (Pillow raises on it). Checked under every engine, and
/// against Pillow where it opens the file.
#[test]
fn a_png_s_last_exif_chunk_is_its_exif_as_for_pillow() {
    let s = Scratch::new("adversary-orient", "png-last");
    let (six, one, three) = (tiff_exif(6), tiff_exif(1), tiff_exif(3));
    let no_entries = b"II*\0\x08\0\0\0\0\0\0\0\0\0".to_vec();
    let junk = b"junkjunk".to_vec();
    // (name, before, after, turned upright from stored(6), Pillow opens it)
    let cases: Vec<PngCase> = vec![
        ("early1-late6", vec![one.clone()], vec![six.clone()], true, true),
        ("early3-late6", vec![three.clone()], vec![six.clone()], true, true),
        ("early6-late1", vec![six.clone()], vec![one.clone()], false, true),
        ("two-early-3-6", vec![three.clone(), six.clone()], vec![], true, true),
        ("two-early-6-1", vec![six.clone(), one.clone()], vec![], false, true),
        ("two-late-3-6", vec![], vec![three.clone(), six.clone()], true, true),
        ("early3-late-junk-6", vec![three.clone()], vec![junk.clone(), six.clone()], true, true),
        ("early1-late-prefixed6", vec![one.clone()], vec![prefixed(1, &six)], true, true),
        ("early6-late-empty", vec![six.clone()], vec![vec![]], false, true),
        ("early6-late-no-entries", vec![six.clone()], vec![no_entries], false, true),
        ("early6-late-junk", vec![six.clone()], vec![junk], false, false),
        ("early6-late-prefixed-twice", vec![six.clone()], vec![prefixed(2, &six)], false, false),
    ];
    for (name, before, after, _, _) in &cases {
        std::fs::write(s.input().join(format!("{name}.png")), png(&stored(6), before, after))
            .unwrap();
    }
    for engine in ENGINES {
        let json = run_alone(&s, &["--engine", engine]);
        for (name, _, _, turned, _) in &cases {
            assert_eq!(error_of(&json, &format!("{name}.png")), None, "{name}: {json}");
            let got = output(&s, &format!("{name}.png"));
            let want = if *turned { stored(1) } else { stored(6) };
            assert!(
                got == want,
                "{name}, --engine {engine}: turned: {}",
                got.dimensions() == UPRIGHT
            );
        }
    }
    for (name, _, _, _, pillow_opens) in &cases {
        let file = s.input().join(format!("{name}.png"));
        if !pillow_opens {
            continue;
        }
        if let Some((w, h, px)) = pillow_pixels(&file, "im = ImageOps.exif_transpose(im)", "RGB") {
            let got = output(&s, &format!("{name}.png"));
            assert_eq!((w, h), got.dimensions(), "{name}: Pillow's size");
            assert!(px == *got.as_raw(), "{name}: Pillow's exif_transpose differs");
        }
    }
}

/// A RIFF chunk: fourcc, `size` (the data's length unless given), data, a pad byte after odd
/// data unless `pad` is false.
fn chunk(fourcc: &[u8; 4], data: &[u8], size: Option<u32>, pad: bool) -> Vec<u8> {
    let mut c = fourcc.to_vec();
    c.extend(size.unwrap_or(data.len() as u32).to_le_bytes());
    c.extend(data);
    if pad && data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

/// The VP8L chunk of `img` as a lossless WebP.
fn vp8l(img: &RgbImage) -> Vec<u8> {
    let mut webp = Vec::new();
    let (w, h) = img.dimensions();
    WebPEncoder::new_lossless(&mut webp).write_image(img, w, h, ExtendedColorType::Rgb8).unwrap();
    assert_eq!(&webp[12..16], b"VP8L");
    webp[12..].to_vec()
}

/// A WebP: RIFF (its size `riff` unless given), a VP8X header of `flags` and canvas `canvas`,
/// the VP8L chunk `image`, then `rest`.
fn webp(
    flags: u8,
    canvas: (u32, u32),
    image: &[u8],
    rest: &[Vec<u8>],
    riff: Option<u32>,
) -> Vec<u8> {
    let mut x = vec![flags, 0, 0, 0];
    x.extend(&(canvas.0 - 1).to_le_bytes()[..3]);
    x.extend(&(canvas.1 - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend(chunk(b"VP8X", &x, None, true));
    body.extend(image);
    body.extend(rest.concat());
    let mut f = b"RIFF".to_vec();
    f.extend(riff.unwrap_or(body.len() as u32).to_le_bytes());
    f.extend(body);
    f
}

/// WebP files whose RIFF chunks lie: the VP8X EXIF flag without a chunk or a chunk without the
/// flag, one to three `Exif\0\0` prefixes, two EXIF chunks (the first counts, as for libwebp),
/// an empty one, an odd one unpadded, chunk sizes of `u32::MAX` and past the end, a RIFF size
/// of `u32::MAX` or too short, an empty unknown chunk before the EXIF, a canvas of 16384x16384
/// over 6x4 pixels. Each decodes (upright where its EXIF is the one libwebp finds and reads,
/// as stored where unreadable) or fails alone, under every engine.
#[test]
fn webp_chunks_that_lie_decode_or_fail_alone() {
    let s = Scratch::new("adversary-orient", "webp-riff");
    let img = stored(6);
    let (w, h) = img.dimensions();
    let px = vp8l(&img);
    let exif = |data: &[u8]| chunk(b"EXIF", data, None, true);
    let six = tiff_exif(6);
    const EXIF: u8 = 0x08;
    // (name, file, Some(turned upright) or None: refused)
    let cases: Vec<(&str, Vec<u8>, Option<bool>)> = vec![
        ("announced", webp(EXIF, (w, h), &px, &[exif(&six)], None), Some(true)),
        ("unannounced", webp(0, (w, h), &px, &[exif(&six)], None), Some(false)),
        ("announced-missing", webp(EXIF, (w, h), &px, &[], None), None),
        ("prefix1", webp(EXIF, (w, h), &px, &[exif(&prefixed(1, &six))], None), Some(true)),
        ("prefix2", webp(EXIF, (w, h), &px, &[exif(&prefixed(2, &six))], None), Some(true)),
        ("prefix3", webp(EXIF, (w, h), &px, &[exif(&prefixed(3, &six))], None), Some(false)),
        (
            "first6-then1",
            webp(EXIF, (w, h), &px, &[exif(&six), exif(&tiff_exif(1))], None),
            Some(true),
        ),
        (
            "first-junk-then6",
            webp(EXIF, (w, h), &px, &[exif(b"junk"), exif(&six)], None),
            Some(false),
        ),
        ("empty", webp(EXIF, (w, h), &px, &[exif(b"")], None), Some(false)),
        (
            "size-u32-max",
            webp(EXIF, (w, h), &px, &[chunk(b"EXIF", &six, Some(u32::MAX), true)], None),
            Some(false),
        ),
        (
            "size-past-end",
            webp(EXIF, (w, h), &px, &[chunk(b"EXIF", &six, Some(1 << 30), true)], None),
            Some(false),
        ),
        ("riff-u32-max", webp(EXIF, (w, h), &px, &[exif(&six)], Some(u32::MAX)), Some(true)),
        ("riff-short", webp(EXIF, (w, h), &px, &[exif(&six)], Some(20)), None),
        (
            "empty-unknown-first",
            webp(EXIF, (w, h), &px, &[chunk(b"ZZZZ", b"", None, true), exif(&six)], None),
            Some(true),
        ),
    ];
    // Outcomes that depend on the decoder's leniency: each must only decode or fail alone.
    let odd = [six.clone(), b"x".to_vec()].concat();
    let unpadded = webp(EXIF, (w, h), &px, &[chunk(b"EXIF", &odd, None, false)], None);
    let canvas = webp(EXIF, (16384, 16384), &px, &[exif(&six)], None);
    // An EXIF chunk before the image whose size swallows it (the chunks overlap), one before
    // the image that does not, and the animation flag without ANIM or ANMF chunks.
    let swallowing = {
        let mut f = webp(EXIF, (w, h), &[], &[chunk(b"EXIF", &six, None, true)], None);
        let at = f.len() - six.len() - 4;
        f[at..at + 4].copy_from_slice(&((six.len() + px.len()) as u32).to_le_bytes());
        f.extend(&px);
        let riff = (f.len() - 8) as u32;
        f[4..8].copy_from_slice(&riff.to_le_bytes());
        f
    };
    let exif_first = webp(EXIF, (w, h), &[], &[exif(&six), px.clone()], None);
    let animated = webp(EXIF | 0x02, (w, h), &px, &[exif(&six)], None);
    let free = [
        ("odd-unpadded", unpadded),
        ("canvas-16384", canvas),
        ("exif-swallows-image", swallowing),
        ("exif-before-image", exif_first),
        ("animation-flag-alone", animated),
    ];
    for (name, bytes, _) in &cases {
        std::fs::write(s.input().join(format!("{name}.webp")), bytes).unwrap();
    }
    for (name, bytes) in &free {
        std::fs::write(s.input().join(format!("{name}.webp")), bytes).unwrap();
    }
    for engine in ENGINES {
        let json = run_alone(&s, &["--engine", engine]);
        for (name, _, want) in &cases {
            let file = format!("{name}.webp");
            match (want, error_of(&json, &file)) {
                (None, Some(e)) => assert!(e.contains("WEBP"), "{name}: {e}"),
                (Some(turned), None) => {
                    let got = output(&s, &file);
                    let want = if *turned { stored(1) } else { stored(6) };
                    assert!(got == want, "{name}, --engine {engine}: {:?}", got.dimensions());
                }
                (want, got) => panic!("{name}, --engine {engine}: want {want:?}, error {got:?}"),
            }
        }
    }
    // The 4 GiB chunk size under an allocation limit past it: refused by the reader's bounds,
    // not by allocating it.
    let json = run_alone(&s, &["--engine", "sequential", "--max-alloc-mib", "8192"]);
    assert_eq!(error_of(&json, "size-u32-max.webp"), None, "{json}");
    assert!(output(&s, "size-u32-max.webp") == stored(6));
}

/// A gray TIFF of `w`x`h` whose pixels are a gradient ([`support::gray_tiff`]).
fn gray_tiff(w: u16, h: u16, extra: &[Entry], next: Option<u32>) -> Vec<u8> {
    let pixels: Vec<u8> = (0..u32::from(w) * u32::from(h)).map(|i| (i * 37 % 251) as u8).collect();
    support::gray_tiff(w.into(), h.into(), &pixels, extra, next)
}

/// TIFF's Orientation tag in odd forms, and IFD chains that loop: an IFD whose next-IFD offset
/// is itself, or past the end; the orientation as SHORT 6 (turns), LONG 6 (turns: the tiff
/// crate reads either, as Pillow does), SSHORT, BYTE, ASCII, RATIONAL, with a count of 0 or of
/// 2^30 (its values past the end). Each decodes or fails alone, quickly, under every engine.
#[test]
fn tiff_orientation_in_odd_forms_and_ifd_cycles_decode_or_fail_alone() {
    let s = Scratch::new("adversary-orient", "tiff-odd");
    let o = |ty: u16, count: u32, value: [u8; 4]| vec![(274u16, ty, count, value)];
    let six = [6, 0, 0, 0];
    let cases: Vec<TiffCase> = vec![
        ("short6", o(3, 1, six), Some(0), Some(true)),
        ("long6", o(4, 1, six), Some(0), Some(true)),
        ("cycle6", o(3, 1, six), None, None),
        ("next-past-end6", o(3, 1, six), Some(u32::MAX - 3), None),
        ("sshort6", o(8, 1, six), Some(0), None),
        ("byte6", o(1, 1, six), Some(0), None),
        ("ascii6", o(2, 2, *b"6\0\0\0"), Some(0), None),
        ("rational", o(5, 1, [8, 0, 0, 0]), Some(0), None),
        ("count0", o(3, 0, six), Some(0), None),
        ("count-2^30", o(3, 1 << 30, six), Some(0), None),
        ("short-ffff", o(3, 1, [0xff, 0xff, 0, 0]), Some(0), Some(false)),
    ];
    let (w, h) = (6u16, 4u16);
    for (name, extra, next, _) in &cases {
        std::fs::write(s.input().join(format!("{name}.tiff")), gray_tiff(w, h, extra, *next))
            .unwrap();
    }
    for engine in ENGINES {
        let json = run_alone(&s, &["--engine", engine]);
        for (name, _, _, want) in &cases {
            let file = format!("{name}.tiff");
            let Some(turned) = want else { continue };
            assert_eq!(error_of(&json, &file), None, "{name}: {json}");
            let got = output(&s, &file).dimensions();
            let want =
                if *turned { (u32::from(h), u32::from(w)) } else { (u32::from(w), u32::from(h)) };
            assert_eq!(got, want, "{name}, --engine {engine}");
        }
    }
}

/// Every truncation (1 byte to all but the last) of a small PNG with eXIf before and after its
/// pixels, a WebP with an announced, prefixed EXIF chunk, a TIFF with its orientation tag and a
/// JPEG with an EXIF APP1: under `--engine sequential` and `rayon`, which decode in the parent
/// process, each of the hundreds of files decodes or fails alone and the batch finishes.
#[test]
fn every_truncation_of_small_files_with_exif_decodes_or_fails_alone() {
    let s = Scratch::new("adversary-orient", "truncated");
    let img = RgbImage::from_fn(6, 4, |x, y| image::Rgb([x as u8 * 40, y as u8 * 60, 90]));
    let (w, h) = img.dimensions();
    let png_file = png(&img, &[prefixed(1, &tiff_exif(1))], &[tiff_exif(6)]);
    let webp_file = webp(
        0x08,
        (w, h),
        &vp8l(&img),
        &[chunk(b"EXIF", &prefixed(2, &tiff_exif(6)), None, true)],
        None,
    );
    let tiff_file = gray_tiff(6, 4, &[(274, 3, 1, [6, 0, 0, 0])], Some(0));
    let mut jpeg_file = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut jpeg_file, 90);
    e.add_app_segment(1, exif_orientation(6, true)).unwrap();
    e.encode(&[128; 8 * 8], 8, 8, jpeg_encoder::ColorType::Luma).unwrap();
    let files = [("png", png_file), ("webp", webp_file), ("tiff", tiff_file), ("jpg", jpeg_file)];
    let mut n = 0;
    for (ext, bytes) in &files {
        for len in 1..bytes.len() {
            std::fs::write(s.input().join(format!("{ext}-{len:05}.{ext}")), &bytes[..len]).unwrap();
            n += 1;
        }
    }
    assert!(n > 500, "{n} files");
    for engine in ["sequential", "rayon"] {
        let json = run_alone(&s, &["--engine", engine]);
        let failed = json["files"].as_array().unwrap().iter().filter(|f| f["error"].is_string());
        assert!(failed.count() > 0, "--engine {engine}: no truncation failed?");
    }
}

/// A PNG whose only eXIf (6) follows its pixels counts its quarter turn against
/// `--max-alloc-mib` as one before them does: an RGB image whose buffer, twice, is just within
/// 1 MiB decodes upright; one row more is refused naming the turn (as stored it would fit).
#[test]
fn a_late_exif_quarter_turn_counts_against_max_alloc() {
    let s = Scratch::new("adversary-orient", "late-alloc");
    // 3 bytes a pixel: 512x341 is 523776 bytes, twice within 1 MiB; 512x342, twice, is over.
    let gradient =
        |w: u32, h: u32| RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
    std::fs::write(s.input().join("fits.png"), png(&gradient(512, 341), &[], &[tiff_exif(6)]))
        .unwrap();
    std::fs::write(s.input().join("over.png"), png(&gradient(512, 342), &[], &[tiff_exif(6)]))
        .unwrap();
    for engine in ENGINES {
        let json = run_alone(&s, &["--engine", engine, "--max-alloc-mib", "1"]);
        assert_eq!(error_of(&json, "fits.png"), None, "{json}");
        assert_eq!(output(&s, "fits.png").dimensions(), (341, 512));
        let e = error_of(&json, "over.png").unwrap_or_else(|| panic!("over.png decoded: {json}"));
        assert!(e.contains("turning upright") && e.contains("--no-auto-orient"), "{e}");
        let json = run_alone(&s, &["--engine", engine, "--max-alloc-mib", "1", "--no-auto-orient"]);
        assert_eq!(error_of(&json, "over.png"), None, "{json}");
    }
}
