//! Attacks on issue 12's vectorized imaging (fifth session): `u8::from_f32`'s clamped
//! unchecked conversion against the saturating cast it replaced, over every `f32` bit
//! pattern; the four-lane RGB row pass of `resize` against the same image's channels resized
//! one at a time as gray (which take the one-lane path: the bits must agree) and against a
//! direct `f64` resampler written here from the documented rule; the blur's row pass as a
//! function, RGB against each channel blurred alone, on tiny, tall, wide images and huge
//! sigmas.

use shmpool_kernels::imaging::{Filter, Image, Sample, Shape, gaussian_blur, resize};

/// `from_f32` is `(v + 0.5) as u8` (Rust's saturating cast, NaN to 0) for every one of the
/// 2^32 bit patterns: NaNs of both signs and every payload, subnormals, -0.0, infinities,
/// the values around 254.5 and 255.5. The kernels are optimized in test builds: this file's
/// four tests took 6 s together on the shared 2-core VM (`cargo test -p shmpool-kernels --test
/// adversary_imaging`), the sweep most of it.
#[test]
fn u8_from_f32_is_the_saturating_cast_for_every_f32_bit_pattern() {
    let mut bad = Vec::new();
    let mut bits = 0u32;
    loop {
        let v = f32::from_bits(bits);
        let (got, want) = (u8::from_f32(v), (v + 0.5) as u8);
        if got != want && bad.len() < 10 {
            bad.push((bits, v, got, want));
        }
        if bits == u32::MAX {
            break;
        }
        bits += 1;
    }
    assert!(bad.is_empty(), "(bits, v, got, want): {bad:?}");
}

/// A deterministic sample in 0..=255 (u8) for pixel `i`.
fn noise(i: usize) -> u8 {
    ((i.wrapping_mul(2_654_435_761) >> 11) % 256) as u8
}

/// Channel `ch` of an interleaved `c`-channel image, as a gray image.
fn channel<T: Sample>(img: &Image<T>, ch: usize) -> Image<T> {
    let s = img.shape();
    Image::from_fn(Shape::new(s.h, s.w, 1), |y, x, _| img.pixel(y, x)[ch])
}

/// The documented resampling weights, in `f64`, written from `resize`'s doc (centres aligned
/// at `(o + 0.5) * ratio`, the filter widened by the ratio when shrinking, taps cut at the
/// edges and renormalized), not from the crate's code.
fn ref_weights(filter: Filter, src: usize, dst: usize) -> Vec<(usize, Vec<f64>)> {
    let ratio = src as f64 / dst as f64;
    let scale = ratio.max(1.0);
    let support = f64::from(filter.support()) * scale;
    let weight = |x: f64| -> f64 {
        let x = x.abs();
        let sinc = |x: f64| {
            if x == 0.0 {
                1.0
            } else {
                (x * std::f64::consts::PI).sin() / (x * std::f64::consts::PI)
            }
        };
        match filter {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Lanczos3 if x < 3.0 => sinc(x) * sinc(x / 3.0),
            Filter::Lanczos3 => 0.0,
        }
    };
    (0..dst)
        .map(|o| {
            let centre = (o as f64 + 0.5) * ratio;
            let left = ((centre - support).floor().max(0.0) as usize).min(src - 1);
            let right = ((centre + support).ceil() as usize).clamp(left + 1, src);
            let mut ws: Vec<f64> =
                (left..right).map(|i| weight((i as f64 - (centre - 0.5)) / scale)).collect();
            let sum: f64 = ws.iter().sum();
            if sum != 0.0 {
                ws.iter_mut().for_each(|w| *w /= sum);
            }
            (left, ws)
        })
        .collect()
}

/// A direct separable resampler in `f64` (columns then rows, unclamped between): sample
/// `(y, x, ch)` of the `h` x `w` result of the `(sh, sw, c)` samples `px`.
fn ref_resize(
    px: &[f64],
    (sh, sw, c): (usize, usize, usize),
    w: usize,
    h: usize,
    f: Filter,
) -> Vec<f64> {
    let (rows, cols) = (ref_weights(f, sh, h), ref_weights(f, sw, w));
    let mut out = vec![0.0; h * w * c];
    for (y, (fy, wy)) in rows.iter().enumerate() {
        for (x, (fx, wx)) in cols.iter().enumerate() {
            for ch in 0..c {
                let mut acc = 0.0;
                for (j, a) in wy.iter().enumerate() {
                    for (i, b) in wx.iter().enumerate() {
                        acc += a * b * px[((fy + j) * sw + fx + i) * c + ch];
                    }
                }
                out[(y * w + x) * c + ch] = acc;
            }
        }
    }
    out
}

/// Every width 1..=40 to every width 1..=40 (heights 3 to 5, so rows resample too), both
/// filters, `u8` and `f32`: the RGB resize is bit for bit its three channels resized alone
/// as gray (the one-lane path), and within 1 (`u8`) or 1e-4 (`f32`) of the direct `f64`
/// resampler. A lane of the next pixel leaking into a channel, or a sum stored at the wrong
/// stride, shows in both.
#[test]
fn rgb_resize_is_its_channels_resized_alone_for_every_width_pair() {
    for sw in 1..=40usize {
        let sh = 3 + sw % 3;
        let img = Image::from_fn(Shape::new(sh, sw, 3), |y, x, c| noise((y * sw + x) * 3 + c));
        let imgf = Image::from_fn(img.shape(), |y, x, c| f32::from(img.pixel(y, x)[c]) / 255.0);
        let grays: Vec<_> = (0..3).map(|ch| channel(&img, ch)).collect();
        let graysf: Vec<_> = (0..3).map(|ch| channel(&imgf, ch)).collect();
        let src: Vec<f64> = img.as_slice().iter().map(|&v| f64::from(v)).collect();
        for w in 1..=40usize {
            let h = 1 + (w + sw) % 6;
            for f in [Filter::Bilinear, Filter::Lanczos3] {
                let what = format!("{sw}x{sh} -> {w}x{h} {f:?}");
                let out = resize(&img, w, h, f).unwrap();
                let outf = resize(&imgf, w, h, f).unwrap();
                for ch in 0..3 {
                    let g = resize(&grays[ch], w, h, f).unwrap();
                    let gf = resize(&graysf[ch], w, h, f).unwrap();
                    assert_eq!(channel(&out, ch).as_slice(), g.as_slice(), "u8 {what} ch {ch}");
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(channel(&outf, ch).as_slice()),
                        bits(gf.as_slice()),
                        "f32 {what} ch {ch}"
                    );
                }
                let want = ref_resize(&src, (sh, sw, 3), w, h, f);
                for (i, (&got, &want)) in out.as_slice().iter().zip(&want).enumerate() {
                    let want = want.clamp(0.0, 255.0);
                    assert!(
                        (f64::from(got) - want).abs() <= 1.0,
                        "u8 {what} sample {i}: {got} vs {want}"
                    );
                }
                for (i, (&got, &want)) in outf.as_slice().iter().zip(&want).enumerate() {
                    let want = (want / 255.0).clamp(0.0, 1.0);
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-4,
                        "f32 {what} sample {i}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// `f32` RGB with NaN, infinities, negative and over-range samples in one channel: the other
/// two channels come out exactly as they do alone (no lane of a neighbour leaks into them).
#[test]
fn special_values_in_one_channel_do_not_leak_into_the_others() {
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1e30, 1e30, -0.0, 7.5];
    for sw in [1usize, 2, 3, 7, 33] {
        for bad_ch in 0..3 {
            let img = Image::from_fn(Shape::new(2, sw, 3), |y, x, c| {
                if c == bad_ch {
                    specials[(y * sw + x) % specials.len()]
                } else {
                    f32::from(noise(x * 3 + c)) / 255.0
                }
            });
            for (w, h) in [(1, 1), (sw.div_ceil(2), 1), (sw * 3, 3)] {
                for f in [Filter::Bilinear, Filter::Lanczos3] {
                    let out = resize(&img, w, h, f).unwrap();
                    for ch in (0..3).filter(|&c| c != bad_ch) {
                        let alone = resize(&channel(&img, ch), w, h, f).unwrap();
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(channel(&out, ch).as_slice()),
                            bits(alone.as_slice()),
                            "{sw} -> {w}x{h} {f:?}: channel {ch} beside specials in {bad_ch}"
                        );
                    }
                }
            }
        }
    }
}

/// The blur's row pass (now a function): RGB is each channel blurred alone as gray, bit for
/// bit, on every size 1x1 to 7x7, tall and wide strips, and sigmas from tiny to huge (taps
/// far beyond the image, every one the border pixel repeated), `u8` and `f32`; a flat image
/// stays flat.
#[test]
fn rgb_blur_is_its_channels_blurred_alone_on_tiny_tall_and_wide_images() {
    let mut sizes: Vec<(usize, usize)> =
        (1..=7).flat_map(|h| (1..=7).map(move |w| (h, w))).collect();
    sizes.extend([(1, 61), (61, 1), (2, 45), (45, 2)]);
    for (h, w) in sizes {
        for sigma in [0.2f32, 1.0, 2.5, 40.0, 1e5, f32::INFINITY] {
            let img = Image::from_fn(Shape::new(h, w, 3), |y, x, c| noise((y * w + x) * 3 + c));
            let mut rgb = img.clone();
            gaussian_blur(rgb.as_mut_slice(), img.shape(), sigma);
            let imgf = Image::from_fn(img.shape(), |y, x, c| f32::from(img.pixel(y, x)[c]) / 255.0);
            let mut rgbf = imgf.clone();
            gaussian_blur(rgbf.as_mut_slice(), imgf.shape(), sigma);
            for ch in 0..3 {
                let what = format!("{h}x{w} sigma {sigma} ch {ch}");
                let mut g = channel(&img, ch);
                let s = g.shape();
                gaussian_blur(g.as_mut_slice(), s, sigma);
                assert_eq!(channel(&rgb, ch).as_slice(), g.as_slice(), "u8 {what}");
                let mut gf = channel(&imgf, ch);
                gaussian_blur(gf.as_mut_slice(), s, sigma);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(channel(&rgbf, ch).as_slice()), bits(gf.as_slice()), "f32 {what}");
            }
            let mut flat = Image::from_fn(Shape::new(h, w, 3), |_, _, c| [17u8, 128, 250][c]);
            let s = flat.shape();
            gaussian_blur(flat.as_mut_slice(), s, sigma);
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(
                        flat.pixel(y, x),
                        [17, 128, 250],
                        "flat {h}x{w} sigma {sigma} at ({y}, {x})"
                    );
                }
            }
        }
    }
}
