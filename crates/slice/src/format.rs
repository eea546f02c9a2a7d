//! Record formats and compressions that can be sliced.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How the records of an object are laid out (after decompression).
///
/// More formats may be added: the enum is `#[non_exhaustive]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RecordFormat {
    /// Comma-separated values: a header line, then records; a quoted field
    /// may contain newlines (RFC 4180 `"` quoting).
    Csv,
    /// Tab-separated values: a header line, then one record per line.
    Tsv,
    /// Plain text: one record per line.
    Text,
    /// JSON Lines: one record per line.
    Jsonl,
    /// FASTA: a record is a `>` header line and its sequence lines.
    Fasta,
    /// FASTQ: a record is four lines (`@` name, sequence, `+`, qualities).
    Fastq,
    /// VCF: `#` header lines, then one record per line.
    Vcf,
}

impl RecordFormat {
    /// Every format, in documentation order.
    pub const ALL: &'static [RecordFormat] = &[
        RecordFormat::Csv,
        RecordFormat::Tsv,
        RecordFormat::Text,
        RecordFormat::Jsonl,
        RecordFormat::Fasta,
        RecordFormat::Fastq,
        RecordFormat::Vcf,
    ];

    /// The name used on the command line and in index and slice files.
    pub fn name(self) -> &'static str {
        match self {
            RecordFormat::Csv => "csv",
            RecordFormat::Tsv => "tsv",
            RecordFormat::Text => "text",
            RecordFormat::Jsonl => "jsonl",
            RecordFormat::Fasta => "fasta",
            RecordFormat::Fastq => "fastq",
            RecordFormat::Vcf => "vcf",
        }
    }

    /// Whether records are preceded by a header that every slice repeats.
    pub fn has_header(self) -> bool {
        matches!(
            self,
            RecordFormat::Csv | RecordFormat::Tsv | RecordFormat::Vcf
        )
    }

    /// Guess the format from an object name (`reads.fq.gz` → FASTQ).
    pub fn from_name(name: &str) -> Option<RecordFormat> {
        let lower = name.to_ascii_lowercase();
        let stem = ["gz", "bgz", "bgzf"]
            .iter()
            .find_map(|ext| lower.strip_suffix(&format!(".{ext}")))
            .unwrap_or(&lower);
        let ext = stem.rsplit('.').next()?;
        Some(match ext {
            "csv" => RecordFormat::Csv,
            "tsv" | "tab" => RecordFormat::Tsv,
            "txt" | "text" | "log" => RecordFormat::Text,
            "jsonl" | "ndjson" => RecordFormat::Jsonl,
            "fa" | "fasta" | "fna" | "faa" | "ffn" | "frn" | "fas" => RecordFormat::Fasta,
            "fq" | "fastq" => RecordFormat::Fastq,
            "vcf" => RecordFormat::Vcf,
            _ => return None,
        })
    }
}

impl fmt::Display for RecordFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RecordFormat {
    type Err = String;

    /// Parse a format name; a compression suffix (`fastq.gz`) is accepted
    /// and ignored, since compression is detected from the bytes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let base = lower
            .strip_suffix(".gz")
            .or_else(|| lower.strip_suffix(".bgz"))
            .unwrap_or(&lower);
        Ok(match base {
            "csv" => RecordFormat::Csv,
            "tsv" => RecordFormat::Tsv,
            "text" | "txt" | "lines" => RecordFormat::Text,
            "jsonl" | "ndjson" | "json-lines" => RecordFormat::Jsonl,
            "fasta" | "fa" => RecordFormat::Fasta,
            "fastq" | "fq" => RecordFormat::Fastq,
            "vcf" => RecordFormat::Vcf,
            _ => {
                return Err(format!(
                    "unknown format `{s}`; expected one of: csv, tsv, text, jsonl, fasta, fastq, vcf (with .gz for compressed objects)"
                ))
            }
        })
    }
}

/// How the object's bytes are compressed. Detected from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// Not compressed: slices are plain byte ranges.
    None,
    /// gzip (one or more members): slices start at deflate checkpoints.
    Gzip,
    /// BGZF (blocked gzip, as written by `bgzip`): slices start at blocks.
    Bgzf,
}

impl Compression {
    /// Detect the compression from the first bytes of an object.
    pub fn detect(head: &[u8]) -> Compression {
        if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
            if is_bgzf_header(head) {
                Compression::Bgzf
            } else {
                Compression::Gzip
            }
        } else {
            Compression::None
        }
    }

    /// The name used in index and slice files.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bgzf => "bgzf",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a gzip member header carries the BGZF `BC` extra subfield.
pub(crate) fn is_bgzf_header(h: &[u8]) -> bool {
    h.len() >= 18
        && h[0] == 0x1f
        && h[1] == 0x8b
        && h[2] == 8
        && h[3] & 4 != 0
        && u16::from_le_bytes([h[10], h[11]]) >= 6
        && h[12] == b'B'
        && h[13] == b'C'
        && u16::from_le_bytes([h[14], h[15]]) == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_extensions() {
        for &f in RecordFormat::ALL {
            assert_eq!(f.name().parse::<RecordFormat>().unwrap(), f);
        }
        assert_eq!(
            "fastq.gz".parse::<RecordFormat>().unwrap(),
            RecordFormat::Fastq
        );
        assert!("bam"
            .parse::<RecordFormat>()
            .unwrap_err()
            .contains("unknown format `bam`"));
        assert_eq!(
            RecordFormat::from_name("s3://b/reads.fq.gz"),
            Some(RecordFormat::Fastq)
        );
        assert_eq!(
            RecordFormat::from_name("x/calls.vcf.bgz"),
            Some(RecordFormat::Vcf)
        );
        assert_eq!(
            RecordFormat::from_name("genome.fa"),
            Some(RecordFormat::Fasta)
        );
        assert_eq!(RecordFormat::from_name("README"), None);
        assert_eq!(RecordFormat::from_name("data.bin"), None);
    }

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::detect(b"@r1\nACGT\n"), Compression::None);
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        let mut bgzf = vec![
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 0, 0,
        ];
        assert_eq!(Compression::detect(&bgzf), Compression::Bgzf);
        bgzf[12] = b'X';
        assert_eq!(Compression::detect(&bgzf), Compression::Gzip);
    }
}
