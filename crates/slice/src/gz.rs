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
pub(crate) struct Inflater {
    strm: Box<z::z_stream>,
}

// The stream owns its state exclusively; the raw pointers in z_stream only
// point into buffers that live for the duration of one `inflate` call.
unsafe impl Send for Inflater {}

/// zlib `windowBits` for a raw deflate stream.
pub(crate) const RAW: i32 = -15;
/// zlib `windowBits` for a gzip stream (header and trailer checked).
pub(crate) const GZIP: i32 = 31;

impl Inflater {
    /// A new stream (`window_bits`: [`RAW`] or [`GZIP`]).
    pub(crate) fn new(window_bits: i32) -> Inflater {
        let mut strm = Box::new(z::z_stream::default());
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
        let code = unsafe { z::inflateReset2(&mut *self.strm, window_bits) };
        debug_assert_eq!(code, z::Z_OK);
    }

    /// Insert the `bits` high bits of `byte` (a block starting mid-byte).
    pub(crate) fn prime(&mut self, bits: u8, byte: u8) {
        if bits > 0 {
            let value = (byte as i32) >> (8 - bits as i32);
            let code = unsafe { z::inflatePrime(&mut *self.strm, bits as i32, value) };
            debug_assert_eq!(code, z::Z_OK);
        }
    }

    /// Give a raw stream the window of output that preceded it.
    pub(crate) fn set_dictionary(&mut self, window: &[u8]) {
        if window.is_empty() {
            return;
        }
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
