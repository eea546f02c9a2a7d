//! `tessera index` / `tessera slice` / `tessera slice get`, run as the real
//! binary: interoperability with gzip, pigz, bgzip and samtools, bad input,
//! and the same story on Garage (S3).

use std::path::Path;
use std::process::Command as Std;

use crate::common::{fails, ok, s3_bucket, store_options, tessera, unique};

/// An external tool, or `None` (skip) when it is missing and not required.
fn tool(name: &str) -> Option<&str> {
    let found = Std::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if found {
        return Some(name);
    }
    assert!(
        std::env::var("TESSERA_REQUIRE_TOOLS").is_err(),
        "TESSERA_REQUIRE_TOOLS is set but `{name}` is not installed"
    );
    eprintln!("skipping: {name} not installed");
    None
}

fn sh(dir: &Path, script: &str) {
    let o = Std::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Deterministic FASTQ whose quality lines often start with '@' or '+'.
fn fastq(n: usize) -> String {
    let mut s = String::new();
    let mut x: u64 = 42;
    for i in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        let len = 100 + (x >> 59) as usize * 3;
        let seq: String = (0..len)
            .map(|k| b"ACGT"[((x >> (k % 61)) & 3) as usize] as char)
            .collect();
        let q: String = (0..len)
            .map(|k| b"@+I#5"[((x >> (k % 59)) % 5) as usize] as char)
            .collect();
        s.push_str(&format!("@read{i} lane=1\n{seq}\n+\n{q}\n"));
    }
    s
}

fn fasta() -> String {
    let mut s = String::new();
    for (i, (len, width)) in [(5000usize, 60usize), (123_457, 70), (17, 80), (80_000, 61)]
        .iter()
        .enumerate()
    {
        s.push_str(&format!(">chr{i} test sequence {i}\n"));
        let bases: String = "ACGTTGCAAC".chars().cycle().skip(i).take(*len).collect();
        for c in bases.as_bytes().chunks(*width) {
            s.push_str(std::str::from_utf8(c).unwrap());
            s.push('\n');
        }
    }
    s
}

/// Fetch every slice of `slices.json` and concatenate them.
fn fetch_all(dir: &Path, slices: &str) -> (Vec<u8>, usize) {
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join(slices)).unwrap()).unwrap();
    let mut all = Vec::new();
    for i in 0..list.len() {
        let o = tessera(dir)
            .args(["slice", "get", slices, "--slice", &i.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        all.extend(o.stdout);
    }
    (all, list.len())
}

#[test]
fn gzip_and_pigz_files_slice_back_to_the_reads() {
    let d = tempfile::tempdir().unwrap();
    let text = fastq(20_000);
    std::fs::write(d.path().join("r.fq"), &text).unwrap();
    let mut made = vec![];
    if tool("gzip").is_some() {
        sh(d.path(), "gzip -c r.fq > gzip.fq.gz");
        made.push("gzip.fq.gz");
    }
    if tool("pigz").is_some() {
        sh(d.path(), "pigz -p 2 -c r.fq > pigz.fq.gz");
        made.push("pigz.fq.gz");
    }
    for f in made {
        ok(tessera(d.path()).args(["index", f, "--spacing", "100KiB"]));
        let idx: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.path().join(format!("{f}.tessera-index.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(idx["compression"], "gzip");
        assert_eq!(idx["records"], 20_000);
        ok(tessera(d.path()).args(["slice", f, "--count", "8", "-o", "s.json"]));
        let (all, n) = fetch_all(d.path(), "s.json");
        assert_eq!(n, 8, "{f}");
        assert!(all == text.as_bytes(), "{f}: slices differ from the file");
        // Exactly N records per slice.
        ok(tessera(d.path()).args(["slice", f, "--records", "3000", "-o", "r.json"]));
        let o = ok(tessera(d.path()).args(["slice", "get", "r.json", "--slice", "2"]));
        assert_eq!(o.lines().count(), 3000 * 4);
        assert!(o.starts_with("@read6000 "));
    }
}

#[test]
fn bgzip_files_and_their_gzi() {
    let Some(_) = tool("bgzip") else { return };
    let d = tempfile::tempdir().unwrap();
    let mut vcf = String::from(
        "##fileformat=VCFv4.2\n##contig=<ID=1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
    );
    for i in 0..60_000 {
        vcf.push_str(&format!(
            "1\t{}\trs{i}\tA\tG\t50\tPASS\tDP={}\n",
            1000 + i * 7,
            i % 97
        ));
    }
    std::fs::write(d.path().join("calls.vcf"), &vcf).unwrap();
    sh(d.path(), "bgzip -c calls.vcf > calls.vcf.gz && cp calls.vcf.gz theirs.vcf.gz && bgzip -r theirs.vcf.gz");
    ok(tessera(d.path()).args(["index", "calls.vcf.gz", "--gzi", "--spacing", "64KiB"]));
    assert_eq!(
        std::fs::read(d.path().join("calls.vcf.gz.gzi")).unwrap(),
        std::fs::read(d.path().join("theirs.vcf.gz.gzi")).unwrap(),
        "the .gzi equals bgzip's"
    );
    ok(tessera(d.path()).args(["slice", "calls.vcf.gz", "--count", "5", "-o", "s.json"]));
    let (all, n) = fetch_all(d.path(), "s.json");
    assert_eq!(n, 5);
    // Each slice repeats the header; without the copies it is the file.
    let header_len = vcf.find("\n1\t").unwrap() + 1;
    let header = &vcf[..header_len];
    let all = String::from_utf8(all).unwrap();
    assert_eq!(all.matches("#CHROM").count(), 5);
    let body: String = all.split(header).collect();
    assert_eq!(body, vcf[header_len..]);
    // A .gzi of a plain gzip file is refused.
    sh(d.path(), "gzip -c calls.vcf > plain.vcf.gz");
    let e = fails(tessera(d.path()).args(["index", "plain.vcf.gz", "--gzi"]));
    assert!(e.contains("a .gzi indexes BGZF"), "{e}");
    assert!(e.contains("--gzi"), "the CLI names the flag: {e}");
    assert!(
        !d.path().join("plain.vcf.gz.tessera-index.json").exists(),
        "nothing written"
    );
}

#[test]
fn samtools_accepts_the_fai() {
    let Some(_) = tool("samtools") else { return };
    let d = tempfile::tempdir().unwrap();
    let fa = fasta();
    std::fs::write(d.path().join("g.fa"), &fa).unwrap();
    ok(tessera(d.path()).args(["index", "g.fa", "--fai", "--spacing", "16KiB"]));
    let ours = std::fs::read_to_string(d.path().join("g.fa.fai")).unwrap();
    let region = |dir: &Path| {
        let o = Std::new("samtools")
            .args(["faidx", "g.fa", "chr1:70001-70150", "chr3:5-79999"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let with_ours = region(d.path());
    std::fs::remove_file(d.path().join("g.fa.fai")).unwrap();
    sh(d.path(), "samtools faidx g.fa");
    let theirs = std::fs::read_to_string(d.path().join("g.fa.fai")).unwrap();
    assert_eq!(ours, theirs, "the .fai equals samtools'");
    assert_eq!(with_ours, region(d.path()));
    // Slices split long sequences between lines; each part carries its header.
    ok(tessera(d.path()).args(["slice", "g.fa", "--count", "6", "-o", "s.json"]));
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(d.path().join("s.json")).unwrap()).unwrap();
    assert!(list.iter().any(
        |s| s["fasta"]["sequence"] == "chr1" && s["fasta"]["base_offset"].as_u64().unwrap() > 0
    ));
    let (all, _) = fetch_all(d.path(), "s.json");
    let all = String::from_utf8(all).unwrap();
    // Removing the repeated header lines gives the file back.
    let mut out = String::new();
    let mut last_header = "";
    for line in all.split_inclusive('\n') {
        if line.starts_with('>') {
            if line == last_header {
                continue;
            }
            last_header = line;
        }
        out.push_str(line);
    }
    assert_eq!(out, fa);
}

#[test]
fn bad_input_is_refused_clearly() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("r.fq"), fastq(2000)).unwrap();
    // Missing object.
    let e = fails(tessera(p).args(["index", "missing.fq"]));
    assert!(e.contains("not found") && e.contains("missing.fq"), "{e}");
    // Unknown format name; a name that tells nothing.
    let e = fails(tessera(p).args(["index", "r.fq", "--format", "bam"]));
    assert!(e.contains("unknown format `bam`"), "{e}");
    std::fs::write(p.join("data.bin"), "x\n").unwrap();
    let e = fails(tessera(p).args(["index", "data.bin"]));
    assert!(e.contains("--format"), "{e}");
    // Not the declared format: a CSV declared FASTQ, a FASTQ declared FASTA.
    std::fs::write(p.join("t.csv"), "a,b\n1,2\n").unwrap();
    let e = fails(tessera(p).args(["index", "t.csv", "--format", "fastq"]));
    assert!(e.contains("not valid fastq") && e.contains("line 1"), "{e}");
    let e = fails(tessera(p).args(["index", "r.fq", "--format", "fasta"]));
    assert!(e.contains("not valid fasta"), "{e}");
    assert!(
        !p.join("r.fq.tessera-index.json").exists(),
        "nothing written"
    );
    // A CSV whose quoted field never closes.
    std::fs::write(p.join("q.csv"), "a,b\n1,\"open\n2,3\n").unwrap();
    let e = fails(tessera(p).args(["index", "q.csv"]));
    assert!(e.contains("never closed") && e.contains("line 2"), "{e}");
    // Truncated gzip.
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(fastq(5000).as_bytes()).unwrap();
        enc.finish().unwrap()
    };
    std::fs::write(p.join("cut.fq.gz"), &gz[..gz.len() * 2 / 3]).unwrap();
    let e = fails(tessera(p).args(["index", "cut.fq.gz"]));
    assert!(e.contains("truncated gzip"), "{e}");
    // Slicing before indexing.
    let e = fails(tessera(p).args(["slice", "r.fq", "--count", "2"]));
    assert!(e.contains("no index") && e.contains("tessera index"), "{e}");
    // A stale index: the object changed after indexing.
    ok(tessera(p).args(["index", "r.fq"]));
    ok(tessera(p).args(["slice", "r.fq", "--count", "3", "-o", "s.json"]));
    std::fs::write(p.join("r.fq"), fastq(2001)).unwrap();
    let e = fails(tessera(p).args(["slice", "r.fq", "--count", "2"]));
    assert!(e.contains("changed since it was indexed"), "{e}");
    let e = fails(tessera(p).args(["slice", "get", "s.json", "--slice", "1"]));
    assert!(e.contains("changed since it was indexed"), "{e}");
    // A slices file edited by hand.
    ok(tessera(p).args(["index", "r.fq"]));
    ok(tessera(p).args(["slice", "r.fq", "--count", "3", "-o", "s.json"]));
    let mut list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("s.json")).unwrap()).unwrap();
    list[1]["ranges"][0]["end"] = serde_json::json!(10_000_000_000u64);
    std::fs::write(p.join("edited.json"), serde_json::to_vec(&list).unwrap()).unwrap();
    let e = fails(tessera(p).args(["slice", "get", "edited.json", "--slice", "1"]));
    assert!(
        e.contains("outside the object") && e.contains("slice 1"),
        "{e}"
    );
    let e = fails(tessera(p).args(["slice", "get", "s.json", "--slice", "3"]));
    assert!(e.contains("there is no slice 3"), "{e}");
    assert!(e.contains("--slice"), "the CLI names the flag: {e}");
    // A slices file that is missing, empty, or given on stdin.
    let e = fails(tessera(p).args(["slice", "get", "nowhere.json", "--slice", "0"]));
    assert!(e.contains("slices file nowhere.json does not exist"), "{e}");
    std::fs::write(p.join("empty.json"), "").unwrap();
    let e = fails(tessera(p).args(["slice", "get", "empty.json", "--slice", "0"]));
    assert!(e.contains("not a slices file"), "{e}");
    let from_file = ok(tessera(p).args(["slice", "get", "s.json", "--slice", "2"]));
    let from_stdin = ok(tessera(p)
        .args(["slice", "get", "-", "--slice", "2"])
        .write_stdin(std::fs::read(p.join("s.json")).unwrap()));
    assert!(!from_file.is_empty());
    assert_eq!(from_file, from_stdin);
    std::fs::write(p.join("junk.json"), "{\"not\": \"slices\"}").unwrap();
    let e = fails(tessera(p).args(["slice", "get", "junk.json", "--slice", "0"]));
    assert!(e.contains("not a slices file"), "{e}");
    let e = fails(tessera(p).args(["slice", "r.fq"]));
    assert!(e.contains("--count"), "{e}");
    let e = fails(tessera(p).args(["slice", "r.fq", "--count", "0"]));
    assert!(e.contains("at least 1"), "{e}");
    assert!(e.contains("--count"), "the CLI names the flag: {e}");
}

#[test]
fn slices_on_s3() {
    let Some(bucket) = s3_bucket() else { return };
    let d = tempfile::tempdir().unwrap();
    let run = unique("run");
    let text = fastq(5000);
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    };
    std::fs::write(d.path().join("r.fq.gz"), &gz).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("{bucket}/slice-{run}/reads.fq.gz");
    rt.block_on(async {
        let loc = tessera_store::Location::open(&url, &store_options())
            .await
            .unwrap();
        loc.write(gz.clone()).await.unwrap();
    });
    let idx_store = format!("{bucket}/slice-{run}/indexes");
    ok(tessera(d.path()).args([
        "index",
        &url,
        "--spacing",
        "64KiB",
        "--index-store",
        &idx_store,
    ]));
    let e = fails(tessera(d.path()).args(["slice", &url, "--count", "4"]));
    assert!(e.contains("no index"), "{e}");
    ok(tessera(d.path()).args([
        "slice",
        &url,
        "--count",
        "4",
        "--index-store",
        &idx_store,
        "-o",
        "s.json",
    ]));
    let json = std::fs::read_to_string(d.path().join("s.json")).unwrap();
    assert!(!json.contains("AWS") && !json.to_lowercase().contains("secret"));
    let (all, n) = fetch_all(d.path(), "s.json");
    assert_eq!(n, 4);
    assert!(all == text.as_bytes());
    // The object is replaced: planning and fetching both refuse.
    rt.block_on(async {
        let loc = tessera_store::Location::open(&url, &store_options())
            .await
            .unwrap();
        loc.write(gz[..gz.len() - 1].to_vec()).await.unwrap();
    });
    let e =
        fails(tessera(d.path()).args(["slice", &url, "--count", "4", "--index-store", &idx_store]));
    assert!(e.contains("changed since it was indexed"), "{e}");
    let e = fails(tessera(d.path()).args(["slice", "get", "s.json", "--slice", "0"]));
    assert!(e.contains("changed since it was indexed"), "{e}");
}
