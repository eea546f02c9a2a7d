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

/// Where decoding of a slice starts.
pub(crate) struct Resume<'a> {
    /// `None`: the input starts with a gzip member header.
    /// `Some((bits, window))`: a raw deflate block boundary; when `bits > 0`
    /// the input starts one byte early, with the block's first bits at the
    /// top of that byte.
    pub(crate) raw: Option<(u8, &'a [u8])>,
}

/// Decompress `input` (the compressed bytes from a checkpoint on) until
/// `want` bytes were produced or the input ends. Concatenated members are
/// followed. Returns the output; `Err` carries a message on corrupt data.
pub(crate) fn decode_from(resume: Resume<'_>, input: &[u8], want: u64) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::with_capacity(want.min(1 << 30) as usize);
    let mut pos = 0usize;
    let mut inf;
    let mut raw = false;
    match resume.raw {
        None => inf = Inflater::new(GZIP),
        Some((bits, window)) => {
            inf = Inflater::new(RAW);
            raw = true;
            if bits > 0 {
                let Some(&b) = input.first() else {
                    return Err("no input".into());
                };
                inf.prime(bits, b);
                pos = 1;
            }
            inf.set_dictionary(window);
        }
    }
    let mut buf = vec![0u8; 256 * 1024];
    while (out.len() as u64) < want {
        let limit = ((want - out.len() as u64) as usize).min(buf.len());
        let step = inf.inflate(&input[pos..], &mut buf[..limit], z::Z_NO_FLUSH);
        pos += step.consumed;
        out.extend_from_slice(&buf[..step.produced]);
        match step.code {
            z::Z_OK => {}
            z::Z_BUF_ERROR => {
                if step.consumed == 0 && step.produced == 0 {
                    break; // input exhausted
                }
            }
            z::Z_STREAM_END => {
                if raw {
                    // Skip the member trailer (CRC32, ISIZE): not checked on a
                    // resumed member, whose CRC covers bytes not decoded here.
                    pos = (pos + 8).min(input.len());
                    raw = false;
                }
                let rest = &input[pos..];
                if rest.len() >= 2 && rest[0] == 0x1f && rest[1] == 0x8b {
                    inf.reset(GZIP);
                } else {
                    break;
                }
            }
            code => return Err(inf.message(code)),
        }
    }
    Ok(out)
}
