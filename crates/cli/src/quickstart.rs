//! `tessera quickstart`: a generated demo store and a guided tour.

use anyhow::{Context, Result};
use tessera_datasets::{DateKey, Granularity, IdKey};
use tessera_manifest::{BuildManifest, OpenManifest, Template};
use tessera_store::{format_size, Cache, Location, PublishMode, StoreOptions};

use crate::cli::QuickstartArgs;

const GENES: usize = 40;
const TEMPLATE: &str = "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl";

fn tissues_of(gene: usize) -> impl Iterator<Item = usize> {
    // A deterministic, uneven layout: each gene has 3 to 8 tissues.
    let n = 3 + (gene * 7) % 6;
    (0..n).map(move |i| 1 + (gene * 13 + i * 11) % 60)
}

fn step(n: usize, title: &str, command: &str) {
    println!("\n[{n}] {title}\n    $ {command}");
}

pub async fn run(args: QuickstartArgs, opts: &StoreOptions) -> Result<i32> {
    let root = Location::open(&args.dir, opts).await?;
    let objects = root.join("demo/objects")?;
    println!("tessera quickstart: a demo store in {}", root.url());

    // 1. Generate objects in the reference gene/tissue layout.
    let mut written = 0usize;
    let mut bytes = 0u64;
    for g in 0..GENES {
        let gene = format!("GENE{g:05}");
        for t in tissues_of(g) {
            let body = format!("model for {gene} in tissue {t}\n").repeat(8);
            bytes += body.len() as u64;
            objects
                .join(&format!("v1/ad/{gene}/model_tissue_{t}.tl"))?
                .publish(body, PublishMode::Overwrite)
                .await?;
            written += 1;
        }
    }
    objects
        .join("v1/README.txt")?
        .publish(
            "not a model: skipped by the template\n",
            PublishMode::Overwrite,
        )
        .await?;
    step(
        1,
        "Generated objects in the gene/tissue layout",
        &format!("tessera ls {}", objects.url()),
    );
    println!(
        "    {written} model files ({}) + 1 file that does not match the layout",
        format_size(bytes)
    );

    // 2. Build a manifest from a listing.
    let manifest_loc = root.join("demo/manifest.parquet")?;
    let listing = objects.list_all(16).await?;
    let mut text = String::new();
    for o in &listing {
        text.push_str(&objects.url_of(&o.location));
        text.push('\n');
    }
    let summary = BuildManifest::new(Template::parse(TEMPLATE)?, text)
        .write_to(&manifest_loc)
        .await?;
    step(
        2,
        "Built a manifest (Parquet, sorted by gene_id and tissue_id)",
        &format!(
            "tessera manifest build {} -o {} --template '{TEMPLATE}'",
            objects.url(),
            manifest_loc.url()
        ),
    );
    println!(
        "    {} paths read, {} matched, {} skipped, {}",
        summary.read,
        summary.matched,
        summary.skipped,
        format_size(summary.bytes_written)
    );

    // 3. Look things up.
    let m = OpenManifest::new(&manifest_loc).await?;
    let gene = "GENE00007";
    let tissue = tissues_of(7).next().unwrap_or(1).to_string();
    step(
        3,
        "Does a gene/tissue combination exist?",
        &format!(
            "tessera manifest query {} --where gene_id={gene} --where tissue_id={tissue} --exists",
            manifest_loc.url()
        ),
    );
    let conds = [("gene_id", gene), ("tissue_id", tissue.as_str())];
    println!("    {}", m.exists(&conds)?);
    println!(
        "    (and gene_id=NOPE: {})",
        m.exists(&[("gene_id", "NOPE")])?
    );

    step(
        4,
        "Where is its file?",
        &format!(
            "tessera manifest query {} --where gene_id={gene} --where tissue_id={tissue} --paths",
            manifest_loc.url()
        ),
    );
    let location = m
        .location(&conds)?
        .context("the demo record is missing")?
        .to_string();
    println!("    {location}");

    step(
        5,
        "All records of one gene",
        &format!(
            "tessera manifest query {} --where gene_id={gene}",
            manifest_loc.url()
        ),
    );
    let recs = m.records(&[("gene_id", gene)])?;
    println!("    {} records", recs.num_rows());

    step(
        6,
        "Distinct tissues",
        &format!(
            "tessera manifest query {} --unique tissue_id",
            manifest_loc.url()
        ),
    );
    let tissues = m.unique("tissue_id")?;
    println!(
        "    {} distinct tissue ids, first: {}",
        tissues.len(),
        tissues[0]
    );

    step(
        7,
        "Fetch the object into the local cache",
        &format!("tessera manifest query {} --where gene_id={gene} --where tissue_id={tissue} --download ./downloads", manifest_loc.url()),
    );
    let cache = Cache::from_env()?;
    let local = m.fetch(&conds, &cache, opts).await?;
    println!("    {}", local.display());

    // 8. Pack a small CSV table into evenly sized Parquet files.
    let land = root.join("demo/land")?;
    let packed = root.join("demo/packed")?;
    for dir in [&land, &packed] {
        for o in dir.list_all(8).await? {
            dir.with_path(o.location).delete().await?;
        }
    }
    let mut id = 0;
    for part in 0..3 {
        let mut csv = String::from("id,customer,amount,day\n");
        for _ in 0..4000 {
            csv.push_str(&format!(
                "{id},\"Customer {}, Ltd\",{}.{:02},2024-03-{:02}\n",
                id % 97,
                id % 500,
                id % 100,
                1 + id % 28
            ));
            id += 1;
        }
        land.join(&format!("sales/part-{part}.csv"))?
            .publish(csv, PublishMode::Overwrite)
            .await?;
    }
    step(
        8,
        "Pack a CSV table into Parquet files of 64 KB",
        &format!(
            "tessera pack {} {} sales --max-file-size 64KB",
            land.url(),
            packed.url()
        ),
    );
    // The demo is the only writer, whatever the store.
    let pack = tessera_pack::Pack::new(land.clone(), packed.clone(), "sales")
        .with_max_file_size(64_000)
        .with_single_writer(true);
    let r = pack.clone().await?;
    println!(
        "    {} rows from {} CSV files into {} files:",
        r.rows,
        r.plan.inputs.len(),
        r.outputs.len()
    );
    for o in &r.outputs {
        println!(
            "      {}  {}  {} rows",
            o.path,
            format_size(o.bytes),
            o.rows
        );
    }
    land.join("sales/part-3.csv")?
        .publish(
            "id,customer,amount,day\n12000,\"Late, Inc\",1.50,2024-03-29\n",
            PublishMode::Overwrite,
        )
        .await?;
    let r = pack.await?;
    println!(
        "    run it again after adding part-3.csv: {} new row, appended to {}; the 3 packed files are skipped",
        r.rows,
        r.outputs.first().map(|o| o.path.as_str()).unwrap_or("-")
    );

    // 9. Versioned datasets: two loads, the last one, the history.
    let store = root.clone();
    let ds = tessera_datasets::Datasets::new(store.clone()).with_single_writer(true);
    if ds.location("demo/orders").is_ok() && ds.try_exists("demo/orders").await? {
        ds.remove("demo/orders").await?;
    }
    let orders = |first: i64, n: i64, day: u32| {
        let mut csv = String::from("order_id,order_date,customer_id,amount\n");
        for i in first..first + n {
            csv.push_str(&format!(
                "{i},2024-03-{day:02},{},{}.50\n",
                (i * 37) % 250_000,
                i % 90
            ));
        }
        csv
    };
    let jan = land.join("orders/2024-03-01.csv")?;
    jan.publish(orders(0, 500, 1), PublishMode::Overwrite)
        .await?;
    let feb = land.join("orders/2024-03-02.csv")?;
    feb.publish(orders(500, 300, 2), PublishMode::Overwrite)
        .await?;
    // The CLI's default store is the quickstart's default folder.
    let dir_flag = if matches!(
        args.dir.trim_end_matches('/'),
        "./tessera-data" | "tessera-data"
    ) {
        String::new()
    } else {
        format!(" --store {}", args.dir)
    };
    step(
        9,
        "Versioned datasets: two loads, partitioned by day and customer range",
        &format!(
            "tessera put demo/orders {} --date-key order_date --id-key customer_id:100000 --version day-1{dir_flag}",
            jan.url()
        ),
    );
    let r1 = ds
        .put("demo/orders")
        .with_files(vec![jan.clone()])
        .with_date_key(DateKey::new("order_date", Granularity::Day))
        .with_id_key(IdKey::new("customer_id", 100_000))
        .with_version("day-1")
        .await?;
    let r2 = ds
        .put("demo/orders")
        .with_files(vec![feb.clone()])
        .with_version("day-2")
        .await?;
    println!(
        "    loaded {} rows (key day-1), then {} rows (key day-2): Delta versions {} and {}",
        r1.rows, r2.rows, r1.table_version, r2.table_version
    );
    let last = ds.get("demo/orders").with_last(true).collect().await?;
    println!(
        "    tessera get demo/orders --last{dir_flag}   -> {} rows (the day-2 load)",
        last.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    println!("    tessera datasets history demo/orders{dir_flag}");
    for h in ds.history("demo/orders").await? {
        println!(
            "      version {}  {:16}  key {:8}  {} rows",
            h.version,
            h.operation,
            h.version_key.unwrap_or_default(),
            h.rows.unwrap_or(0)
        );
    }

    // 10. Slicing: a gzip FASTQ indexed once, cut into 8 slices, one fetched.
    let reads = root.join("raw/reads.fastq.gz")?;
    reads
        .publish(fastq_gz(20_000)?, PublishMode::Overwrite)
        .await?;
    step(
        10,
        "Slicing: index a FASTQ.gz once, plan 8 slices from the index, fetch one",
        &format!("tessera index {} --spacing 256KiB", reads.url()),
    );
    let (index, stats) = tessera_slice::Index::build(&reads)
        .with_spacing(256 << 10)
        .await?;
    index
        .save(&tessera_slice::Index::location_for(&reads, None)?)
        .await?;
    println!(
        "    {} reads, {} gzip checkpoints (with their 32 KiB windows), {:.2} s",
        index.records,
        index.checkpoints.len(),
        stats.seconds
    );
    let slices = index.plan(tessera_slice::Strategy::Count(8)).run()?;
    let slices_loc = root.join("slices.json")?;
    slices_loc
        .publish(serde_json::to_vec_pretty(&slices)?, PublishMode::Overwrite)
        .await?;
    let slices_arg = slices_loc
        .local_path()
        .map_or_else(|| slices_loc.url(), |p| p.display().to_string());
    println!(
        "    $ tessera slice {} --count 8 -o {slices_arg}",
        reads.url()
    );
    for s in &slices {
        println!(
            "      slice {}: compressed bytes {}..{}, reads {}..{}",
            s.slice,
            s.ranges[0].start,
            s.ranges[0].end,
            s.first_record,
            s.first_record + s.record_count
        );
    }
    let third = slices[3.min(slices.len() - 1)].fetch(&reads).await?;
    let text = String::from_utf8_lossy(&third);
    println!(
        "    $ tessera slice get {slices_arg} --slice 3 | head -4     ({} reads, whole records)",
        text.lines().count() / 4
    );
    for line in text.lines().take(4) {
        println!("      {line}");
    }

    // 10b. A point cloud: a LAS tile sliced in four standalone LAS files.
    let tile = root.join("raw/tile.las")?;
    tile.publish(point_cloud(20_000)?, PublishMode::Overwrite)
        .await?;
    println!();
    println!(
        "  Point clouds and rasters too: a LAS tile (LAZ, COPC and Cloud-Optimized GeoTIFFs work the same way)"
    );
    println!("    $ tessera index {}", tile.url());
    let formats = tessera_slice::Registry::builtin();
    let tile_index = formats.index(&tile).await?;
    tile_index
        .save(&tessera_slice::AnyIndex::location_for(&tile, None)?)
        .await?;
    println!(
        "      {} points; the index read the header only",
        tile_index.records
    );
    let tile_slices = formats.plan(&tile_index, tessera_slice::Strategy::Count(4))?;
    let tile_slices_loc = root.join("tile-slices.json")?;
    tile_slices_loc
        .publish(
            serde_json::to_vec_pretty(&tile_slices)?,
            PublishMode::Overwrite,
        )
        .await?;
    let tile_arg = tile_slices_loc
        .local_path()
        .map_or_else(|| tile_slices_loc.url(), |p| p.display().to_string());
    println!("    $ tessera slice {} --count 4 -o {tile_arg}", tile.url());
    for s in &tile_slices {
        let part = formats.fetch(s, &tile).await?;
        println!(
            "      slice {}: points {}..{}  ->  a standalone {} KB LAS file (header counts and bounds its own)",
            s.slice,
            s.first_record,
            s.first_record + s.record_count,
            part.len() / 1000
        );
    }
    println!("    $ tessera slice get {tile_arg} --slice 0 -o part0.las");

    // 11. The query server over all of it.
    let sales = root.join("state=california/dname=sales/sales.parquet")?;
    sales
        .publish(sales_parquet()?, PublishMode::Overwrite)
        .await?;
    let config = format!(
        "# tessera serve --config this-file\nstore = \"{}\"\nbind = \"{}\"\n\n\
         [tables.sales]\nlocation = \"state=california/dname=sales/sales.parquet\"\n\n\
         [tables.orders]\ndataset = \"demo/orders\"\n\n\
         [manifests.models]\nlocation = \"demo/manifest.parquet\"\n",
        root.url(),
        args.bind
    );
    let config_loc = root.join("serve.toml")?;
    config_loc
        .publish(config.clone(), PublishMode::Overwrite)
        .await?;
    let config_arg = match config_loc.local_path() {
        Some(p) => p.display().to_string(),
        None => "serve.toml   (copy it from the store first)".to_string(),
    };
    step(
        11,
        "The query server: the reference /query-parquet endpoint, tables, SQL, datasets, manifests",
        &format!("tessera serve --config {config_arg}"),
    );
    let base = format!("http://{}", args.bind);
    println!("    Try, while it runs:");
    for c in [
        format!("curl '{base}/query-parquet?statename=california&dname=sales&page=0&page_size=5'"),
        format!("curl '{base}/v1/tables'"),
        format!("curl '{base}/v1/tables/sales/schema'"),
        format!("curl '{base}/v1/tables/sales/rows?columns=id,amount&filter=amount:gte:900&sort=-amount&limit=5'"),
        format!("curl '{base}/v1/tables/sales/rows?limit=3&format=csv'"),
        format!("curl -X POST '{base}/v1/sql' -H 'content-type: application/json' -d '{{\"sql\": \"SELECT region, count(*) AS n, sum(amount) AS total FROM sales GROUP BY region ORDER BY region\"}}'"),
        format!("curl '{base}/v1/datasets'"),
        format!("curl '{base}/v1/datasets/demo/orders?last&columns=order_id,amount'"),
        format!("curl '{base}/v1/datasets/demo/orders?view=history'"),
        format!("curl -X POST '{base}/v1/datasets/demo/orders?version=day-3' -H 'content-type: text/csv' --data-binary $'order_id,order_date,customer_id,amount\\n9001,2024-03-03,42,9.50\\n'"),
        format!("curl '{base}/v1/manifests/models/lookup?gene_id=GENE00007'"),
        format!("curl '{base}/v1/manifests/models/unique/tissue_id'"),
        format!("curl -X POST '{base}/v1/slices/plan' -H 'content-type: application/json' -d '{{\"object\": \"raw/reads.fastq.gz\", \"count\": 8}}'"),
        format!("curl '{base}/v1/slices/data?object=raw/reads.fastq.gz&count=8&slice=3' | head -8"),
        format!("curl '{base}/v1/slices/data?object=raw/tile.las&count=4&slice=0' -o part0.las"),
        format!("curl '{base}/healthz'; curl '{base}/metrics'"),
        format!("open {base}/docs/   (every endpoint, with a form to try it)"),
    ] {
        println!("      {c}");
    }

    println!("\nThe same from Python (pip install ./python; see the README's Python tour):");
    for line in [
        "import tessera".to_string(),
        format!("m = tessera.Manifest.open({:?})", manifest_loc.url()),
        format!("m.exists(gene_id={gene:?}, tissue_id={tissue})"),
        format!("m.records(gene_id={gene:?}).to_pandas()"),
        format!(
            "tessera.pack({:?}, {:?}, \"sales\", max_file_size=\"64KB\")",
            land.url(),
            packed.url()
        ),
        format!(
            "ds = tessera.Datasets({:?}, single_writer=True)",
            store.url()
        ),
        "ds.get(\"demo/orders\", last=True).to_pandas()".to_string(),
        "ds.history(\"demo/orders\")".to_string(),
        "tessera.sql(\"SELECT count(*) FROM o\", {\"o\": ds.table(\"demo/orders\")})".to_string(),
        format!("slices = tessera.plan({:?}, count=8)", reads.url()),
        "records = list(slices[0].records())   # slices pickle: hand them to Dask".to_string(),
        format!("tile = tessera.index({:?}); parts = tile.plan(count=4); parts[0].fetch()  # a LAS file", tile.url()),
    ] {
        println!("    {line}");
    }
    println!("\nNext, try:");
    println!(
        "  tessera get demo/orders --where \"order_date = '2024-03-02' AND customer_id < 100000\" -v{dir_flag}"
    );
    println!(
        "  tessera pack --compact {} sales --max-file-size 32KB --dry-run",
        packed.url()
    );
    println!(
        "  tessera manifest query {} --where tissue_id={tissue} --format csv",
        manifest_loc.url()
    );
    println!("  tessera ls s3://your-bucket/prefix -o paths.txt   (with --profile or --endpoint)");
    println!("  tessera --help");

    use std::io::IsTerminal;
    if args.no_serve || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Ok(0);
    }
    let mut cfg = tessera_server::Config::from_toml(&config, "serve.toml")?;
    cfg.store_options = opts.clone();
    let app = tessera_server::Application::build(cfg).await?;
    println!(
        "\nServing {} on http://{} (Ctrl-C to stop; --no-serve skips this)",
        root.url(),
        app.local_addr()
    );
    app.run_until_stopped().await?;
    Ok(0)
}

/// Deterministic reads of 100–150 bases, gzip-compressed.
/// A LAS 1.4 tile of `n` points on a gentle slope (point format 1).
fn point_cloud(n: usize) -> Result<Vec<u8>> {
    let mut b = las::Builder::from((1, 4));
    b.point_format = las::point::Format::new(1)?;
    let t = las::Transform {
        scale: 0.01,
        offset: 0.0,
    };
    b.transforms = las::Vector { x: t, y: t, z: t };
    b.system_identifier = "tessera quickstart".into();
    let mut w = las::Writer::new(std::io::Cursor::new(Vec::new()), b.into_header()?)?;
    let side = (n as f64).sqrt().ceil() as usize;
    for i in 0..n {
        let (x, y) = ((i % side) as f64, (i / side) as f64);
        w.write_point(las::Point {
            x,
            y,
            z: 100.0 + 0.05 * x + 0.02 * y,
            intensity: (i % 4096) as u16,
            return_number: 1,
            number_of_returns: 1,
            gps_time: Some(i as f64 * 0.001),
            ..Default::default()
        })?;
    }
    w.close()?;
    Ok(w.into_inner()?.into_inner())
}

fn fastq_gz(n: usize) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 100 + (x % 51) as usize;
        let seq: String = (0..len)
            .map(|k| b"ACGT"[((x >> (k % 62)) & 3) as usize] as char)
            .collect();
        let qual: String = (0..len)
            .map(|k| (b'5' + ((x >> (k % 60)) % 10) as u8) as char)
            .collect();
        writeln!(enc, "@demo_read_{i} length={len}\n{seq}\n+\n{qual}")?;
    }
    Ok(enc.finish()?)
}

/// The reference app's layout: 1,000 sales rows.
fn sales_parquet() -> Result<Vec<u8>> {
    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let n = 1000i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
    ]));
    let regions = ["north", "south", "east", "west"];
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(1..=n)),
            Arc::new(StringArray::from_iter_values(
                (1..=n).map(|i| format!("Product {}", (b'A' + (i % 26) as u8) as char)),
            )),
            Arc::new(StringArray::from_iter_values(
                (1..=n).map(|i| regions[(i % 4) as usize]),
            )),
            Arc::new(Float64Array::from_iter_values(
                (1..=n).map(|i| ((i * 7919) % 1000) as f64 + 0.5),
            )),
        ],
    )?;
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)?;
    w.write(&batch)?;
    w.close()?;
    Ok(out)
}
