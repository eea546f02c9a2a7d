//! `tessera serve` as a real process: config file, `.env`, port 0, the
//! reference endpoint, refusal of an open bind without auth, new tokens, and
//! a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::common::{fails, ok, tessera};

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Start `tessera ARGS` (a server) in `dir` with `env` set; returns the
/// child and the address it listens on (its first line).
pub(crate) fn spawn(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("tessera"))
        .current_dir(dir)
        .env_remove("TESSERA_STORE")
        .envs(env.iter().copied())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line '{line}'"))
        .to_string();
    (child, addr)
}

#[test]
fn serves_the_quickstart_store_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    ok(tessera(dir.path()).args(["quickstart", "--no-serve"]));
    // Settings from a config file and from .env (the store).
    std::fs::write(
        dir.path().join(".env"),
        "TESSERA_STORE=./tessera-data\nTESSERA_MAX_PAGE_SIZE=50\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("serve.toml"),
        "bind = \"127.0.0.1:0\"\n[tables.sales]\nlocation = \"state=california/dname=sales/sales.parquet\"\n",
    )
    .unwrap();
    let (mut child, addr) = spawn(dir.path(), &["serve", "--config", "serve.toml"], &[]);
    let (st, body) = http_get(
        &addr,
        "/query-parquet?statename=california&dname=sales&page=1&page_size=3",
    );
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["page"], 1);
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    let (st, body) = http_get(
        &addr,
        "/query-parquet?statename=california&dname=sales&page_size=51",
    );
    assert_eq!(st, 400, "the .env limit applies: {body}");
    let (st, body) = http_get(&addr, "/v1/tables/sales/schema");
    assert_eq!(st, 200, "{body}");
    // A point cloud slice: a LAS file, typed as binary.
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /v1/slices/data?object=raw/tile.las&count=4&slice=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert!(head.contains("x-tessera-first-record: 5000"), "{head}");
    assert_eq!(&raw[split + 4..split + 8], b"LASF");
    let (st, body) = http_get(
        &addr,
        "/v1/slices/data?object=raw/tile.las&grid=2x2&slice=0",
    );
    assert_eq!(st, 400, "a grid needs a spatial index: {body}");
    assert!(body.contains("spatial"), "{body}");
    // SIGTERM: a clean exit.
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // `child` is not yet waited for, so its pid cannot have been reused.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("shutting down") || err.contains("tessera serve"),
        "{err}"
    );
}

#[test]
fn refuses_an_open_bind_without_auth_and_makes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(tessera(dir.path()).args(["serve", "--bind", "0.0.0.0:0"]));
    // The library says why; the CLI names its flags.
    assert!(
        err.contains("without auth") && err.contains("--auth") && err.contains("--insecure"),
        "{err}"
    );
    let err = fails(tessera(dir.path()).args(["serve", "--bind", "nowhere"]));
    assert!(err.contains("not an address"), "{err}");
    let entry = ok(tessera(dir.path()).args([
        "serve",
        "--new-token",
        "--namespace",
        "team-a",
        "--role",
        "write",
    ]));
    assert!(
        entry.contains("namespace = \"team-a\"") && entry.contains("role = \"write\""),
        "{entry}"
    );
    assert!(
        !entry.contains("tsr_"),
        "the token itself goes to stderr only"
    );
    std::fs::write(dir.path().join("auth.toml"), &entry).unwrap();
    let (mut child, addr) = spawn(
        dir.path(),
        &["serve", "--bind", "127.0.0.1:0", "--auth", "auth.toml"],
        &[],
    );
    let (st, _) = http_get(&addr, "/v1/tables");
    assert_eq!(st, 401);
    // SAFETY: as above: plain integers, and the child is not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let err = fails(tessera(dir.path()).args(["serve", "--new-token", "--role", "boss"]));
    assert!(err.contains("--role"), "{err}");
}
