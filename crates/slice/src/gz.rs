//! gzip random access: a safe wrapper over zlib's inflate (the zlib-rs
//! implementation, through its C API) with the block-level controls that
//! random access needs (`Z_BLOCK`, `inflatePrime`, `inflateSetDictionary`),
//! and the decoder that resumes at a checkpoint.
//!
//! A checkpoint is zlib's `zran` access point: the deflate block boundary
//! (a byte offset in the compressed object and a number of bits into the
//! byte before it), the 32 KiB of output before it (the window the next
//! blocks may refer back to) and the uncompressed offset. A checkpoint at
//! the start of a gzip member needs no window: decoding parses the member
//! header there.
//!
//! This is the crate's only `unsafe` code: [`Inflater`] owns one zlib
//! stream and upholds zlib's contract (a stream initialised once, at a
//! fixed address, fed only buffers that outlive the call, ended once). If
//! one of those invariants broke, zlib would read or write memory it does
//! not own: undefined behaviour, not an error. Damaged input is never
//! unsafe: zlib reports it as an error code, returned as an `Err`.

use std::io::Write;

use libz_rs_sys as z;

/// The deflate window: how far back a deflate stream may refer.
pub(crate) const WINDOW: usize = 32 * 1024;

/// What one call to [`Inflater::inflate`] did.
pub(crate) struct Step {
    pub(crate) code: i32,
    pub(crate) consumed: usize,
    pub(crate) produced: usize,
    /// zlib's `data_type`: unused bits in the last input byte, +64 while
    /// in the last block, +128 right after a block boundary or a header.
    pub(crate) data_type: i32,
}

/// An inflate stream.
///
/// Invariants every `unsafe` block below relies on: `strm` was initialised
/// by `inflateInit2_` in [`Inflater::new`] (an `Inflater` exists only if
/// that succeeded) and is ended only in `Drop`; it is boxed, so its address
/// never changes (C zlib keeps a back-pointer from its state to the stream
/// and refuses a moved one); and between calls `next_in`/`next_out` are
/// null, so no pointer into a caller's buffer outlives the call it was set
/// for.
pub(crate) struct Inflater {
    strm: Box<z::z_stream>,
}

// SAFETY: the raw pointers in `z_stream` are: `state`, a heap allocation owned by this stream alone
// (no other handle to it exists) and freed with the global allocator, which any thread may do;
// `next_in`/`next_out`, null between calls (see `inflate`); `msg`, null or a static string;
// `opaque`, null. So nothing ties the stream to the thread that created it, and moving it to
// another thread is sound. It is not `Sync`: every call that touches the state takes `&mut self`.
// Storing a thread-bound pointer (a borrowed buffer kept between calls, a custom allocator with
// thread-local state) would break this.
unsafe impl Send for Inflater {}

/// zlib `windowBits` for a raw deflate stream.
pub(crate) const RAW: i32 = -15;
/// zlib `windowBits` for a gzip stream (header and trailer checked).
pub(crate) const GZIP: i32 = 31;

impl Inflater {
    /// A new stream (`window_bits`: [`RAW`] or [`GZIP`]).
    pub(crate) fn new(window_bits: i32) -> Inflater {
        let mut strm = Box::new(z::z_stream::default());
        // SAFETY: `strm` is a valid, exclusively borrowed `z_stream` with the default (null)
        // allocator fields, which zlib replaces with its own; `zlibVersion()` is a static
        // NUL-terminated string and the size is that of the struct zlib was built with. Passing a
        // stream that is already initialised would leak its state; a wrong size or version makes
        // zlib refuse (not misbehave).
        let code = unsafe {
            z::inflateInit2_(
                &mut *strm,
                window_bits,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            )
        };
        assert_eq!(code, z::Z_OK, "inflateInit2 failed");
        Inflater { strm }
    }

    /// Start a new gzip member (after the previous one ended).
    pub(crate) fn reset(&mut self, window_bits: i32) {
        // SAFETY: the stream is initialised and not ended (type invariant)
        // and borrowed mutably, so zlib has it to itself; the input and
        // output pointers are null (no buffer is referenced). Calling this
        // after `inflateEnd` would touch freed state.
        let code = unsafe { z::inflateReset2(&mut *self.strm, window_bits) };
        debug_assert_eq!(code, z::Z_OK);
    }

    /// Insert the `bits` high bits of `byte` (a block starting mid-byte).
    pub(crate) fn prime(&mut self, bits: u8, byte: u8) {
        if bits > 0 {
            let value = (byte as i32) >> (8 - bits as i32);
            // SAFETY: an initialised, exclusively borrowed stream (type
            // invariant); `inflatePrime` only stores the bits in the state's
            // bit buffer and dereferences no caller memory. An ended stream
            // would break it.
            let code = unsafe { z::inflatePrime(&mut *self.strm, bits as i32, value) };
            debug_assert_eq!(code, z::Z_OK);
        }
    }

    /// Give a raw stream the window of output that preceded it.
    pub(crate) fn set_dictionary(&mut self, window: &[u8]) {
        // Only the last 32 KiB can be referred back to.
        let window = &window[window.len().saturating_sub(WINDOW)..];
        if window.is_empty() {
            return;
        }
        // SAFETY: an initialised, exclusively borrowed stream (type invariant); `window` is a live,
        // non-empty slice for the whole call and its length is passed with it (at most 32 KiB after
        // the cut above, so the `u32` cannot truncate). zlib copies the bytes into its own window
        // and keeps no pointer to them. A length larger than the slice would make zlib read past
        // it.
        let code = unsafe {
            z::inflateSetDictionary(&mut *self.strm, window.as_ptr(), window.len() as u32)
        };
        debug_assert_eq!(code, z::Z_OK);
    }

    /// Inflate from `input` into `output`.
    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8], flush: i32) -> Step {
        let in_len = input.len().min(u32::MAX as usize);
        let out_len = output.len().min(u32::MAX as usize);
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = in_len as u32;
        self.strm.next_out = output.as_mut_ptr();
        self.strm.avail_out = out_len as u32;
        // SAFETY: an initialised, exclusively borrowed stream (type invariant).
        // `next_in`/`avail_in` describe `input` and `next_out`/`avail_out` describe `output`
        // (lengths clamped to `u32`, never more than the slices hold); both slices are borrowed for
        // this whole call, and they cannot overlap since one is `&` and the other `&mut`. The
        // pointers are reset to null right after, so none outlives its buffer. Setting an `avail_*`
        // larger than its slice, or keeping the pointers past this call, would let zlib read or
        // write out of bounds.
        let code = unsafe { z::inflate(&mut *self.strm, flush) };
        let step = Step {
            code,
            consumed: in_len - self.strm.avail_in as usize,
            produced: out_len - self.strm.avail_out as usize,
            data_type: self.strm.data_type,
        };
        self.strm.next_in = std::ptr::null();
        self.strm.avail_in = 0;
        self.strm.next_out = std::ptr::null_mut();
        self.strm.avail_out = 0;
        step
    }

    /// zlib's message for the last error.
    pub(crate) fn message(&self, code: i32) -> String {
        if !self.strm.msg.is_null() {
            // SAFETY: a non-null `msg` is set by zlib to a static
            // NUL-terminated string (never freed, never written to), and the
            // `CStr` is copied into a `String` before `self` is released. A
            // zlib that pointed `msg` into memory it later frees would break
            // this.
            let m = unsafe { std::ffi::CStr::from_ptr(self.strm.msg) };
            return m.to_string_lossy().into_owned();
        }
        match code {
            z::Z_DATA_ERROR => "invalid deflate data".into(),
            z::Z_MEM_ERROR => "out of memory".into(),
            z::Z_NEED_DICT => "a preset dictionary is needed".into(),
            other => format!("zlib error {other}"),
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised (type invariant) and this is
        // the only place it is ended: `drop` runs once, and nothing uses
        // the stream afterwards. Ending it twice would free its state twice.
        unsafe {
            z::inflateEnd(&mut *self.strm);
        }
    }
}

/// Compress a window for storage in an index or a slice descriptor.
pub(crate) fn pack_window(window: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(window.len() / 2),
        flate2::Compression::fast(),
    );
    enc.write_all(window).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// Undo [`pack_window`].
pub(crate) fn unpack_window(packed: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(WINDOW);
    flate2::read::DeflateDecoder::new(packed)
        .take(WINDOW as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > WINDOW {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "window larger than 32 KiB",
        ));
    }
    Ok(out)
}

/// Where a [`Decoder`] is in the stream.
enum State {
    Inflating,
    /// Skipping the trailer (CRC32, ISIZE) of a member that was resumed
    /// mid-way: its CRC covers bytes not decoded here, so it is not checked.
    Trailer(usize),
    /// Between members: the bytes seen of what may be the next header.
    Header(Vec<u8>),
    /// The data ended (bytes after the last member are ignored, as gzip does).
    Done,
}

/// A streaming decoder that resumes at a checkpoint and follows
/// concatenated members: push compressed chunks in order, get output.
pub(crate) struct Decoder {
    inf: Inflater,
    /// Decoding a raw deflate stream (resumed mid-member).
    raw: bool,
    /// The first input byte still has to be primed with this many bits.
    prime_bits: u8,
    state: State,
    buf: Vec<u8>,
}

impl Decoder {
    /// `window`: `None` when the input starts with a gzip member header;
    /// `Some((bits, window))` for a raw deflate block boundary, in which case
    /// when `bits > 0` the input starts one byte early.
    pub(crate) fn new(window: Option<(u8, &[u8])>) -> Decoder {
        let (inf, raw, prime_bits) = match window {
            None => (Inflater::new(GZIP), false, 0),
            Some((bits, w)) => {
                let mut inf = Inflater::new(RAW);
                inf.set_dictionary(w);
                (inf, true, bits)
            }
        };
        Decoder {
            inf,
            raw,
            prime_bits,
            state: State::Inflating,
            buf: vec![0u8; 256 * 1024],
        }
    }

    /// Decode the next compressed bytes, handing output to `out` (which
    /// returns false to stop). Returns `Ok(false)` once stopped or ended.
    pub(crate) fn push(
        &mut self,
        mut input: &[u8],
        out: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<bool, String> {
        if self.prime_bits > 0 {
            let Some((&b, rest)) = input.split_first() else {
                return Ok(true);
            };
            self.inf.prime(self.prime_bits, b);
            self.prime_bits = 0;
            input = rest;
        }
        while !input.is_empty() {
            match &mut self.state {
                State::Done => return Ok(false),
                State::Trailer(left) => {
                    let k = (*left).min(input.len());
                    input = &input[k..];
                    *left -= k;
                    if *left == 0 {
                        self.state = State::Header(Vec::new());
                    }
                }
                State::Header(seen) => {
                    while seen.len() < 2 && !input.is_empty() {
                        seen.push(input[0]);
                        input = &input[1..];
                    }
                    if seen.len() < 2 {
                        return Ok(true);
                    }
                    if seen[..] != [0x1f, 0x8b] {
                        self.state = State::Done;
                        return Ok(false);
                    }
                    let head = std::mem::take(seen);
                    self.inf.reset(GZIP);
                    self.state = State::Inflating;
                    // The two magic bytes start the header: no output yet.
                    let (_, _, more) = self.step(&head, out)?;
                    if !more {
                        return Ok(false);
                    }
                }
                State::Inflating => {
                    let (used, produced, more) = self.step(input, out)?;
                    if !more {
                        return Ok(false);
                    }
                    if used == 0 && produced == 0 && matches!(self.state, State::Inflating) {
                        return Ok(true);
                    }
                    input = &input[used..];
                }
            }
        }
        Ok(!matches!(self.state, State::Done))
    }

    /// One inflate call: (input consumed, output produced, keep going).
    fn step(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(usize, usize, bool), String> {
        let step = self.inf.inflate(input, &mut self.buf, z::Z_NO_FLUSH);
        if step.produced > 0 && !out(&self.buf[..step.produced]) {
            self.state = State::Done;
            return Ok((step.consumed, step.produced, false));
        }
        match step.code {
            z::Z_OK | z::Z_BUF_ERROR => Ok((step.consumed, step.produced, true)),
            z::Z_STREAM_END => {
                self.state = if self.raw {
                    self.raw = false;
                    State::Trailer(8)
                } else {
                    State::Header(Vec::new())
                };
                Ok((step.consumed, step.produced, true))
            }
            code => Err(self.inf.message(code)),
        }
    }
}
