//! Targets over record-oriented text: the readers pack and put use, and the
//! slicing scanners with their gzip/BGZF checkpoint reader.

use std::io::Read;
use std::sync::Arc;

use arrow::array::RecordBatch;
use base64::Engine;
use tessera_formats::{infer_schema, FileFormat, ReadOptions};
use tessera_slice::{record_spans, Index, Prefix, RecordFormat, Slice, Strategy};
use tessera_test_support::compress;

use crate::{object, runtime, split};

/// CSV, TSV or JSON Lines (the first byte chooses) read with a schema
/// inferred from the data, once in 1 KiB chunks parsed in parallel and once
/// whole: the same rows, or the same error naming the same line.
pub fn read_text(data: &[u8]) {
    let Some(([sel], text)) = split::<1>(data) else {
        return;
    };
    let ext = ["csv", "tsv", "jsonl"][sel as usize % 3];
    let format = FileFormat::from_name(&format!("in.{ext}")).expect("a known format");
    let rt = runtime();
    let loc = rt.block_on(object(&format!("read_text/in.{ext}"), text.to_vec()));
    let Ok(Some(schema)) = infer_schema(&loc, format, 64 << 10, rt.handle()) else {
        return;
    };
    let schema = Arc::new(schema);
    let read = |chunk: usize| -> Result<String, String> {
        let opts = ReadOptions::new(rt.handle().clone())
            .with_chunk_bytes(chunk)
            .with_in_flight(3);
        let batches = tessera_formats::read(&loc, format, schema.clone(), &opts)
            .map_err(|e| e.to_string())?;
        let all: Vec<RecordBatch> = batches
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        // Printed, so that NaN equals NaN.
        arrow::util::pretty::pretty_format_batches(&all)
            .map(|t| t.to_string())
            .map_err(|e| format!("cannot print: {e}"))
    };
    let small = read(1024);
    let whole = read(64 << 20);
    assert_eq!(small, whole, "rows depend on the chunk size");
}

/// The bytes a slice's prefix adds before its records.
fn prefix_len(s: &Slice) -> usize {
    match &s.header {
        None => 0,
        Some(Prefix::Inline { base64 }) => base64::engine::general_purpose::STANDARD
            .decode(base64)
            .expect("an inline prefix is base64")
            .len(),
        Some(Prefix::Range { start, end }) => (end - start) as usize,
    }
}

fn strategy(b: u8) -> Strategy {
    let n = u64::from(b / 3);
    match b % 3 {
        0 => Strategy::Count(1 + n as usize % 9),
        1 => Strategy::Records(1 + n % 9),
        _ => Strategy::Bytes(1 + n * 16),
    }
}

/// Index `stored` (holding `text`, maybe compressed) as `format`, plan with
/// `plan` and fetch every slice through its JSON descriptor in small
/// ranged reads: the slices' records concatenate to the text's records,
/// each once and in order, and every slice of a format with a header
/// starts with the header. An object the index refuses is fine.
fn slices_concatenate(
    format: RecordFormat,
    text: &[u8],
    stored: Vec<u8>,
    spacing: u64,
    plan: Strategy,
) {
    let part = 1 + (spacing * 7 + text.len() as u64) % 97;
    runtime().block_on(async {
        let obj = object(&format!("slices/obj.{}", format.name()), stored).await;
        let Ok((index, _)) = Index::build(&obj)
            .with_format(format)
            .with_spacing(spacing)
            .with_header(true)
            .await
        else {
            return;
        };
        assert_eq!(index.data_size, text.len() as u64, "the indexed size");
        let spans = record_spans(format, text, "fuzz")
            .expect("the records of an object that indexed cleanly split cleanly");
        assert_eq!(index.records, spans.len() as u64, "records indexed");
        // What precedes the first record: the header that every slice
        // repeats (CSV, TSV, VCF), or lines that are no record (blank lines,
        // FASTA `;` comments), which no slice holds.
        let header = spans.first().map_or(0, |r| r.start);
        let slices = index.plan(plan).run().expect("a plan from a valid index");
        let mut joined = Vec::new();
        let mut records = 0;
        for s in &slices {
            let json = serde_json::to_string(s).expect("a descriptor serializes");
            let s: Slice = serde_json::from_str(&json).expect("a descriptor reads back");
            let out = s
                .fetch(&obj)
                .with_part_size(part)
                .await
                .unwrap_or_else(|e| panic!("slice {} of a valid plan: {e}", s.slice));
            if let Some(n) = s.output_size() {
                assert_eq!(out.len() as u64, n, "slice {}: output size", s.slice);
            }
            let p = prefix_len(&s);
            assert!(out.len() >= p, "slice {}: shorter than its prefix", s.slice);
            if format.has_header() && index.records > 0 {
                assert_eq!(&out[..p], &text[..header], "slice {}: header", s.slice);
            }
            records += s.record_count;
            joined.extend_from_slice(&out[p..]);
        }
        assert_eq!(records, index.records, "record counts add up");
        if index.records > 0 {
            assert!(
                joined == text[header..],
                "slices do not concatenate to the records:\n{:?}\n!=\n{:?}\nslices: {}\nindex: {}",
                String::from_utf8_lossy(&joined),
                String::from_utf8_lossy(&text[header..]),
                serde_json::to_string(&slices).unwrap_or_default(),
                serde_json::to_string(&index).unwrap_or_default(),
            );
        }
    });
}

/// The slicing law for every text format (first byte), plain, gzip or BGZF
/// with members and blocks cut where the second byte says (the checkpoint
/// reader then resumes mid-stream), at any checkpoint spacing (third byte)
/// and plan (fourth byte).
pub fn slice_records(data: &[u8]) {
    let Some(([f, c, sp, st], text)) = split::<4>(data) else {
        return;
    };
    let format = RecordFormat::ALL[f as usize % RecordFormat::ALL.len()];
    let cuts = [text.len() / 3, text.len() / 2 + usize::from(c)];
    let stored = match c % 3 {
        0 => text.to_vec(),
        1 => compress::gzip(text, &cuts),
        _ => compress::bgzf(text, &cuts),
    };
    slices_concatenate(format, text, stored, 1 + u64::from(sp) * 3, strategy(st));
}

/// Hostile compressed bytes: the object (after two control bytes) is taken
/// as a gzip or BGZF file of text lines. If it indexes, and zlib decodes it
/// too, the slices concatenate to what zlib decodes.
pub fn gzip(data: &[u8]) {
    let Some(([sp, st], gz)) = split::<2>(data) else {
        return;
    };
    let mut text = Vec::new();
    let decoded = flate2::read::MultiGzDecoder::new(gz)
        .take(16 << 20)
        .read_to_end(&mut text)
        .is_ok();
    if !decoded {
        // Still index and fetch: errors are fine, panics are not.
        runtime().block_on(async {
            let obj = object("gzip/obj.txt.gz", gz.to_vec()).await;
            if let Ok((index, _)) = Index::build(&obj)
                .with_format(RecordFormat::Text)
                .with_spacing(1 + u64::from(sp) * 5)
                .await
            {
                if let Ok(slices) = index.plan(strategy(st)).run() {
                    for s in &slices {
                        let _ = s.fetch(&obj).await;
                    }
                }
            }
        });
        return;
    }
    slices_concatenate(
        RecordFormat::Text,
        &text,
        gz.to_vec(),
        1 + u64::from(sp) * 5,
        strategy(st),
    );
}
