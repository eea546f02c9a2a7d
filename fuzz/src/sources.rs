//! Targets over keys, descriptors and binary scientific formats.

use tessera_manifest::Template;
use tessera_slice::{
    parse_slices, points_to_arrow, spectra_to_arrow, AnyIndex, AnySlice, Index, Registry, Strategy,
};

use crate::{object, runtime, split};

/// A manifest template (first line) matched against keys and listing lines
/// (the other lines): captures lie inside the key, in order, on character
/// boundaries, and a key rendered from a match's captured values matches
/// again.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let Some(source) = lines.next() else {
        return;
    };
    let Ok(t) = Template::parse(source) else {
        return;
    };
    let n = t.fields().len();
    for key in lines {
        let _ = t.match_line(key);
        let Some(caps) = t.match_key(key) else {
            continue;
        };
        assert_eq!(caps.len(), n, "one capture per field");
        let mut at = 0;
        for &(a, b) in &caps {
            assert!(
                a >= at && a <= b && b <= key.len(),
                "capture {a}..{b} in {key:?}"
            );
            assert!(key.is_char_boundary(a) && key.is_char_boundary(b));
            at = b;
        }
        let values: Vec<&str> = caps.iter().map(|&(a, b)| &key[a..b]).collect();
        let rendered = t.render(&values);
        assert!(
            t.match_key(&rendered).is_some(),
            "{source:?} matched {key:?} but not its own rendering {rendered:?}"
        );
    }
}

/// Index and slice descriptors as JSON (an index file, a slice file, a
/// worker's argument): whatever parses serializes back to the same
/// document, and planning from a hostile index gives slices or an error.
pub fn descriptors(data: &[u8]) {
    let same = |a: &str, b: &str| {
        let a: serde_json::Value = serde_json::from_str(a).expect("serialized JSON");
        let b: serde_json::Value = serde_json::from_str(b).expect("serialized JSON");
        assert_eq!(a, b, "a descriptor does not round-trip");
    };
    if let Ok(index) = Index::from_json(data, "fuzz.index") {
        let once = serde_json::to_string(&index).expect("serializes");
        let again = Index::from_json(once.as_bytes(), "fuzz.index").expect("reads back");
        same(&once, &serde_json::to_string(&again).expect("serializes"));
        for plan in [Strategy::Count(3), Strategy::Records(2), Strategy::Bytes(7)] {
            if let Ok(slices) = index.plan(plan).run() {
                for s in slices {
                    let _ = s.validate();
                    let _ = s.output_size();
                }
            }
        }
    }
    if let Ok(index) = AnyIndex::from_json(data, "fuzz.index") {
        let once = serde_json::to_string(&index).expect("serializes");
        let again = AnyIndex::from_json(once.as_bytes(), "fuzz.index").expect("reads back");
        same(&once, &serde_json::to_string(&again).expect("serializes"));
        let formats = Registry::builtin();
        for plan in [
            Strategy::Count(3),
            Strategy::Records(2),
            Strategy::Grid {
                columns: 2,
                rows: 3,
            },
            Strategy::Level { level: 1, count: 2 },
        ] {
            if let Ok(slices) = formats.plan(&index, plan) {
                for s in slices {
                    let _ = s.validate();
                }
            }
        }
    }
    if let Ok(slices) = parse_slices(data, "fuzz.slices") {
        for s in slices {
            let _ = s.validate();
            let _ = s.output_size();
        }
    }
    if let Ok(s) = serde_json::from_slice::<AnySlice>(data) {
        let _ = s.validate();
    }
}

/// Index `bytes` as `format` under `name`, plan it with `plan` and fetch
/// every slice; the outputs of a valid plan (a bad object may be refused
/// at any step before that).
fn slice_all(name: &str, format: &str, bytes: Vec<u8>, plan: Strategy) -> Option<Vec<Vec<u8>>> {
    let formats = Registry::builtin();
    runtime().block_on(async {
        let obj = object(name, bytes).await;
        let index = formats
            .index(&obj)
            .with_format(format)
            .with_spatial(true)
            .await
            .ok()?;
        let slices = formats.plan(&index, plan).ok()?;
        let mut outs = Vec::new();
        for s in &slices {
            outs.push(formats.fetch(s, &obj).await.ok()?);
        }
        Some(outs)
    })
}

fn plan_of(b: u8) -> Strategy {
    match b % 4 {
        0 => Strategy::Count(1 + usize::from(b / 4) % 5),
        1 => Strategy::Records(1 + u64::from(b / 4) % 7),
        2 => Strategy::Grid {
            columns: 1 + u32::from(b / 4) % 3,
            rows: 2,
        },
        _ => Strategy::Level {
            level: u32::from(b / 4) % 3,
            count: 2,
        },
    }
}

/// Slices of a binary format read back as the whole object does: if the
/// object, as one slice, reads back as `rows(whole)` records, every slice of
/// the plan reads back and (unless the plan is one level of detail)
/// together they hold as many records. (Damage the
/// index does not see, such as a compressed array that does not inflate,
/// fails the whole object and its slices alike.)
fn slices_read_back(
    name: &str,
    format: &str,
    bytes: &[u8],
    plan: Strategy,
    rows: impl Fn(&[u8]) -> tessera_slice::Result<usize>,
) {
    let Some(outs) = slice_all(name, format, bytes.to_vec(), plan) else {
        return;
    };
    let Some(whole) = slice_all(name, format, bytes.to_vec(), Strategy::Count(1)) else {
        panic!("the object planned in slices but not as one");
    };
    let Ok(total) = whole
        .iter()
        .map(|o| rows(o))
        .sum::<tessera_slice::Result<usize>>()
    else {
        return;
    };
    let mut sum = 0;
    for (i, out) in outs.iter().enumerate() {
        match rows(out) {
            Ok(n) => sum += n,
            Err(e) => panic!("slice {i} does not read back, the whole object does: {e}"),
        }
    }
    // A level of detail is a part of the object by design.
    if !matches!(plan, Strategy::Level { .. }) {
        assert_eq!(
            sum, total,
            "the slices hold {sum} records, the object {total}"
        );
    }
}

/// A LAS/LAZ file: its slices read back as the whole file does, with as
/// many points.
pub fn las(data: &[u8]) {
    let Some(([p], bytes)) = split::<1>(data) else {
        return;
    };
    slices_read_back("las/in.las", "las", bytes, plan_of(p), |b| {
        points_to_arrow(b, "slice").map(|t| t.num_rows())
    });
}

/// A TIFF: if it indexes and plans, every slice fetches (or fails with an
/// error), and nothing panics.
pub fn cog(data: &[u8]) {
    let Some(([p], bytes)) = split::<1>(data) else {
        return;
    };
    let _ = slice_all("cog/in.tif", "cog", bytes.to_vec(), plan_of(p));
}

/// An imzML document and its `.ibd` (the input split at the first NUL
/// byte): its slices, imzML + ibd pairs, read back as the whole dataset
/// does, with as many spectra.
pub fn imzml(data: &[u8]) {
    let Some(([p], rest)) = split::<1>(data) else {
        return;
    };
    let Some(cut) = rest.iter().position(|&b| b == 0) else {
        return;
    };
    let (xml, ibd) = (&rest[..cut], &rest[cut + 1..]);
    runtime().block_on(object("imzml/in.ibd", ibd.to_vec()));
    slices_read_back("imzml/in.imzML", "imzml", xml, plan_of(p), |b| {
        spectra_to_arrow(b, "slice").map(|t| t.num_rows())
    });
}
