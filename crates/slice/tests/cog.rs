//! Tiled TIFF / COG slicing through the format registry, property-tested
//! over generated files (little and big endian, classic and BigTIFF, 8 and
//! 16 bits, 1 to 3 bands, chunky and planar, uncompressed and deflate,
//! overviews) and random plans, with the `tiff` crate as the oracle: the
//! windows tile the image exactly once; each slice file decodes, has its
//! window's size, and every tile decodes to the same samples as the
//! original's tile; the tie point moves to the window's origin; indexing
//! takes a few ranged reads; bad input is refused with a typed error.

use std::collections::HashSet;
use std::io::{Cursor, Write};

use proptest::prelude::*;
use tessera_slice::{Error, Registry, Strategy as Plan};
use tessera_store::{Location, PublishMode, StoreOptions};
use tiff::decoder::Decoder;
use tiff::tags::Tag;

#[derive(Debug, Clone)]
struct Img {
    width: u32,
    height: u32,
    tile: u32,
    bands: u16,
    planar: bool,
    wide: bool,
    big_endian: bool,
    bigtiff: bool,
    deflate: bool,
    overviews: u32,
}

fn sample(level: u32, x: u32, y: u32, b: u16) -> u16 {
    ((x * 7 + y * 13 + u32::from(b) * 31 + level * 5) % 251) as u16 * 3
}

struct W {
    big: bool,
    buf: Vec<u8>,
}

impl W {
    fn u16(&mut self, v: u16) {
        self.buf.extend(if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend(if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend(if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
}

/// Tag value: (type, count, bytes in the file's order).
type Val = (u16, u64, Vec<u8>);

/// Write `img` as a tiled TIFF: tiles first, then the directories (the
/// full resolution, then each overview at half the size).
fn file(img: &Img) -> Vec<u8> {
    let mut w = W {
        big: img.big_endian,
        buf: Vec::new(),
    };
    w.buf.extend(if img.big_endian { b"MM" } else { b"II" });
    let first_ifd_at = if img.bigtiff {
        w.u16(43);
        w.u16(8);
        w.u16(0);
        let at = w.buf.len();
        w.u64(0);
        at
    } else {
        w.u16(42);
        let at = w.buf.len();
        w.u32(0);
        at
    };
    let bps = if img.wide { 2 } else { 1 };
    let mut ifds: Vec<Vec<(u16, Val)>> = Vec::new();
    for level in 0..=img.overviews {
        let (iw, ih) = ((img.width >> level).max(1), (img.height >> level).max(1));
        let (across, down) = (iw.div_ceil(img.tile), ih.div_ceil(img.tile));
        let planes = if img.planar { img.bands } else { 1 };
        let per = if img.planar { 1 } else { img.bands };
        let (mut offsets, mut counts) = (Vec::new(), Vec::new());
        for p in 0..planes {
            for ty in 0..down {
                for tx in 0..across {
                    let mut raw = W {
                        big: img.big_endian,
                        buf: Vec::new(),
                    };
                    for y in 0..img.tile {
                        for x in 0..img.tile {
                            for b in 0..per {
                                let (px, py) = (tx * img.tile + x, ty * img.tile + y);
                                let v = if px < iw && py < ih {
                                    sample(level, px, py, p + b)
                                } else {
                                    0
                                };
                                if img.wide {
                                    raw.u16(v * 80);
                                } else {
                                    raw.buf.push(v as u8);
                                }
                            }
                        }
                    }
                    let data = if img.deflate {
                        let mut z = flate2::write::ZlibEncoder::new(
                            Vec::new(),
                            flate2::Compression::fast(),
                        );
                        z.write_all(&raw.buf).unwrap();
                        z.finish().unwrap()
                    } else {
                        raw.buf
                    };
                    offsets.push(w.buf.len() as u64);
                    counts.push(data.len() as u64);
                    w.buf.extend(data);
                }
            }
        }
        let o = img.big_endian;
        let short = |v: &[u16]| -> Val {
            (
                3,
                v.len() as u64,
                v.iter()
                    .flat_map(|x| if o { x.to_be_bytes() } else { x.to_le_bytes() })
                    .collect(),
            )
        };
        let long = |v: &[u32]| -> Val {
            (
                4,
                v.len() as u64,
                v.iter()
                    .flat_map(|x| if o { x.to_be_bytes() } else { x.to_le_bytes() })
                    .collect(),
            )
        };
        let offs = |v: &[u64]| -> Val {
            if img.bigtiff {
                (
                    16,
                    v.len() as u64,
                    v.iter()
                        .flat_map(|x| if o { x.to_be_bytes() } else { x.to_le_bytes() })
                        .collect(),
                )
            } else {
                long(&v.iter().map(|x| *x as u32).collect::<Vec<_>>())
            }
        };
        let dbl = |v: &[f64]| -> Val {
            (
                12,
                v.len() as u64,
                v.iter()
                    .flat_map(|x| {
                        if o {
                            x.to_bits().to_be_bytes()
                        } else {
                            x.to_bits().to_le_bytes()
                        }
                    })
                    .collect(),
            )
        };
        let mut tags = vec![
            (254, long(&[u32::from(level > 0)])),
            (256, long(&[iw])),
            (257, long(&[ih])),
            (258, short(&vec![8 * bps; usize::from(img.bands)])),
            (259, short(&[if img.deflate { 8 } else { 1 }])),
            (262, short(&[if img.bands == 3 { 2 } else { 1 }])),
            (277, short(&[img.bands])),
            (284, short(&[if img.planar { 2 } else { 1 }])),
            (322, long(&[img.tile])),
            (323, long(&[img.tile])),
            (324, offs(&offsets)),
            (325, offs(&counts)),
            (339, short(&vec![1; usize::from(img.bands)])),
        ];
        if level == 0 {
            tags.push((33550, dbl(&[0.5, 0.25, 0.0])));
            tags.push((33922, dbl(&[0.0, 0.0, 0.0, 500_000.0, 4_000_000.0, 0.0])));
            tags.push((42113, (2, 4, b"255\0".to_vec())));
        }
        ifds.push(tags);
    }
    // Directories, each pointing at the next; values after each.
    let mut link = first_ifd_at;
    for tags in ifds {
        if w.buf.len() % 2 == 1 {
            w.buf.push(0);
        }
        let at = w.buf.len() as u64;
        let patch = if img.big_endian {
            at.to_be_bytes()
        } else {
            at.to_le_bytes()
        };
        if img.bigtiff {
            w.buf[link..link + 8].copy_from_slice(&patch);
        } else {
            let p = &patch[if img.big_endian { 4..8 } else { 0..4 }];
            w.buf[link..link + 4].copy_from_slice(p);
        }
        let (entry, inline) = if img.bigtiff {
            (20u64, 8usize)
        } else {
            (12, 4)
        };
        let n = tags.len() as u64;
        let count_len = if img.bigtiff { 8 } else { 2 };
        let next_len = if img.bigtiff { 8 } else { 4 };
        let mut values_at = at + count_len + n * entry + next_len;
        let mut values: Vec<u8> = Vec::new();
        if img.bigtiff {
            w.u64(n);
        } else {
            w.u16(n as u16);
        }
        for (tag, (typ, count, bytes)) in &tags {
            w.u16(*tag);
            w.u16(*typ);
            if img.bigtiff {
                w.u64(*count);
            } else {
                w.u32(*count as u32);
            }
            if bytes.len() <= inline {
                let mut f = bytes.clone();
                f.resize(inline, 0);
                w.buf.extend(f);
            } else {
                if img.bigtiff {
                    w.u64(values_at);
                } else {
                    w.u32(values_at as u32);
                }
                values.extend(bytes);
                values_at += bytes.len() as u64;
            }
        }
        link = w.buf.len();
        if img.bigtiff {
            w.u64(0);
        } else {
            w.u32(0);
        }
        w.buf.extend(values);
    }
    w.buf
}

fn decoder(bytes: &[u8]) -> Decoder<Cursor<Vec<u8>>> {
    Decoder::new(Cursor::new(bytes.to_vec())).expect("a TIFF the tiff crate reads")
}

fn chunk(d: &mut Decoder<Cursor<Vec<u8>>>, i: u32) -> Vec<u8> {
    match d.read_chunk(i).expect("a tile decodes") {
        tiff::decoder::DecodingResult::U8(v) => v,
        tiff::decoder::DecodingResult::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        other => panic!("unexpected samples {:?}", std::mem::discriminant(&other)),
    }
}

async fn put(url: &str, data: Vec<u8>) -> Location {
    let obj = Location::open(url, &StoreOptions::default()).await.unwrap();
    obj.publish(data, PublishMode::Overwrite).await.unwrap();
    obj
}

async fn check(img: &Img, plan: Plan, level: u32, name: &str) {
    let bytes = file(img);
    let obj = put(&format!("memory://cog-props/{name}"), bytes.clone()).await;
    let formats = Registry::builtin();
    let index = formats.index(&obj).await.expect("index");
    let (iw, ih) = ((img.width >> level).max(1), (img.height >> level).max(1));
    let (across, down) = (iw.div_ceil(img.tile), ih.div_ceil(img.tile));
    let plan = if level > 0 {
        match plan {
            Plan::Count(n) => Plan::Level { level, count: n },
            _ => Plan::Level { level, count: 3 },
        }
    } else {
        plan
    };
    let slices = formats.plan(&index, plan).expect("plan");
    let mut orig = decoder(&bytes);
    orig.seek_to_image(level as usize).unwrap();
    let mut covered = HashSet::new();
    let planes = if img.planar { u32::from(img.bands) } else { 1 };
    for s in &slices {
        let out = formats.fetch(s, &obj).await.expect("fetch");
        let mut d = decoder(&out);
        let (w, h) = d.dimensions().unwrap();
        let win: Vec<u64> = s.detail["window"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!((u64::from(w), u64::from(h)), (win[2], win[3]));
        let (x0, y0) = (win[0] as u32, win[1] as u32);
        assert!(x0 % img.tile == 0 && y0 % img.tile == 0, "tile-aligned");
        let (sa, sd) = (w.div_ceil(img.tile), h.div_ceil(img.tile));
        for p in 0..planes {
            for ty in 0..sd {
                for tx in 0..sa {
                    let (gx, gy) = (x0 / img.tile + tx, y0 / img.tile + ty);
                    assert!(covered.insert((p, gx, gy)), "tile {gx},{gy} in two slices");
                    let mine = chunk(&mut d, (p * sd + ty) * sa + tx);
                    let theirs = chunk(&mut orig, (p * down + gy) * across + gx);
                    assert_eq!(mine, theirs, "tile {gx},{gy} of plane {p}");
                }
            }
        }
        // The tie point moved to the window's origin (full-resolution scale 0.5 x 0.25).
        let tie = d
            .get_tag_f64_vec(Tag::ModelTiepointTag)
            .expect("tie point kept");
        let scale = d
            .get_tag_f64_vec(Tag::ModelPixelScaleTag)
            .expect("scale kept");
        let f = f64::from(1u32 << level);
        let fx = f64::from(img.width) / f64::from(iw);
        let fy = f64::from(img.height) / f64::from(ih);
        assert!(
            (scale[0] - 0.5 * fx).abs() < 1e-9 && (scale[1] - 0.25 * fy).abs() < 1e-9,
            "{scale:?} level {level} ({f})"
        );
        assert!(
            (tie[3] - (500_000.0 + f64::from(x0) * 0.5 * fx)).abs() < 1e-6,
            "{tie:?}"
        );
        assert!(
            (tie[4] - (4_000_000.0 - f64::from(y0) * 0.25 * fy)).abs() < 1e-6,
            "{tie:?}"
        );
        assert_eq!(
            d.get_tag_ascii_string(Tag::GdalNodata).ok().as_deref(),
            Some("255")
        );
    }
    assert_eq!(
        covered.len() as u32,
        across * down * planes,
        "every tile exactly once"
    );
}

fn img() -> impl Strategy<Value = Img> {
    (
        (
            1u32..300,
            1u32..300,
            prop_oneof![Just(16u32), Just(32), Just(64)],
        ),
        (1u16..=3, any::<bool>(), any::<bool>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), 0u32..3),
    )
        .prop_map(
            |(
                (width, height, tile),
                (bands, planar, wide),
                (big_endian, bigtiff, deflate, overviews),
            )| Img {
                width,
                height,
                tile,
                bands,
                planar: planar && bands > 1,
                wide,
                big_endian,
                bigtiff,
                deflate,
                overviews,
            },
        )
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![
        (1usize..20).prop_map(Plan::Count),
        (1u64..40).prop_map(Plan::Records),
        (1u64..50_000).prop_map(Plan::Bytes),
        (1u32..6, 1u32..6).prop_map(|(columns, rows)| Plan::Grid { columns, rows }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn windows_tile_the_image_once_with_the_same_pixels(i in img(), p in plan(), l in 0u32..3) {
        let level = l.min(i.overviews);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check(&i, p, level, "image.tif"));
    }
}

#[tokio::test]
async fn indexing_reads_the_start_only_and_bad_files_are_refused() {
    let formats = Registry::builtin();
    // A 2000x2000 image (tiles first, directories at the end of this
    // generator's files): a couple of ranged reads, not the whole file.
    let img = Img {
        width: 2000,
        height: 2000,
        tile: 64,
        bands: 1,
        planar: false,
        wide: false,
        big_endian: false,
        bigtiff: false,
        deflate: true,
        overviews: 1,
    };
    let bytes = file(&img);
    let obj = put("memory://cog-bad/big.tif", bytes.clone()).await;
    let index = formats.index(&obj).await.unwrap();
    let reads = index.detail["reads"].as_u64().unwrap();
    assert!(reads <= 4, "{reads} reads");
    assert_eq!(index.records, 32 * 32);
    // Changed after indexing.
    let slices = formats.plan(&index, Plan::Count(4)).unwrap();
    let mut changed = bytes.clone();
    changed[10] ^= 1;
    obj.publish(changed, PublishMode::Overwrite).await.unwrap();
    let e = formats.fetch(&slices[0], &obj).await.unwrap_err();
    assert!(matches!(&e, Error::StaleIndex { .. }), "{e}");
    // Not a TIFF; truncated; a directory past the end.
    let e = formats
        .index(&put("memory://cog-bad/x.tif", b"hello world".to_vec()).await)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidFile { .. }) && e.to_string().contains("not a TIFF"),
        "{e}"
    );
    let e = formats
        .index(
            &put(
                "memory://cog-bad/short.tif",
                bytes[..bytes.len() - 40].to_vec(),
            )
            .await,
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::InvalidFile { .. }), "{e}");
    // A striped TIFF: ask for tiles.
    let mut striped = file(&Img {
        width: 8,
        height: 8,
        tile: 16,
        overviews: 0,
        deflate: false,
        ..img
    });
    let pos = striped
        .windows(2)
        .rposition(|w| w == 324u16.to_le_bytes())
        .unwrap();
    striped[pos..pos + 2].copy_from_slice(&273u16.to_le_bytes());
    let e = formats
        .index(&put("memory://cog-bad/striped.tif", striped).await)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported { .. }) && e.to_string().contains("striped"),
        "{e}"
    );
    // A level that does not exist; a zero grid.
    let obj = put("memory://cog-bad/ok.tif", bytes).await;
    let index = formats.index(&obj).await.unwrap();
    let e = formats
        .plan(&index, Plan::Level { level: 5, count: 2 })
        .unwrap_err();
    assert!(matches!(&e, Error::Unsupported { .. }), "{e}");
    let e = formats
        .plan(
            &index,
            Plan::Grid {
                columns: 0,
                rows: 2,
            },
        )
        .unwrap_err();
    assert!(matches!(&e, Error::InvalidStrategy { .. }), "{e}");
}
