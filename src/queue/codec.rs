//! The frame format every `MessageQueue` ring holds (bounded or unbounded), and the one reader
//! of frames, [`decode_frame`].
//!
//! A frame is a little-endian `u32` payload length, a little-endian `u64` type tag, then the
//! payload (postcard-encoded for the serde API, as given for raw bytes), written contiguously
//! modulo the ring size. The tag is a hash of the message's type name (or [`RAW`] for
//! `put_bytes`), checked by a typed get before anything is consumed. Every length read from
//! shared memory is bounded before use, so a corrupt ring is an error, never an out-of-bounds
//! copy or an allocation over `max_message`. [`RawRing`] is the one copier into and out of a
//! ring in shared memory. Details: "`MessageQueue`" in `README.md`.

use std::ptr::NonNull;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::BadFrame;
use crate::segment::header::fnv1a;

/// Bytes before every frame's payload: its length (`u32` LE) and its type tag (`u64` LE).
pub(crate) const FRAME_HEADER: usize = 12;

/// The type tag of a frame `put_bytes` wrote: raw bytes, of no type. No serde type has it.
pub(crate) const RAW: u64 = 0;

/// The type tag of messages put (and got) as `M`: FNV-1a (the hash segment headers use for
/// type names) of `M`'s name with the differences serde does not see removed
/// ([`canonical_type_name`]), so that a message put as `&str` gets as `String`. Never [`RAW`].
pub(crate) fn type_tag<M: ?Sized>() -> u64 {
    match fnv1a(canonical_type_name(std::any::type_name::<M>()).as_bytes()) {
        RAW => RAW + 1,
        tag => tag,
    }
}

/// `name` (a `std::any::type_name`) with the differences that do not change serde's encoding
/// removed, recursively inside tuples, arrays, slices and generic arguments: `&T` and `&mut T`
/// become `T`; `Box<T>`, `Rc<T>`, `Arc<T>` and `Cow<T>` become `T`; `str` becomes `String` and
/// `[T]` becomes `Vec<T>` (`[T; N]`, a tuple to serde, stays); lifetimes go. Put and get compute
/// it the same way, so it only has to be deterministic: a name it cannot parse is kept as it is.
pub(crate) fn canonical_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    match canon_into(name, &mut out) {
        Some(()) => out,
        None => name.to_string(),
    }
}

fn canon_into(t: &str, out: &mut String) -> Option<()> {
    let t = t.trim();
    if let Some(rest) = t.strip_prefix('&') {
        // `&'a mut T` (names usually print no lifetime, but may).
        let rest = match rest.strip_prefix('\'') {
            Some(r) => r.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'),
            None => rest,
        };
        let rest = rest.trim_start();
        return canon_into(rest.strip_prefix("mut ").unwrap_or(rest), out);
    }
    if t == "str" {
        out.push_str("alloc::string::String");
        return Some(());
    }
    let list = |open: char, items: &[&str], close: char, out: &mut String| {
        out.push(open);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if !item.trim().is_empty() {
                canon_into(item, out)?;
            }
        }
        out.push(close);
        Some(())
    };
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return match split_top(inner, ';')?.as_slice() {
            [elem] => {
                out.push_str("alloc::vec::Vec");
                list('<', &[elem], '>', out)
            }
            [elem, n] => {
                out.push('[');
                canon_into(elem, out)?;
                out.push_str("; ");
                out.push_str(n.trim());
                out.push(']');
                Some(())
            }
            _ => None,
        };
    }
    if let Some(inner) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        return list('(', &split_top(inner, ',')?, ')', out);
    }
    if let Some(open) = t.find('<')
        && let Some(inner) = t[open + 1..].strip_suffix('>')
    {
        let mut args = split_top(inner, ',')?;
        // Lifetimes (`Cow<'_, str>`) are not types; serde does not see them.
        args.retain(|a| !a.trim_start().starts_with('\''));
        let path = &t[..open];
        let transparent =
            ["alloc::boxed::Box", "alloc::rc::Rc", "alloc::sync::Arc", "alloc::borrow::Cow"];
        if let [only] = args.as_slice()
            && transparent.contains(&path)
        {
            return canon_into(only, out);
        }
        out.push_str(path);
        return list('<', &args, '>', out);
    }
    out.push_str(t);
    Some(())
}

/// `s` split at each `sep` outside brackets; `None` if the brackets do not balance.
fn split_top(s: &str, sep: char) -> Option<Vec<&str>> {
    let (mut depth, mut start, mut parts) = (0usize, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth = depth.checked_sub(1)?,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    (depth == 0).then(|| {
        parts.push(&s[start..]);
        parts
    })
}

/// What a get accepts at the head of the ring.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Want {
    /// Any frame, as raw bytes (`get_bytes`).
    Any,
    /// A frame put as this type (`get::<M>`): its tag and, for the error, its name.
    Type { tag: u64, name: &'static str },
}

impl Want {
    pub(crate) fn of<M: ?Sized>() -> Want {
        Want::Type { tag: type_tag::<M>(), name: std::any::type_name::<M>() }
    }
}

/// The header every frame starts with.
pub(crate) fn frame_header(len: u32, tag: u64) -> [u8; FRAME_HEADER] {
    let mut h = [0u8; FRAME_HEADER];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&tag.to_le_bytes());
    h
}

/// Where a copy of `n` bytes at position `pos` of a ring of `size` bytes goes: (offset, bytes
/// before the end); the remaining `n - first` bytes wrap to offset 0. Refuses a copy larger than
/// the ring (or any copy from an empty ring), so both pieces always lie inside it.
pub(crate) fn wrap(size: u64, pos: u64, n: usize) -> Result<(usize, usize), BadFrame> {
    if n == 0 {
        return Ok((0, 0));
    }
    if n as u64 > size {
        return Err(corrupt_ring(format!("{n} bytes cannot fit a ring of {size}")));
    }
    let off = (pos % size) as usize; // size >= n > 0
    Ok((off, n.min(size as usize - off)))
}

/// A ring of bytes frames are read from: the shared ring of a queue, or a slice in tests.
pub(crate) trait RingRead {
    /// The ring's size in bytes.
    fn ring_size(&self) -> u64;
    /// Copies `out.len()` bytes from position `pos` (modulo the size, wrapping at the end).
    fn read_at(&self, pos: u64, out: &mut [u8]) -> Result<(), BadFrame>;
}

impl RingRead for [u8] {
    fn ring_size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, pos: u64, out: &mut [u8]) -> Result<(), BadFrame> {
        if out.is_empty() {
            return Ok(());
        }
        let (off, first) = wrap(self.len() as u64, pos, out.len())?;
        let (a, b) = out.split_at_mut(first);
        a.copy_from_slice(&self[off..off + first]);
        b.copy_from_slice(&self[..b.len()]);
        Ok(())
    }
}

/// A frame [`decode_frame`] took from the ring.
#[derive(Debug, PartialEq)]
pub(crate) struct Frame {
    /// The frame's type tag ([`RAW`] for raw bytes).
    pub(crate) tag: u64,
    /// Its payload: at most `max` bytes.
    pub(crate) payload: Vec<u8>,
    /// The position right after the frame: the new `head` once it is consumed.
    pub(crate) next: u64,
}

/// Reads the frame at `head` of a ring holding the bytes `head..tail`: `Ok(None)` when the ring
/// is empty; the frame when it is whole, at most `max` bytes, and what `want` accepts; else an
/// error, and the caller consumes nothing.
///
/// `head`, `tail` and the ring's bytes come from shared memory any process may have scribbled
/// over, so every number is bounded before use: `tail - head` must fit the ring and hold a frame
/// header, the frame's length must be at most `max` and fit those bytes, and only then is the
/// payload allocated (`len <= max`) and copied. A frame of another type is `BadMessage` naming
/// both types and stays queued (checked before the payload is read); a broken invariant is
/// `BadMessage` saying the queue is corrupt. No loop, no panic: every get reads through this.
pub(crate) fn decode_frame<R: RingRead + ?Sized>(
    ring: &R,
    head: u64,
    tail: u64,
    max: u64,
    want: Want,
) -> Result<Option<Frame>, BadFrame> {
    if head == tail {
        return Ok(None);
    }
    let size = ring.ring_size();
    let used = tail.wrapping_sub(head);
    if used > size || used < FRAME_HEADER as u64 {
        return Err(corrupt_ring(format!(
            "the ring claims to hold {used} bytes in a ring of {size}"
        )));
    }
    let mut h = [0u8; FRAME_HEADER];
    ring.read_at(head, &mut h)?;
    let [l0, l1, l2, l3, tag @ ..] = h;
    let (len, tag) = (u64::from(u32::from_le_bytes([l0, l1, l2, l3])), u64::from_le_bytes(tag));
    if len > max || FRAME_HEADER as u64 + len > used {
        return Err(corrupt_ring(format!(
            "a frame claims {len} bytes, more than the ring holds ({used}) or a message may have \
             ({max})"
        )));
    }
    if let Want::Type { tag: wanted, name } = want
        && tag != wanted
    {
        let found = if tag == RAW {
            "raw bytes (put_bytes)".to_string()
        } else {
            format!("another type (type tag {tag:#018x}; {name} has {wanted:#018x})")
        };
        return Err(BadFrame(format!(
            "the next message was put as {found}, not as the {name} asked for; it stays queued: \
             get it as the type it was put as, or take its bytes with get_bytes"
        )));
    }
    let mut payload = vec![0u8; len as usize];
    // From the header's offset in the ring, not `head + 12`: a (corrupt) head near `u64::MAX`
    // would wrap the position and jump to an unrelated offset (positions are continuous modulo
    // the ring size only below 2^64, which a real queue never reaches).
    ring.read_at(head % size + FRAME_HEADER as u64, &mut payload)?;
    Ok(Some(Frame { tag, payload, next: head.wrapping_add(FRAME_HEADER as u64 + len) }))
}

/// The error for a ring whose shared state breaks its own invariants.
pub(crate) fn corrupt_ring(reason: String) -> BadFrame {
    BadFrame(format!("{reason}; the queue is corrupt"))
}

pub(crate) fn encode<M: Serialize + ?Sized>(msg: &M) -> Result<Vec<u8>, BadFrame> {
    postcard::to_stdvec(msg).map_err(|e| BadFrame(format!("cannot encode: {e}")))
}

pub(crate) fn decode<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, BadFrame> {
    postcard::from_bytes(bytes).map_err(|e| BadFrame(format!("cannot decode: {e}")))
}

/// A ring of `cap` bytes in shared memory at `data`: the copies in and out of it, each checked
/// against the ring's size ([`wrap`]).
///
/// # Safety
///
/// The contract is the constructor's ([`RawRing::new`]): `data` is valid for reads and writes of
/// `cap` bytes for as long as the `RawRing` is used, and the caller of each copy holds the lock
/// that guards those bytes.
#[derive(Clone, Copy)]
pub(crate) struct RawRing {
    data: NonNull<u8>,
    cap: u64,
}

impl RawRing {
    /// The ring of `cap` bytes at `data`.
    ///
    /// # Safety
    ///
    /// `data` must be valid for reads and writes of `cap` bytes while the `RawRing` (or a copy)
    /// is used, and every copy must be made under the lock that guards those bytes, so that no
    /// other cooperating thread or process writes them meanwhile.
    pub(crate) unsafe fn new(data: NonNull<u8>, cap: u64) -> RawRing {
        RawRing { data, cap }
    }

    /// Copies `bytes` in at position `pos` (modulo the size, wrapping at the end).
    pub(crate) fn copy_in(&self, pos: u64, bytes: &[u8]) -> Result<(), BadFrame> {
        let (off, first) = wrap(self.cap, pos, bytes.len())?;
        // SAFETY: `new`'s contract: the ring's bytes are valid and ours under the lock; `wrap`
        // checked `len <= cap` and gives `off + first <= cap`, so `len - first <= off`: both
        // copies stay inside the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data.as_ptr().add(off), first);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr().add(first),
                self.data.as_ptr(),
                bytes.len() - first,
            );
        }
        Ok(())
    }
}

impl RingRead for RawRing {
    fn ring_size(&self) -> u64 {
        self.cap
    }

    fn read_at(&self, pos: u64, out: &mut [u8]) -> Result<(), BadFrame> {
        let (off, first) = wrap(self.cap, pos, out.len())?;
        // SAFETY: `new`'s contract: valid bytes that no cooperating process writes while we hold
        // the lock; `wrap` keeps both ranges inside the ring (as in `copy_in`), and any byte value
        // is a valid `u8`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.as_ptr().add(off), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                self.data.as_ptr(),
                out.as_mut_ptr().add(first),
                out.len() - first,
            );
        }
        Ok(())
    }
}
