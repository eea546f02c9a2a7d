//! Targets over what a server reads: its configuration, its auth file and
//! the `Authorization` header of every request.

use std::path::Path;
use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tessera_server::{Auth, Config, Role};

use crate::{runtime, split};

/// The server tests' keys: `jwks.json` holds the public halves of `rsa.pem`
/// and `ec.pem`; `rsa-untrusted.pem` is not in it.
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/server/tests/keys");
const ISSUER: &str = "https://issuer.example/pool";
const AUDIENCE: &str = "tessera-api";
/// The one API token the [`jwt`] target's server knows.
const TOKEN: &str = "tsr_fuzz-known-token";

/// A server configuration file: parsing, checking and reading the bind
/// address give values or errors, never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Config::from_toml(text, "fuzz.toml") {
        if c.validate().is_ok() {
            let _ = c.bind_addr();
        }
    }
}

/// An auth file (before the first NUL) and an `Authorization` header
/// (after it): the file gives an authenticator or an error; the header an
/// identity or a 401, never a panic. (A JWKS by URL is skipped: the
/// fuzzer must not reach the network; a relative path reads the test keys.)
pub fn auth(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, header) = text.split_once('\0').unwrap_or((text, ""));
    if file.contains("http") {
        return;
    }
    runtime().block_on(async {
        if let Ok(auth) = Auth::from_toml(file, Some(Path::new(KEYS))).await {
            let _ = auth.authenticate(Some(header)).await;
            let _ = auth.authenticate(None).await;
        }
    });
}

fn known_auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(TOKEN));
        let file = format!(
            r#"
[[tokens]]
name = "etl"
sha256 = "{hash}"
namespace = "team-a"
role = "write"

[jwt]
jwks = "jwks.json"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
role_claim = "roles"
"#
        );
        runtime()
            .block_on(Auth::from_toml(&file, Some(Path::new(KEYS))))
            .expect("the fuzz auth file")
    })
}

fn key(file: &str, alg: Algorithm) -> EncodingKey {
    let pem = std::fs::read(format!("{KEYS}/{file}")).expect("a test key");
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).expect("an EC key"),
        _ => EncodingKey::from_rsa_pem(&pem).expect("an RSA key"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `Authorization` headers against a server with one API token and a JWKS.
/// The first byte picks the mode:
/// - 0: the rest is the header as sent: only the known token is accepted;
/// - 1–3: the rest is a JSON claims object, signed with the trusted EC key,
///   the trusted RSA key (with or without a kid), or an untrusted RSA key
///   under a trusted kid: untrusted signatures are refused, and an accepted
///   token was unexpired, from the issuer, for the audience, and gives the
///   namespace of its `sub` and the highest role of its `roles`.
pub fn jwt(data: &[u8]) {
    let Some(([mode], rest)) = split::<1>(data) else {
        return;
    };
    let auth = known_auth();
    if mode % 4 == 0 {
        let Ok(header) = std::str::from_utf8(rest) else {
            return;
        };
        let got = runtime().block_on(auth.authenticate(Some(header)));
        if let Ok(id) = got {
            assert_eq!(id.subject, "etl", "accepted {header:?}");
            assert_eq!(id.namespace, "team-a");
        }
        return;
    }
    let Ok(claims) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(rest)
    else {
        return;
    };
    // Which key signs: 0 the trusted EC key, 1 the trusted RSA key, 2 an
    // RSA key outside the JWKS.
    let (k, alg, kid, trusted) = match mode % 4 {
        1 => (0, Algorithm::ES256, Some("ec-1"), true),
        2 if mode & 4 == 0 => (1, Algorithm::RS256, Some("rsa-1"), true),
        2 => (1, Algorithm::RS256, None, false), // two keys, no kid: which one?
        _ => (2, Algorithm::RS256, Some("rsa-1"), false),
    };
    static KEYS_BY_FILE: OnceLock<[EncodingKey; 3]> = OnceLock::new();
    let keys = KEYS_BY_FILE.get_or_init(|| {
        [
            key("ec.pem", Algorithm::ES256),
            key("rsa.pem", Algorithm::RS256),
            key("rsa-untrusted.pem", Algorithm::RS256),
        ]
    });
    let k = &keys[k];
    let mut h = Header::new(alg);
    h.kid = kid.map(String::from);
    let Ok(token) = jsonwebtoken::encode(&h, &claims, k) else {
        return;
    };
    let got = runtime().block_on(auth.authenticate(Some(&format!("Bearer {token}"))));
    let Ok(id) = got else {
        return;
    };
    assert!(
        trusted,
        "a token the server cannot trust was accepted: {claims:?}"
    );
    let exp = claims.get("exp").and_then(|v| v.as_f64());
    assert!(
        exp.is_some_and(|e| e >= (now() - 31) as f64),
        "an expired token or one without exp was accepted: {claims:?}"
    );
    assert_eq!(claims.get("iss").and_then(|v| v.as_str()), Some(ISSUER));
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == AUDIENCE,
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    assert!(
        aud_ok,
        "a token for another audience was accepted: {claims:?}"
    );
    assert_eq!(
        Some(id.namespace.as_str()),
        claims.get("sub").and_then(|v| v.as_str())
    );
    let role = match claims.get("roles") {
        Some(serde_json::Value::String(s)) => Role::parse(s),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().and_then(Role::parse))
            .max(),
        _ => None,
    };
    assert_eq!(id.role, role.unwrap_or(Role::Read), "role from {claims:?}");
}
