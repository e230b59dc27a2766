//! `FileTask` and `process_file`: one file's work in a pool worker: read, decode under limits,
//! run the pipeline, encode, write to a temporary name in the output directory and rename it
//! into place. Any failure comes back as the file's error text; a crash or hang is the pool's
//! to handle (the worker is killed and replaced).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::metadata::Orientation;
use image::{DynamicImage, ImageBuffer, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use shmpool_kernels::imaging::{Image, Pipeline, Shape};

use super::options::{Chroma, Format};
use super::report::FileReport;

/// Everything a worker needs for one file: the task function captures nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileTask {
    /// The file to read.
    pub(crate) input: PathBuf,
    /// Where the result goes once complete.
    pub(crate) output: PathBuf,
    /// Where it is written first ([`temp_path`]).
    pub(crate) temp: PathBuf,
    /// The pipeline's text (already parsed once by the parent, so it parses here).
    pub(crate) pipeline: String,
    /// The output format.
    pub(crate) format: Format,
    /// JPEG quality.
    pub(crate) quality: u8,
    /// JPEG chroma subsampling.
    pub(crate) chroma: Chroma,
    /// Images of more pixels are refused before decoding.
    pub(crate) max_pixels: u64,
    /// Bytes a decoder may allocate.
    pub(crate) max_alloc: u64,
    /// Apply the file's EXIF orientation on decode (not `--no-auto-orient`): see [`decode`].
    pub(crate) auto_orient: bool,
    /// Test hooks: file names on which the worker kills itself, hangs or panics.
    pub(crate) hooks: [Option<String>; 3],
}

/// The temporary name `output` is written under: hidden, in the same directory (so the
/// rename is atomic), and fixed, so the parent can remove it when the worker died.
pub(crate) fn temp_path(output: &Path) -> PathBuf {
    let name = output.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    output.with_file_name(format!(".{name}.shmpool-part"))
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// One file, start to finish, in a worker. Never panics on bad input: every failure is the
/// file's error text.
pub(crate) fn process_file(task: FileTask) -> Result<FileReport, String> {
    let name = task.input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hook = |i: usize| task.hooks[i].as_deref() == Some(name.as_str());

    let t = Instant::now();
    let bytes = std::fs::read(&task.input).map_err(|e| format!("cannot read the file: {e}"))?;
    let img = decode(&bytes, task.max_pixels, task.max_alloc, task.auto_orient)?;
    let decode_ms = ms(t);
    let in_shape = img.shape();

    let t = Instant::now();
    if hook(2) {
        panic!("test hook: panicking on {name}");
    }
    if hook(1) {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    let pipeline: Pipeline = task.pipeline.parse().map_err(|e| format!("{e}"))?;
    check_sizes(&pipeline, in_shape, task.max_pixels)?;
    let out = pipeline.apply(img).map_err(|e| format!("processing failed: {e}"))?;
    let process_ms = ms(t);
    let out_shape = out.shape();

    let t = Instant::now();
    let encoded = encode(out, task.format, task.quality, task.chroma)?;
    write_atomically(&task, &encoded, hook(0))?;
    let encode_ms = ms(t);
    Ok(FileReport {
        output: task.output.display().to_string(),
        in_bytes: bytes.len() as u64,
        out_bytes: encoded.len() as u64,
        in_shape: [in_shape.h, in_shape.w, in_shape.c],
        out_shape: [out_shape.h, out_shape.w, out_shape.c],
        decode_ms,
        process_ms,
        encode_ms,
    })
}

/// Refuses, before anything is allocated, a pipeline that would make an image of more than
/// `max_pixels` pixels from one of `input` (a `resize=1048576x1048576` asks for 3 TiB: an
/// allocation failure aborts the process, which under `--engine rayon` or `sequential` is the
/// whole batch), or that cannot run on it at all (a crop outside it).
pub(crate) fn check_sizes(
    pipeline: &Pipeline,
    input: Shape,
    max_pixels: u64,
) -> Result<(), String> {
    let shapes = pipeline.shapes(input).map_err(|e| format!("processing failed: {e}"))?;
    for (op, s) in pipeline.ops().iter().zip(shapes) {
        let pixels = (s.w as u64).saturating_mul(s.h as u64);
        if pixels > max_pixels {
            return Err(format!(
                "refused: `{op}` would make a {}x{} image, {pixels} pixels, over the limit of \
                 {max_pixels}; give a smaller size or raise --max-pixels",
                s.w, s.h
            ));
        }
    }
    Ok(())
}

/// Decodes `bytes` (format from their content, not the file name) to 8-bit samples, refusing
/// images over `max_pixels` before any pixel is decoded and decodes over `max_alloc` bytes.
///
/// With `auto_orient`, the image comes out upright: an EXIF orientation (JPEG's APP1, PNG's
/// eXIf chunk before or after the pixels, WebP's EXIF chunk, TIFF's Orientation tag in its
/// first IFD) is applied to the pixels, as Pillow's `ImageOps.exif_transpose` and browsers do,
/// since no output carries the EXIF along: a phone photo stored sideways would otherwise come
/// out sideways. The EXIF read is the EXIF Pillow's `exif_transpose` reads: a PNG's or WebP's
/// may start with JPEG's `Exif\0\0`; a PNG's is its last eXIf chunk, before or after the
/// pixels (`exif_transpose` loads the image first, and each eXIf replaces the one before); a
/// WebP's is its first EXIF chunk, and counts only where its VP8X header's flag announces it.
/// Unreadable EXIF counts as none (the
/// pixels still decode). Alpha turns with the colours. A quarter turn copies the image, so its
/// buffer counts twice against `max_alloc`.
/// Without it, the pixels are as stored (`--no-auto-orient`).
pub(crate) fn decode(
    bytes: &[u8],
    max_pixels: u64,
    max_alloc: u64,
    auto_orient: bool,
) -> Result<Image<u8>, String> {
    use image::ImageDecoder;
    if bytes.is_empty() {
        return Err("the file is empty (0 bytes): not an image".to_string());
    }
    let format = image::guess_format(bytes).map_err(|_| {
        "not a PNG, JPEG, WebP or TIFF image: its first bytes match no supported format (the \
         format is read from the content, not the extension)"
            .to_string()
    })?;
    let limits = || {
        let mut l = Limits::default();
        l.max_alloc = Some(max_alloc);
        l
    };
    let fmt = format!("{format:?}").to_uppercase();
    let refused = |e| {
        format!(
            "refused: decoding would allocate more than {} MiB ({e}); raise --max-alloc-mib",
            max_alloc >> 20
        )
    };
    // One decoder for the header, the orientation and the pixels (`into_decoder` keeps the
    // limits; `ImageReader::decode` would hide the orientation).
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let header_error = |e| match e {
        image::ImageError::Limits(e) => refused(e),
        e => format!("not a valid {fmt} file (its header does not decode): {e}"),
    };
    let mut decoder = reader.into_decoder().map_err(header_error)?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(format!(
            "refused: {w}x{h} is {pixels} pixels, over the limit of {max_pixels} (a \
             decompression bomb?); raise --max-pixels to decode it"
        ));
    }
    let pixel_error = |e| match e {
        image::ImageError::Limits(e) => refused(e),
        e => format!("corrupt or truncated {fmt} file: {e}"),
    };
    let orientation = match auto_orient.then_some(format) {
        None => Orientation::NoTransforms,
        // The png decoder reads the first eXIf before the pixels; Pillow's `exif_transpose`
        // the last one, wherever it is: the chunks are walked instead.
        Some(ImageFormat::Png) => png_orientation(bytes).unwrap_or(Orientation::NoTransforms),
        Some(_) => webp_or_other_orientation(&mut decoder, format, bytes),
    }; // What `ImageReader::decode` does: the output buffer counts against the allocation limit;
    // and a quarter turn, which `apply_orientation` makes into a second buffer, counts twice.
    let mut rest = limits();
    rest.reserve(decoder.total_bytes()).map_err(pixel_error)?;
    let quarter_turn = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    if quarter_turn {
        rest.reserve(decoder.total_bytes()).map_err(|e| match e {
            image::ImageError::Limits(e) => format!(
                "refused: decoding and turning upright (its EXIF orientation) would allocate \
                 more than {} MiB ({e}); raise --max-alloc-mib, or keep it as stored with \
                 --no-auto-orient",
                max_alloc >> 20
            ),
            e => pixel_error(e),
        })?;
    }
    decoder.set_limits(rest).map_err(pixel_error)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(pixel_error)?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (c, data) = match img.color().channel_count() {
        1 => (1, img.into_luma8().into_raw()),
        2 => (2, img.into_luma_alpha8().into_raw()),
        3 => (3, img.into_rgb8().into_raw()),
        _ => (4, img.into_rgba8().into_raw()),
    };
    Image::from_vec(Shape::new(h, w, c), data).map_err(|e| e.to_string())
}

/// The EXIF orientation of a JPEG, WebP or TIFF `decoder` (of `bytes`, in `format`), as
/// Pillow's `exif_transpose` reads it; none where unreadable.
fn webp_or_other_orientation(
    decoder: &mut impl image::ImageDecoder,
    format: ImageFormat,
    bytes: &[u8],
) -> Orientation {
    let is_webp = format == ImageFormat::WebP;
    // The webp decoder reads an EXIF chunk its VP8X header does not announce; Pillow
    // (libwebp) does not, and neither does this.
    if is_webp && !webp_announces_exif(bytes) {
        return Orientation::NoTransforms;
    }
    match decoder.orientation() {
        Ok(o) if o != Orientation::NoTransforms => o,
        // What the WebP decoder misses and Pillow reads: EXIF that starts with JPEG's
        // `Exif\0\0` (Pillow writes it so in an animated WebP), once or twice (Pillow's
        // `Exif.load` drops up to two).
        _ if is_webp => {
            let exif = decoder.exif_metadata().ok().flatten();
            exif.and_then(|e| exif_orientation(&e, 2)).unwrap_or(Orientation::NoTransforms)
        }
        _ => Orientation::NoTransforms,
    }
}

/// The orientation in `exif`, a TIFF structure after up to `prefixes` of JPEG's `Exif\0\0`.
fn exif_orientation(mut exif: &[u8], prefixes: usize) -> Option<Orientation> {
    for _ in 0..prefixes {
        exif = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    }
    Orientation::from_exif_chunk(exif)
}

/// Whether the WebP `bytes` announce an EXIF chunk: a VP8X header first, its EXIF flag set.
fn webp_announces_exif(bytes: &[u8]) -> bool {
    bytes.get(12..16) == Some(b"VP8X") && bytes.get(20).is_some_and(|flags| flags & 0x08 != 0)
}

/// The orientation in the PNG `bytes`' EXIF as Pillow's `exif_transpose` reads it: the last
/// eXIf chunk before IEND, before or after the pixels (it loads the image first, and each eXIf
/// it reads replaces the one before), which may start with one JPEG `Exif\0\0` (Pillow adds
/// one of its own and drops up to two). The chunks are walked by their lengths (the CRCs
/// unchecked, as Pillow's reader does after the pixels; a length past the end ends the walk);
/// the png decoder reads only the chunks before the pixels, and keeps the first eXIf.
fn png_orientation(bytes: &[u8]) -> Option<Orientation> {
    let mut at: usize = 8; // the signature
    let mut exif = None;
    while let Some(head) = bytes.get(at..at.checked_add(8)?) {
        let len = u32::from_be_bytes(head[..4].try_into().ok()?) as usize;
        let Some(data) = bytes.get(at + 8..(at + 8).checked_add(len)?) else { break };
        match &head[4..] {
            b"eXIf" => exif = Some(data),
            b"IEND" => break,
            _ => {}
        }
        at = (at + 12).checked_add(len)?;
    }
    exif.and_then(|e| exif_orientation(e, 1))
}

/// Encodes `img` as `format` (JPEG drops alpha).
///
/// JPEG goes through the `jpeg-encoder` crate (its AVX2 path where the CPU has it, chosen at
/// run time): about three times the `image` crate's encoder's speed. Quality has the libjpeg
/// meaning (the standard tables scaled by quality, as before); chroma as `chroma` says
/// ([`Chroma::Auto`]: 4:2:0 below quality 90, 4:4:4 from 90 up, that crate's default; the
/// `image` encoder wrote 4:4:4 at every quality). PNG, WebP and TIFF go through `image`.
pub(crate) fn encode(
    img: Image<u8>,
    format: Format,
    quality: u8,
    chroma: Chroma,
) -> Result<Vec<u8>, String> {
    let s = img.shape();
    let image_format = match format {
        Format::Jpeg => return encode_jpeg(&img, quality, chroma),
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
    };
    let (w, h) = (s.w as u32, s.h as u32);
    let data = img.into_vec();
    let bad = || "the processed image does not fit its shape".to_string();
    let dynamic = match s.c {
        1 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, data).ok_or_else(bad)?),
        2 => DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, data).ok_or_else(bad)?),
        3 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, data).ok_or_else(bad)?),
        _ => DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, data).ok_or_else(bad)?),
    };
    let mut buf = Cursor::new(Vec::new());
    dynamic
        .write_to(&mut buf, image_format)
        .map_err(|e| format!("encoding as {format:?} failed: {e}"))?;
    Ok(buf.into_inner())
}

/// `img` as a baseline JPEG of `quality` (1 to 100) and `chroma` subsampling: gray stays
/// gray, gray+alpha drops its alpha, RGBA its alpha.
fn encode_jpeg(img: &Image<u8>, quality: u8, chroma: Chroma) -> Result<Vec<u8>, String> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let s = img.shape();
    let too_big = || {
        format!(
            "encoding as Jpeg failed: {}x{} is over JPEG's 65535x65535; resize first (--op \
             resize=WxH or thumbnail=WxH) or write --format png",
            s.w, s.h
        )
    };
    let w = u16::try_from(s.w).map_err(|_| too_big())?;
    let h = u16::try_from(s.h).map_err(|_| too_big())?;
    let px = img.as_slice();
    let gray: Vec<u8>;
    let (data, color) = match s.c {
        1 => (px, ColorType::Luma),
        2 => {
            gray = px.chunks_exact(2).map(|p| p[0]).collect();
            (gray.as_slice(), ColorType::Luma)
        }
        3 => (px, ColorType::Rgb),
        _ => (px, ColorType::Rgba),
    };
    let mut out = Vec::with_capacity(s.len() / 4 + 1024);
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    match chroma {
        Chroma::Auto => {}
        Chroma::S420 => encoder.set_sampling_factor(SamplingFactor::F_2_2),
        Chroma::S444 => encoder.set_sampling_factor(SamplingFactor::F_1_1),
    }
    encoder.encode(data, w, h, color).map_err(|e| format!("encoding as Jpeg failed: {e}"))?;
    Ok(out)
}

/// Writes `bytes` to the task's temporary name, then renames it to the output: a reader of the
/// output directory sees the whole file or none. `kill_half_way` is the test hook: the worker
/// kills itself after writing half.
fn write_atomically(task: &FileTask, bytes: &[u8], kill_half_way: bool) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| {
        let _ = std::fs::remove_file(&task.temp);
        format!("cannot {what} {}: {e}", task.temp.display())
    };
    let mut f = std::fs::File::create(&task.temp).map_err(|e| fail("create", e))?;
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).map_err(|e| fail("write", e))?;
    if kill_half_way {
        f.flush().map_err(|e| fail("write", e))?;
        // SAFETY: kill(2) on this process's own pid with a valid signal number has no memory
        // effects; SIGKILL ends the process here, as a crashing decoder would.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    f.write_all(&bytes[half..]).map_err(|e| fail("write", e))?;
    drop(f);
    std::fs::rename(&task.temp, &task.output).map_err(|e| fail("rename", e))
}
