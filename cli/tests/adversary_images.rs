//! Attacks on issue 12's EXIF orientation on decode (`shmpool images`, fifth session): hostile
//! EXIF (an IFD that points at itself, an entry count past the end, orientation of the wrong
//! type or count, values whose low byte is a valid orientation), the degenerate sizes a turn
//! swaps (1x1, 65535x1), the turn at exactly `--max-pixels` and `--max-alloc-mib`, a PNG with
//! two eXIf chunks or one after its pixels, and TIFF's own orientation tag with huge values.
//! Every file must decode, or fail alone with a message; none may crash a worker.

use std::path::Path;
use std::process::Command;

use image::{GrayImage, Luma};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use serde_json::Value;

mod support;

use support::{Scratch, error_of, images_json, png_exif_chunk};

/// Runs `shmpool images INPUT --out OUT --json` plus `args`: its exit code and JSON.
fn run(input: &Path, out: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let (code, json, _) = images_json(input, out, args);
    (code, json)
}

/// Asserts no file's error says its worker died, panicked or timed out: a hostile file must
/// be refused by the decoder, not crash the process decoding it.
fn assert_no_crash(json: &Value) {
    for f in json["files"].as_array().unwrap() {
        if let Some(e) = f["error"].as_str() {
            let crash = ["worker", "panicked", "timed out"].iter().any(|w| e.contains(w));
            assert!(!crash, "{}: {e}", f["input"]);
        }
    }
}

/// A gray JPEG of `img`, with an optional APP1 segment.
fn jpeg(img: &GrayImage, app1: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out, 95);
    e.set_sampling_factor(SamplingFactor::F_1_1);
    if let Some(segment) = app1 {
        e.add_app_segment(1, segment).unwrap();
    }
    let (w, h) = img.dimensions();
    e.encode(img.as_raw(), w as u16, h as u16, ColorType::Luma).unwrap();
    out
}

/// A little-endian TIFF structure ("II", 42, IFD at 8) whose IFD0 holds `entries` (tag, type,
/// count, value field), then `next` as the next-IFD offset.
fn tiff_ifd(entries: &[Entry], next: u32) -> Vec<u8> {
    let mut t = b"II".to_vec();
    t.extend(42u16.to_le_bytes());
    t.extend(8u32.to_le_bytes());
    support::push_ifd(&mut t, entries, next);
    t
}

/// An IFD entry: tag, type, count, value field.
use support::TiffEntry as Entry;

/// A SHORT value field.
fn short(v: u16) -> [u8; 4] {
    let b = v.to_le_bytes();
    [b[0], b[1], 0, 0]
}

/// JPEG's APP1: "Exif\0\0" and the TIFF structure.
fn app1(tiff: Vec<u8>) -> Vec<u8> {
    let mut e = b"Exif\0\0".to_vec();
    e.extend(tiff);
    e
}

/// The orientation entry, SHORT, one value.
fn orientation(v: u16) -> Entry {
    (0x0112, 3, 1, short(v))
}

/// The upright test picture: four gray quadrants (40 top left, 100 top right, 160 bottom
/// left, 220 bottom right), 40x24.
const LEVELS: [u8; 4] = [40, 100, 160, 220];

fn upright() -> GrayImage {
    GrayImage::from_fn(40, 24, |x, y| {
        Luma([LEVELS[usize::from(x >= 20) + 2 * usize::from(y >= 12)]])
    })
}

/// The upright picture as a camera stores it under orientation 6 (row 0 on the right,
/// column 0 at the top): 24x40, stored `(sx, sy)` seen upright at `(w - 1 - sy, sx)`.
fn stored6() -> GrayImage {
    let up = upright();
    GrayImage::from_fn(24, 40, |sx, sy| *up.get_pixel(39 - sy, sx))
}

/// Whether `img` is the upright quadrant picture (each quadrant's centre within 12).
fn is_upright(img: &GrayImage) -> bool {
    img.dimensions() == (40, 24)
        && [(10, 6), (30, 6), (10, 18), (30, 18)]
            .iter()
            .zip(LEVELS)
            .all(|(&(x, y), want)| img.get_pixel(x, y).0[0].abs_diff(want) <= 12)
}

fn open_gray(path: &Path) -> GrayImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_luma8()
}

/// Hostile IFDs in a JPEG stored sideways (orientation 6): each decodes, turned where its
/// IFD0 does say 6, as stored otherwise. An IFD whose next-IFD offset points at itself
/// (a loop for a reader that follows the chain) still says 6; so does a 6 after many
/// unknown entries. An entry count of 65535 with two entries present, the orientation as
/// LONG or with a count of 2, 0x0106 (its low byte 6) and 0xFFFF say nothing usable.
#[test]
fn hostile_exif_ifds_decode_and_turn_only_on_a_real_orientation() {
    let s = Scratch::new("adversary", "hostile-ifd");
    let junk: Vec<_> = (0..300u16).map(|t| (0x9000 + t, 3, 1, short(t))).collect();
    let mut many = junk.clone();
    many.push(orientation(6));
    let mut counted = tiff_ifd(&[(0x0100, 3, 1, short(1)), (0x0101, 3, 1, short(1))], 0);
    counted[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("loop", tiff_ifd(&[orientation(6)], 8), true),
        ("many", tiff_ifd(&many, 0), true),
        ("count-past-end", counted, false),
        ("long", tiff_ifd(&[(0x0112, 4, 1, 6u32.to_le_bytes())], 0), false),
        ("count2", tiff_ifd(&[(0x0112, 3, 2, [6, 0, 6, 0])], 0), false),
        ("low-byte-6", tiff_ifd(&[orientation(0x0106)], 0), false),
        ("ffff", tiff_ifd(&[orientation(0xFFFF)], 0), false),
        (
            "ifd-past-end",
            {
                let mut t = tiff_ifd(&[orientation(6)], 0);
                t[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
                t
            },
            false,
        ),
    ];
    let img = stored6();
    for (name, tiff, _) in &cases {
        std::fs::write(s.input().join(format!("{name}.jpg")), jpeg(&img, Some(app1(tiff.clone()))))
            .unwrap();
    }
    let (code, json) = run(&s.input(), &s.out(), &[]);
    assert_no_crash(&json);
    assert_eq!(code, Some(0), "{json}");
    for (name, _, turned) in &cases {
        let got = open_gray(&s.out().join(format!("{name}.png")));
        if *turned {
            assert!(is_upright(&got), "{name}: not turned upright ({:?})", got.dimensions());
        } else {
            assert_eq!(got.dimensions(), img.dimensions(), "{name}: turned by unusable EXIF");
        }
    }
}

/// The sizes a quarter turn swaps: a 1x1 JPEG under every orientation stays 1x1 with its
/// level; a 65535x1 one under 6 and 8 comes out 1x65535 (and 65535x1 under 3), its gradient
/// running the way the orientation says.
#[test]
fn degenerate_sizes_turn_exactly() {
    let s = Scratch::new("adversary", "degenerate");
    let dot = GrayImage::from_pixel(1, 1, Luma([77]));
    for o in 1..=8u16 {
        let bytes = jpeg(&dot, Some(app1(tiff_ifd(&[orientation(o)], 0))));
        std::fs::write(s.input().join(format!("dot{o}.jpg")), bytes).unwrap();
    }
    // Bands of 4096 pixels (JPEG blocks blur a finer gradient), dark at stored column 0.
    let line = GrayImage::from_fn(65535, 1, |x, _| Luma([(x / 4096 * 15) as u8 + 10]));
    for o in [3u16, 6, 8] {
        let bytes = jpeg(&line, Some(app1(tiff_ifd(&[orientation(o)], 0))));
        std::fs::write(s.input().join(format!("line{o}.jpg")), bytes).unwrap();
    }
    let (code, json) = run(&s.input(), &s.out(), &[]);
    assert_no_crash(&json);
    assert_eq!(code, Some(0), "{json}");
    for o in 1..=8 {
        let got = open_gray(&s.out().join(format!("dot{o}.png")));
        assert_eq!(got.dimensions(), (1, 1), "dot {o}");
        assert!(got.get_pixel(0, 0).0[0].abs_diff(77) <= 2, "dot {o}: {:?}", got.get_pixel(0, 0));
    }
    let level = |img: &GrayImage, x: u32, y: u32| i32::from(img.get_pixel(x, y).0[0]);
    // 3: a half turn, stored column 0 at the right. 6: row 0 on the right, column 0 at the
    // top. 8: row 0 on the left, column 0 at the bottom.
    let got = open_gray(&s.out().join("line3.png"));
    assert_eq!(got.dimensions(), (65535, 1), "line 3");
    assert!(level(&got, 0, 0) > level(&got, 65534, 0) + 100, "line 3: not reversed");
    let got = open_gray(&s.out().join("line6.png"));
    assert_eq!(got.dimensions(), (1, 65535), "line 6");
    assert!(level(&got, 0, 0) + 100 < level(&got, 0, 65534), "line 6: column 0 not at the top");
    let got = open_gray(&s.out().join("line8.png"));
    assert_eq!(got.dimensions(), (1, 65535), "line 8");
    assert!(level(&got, 0, 0) > level(&got, 0, 65534) + 100, "line 8: column 0 not at the bottom");
}

/// A turn changes no pixel count: at exactly `--max-pixels` (960, the 24x40 image) it decodes
/// turned, one under it is refused (by its size, not by the turn), and the file alone fails.
#[test]
fn a_turned_image_at_exactly_max_pixels_decodes() {
    let s = Scratch::new("adversary", "max-pixels");
    let bytes = jpeg(&stored6(), Some(app1(tiff_ifd(&[orientation(6)], 0))));
    std::fs::write(s.input().join("o6.jpg"), bytes).unwrap();
    std::fs::write(s.input().join("plain.jpg"), jpeg(&GrayImage::new(8, 8), None)).unwrap();
    let (code, json) = run(&s.input(), &s.out(), &["--max-pixels", "960"]);
    assert_eq!(code, Some(0), "{json}");
    assert!(is_upright(&open_gray(&s.out().join("o6.png"))), "turned at the limit");
    let (code, json) = run(&s.input(), &s.out(), &["--max-pixels", "959"]);
    assert_eq!(code, Some(1), "{json}");
    let e = error_of(&json, "o6.jpg").expect("refused over the limit");
    assert!(e.contains("--max-pixels"), "{e}");
    assert_eq!(error_of(&json, "plain.jpg"), None, "{json}");
}

/// A quarter turn's two buffers at exactly `--max-alloc-mib`: a 1024x512 gray JPEG (512 KiB
/// decoded, twice that turned: exactly 1 MiB) decodes turned under `--max-alloc-mib 1`;
/// 1024x513 does not, and says which flags fix it.
#[test]
fn a_quarter_turn_exactly_at_max_alloc_decodes_and_one_row_more_is_refused() {
    let s = Scratch::new("adversary", "max-alloc");
    for h in [512u32, 513] {
        let img = GrayImage::from_fn(1024, h, |x, y| Luma([((x + y) % 200) as u8]));
        let bytes = jpeg(&img, Some(app1(tiff_ifd(&[orientation(6)], 0))));
        std::fs::write(s.input().join(format!("h{h}.jpg")), bytes).unwrap();
    }
    let (code, json) = run(&s.input(), &s.out(), &["--max-alloc-mib", "1"]);
    assert_no_crash(&json);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(error_of(&json, "h512.jpg"), None, "exactly at the limit: {json}");
    assert_eq!(open_gray(&s.out().join("h512.png")).dimensions(), (512, 1024), "turned");
    let e = error_of(&json, "h513.jpg").expect("one row over the limit is refused");
    assert!(e.contains("--max-alloc-mib") && e.contains("--no-auto-orient"), "{e}");
}

/// `img` as a PNG with eXIf chunks (TIFF structures) inserted: `before` ones after IHDR,
/// `after` ones after the last IDAT (before IEND).
fn png_with_exif(img: &GrayImage, before: &[Vec<u8>], after: &[Vec<u8>]) -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    with_exif(png.into_inner(), before, after)
}

/// The PNG `png` with eXIf chunks inserted, as [`png_with_exif`] does.
fn with_exif(png: Vec<u8>, before: &[Vec<u8>], after: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(&png[12..16], b"IHDR");
    let (ihdr_end, iend) = (8 + 25, png.len() - 12);
    assert_eq!(&png[iend + 4..iend + 8], b"IEND");
    let mut out = png[..ihdr_end].to_vec();
    before.iter().for_each(|t| out.extend(png_exif_chunk(t)));
    out.extend(&png[ihdr_end..iend]);
    after.iter().for_each(|t| out.extend(png_exif_chunk(t)));
    out.extend(&png[iend..]);
    out
}

/// A PNG with two eXIf chunks (6, then 3; the PNG specification allows one) fails alone or
/// decodes, upright or as stored, never crashing; a PNG whose one eXIf comes after its pixels
/// comes out upright, as Pillow's `exif_transpose` gives it (checked where Python has Pillow);
/// unreadable ones there (a TIFF header pointing past its end, an empty chunk) change nothing.
#[test]
fn png_with_two_exif_chunks_or_one_after_the_pixels_decodes_or_fails_alone() {
    let s = Scratch::new("adversary", "png-exif");
    let img = stored6();
    let (six, three) = (tiff_ifd(&[orientation(6)], 0), tiff_ifd(&[orientation(3)], 0));
    std::fs::write(s.input().join("two.png"), png_with_exif(&img, &[six.clone(), three], &[]))
        .unwrap();
    std::fs::write(s.input().join("late.png"), png_with_exif(&img, &[], &[six])).unwrap();
    std::fs::write(s.input().join("plain.png"), png_with_exif(&img, &[], &[])).unwrap();
    let junk = png_with_exif(&img, &[], &[b"MM\0*\xff\xff".to_vec(), vec![]]);
    std::fs::write(s.input().join("late-junk.png"), junk).unwrap();
    let (code, json) = run(&s.input(), &s.out(), &[]);
    assert_no_crash(&json);
    assert!(matches!(code, Some(0 | 1)), "{code:?}: {json}");
    assert_eq!(error_of(&json, "plain.png"), None, "{json}");
    assert_eq!(error_of(&json, "late.png"), None, "{json}");
    assert_eq!(error_of(&json, "late-junk.png"), None, "{json}");
    assert!(open_gray(&s.out().join("late-junk.png")) == img, "junk eXIf after IDAT: as stored");
    match error_of(&json, "two.png") {
        Some(e) => println!("two eXIf chunks: refused: {e}"),
        None => {
            let got = open_gray(&s.out().join("two.png"));
            let ok = is_upright(&got) || got == img;
            assert!(ok || got.dimensions() == (24, 40), "two eXIf: {:?}", got.dimensions());
            println!("two eXIf chunks: decoded {:?}", got.dimensions());
        }
    }
    // The `image` crate's PNG decoder reads the chunks before the pixels only; Pillow's
    // `exif_transpose` reads the file's eXIf wherever it is, and turns this one upright.
    let late = open_gray(&s.out().join("late.png"));
    assert!(is_upright(&late), "eXIf after IDAT: not turned upright ({:?})", late.dimensions());
    assert!(late == GrayImage::from_fn(40, 24, |x, y| *img.get_pixel(y, 39 - x)), "exactly");
    let pillow = Command::new("python3")
        .args([
            "-c",
            "import sys; from PIL import Image, ImageOps; \
             print(*ImageOps.exif_transpose(Image.open(sys.argv[1])).size)",
        ])
        .arg(s.input().join("late.png"))
        .output();
    if let Some(o) = pillow.ok().filter(|o| o.status.success()) {
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "40 24", "Pillow's size");
    }
}

/// A gray TIFF of `img` with `extra` IFD entries ([`support::gray_tiff`]).
fn tiff(img: &GrayImage, extra: &[Entry]) -> Vec<u8> {
    support::gray_tiff(img.width(), img.height(), img.as_raw(), extra, Some(0))
}

/// TIFF's own orientation tag: 6 turns it upright; values that are no orientation (0, 9,
/// 0x0106 whose low byte is 6, 65535, a LONG 0x10006 whose low half is 6, a count of 2) keep
/// it as stored. Lossless, so exactly.
#[test]
fn tiff_orientation_tag_turns_on_6_and_ignores_huge_values() {
    let s = Scratch::new("adversary", "tiff");
    let img = stored6();
    let cases: Vec<(&str, Entry, bool)> = vec![
        ("six", orientation(6), true),
        ("zero", orientation(0), false),
        ("nine", orientation(9), false),
        ("low-byte-6", orientation(0x0106), false),
        ("ffff", orientation(0xFFFF), false),
        ("long-huge", (0x0112, 4, 1, 0x0001_0006u32.to_le_bytes()), false),
    ];
    for (name, entry, _) in &cases {
        std::fs::write(s.input().join(format!("{name}.tif")), tiff(&img, &[*entry])).unwrap();
    }
    let (code, json) = run(&s.input(), &s.out(), &[]);
    assert_no_crash(&json);
    assert_eq!(code, Some(0), "{json}");
    let want_upright = GrayImage::from_fn(40, 24, |x, y| *img.get_pixel(y, 39 - x));
    assert!(is_upright(&want_upright), "the test's own turn");
    for (name, _, turned) in &cases {
        let got = open_gray(&s.out().join(format!("{name}.png")));
        let want = if *turned { &want_upright } else { &img };
        assert!(got == *want, "{name}: {:?}, want {:?}", got.dimensions(), want.dimensions());
    }
}

/// A 16-bit RGBA PNG (the widest samples a PNG holds) stored sideways with eXIf 6, before or
/// after its pixels: upright, every sample exact after the 8-bit conversion (alpha too).
#[test]
fn a_sixteen_bit_rgba_png_turns_upright_exactly() {
    let s = Scratch::new("adversary", "png16");
    let stored = stored6();
    let wide = image::ImageBuffer::<image::Rgba<u16>, _>::from_fn(24, 40, |x, y| {
        let v = u16::from(stored.get_pixel(x, y).0[0]) * 257;
        image::Rgba([v, 65535 - v, v / 2 * 2, 40000])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    wide.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    let six = tiff_ifd(&[orientation(6)], 0);
    std::fs::write(
        s.input().join("early.png"),
        with_exif(png.clone(), std::slice::from_ref(&six), &[]),
    )
    .unwrap();
    std::fs::write(s.input().join("late.png"), with_exif(png, &[], &[six])).unwrap();
    let (code, json) = run(&s.input(), &s.out(), &[]);
    assert_no_crash(&json);
    assert_eq!(code, Some(0), "{json}");
    let want = image::DynamicImage::ImageRgba16(wide).rotate90().into_rgba8();
    for name in ["early", "late"] {
        let got = image::open(s.out().join(format!("{name}.png"))).unwrap().into_rgba8();
        assert_eq!(got.dimensions(), (40, 24), "{name}");
        assert!(got == want, "{name}: not the 16-bit picture turned upright");
        // The red channel is the gray picture's level: upright, not merely turned some way.
        let red = GrayImage::from_fn(40, 24, |x, y| Luma([got.get_pixel(x, y).0[0]]));
        assert!(is_upright(&red), "{name}: the red channel is not upright");
    }
}
