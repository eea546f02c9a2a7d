//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tessera_store::StoreOptions;

/// tessera: one tool for data in object storage.
///
/// Locations are URLs (s3://bucket/prefix, gs://…, az://…, file:///abs/path,
/// memory://name) or plain local paths. S3 credentials come from the standard
/// AWS chain (environment, profiles, web identity, instance metadata).
#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// AWS profile from ~/.aws/config and ~/.aws/credentials [default: AWS_PROFILE].
    /// An explicit --profile takes precedence over keys in the environment.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:3900, with path-style
    /// addressing [default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's endpoint_url].
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region (default: AWS_REGION, the profile's region, or us-east-1).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl Global {
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            profile: self.profile.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            max_retries: None,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every object under a prefix (recursive, all pages, in parallel).
    Ls(LsArgs),
    /// Build and query manifests: Parquet indexes of object keys.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Pack files of any format into evenly sized table files.
    #[command(
        after_help = "Examples:\n  tessera pack s3://bucket/land s3://bucket/db sales\n  tessera pack land db sales --output-ext csv --max-file-size 64MiB --suffix eu\n  tessera pack land db sales --partition date=2024-03-01\n  tessera pack land db sales --partition-by country --schema schema.json\n  tessera pack --compact db sales\n\nFiles are named {TABLE}_{N}.{EXT} or {TABLE}_{SUFFIX}_{N}.{EXT}. The latest file, if under\nthe limit, is rewritten with new rows appended; then N+1, N+2, ... Inputs already packed\n(same URL and ETag) are skipped. A pack killed at any point can simply be run again."
    )]
    Pack(PackArgs),
    /// Generate a small demo in ./tessera-data and walk through tessera.
    Quickstart(QuickstartArgs),
}

#[derive(Args, Debug)]
pub struct PackArgs {
    /// INPUT_BASE OUTPUT_BASE TABLE (with --compact: OUTPUT_BASE TABLE).
    /// Every file under INPUT_BASE/TABLE/ is packed into OUTPUT_BASE/TABLE/.
    #[arg(value_name = "LOCATIONS", num_args = 2..=3, required = true)]
    pub args: Vec<String>,
    /// Name files {TABLE}_{SUFFIX}_{N}.{EXT}.
    #[arg(long, value_name = "SUFFIX")]
    pub suffix: Option<String>,
    /// Output format: csv, tsv, jsonl, parquet, snappy.parquet, zstd.parquet, uncompressed.parquet.
    #[arg(long, value_name = "EXT")]
    pub output_ext: Option<String>,
    /// Read only input files with this extension (e.g. csv, jsonl.gz, parquet).
    #[arg(long, value_name = "EXT")]
    pub input_ext: Option<String>,
    /// Size limit of output files (B, KB, MB, GB, KiB, MiB, GiB).
    #[arg(long, default_value = "256MB", value_name = "SIZE")]
    pub max_file_size: String,
    /// Write into the Hive partition folder KEY=VALUE (repeatable, nested in order).
    #[arg(long, value_name = "KEY=VALUE")]
    pub partition: Vec<String>,
    /// Split rows into one partition folder per value of COLUMN.
    #[arg(long, value_name = "COLUMN")]
    pub partition_by: Option<String>,
    /// Cast columns to declared types: a JSON list of {"name": ..., "type": ...} (Arrow type names).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Print the plan (inputs, bytes, files rewritten and created) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebalance an existing table: merge small files, split oversized ones.
    #[arg(long)]
    pub compact: bool,
    /// Pack inputs again even if a previous pack consumed them.
    #[arg(long)]
    pub force: bool,
    /// Allow stores that do not enforce conditional writes (e.g. Garage);
    /// you promise that no other pack writes to this table at the same time.
    #[arg(long)]
    pub single_writer: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// The prefix to list: s3://bucket/prefix, a local folder, …
    pub url: String,
    /// Write the URLs to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also print size and last-modified time (tab-separated).
    #[arg(short, long)]
    pub long: bool,
    /// Parallel list requests.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
}

#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Build a manifest from a paths file (one key or URL per line, - for stdin) or a store prefix.
    #[command(
        after_help = "Example:\n  tessera manifest build s3://bucket/data -o manifest.parquet \\\n    --template '**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl'"
    )]
    Build(BuildArgs),
    /// Look up records in a manifest.
    #[command(
        after_help = "Examples:\n  tessera manifest query m.parquet -w gene_id=GENE123 -w tissue_id=45 --exists\n  tessera manifest query m.parquet -w gene_id=GENE123 --format csv\n  tessera manifest query m.parquet --unique tissue_id"
    )]
    Query(QueryArgs),
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Paths file (one key or URL per line; - for stdin) or a prefix to list.
    pub source: String,
    /// Where to write the manifest (local path or URL).
    #[arg(short, long, value_name = "MANIFEST")]
    pub output: String,
    /// Path template: literal text, {name} or {name:string|int32|int64|date}, * (one segment), ** (any segments).
    #[arg(short, long, value_name = "TEMPLATE")]
    pub template: String,
    /// Fail if any path does not match the template.
    #[arg(long)]
    pub strict: bool,
    /// Name of the column holding each object's location.
    #[arg(long, default_value = "file_path", value_name = "NAME")]
    pub location_column: String,
    /// Print the build summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The manifest (local path or URL).
    pub manifest: String,
    /// A condition FIELD=VALUE (repeatable; all must hold).
    #[arg(short = 'w', long = "where", value_name = "FIELD=VALUE")]
    pub conditions: Vec<String>,
    /// Print true or false: does any record match? (exit status 0 either way)
    #[arg(long, group = "mode")]
    pub exists: bool,
    /// Print only the locations of matching records, one per line.
    #[arg(long, group = "mode")]
    pub paths: bool,
    /// Print the number of matching records.
    #[arg(long, group = "mode")]
    pub count: bool,
    /// Print the distinct values of FIELD among all records.
    #[arg(long, group = "mode", value_name = "FIELD")]
    pub unique: Option<String>,
    /// Download every matching object (through the local cache) into DIR.
    #[arg(long, group = "mode", value_name = "DIR")]
    pub download: Option<PathBuf>,
    /// Output format for records and unique values.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Name of the column holding locations (default: from the manifest, or file_path).
    #[arg(long, value_name = "NAME")]
    pub location_column: Option<String>,
}

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Where to create the demo store.
    #[arg(
        long,
        env = "TESSERA_STORE",
        default_value = "./tessera-data",
        value_name = "DIR"
    )]
    pub dir: String,
}
