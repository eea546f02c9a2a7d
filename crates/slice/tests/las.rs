//! LAS/LAZ slicing through the format registry, property-tested over
//! generated point clouds (LAS 1.2 and 1.4, point formats 0, 1 and 6, a
//! user VLR, an EVLR, fixed and variable LAZ chunks) and random plans: the
//! slices' points concatenated are the file's points in order, every slice
//! is a standalone file the `las` crate reads (its header's counts, counts
//! by return and bounds match its points; VLRs and EVLRs kept), and bad
//! input is refused with a typed error.

use std::io::{Cursor, Seek, SeekFrom, Write};

use las::raw;
use laz::{LasZipCompressor, LazVlrBuilder};
use proptest::prelude::*;
use tessera_slice::{AnySlice, Error, Registry, Strategy as Plan};
use tessera_store::{Location, PublishMode, StoreOptions};

fn record_length(format: u8) -> u16 {
    match format {
        0 => 20,
        1 => 28,
        6 => 30,
        _ => unreachable!(),
    }
}

/// How the points are stored.
#[derive(Debug, Clone)]
enum Store {
    Las,
    /// LAZ with this many points per chunk.
    Fixed(u32),
    /// LAZ with chunks ending after these point counts.
    Variable(Vec<usize>),
}

#[derive(Debug, Clone)]
struct Cloud {
    minor: u8,
    format: u8,
    /// (x, y, z, return number, number of returns)
    points: Vec<(i32, i32, i32, u8, u8)>,
    evlr: bool,
}

fn point_record(c: &Cloud, i: usize) -> Vec<u8> {
    let (x, y, z, r, n) = c.points[i];
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&x.to_le_bytes());
    p.extend_from_slice(&y.to_le_bytes());
    p.extend_from_slice(&z.to_le_bytes());
    p.extend_from_slice(&((i % 65536) as u16).to_le_bytes()); // intensity
    if c.format >= 6 {
        p.push(r | (n << 4));
        p.push(0); // classification flags, channel, scan direction
        p.push((i % 7) as u8); // classification
        p.push(0); // user data
        p.extend_from_slice(&0i16.to_le_bytes()); // scan angle
        p.extend_from_slice(&((i % 100) as u16).to_le_bytes()); // point source
        p.extend_from_slice(&(i as f64 * 0.5).to_le_bytes()); // GPS time
    } else {
        p.push(r | (n << 3));
        p.push((i % 7) as u8); // classification
        p.push(0); // scan angle rank
        p.push(0); // user data
        p.extend_from_slice(&((i % 100) as u16).to_le_bytes()); // point source
        if c.format == 1 {
            p.extend_from_slice(&(i as f64 * 0.5).to_le_bytes());
        }
    }
    assert_eq!(p.len(), usize::from(record_length(c.format)));
    p
}

fn vlr_bytes(user: &str, record: u16, data: &[u8], extended: bool) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0u16.to_le_bytes());
    let mut u = [0u8; 16];
    u[..user.len()].copy_from_slice(user.as_bytes());
    v.extend_from_slice(&u);
    v.extend_from_slice(&record.to_le_bytes());
    if extended {
        v.extend_from_slice(&(data.len() as u64).to_le_bytes());
    } else {
        v.extend_from_slice(&(data.len() as u16).to_le_bytes());
    }
    v.extend_from_slice(&[b'd'; 32]);
    v.extend_from_slice(data);
    v
}

/// Write `cloud` as a LAS or LAZ file.
fn file(c: &Cloud, store: &Store) -> Vec<u8> {
    let mut h = raw::Header {
        version: las::Version::new(1, c.minor),
        ..Default::default()
    };
    h.header_size = h.version.header_size();
    let len = record_length(c.format);
    h.point_data_record_length = len;
    h.point_data_record_format = c.format;
    h.x_scale_factor = 0.01;
    h.y_scale_factor = 0.01;
    h.z_scale_factor = 0.001;
    h.x_offset = 1000.0;
    let mut vlrs = vlr_bytes("tessera-test", 7, b"a user VLR that must survive", false);
    let laz_vlr = match store {
        Store::Las => None,
        Store::Fixed(n) => Some(
            LazVlrBuilder::default()
                .with_point_format(c.format, 0)
                .unwrap()
                .with_fixed_chunk_size(*n)
                .build(),
        ),
        Store::Variable(_) => Some(
            LazVlrBuilder::default()
                .with_point_format(c.format, 0)
                .unwrap()
                .with_variable_chunk_size()
                .build(),
        ),
    };
    h.number_of_variable_length_records = 1;
    if let Some(v) = &laz_vlr {
        let mut data = Vec::new();
        v.write_to(&mut data).unwrap();
        vlrs.extend(vlr_bytes("laszip encoded", 22204, &data, false));
        h.number_of_variable_length_records = 2;
        h.point_data_record_format |= 0x80;
    }
    h.offset_to_point_data = u32::from(h.header_size) + vlrs.len() as u32;
    let n = c.points.len() as u64;
    let mut by_return = [0u64; 15];
    for p in &c.points {
        by_return[usize::from(p.3) - 1] += 1;
    }
    if c.format < 6 {
        h.number_of_point_records = n as u32;
        for (slot, n) in h.number_of_points_by_return.iter_mut().zip(by_return) {
            *slot = n as u32;
        }
    }
    if c.minor >= 4 {
        h.large_file = Some(raw::header::LargeFile {
            number_of_point_records: n,
            number_of_points_by_return: by_return,
        });
    }
    // Points.
    let records: Vec<Vec<u8>> = (0..c.points.len()).map(|i| point_record(c, i)).collect();
    let mut out = Cursor::new(Vec::new());
    h.write_to(&mut out).unwrap();
    out.write_all(&vlrs).unwrap();
    match (store, laz_vlr) {
        (Store::Las, _) | (_, None) => {
            for r in &records {
                out.write_all(r).unwrap();
            }
        }
        (Store::Fixed(_), Some(v)) => {
            let mut comp = LasZipCompressor::new(&mut out, v).unwrap();
            for r in &records {
                comp.compress_one(r).unwrap();
            }
            comp.done().unwrap();
        }
        (Store::Variable(ends), Some(v)) => {
            let mut comp = LasZipCompressor::new(&mut out, v).unwrap();
            for (i, r) in records.iter().enumerate() {
                comp.compress_one(r).unwrap();
                if ends.contains(&(i + 1)) && i + 1 < records.len() {
                    comp.finish_current_chunk().unwrap();
                }
            }
            comp.done().unwrap();
        }
    }
    out.seek(SeekFrom::End(0)).unwrap();
    let evlr_at = out.position();
    if c.evlr && c.minor >= 4 {
        out.write_all(&vlr_bytes(
            "tessera-test",
            9,
            b"an EVLR, often the CRS",
            true,
        ))
        .unwrap();
        h.evlr = Some(raw::header::Evlr {
            start_of_first_evlr: evlr_at,
            number_of_evlrs: 1,
        });
    }
    // Bounds, then the final header.
    if n > 0 {
        let f = |k: usize, v: i32| match k {
            0 => f64::from(v) * 0.01 + 1000.0,
            1 => f64::from(v) * 0.01,
            _ => f64::from(v) * 0.001,
        };
        let xs = c.points.iter().map(|p| p.0);
        let ys = c.points.iter().map(|p| p.1);
        let zs = c.points.iter().map(|p| p.2);
        h.min_x = f(0, xs.clone().min().unwrap());
        h.max_x = f(0, xs.max().unwrap());
        h.min_y = f(1, ys.clone().min().unwrap());
        h.max_y = f(1, ys.max().unwrap());
        h.min_z = f(2, zs.clone().min().unwrap());
        h.max_z = f(2, zs.max().unwrap());
    }
    let mut bytes = out.into_inner();
    let mut hb = Vec::new();
    h.write_to(&mut hb).unwrap();
    bytes[..hb.len()].copy_from_slice(&hb);
    bytes
}

fn read_points(bytes: &[u8]) -> (las::Header, Vec<las::Point>) {
    let mut r = las::Reader::new(Cursor::new(bytes.to_vec())).expect("a readable LAS/LAZ file");
    let data = r.read_all().expect("points");
    let pts: Vec<las::Point> = data.points().map(|p| p.expect("a point")).collect();
    (r.header().clone(), pts)
}

async fn put(url: &str, data: Vec<u8>) -> Location {
    let obj = Location::open(url, &StoreOptions::default()).await.unwrap();
    obj.publish(data, PublishMode::Overwrite).await.unwrap();
    obj
}

/// Index, plan and fetch every slice through the registry; check the law
/// and each slice file.
async fn check(c: &Cloud, store: &Store, plan: Plan, name: &str) -> Vec<AnySlice> {
    let bytes = file(c, store);
    let (_, original) = read_points(&bytes);
    assert_eq!(original.len(), c.points.len());
    let obj = put(&format!("memory://las-props/{name}"), bytes).await;
    let registry = Registry::builtin();
    let index = registry.index(&obj).await.expect("index");
    assert_eq!(index.records, c.points.len() as u64);
    let slices = registry.plan(&index, plan).expect("plan");
    let mut all = Vec::new();
    let mut next_first = 0;
    for s in &slices {
        assert_eq!(s.first_record, next_first, "slices follow each other");
        next_first += s.record_count;
        let out = registry.fetch(s, &obj).await.expect("fetch");
        let (h, pts) = read_points(&out);
        assert_eq!(pts.len() as u64, s.record_count, "slice {}", s.slice);
        assert_eq!(h.number_of_points(), pts.len() as u64);
        assert!(!pts.is_empty(), "no empty slice");
        // Counts by return and bounds describe the slice's own points.
        for r in 1..=5u8 {
            let want = pts.iter().filter(|p| p.return_number == r).count() as u64;
            assert_eq!(
                h.number_of_points_by_return(r).unwrap_or(0),
                want,
                "return {r}"
            );
        }
        let b = h.bounds();
        let minx = pts.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
        let maxz = pts.iter().map(|p| p.z).fold(f64::NEG_INFINITY, f64::max);
        assert!((b.min.x - minx).abs() < 1e-9 && (b.max.z - maxz).abs() < 1e-9);
        // The user VLR and the EVLR survive.
        assert!(h
            .vlrs()
            .iter()
            .any(|v| v.user_id == "tessera-test" && v.record_id == 7));
        if c.evlr && c.minor >= 4 {
            assert!(h
                .evlrs()
                .iter()
                .any(|v| v.record_id == 9 && v.data == b"an EVLR, often the CRS"));
        }
        all.extend(pts);
    }
    assert_eq!(next_first, c.points.len() as u64);
    assert_eq!(all, original, "slices concatenate to the file's points");
    slices
}

fn cloud() -> impl Strategy<Value = Cloud> {
    (
        prop_oneof![Just(2u8), Just(4u8)],
        prop_oneof![Just(0u8), Just(1u8), Just(6u8)],
        prop::collection::vec(
            (
                -50_000i32..50_000,
                -50_000i32..50_000,
                -2000i32..2000,
                1u8..=3,
            ),
            0..1500,
        ),
        any::<bool>(),
    )
        .prop_map(|(minor, format, pts, evlr)| {
            let format = if minor < 4 && format == 6 { 1 } else { format };
            Cloud {
                minor,
                format,
                points: pts
                    .into_iter()
                    .map(|(x, y, z, r)| (x, y, z, r, 3))
                    .collect(),
                evlr,
            }
        })
}

fn store() -> impl Strategy<Value = Store> {
    prop_oneof![
        Just(Store::Las),
        (1u32..400).prop_map(Store::Fixed),
        prop::collection::vec(1usize..1500, 0..6).prop_map(|mut v| {
            v.sort_unstable();
            v.dedup();
            Store::Variable(v)
        }),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![
        (1usize..20).prop_map(Plan::Count),
        (1u64..700).prop_map(Plan::Records),
        (1u64..20_000).prop_map(Plan::Bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn slices_are_the_points_in_order(c in cloud(), s in store(), p in plan()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ext = if matches!(s, Store::Las) { "las" } else { "laz" };
        rt.block_on(check(&c, &s, p, &format!("cloud.{ext}")));
    }
}

fn some_cloud(n: usize, minor: u8, format: u8) -> Cloud {
    Cloud {
        minor,
        format,
        points: (0..n)
            .map(|i| {
                (
                    (i * 37 % 1000) as i32,
                    (i * 91 % 777) as i32,
                    i as i32,
                    1 + (i % 2) as u8,
                    2,
                )
            })
            .collect(),
        evlr: true,
    }
}

/// A file of no points (LAZ writers leave one empty chunk) indexes with no
/// records and plans to no slices, in every storage.
#[tokio::test]
async fn empty_point_clouds_index_and_plan_to_nothing() {
    for (i, store) in [Store::Las, Store::Fixed(100), Store::Variable(vec![])]
        .into_iter()
        .enumerate()
    {
        for minor in [2u8, 4] {
            let c = some_cloud(0, minor, if minor == 4 { 6 } else { 1 });
            let ext = if matches!(store, Store::Las) {
                "las"
            } else {
                "laz"
            };
            let slices = check(
                &c,
                &store,
                Plan::Count(3),
                &format!("empty{i}-{minor}.{ext}"),
            )
            .await;
            assert!(slices.is_empty(), "{slices:?}");
        }
    }
}

#[tokio::test]
async fn laz_slices_follow_chunks_and_count_plans_are_even() {
    let c = some_cloud(1000, 4, 6);
    let slices = check(&c, &Store::Fixed(100), Plan::Count(4), "even.laz").await;
    let counts: Vec<u64> = slices.iter().map(|s| s.record_count).collect();
    assert!(
        counts.iter().all(|c| c % 100 == 0),
        "cut at chunk boundaries: {counts:?}"
    );
    assert_eq!(counts.iter().sum::<u64>(), 1000);
    assert!(counts.iter().all(|c| (200..=300).contains(c)), "{counts:?}");
    // LAS slices are cut at points, so a count plan is exact.
    let slices = check(&c, &Store::Las, Plan::Count(3), "even.las").await;
    let counts: Vec<u64> = slices.iter().map(|s| s.record_count).collect();
    assert_eq!(counts, vec![333, 333, 334]);
}

#[tokio::test]
async fn bad_point_clouds_are_refused() {
    let registry = Registry::builtin();
    // A truncated header.
    let good = file(&some_cloud(50, 2, 1), &Store::Las);
    let obj = put("memory://las-bad/short.las", good[..100].to_vec()).await;
    let e = registry.index(&obj).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidFile { .. }), "{e}");
    assert!(e.to_string().contains("header is truncated"), "{e}");
    // Points cut off.
    let obj = put("memory://las-bad/cut.las", good[..good.len() - 10].to_vec()).await;
    let e = registry.index(&obj).await.unwrap_err();
    assert!(e.to_string().contains("truncated object"), "{e}");
    // Not a LAS file at all.
    let obj = put("memory://las-bad/text.las", vec![b'x'; 400]).await;
    let e = registry.index(&obj).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidFile { .. }), "{e}");
    // A LAZ whose chunk table offset was never written.
    let mut laz = file(&some_cloud(300, 2, 1), &Store::Fixed(50));
    let h = raw::Header::read_from(&laz[..]).unwrap();
    let at = h.offset_to_point_data as usize;
    laz[at..at + 8].copy_from_slice(&(-1i64).to_le_bytes());
    let n = laz.len();
    laz[n - 8..].copy_from_slice(&0i64.to_le_bytes());
    let obj = put("memory://las-bad/notable.laz", laz).await;
    let e = registry.index(&obj).await.unwrap_err();
    assert!(e.to_string().contains("without a chunk table"), "{e}");
    // The object changed after indexing: fetching refuses it.
    let obj = put("memory://las-bad/changes.las", good.clone()).await;
    let index = registry.index(&obj).await.unwrap();
    let slices = registry.plan(&index, Plan::Count(2)).unwrap();
    let mut changed = good.clone();
    changed[300] ^= 1;
    obj.publish(changed, PublishMode::Overwrite).await.unwrap();
    let e = registry.fetch(&slices[0], &obj).await.unwrap_err();
    assert!(matches!(&e, Error::StaleIndex { .. }), "{e}");
    // Strategies a LAS object cannot use yet, and a zero count.
    let obj = put("memory://las-bad/ok.las", good).await;
    let index = registry.index(&obj).await.unwrap();
    let e = registry
        .plan(
            &index,
            Plan::Grid {
                columns: 2,
                rows: 2,
            },
        )
        .unwrap_err();
    assert!(matches!(&e, Error::Unsupported { .. }), "{e}");
    let e = registry.plan(&index, Plan::Count(0)).unwrap_err();
    assert!(matches!(&e, Error::InvalidStrategy { .. }), "{e}");
}

/// A COPC file of `n` points: each point in a node of level 0 to 2 whose
/// cube holds it; one chunk per node, nodes in key order; the hierarchy in
/// one page. Returns the file and each point's node key.
fn copc_file(n: usize, seed: u64) -> (Vec<u8>, Vec<[i32; 4]>) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    // Points in [0, 1000) x [0, 1000) x [0, 100) (scale 0.01, offset 0).
    type Placed = ([i32; 4], (i32, i32, i32, u8, u8), usize);
    let mut pts: Vec<Placed> = (0..n)
        .map(|i| {
            let (x, y, z) = (next() % 100_000, next() % 100_000, next() % 10_000);
            let level = (next() % 3) as i32;
            let cells = 1i64 << level;
            let key = [
                level,
                (i64::from(x) * cells / 100_000) as i32,
                (i64::from(y) * cells / 100_000) as i32,
                (i64::from(z) * cells / 100_000) as i32,
            ];
            (key, (x as i32, y as i32, z as i32, 1, 1), i)
        })
        .collect();
    pts.sort_by_key(|p| (p.0, p.2));
    let c = Cloud {
        minor: 4,
        format: 6,
        points: pts.iter().map(|p| p.1).collect(),
        evlr: false,
    };
    let keys: Vec<[i32; 4]> = pts.iter().map(|p| p.0).collect();
    // Chunk ends: after the last point of each node.
    let ends: Vec<usize> = (1..=n)
        .filter(|&i| i == n || keys[i] != keys[i - 1])
        .collect();
    let las = file(&c, &Store::Variable(ends.clone()));
    // Rebuild with the COPC info VLR first and the hierarchy EVLR last.
    let mut h = raw::Header::read_from(&las[..]).unwrap();
    let old_vlrs = las[usize::from(h.header_size)..h.offset_to_point_data as usize].to_vec();
    let points_start = h.offset_to_point_data as usize;
    let info_len = 54 + 160;
    let mut info = Vec::new();
    for v in [500.0f64, 500.0, 500.0, 500.0, 1.0] {
        info.extend_from_slice(&v.to_le_bytes());
    }
    let body_end = las.len();
    let new_points_start = points_start + info_len;
    // Chunk table: find the chunks (offsets shift by the info VLR).
    let at = i64::from_le_bytes(las[points_start..points_start + 8].try_into().unwrap()) as usize;
    let table = laz::laszip::ChunkTable::read(&mut Cursor::new(&las[at..]), true).unwrap();
    let evlr_at = body_end + info_len;
    let hier_at = evlr_at + 60;
    let mut page = Vec::new();
    let mut off = (new_points_start + 8) as u64;
    for (k, e) in table.as_ref().iter().enumerate() {
        let key = keys[ends[k] - 1];
        for v in key {
            page.extend_from_slice(&v.to_le_bytes());
        }
        page.extend_from_slice(&off.to_le_bytes());
        page.extend_from_slice(&(e.byte_count as i32).to_le_bytes());
        page.extend_from_slice(&(e.point_count as i32).to_le_bytes());
        off += e.byte_count;
    }
    info.extend_from_slice(&(hier_at as u64).to_le_bytes());
    info.extend_from_slice(&(page.len() as u64).to_le_bytes());
    info.extend_from_slice(&0f64.to_le_bytes());
    info.extend_from_slice(&1e9f64.to_le_bytes());
    info.resize(160, 0);
    let mut out = Vec::new();
    h.offset_to_point_data += info_len as u32;
    h.number_of_variable_length_records += 1;
    h.evlr = Some(raw::header::Evlr {
        start_of_first_evlr: evlr_at as u64,
        number_of_evlrs: 1,
    });
    h.write_to(&mut out).unwrap();
    out.extend(vlr_bytes("copc", 1, &info, false));
    out.extend(old_vlrs);
    let mut section = las[points_start..body_end].to_vec();
    let new_at = (at + info_len) as i64;
    section[..8].copy_from_slice(&new_at.to_le_bytes());
    out.extend(section);
    assert_eq!(out.len(), evlr_at);
    out.extend(vlr_bytes("copc", 1000, &page, true));
    (out, keys)
}

#[tokio::test]
async fn copc_plans_hold_every_point_once_and_levels_their_nodes() {
    let (bytes, keys) = copc_file(3000, 7);
    let (_, original) = read_points(&bytes);
    let obj = put("memory://copc/cloud.copc.laz", bytes).await;
    let formats = Registry::builtin();
    let index = formats.index(&obj).await.expect("index");
    assert_eq!(index.format, "copc");
    let by_time = |pts: &[las::Point]| {
        let mut v: Vec<u64> = pts.iter().map(|p| p.gps_time.unwrap().to_bits()).collect();
        v.sort_unstable();
        v
    };
    let fetch_all = |slices: Vec<AnySlice>| {
        let formats = formats.clone();
        let obj = obj.clone();
        async move {
            let mut all = Vec::new();
            for s in &slices {
                let out = formats.fetch(s, &obj).await.expect("fetch");
                let (h, pts) = read_points(&out);
                assert_eq!(pts.len() as u64, s.record_count);
                assert_eq!(h.number_of_points(), pts.len() as u64);
                assert!(
                    !h.vlrs()
                        .iter()
                        .chain(h.evlrs())
                        .any(|v| v.user_id == "copc"),
                    "COPC VLRs dropped"
                );
                assert!(
                    h.vlrs().iter().any(|v| v.user_id == "tessera-test"),
                    "other VLRs kept"
                );
                all.extend(pts);
            }
            all
        }
    };
    // Count: the points in order.
    let all = fetch_all(formats.plan(&index, Plan::Count(4)).unwrap()).await;
    assert_eq!(all, original);
    // Grid: every point exactly once.
    let grid = formats
        .plan(
            &index,
            Plan::Grid {
                columns: 3,
                rows: 2,
            },
        )
        .unwrap();
    assert!(grid.len() > 1 && grid.len() <= 6);
    let all = fetch_all(grid).await;
    assert_eq!(by_time(&all), by_time(&original));
    // Level 1: exactly the points of level-1 nodes.
    let want: Vec<las::Point> = original
        .iter()
        .zip(&keys)
        .filter(|(_, k)| k[0] == 1)
        .map(|(p, _)| p.clone())
        .collect();
    let level = formats
        .plan(&index, Plan::Level { level: 1, count: 2 })
        .unwrap();
    assert_eq!(level.len(), 2);
    assert_eq!(fetch_all(level).await, want);
    let e = formats
        .plan(&index, Plan::Level { level: 9, count: 2 })
        .unwrap_err();
    assert!(matches!(&e, Error::Unsupported { .. }), "{e}");
    // A plain LAZ named as COPC is refused clearly.
    let plain = file(&some_cloud(100, 4, 6), &Store::Fixed(30));
    let obj = put("memory://copc/plain.copc.laz", plain).await;
    let e = formats.index(&obj).await.unwrap_err();
    assert!(e.to_string().contains("COPC info VLR"), "{e}");
}

#[tokio::test]
async fn grid_plans_after_a_spatial_scan_hold_every_point_once() {
    for (store, name) in [
        (Store::Las, "grid.las"),
        (Store::Fixed(700), "grid.laz"),
        (Store::Variable(vec![100, 2500, 2600]), "grid-var.laz"),
    ] {
        let c = Cloud {
            minor: 4,
            format: 6,
            points: (0..9000)
                .map(|i| ((i * 7919) % 10_007, (i * 104_729) % 9_973, i % 100, 1, 1))
                .collect(),
            evlr: true,
        };
        let bytes = file(&c, &store);
        let (_, original) = read_points(&bytes);
        let obj = put(&format!("memory://las-grid/{name}"), bytes).await;
        let formats = Registry::builtin();
        // Without the scan, a grid plan is refused with the way out.
        let plain = formats.index(&obj).await.unwrap();
        let e = formats
            .plan(
                &plain,
                Plan::Grid {
                    columns: 2,
                    rows: 2,
                },
            )
            .unwrap_err();
        assert!(matches!(&e, Error::Unsupported { .. }), "{e}");
        let index = formats.index(&obj).with_spatial(true).await.expect("index");
        let slices = formats
            .plan(
                &index,
                Plan::Grid {
                    columns: 3,
                    rows: 4,
                },
            )
            .unwrap();
        assert_eq!(slices.len(), 12, "{name}");
        let mut all: Vec<u64> = Vec::new();
        for s in &slices {
            let cell: Vec<i64> = s.detail["cell"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let out = formats.fetch(s, &obj).await.expect("fetch");
            let (h, pts) = read_points(&out);
            assert_eq!(h.number_of_points(), pts.len() as u64);
            assert!(pts.len() as u64 <= s.record_count);
            for p in &pts {
                // Raw coordinates: x = raw * 0.01 + 1000, y = raw * 0.01.
                let (x, y) = (
                    ((p.x - 1000.0) / 0.01).round() as i64,
                    (p.y / 0.01).round() as i64,
                );
                assert!(
                    cell[0] <= x && x < cell[2] && cell[1] <= y && y < cell[3],
                    "{name}: {x},{y} outside {cell:?}"
                );
            }
            all.extend(pts.iter().map(|p| p.gps_time.unwrap().to_bits()));
        }
        let mut want: Vec<u64> = original
            .iter()
            .map(|p| p.gps_time.unwrap().to_bits())
            .collect();
        all.sort_unstable();
        want.sort_unstable();
        assert_eq!(all, want, "{name}: every point in exactly one cell");
    }
}
