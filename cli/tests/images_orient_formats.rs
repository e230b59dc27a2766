//! `shmpool images` turns WebP and TIFF inputs upright by their EXIF orientation, as it does
//! JPEG and PNG (`images_photos.rs`), and keeps alpha turned with the pixels (issue #12's
//! edge cases). Every file is generated here, losslessly (WebP lossless, uncompressed TIFF,
//! PNG), so the pixels compare exactly: with the upright picture built from the EXIF
//! specification's words (`support::seen_at`), and with Pillow's `ImageOps.exif_transpose` on
//! the same file, which also shows Pillow reads the orientation where these files put it.

use std::path::Path;

use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage, RgbaImage};

mod support;

use support::{
    QUADRANTS, Scratch, UPRIGHT, assert_quadrants, diff, exif_orientation, pillow_pixels,
    png_exif_chunk, png_with_exif, run_ok, stored, upright,
};

const ENGINES: [&str; 3] = ["pool", "rayon", "sequential"];

/// The EXIF a WebP or PNG carries for `orientation`: a TIFF structure (no "Exif\0\0" prefix),
/// big-endian for odd orientations, little-endian for even ones.
fn exif_tiff(orientation: u16) -> Vec<u8> {
    exif_orientation(orientation, orientation % 2 == 1)[6..].to_vec()
}

/// `pixels` (RGB or RGBA by `color`) as a lossless WebP with an EXIF chunk holding `exif`,
/// announced by the flag of a VP8X header.
fn webp(pixels: &[u8], (w, h): (u32, u32), color: ExtendedColorType, exif: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = WebPEncoder::new_lossless(&mut out);
    e.set_exif_metadata(exif.to_vec()).unwrap();
    e.write_image(pixels, w, h, color).unwrap();
    assert_eq!(&out[12..16], b"VP8X", "an extended WebP");
    assert!(out[20] & 0x08 != 0, "the VP8X EXIF flag");
    assert!(out.windows(4).any(|c| c == b"EXIF"), "an EXIF chunk");
    out
}

/// TIFF field types.
const SHORT: u16 = 3;
const LONG: u16 = 4;

/// `img` as an uncompressed baseline RGB TIFF in one strip, with an Orientation tag (274) of
/// `orientation` (its field type, SHORT or LONG, and value) where given, in either byte order.
/// Built by hand: the `image` crate writes no Orientation tag.
fn tiff(img: &RgbImage, orientation: Option<(u16, u32)>, big_endian: bool) -> Vec<u8> {
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let (w, h) = img.dimensions();
    let data = img.as_raw();
    // Header, pixels, the three BitsPerSample values, then the IFD (at an even offset).
    let bits_at = 8 + data.len() as u32;
    let ifd_at = (bits_at + 6 + 1) & !1;
    let mut entries: Vec<(u16, u16, u32, u32)> = vec![
        (256, LONG, 1, w),
        (257, LONG, 1, h),
        (258, SHORT, 3, bits_at),
        (259, SHORT, 1, 1), // no compression
        (262, SHORT, 1, 2), // RGB
        (273, LONG, 1, 8),  // the strip right after the header
        (277, SHORT, 1, 3),
        (278, LONG, 1, h),
        (279, LONG, 1, data.len() as u32),
        (284, SHORT, 1, 1), // chunky
    ];
    if let Some((kind, o)) = orientation {
        entries.push((274, kind, 1, o));
    }
    entries.sort_by_key(|e| e.0);
    let mut out = if big_endian { b"MM".to_vec() } else { b"II".to_vec() };
    out.extend(u16b(42));
    out.extend(u32b(ifd_at));
    out.extend(data);
    for _ in 0..3 {
        out.extend(u16b(8));
    }
    out.resize(ifd_at as usize, 0);
    out.extend(u16b(entries.len() as u16));
    for (tag, kind, count, value) in entries {
        out.extend(u16b(tag));
        out.extend(u16b(kind));
        out.extend(u32b(count));
        if kind == SHORT && count == 1 {
            // A SHORT sits in the first two bytes of the value field, in either byte order.
            out.extend(u16b(value as u16));
            out.extend([0, 0]);
        } else {
            out.extend(u32b(value));
        }
    }
    out.extend(u32b(0)); // no next IFD
    out
}

/// The upright quadrant picture, 40x24.
fn upright_rgb() -> RgbImage {
    RgbImage::from_fn(UPRIGHT.0, UPRIGHT.1, |x, y| Rgb(upright(x, y)))
}

/// Pillow's `exif_transpose` of `file` in `mode`, after asserting Pillow reads `orientation`
/// from it (1 where the file has none); `None` where Pillow is missing outside CI.
fn pillow_upright(file: &Path, orientation: u16, mode: &str) -> Option<(u32, u32, Vec<u8>)> {
    let prep = format!(
        "assert im.getexif().get(274, 1) == {orientation}, dict(im.getexif())\n\
         im = ImageOps.exif_transpose(im)"
    );
    pillow_pixels(file, &prep, mode)
}

/// For each of `files` (`(name, orientation)` in `s.input()`, written as stored pixels of the
/// quadrant picture): under every engine each comes out exactly upright (40x24); Pillow's
/// `exif_transpose` of the same file gives the same pixels; `--no-auto-orient` gives the
/// stored pixels.
fn assert_upright_everywhere(s: &Scratch, kind: &str, files: &[(String, u16)]) {
    let want = upright_rgb();
    let out_name = |name: &str| format!("{}.png", name.rsplit_once('.').unwrap().0);
    for engine in ENGINES {
        run_ok(&s.input(), &s.out(), &["--engine", engine]);
        for (name, o) in files {
            let got = image::open(s.out().join(out_name(name))).unwrap().into_rgb8();
            let what = format!("{kind} orientation {o} ({name}), --engine {engine}");
            assert_eq!(got.dimensions(), UPRIGHT, "{what}");
            assert_quadrants(&what, &got, QUADRANTS);
            assert!(got == want, "{what}: not exactly the upright picture");
        }
    }
    for (name, o) in files {
        let Some((pw, ph, pillow)) = pillow_upright(&s.input().join(name), *o, "RGB") else {
            break;
        };
        assert_eq!((pw, ph), UPRIGHT, "{kind} orientation {o}: Pillow's size");
        assert!(
            pillow == *want.as_raw(),
            "{kind} orientation {o}: Pillow's exif_transpose differs"
        );
    }
    run_ok(&s.input(), &s.out(), &["--no-auto-orient"]);
    for (name, o) in files {
        let got = image::open(s.out().join(out_name(name))).unwrap().into_rgb8();
        let what = format!("{kind} orientation {o} ({name}), --no-auto-orient");
        assert!(got == stored(*o), "{what}: not the stored pixels");
    }
}

/// A lossless WebP's EXIF chunk (behind a VP8X header), orientations 1 to 8 in both TIFF
/// byte orders, comes out upright under every engine, as Pillow's `exif_transpose` has it;
/// `--no-auto-orient` keeps the stored pixels.
#[test]
fn webp_exif_orientations_come_out_upright() {
    let s = Scratch::new("orient-formats", "webp");
    let mut files = Vec::new();
    for o in 1..=8u16 {
        let img = stored(o);
        let bytes = webp(img.as_raw(), img.dimensions(), ExtendedColorType::Rgb8, &exif_tiff(o));
        let name = format!("o{o}.webp");
        std::fs::write(s.input().join(&name), bytes).unwrap();
        files.push((name, o));
    }
    assert_upright_everywhere(&s, "WebP", &files);
}

/// A TIFF's own Orientation tag (274 in its first IFD, SHORT or LONG), 1 to 8 in both byte
/// orders, comes out upright under every engine, as Pillow's `exif_transpose` has it;
/// `--no-auto-orient` keeps the stored pixels. A TIFF without the tag, or with 0 or 9 (no
/// orientation), is as stored.
#[test]
fn tiff_orientation_tag_comes_out_upright() {
    let s = Scratch::new("orient-formats", "tiff");
    let mut files = Vec::new();
    for o in 1..=8u16 {
        let name = format!("o{o}.tiff");
        // SHORT, as the specification has it; LONG for 7 and 8, which Pillow reads too.
        let kind = if o >= 7 { LONG } else { SHORT };
        let bytes = tiff(&stored(o), Some((kind, o.into())), o % 2 == 1);
        std::fs::write(s.input().join(&name), bytes).unwrap();
        files.push((name, o));
    }
    std::fs::write(s.input().join("none.tif"), tiff(&stored(1), None, false)).unwrap();
    files.push(("none.tif".to_string(), 1));
    assert_upright_everywhere(&s, "TIFF", &files);

    // Orientation 0 and 9 mean nothing: a file stored sideways stays sideways.
    let t = Scratch::new("orient-formats", "tiff-bad");
    for (name, value) in [("zero", 0), ("nine", 9)] {
        std::fs::write(
            t.input().join(format!("{name}.tif")),
            tiff(&stored(6), Some((SHORT, value)), true),
        )
        .unwrap();
    }
    run_ok(&t.input(), &t.out(), &[]);
    for name in ["zero", "nine"] {
        let got = image::open(t.out().join(format!("{name}.png"))).unwrap().into_rgb8();
        assert!(got == stored(6), "TIFF orientation {name}: not as stored");
    }
}

/// The alpha of the quadrant picture: a different opacity in each quadrant (none fully
/// transparent, so no encoder may change the colour under it).
const ALPHA: [u8; 4] = [255, 170, 90, 30];

/// The upright RGBA picture: the quadrant colours with [`ALPHA`].
fn upright_rgba() -> RgbaImage {
    let (w, h) = UPRIGHT;
    RgbaImage::from_fn(w, h, |x, y| {
        let [r, g, b] = upright(x, y);
        image::Rgba([r, g, b, ALPHA[usize::from(x >= w / 2) + 2 * usize::from(y >= h / 2)]])
    })
}

/// The upright RGBA picture as stored under `orientation`.
fn stored_rgba(orientation: u16) -> RgbaImage {
    let rgb = stored(orientation);
    let up = upright_rgba();
    let (w, h) = UPRIGHT;
    RgbaImage::from_fn(rgb.width(), rgb.height(), |sx, sy| {
        let (x, y) = support::seen_at(orientation, sx, sy);
        assert!(x < w && y < h);
        *up.get_pixel(x, y)
    })
}

/// An RGBA PNG (eXIf chunk) and an RGBA lossless WebP (EXIF chunk), both stored for
/// orientation 6 (a quarter turn): written as PNG they keep 4 channels, the alpha turned
/// with the colours, exactly as Pillow's `exif_transpose` turns them, and resized too
/// (`--op resize=20x12`: the quadrants' colour and alpha in place, within 1 of Pillow's
/// bilinear resize of each band); written as JPEG the alpha is dropped (3 channels, the
/// colours as they were, not blended with a background), as Pillow's `convert("RGB")` does;
/// and `--no-auto-orient` keeps the stored RGBA.
#[test]
fn rgba_png_and_webp_turn_their_alpha_with_the_pixels() {
    let s = Scratch::new("orient-formats", "alpha");
    let o = 6u16;
    let img = stored_rgba(o);
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png_with_exif(&png.into_inner(), &exif_tiff(o));
    std::fs::write(s.input().join("a.png"), png).unwrap();
    let bytes = webp(img.as_raw(), img.dimensions(), ExtendedColorType::Rgba8, &exif_tiff(o));
    std::fs::write(s.input().join("a.webp"), bytes).unwrap();
    let inputs = ["a.png", "a.webp"];
    let want = upright_rgba();

    // As decoded: 4 channels, exactly the upright RGBA, as Pillow has it.
    let json = run_ok(&s.input(), &s.out(), &[]);
    let got = |name: &str| image::open(s.out().join(name)).unwrap();
    for (i, input) in inputs.iter().enumerate() {
        let report = &json["files"][i]["report"];
        assert!(json["files"][i]["input"].as_str().unwrap().ends_with(input), "{json}");
        assert_eq!(report["out_shape"], serde_json::json!([24, 40, 4]), "{input}: {json}");
        let out = got(&format!("{input}.png"));
        assert_eq!(out.color(), image::ColorType::Rgba8, "{input}: 4 channels out");
        assert!(out.into_rgba8() == want, "{input}: not the upright RGBA");
        if let Some((pw, ph, pillow)) = pillow_upright(&s.input().join(input), o, "RGBA") {
            assert_eq!((pw, ph), UPRIGHT, "{input}: Pillow's size");
            assert!(pillow == *want.as_raw(), "{input}: Pillow's exif_transpose differs");
        }
    }

    // Resized to half: still 4 channels, each quadrant's colour and alpha where it belongs.
    // Pillow resizes RGBA premultiplied; shmpool resizes each channel on its own, so Pillow is
    // asked for that: each band resized alone.
    let resized = format!(
        "assert im.getexif().get(274) == {o}\nim = ImageOps.exif_transpose(im)\n\
         im = Image.merge('RGBA', [b.resize((20, 12), Image.Resampling.BILINEAR) \
         for b in im.split()])"
    );
    for engine in ENGINES {
        run_ok(&s.input(), &s.out(), &["--op", "resize=20x12", "--engine", engine]);
        for input in inputs {
            let what = format!("{input}, resized, --engine {engine}");
            let out = got(&format!("{input}.png"));
            assert_eq!(out.color(), image::ColorType::Rgba8, "{what}: 4 channels out");
            let out = out.into_rgba8();
            assert_eq!(out.dimensions(), (20, 12), "{what}");
            let rgb = RgbImage::from_fn(20, 12, |x, y| {
                let p = out.get_pixel(x, y).0;
                Rgb([p[0], p[1], p[2]])
            });
            assert_quadrants(&what, &rgb, QUADRANTS);
            let alpha = RgbImage::from_fn(20, 12, |x, y| Rgb([out.get_pixel(x, y).0[3]; 3]));
            assert_quadrants(&format!("{what}: alpha"), &alpha, ALPHA.map(|a| [a; 3]));
            if let Some((pw, ph, pillow)) = pillow_pixels(&s.input().join(input), &resized, "RGBA")
            {
                assert_eq!((pw, ph), (20, 12), "{what}: Pillow's size");
                let (max, mean) = diff(out.as_raw(), &pillow);
                println!("{what} vs Pillow: max {max}, mean {mean:.3}");
                assert!(max <= 1, "{what} vs Pillow: max {max}, mean {mean:.3}");
            }
        }
    }

    // To JPEG: alpha dropped, the colours kept (not composited), upright.
    run_ok(&s.input(), &s.out(), &["--op", "resize=20x12", "--format", "jpeg", "--quality", "95"]);
    for input in inputs {
        let what = format!("{input}, resized, as JPEG");
        let out = got(&format!("{input}.jpg"));
        assert_eq!(out.color(), image::ColorType::Rgb8, "{what}: 3 channels out");
        let out = out.into_rgb8();
        assert_eq!(out.dimensions(), (20, 12), "{what}");
        assert_quadrants(&what, &out, QUADRANTS);
        if let Some((_, _, pillow)) = pillow_pixels(&s.input().join(input), &resized, "RGB") {
            // JPEG at quality 95 on flat quadrants: only the edges between them ring.
            let (max, mean) = diff(out.as_raw(), &pillow);
            println!("{what} vs Pillow convert('RGB'): max {max}, mean {mean:.3}");
            assert!(mean < 3.0, "{what} vs Pillow: max {max}, mean {mean:.3}");
        }
    }

    // --no-auto-orient: the stored RGBA, 24x40.
    run_ok(&s.input(), &s.out(), &["--no-auto-orient"]);
    for input in inputs {
        let out = got(&format!("{input}.png"));
        assert_eq!(out.color(), image::ColorType::Rgba8, "{input}, --no-auto-orient");
        assert!(out.into_rgba8() == img, "{input}, --no-auto-orient: not the stored RGBA");
    }
}

/// Pillow writes the EXIF of an animated WebP (`save_all=True`) with JPEG's "Exif\0\0"
/// prefix, and reads it with none, one or two; such a file comes out upright too. An EXIF
/// chunk that the VP8X header's flag does not announce is not read, by Pillow nor here.
#[test]
fn webp_exif_as_pillow_reads_it() {
    let s = Scratch::new("orient-formats", "webp-prefix");
    let mut files = Vec::new();
    for (o, prefixes) in [(3u16, 1), (6, 1), (8, 1), (5, 2)] {
        let img = stored(o);
        let mut exif = exif_orientation(o, o % 2 == 1);
        assert!(exif.starts_with(b"Exif\0\0"));
        if prefixes == 2 {
            exif.splice(0..0, *b"Exif\0\0");
        }
        let bytes = webp(img.as_raw(), img.dimensions(), ExtendedColorType::Rgb8, &exif);
        let name = format!("p{o}.webp");
        std::fs::write(s.input().join(&name), bytes).unwrap();
        files.push((name, o));
    }
    assert_upright_everywhere(&s, "WebP (Exif\\0\\0 prefix)", &files);

    let t = Scratch::new("orient-formats", "webp-unflagged");
    let img = stored(6);
    let mut bytes = webp(img.as_raw(), img.dimensions(), ExtendedColorType::Rgb8, &exif_tiff(6));
    bytes[20] &= !0x08; // the VP8X EXIF flag
    let file = t.input().join("unflagged.webp");
    std::fs::write(&file, bytes).unwrap();
    run_ok(&t.input(), &t.out(), &[]);
    let got = image::open(t.out().join("unflagged.png")).unwrap().into_rgb8();
    assert!(got == img, "an EXIF chunk the VP8X flag does not announce: not as stored");
    if let Some((pw, ph, pillow)) = pillow_upright(&file, 1, "RGB") {
        assert_eq!((pw, ph), img.dimensions(), "Pillow's size");
        assert!(pillow == *img.as_raw(), "Pillow's exif_transpose differs");
    }
}

/// The PNG of `img` with eXIf chunks holding `before` (after IHDR) and `after` (after the
/// pixels, before IEND), each where given.
fn png_exif_around(img: &RgbImage, before: Option<&[u8]>, after: Option<&[u8]>) -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let mut png = png.into_inner();
    if let Some(exif) = before {
        png = png_with_exif(&png, exif);
    }
    if let Some(exif) = after {
        let iend = png.len() - 12;
        assert_eq!(&png[iend + 4..iend + 8], b"IEND");
        png.splice(iend..iend, png_exif_chunk(exif));
    }
    png
}

/// A PNG's eXIf that starts with JPEG's "Exif\0\0" (before or after the pixels) turns it
/// upright, as Pillow reads it; of an eXIf before the pixels that says 1 and one after them
/// that says 6, the last wins, as for Pillow's `exif_transpose` of a freshly opened file (it
/// loads the image, reading the late one, before it reads the EXIF).
#[test]
fn png_exif_where_pillow_reads_it() {
    let s = Scratch::new("orient-formats", "png-prefix");
    let prefixed = |o: u16| exif_orientation(o, o % 2 == 1);
    let early = png_exif_around(&stored(6), Some(&prefixed(6)), None);
    std::fs::write(s.input().join("early6.png"), early).unwrap();
    let late = png_exif_around(&stored(3), None, Some(&prefixed(3)));
    std::fs::write(s.input().join("late3.png"), late).unwrap();
    let files = [("early6.png".to_string(), 6), ("late3.png".to_string(), 3)];
    assert_upright_everywhere(&s, "PNG (Exif\\0\\0 prefix)", &files);

    let t = Scratch::new("orient-formats", "png-two");
    let two = png_exif_around(&stored(6), Some(&exif_tiff(1)), Some(&exif_tiff(6)));
    let file = t.input().join("two.png");
    std::fs::write(&file, two).unwrap();
    run_ok(&t.input(), &t.out(), &[]);
    let got = image::open(t.out().join("two.png")).unwrap().into_rgb8();
    assert!(got == upright_rgb(), "eXIf 1 before the pixels, 6 after: not upright");
    if let Some((pw, ph, pillow)) = pillow_pixels(&file, "im = ImageOps.exif_transpose(im)", "RGB")
    {
        assert_eq!((pw, ph), got.dimensions(), "Pillow's size");
        assert!(pillow == *got.as_raw(), "Pillow's exif_transpose differs");
    }
}
