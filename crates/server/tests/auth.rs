//! Auth through real HTTP: API tokens and JWTs (RS256, ES256) against a
//! JWKS file; 401 for missing, unknown, expired, mis-signed or mis-addressed
//! credentials, 403 for the wrong role or namespace, and no secret in any
//! answer or log line.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_server::{new_token, Application, Config, StartError};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys");
const ISSUER: &str = "https://issuer.example/pool";
const AUDIENCE: &str = "tessera-api";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(alg: Algorithm, key_file: &str, kid: Option<&str>, claims: Value) -> String {
    let pem = std::fs::read(format!("{KEYS}/{key_file}")).unwrap();
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut h = Header::new(alg);
    h.kid = kid.map(String::from);
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

fn claims(tenant: &str, roles: Value, exp_from_now: i64) -> Value {
    json!({
        "sub": format!("user-of-{tenant}"),
        "tenant": tenant,
        "roles": roles,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": (now() as i64 + exp_from_now),
    })
}

struct Tokens {
    read_a: String,
    write_a: String,
    admin_b: String,
}

async fn start(dir: &std::path::Path) -> (String, Tokens) {
    let (read_a, h1) = new_token();
    let (write_a, h2) = new_token();
    let (admin_b, h3) = new_token();
    let auth = format!(
        r#"
[[tokens]]
name = "reader-a"
sha256 = "{h1}"
namespace = "team-a"
role = "read"
[[tokens]]
name = "writer-a"
sha256 = "{h2}"
namespace = "team-a"
role = "write"
[[tokens]]
name = "admin-b"
sha256 = "{h3}"
namespace = "team-b"
role = "admin"
[jwt]
jwks = "{KEYS}/jwks.json"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
namespace_claim = "tenant"
role_claim = "roles"
"#
    );
    std::fs::write(dir.join("auth.toml"), auth).unwrap();
    let store = dir.join("store");
    std::fs::create_dir_all(store.join("t")).unwrap();
    std::fs::write(store.join("t/a.csv"), "id\n1\n").unwrap();
    // Raw objects to slice, one per namespace, indexed.
    for ns in ["team-a", "team-b"] {
        std::fs::create_dir_all(store.join(ns)).unwrap();
        std::fs::write(
            store.join(format!("{ns}/r.txt")),
            format!("{ns} line 1\nline 2\n"),
        )
        .unwrap();
        let loc = tessera_store::Location::local(&store.join(format!("{ns}/r.txt"))).unwrap();
        let (index, _) = tessera_slice::Index::build(&loc).await.unwrap();
        index
            .save(&tessera_slice::Index::location_for(&loc, None).unwrap())
            .await
            .unwrap();
    }
    let mut config = Config::from_toml(
        r#"
bind = "127.0.0.1:0"
[tables.b_only]
location = "t/a.csv"
namespace = "team-b"
"#,
        "test",
    )
    .unwrap();
    config.store = store.to_str().unwrap().into();
    config.auth = Some(dir.join("auth.toml"));
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    (
        base,
        Tokens {
            read_a,
            write_a,
            admin_b,
        },
    )
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&'static str>,
) -> (StatusCode, Value) {
    let mut r = match method {
        "POST" => http.post(url).header("content-type", "text/csv"),
        _ => http.get(url),
    };
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    let resp = r.send().await.unwrap();
    let st = resp.status();
    let text = resp.text().await.unwrap();
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_jwts_confine_callers() {
    let logs = Captured::default();
    let writer = logs.clone();
    // Global: the server's tasks run on other threads. (The only test in
    // this binary that sets a subscriber.)
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (base, t) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let u = |p: &str| format!("{base}{p}");
    let mut secrets = vec![t.read_a.clone(), t.write_a.clone(), t.admin_b.clone()];

    // With auth on, the document asks every API operation for a bearer
    // token, and the health check for none.
    let (st, doc) = call(&http, "GET", &u("/openapi.json"), None, None).await;
    assert_eq!(st, 200);
    assert_eq!(doc["security"], serde_json::json!([{ "bearer": [] }]));
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([])
    );
    assert!(doc["paths"]["/v1/sql"]["post"]["security"].is_null());
    for code in ["401", "403"] {
        assert!(
            doc["paths"]["/v1/sql"]["post"]["responses"][code].is_object(),
            "{code}"
        );
    }
    assert!(doc["paths"]["/healthz"]["get"]["responses"]["401"].is_null());

    // No credentials, unknown ones, a malformed header: 401.
    let (st, v) = call(&http, "GET", &u("/v1/datasets"), None, None).await;
    assert_eq!(st, 401, "{v}");
    assert_eq!(v["error"], "unauthorized");
    let (st, _) = call(
        &http,
        "GET",
        &u("/v1/datasets"),
        Some("tsr_not-a-token"),
        None,
    )
    .await;
    assert_eq!(st, 401);
    let r = http
        .get(u("/v1/datasets"))
        .header("authorization", format!("Basic {}", t.read_a))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    // Slices: only inside the caller's namespace.
    let (st, v) = call(
        &http,
        "GET",
        &u("/v1/slices/data?object=team-a/r.txt&count=1&slice=0"),
        Some(&t.read_a),
        None,
    )
    .await;
    assert_eq!(
        (st.as_u16(), v.as_str()),
        (200, Some("team-a line 1\nline 2\n"))
    );
    let (st, v) = call(
        &http,
        "GET",
        &u("/v1/slices/data?object=team-b/r.txt&count=1&slice=0"),
        Some(&t.read_a),
        None,
    )
    .await;
    assert_eq!(st, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("outside your namespace"),
        "{v}"
    );
    let (st, _) = call(
        &http,
        "GET",
        &u("/v1/slices/data?object=team-a/r.txt&count=1&slice=0"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 401);
    // Health, metrics and docs need none.
    let (st, _) = call(&http, "GET", &u("/healthz"), None, None).await;
    assert_eq!(st, 200);

    // Roles: read cannot load, write can.
    let (st, v) = call(
        &http,
        "POST",
        &u("/v1/datasets/sales?version=v1"),
        Some(&t.read_a),
        Some("id,amount\n1,10\n"),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains("Write role"), "{v}");
    let (st, v) = call(
        &http,
        "POST",
        &u("/v1/datasets/sales?version=v1"),
        Some(&t.write_a),
        Some("id,amount\n1,10\n2,20\n"),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = call(
        &http,
        "GET",
        &u("/v1/datasets/sales"),
        Some(&t.read_a),
        None,
    )
    .await;
    assert_eq!((st.as_u16(), v["rows"].as_u64()), (200, Some(2)), "{v}");

    // Namespaces: team-b does not see team-a's dataset, and writes its own.
    let (_, v) = call(&http, "GET", &u("/v1/datasets"), Some(&t.admin_b), None).await;
    assert_eq!(
        (
            v["namespace"].as_str(),
            v["datasets"].as_array().map(Vec::len)
        ),
        (Some("team-b"), Some(0))
    );
    let (st, _) = call(
        &http,
        "GET",
        &u("/v1/datasets/sales"),
        Some(&t.admin_b),
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = call(
        &http,
        "POST",
        &u("/v1/datasets/sales"),
        Some(&t.admin_b),
        Some("id,x\n9,y\n"),
    )
    .await;
    assert_eq!(st, 200);
    let (_, v) = call(
        &http,
        "GET",
        &u("/v1/datasets/sales"),
        Some(&t.read_a),
        None,
    )
    .await;
    assert_eq!(v["rows"], 2, "team-a's data is untouched: {v}");
    assert!(dir
        .path()
        .join("store/datasets/team-a/sales/_delta_log")
        .is_dir());
    assert!(dir
        .path()
        .join("store/datasets/team-b/sales/_delta_log")
        .is_dir());
    // A table registered for team-b: 403 for team-a.
    let (st, _) = call(
        &http,
        "GET",
        &u("/v1/tables/b_only/rows"),
        Some(&t.read_a),
        None,
    )
    .await;
    assert_eq!(st, 403);
    let (st, v) = call(
        &http,
        "GET",
        &u("/v1/tables/b_only/rows"),
        Some(&t.admin_b),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");

    // JWTs: RS256 and ES256 from the JWKS, namespace and role from claims.
    let rs = jwt(
        Algorithm::RS256,
        "rsa.pem",
        Some("rsa-1"),
        claims("team-a", json!(["tessera-write"]), 600),
    );
    let (st, v) = call(
        &http,
        "POST",
        &u("/v1/datasets/sales?version=jwt"),
        Some(&rs),
        Some("id,amount\n3,30\n"),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let es = jwt(
        Algorithm::ES256,
        "ec.pem",
        Some("ec-1"),
        claims("team-a", json!("read"), 600),
    );
    let (_, v) = call(&http, "GET", &u("/v1/datasets/sales"), Some(&es), None).await;
    assert_eq!(v["rows"], 3, "{v}");
    let (st, _) = call(
        &http,
        "POST",
        &u("/v1/datasets/sales"),
        Some(&es),
        Some("id\n1\n"),
    )
    .await;
    assert_eq!(st, 403, "a read JWT cannot load");
    secrets.push(rs.clone());
    secrets.push(es.clone());

    // Bad JWTs: 401 each, with the reason.
    let mut wrong_iss = claims("team-a", json!("read"), 600);
    wrong_iss["iss"] = json!("https://evil.example");
    let mut wrong_aud = claims("team-a", json!("read"), 600);
    wrong_aud["aud"] = json!("someone-else");
    // A token without an audience is not for this server (found by fuzzing:
    // the JWT library checks `aud` only when the token has one).
    let mut no_aud = claims("team-a", json!("read"), 600);
    no_aud.as_object_mut().unwrap().remove("aud");
    let mut no_tenant = claims("team-a", json!("read"), 600);
    no_tenant.as_object_mut().unwrap().remove("tenant");
    let mut bad_ns = claims("team-a", json!("read"), 600);
    bad_ns["tenant"] = json!("../team-b");
    for (token, status, why) in [
        (
            jwt(
                Algorithm::RS256,
                "rsa.pem",
                Some("rsa-1"),
                claims("team-a", json!("read"), -3600),
            ),
            401,
            "expired",
        ),
        (
            jwt(
                Algorithm::RS256,
                "rsa-untrusted.pem",
                Some("rsa-1"),
                claims("team-a", json!("read"), 600),
            ),
            401,
            "bad signature",
        ),
        (
            jwt(
                Algorithm::RS256,
                "rsa-untrusted.pem",
                Some("other"),
                claims("team-a", json!("read"), 600),
            ),
            401,
            "does not trust",
        ),
        (
            jwt(Algorithm::RS256, "rsa.pem", Some("rsa-1"), wrong_iss),
            401,
            "issuer",
        ),
        (
            jwt(Algorithm::RS256, "rsa.pem", Some("rsa-1"), wrong_aud),
            401,
            "audience",
        ),
        (
            jwt(Algorithm::RS256, "rsa.pem", Some("rsa-1"), no_aud),
            401,
            "missing claim 'aud'",
        ),
        (
            jwt(Algorithm::RS256, "rsa.pem", Some("rsa-1"), no_tenant),
            401,
            "tenant",
        ),
        (
            jwt(Algorithm::RS256, "rsa.pem", Some("rsa-1"), bad_ns),
            403,
            "namespace",
        ),
        (
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims("team-a", json!("admin"), 600),
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap(),
            401,
            "RS256",
        ),
        ("a.b.c".to_string(), 401, "malformed"),
    ] {
        let (st, v) = call(&http, "GET", &u("/v1/datasets"), Some(&token), None).await;
        assert_eq!(st.as_u16(), status, "{why}: {v}");
        assert!(v["message"].as_str().unwrap().contains(why), "{why}: {v}");
        assert!(!v.to_string().contains(&token), "the token is echoed");
        secrets.push(token);
    }

    // No secret in any log line.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("namespace=team-a"),
        "the test captured the server's logs"
    );
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a token appears in the logs");
    }
}

#[tokio::test]
async fn no_auth_means_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config {
        bind: "0.0.0.0:0".into(),
        store: dir.path().to_str().unwrap().into(),
        ..Default::default()
    };
    let e = Application::build(c.clone()).await.unwrap_err();
    assert!(matches!(e, StartError::Unprotected { .. }), "{e}");
    // The message says why and what to set (the CLI adds its flags).
    let e = e.to_string();
    assert!(
        e.contains("without auth") && e.contains("`insecure`"),
        "{e}"
    );
    c.insecure = true;
    assert!(Application::build(c).await.is_ok());
}
