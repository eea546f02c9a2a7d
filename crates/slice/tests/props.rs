//! The law of slicing, property-tested per format and compression: for any
//! content, checkpoint spacing and plan, the slices' records concatenated
//! are the object's records, exactly once and in order; every slice starts
//! with the header (CSV/TSV/VCF) or, for a FASTA slice that starts inside a
//! sequence, that sequence's header line and the right base offset.

use std::io::Write;

use base64::Engine;
use proptest::prelude::*;
use tessera_slice::{Index, Prefix, RecordFormat, Slice, Strategy as Plan, Take};
use tessera_store::{Location, PublishMode, StoreOptions};

mod common;
use common::{bgzf, gzip};

#[derive(Debug, Clone, Copy)]
enum Comp {
    None,
    Gzip,
    Bgzf,
}

fn eol(crlf: bool) -> &'static str {
    if crlf {
        "\r\n"
    } else {
        "\n"
    }
}

/// Lines of text (JSON-ish, with quotes and commas), empty lines allowed.
fn text_lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("(|[a-z \",{}:]{1,40}|[a-z]{100,400})", 0..60)
}

fn join(lines: &[String], crlf: bool, final_eol: bool) -> String {
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        s.push_str(l);
        if i + 1 < lines.len() || final_eol {
            s.push_str(eol(crlf));
        }
    }
    s
}

/// CSV: a header, then records whose quoted fields may hold newlines, commas and `""`.
fn csv_content() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        "[a-z0-9]{0,12}",
        "[a-z ,\n]{0,20}".prop_map(|s| format!("\"{s}\"")),
        "[a-z]{0,5}".prop_map(|s| format!("\"{s}\"\"q\"\"\n{s}\"")),
        "[a-z]{200,300}",
    ];
    (
        prop::collection::vec(prop::collection::vec(field, 1..4), 0..40),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rows, crlf, final_eol)| {
            let mut lines = vec!["id,name,note".to_string()];
            lines.extend(rows.into_iter().map(|r| r.join(",")));
            join(&lines, crlf, final_eol)
        })
}

fn tsv_content() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-z0-9]{0,10}\t[a-z ]{0,30}\t[0-9]{1,5}", 0..50),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rows, crlf, final_eol)| {
            let mut lines = vec!["a\tb\tc".to_string()];
            lines.extend(rows);
            join(&lines, crlf, final_eol)
        })
}

/// FASTQ whose quality lines often start with `@` or `+` (the classic trap).
fn fastq_content() -> impl Strategy<Value = String> {
    let record = (0usize..300, "[@+!-J]{0,300}", any::<bool>());
    (
        prop::collection::vec(record, 0..40),
        any::<bool>(),
        any::<bool>(),
        0usize..3,
    )
        .prop_map(|(recs, crlf, final_eol, blank_tail)| {
            let mut lines = Vec::new();
            for (i, (len, qual, plus_name)) in recs.into_iter().enumerate() {
                let seq: String = "ACGTN".chars().cycle().skip(i % 5).take(len).collect();
                let mut q: String = qual.chars().cycle().take(len).collect();
                if q.len() < len {
                    q = "@".repeat(len);
                }
                lines.push(format!("@read{i} desc"));
                lines.push(seq);
                lines.push(if plus_name {
                    format!("+read{i}")
                } else {
                    "+".into()
                });
                lines.push(q);
            }
            // An empty last line (a read of length 0 has an empty quality
            // line) exists only if a line break ends it: without one, the
            // file holds a record cut short, which indexing rightly refuses.
            let empty_last = lines.last().is_some_and(|l| l.is_empty());
            let mut s = join(&lines, crlf, final_eol || blank_tail > 0 || empty_last);
            if !lines.is_empty() {
                for _ in 0..blank_tail {
                    s.push_str(eol(crlf));
                }
            }
            s
        })
}

/// FASTA with regular line widths, long and empty-ish sequences.
fn fasta_content() -> impl Strategy<Value = String> {
    let seq = (1usize..2000, 1usize..90, "[a-z ]{0,20}");
    (
        prop::collection::vec(seq, 1..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(seqs, crlf, final_eol)| {
            let mut lines = Vec::new();
            for (i, (len, width, desc)) in seqs.into_iter().enumerate() {
                lines.push(format!(">seq{i} {desc}"));
                let bases: String = "ACGTTGCA".chars().cycle().skip(i).take(len).collect();
                for chunk in bases.as_bytes().chunks(width) {
                    lines.push(String::from_utf8(chunk.to_vec()).unwrap());
                }
            }
            join(&lines, crlf, final_eol)
        })
}

fn vcf_content() -> impl Strategy<Value = String> {
    (
        0usize..20,
        prop::collection::vec("[0-9]{1,9}\t[ACGT]{1,3}\t[ACGT]{1,3}\t[a-z=;]{0,50}", 0..60),
        any::<bool>(),
    )
        .prop_map(|(meta, rows, final_eol)| {
            let mut lines = vec!["##fileformat=VCFv4.2".to_string()];
            lines.extend((0..meta).map(|i| format!("##INFO=<ID=X{i},Number=1,Type=Integer>")));
            lines.push("#CHROM\tPOS\tREF\tALT\tINFO".into());
            lines.extend(rows.into_iter().map(|r| format!("chr1\t{r}")));
            join(&lines, false, final_eol)
        })
}

fn content(format: RecordFormat) -> BoxedStrategy<String> {
    match format {
        RecordFormat::Text | RecordFormat::Jsonl => (text_lines(), any::<bool>(), any::<bool>())
            .prop_map(|(l, crlf, fe)| join(&l, crlf, fe))
            .boxed(),
        RecordFormat::Csv => csv_content().boxed(),
        RecordFormat::Tsv => tsv_content().boxed(),
        RecordFormat::Fastq => fastq_content().boxed(),
        RecordFormat::Fasta => fasta_content().boxed(),
        RecordFormat::Vcf => vcf_content().boxed(),
        other => panic!("no content generator for {other}"),
    }
}

fn plans() -> impl Strategy<Value = Plan> {
    prop_oneof![
        (1usize..24).prop_map(Plan::Count),
        (1u64..2000).prop_map(Plan::Bytes),
        (1u64..12).prop_map(Plan::Records),
    ]
}

fn compress(data: &[u8], comp: Comp, cuts: &[usize]) -> Vec<u8> {
    match comp {
        Comp::None => data.to_vec(),
        Comp::Gzip => gzip(data, cuts),
        Comp::Bgzf => bgzf(data, cuts),
    }
}

fn prefix_len(s: &Slice) -> usize {
    match &s.header {
        None => 0,
        Some(Prefix::Inline { base64 }) => base64::engine::general_purpose::STANDARD
            .decode(base64)
            .unwrap()
            .len(),
        Some(Prefix::Range { start, end }) => (end - start) as usize,
    }
}

/// Header bytes of a file, as the format defines them.
fn header_of(format: RecordFormat, data: &[u8]) -> usize {
    match format {
        RecordFormat::Csv | RecordFormat::Tsv => {
            // The first record; the generated headers hold no quotes.
            data.iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |p| p + 1)
        }
        RecordFormat::Vcf => {
            let mut at = 0;
            while at < data.len() && data[at] == b'#' {
                at = data[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(data.len(), |p| at + p + 1);
            }
            at
        }
        _ => 0,
    }
}

fn check(
    format: RecordFormat,
    comp: Comp,
    text: &str,
    spacing: u64,
    strategy: Plan,
    cuts: &[usize],
) {
    // Fetch in tiny ranged GETs: the decoder and the cutting see the stream
    // split at every kind of place (inside headers, trailers, records).
    let part_size = 1 + (spacing * 7 + text.len() as u64) % 97;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = text.as_bytes();
        let stored = compress(data, comp, cuts);
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = format!(
            "memory://props-{comp:?}-{}/obj{n}.{}",
            format.name(),
            format.name()
        );
        let obj = Location::open(&url, &StoreOptions::default())
            .await
            .unwrap();
        obj.publish(stored, PublishMode::Overwrite).await.unwrap();
        let (index, _) = Index::build(&obj)
            .with_format(format)
            .with_spacing(spacing)
            .with_header(true)
            .await
            .unwrap();
        assert_eq!(index.data_size, data.len() as u64);
        let slices = index.plan(strategy).run().unwrap();
        let h = header_of(format, data);
        let body = &data[h..];
        let mut joined = Vec::new();
        let mut records = 0;
        for s in &slices {
            // Every descriptor survives JSON, and fetching uses only it.
            let s: Slice = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
            let out = s.fetch(&obj).with_part_size(part_size).await.unwrap();
            // A size the descriptor fixes is the size fetched.
            if let Some(n) = s.output_size() {
                assert_eq!(out.len() as u64, n, "slice {} output_size", s.slice);
            }
            let p = prefix_len(&s);
            assert!(out.len() >= p);
            if format.has_header() {
                assert_eq!(&out[..p], &data[..h], "slice {} header", s.slice);
            }
            if let Some(part) = &s.fasta {
                // The prefix is the header line of the sequence the slice starts in,
                // and the base offset counts that sequence's bases before it.
                let hdr = std::str::from_utf8(&out[..p]).unwrap();
                assert!(hdr.starts_with(&format!(">{} ", part.sequence)), "{hdr:?}");
                let before = std::str::from_utf8(&joined).unwrap();
                let seq_start = before.rfind('>').unwrap();
                let seq_text = &before[seq_start..];
                let bases: usize = seq_text
                    .split('\n')
                    .skip(1)
                    .map(|l| l.trim_end_matches('\r').len())
                    .sum();
                assert_eq!(part.base_offset, bases as u64);
                assert!(hdr.trim_end() == seq_text.lines().next().unwrap().trim_end());
            }
            if let Plan::Records(n) = strategy {
                if s.slice + 1 < slices.len() {
                    assert_eq!(s.record_count, n);
                    if format != RecordFormat::Fasta {
                        assert!(matches!(
                            s.decode.take,
                            Take::Records(_) | Take::Bytes(_) | Take::All
                        ));
                    }
                }
            }
            records += s.record_count;
            joined.extend_from_slice(&out[p..]);
        }
        assert_eq!(records, index.records, "record counts add up");
        if index.records > 0 {
            assert_eq!(joined, body, "slices concatenate to the records");
        } else {
            assert!(slices.is_empty() || joined.iter().all(|b| b.is_ascii_whitespace()));
        }
    });
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..100_000, 0..6)
}

macro_rules! law {
    ($name:ident, $format:expr, $comp:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
            #[test]
            fn $name(text in content($format), spacing in 1u64..400, strategy in plans(), cuts in cuts()) {
                check($format, $comp, &text, spacing, strategy, &cuts);
            }
        }
    };
}

law!(text_plain, RecordFormat::Text, Comp::None);
law!(text_gzip, RecordFormat::Text, Comp::Gzip);
law!(jsonl_plain, RecordFormat::Jsonl, Comp::None);
law!(jsonl_gzip, RecordFormat::Jsonl, Comp::Gzip);
law!(csv_plain, RecordFormat::Csv, Comp::None);
law!(csv_gzip, RecordFormat::Csv, Comp::Gzip);
law!(tsv_plain, RecordFormat::Tsv, Comp::None);
law!(tsv_bgzf, RecordFormat::Tsv, Comp::Bgzf);
law!(fastq_plain, RecordFormat::Fastq, Comp::None);
law!(fastq_gzip, RecordFormat::Fastq, Comp::Gzip);
law!(fastq_bgzf, RecordFormat::Fastq, Comp::Bgzf);
law!(fasta_plain, RecordFormat::Fasta, Comp::None);
law!(fasta_gzip, RecordFormat::Fasta, Comp::Gzip);
law!(fasta_bgzf, RecordFormat::Fasta, Comp::Bgzf);
law!(vcf_plain, RecordFormat::Vcf, Comp::None);
law!(vcf_gzip, RecordFormat::Vcf, Comp::Gzip);
law!(vcf_bgzf, RecordFormat::Vcf, Comp::Bgzf);

/// Natural deflate blocks (bit-aligned boundaries, long back-references)
/// in a multi-member file: the zran checkpoints with windows are exercised.
#[test]
fn large_gzip_with_bit_aligned_blocks() {
    let mut text = String::new();
    let mut x: u64 = 7;
    for i in 0..40_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 20 + (x >> 58) as usize;
        let seq: String = (0..len)
            .map(|k| b"ACGT"[((x >> (k % 60)) & 3) as usize] as char)
            .collect();
        text.push_str(&format!("@r{i}\n{seq}\n+\n{}\n", "I".repeat(len)));
    }
    let half = text.len() / 2;
    let half = half + text[half..].find('\n').unwrap() + 1;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut gz = Vec::new();
        for part in [&text[..half], &text[half..]] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            enc.write_all(part.as_bytes()).unwrap();
            gz.extend(enc.finish().unwrap());
        }
        let obj = Location::open("memory://big/reads.fastq.gz", &StoreOptions::default())
            .await
            .unwrap();
        obj.publish(gz, PublishMode::Overwrite).await.unwrap();
        let (index, _) = Index::build(&obj).with_spacing(16 << 10).await.unwrap();
        assert_eq!(index.records, 40_000);
        assert!(
            index.checkpoints.iter().any(|c| c.bits > 0),
            "some blocks end mid-byte"
        );
        assert!(index.windows.len() > 5, "{} windows", index.windows.len());
        for strategy in [Plan::Count(17), Plan::Records(3001), Plan::Bytes(50_000)] {
            let slices = index.plan(strategy).run().unwrap();
            assert!(slices.len() > 1);
            let mut all = Vec::new();
            for s in &slices {
                all.extend(s.fetch(&obj).with_part_size(4093).await.unwrap());
            }
            assert_eq!(all, text.as_bytes(), "{strategy:?}");
        }
    });
}
