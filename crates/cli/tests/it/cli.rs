//! Tests that run the real `tessera` binary.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

use crate::common::{self, s3_bucket, unique};

const REF: &str = "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl";

/// The binary as `common::tessera` runs it, with its cache in `cwd` and no
/// AWS profile from the caller's environment.
fn tessera(cwd: &Path) -> Command {
    let mut c = common::tessera(cwd);
    c.env("TESSERA_CACHE", cwd.join(".cache"))
        .env_remove("AWS_PROFILE");
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(c: &mut Command) -> Output {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "command failed\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// `common::fails` (exit status 1), and the error is one clear line.
fn fails(c: &mut Command) -> String {
    let e = common::fails(c);
    assert!(e.starts_with("error: "), "one clear error line: {e}");
    e
}

/// A folder of model files in the reference layout, plus one stray file.
fn sample_tree(root: &Path) {
    for g in ["GENE1", "GENE2", "GENE10"] {
        for t in [1, 4, 45] {
            let d = root.join(format!("data/v1/ad/{g}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("model_tissue_{t}.tl")), format!("{g}-{t}")).unwrap();
        }
    }
    std::fs::write(root.join("data/v1/readme.txt"), "x").unwrap();
}

#[test]
fn quickstart_runs_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let o = ok(tessera(dir.path()).arg("quickstart"));
        let out = stdout(&o);
        assert!(out.contains("216 matched"), "{out}");
        assert!(out.contains("    true"), "{out}");
        assert!(out.contains("Next, try"), "{out}");
        assert!(out.contains("20000 reads"), "{out}");
        assert!(out.contains("      slice 7: "), "{out}");
    }
    assert!(dir
        .path()
        .join("tessera-data/demo/manifest.parquet")
        .is_file());
    // The slicing step's files work with the real commands.
    let o =
        ok(tessera(dir.path()).args(["slice", "get", "tessera-data/slices.json", "--slice", "3"]));
    let text = stdout(&o);
    assert!(
        text.starts_with("@demo_read_") && text.lines().count().is_multiple_of(4),
        "{text}"
    );
    ok(tessera(dir.path()).args([
        "slice",
        "tessera-data/raw/reads.fastq.gz",
        "--records",
        "5000",
        "-o",
        "r.json",
    ]));
    let o = ok(tessera(dir.path()).args(["slice", "get", "r.json", "--slice", "1"]));
    assert_eq!(stdout(&o).lines().count(), 5000 * 4);
    // The point cloud step: four standalone LAS files of 5,000 points.
    let out = stdout(&ok(tessera(dir.path()).arg("quickstart")));
    assert!(out.contains("20000 points"), "{out}");
    assert!(out.contains("slice 3: points 15000..20000"), "{out}");
    ok(tessera(dir.path()).args([
        "slice",
        "get",
        "tessera-data/tile-slices.json",
        "--slice",
        "2",
        "-o",
        "part2.las",
    ]));
    let part = std::fs::read(dir.path().join("part2.las")).unwrap();
    assert_eq!(&part[..4], b"LASF");
    let points = u64::from_le_bytes(part[247..255].try_into().unwrap());
    assert_eq!(points, 5000, "the 1.4 header's point count");
}

#[test]
fn ls_lists_recursively_sorted_and_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let o = ok(tessera(dir.path()).args(["ls", "data"]));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 10);
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert!(lines.iter().all(|l| l.starts_with("file:///")));
    assert!(lines
        .iter()
        .any(|l| l.ends_with("data/v1/ad/GENE10/model_tissue_45.tl")));

    ok(tessera(dir.path()).args(["ls", "data", "-o", "paths.txt"]));
    let written = std::fs::read_to_string(dir.path().join("paths.txt")).unwrap();
    assert_eq!(written.lines().count(), 10);

    let e = fails(tessera(dir.path()).args(["ls", "ftp://nope/x"]));
    assert!(e.contains("unsupported scheme"), "{e}");
    // An empty or missing local prefix lists nothing.
    let o = ok(tessera(dir.path()).args(["ls", "does-not-exist"]));
    assert!(stdout(&o).is_empty());
}

#[test]
fn manifest_build_and_query_modes() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let p = dir.path();
    // From a listing.
    let o = ok(tessera(p).args([
        "manifest",
        "build",
        "data",
        "-o",
        "m.parquet",
        "--template",
        REF,
    ]));
    let e = stderr(&o);
    assert!(e.contains("10 paths read, 9 matched, 1 skipped"), "{e}");
    assert!(e.contains("readme.txt"), "skipped examples are shown: {e}");

    // From a paths file and from stdin, with --json.
    ok(tessera(p).args(["ls", "data", "-o", "paths.txt"]));
    let o = ok(tessera(p).args([
        "manifest",
        "build",
        "paths.txt",
        "-o",
        "m2.parquet",
        "-t",
        REF,
        "--json",
    ]));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["matched"], 9);
    assert_eq!(j["skipped"], 1);
    let paths = std::fs::read_to_string(p.join("paths.txt")).unwrap();
    let o = ok(tessera(p)
        .args([
            "manifest",
            "build",
            "-",
            "-o",
            "m3.parquet",
            "-t",
            REF,
            "--json",
        ])
        .write_stdin(paths));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["read"], 10);

    let q = |args: &[&str]| -> String {
        let mut c = tessera(p);
        c.args(["manifest", "query", "m.parquet"]).args(args);
        stdout(&ok(&mut c))
    };
    assert_eq!(
        q(&["-w", "gene_id=GENE2", "-w", "tissue_id=45", "--exists"]),
        "true\n"
    );
    assert_eq!(q(&["-w", "gene_id=GENE3", "--exists"]), "false\n");
    assert_eq!(q(&["-w", "tissue_id=045", "--count"]), "3\n");
    let paths = q(&["-w", "gene_id=GENE10", "-w", "tissue_id=4", "--paths"]);
    assert!(
        paths
            .trim_end()
            .ends_with("data/v1/ad/GENE10/model_tissue_4.tl"),
        "{paths}"
    );
    assert_eq!(paths.lines().count(), 1);
    assert_eq!(
        q(&["--unique", "gene_id", "--format", "json"]),
        "[\"GENE1\",\"GENE10\",\"GENE2\"]\n"
    );
    assert_eq!(q(&["--unique", "tissue_id"]), "1\n4\n45\n");
    let csv = q(&["-w", "tissue_id=1", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "gene_id,tissue_id,file_path");
    assert_eq!(lines.len(), 4);
    assert!(lines[1].starts_with("GENE1,1,file:///"), "{csv}");
    let json = q(&["-w", "gene_id=GENE1", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[2]["tissue_id"], 45);
    let table = q(&["-w", "gene_id=GENE1"]);
    assert!(table.contains("| gene_id"), "{table}");

    // --download copies matching objects (through the cache) into a folder.
    let out = q(&["-w", "tissue_id=45", "--download", "dl"]);
    assert_eq!(out.lines().count(), 3);
    let one = out.lines().find(|l| l.contains("GENE2")).unwrap();
    assert!(Path::new(one).starts_with("dl"), "{one}");
    assert_eq!(std::fs::read_to_string(p.join(one)).unwrap(), "GENE2-45");
}

/// `tessera manifest build data -o out.parquet -t TEMPLATE`, expected to fail.
fn build_fails(p: &Path, template: &str) -> String {
    fails(tessera(p).args([
        "manifest",
        "build",
        "data",
        "-o",
        "out.parquet",
        "-t",
        template,
    ]))
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let p = dir.path();
    let out = p.join("out.parquet");

    let e = fails(tessera(p).args([
        "manifest",
        "build",
        "missing.txt",
        "-o",
        "out.parquet",
        "-t",
        REF,
    ]));
    assert!(e.contains("not found") && e.contains("missing.txt"), "{e}");
    assert!(!out.exists());

    std::fs::write(p.join("nomatch.txt"), "a/b.txt\nc/d.txt\n").unwrap();
    let e = fails(tessera(p).args([
        "manifest",
        "build",
        "nomatch.txt",
        "-o",
        "out.parquet",
        "-t",
        REF,
    ]));
    assert!(
        e.contains("no path matched") && e.contains("a/b.txt"),
        "{e}"
    );
    assert!(!out.exists());

    let e = build_fails(p, "{gene_id:float}/x");
    assert!(
        e.contains("character 10") && e.contains("unknown type 'float'"),
        "{e}"
    );
    let e = build_fails(p, "v1/{gene_id/x");
    assert!(
        e.contains("character 4") && e.contains("never closed"),
        "{e}"
    );
    let e = build_fails(p, "{a}/{a}");
    assert!(e.contains("appears twice"), "{e}");
    let e = fails(tessera(p).args([
        "manifest",
        "build",
        "data",
        "-o",
        "out.parquet",
        "-t",
        REF,
        "--strict",
    ]));
    assert!(
        e.contains("did not match") && e.contains("readme.txt"),
        "{e}"
    );
    assert!(e.contains("--strict"), "the CLI names its flag: {e}");
    let e = fails(tessera(p).args([
        "manifest",
        "build",
        "data",
        "-o",
        "out.parquet",
        "-t",
        "**/{file_path}/{x}.txt",
    ]));
    assert!(
        e.contains("location column") && e.contains("--location-column"),
        "{e}"
    );
    assert!(!out.exists(), "nothing written after any rejected build");

    ok(tessera(p).args(["manifest", "build", "data", "-o", "m.parquet", "-t", REF]));
    let e = fails(tessera(p).args(["manifest", "query", "m.parquet", "-w", "tissue_id=abc"]));
    assert!(
        e.contains("invalid value 'abc' for field 'tissue_id'"),
        "{e}"
    );
    let e = fails(tessera(p).args(["manifest", "query", "m.parquet", "-w", "tissue=1"]));
    assert!(
        e.contains("unknown field 'tissue'") && e.contains("gene_id, tissue_id"),
        "{e}"
    );
    let e = fails(tessera(p).args(["manifest", "query", "m.parquet", "-w", "nonsense"]));
    assert!(e.contains("FIELD=VALUE"), "{e}");
    let e = fails(tessera(p).args(["manifest", "query", "nope.parquet", "--exists"]));
    assert!(e.contains("not found") && e.contains("nope.parquet"), "{e}");
    let e = fails(tessera(p).args([
        "manifest",
        "query",
        "m.parquet",
        "--location-column",
        "path",
        "--exists",
    ]));
    assert!(
        e.contains("no column 'path'") && e.contains("file_path"),
        "{e}"
    );
    let e = fails(
        tessera(p)
            .args(["manifest", "query", "paths-not-parquet.txt", "--exists"])
            .env("X", "1"),
    );
    assert!(e.contains("not found"), "{e}");
    std::fs::write(p.join("fake.parquet"), "this is not parquet").unwrap();
    let e = fails(tessera(p).args(["manifest", "query", "fake.parquet", "--exists"]));
    assert!(e.contains("fake.parquet"), "{e}");
    let e = fails(tessera(p).args([
        "manifest",
        "query",
        "m.parquet",
        "-w",
        "gene_id=NONE",
        "--download",
        "dl",
    ]));
    assert!(e.contains("no record matches gene_id=NONE"), "{e}");
    // clap rejects two modes at once
    let o = tessera(p)
        .args(["manifest", "query", "m.parquet", "--exists", "--paths"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unreachable_endpoint_says_so_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-VALUE-never-printed";
    let e = fails(
        tessera(dir.path())
            .args([
                "ls",
                "s3://bucket/prefix",
                "--endpoint",
                "http://127.0.0.1:9",
            ])
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("TESSERA_MAX_RETRIES", "0"),
    );
    assert!(e.contains("cannot reach"), "{e}");
    assert!(e.contains("s3://bucket/prefix"), "{e}");
    assert!(!e.contains(secret), "{e}");
}

#[test]
fn s3_quickstart_ls_build_query_download() {
    let Some(bucket) = s3_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let base = format!("{bucket}/{}", unique("cli"));
    let o = ok(tessera(p).args(["quickstart", "--dir", &base]));
    assert!(stdout(&o).contains("216 matched"), "{}", stdout(&o));

    let o = ok(tessera(p).args(["ls", &format!("{base}/demo/objects")]));
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 217);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&format!("{base}/demo/objects/"))),
        "{lines:?}"
    );

    let m = format!("{base}/m.parquet");
    let o = ok(tessera(p).args([
        "manifest",
        "build",
        &format!("{base}/demo/objects"),
        "-o",
        &m,
        "-t",
        REF,
    ]));
    assert!(
        stderr(&o).contains("217 paths read, 216 matched, 1 skipped"),
        "{}",
        stderr(&o)
    );
    let o = ok(tessera(p).args([
        "manifest",
        "query",
        &m,
        "-w",
        "gene_id=GENE00007",
        "--paths",
    ]));
    let first = stdout(&o).lines().next().unwrap().to_string();
    assert!(
        first.starts_with(&format!("{base}/demo/objects/v1/ad/GENE00007/")),
        "{first}"
    );
    let tissue = first
        .rsplit('_')
        .next()
        .unwrap()
        .trim_end_matches(".tl")
        .to_string();
    let o = ok(tessera(p).args([
        "manifest",
        "query",
        &m,
        "-w",
        "gene_id=GENE00007",
        "-w",
        &format!("tissue_id={tissue}"),
        "--download",
        "dl",
    ]));
    let local = stdout(&o).trim().to_string();
    let body = std::fs::read_to_string(p.join(&local)).unwrap();
    assert!(
        body.starts_with(&format!("model for GENE00007 in tissue {tissue}")),
        "{body}"
    );
    // The second download is served from the cache (the copy exists once in it).
    ok(tessera(p).args([
        "manifest",
        "query",
        &m,
        "-w",
        "gene_id=GENE00007",
        "-w",
        &format!("tissue_id={tissue}"),
        "--download",
        "dl2",
    ]));
    let again = p
        .join("dl2")
        .join(Path::new(&local).strip_prefix("dl").unwrap());
    assert_eq!(std::fs::read_to_string(again).unwrap(), body);
}

#[test]
fn s3_wrong_credentials_are_reported_without_the_secret() {
    let Some(bucket) = s3_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let e = fails(
        tessera(dir.path())
            .args(["ls", &bucket])
            .env("AWS_SECRET_ACCESS_KEY", secret),
    );
    assert!(
        e.contains("access denied") || e.contains("cannot authenticate"),
        "{e}"
    );
    assert!(!e.contains(secret), "{e}");
    let e = fails(
        tessera(dir.path())
            .args(["ls", &bucket])
            .env("AWS_ACCESS_KEY_ID", "GK00000000000000000000000"),
    );
    assert!(
        e.contains("access denied") || e.contains("cannot authenticate"),
        "{e}"
    );
}

#[test]
fn s3_credentials_from_a_profile() {
    let Some(bucket) = s3_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    std::fs::write(
        p.join("config"),
        format!("[profile garage]\nregion = garage\nendpoint_url = {endpoint}\n"),
    )
    .unwrap();
    std::fs::write(
        p.join("credentials"),
        format!("[garage]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\n[broken]\naws_access_key_id = nope\naws_secret_access_key = nope\n"),
    )
    .unwrap();
    let base = format!("{bucket}/{}", unique("profile"));
    ok(tessera(p).args(["quickstart", "--dir", &base]));
    let profile_env = |c: &mut Command| {
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_REGION")
            .env("AWS_CONFIG_FILE", p.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", p.join("credentials"));
    };
    let mut c = tessera(p);
    profile_env(&mut c);
    let o = ok(c.args([
        "--profile",
        "garage",
        "ls",
        &format!("{base}/demo/objects/v1/README.txt"),
    ]));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));

    let mut c = tessera(p);
    profile_env(&mut c);
    let o = ok(c
        .env("AWS_PROFILE", "garage")
        .args(["ls", &format!("{base}/demo/objects/v1/README.txt")]));
    assert_eq!(stdout(&o).lines().count(), 1);

    // An explicit --profile wins over keys in the environment.
    let mut c = tessera(p);
    profile_env(&mut c);
    let e = fails(
        c.env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .args([
                "--profile",
                "broken",
                "--endpoint",
                &endpoint,
                "--region",
                "garage",
                "ls",
                &base,
            ]),
    );
    assert!(
        e.contains("access denied") || e.contains("cannot authenticate"),
        "{e}"
    );

    let mut c = tessera(p);
    profile_env(&mut c);
    let e = fails(c.args(["--profile", "absent", "ls", &base]));
    assert!(e.contains("profile 'absent' not found"), "{e}");
}
