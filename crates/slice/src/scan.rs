//! Record boundaries: one streaming state machine per format over the
//! (decompressed) bytes of an object, fed in chunks of any size.
//!
//! The scanner reports every place a slice may start: a record start, and
//! for FASTA also the start of each sequence line (so that a sequence larger
//! than a slice can be split between lines). An event is reported once the
//! first byte of its line has been seen, so a boundary at offset `x` is
//! always reported after every byte before `x` was fed.

use memchr::memchr;

use crate::format::RecordFormat;

/// Longest header (CSV/TSV/VCF) or FASTA description line kept.
pub(crate) const MAX_HEADER: usize = 16 << 20;

/// A place where a slice may begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Record number `record` (0-based, header excluded) starts at `offset`.
    Record { offset: u64, record: u64 },
    /// FASTA: a sequence line of record `record` starts at `offset`, with
    /// `bases` bases of that sequence before it.
    Part {
        offset: u64,
        record: u64,
        bases: u64,
    },
}

impl Event {
    pub(crate) fn offset(&self) -> u64 {
        match *self {
            Event::Record { offset, .. } | Event::Part { offset, .. } => offset,
        }
    }
}

/// One FASTA sequence, as `samtools faidx` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sequence {
    /// The name: the header after `>` up to the first white space.
    pub name: String,
    /// The whole header line, with its line terminator.
    pub header: String,
    /// Offset of the `>` of the header line (uncompressed).
    pub header_offset: u64,
    /// Offset of the first base (uncompressed).
    pub offset: u64,
    /// Number of bases.
    pub length: u64,
    /// Bases per line (of the first line).
    pub line_bases: u64,
    /// Bytes per line, terminator included.
    pub line_width: u64,
}

#[derive(Debug, Default)]
struct FastaState {
    /// Sequences finished so far and the one being read (last).
    seqs: Vec<Sequence>,
    /// Bases per line of the current sequence seen so far is consistent.
    short_line_seen: bool,
    /// Sequence lines of the current sequence so far.
    seq_lines: u64,
    in_header_line: bool,
    /// A line before the first header starts with `\r`: blank only if
    /// nothing else follows (decided when the line ends).
    cr_line: bool,
    /// The first problem that makes a `.fai` impossible.
    fai_problem: Option<String>,
}

/// The first problem a [`Scanner`] found in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// The 1-based line (counted from where scanning started), when the
    /// problem is on one line.
    pub(crate) line: Option<u64>,
    /// What is wrong.
    pub(crate) message: String,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The scanner: feed it bytes in order, get boundary events.
#[derive(Debug)]
pub(crate) struct Scanner {
    format: RecordFormat,
    /// Offset of the next byte to be fed.
    pos: u64,
    /// Start of the current line.
    line_start: u64,
    /// True when the first byte of the current line has not been seen yet.
    need_first: bool,
    /// Physical line number (1-based) of the current line, for messages.
    line_no: u64,
    /// Last byte fed (CR detection across chunks).
    last: u8,
    /// CSV: inside a quoted field.
    quoted: bool,
    /// CSV: line on which the open quoted record started.
    record_line: u64,
    /// Still inside the header (CSV/TSV first record; VCF `#` lines).
    in_header: bool,
    header_buf: Vec<u8>,
    header_end: Option<u64>,
    /// Records started so far.
    records: u64,
    /// FASTQ: line index within the record (0..4).
    fq_line: u8,
    /// FASTQ: blank lines seen at a record start (only allowed at the end).
    fq_blank_line: Option<u64>,
    /// Line bytes being collected (FASTA header lines).
    line_buf: Vec<u8>,
    fasta: FastaState,
    /// The first problem found in the data.
    error: Option<ScanError>,
}

impl Scanner {
    /// A scanner at the start of an object.
    pub(crate) fn new(format: RecordFormat, header: bool) -> Scanner {
        Scanner {
            format,
            pos: 0,
            line_start: 0,
            need_first: true,
            line_no: 1,
            last: b'\n',
            quoted: false,
            record_line: 1,
            in_header: header && format.has_header(),
            header_buf: Vec::new(),
            header_end: None,
            records: 0,
            fq_line: 0,
            fq_blank_line: None,
            line_buf: Vec::new(),
            fasta: FastaState::default(),
            error: None,
        }
    }

    /// A scanner placed at a record boundary in the middle of an object (at
    /// `offset`, record number `record`); used to count records while
    /// fetching a slice. Headers are already behind it.
    pub(crate) fn at_boundary(format: RecordFormat, offset: u64, record: u64) -> Scanner {
        let mut s = Scanner::new(format, false);
        s.pos = offset;
        s.line_start = offset;
        s.records = record;
        s.header_end = Some(0);
        s
    }

    /// The format being scanned.
    pub(crate) fn format(&self) -> RecordFormat {
        self.format
    }

    /// The number of records started so far.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The header's bytes (CSV/TSV first line, VCF `#` lines) and its end, once known.
    pub(crate) fn header(&self) -> Option<(&[u8], u64)> {
        self.header_end.map(|end| (&self.header_buf[..], end))
    }

    /// FASTA sequences found, and the first reason a `.fai` cannot be written.
    pub(crate) fn into_sequences(self) -> (Vec<Sequence>, Option<String>) {
        (self.fasta.seqs, self.fasta.fai_problem)
    }

    /// The first problem in the data, if any (the scan stops reporting events after it).
    pub(crate) fn error(&self) -> Option<&ScanError> {
        self.error.as_ref()
    }

    fn fail(&mut self, line: Option<u64>, message: String) {
        if self.error.is_none() {
            self.error = Some(ScanError { line, message });
        }
    }

    /// Feed the next bytes. Events go to `on`; return `false` from it to stop early.
    pub(crate) fn feed<F: FnMut(Event) -> bool>(&mut self, chunk: &[u8], on: &mut F) -> bool {
        let base = self.pos;
        if self.in_header {
            let room = MAX_HEADER.saturating_sub(self.header_buf.len());
            self.header_buf
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let mut i = 0usize;
        while i < chunk.len() {
            if self.error.is_some() {
                break;
            }
            if self.need_first {
                self.need_first = false;
                if !self.line_started(chunk[i], on) {
                    self.pos = base + i as u64 + 1;
                    return false;
                }
            }
            let rest = &chunk[i..];
            match memchr(b'\n', rest) {
                Some(k) => {
                    let seg = &rest[..k];
                    self.segment(seg);
                    let cr = if k > 0 {
                        rest[k - 1] == b'\r'
                    } else {
                        self.last == b'\r' && self.line_start < base + i as u64
                    };
                    let nl = base + (i + k) as u64;
                    self.line_ended(nl, cr, true);
                    self.line_start = nl + 1;
                    self.line_no += 1;
                    self.need_first = true;
                    self.last = b'\n';
                    i += k + 1;
                }
                None => {
                    self.segment(rest);
                    self.last = *rest.last().unwrap();
                    i = chunk.len();
                }
            }
        }
        self.pos = base + chunk.len() as u64;
        if self.in_header && self.header_buf.len() >= MAX_HEADER {
            self.fail(
                None,
                format!(
                    "the header is larger than {} MiB; is this really {}?",
                    MAX_HEADER >> 20,
                    self.format
                ),
            );
        }
        if let Some((_, end)) = self.header() {
            let end = end as usize;
            if self.header_buf.len() > end {
                self.header_buf.truncate(end);
            }
        }
        true
    }

    /// End of input: close the last line and check the last record is whole.
    pub(crate) fn finish<F: FnMut(Event) -> bool>(&mut self, on: &mut F) -> Option<ScanError> {
        let _ = on;
        if self.error.is_none() && !self.need_first && self.pos > self.line_start {
            let cr = self.last == b'\r';
            self.line_ended(self.pos, cr, false);
        }
        if self.error.is_none() {
            match self.format {
                RecordFormat::Csv if self.quoted => self.fail(
                    Some(self.line_no),
                    format!(
                        "a quoted field is never closed (the record starts on line {})",
                        self.record_line
                    ),
                ),
                RecordFormat::Fastq if self.fq_line != 0 => {
                    let lines = self.fq_line;
                    self.fail(
                        Some(self.line_no),
                        format!("the last FASTQ record is cut short ({lines} of 4 lines)"),
                    )
                }
                _ => {}
            }
        }
        if self.in_header {
            // The whole object is header (or empty): no records.
            self.in_header = false;
            self.header_end = Some(self.pos);
        }
        if self.format == RecordFormat::Fasta {
            self.finish_sequence();
        }
        self.error.clone()
    }

    /// Bytes of the current line (without its newline).
    #[inline]
    fn segment(&mut self, seg: &[u8]) {
        if self.format == RecordFormat::Csv {
            let n = memchr::memchr_iter(b'"', seg).count();
            if n % 2 == 1 {
                self.quoted = !self.quoted;
            }
        }
        if self.fasta.in_header_line && self.line_buf.len() < MAX_HEADER {
            self.line_buf.extend_from_slice(seg);
        }
    }

    /// The first byte of a line is known: decide whether a slice may start here.
    fn line_started<F: FnMut(Event) -> bool>(&mut self, first: u8, on: &mut F) -> bool {
        let offset = self.line_start;
        let blank = first == b'\n' || first == b'\r';
        match self.format {
            RecordFormat::Text | RecordFormat::Jsonl => self.record(offset, on),
            RecordFormat::Tsv => {
                if self.in_header {
                    true
                } else {
                    self.record(offset, on)
                }
            }
            RecordFormat::Csv => {
                if self.quoted {
                    true
                } else {
                    self.record_line = self.line_no;
                    if self.in_header {
                        true
                    } else {
                        self.record(offset, on)
                    }
                }
            }
            RecordFormat::Vcf => {
                if self.in_header {
                    if first == b'#' {
                        return true;
                    }
                    self.end_header(offset);
                }
                self.record(offset, on)
            }
            RecordFormat::Fastq => match self.fq_line {
                0 => {
                    if blank {
                        self.fq_blank_line.get_or_insert(self.line_no);
                        true
                    } else if first != b'@' {
                        self.fail(
                            Some(self.line_no),
                            format!(
                                "expected a FASTQ record starting with '@', found {:?}",
                                first as char
                            ),
                        );
                        false
                    } else if let Some(blank_line) = self.fq_blank_line {
                        self.fail(Some(blank_line), "blank line between FASTQ records".into());
                        false
                    } else {
                        self.record(offset, on)
                    }
                }
                2 if first != b'+' => {
                    self.fail(
                        Some(self.line_no),
                        format!(
                            "expected the FASTQ '+' separator line, found {:?}",
                            first as char
                        ),
                    );
                    false
                }
                _ => true,
            },
            RecordFormat::Fasta => {
                if first == b'>' {
                    self.finish_sequence();
                    self.fasta.in_header_line = true;
                    self.line_buf.clear();
                    self.record(offset, on)
                } else if self.fasta.seqs.is_empty() {
                    if first == b'\r' {
                        self.fasta.cr_line = true;
                        true
                    } else if blank || first == b';' {
                        true
                    } else {
                        self.fail(
                            Some(self.line_no),
                            format!(
                                "expected a FASTA header starting with '>', found {:?}",
                                first as char
                            ),
                        );
                        false
                    }
                } else {
                    let seq = self.fasta.seqs.last().unwrap();
                    let ev = Event::Part {
                        offset,
                        record: self.fasta.seqs.len() as u64 - 1,
                        bases: seq.length,
                    };
                    on(ev)
                }
            }
        }
    }

    #[inline]
    fn record<F: FnMut(Event) -> bool>(&mut self, offset: u64, on: &mut F) -> bool {
        let record = self.records;
        self.records += 1;
        on(Event::Record { offset, record })
    }

    fn end_header(&mut self, at: u64) {
        self.in_header = false;
        self.header_end = Some(at);
    }

    /// A line ended at `end` (the offset of its newline, or of the end of input).
    fn line_ended(&mut self, end: u64, cr: bool, newline: bool) {
        match self.format {
            RecordFormat::Csv | RecordFormat::Tsv if self.in_header && !self.quoted => {
                self.end_header(end + newline as u64);
            }
            RecordFormat::Fastq => {
                let blank = end - self.line_start == cr as u64;
                if !(self.fq_line == 0 && blank) {
                    self.fq_line = (self.fq_line + 1) % 4;
                }
            }
            RecordFormat::Fasta => self.fasta_line_ended(end, cr, newline),
            _ => {}
        }
    }

    fn fasta_line_ended(&mut self, end: u64, cr: bool, newline: bool) {
        if std::mem::take(&mut self.fasta.cr_line) && end - self.line_start != u64::from(cr) {
            // "\r…": text before the first header, not a blank line.
            self.fail(
                Some(self.line_no),
                "expected a FASTA header starting with '>', found '\\r'".into(),
            );
            return;
        }
        let width = end - self.line_start + newline as u64;
        let bases = end - self.line_start - cr as u64;
        if self.fasta.in_header_line {
            self.fasta.in_header_line = false;
            let mut header = std::mem::take(&mut self.line_buf);
            if newline {
                header.push(b'\n');
            }
            let header = String::from_utf8_lossy(&header).into_owned();
            let name = header[1..]
                .split(|c: char| c.is_ascii_whitespace())
                .next()
                .unwrap_or("")
                .to_string();
            if name.is_empty() && self.fasta.fai_problem.is_none() {
                self.fasta.fai_problem =
                    Some(format!("line {}: a sequence without a name", self.line_no));
            }
            self.fasta.short_line_seen = false;
            self.fasta.seq_lines = 0;
            self.fasta.seqs.push(Sequence {
                name,
                header,
                header_offset: self.line_start,
                offset: end + newline as u64,
                length: 0,
                line_bases: 0,
                line_width: 0,
            });
            return;
        }
        let Some(seq) = self.fasta.seqs.last_mut() else {
            return;
        };
        let first_line = self.fasta.seq_lines == 0;
        self.fasta.seq_lines += 1;
        if first_line {
            seq.line_bases = bases;
            seq.line_width = width;
        } else if ((self.fasta.short_line_seen && bases > 0)
            || bases > seq.line_bases
            || (bases == seq.line_bases && width != seq.line_width && newline))
            && self.fasta.fai_problem.is_none()
        {
            self.fasta.fai_problem = Some(format!(
                "line {}: sequence `{}` has lines of different lengths, which a .fai cannot describe",
                self.line_no, seq.name
            ));
        }
        if bases < seq.line_bases {
            self.fasta.short_line_seen = true;
        }
        seq.length += bases;
    }

    fn finish_sequence(&mut self) {
        if let Some(seq) = self.fasta.seqs.last() {
            if seq.length == 0 && self.fasta.fai_problem.is_none() {
                self.fasta.fai_problem = Some(format!(
                    "sequence `{}` is empty, which a .fai cannot describe",
                    seq.name
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(format: RecordFormat, data: &[u8], chunk: usize) -> (Vec<Event>, Scanner) {
        let mut s = Scanner::new(format, true);
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            s.feed(c, &mut |e| {
                out.push(e);
                true
            });
        }
        s.finish(&mut |_| true);
        (out, s)
    }

    fn offsets(ev: &[Event]) -> Vec<u64> {
        ev.iter()
            .filter(|e| matches!(e, Event::Record { .. }))
            .map(|e| e.offset())
            .collect()
    }

    #[test]
    fn csv_quoted_newlines_and_header() {
        let data = b"a,b\n1,\"x\ny\"\n2,z\r\n3,\"\"\"q\"\"\"\n";
        for chunk in [1, 2, 3, 7, 100] {
            let (ev, s) = events(RecordFormat::Csv, data, chunk);
            assert_eq!(offsets(&ev), vec![4, 12, 17], "chunk {chunk}");
            assert_eq!(s.header(), Some((&b"a,b\n"[..], 4)));
            assert!(s.error().is_none());
        }
        let (_, s) = events(RecordFormat::Csv, b"a\n\"open\n", 3);
        assert!(
            s.error().unwrap().to_string().contains("never closed"),
            "{:?}",
            s.error()
        );
    }

    #[test]
    fn fastq_records_and_errors() {
        let data = b"@r1\nAC\n+\n@@\n@r2\nGT\n+r2\n!!\n\n";
        for chunk in [1, 5, 100] {
            let (ev, s) = events(RecordFormat::Fastq, data, chunk);
            assert_eq!(offsets(&ev), vec![0, 12]);
            assert!(s.error().is_none(), "{:?}", s.error());
        }
        let (_, s) = events(RecordFormat::Fastq, b"@r1\nAC\n+\n", 4);
        assert!(s.error().unwrap().to_string().contains("cut short"));
        let (_, s) = events(RecordFormat::Fastq, b"@r1\nAC\n-\nII\n", 4);
        assert!(s.error().unwrap().to_string().contains("line 3"));
        assert_eq!(s.error().unwrap().line, Some(3));
        let (_, s) = events(RecordFormat::Fastq, b">r1\nAC\n", 4);
        assert!(s.error().unwrap().to_string().contains("line 1"));
    }

    #[test]
    fn fasta_parts_and_fai_values() {
        let data = b">s1 desc\nACGT\nAC\n>s2\r\nAAAA\r\nCC\r\n";
        let (ev, s) = events(RecordFormat::Fasta, data, 3);
        assert_eq!(
            ev,
            vec![
                Event::Record {
                    offset: 0,
                    record: 0
                },
                Event::Part {
                    offset: 9,
                    record: 0,
                    bases: 0
                },
                Event::Part {
                    offset: 14,
                    record: 0,
                    bases: 4
                },
                Event::Record {
                    offset: 17,
                    record: 1
                },
                Event::Part {
                    offset: 22,
                    record: 1,
                    bases: 0
                },
                Event::Part {
                    offset: 28,
                    record: 1,
                    bases: 4
                },
            ]
        );
        let (seqs, problem) = s.into_sequences();
        assert_eq!(problem, None);
        assert_eq!(seqs[0].name, "s1");
        assert_eq!(seqs[0].header, ">s1 desc\n");
        assert_eq!(
            (
                seqs[0].offset,
                seqs[0].length,
                seqs[0].line_bases,
                seqs[0].line_width
            ),
            (9, 6, 4, 5)
        );
        assert_eq!(
            (
                seqs[1].offset,
                seqs[1].length,
                seqs[1].line_bases,
                seqs[1].line_width
            ),
            (22, 6, 4, 6)
        );
        let (_, s) = events(RecordFormat::Fasta, b">a\nAC\nACGT\n", 2);
        assert!(s.into_sequences().1.unwrap().contains("different lengths"));
    }

    /// Found by fuzzing: a line before the first header that starts with
    /// `\r` was taken for a blank line and dropped from every slice.
    #[test]
    fn fasta_text_before_the_first_header_starting_with_cr() {
        for chunk in [1, 3, 100] {
            let (_, s) = events(RecordFormat::Fasta, b"\rjunk\n>a\nAC\n", chunk);
            let e = s.error().expect("refused");
            assert_eq!(e.line, Some(1), "chunk {chunk}");
            assert!(
                e.message.contains("expected a FASTA header"),
                "{}",
                e.message
            );
            // A blank CRLF line (and a lone `\r` line) before it is fine.
            for ok in [&b"\r\n>a\nAC\n"[..], b"\r\n;c\n\n>a\nAC\n"] {
                let (ev, s) = events(RecordFormat::Fasta, ok, chunk);
                assert!(s.error().is_none(), "chunk {chunk}: {:?}", s.error());
                assert!(ev.iter().any(|e| matches!(e, Event::Record { .. })));
            }
        }
    }

    #[test]
    fn vcf_header_lines() {
        let data = b"##fileformat=VCFv4.2\n#CHROM\tPOS\n1\t10\n1\t20";
        let (ev, s) = events(RecordFormat::Vcf, data, 4);
        assert_eq!(offsets(&ev), vec![32, 37]);
        assert_eq!(s.header().unwrap().1, 32);
        assert_eq!(s.records(), 2);
    }
}
