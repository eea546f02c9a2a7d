//! casacore's AipsIO encoding, read from bytes: the serialization of every
//! casacore table file (`table.dat`, `table.lock`, the storage managers'
//! headers and indexes).
//!
//! Scalars are fixed-size and unaligned, big-endian ("canonical") or
//! little-endian as the file says; a string is a `u32` length and its bytes;
//! an object is a `u32` length (counted from the length field itself to the
//! object's end, nested objects included), its type name as a string and a
//! `u32` version, and a stream starts with the magic `0xBEBEBEBE`. Objects
//! can therefore be skipped whole, which is how keyword records are passed
//! over: the slicer needs none of their values.

use crate::error::{Error, Result};

/// The first four bytes of every AipsIO stream.
pub(crate) const MAGIC: u32 = 0xBEBE_BEBE;

/// An object header: its type name, version and where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    pub(crate) kind: String,
    pub(crate) version: u32,
    /// Offset just past the object.
    pub(crate) end: usize,
}

/// A cursor over an AipsIO stream.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
    /// Names the file in errors.
    file: &'a str,
}

impl<'a> Reader<'a> {
    /// Read `buf` (big-endian when `big`), naming `file` in errors.
    pub(crate) fn new(buf: &'a [u8], big: bool, file: &'a str) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            big,
            file,
        }
    }

    /// The offset of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// An error about this file at the current offset.
    pub(crate) fn invalid(&self, message: impl std::fmt::Display) -> Error {
        super::invalid(self.file, format!("byte {}: {message}", self.pos))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        match self.pos.checked_add(n).filter(|&e| e <= self.buf.len()) {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(self.invalid(format!(
                "the file ends (at byte {}) inside {what}",
                self.buf.len()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        if !self.big {
            out.reverse();
        }
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1, "a byte")?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        Ok(self.u8()? != 0)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array("a 4-byte number")?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array("a 4-byte number")?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array("an 8-byte number")?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array("an 8-byte number")?))
    }

    /// Skip `n` bytes.
    pub(crate) fn skip(&mut self, n: usize, what: &str) -> Result<()> {
        self.take(n, what).map(|_| ())
    }

    /// A string (`u32` length, then bytes; not necessarily UTF-8).
    pub(crate) fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let b = self.take(n, "a string")?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// The stream's magic number.
    pub(crate) fn magic(&mut self) -> Result<()> {
        let at = self.pos;
        let m = u32::from_be_bytes(
            self.take(4, "the AipsIO magic number")?
                .try_into()
                .unwrap_or([0; 4]),
        );
        if m != MAGIC {
            self.pos = at;
            return Err(self.invalid(format!(
                "not a casacore AipsIO stream (magic {m:#010x}, expected {MAGIC:#010x})"
            )));
        }
        Ok(())
    }

    /// An object header; `expect` is the type name it must have.
    pub(crate) fn object(&mut self, expect: Option<&str>) -> Result<Object> {
        let at = self.pos;
        let len = self.u32()? as usize;
        let kind = self.string()?;
        let version = self.u32()?;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= self.buf.len() && e >= self.pos);
        let Some(end) = end else {
            self.pos = at;
            return Err(self.invalid(format!(
                "object {kind:?} claims {len} bytes, past the end of the file ({} bytes)",
                self.buf.len()
            )));
        };
        if let Some(want) = expect {
            if kind != want {
                self.pos = at;
                return Err(self.invalid(format!("expected a {want:?} object, found {kind:?}")));
            }
        }
        Ok(Object { kind, version, end })
    }

    /// Pass over a whole object (a record whose values are not needed).
    pub(crate) fn skip_object(&mut self, expect: Option<&str>) -> Result<Object> {
        let o = self.object(expect)?;
        self.pos = o.end;
        Ok(o)
    }

    /// Check that an object's fields were all read.
    pub(crate) fn end_object(&mut self, o: &Object) -> Result<()> {
        if self.pos != o.end {
            return Err(self.invalid(format!(
                "object {:?} ends at byte {}, its fields at byte {}",
                o.kind, o.end, self.pos
            )));
        }
        Ok(())
    }

    /// An `IPosition` object (a shape).
    pub(crate) fn iposition(&mut self) -> Result<Vec<i64>> {
        let o = self.object(Some("IPosition"))?;
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            out.push(match o.version {
                1 => i64::from(self.i32()?),
                _ => self.i64()?,
            });
        }
        self.end_object(&o)?;
        Ok(out)
    }

    /// A `Block` object of `u32`.
    pub(crate) fn block_u32(&mut self) -> Result<Vec<u32>> {
        let o = self.object(Some("Block"))?;
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            out.push(self.u32()?);
        }
        self.end_object(&o)?;
        Ok(out)
    }
}

/// An AipsIO stream being written (the inverse of [`Reader`]).
pub(crate) struct Writer {
    buf: Vec<u8>,
    big: bool,
    /// Where each open object's length field lies.
    open: Vec<usize>,
}

impl Writer {
    /// A stream that starts with the magic, big-endian when `big`.
    pub(crate) fn new(big: bool) -> Writer {
        let mut w = Writer {
            buf: Vec::new(),
            big,
            open: Vec::new(),
        };
        w.u32(MAGIC);
        w
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    pub(crate) fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }

    /// Bytes copied as they are (a field kept from the file read).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// An `IPosition` (a shape): version 1 (32-bit extents) when every
    /// extent fits, as casacore writes it, else version 2.
    pub(crate) fn iposition(&mut self, v: &[u64]) {
        let small = v.iter().all(|&x| x <= i32::MAX as u64);
        self.start("IPosition", if small { 1 } else { 2 });
        self.u32(v.len() as u32);
        for &x in v {
            if small {
                self.u32(x as u32);
            } else {
                self.u64(x);
            }
        }
        self.end();
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Open an object; [`Writer::end`] closes it.
    pub(crate) fn start(&mut self, kind: &str, version: u32) {
        self.open.push(self.buf.len());
        self.u32(0);
        self.string(kind);
        self.u32(version);
    }

    /// Close the innermost open object, filling in its length.
    pub(crate) fn end(&mut self) {
        let at = self.open.pop().expect("an object is open");
        let len = (self.buf.len() - at) as u32;
        let b = if self.big {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        };
        self.buf[at..at + 4].copy_from_slice(&b);
    }

    /// A `Block` of `u32` values.
    pub(crate) fn block_u32(&mut self, values: &[u32]) {
        self.start("Block", 1);
        self.u32(values.len() as u32);
        for v in values {
            self.u32(*v);
        }
        self.end();
    }

    /// The bytes written.
    pub(crate) fn finish(self) -> Vec<u8> {
        debug_assert!(self.open.is_empty(), "an object was left open");
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object as casacore writes it, big- or little-endian.
    fn object(big: bool, kind: &str, version: u32, body: &[u8]) -> Vec<u8> {
        let n = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let len = 4 + 4 + kind.len() + 4 + body.len();
        let mut out = Vec::new();
        out.extend(n(len as u32));
        out.extend(n(kind.len() as u32));
        out.extend(kind.as_bytes());
        out.extend(n(version));
        out.extend(body);
        out
    }

    #[test]
    fn objects_in_either_byte_order() {
        for big in [true, false] {
            let n = |v: u32| {
                if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            let shape: Vec<u8> = [n(2), n(4), n(7)].concat();
            let mut buf = MAGIC.to_be_bytes().to_vec();
            buf.extend(object(big, "IPosition", 1, &shape));
            buf.extend(n(9));
            let mut r = Reader::new(&buf, big, "t/table.dat");
            r.magic().unwrap();
            assert_eq!(r.iposition().unwrap(), vec![4, 7]);
            assert_eq!(r.u32().unwrap(), 9);
            assert!(r.at_end());
        }
    }

    #[test]
    fn damage_is_named() {
        let mut buf = MAGIC.to_be_bytes().to_vec();
        buf.extend(object(true, "Table", 2, &[0, 0]));
        buf.truncate(buf.len() - 1);
        let mut r = Reader::new(&buf, true, "x.ms/table.dat");
        r.magic().unwrap();
        let e = r.object(Some("Table")).unwrap_err().to_string();
        assert!(
            e.contains("x.ms/table.dat") && e.contains("past the end"),
            "{e}"
        );
        let mut r = Reader::new(b"\0\0\0\x01", true, "f");
        assert!(r
            .magic()
            .unwrap_err()
            .to_string()
            .contains("not a casacore"));
        let mut buf = MAGIC.to_be_bytes().to_vec();
        buf.extend(object(true, "Other", 1, &[]));
        let mut r = Reader::new(&buf, true, "f");
        r.magic().unwrap();
        let e = r.object(Some("Table")).unwrap_err().to_string();
        assert!(
            e.contains("expected a \"Table\" object, found \"Other\""),
            "{e}"
        );
    }

    /// What the writer writes, the reader reads, in either byte order.
    #[test]
    fn written_objects_read_back() {
        for big in [true, false] {
            let mut w = Writer::new(big);
            w.start("Outer", 3);
            w.bool(true);
            w.string("name");
            w.block_u32(&[1, 2, 0xdead_beef]);
            w.i32(-1);
            w.end();
            let bytes = w.finish();
            let mut r = Reader::new(&bytes, big, "t");
            r.magic().unwrap();
            let o = r.object(Some("Outer")).unwrap();
            assert_eq!(o.version, 3);
            assert!(r.bool().unwrap());
            assert_eq!(r.string().unwrap(), "name");
            assert_eq!(r.block_u32().unwrap(), [1, 2, 0xdead_beef]);
            assert_eq!(r.i32().unwrap(), -1);
            r.end_object(&o).unwrap();
            assert!(r.at_end());
        }
    }
}
