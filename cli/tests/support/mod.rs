//! What the CLI's end-to-end tests share: a scratch directory per test and a small PNG.
// Each test file is its own crate and uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

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
