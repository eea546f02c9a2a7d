//! The text record formats (CSV, TSV, text, JSON Lines, FASTA, FASTQ, VCF;
//! plain, gzip or BGZF) as one [`SliceFormat`]: the registry's view of
//! [`Index`] and [`Slice`], whose JSON is already an [`AnyIndex`] /
//! [`AnySlice`] envelope with the text formats' own fields.

use std::io::Write;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_store::Location;

use crate::error::{Error, Result};
use crate::format::RecordFormat;
use crate::index::Index;
use crate::plugin::{AnyIndex, AnySlice, BoxFuture, IndexRequest, SliceFormat};
use crate::slice::{Slice, Strategy};

/// The text record formats, for a [`Registry`](crate::Registry).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordFormats;

const NAMES: &[&str] = &["csv", "tsv", "text", "jsonl", "fasta", "fastq", "vcf"];

fn convert<T: DeserializeOwned>(v: &impl Serialize, what: &str, url: &str) -> Result<T> {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::InvalidIndex {
            index: url.to_string(),
            message: format!("not a text {what}: {e}"),
        })
}

impl Index {
    /// This index as the registry's [`AnyIndex`] (the same JSON).
    pub fn to_any(&self) -> Result<AnyIndex> {
        convert(self, "index", &self.url)
    }

    /// A text format's index from the registry's [`AnyIndex`].
    pub fn from_any(index: &AnyIndex) -> Result<Index> {
        let i: Index = convert(index, "index", &index.url)?;
        i.check(&index.url)?;
        Ok(i)
    }
}

impl Slice {
    /// This slice as the registry's [`AnySlice`] (the same JSON).
    pub fn to_any(&self) -> Result<AnySlice> {
        convert(self, "slice", &self.url)
    }

    /// A text format's slice from the registry's [`AnySlice`].
    pub fn from_any(slice: &AnySlice) -> Result<Slice> {
        let s: Slice = serde_json::to_value(slice)
            .and_then(serde_json::from_value)
            .map_err(|e| slice.invalid(format!("not a text slice: {e}")))?;
        s.validate()?;
        Ok(s)
    }
}

impl SliceFormat for RecordFormats {
    fn names(&self) -> &'static [&'static str] {
        NAMES
    }

    fn resolve(&self, name: &str) -> Option<&'static str> {
        name.parse::<RecordFormat>().ok().map(RecordFormat::name)
    }

    fn detect(&self, object_name: &str) -> Option<&'static str> {
        RecordFormat::from_name(object_name).map(RecordFormat::name)
    }

    fn index<'a>(&'a self, request: IndexRequest<'a>) -> BoxFuture<'a, Result<AnyIndex>> {
        Box::pin(async move {
            let format: RecordFormat = request
                .format
                .parse()
                .map_err(|e: String| Error::internal(e))?;
            let progress = request.progress.clone();
            let mut build = Index::build(request.object)
                .with_format(format)
                .with_header(request.header)
                .with_progress(move |n| progress(n));
            if let Some(s) = request.spacing {
                build = build.with_spacing(s);
            }
            let (index, _) = build.await?;
            index.to_any()
        })
    }

    fn plan(&self, index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
        Index::from_any(index)?
            .plan(strategy)
            .run()?
            .iter()
            .map(Slice::to_any)
            .collect()
    }

    fn fetch<'a>(
        &'a self,
        slice: &'a AnySlice,
        object: &'a Location,
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let slice = Slice::from_any(slice)?;
            slice.fetch(object).write_to(out).await
        })
    }
}
