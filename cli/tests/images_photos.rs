//! `shmpool images` on the JPEGs cameras and print shops write, generated here (no committed
//! binaries): CMYK (Adobe's inverted inks), progressive, and EXIF orientations 1 to 8 (in both
//! TIFF byte orders; unusable EXIF; a PNG's eXIf chunk; the quarter turn's second buffer
//! against --max-alloc-mib). Each test checks what comes out, not only that something did: the colours
//! the inks make, the baseline decode of the same pixels, the upright image.

use std::process::Command;

use image::{Rgb, RgbImage};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use serde_json::Value;

mod support;

use support::{
    QUADRANTS, Scratch, UPRIGHT, assert_quadrants, diff, exif_orientation, pillow_rgb,
    png_with_exif, run_ok, stored, upright,
};

/// `pixels` (RGB or CMYK, by `color`) as a JPEG, with an optional APP1 segment.
fn jpeg(
    pixels: &[u8],
    (w, h): (u32, u32),
    color: ColorType,
    progressive: bool,
    app1: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out, 95);
    e.set_sampling_factor(SamplingFactor::F_1_1);
    e.set_progressive(progressive);
    if let Some(segment) = app1 {
        e.add_app_segment(1, segment).unwrap();
    }
    e.encode(pixels, w as u16, h as u16, color).unwrap();
    out
}

/// Photo-like RGB: gradients, a hard-edged disc and noise.
fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 23;
        let (dx, dy) = (x as i32 - w as i32 / 2, y as i32 - h as i32 / 3);
        let disc = dx * dx + dy * dy < (h as i32 / 4).pow(2);
        let base = |k: u32| if disc { 220 - 60 * k } else { 30 + (x * 150 / w + y * k * 20 / h) };
        Rgb([0, 1, 2].map(|k| (base(k) + n) as u8))
    })
}

/// A CMYK JPEG (Adobe APP14, inverted samples, as Photoshop writes) decodes to the RGB its inks
/// make: `R = 255 (1 - C)(1 - K)` and likewise G from M, B from Y (zune-jpeg's conversion,
/// and Pillow's `convert("RGB")`), and matches Pillow on the whole image.
#[test]
fn cmyk_jpeg_decodes_to_the_rgb_its_inks_make() {
    let s = Scratch::new("photos", "cmyk");
    let (w, h) = (64u32, 48u32);
    // Six 16-pixel-wide bands of ink (C, M, Y, K), 0 = none, in two rows.
    let inks: [[u8; 4]; 8] = [
        [255, 0, 0, 0],
        [0, 255, 0, 0],
        [0, 0, 255, 0],
        [0, 0, 0, 128],
        [50, 100, 150, 30],
        [0, 0, 0, 0],
        [200, 30, 0, 60],
        [255, 255, 255, 255],
    ];
    let ink_at = |x: u32, y: u32| inks[(x / 16 + 4 * (y / 24)) as usize];
    let mut cmyk = Vec::new();
    for y in 0..h {
        for x in 0..w {
            cmyk.extend(ink_at(x, y));
        }
    }
    let bytes = jpeg(&cmyk, (w, h), ColorType::Cmyk, false, None);
    assert!(bytes.windows(7).any(|b| b == b"Adobe\0\0"), "an Adobe APP14 segment");
    let file = s.input().join("cmyk.jpg");
    std::fs::write(&file, &bytes).unwrap();
    let json = run_ok(&s.input(), &s.out(), &[]);
    assert_eq!(json["files"][0]["report"]["in_shape"], serde_json::json!([h, w, 3]), "{json}");
    let got = image::open(s.out().join("cmyk.png")).unwrap().into_rgb8();
    let rgb = |ink: [u8; 4]| {
        let f = |c: u8| (255.0 - f64::from(c)) * (255.0 - f64::from(ink[3])) / 255.0;
        [f(ink[0]), f(ink[1]), f(ink[2])]
    };
    for (i, ink) in inks.iter().enumerate() {
        let (x, y) = (8 + 16 * (i as u32 % 4), 12 + 24 * (i as u32 / 4));
        let want = rgb(*ink);
        let p = got.get_pixel(x, y).0;
        for c in 0..3 {
            assert!(
                (f64::from(p[c]) - want[c]).abs() <= 3.0,
                "ink {ink:?} at ({x}, {y}): got {p:?}, want {want:?}"
            );
        }
    }
    // Pillow decodes Adobe CMYK with its own IDCT and converts with the same formula.
    if let Some((pw, ph, want)) = pillow_rgb(&file, "") {
        assert_eq!((pw, ph), (w, h));
        let (max, mean) = diff(got.as_raw(), &want);
        println!("CMYK vs Pillow: max {max}, mean {mean:.3}");
        assert!(max <= 3, "CMYK vs Pillow: max abs difference {max} (mean {mean:.3})");
    }
}

/// A progressive JPEG decodes to what the baseline JPEG of the same pixels, quality and
/// sampling decodes to (the same quantized coefficients, sent in several scans), and both are
/// near the pixels encoded.
#[test]
fn progressive_jpeg_decodes_as_its_baseline_does() {
    let s = Scratch::new("photos", "progressive");
    let (w, h) = (123u32, 77u32);
    let src = photo(w, h);
    let progressive = jpeg(src.as_raw(), (w, h), ColorType::Rgb, true, None);
    let baseline = jpeg(src.as_raw(), (w, h), ColorType::Rgb, false, None);
    assert!(progressive.windows(2).any(|m| m == [0xFF, 0xC2]), "SOF2: progressive");
    assert!(!progressive.windows(2).any(|m| m == [0xFF, 0xC0]), "no SOF0 in the progressive");
    assert!(baseline.windows(2).any(|m| m == [0xFF, 0xC0]), "SOF0: baseline");
    std::fs::write(s.input().join("progressive.jpg"), &progressive).unwrap();
    std::fs::write(s.input().join("baseline.jpg"), &baseline).unwrap();
    for engine in ["pool", "sequential"] {
        run_ok(&s.input(), &s.out(), &["--engine", engine]);
        let p = image::open(s.out().join("progressive.png")).unwrap().into_rgb8();
        let b = image::open(s.out().join("baseline.png")).unwrap().into_rgb8();
        let (max, mean) = diff(p.as_raw(), b.as_raw());
        println!("{engine}: progressive vs baseline: max {max}, mean {mean:.4}");
        // Measured 0: the same coefficients, the same IDCT. 1 allowed for a decoder whose
        // progressive path rounds differently.
        assert!(max <= 1, "{engine}: progressive vs baseline: max {max}, mean {mean:.4}");
        let (max, mean) = diff(p.as_raw(), src.as_raw());
        println!("{engine}: progressive vs source: max {max}, mean {mean:.3}");
        // Quality 95 on noise and a hard edge: measured max 16, mean 1.75.
        assert!(mean < 2.5 && max <= 40, "{engine}: vs the source: max {max}, mean {mean:.3}");
    }
}

/// Every EXIF orientation, in both TIFF byte orders, comes out upright under every engine
/// (the orientation applied on decode, before the operations: a resize to 20x12 gives 20x12),
/// and `--no-auto-orient` keeps the pixels as stored. Pillow's `exif_transpose` agrees.
#[test]
fn exif_orientations_come_out_upright() {
    let s = Scratch::new("photos", "orientation");
    for o in 1..=8u16 {
        let img = stored(o);
        let app1 = exif_orientation(o, o % 2 == 1);
        let bytes = jpeg(img.as_raw(), img.dimensions(), ColorType::Rgb, false, Some(app1));
        std::fs::write(s.input().join(format!("o{o}.jpg")), bytes).unwrap();
    }
    let (w, h) = UPRIGHT;
    for engine in ["pool", "rayon", "sequential"] {
        run_ok(&s.input(), &s.out(), &["--engine", engine]);
        for o in 1..=8 {
            let got = image::open(s.out().join(format!("o{o}.png"))).unwrap().into_rgb8();
            let what = format!("{engine}: orientation {o}");
            assert_eq!(got.dimensions(), (w, h), "{what}");
            assert_quadrants(&what, &got, QUADRANTS);
        }
    }
    run_ok(&s.input(), &s.out(), &["--op", "resize=20x12"]);
    for o in 1..=8 {
        let got = image::open(s.out().join(format!("o{o}.png"))).unwrap().into_rgb8();
        assert_eq!(got.dimensions(), (20, 12), "orientation {o}, resized");
        assert_quadrants(&format!("orientation {o}, resized"), &got, QUADRANTS);
    }
    run_ok(&s.input(), &s.out(), &["--no-auto-orient"]);
    for o in 1..=8 {
        let got = image::open(s.out().join(format!("o{o}.png"))).unwrap().into_rgb8();
        let want = stored(o);
        assert_eq!(got.dimensions(), want.dimensions(), "orientation {o}, --no-auto-orient");
        // JPEG at quality 95, 4:4:4, on flat quadrants: only the edges between them ring.
        let (max, mean) = diff(got.as_raw(), want.as_raw());
        assert!(mean < 3.0, "orientation {o}, --no-auto-orient: max {max}, mean {mean:.3}");
    }
    run_ok(&s.input(), &s.out(), &[]);
    for o in 1..=8 {
        let Some((pw, ph, want)) =
            pillow_rgb(&s.input().join(format!("o{o}.jpg")), "im = ImageOps.exif_transpose(im)")
        else {
            return;
        };
        let got = image::open(s.out().join(format!("o{o}.png"))).unwrap().into_rgb8();
        assert_eq!((pw, ph), got.dimensions(), "orientation {o}: Pillow's size");
        let (max, mean) = diff(got.as_raw(), &want);
        println!("orientation {o} vs Pillow exif_transpose: max {max}, mean {mean:.3}");
        assert!(max <= 3, "orientation {o} vs Pillow: max {max}, mean {mean:.3}");
    }
}

/// EXIF that says nothing usable (orientation 0 or 9, a truncated IFD, a wrong TIFF magic, an
/// IFD offset past the end) leaves the pixels as stored, and the file still decodes.
#[test]
fn unusable_exif_leaves_the_pixels_as_stored() {
    let s = Scratch::new("photos", "bad-exif");
    let img = stored(6); // stored sideways: applied by mistake, the size would change
    let mut cases: Vec<(&str, Vec<u8>)> =
        vec![("zero", exif_orientation(0, true)), ("nine", exif_orientation(9, false))];
    let mut truncated = exif_orientation(6, true);
    truncated.truncate(18);
    cases.push(("truncated", truncated));
    let mut magic = exif_orientation(6, true);
    magic[8] = 0x2b;
    cases.push(("magic", magic));
    let mut offset = exif_orientation(6, false);
    offset[10..14].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    cases.push(("offset", offset));
    cases.push(("empty", b"Exif\0\0".to_vec()));
    for (name, app1) in &cases {
        let bytes = jpeg(img.as_raw(), img.dimensions(), ColorType::Rgb, false, Some(app1.clone()));
        std::fs::write(s.input().join(format!("{name}.jpg")), bytes).unwrap();
    }
    run_ok(&s.input(), &s.out(), &[]);
    for (name, _) in &cases {
        let got = image::open(s.out().join(format!("{name}.png"))).unwrap().into_rgb8();
        assert_eq!(got.dimensions(), img.dimensions(), "{name}: not rotated");
        let (max, mean) = diff(got.as_raw(), img.as_raw());
        assert!(mean < 3.0, "{name}: max {max}, mean {mean:.3}");
    }
}

/// A quarter turn copies the image, so it counts twice against `--max-alloc-mib`: a 512x512
/// RGB JPEG (768 KiB decoded) fits 1 MiB as stored or upside down, not turned a quarter; the
/// refusal says both fixes, and `--no-auto-orient` decodes it.
#[test]
fn quarter_turn_counts_twice_against_the_allocation_limit() {
    let s = Scratch::new("photos", "turn-alloc");
    let img = RgbImage::from_fn(512, 512, |x, y| Rgb([x as u8, y as u8, 90]));
    for o in [3u16, 6] {
        let app1 = exif_orientation(o, true);
        let bytes = jpeg(img.as_raw(), (512, 512), ColorType::Rgb, false, Some(app1));
        std::fs::write(s.input().join(format!("o{o}.jpg")), bytes).unwrap();
    }
    let out = s.out();
    let o = Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .arg("images")
        .arg(s.input())
        .args(["--max-alloc-mib", "1", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    let error = |name: &str| {
        let files = json["files"].as_array().unwrap();
        let f = files.iter().find(|f| f["input"].as_str().unwrap().ends_with(name)).unwrap();
        f["error"].as_str().map(str::to_string)
    };
    assert_eq!(error("o3.jpg"), None, "upside down turns in place: {json}");
    let e = error("o6.jpg").expect("the quarter turn is refused");
    assert!(e.contains("raise --max-alloc-mib") && e.contains("--no-auto-orient"), "{e}");
    let names: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["o3.png"], "only the good file, no temporary");
    run_ok(&s.input(), &out, &["--max-alloc-mib", "1", "--no-auto-orient"]);
}

/// A PNG's eXIf chunk (the TIFF structure without JPEG's "Exif\0\0" prefix) turns it upright
/// too: orientation 6 (a quarter turn) and 3 (a half turn).
#[test]
fn png_exif_orientation_comes_out_upright() {
    let s = Scratch::new("photos", "png-exif");
    for o in [3u16, 6] {
        let img = stored(o);
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let png = png.into_inner();
        let bytes = png_with_exif(&png, &exif_orientation(o, o == 3)[6..]);
        std::fs::write(s.input().join(format!("o{o}.png")), bytes).unwrap();
    }
    run_ok(&s.input(), &s.out(), &[]);
    for o in [3, 6] {
        let got = image::open(s.out().join(format!("o{o}.png"))).unwrap().into_rgb8();
        assert_eq!(got.dimensions(), UPRIGHT, "PNG orientation {o}");
        // Lossless all the way: exactly the upright picture.
        let want = RgbImage::from_fn(UPRIGHT.0, UPRIGHT.1, |x, y| Rgb(upright(x, y)));
        assert!(got == want, "PNG orientation {o}: not the upright picture");
    }
}
