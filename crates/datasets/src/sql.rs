//! SQL over files, folders, datasets and in-memory tables (DataFusion),
//! shared by the server's `/v1/sql` and the Python package.
//!
//! [`source_table`] turns a Parquet, CSV, TSV or JSON Lines file, or a
//! folder of them (Hive-style `key=value` partition folders become
//! columns), into a table; a dataset's table comes from
//! [`crate::Get::table_provider`]. [`query`] runs one read-only statement.

use std::sync::Arc;

use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::datasource::file_format::csv::CsvFormat;
use deltalake::datafusion::datasource::file_format::json::JsonFormat;
use deltalake::datafusion::datasource::file_format::parquet::ParquetFormat;
use deltalake::datafusion::datasource::file_format::FileFormat;
use deltalake::datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use deltalake::datafusion::execution::SendableRecordBatchStream;
use deltalake::datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use tessera_store::{Location, StoreKind};

use crate::error::{Error, Result};

/// A session whose strings are plain `Utf8` (what JSON/CSV clients and
/// most Arrow consumers expect).
pub fn session_config() -> SessionConfig {
    SessionConfig::new()
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
}

/// The format of a source from its name: `csv`, `tsv`, `jsonl` or
/// `parquet` (compression suffixes `.gz` / `.zst` ignored).
pub fn guess_format(src: &str) -> &'static str {
    let s = src.trim_end_matches(".gz").trim_end_matches(".zst");
    if s.ends_with(".csv") {
        "csv"
    } else if s.ends_with(".tsv") {
        "tsv"
    } else if s.ends_with(".jsonl") || s.ends_with(".ndjson") || s.ends_with(".json") {
        "jsonl"
    } else {
        "parquet"
    }
}

/// A table over the file or folder at `loc`.
///
/// `folder`: read `loc` as a folder of files (Hive partition folders become
/// string columns); otherwise it is one file. `format`: `parquet`, `csv`,
/// `tsv`, `jsonl` (or `json`); `None` guesses from the name. The store of
/// `loc` is registered with the session's runtime.
pub async fn source_table(
    ctx: &SessionContext,
    loc: &Location,
    folder: bool,
    format: Option<&str>,
) -> Result<Arc<dyn TableProvider>> {
    let invalid = |reason: String| Error::InvalidSource {
        url: loc.url(),
        reason,
    };
    let (store_url, table_url) = listing_urls(loc, folder).map_err(invalid)?;
    ctx.runtime_env()
        .register_object_store(&store_url, loc.store().clone());
    let table_url = ListingTableUrl::parse(&table_url).map_err(|e| invalid(e.to_string()))?;
    let format = format.unwrap_or_else(|| guess_format(loc.path().as_ref()));
    let file_format: Arc<dyn FileFormat> = match format {
        "csv" => Arc::new(CsvFormat::default().with_has_header(true)),
        "tsv" => Arc::new(
            CsvFormat::default()
                .with_has_header(true)
                .with_delimiter(b'\t'),
        ),
        "jsonl" | "json" => Arc::new(JsonFormat::default()),
        "parquet" => Arc::new(ParquetFormat::default().with_force_view_types(false)),
        other => {
            return Err(invalid(format!(
                "unknown format '{other}' (expected parquet, csv, tsv or jsonl)"
            )))
        }
    };
    let mut opts = ListingOptions::new(file_format).with_file_extension("");
    let st = ctx.state();
    if folder {
        let parts = opts
            .infer_partitions(&st, &table_url)
            .await
            .map_err(|e| invalid(format!("cannot list it: {e}")))?;
        opts = opts.with_table_partition_cols(
            parts
                .into_iter()
                .map(|p| (p, arrow::datatypes::DataType::Utf8))
                .collect(),
        );
    }
    let schema = opts
        .infer_schema(&st, &table_url)
        .await
        .map_err(|e| invalid(format!("cannot read its schema: {e}")))?;
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(opts)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| invalid(e.to_string()))?;
    Ok(Arc::new(table))
}

/// Whether a source is a folder: its URL ends in `/`, or no object is there.
pub async fn is_folder(url: &str, loc: &Location) -> bool {
    url.ends_with('/') || loc.head().await.is_err()
}

/// The object store URL to register and the table URL for DataFusion.
fn listing_urls(loc: &Location, dir: bool) -> std::result::Result<(url::Url, String), String> {
    let key = loc.path().as_ref();
    let slash = if dir && !key.is_empty() { "/" } else { "" };
    let (root, table) = match loc.kind() {
        StoreKind::Local => ("file:///".to_string(), format!("file:///{key}{slash}")),
        _ => {
            let root = loc.root().trim_end_matches('/').to_string();
            let t = if key.is_empty() {
                format!("{root}/")
            } else {
                format!("{root}/{key}{slash}")
            };
            (root, t)
        }
    };
    let u = url::Url::parse(&root).map_err(|e| format!("{root}: {e}"))?;
    Ok((u, table))
}

/// Plan one read-only statement (SELECT, WITH, VALUES, EXPLAIN; anything
/// else is refused) over the tables registered in `ctx`, optionally limited
/// to `limit` rows, and start it.
pub async fn query(
    ctx: &SessionContext,
    sql: &str,
    limit: Option<usize>,
) -> Result<SendableRecordBatchStream> {
    let opts = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let bad = |e: deltalake::datafusion::error::DataFusionError| Error::InvalidQuery {
        reason: e.to_string(),
    };
    let mut df = ctx.sql_with_options(sql, opts).await.map_err(bad)?;
    if limit.is_some() {
        df = df.limit(0, limit).map_err(bad)?;
    }
    df.execute_stream().await.map_err(bad)
}
