//! gzip and BGZF writers that cut blocks and members where told, for tests
//! and fuzz targets of the readers that index compressed objects.

use std::io::Write;

/// gzip `data`; each cut point ends a deflate block (sync flush) or, for
/// every other cut, starts a new gzip member.
pub fn gzip(data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let mut at = 0;
    for (i, p) in points.into_iter().enumerate() {
        enc.write_all(&data[at..p]).unwrap();
        at = p;
        if i % 2 == 0 {
            enc.flush().unwrap();
        } else {
            out.extend(enc.finish().unwrap());
            enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        }
    }
    enc.write_all(&data[at..]).unwrap();
    out.extend(enc.finish().unwrap());
    out
}

/// BGZF: one block per piece between cuts (and at most 64 KiB per block),
/// then the BGZF end-of-file block.
pub fn bgzf(data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    for p in points {
        while at < p {
            let end = p.min(at + 60_000);
            out.extend(bgzf_block(&data[at..end]));
            at = end;
        }
    }
    out.extend(bgzf_block(b""));
    out
}

fn bgzf_block(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    let cdata = enc.finish().unwrap();
    let bsize = 18 + cdata.len() + 8 - 1;
    let mut b = vec![
        0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
    ];
    b.extend((bsize as u16).to_le_bytes());
    b.extend(cdata);
    let mut crc = flate2::Crc::new();
    crc.update(data);
    b.extend(crc.sum().to_le_bytes());
    b.extend((data.len() as u32).to_le_bytes());
    b
}
