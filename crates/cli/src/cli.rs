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
    /// The environment's store options (`AWS_*`, `TESSERA_MAX_RETRIES`, …),
    /// with these flags over them.
    pub fn store_options(&self) -> StoreOptions {
        let mut opts = StoreOptions::from_env();
        if let Some(p) = &self.profile {
            opts = opts.with_profile(p.clone());
        }
        if let Some(e) = &self.endpoint {
            opts = opts.with_endpoint(e.clone());
        }
        if let Some(r) = &self.region {
            opts = opts.with_region(r.clone());
        }
        opts
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
    /// Load files into a versioned dataset (a Delta Lake table).
    #[command(
        disable_version_flag = true,
        after_help = "Examples:\n  tessera put shop/events events.csv --date-key event_date --id-key user_id:100000\n  tessera put shop/events more/*.parquet --version 2024-04\n  tessera put reports/daily today.jsonl --keep-last\n  cat rows.csv | tessera put shop/events - --format csv\n\nDatasets live under STORE/datasets/NAMESPACE/NAME/ (STORE: --store, TESSERA_STORE or\n./tessera-data). The first load fixes the partition keys; later loads reuse them."
    )]
    Put(PutArgs),
    /// Read a dataset: all rows, one version key, the last load, or as of an earlier version.
    #[command(
        disable_version_flag = true,
        after_help = "Examples:\n  tessera get shop/events -o events.parquet\n  tessera get shop/events --last\n  tessera get shop/events --version 2024-04 --columns id,amount -o april.csv\n  tessera get shop/events --where \"event_date >= '2024-03-01' AND user_id < 5000\" -v\n  tessera get shop/events --as-of 3\n  tessera get shop/events --as-of 2024-03-01T12:00:00Z"
    )]
    Get(GetArgs),
    /// List, inspect and maintain datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Serve queries over HTTP: /query-parquet, tables, SQL, datasets, manifests.
    #[command(
        after_help = "Examples:\n  tessera serve\n  tessera serve --store s3://bucket/data --config tessera.toml --bind 0.0.0.0:8080 --auth auth.toml\n  tessera serve --new-token --namespace team-a --role write >> auth.toml\n\nConfiguration: the TOML file (--config or TESSERA_CONFIG), then TESSERA_* variables\n(also read from ./.env), then these flags. Docs of every endpoint: http://ADDR/docs/.\nWithout --auth the server only binds to loopback addresses unless --insecure is given."
    )]
    Serve(ServeArgs),
    /// Index a raw object (CSV, TSV, text, JSON Lines, FASTA, FASTQ, VCF, plain, gzip or BGZF; LAS/LAZ/COPC point clouds; COG/tiled GeoTIFF; imzML; a MeasurementSet folder) for slicing.
    #[command(
        after_help = "Examples:\n  tessera index s3://bucket/reads.fastq.gz\n  tessera index genome.fa --fai\n  tessera index calls.vcf.gz --gzi --index-store s3://bucket/indexes\n  tessera index s3://bucket/tile.laz\n\nText formats: one streaming pass. LAS/LAZ and COG: the header and tables only (a few\nranged reads); the index is written beside the object as KEY.tessera-index.json\n(or under --index-store) and records the object's size and ETag. The format is taken\nfrom the name unless --format is given; gzip and BGZF are detected from the bytes."
    )]
    Index(IndexArgs),
    /// Plan slices of an indexed object, or fetch one slice (`tessera slice get`).
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "Examples:\n  tessera slice s3://bucket/reads.fastq.gz --count 64 -o slices.json\n  tessera slice data.csv --bytes 64MiB -o slices.json\n  tessera slice genome.fa --records 1 -o per-sequence.json\n  tessera slice tile.laz --count 16 -o slices.json\n  tessera slice s3://bucket/scene.tif --grid 4x4 -o windows.json\n  tessera slice get slices.json --slice 3 -o part3.fastq\n\nPlanning reads only the index. Each slice in the JSON list is self-contained (URL, ETag,\nbyte ranges, header, decompression checkpoint) and holds no credentials: a worker\nfetches it with its own. A LAS/LAZ slice evaluates to a standalone LAS/LAZ file, a COG slice\nto a standalone GeoTIFF of its window."
    )]
    Slice(SliceArgs),
    /// Generate a small demo in ./tessera-data and walk through tessera.
    Quickstart(QuickstartArgs),
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    /// The object to index (s3://bucket/key, a local path, …).
    pub url: String,
    /// Format: csv, tsv, text, jsonl, fasta, fastq, vcf, las, laz, copc, cog, imzml, ms [default: from the name].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Write the index under this location instead of beside the object.
    #[arg(long, value_name = "URL")]
    pub index_store: Option<String>,
    /// Distance between checkpoints (uncompressed bytes). Smaller: evener
    /// slices, bigger index [default: 64KiB; gzip: 1MiB].
    #[arg(long, value_name = "SIZE")]
    pub spacing: Option<String>,
    /// CSV/TSV: the first line is a record, not a header.
    #[arg(long)]
    pub no_header: bool,
    /// FASTA: also write a samtools-compatible KEY.fai.
    #[arg(long)]
    pub fai: bool,
    /// BGZF: also write a bgzip-compatible KEY.gzi.
    #[arg(long)]
    pub gzi: bool,
    /// LAS/LAZ: also read every point once to record where the points lie,
    /// so that `tessera slice --grid` can cut the cloud into cells.
    #[arg(long)]
    pub spatial: bool,
}

#[derive(Args, Debug)]
pub struct SliceArgs {
    #[command(subcommand)]
    pub command: Option<SliceCommand>,
    /// The indexed object.
    #[arg(required = true)]
    pub url: Option<String>,
    /// About N slices of even size.
    #[arg(long, value_name = "N", group = "strategy")]
    pub count: Option<usize>,
    /// Slices of about SIZE stored bytes each (e.g. 64MiB).
    #[arg(long, value_name = "SIZE", group = "strategy")]
    pub bytes: Option<String>,
    /// Slices of N records each (FASTA: N sequences; LAS/LAZ: N points,
    /// LAZ rounded up to whole chunks; COG: N tiles; MeasurementSet: about N
    /// rows, whole timestamps).
    #[arg(long, value_name = "N", group = "strategy")]
    pub records: Option<u64>,
    /// A grid of COLSxROWS cells (e.g. 4x4): COG tile-aligned windows, COPC
    /// nodes, LAS/LAZ points (after `tessera index --spatial`).
    #[arg(long, value_name = "COLSxROWS", group = "strategy")]
    pub grid: Option<String>,
    /// COG: cut this overview level (0 is the full resolution) into --count
    /// windows; COPC: this level of detail in --count slices (default 1).
    #[arg(long, value_name = "L", conflicts_with_all = ["bytes", "records", "grid", "interval"])]
    pub level: Option<u32>,
    /// MeasurementSets: slices of whole timestamps spanning less than
    /// DURATION each (e.g. 30s, 10min).
    #[arg(long, value_name = "DURATION", group = "strategy")]
    pub interval: Option<String>,
    /// Where the index was written (as given to `tessera index --index-store`).
    #[arg(long, value_name = "URL")]
    pub index_store: Option<String>,
    /// Write the slices (a JSON list) here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum SliceCommand {
    /// Fetch one slice of a slices file and write its records (with the header;
    /// LAS/LAZ: a standalone file).
    Get(SliceGetArgs),
}

#[derive(Args, Debug)]
pub struct SliceGetArgs {
    /// A slices file written by `tessera slice` (`-` for stdin).
    pub slices: String,
    /// The slice number (0-based).
    #[arg(long, value_name = "I")]
    pub slice: usize,
    /// Write here instead of stdout (imzML: the folder that receives the
    /// slice's .imzML and .ibd; a MeasurementSet: the folder that receives
    /// the slice's table folder; on stdout either is a tar stream).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The store tables, datasets and /query-parquet files are read from
    /// [default: the config's store, TESSERA_STORE, or ./tessera-data].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// TOML configuration file (tables, manifests, limits, auth).
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080; port 0 picks a free one].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Auth file: API token hashes and JWT/JWKS settings.
    #[arg(long, value_name = "FILE")]
    pub auth: Option<PathBuf>,
    /// Allow a non-loopback address without --auth.
    #[arg(long)]
    pub insecure: bool,
    /// Allow dataset uploads on a store that does not enforce conditional
    /// writes (e.g. Garage); you promise no other process writes at the same time.
    #[arg(long)]
    pub single_writer: bool,
    /// Print a new API token and the auth-file entry holding its hash, then exit.
    #[arg(long)]
    pub new_token: bool,
    /// Namespace of the new token.
    #[arg(
        long,
        requires = "new_token",
        default_value = "default",
        value_name = "NAME"
    )]
    pub namespace: String,
    /// Role of the new token: read, write or admin.
    #[arg(
        long,
        requires = "new_token",
        default_value = "read",
        value_name = "ROLE"
    )]
    pub role: String,
}

/// Where datasets are.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store holding the datasets (a URL or local folder).
    #[arg(
        long,
        env = "TESSERA_STORE",
        default_value = "./tessera-data",
        value_name = "URL"
    )]
    pub store: String,
    /// The namespace the datasets live in.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub namespace: String,
    /// Allow stores that do not enforce conditional writes (e.g. Garage);
    /// you promise that no other process writes to these datasets at the same time.
    #[arg(long)]
    pub single_writer: bool,
}

#[derive(Args, Debug)]
pub struct PutArgs {
    /// The dataset, e.g. project/dataset.
    pub name: String,
    /// Input files (csv, tsv, jsonl, parquet; .gz/.zst text), or - for stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Partition by the date of COLUMN (per day, month or year).
    #[arg(long, value_name = "COL[:day|month|year]")]
    pub date_key: Option<String>,
    /// Partition by ranges of the integer COLUMN, WIDTH wide (default 100000).
    #[arg(long, value_name = "COL[:WIDTH]")]
    pub id_key: Option<String>,
    /// The load's version key (NOW: the UTC time).
    #[arg(long = "version", default_value = "NOW", value_name = "KEY")]
    pub version_key: String,
    /// Replace all earlier data (earlier versions stay readable with --as-of until vacuumed).
    #[arg(long)]
    pub keep_last: bool,
    /// Input format, for stdin or names without an extension (csv, tsv, jsonl, parquet, csv.gz, ...).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Target size of the data files.
    #[arg(long, default_value = "128MB", value_name = "SIZE")]
    pub target_size: String,
    /// Memory the load may use: rows are grouped by partition in memory up
    /// to a share of it and spilled to local disk (TMPDIR) beyond, however
    /// many partitions the load writes (at least 4MiB).
    #[arg(long, default_value = "1GiB", value_name = "SIZE")]
    pub memory: String,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The dataset.
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only the rows loaded with this version key.
    #[arg(long = "version", value_name = "KEY", conflicts_with = "last")]
    pub version_key: Option<String>,
    /// Only the rows of the most recent load.
    #[arg(long)]
    pub last: bool,
    /// The dataset as of a Delta version number or a time (2024-03-01T12:00:00Z).
    #[arg(long, value_name = "VERSION|TIME")]
    pub as_of: Option<String>,
    /// Only rows matching this SQL predicate.
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Only these columns, comma-separated, in this order.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Write to this file or URL; the format comes from its extension (csv, tsv, jsonl,
    /// parquet, arrow for an Arrow IPC stream).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<String>,
    /// Format on stdout: csv, tsv, jsonl or arrow (an Arrow IPC stream).
    #[arg(long, default_value = "csv", value_name = "FORMAT")]
    pub format: String,
}

#[derive(Subcommand, Debug)]
pub enum DatasetsCommand {
    /// List datasets (whose names start with PREFIX).
    List(ListArgs),
    /// The versions of a dataset: time, operation, version key, rows.
    History(HistoryArgs),
    /// Delete a dataset and all its versions.
    Rm(RmArgs),
    /// Delete data files no version younger than --retain needs.
    Vacuum(VacuumArgs),
    /// Merge small files of each partition into files of the target size.
    Compact(CompactArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only datasets whose name starts with this.
    #[arg(default_value = "")]
    pub prefix: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The dataset.
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only the newest N versions.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// The dataset.
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Really delete (required).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct VacuumArgs {
    /// The dataset.
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep what versions younger than this need (e.g. 7d, 12h, 0s).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub retain: String,
    /// Only list what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// The dataset.
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Target size of the merged files.
    #[arg(long, default_value = "128MB", value_name = "SIZE")]
    pub target_size: String,
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
    /// Memory a split by column may use: rows wait grouped by folder in
    /// memory up to a share of it and in TMPDIR beyond, and the folders'
    /// files are written in turn (at least 4MiB).
    #[arg(
        long,
        default_value = "1GiB",
        value_name = "SIZE",
        requires = "partition_by"
    )]
    pub memory: String,
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
pub enum OutputFormat {
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
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
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
    /// Do not start the server at the end (it starts only when run from a
    /// terminal anyway).
    #[arg(long)]
    pub no_serve: bool,
    /// Address the demo server listens on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: String,
}
