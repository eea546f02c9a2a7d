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

/// Let panics raised inside the LAZ decoder unwind to tessera's guard
/// (which turns them into errors) instead of aborting at once, as the
/// fuzzer's panic hook does: the fuzz build enables debug assertions in
/// every crate, and the decoder's are panics on damaged data. A decoder
/// panic that tessera does not catch still reaches the fuzzer and aborts.
/// `TESSERA_FUZZ_DEBUG=1` prints the caught ones with a backtrace.
fn laz_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let laz = info.location().is_some_and(|l| l.file().contains("/laz-"));
            if !laz {
                fuzzer(info);
            } else if std::env::var_os("TESSERA_FUZZ_DEBUG").is_some() {
                eprintln!("{info}\n{}", std::backtrace::Backtrace::force_capture());
            }
        }));
    });
}

/// A LAS/LAZ file: its slices read back as the whole file does, with as
/// many points.
pub fn las(data: &[u8]) {
    laz_panics_unwind();
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

/// The files of a MeasurementSet's main table, packed as records of a
/// name length (1 byte), the name, a data length (4 bytes, little-endian)
/// and the data.
fn ms_files(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let n = usize::from(n);
        if rest.len() < n + 4 {
            break;
        }
        let name = String::from_utf8_lossy(&rest[..n]).into_owned();
        let len = u32::from_le_bytes([rest[n], rest[n + 1], rest[n + 2], rest[n + 3]]) as usize;
        let body = &rest[n + 4..];
        let len = len.min(body.len());
        // Plain names only: the folder is the table's.
        if !name.is_empty()
            && name.bytes().any(|b| b != b'.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        {
            out.push((name, body[..len].to_vec()));
        }
        data = &body[len..];
    }
    out
}

/// Replace the folder `memory://fuzz/NAME` with `files`.
async fn ms_folder(name: &str, files: &[(String, Vec<u8>)]) -> tessera_store::Location {
    use futures::TryStreamExt;
    let folder = tessera_store::Location::open(
        &format!("memory://fuzz/{name}"),
        &tessera_store::StoreOptions::default(),
    )
    .await
    .expect("a memory location");
    let old: Vec<_> = folder.list().try_collect().await.unwrap_or_default();
    for m in old {
        let _ = folder.with_path(m.location).delete().await;
    }
    for (f, bytes) in files {
        folder
            .join(f)
            .expect("a plain name")
            .publish(bytes.clone(), tessera_store::PublishMode::Overwrite)
            .await
            .expect("a memory write");
    }
    folder
}

/// Index, plan and fetch the MeasurementSet in `folder`; `None` when any
/// step fails.
async fn ms_slices(
    folder: &tessera_store::Location,
    plan: Strategy,
) -> Option<Vec<(AnySlice, Vec<u8>)>> {
    let formats = Registry::builtin();
    let index = formats.index(folder).with_format("ms").await.ok()?;
    // A slice holds every row it covers (an IncrementalStMan's one value
    // becomes one per row): a few bytes claiming 2^31 rows would ask for
    // gigabytes by design, which is not what this target looks for.
    if index.records > 100_000 {
        return None;
    }
    let slices = formats.plan(&index, plan).ok()?;
    let mut out = Vec::new();
    for s in slices {
        let bytes = formats.fetch(&s, folder).await.ok()?;
        out.push((s, bytes));
    }
    Some(out)
}

/// A MeasurementSet's main table (its `table.dat`, `table.lock` and
/// storage managers' files): if the table, as one slice, fetches, so does
/// every slice of a plan, and each slice, unpacked and indexed again, is
/// a table of as many rows as its descriptor says.
pub fn ms(data: &[u8]) {
    let Some(([p], rest)) = split::<1>(data) else {
        return;
    };
    let files = ms_files(rest);
    let plan = match p % 4 {
        0 => Strategy::Count(1 + usize::from(p / 4) % 5),
        1 => Strategy::Records(1 + u64::from(p / 4) % 7),
        2 => Strategy::Bytes(1 + u64::from(p / 4) * 64),
        _ => Strategy::Interval(std::time::Duration::from_secs(1 + u64::from(p / 4) % 30)),
    };
    runtime().block_on(async {
        let folder = ms_folder("ms/in.ms", &files).await;
        let Some(outs) = ms_slices(&folder, plan).await else {
            return;
        };
        let whole = ms_slices(&folder, Strategy::Count(1)).await;
        assert!(
            whole.is_some() || outs.is_empty(),
            "the table sliced in parts but not as one"
        );
        for (s, bytes) in outs {
            let mut unpacked = Vec::new();
            let mut archive = tar::Archive::new(&bytes[..]);
            for entry in archive.entries().expect("a tar") {
                let mut entry = entry.expect("a tar entry");
                let path = entry.path().expect("a path").display().to_string();
                let name = path
                    .split_once('/')
                    .map(|(_, n)| n.to_string())
                    .expect("in a folder");
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut body).expect("a tar entry's bytes");
                unpacked.push((name, body));
            }
            let copy = ms_folder("ms/out.ms", &unpacked).await;
            let formats = Registry::builtin();
            let again = formats
                .index(&copy)
                .with_format("ms")
                .await
                .unwrap_or_else(|e| panic!("slice {} does not index again: {e}", s.slice));
            assert_eq!(
                again.records, s.record_count,
                "slice {} holds {} rows, its descriptor says {}",
                s.slice, again.records, s.record_count
            );
        }
    });
}
