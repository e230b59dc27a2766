//! What the CLI's end-to-end tests share: a scratch directory per test, a small PNG, running
//! `shmpool images`, the EXIF orientation test picture and Pillow as an oracle.
// Each test file is its own crate and uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{Rgb, RgbImage};

use serde_json::Value;

/// A fresh scratch directory for one test (`in/` created, `out/` not), removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `$TMPDIR/shmpool-{suite}-test-{pid}-{name}`, emptied first.
    pub fn new(suite: &str, name: &str) -> Scratch {
        let dir = std::env::temp_dir()
            .join(format!("shmpool-{suite}-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("in")).unwrap();
        Scratch(dir)
    }

    /// The input directory.
    pub fn input(&self) -> PathBuf {
        self.0.join("in")
    }

    /// The output directory.
    pub fn out(&self) -> PathBuf {
        self.0.join("out")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A 48x32 RGB PNG with a gradient.
pub fn png_bytes() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, 90]));
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The error a `--json` report gives for the input whose file name is `name`.
pub fn error_of<'a>(json: &'a Value, name: &str) -> Option<&'a str> {
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["input"].as_str().unwrap().ends_with(&format!("/{name}")))
        .and_then(|f| f["error"].as_str())
}

/// The CRC-32 of a PNG chunk (its type and data).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// `shmpool images ARGS --json`: the exit code (`None` if killed), the JSON report (the test
/// fails if there is none) and stderr.
pub fn run_images(args: &[&str]) -> (Option<i32>, Value, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .arg("images")
        .args(args)
        .arg("--json")
        .output()
        .expect("run shmpool");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let json = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: no JSON ({e}); stderr: {stderr}"));
    (o.status.code(), json, stderr)
}

/// [`run_images`] of `INPUT --out OUT ARGS`, the output directory removed first.
pub fn images_json(input: &Path, out: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let _ = std::fs::remove_dir_all(out);
    let (input, out) = (input.to_str().unwrap(), out.to_str().unwrap());
    run_images(&[&[input, "--out", out], args].concat())
}

/// Runs `shmpool images INPUT --out OUT --json` plus `args`; asserts it exited 0 with every
/// file written and no temporary left; the JSON.
pub fn run_ok(input: &Path, out: &Path, args: &[&str]) -> Value {
    let (code, json, stderr) = images_json(input, out, args);
    assert_eq!(code, Some(0), "{args:?}: {stderr}");
    let files = json["files"].as_array().unwrap().len();
    assert_eq!(json["totals"]["written"], files, "{json}");
    let left: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
    json
}

/// Max and mean abs difference of two equally long sample slices.
pub fn diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len(), "sizes differ");
    let max = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
    let sum: u64 = a.iter().zip(b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    (max, sum as f64 / a.len().max(1) as f64)
}

/// Pillow's pixels for the image file `path` (after `prep`, Python code on `im`), converted
/// to `mode` (`"RGB"`, `"RGBA"`, ...): width, height and the samples; or `None` where Python has
/// no Pillow (a failure under CI, whose install script installs it). Any other failure of the
/// program (Pillow cannot read the file, an `assert` in `prep`) fails the test.
pub fn pillow_pixels(path: &Path, prep: &str, mode: &str) -> Option<(u32, u32, Vec<u8>)> {
    let program = format!(
        "import sys\nfrom PIL import Image, ImageOps\nim = Image.open(sys.argv[1])\n{prep}\n\
         im = im.convert('{mode}')\nsys.stdout.buffer.write(b'%d %d\\n' % im.size + im.tobytes())\n"
    );
    let o = Command::new("python3").arg("-c").arg(&program).arg(path).output();
    match o {
        Ok(o) if o.status.success() => {
            let nl = o.stdout.iter().position(|&b| b == b'\n').unwrap();
            let head = String::from_utf8_lossy(&o.stdout[..nl]).into_owned();
            let (w, h) = head.split_once(' ').unwrap();
            Some((w.parse().unwrap(), h.parse().unwrap(), o.stdout[nl + 1..].to_vec()))
        }
        // Python ran and failed for another reason than a missing Pillow (it could not read
        // the file, or an assertion in `prep` failed): the comparison failed, it is not skipped.
        Ok(o) if !String::from_utf8_lossy(&o.stderr).contains("No module named 'PIL'") => {
            panic!("Pillow on {}: {}", path.display(), String::from_utf8_lossy(&o.stderr))
        }
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "Pillow is missing under CI (run bash scripts/install-test-deps.sh): {other:?}"
            );
            eprintln!("skipped the Pillow comparison: python3 with Pillow is not installed");
            None
        }
    }
}

/// [`pillow_pixels`] in RGB.
pub fn pillow_rgb(path: &Path, prep: &str) -> Option<(u32, u32, Vec<u8>)> {
    pillow_pixels(path, prep, "RGB")
}

/// An APP1 "Exif" segment holding one IFD entry: Orientation (0x0112), SHORT, `value`; TIFF
/// big-endian ("MM") or little-endian ("II").
pub fn exif_orientation(value: u16, big_endian: bool) -> Vec<u8> {
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut e = b"Exif\0\0".to_vec();
    e.extend(if big_endian { b"MM" } else { b"II" });
    e.extend(u16b(42));
    e.extend(u32b(8)); // the first IFD, right after this header
    e.extend(u16b(1)); // one entry
    e.extend(u16b(0x0112));
    e.extend(u16b(3)); // SHORT
    e.extend(u32b(1)); // one value
    e.extend(u16b(value));
    e.extend([0, 0]); // the value field's other half
    e.extend(u32b(0)); // no next IFD
    e
}

/// The upright test picture: four quadrants of different colours (red top left, green top
/// right, blue bottom left, white bottom right), 40x24, so that any rotation or mirror shows.
pub const QUADRANTS: [[u8; 3]; 4] = [[230, 20, 20], [20, 200, 20], [20, 20, 230], [240, 240, 240]];
pub const UPRIGHT: (u32, u32) = (40, 24);

/// The colour at `(x, y)` of the upright picture.
pub fn upright(x: u32, y: u32) -> [u8; 3] {
    let (w, h) = UPRIGHT;
    QUADRANTS[(usize::from(x >= w / 2)) + 2 * usize::from(y >= h / 2)]
}

/// The stored pixels a camera writes with EXIF `orientation` for the upright picture, from
/// the EXIF specification's words (where the stored 0th row and 0th column are seen), not
/// from any library: stored `(sx, sy)` is seen at the upright position returned.
pub fn seen_at(orientation: u16, sx: u32, sy: u32) -> (u32, u32) {
    let (w, h) = UPRIGHT;
    match orientation {
        1 => (sx, sy),                 // row 0 at the top, column 0 at the left
        2 => (w - 1 - sx, sy),         // row 0 top, column 0 right
        3 => (w - 1 - sx, h - 1 - sy), // row 0 bottom, column 0 right
        4 => (sx, h - 1 - sy),         // row 0 bottom, column 0 left
        5 => (sy, sx),                 // row 0 left, column 0 top
        6 => (w - 1 - sy, sx),         // row 0 right, column 0 top
        7 => (w - 1 - sy, h - 1 - sx), // row 0 right, column 0 bottom
        8 => (sy, h - 1 - sx),         // row 0 left, column 0 bottom
        _ => unreachable!(),
    }
}

/// The upright picture as stored under EXIF `orientation` (1 to 8).
pub fn stored(orientation: u16) -> RgbImage {
    let (w, h) = UPRIGHT;
    let (sw, sh) = if orientation >= 5 { (h, w) } else { (w, h) };
    RgbImage::from_fn(sw, sh, |sx, sy| {
        let (x, y) = seen_at(orientation, sx, sy);
        Rgb(upright(x, y))
    })
}

/// Asserts `img` is the quadrant picture scaled to its size: each quadrant's centre colour.
pub fn assert_quadrants(what: &str, img: &RgbImage, want: [[u8; 3]; 4]) {
    let (w, h) = img.dimensions();
    for (i, colour) in want.iter().enumerate() {
        let (x, y) = ((w / 4) * (1 + 2 * (i as u32 % 2)), (h / 4) * (1 + 2 * (i as u32 / 2)));
        let p = img.get_pixel(x, y).0;
        let far = p.iter().zip(colour).any(|(a, b)| a.abs_diff(*b) > 12);
        assert!(!far, "{what}: quadrant {i} at ({x}, {y}) is {p:?}, want {colour:?}");
    }
}

/// The PNG `png` with an eXIf chunk holding `tiff` (a TIFF structure: EXIF without JPEG's
/// "Exif\0\0" prefix) right after IHDR, before IDAT.
pub fn png_with_exif(png: &[u8], tiff: &[u8]) -> Vec<u8> {
    // After the signature (8 bytes) and IHDR (4 + 4 + 13 + 4 bytes), before IDAT.
    let at = 8 + 25;
    assert_eq!(&png[12..16], b"IHDR", "IHDR first");
    let mut bytes = png[..at].to_vec();
    bytes.extend(png_exif_chunk(tiff));
    bytes.extend(&png[at..]);
    bytes
}

/// A PNG eXIf chunk holding `exif`: length, type, data and CRC.
pub fn png_exif_chunk(exif: &[u8]) -> Vec<u8> {
    let mut chunk = (exif.len() as u32).to_be_bytes().to_vec();
    chunk.extend(b"eXIf");
    chunk.extend(exif);
    chunk.extend(crc32(&chunk[4..]).to_be_bytes());
    chunk
}

/// One TIFF IFD entry: tag, type, count and the 4-byte value field (little-endian).
pub type TiffEntry = (u16, u16, u32, [u8; 4]);

/// A minimal uncompressed 8-bit gray little-endian TIFF of `w`x`h` holding `pixels` (one
/// strip, right after the header), whose one IFD holds the usual tags plus `extra` (sorted in)
/// and `next` as its next-IFD offset (`None`: the IFD itself, a cycle).
pub fn gray_tiff(w: u32, h: u32, pixels: &[u8], extra: &[TiffEntry], next: Option<u32>) -> Vec<u8> {
    assert_eq!(pixels.len() as u64, u64::from(w) * u64::from(h), "one byte a pixel");
    let short = |v: u16| [v.to_le_bytes()[0], v.to_le_bytes()[1], 0, 0];
    let long = |v: u32| v.to_le_bytes();
    let mut entries = vec![
        (256, 4, 1, long(w)),
        (257, 4, 1, long(h)),
        (258, 3, 1, short(8)),
        (259, 3, 1, short(1)),
        (262, 3, 1, short(1)),
        (273, 4, 1, long(8)),
        (277, 3, 1, short(1)),
        (278, 4, 1, long(h)),
        (279, 4, 1, long(pixels.len() as u32)),
    ];
    entries.extend_from_slice(extra);
    entries.sort_by_key(|e| e.0);
    let ifd = 8 + pixels.len() as u32 + (pixels.len() as u32 & 1);
    let mut t = b"II".to_vec();
    t.extend(42u16.to_le_bytes());
    t.extend(ifd.to_le_bytes());
    t.extend(pixels);
    t.resize(ifd as usize, 0);
    push_ifd(&mut t, &entries, next.unwrap_or(ifd));
    t
}

/// Appends a little-endian TIFF IFD: the entry count, `entries`, then `next` (the next-IFD
/// offset).
pub fn push_ifd(t: &mut Vec<u8>, entries: &[TiffEntry], next: u32) {
    t.extend((entries.len() as u16).to_le_bytes());
    for (tag, ty, count, value) in entries {
        t.extend(tag.to_le_bytes());
        t.extend(ty.to_le_bytes());
        t.extend(count.to_le_bytes());
        t.extend(value);
    }
    t.extend(next.to_le_bytes());
}
