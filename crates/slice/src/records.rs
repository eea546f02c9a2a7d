//! A slice's bytes cut into records.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::format::RecordFormat;
use crate::scan::{Event, Scanner};

/// The byte ranges of the records in `data`: the bytes a fetched slice
/// evaluates to (the header, if the format has one, then whole records), or
/// a whole uncompressed object. The header is not a record; each range
/// ends where the next record starts (line terminators included).
///
/// `name` names the data in errors.
///
/// ```
/// use tessera_slice::{record_spans, RecordFormat};
/// let data = b"id,text\n1,\"a\nb\"\n2,c\n";
/// let spans = record_spans(RecordFormat::Csv, data, "example.csv").unwrap();
/// assert_eq!(&data[spans[0].clone()], b"1,\"a\nb\"\n");
/// assert_eq!(&data[spans[1].clone()], b"2,c\n");
/// ```
pub fn record_spans(format: RecordFormat, data: &[u8], name: &str) -> Result<Vec<Range<usize>>> {
    let mut scanner = Scanner::new(format, format.has_header());
    let mut starts: Vec<usize> = Vec::new();
    let mut on = |e: Event| {
        if let Event::Record { offset, .. } = e {
            starts.push(offset as usize);
        }
        true
    };
    scanner.feed(data, &mut on);
    if let Some(e) = scanner.finish(&mut on) {
        return Err(Error::InvalidRecord {
            object: name.to_string(),
            format,
            line: e.line,
            message: e.message,
        });
    }
    let mut spans = Vec::with_capacity(starts.len());
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        spans.push(s..end);
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastq_records_are_four_lines() {
        let data = b"@r1\nACGT\n+\nIIII\n@r2\nGG\n+\nII\n";
        let s = record_spans(RecordFormat::Fastq, data, "t").unwrap();
        assert_eq!(s, vec![0..16, 16..data.len()]);
    }

    #[test]
    fn fasta_records_span_their_sequence_lines() {
        let data = b">a x\nAC\nGT\n>b\nTT\n";
        let s = record_spans(RecordFormat::Fasta, data, "t").unwrap();
        assert_eq!(s, vec![0..11, 11..data.len()]);
    }

    #[test]
    fn header_is_not_a_record_and_last_line_may_lack_newline() {
        let data = b"a\tb\n1\t2\n3\t4";
        let s = record_spans(RecordFormat::Tsv, data, "t").unwrap();
        assert_eq!(s, vec![4..8, 8..data.len()]);
        assert!(record_spans(RecordFormat::Tsv, b"a\tb\n", "t")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn broken_data_is_an_error_naming_it() {
        let e = record_spans(RecordFormat::Fastq, b"@r1\nAC\nX\nII\n", "reads.fq").unwrap_err();
        assert!(e.to_string().contains("reads.fq"), "{e}");
    }
}
