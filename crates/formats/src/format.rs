//! File formats, named by file extensions.

use std::fmt;

use crate::error::{Error, Result};

/// The record layout of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordLayout {
    /// Comma-separated values with a header line (RFC 4180 quoting).
    Csv,
    /// Tab-separated values with a header line.
    Tsv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Whole-file compression of a text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Not compressed.
    None,
    /// gzip (several concatenated members are read as one stream).
    Gzip,
    /// Zstandard.
    Zstd,
}

/// The compression of the pages of a Parquet file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParquetCodec {
    /// Snappy (what `parquet` and `snappy.parquet` write).
    Snappy,
    /// Zstandard.
    Zstd,
    /// gzip.
    Gzip,
    /// No compression.
    Uncompressed,
}

/// A file format: a layout, plus its compression, as named by an extension.
///
/// ```
/// use tessera_formats::{FileFormat, RecordLayout, Codec};
/// let f = FileFormat::from_name("land/table/part-1.csv.gz").unwrap();
/// assert_eq!((f.layout, f.codec), (RecordLayout::Csv, Codec::Gzip));
/// assert_eq!(f.extension(), "csv.gz");
/// assert_eq!(FileFormat::from_name("t_0.snappy.parquet").unwrap().extension(), "snappy.parquet");
/// assert!(FileFormat::from_name("notes.txt").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileFormat {
    /// How records are laid out.
    pub layout: RecordLayout,
    /// Compression of the whole file (text layouts only).
    pub codec: Codec,
    /// Page compression (Parquet only).
    pub parquet: ParquetCodec,
    /// The extension this format was named by (`parquet` and
    /// `snappy.parquet` hold the same bytes but name different tables).
    ext: &'static str,
}

const TEXT: [(&str, RecordLayout); 5] = [
    ("csv", RecordLayout::Csv),
    ("tsv", RecordLayout::Tsv),
    ("jsonl", RecordLayout::Jsonl),
    ("ndjson", RecordLayout::Jsonl),
    ("json", RecordLayout::Jsonl),
];
const CODECS: [(&str, Codec); 5] = [
    ("", Codec::None),
    ("gz", Codec::Gzip),
    ("gzip", Codec::Gzip),
    ("zst", Codec::Zstd),
    ("zstd", Codec::Zstd),
];
const PARQUET: [(&str, ParquetCodec); 5] = [
    ("parquet", ParquetCodec::Snappy),
    ("snappy.parquet", ParquetCodec::Snappy),
    ("zstd.parquet", ParquetCodec::Zstd),
    ("gzip.parquet", ParquetCodec::Gzip),
    ("uncompressed.parquet", ParquetCodec::Uncompressed),
];

/// Every extension tessera knows, longest first (so `snappy.parquet` wins over `parquet`).
fn known() -> &'static [(&'static str, FileFormat)] {
    static KNOWN: std::sync::OnceLock<Vec<(&'static str, FileFormat)>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut v: Vec<(&'static str, FileFormat)> = Vec::new();
        for (t, layout) in TEXT {
            for (c, codec) in CODECS {
                let ext: &'static str = if c.is_empty() {
                    t
                } else {
                    Box::leak(format!("{t}.{c}").into_boxed_str())
                };
                v.push((
                    ext,
                    FileFormat {
                        layout,
                        codec,
                        parquet: ParquetCodec::Snappy,
                        ext,
                    },
                ));
            }
        }
        for (ext, pc) in PARQUET {
            v.push((
                ext,
                FileFormat {
                    layout: RecordLayout::Parquet,
                    codec: Codec::None,
                    parquet: pc,
                    ext,
                },
            ));
        }
        v.sort_by_key(|(e, _)| std::cmp::Reverse(e.len()));
        v
    })
}

impl FileFormat {
    /// The format of a file name (or key), from its extension,
    /// case-insensitively; `None` when the extension is not a known format.
    pub fn from_name(name: &str) -> Option<FileFormat> {
        let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
        known().iter().find_map(|(ext, f)| {
            let cut = base.len().checked_sub(ext.len() + 1)?;
            (base.ends_with(ext) && base.as_bytes()[cut] == b'.' && cut > 0).then_some(*f)
        })
    }

    /// The format named by an extension such as `csv.gz` or `.zstd.parquet`.
    pub fn from_extension(ext: &str) -> Result<FileFormat> {
        let e = ext.trim_start_matches('.').to_ascii_lowercase();
        known()
            .iter()
            .find(|(k, _)| *k == e)
            .map(|(_, f)| *f)
            .ok_or_else(|| Error::UnknownFormat {
                name: ext.to_string(),
                expected: FileFormat::names(),
            })
    }

    /// The extensions tessera reads, for messages.
    pub fn names() -> String {
        "csv, tsv, jsonl (also ndjson, json), each optionally .gz or .zst; parquet, snappy.parquet, zstd.parquet, gzip.parquet, uncompressed.parquet".to_string()
    }

    /// The extension, without the leading dot.
    pub fn extension(&self) -> &'static str {
        self.ext
    }

    /// Whether tessera can write this format (text formats are written uncompressed).
    pub fn writable(&self) -> bool {
        self.layout == RecordLayout::Parquet || self.codec == Codec::None
    }

    /// Whether this is a text layout (CSV, TSV, JSON Lines).
    pub fn is_text(&self) -> bool {
        self.layout != RecordLayout::Parquet
    }

    /// The field delimiter of a delimited layout.
    pub fn delimiter(&self) -> u8 {
        match self.layout {
            RecordLayout::Tsv => b'\t',
            _ => b',',
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        let f = |n: &str| FileFormat::from_name(n).map(|f| f.extension());
        assert_eq!(f("a.csv"), Some("csv"));
        assert_eq!(f("a.CSV.GZ"), Some("csv.gz"));
        assert_eq!(f("dir.parquet/a.tsv"), Some("tsv"));
        assert_eq!(f("x.v2.jsonl.zst"), Some("jsonl.zst"));
        assert_eq!(f("t_3.zstd.parquet"), Some("zstd.parquet"));
        assert_eq!(f("t_3.parquet"), Some("parquet"));
        assert_eq!(f("snappy.parquet"), Some("parquet"));
        assert_eq!(f(".csv"), None);
        assert_eq!(f("csv"), None);
        assert_eq!(f("a.txt"), None);
        assert_eq!(f("a.gz"), None);
        assert!(FileFormat::from_extension("parquet.snappy").is_err());
        assert_eq!(
            FileFormat::from_extension(".snappy.parquet")
                .unwrap()
                .parquet,
            ParquetCodec::Snappy
        );
        assert!(FileFormat::from_extension("csv.gz").unwrap().is_text());
        assert!(!FileFormat::from_extension("csv.gz").unwrap().writable());
    }
}
