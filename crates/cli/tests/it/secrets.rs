//! No secret reaches any output: with an AWS secret key, a session token
//! and an API token in play, every command run at the highest verbosity
//! (trace logs of tessera and of every library under it), through calls that
//! succeed and calls that fail, and the server with trace logs, must not
//! print them on stdout or stderr, nor write them into an index, a slices
//! file or an error body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;

type Cmd = assert_cmd::Command;

use crate::common::{s3_bucket, tessera, unique};

/// A session token no store knows: S3 calls made with it fail.
const SESSION: &str = "tessera-test-SESSION-7f3a9c51e2d0b4";
/// A secret key no store knows.
const FAKE_SECRET: &str = "tessera-test-FAKESECRET-0b9d8e7f6a5c";

/// Every secret of the test's environment, to look for in outputs.
fn secrets(api_token: Option<&str>) -> Vec<String> {
    let mut all = vec![SESSION.to_string(), FAKE_SECRET.to_string()];
    if let Ok(real) = std::env::var("AWS_SECRET_ACCESS_KEY") {
        if real.len() >= 8 {
            all.push(real);
        }
    }
    all.extend(api_token.map(str::to_string));
    all
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} shows a secret ({}…):\n{}",
            &s[..6],
            &text[..text.len().min(4000)]
        );
    }
}

fn run(c: &mut Cmd) -> Output {
    c.env("TESSERA_LOG", "trace")
        .output()
        .expect("cannot run tessera")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run the commands that touch `base` (the quickstart writes objects of
/// every kind, then listing, a manifest, a dataset read, indexing and
/// slicing), all with `-vvv`; returns what each printed.
fn every_command(dir: &Path, base: &str, env: &[(&str, &str)]) -> Vec<(String, String, bool)> {
    let cmds: Vec<Vec<String>> = vec![
        vec![
            "quickstart".into(),
            "--dir".into(),
            base.into(),
            "--no-serve".into(),
        ],
        vec!["ls".into(), base.into(), "--long".into()],
        vec![
            "manifest".into(),
            "query".into(),
            format!("{base}/demo/manifest.parquet"),
            "--where".into(),
            "gene_id=GENE001".into(),
        ],
        vec![
            "get".into(),
            "demo/orders".into(),
            "--store".into(),
            base.into(),
        ],
        vec!["index".into(), format!("{base}/raw/reads.fastq.gz")],
        vec![
            "slice".into(),
            format!("{base}/raw/reads.fastq.gz"),
            "--count".into(),
            "2".into(),
            "-o".into(),
            "s.json".into(),
        ],
        vec![
            "slice".into(),
            "get".into(),
            "s.json".into(),
            "--slice".into(),
            "1".into(),
        ],
        vec!["index".into(), format!("{base}/raw/tile.las")],
        vec![
            "ls".into(),
            format!("{base}/no-such-prefix-{}", unique("x")),
        ],
    ];
    let mut out = Vec::new();
    for args in cmds {
        let mut c = tessera(dir);
        c.arg("-vvv").args(&args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = run(&mut c);
        out.push((args.join(" "), text(&o), o.status.success()));
    }
    out
}

#[test]
fn no_secret_in_any_output_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("store").display().to_string();
    let env = [
        ("AWS_SECRET_ACCESS_KEY", FAKE_SECRET),
        ("AWS_ACCESS_KEY_ID", "AKIATESSERATEST"),
        ("AWS_SESSION_TOKEN", SESSION),
    ];
    let secrets = secrets(None);
    for (what, out, success) in every_command(dir.path(), &base, &env) {
        assert_clean(&what, &out, &secrets);
        if !what.contains("no-such-prefix") {
            assert!(success, "{what} failed:\n{out}");
        }
    }
    let slices = std::fs::read_to_string(dir.path().join("s.json")).unwrap();
    assert_clean("the slices file", &slices, &secrets);
}

#[test]
fn no_secret_in_any_output_on_s3_succeeding_or_failing() {
    let Some(bucket) = s3_bucket() else {
        eprintln!("skipped: no test S3 server (TESSERA_TEST_S3)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{bucket}/{}", unique("secrets"));
    let secrets = secrets(None);
    // With the server's real keys: the calls succeed.
    for (what, out, success) in every_command(dir.path(), &base, &[]) {
        assert_clean(&what, &out, &secrets);
        if !what.contains("no-such-prefix") {
            assert!(success, "{what} failed:\n{out}");
        }
    }
    let slices = std::fs::read_to_string(dir.path().join("s.json")).unwrap();
    assert_clean("the slices file", &slices, &secrets);
    // The index was written to S3; read it back through the CLI's own copy.
    let o = run(tessera(dir.path()).args(["ls", &format!("{base}/raw/"), "--long"]));
    assert_clean("ls", &text(&o), &secrets);
    // With a wrong secret and a session token: every call fails, and the
    // errors (at trace level) still show neither.
    let env = [
        ("AWS_SECRET_ACCESS_KEY", FAKE_SECRET),
        ("AWS_SESSION_TOKEN", SESSION),
    ];
    let failed = every_command(dir.path(), &format!("{base}-denied"), &env);
    for (what, out, _) in &failed {
        assert_clean(what, out, &secrets);
    }
    assert!(
        failed.iter().filter(|(_, _, ok)| !ok).count() >= 3,
        "calls with a wrong key should fail"
    );
}

fn http(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    (out[9..12].parse().unwrap(), out)
}

#[test]
fn the_server_logs_no_token_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let made = run(tessera(dir.path()).args([
        "serve",
        "--new-token",
        "--namespace",
        "team-a",
        "--role",
        "admin",
    ]));
    assert!(made.status.success());
    let entry = String::from_utf8_lossy(&made.stdout).to_string();
    let token = String::from_utf8_lossy(&made.stderr)
        .split_whitespace()
        .find(|w| w.starts_with("tsr_"))
        .expect("the new token on stderr")
        .to_string();
    std::fs::write(dir.path().join("auth.toml"), &entry).unwrap();
    assert!(
        !entry.contains(&token),
        "auth.toml holds a hash, not the token"
    );
    let (child, addr) = crate::serve::spawn(
        dir.path(),
        &[
            "-vvv",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--auth",
            "auth.toml",
            "--store",
            "data",
        ],
        &[
            ("TESSERA_LOG", "trace"),
            ("AWS_SECRET_ACCESS_KEY", FAKE_SECRET),
            ("AWS_SESSION_TOKEN", SESSION),
        ],
    );
    let secrets = secrets(Some(&token));
    let wrong = format!("{token}x");
    for (path, tok, want) in [
        ("/v1/tables", token.as_str(), 200),
        ("/v1/tables", wrong.as_str(), 401),
        ("/v1/datasets/team-a/none/history", token.as_str(), 404),
        (
            "/v1/slices/data?object=team-a/missing.fq&count=2&slice=0",
            token.as_str(),
            404,
        ),
        ("/v1/tables", "garbage.jwt.value", 401),
    ] {
        let (st, body) = http(&addr, path, tok);
        assert_eq!(st, want, "{path}: {body}");
        // The response is checked for the real token (a wrong one is echoed nowhere either).
        assert_clean(path, &body, &secrets);
        assert!(
            !body.contains(&wrong),
            "{path} echoes the token it was given"
        );
    }
    // SAFETY: a plain signal to the child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let logs = text(&out);
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "trace logs were on: {logs}"
    );
    assert_clean("the server's trace logs", &logs, &secrets);
    assert!(
        !logs.contains(&wrong),
        "the server logged a token it was given"
    );
}
