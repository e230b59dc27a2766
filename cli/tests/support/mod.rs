//! What the CLI's end-to-end tests share: a scratch directory per test and a small PNG.
// Each test file is its own crate and uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
