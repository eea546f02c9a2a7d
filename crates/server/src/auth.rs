//! Who is calling: API tokens (stored as SHA-256 hashes) and JWT bearer
//! tokens (RS256/ES256) checked against a JWKS, each giving a namespace and
//! a role.
//!
//! The auth file is TOML:
//!
//! ```toml
//! [[tokens]]
//! name = "etl"                       # shown in logs instead of the secret
//! sha256 = "9f86d08…"                # `tessera serve --new-token` prints one
//! namespace = "team-a"
//! role = "write"                     # read | write | admin
//!
//! [jwt]
//! jwks = "https://cognito-idp.eu-west-1.amazonaws.com/POOL/.well-known/jwks.json"
//! issuer = "https://cognito-idp.eu-west-1.amazonaws.com/POOL"
//! audience = ["client-id"]
//! namespace_claim = "sub"            # default
//! role_claim = "cognito:groups"      # optional; a string or a list
//! default_role = "read"
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::error::ApiError;

/// What a caller may do in its namespace. Ordered: admin ⊃ write ⊃ read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read tables, datasets and manifests.
    Read,
    /// Also load datasets.
    Write,
    /// Everything in the namespace.
    Admin,
}

impl Role {
    /// The role a name or a group claim stands for, case-insensitively
    /// (`write`, `tessera-write` or `tessera:write`); `None` for others.
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "read" | "tessera-read" | "tessera:read" => Some(Role::Read),
            "write" | "tessera-write" | "tessera:write" => Some(Role::Write),
            "admin" | "tessera-admin" | "tessera:admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The namespace every dataset and manifest access is confined to.
    pub namespace: String,
    /// What the caller may do there.
    pub role: Role,
    /// Who it is, for logs: a token's name or a JWT subject (never a secret).
    pub subject: String,
}

impl Identity {
    /// Refuse unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {role:?} role; '{}' has {:?}",
                self.subject, self.role
            )))
        }
    }

    /// Refuse unless the caller's namespace is `ns` (`None` = public).
    pub fn check_namespace(&self, ns: Option<&str>, what: &str) -> Result<(), ApiError> {
        match ns {
            Some(ns) if ns != self.namespace => Err(ApiError::Forbidden(format!(
                "{what} belongs to another namespace than '{}'",
                self.namespace
            ))),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
    jwt: Option<JwtConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenConfig {
    name: String,
    sha256: String,
    namespace: String,
    role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtConfig {
    jwks: String,
    issuer: Option<String>,
    #[serde(default)]
    audience: OneOrMany,
    #[serde(default = "default_namespace_claim")]
    namespace_claim: String,
    role_claim: Option<String>,
    #[serde(default = "default_role")]
    default_role: Role,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

fn default_namespace_claim() -> String {
    "sub".into()
}
fn default_role() -> Role {
    Role::Read
}
fn default_leeway() -> u64 {
    30
}

struct Token {
    name: String,
    namespace: String,
    role: Role,
}

struct Jwt {
    config: JwtConfig,
    keys: RwLock<Keys>,
    base: Option<PathBuf>,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// The configured ways to authenticate.
pub struct Auth {
    tokens: HashMap<[u8; 32], Token>,
    jwt: Option<Jwt>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens.len())
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

/// Make a new random API token: `(token, sha256 hex)`. Give the token to the
/// caller; put only the hash in the auth file.
pub fn new_token() -> (String, String) {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    let token = format!(
        "tsr_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    (token, hash)
}

impl Auth {
    /// Load an auth file (and the JWKS it names).
    pub async fn load(path: &Path) -> Result<Auth, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read auth file {}: {e}", path.display()))?;
        Auth::from_toml(&text, path.parent())
            .await
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse an auth document; a relative JWKS path is taken from `base`.
    pub async fn from_toml(text: &str, base: Option<&Path>) -> Result<Auth, String> {
        let file: AuthFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut tokens = HashMap::new();
        for t in file.tokens {
            let raw = hex::decode(t.sha256.trim())
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or_else(|| {
                    format!(
                        "token '{}': sha256 must be 64 hex digits (the token's SHA-256)",
                        t.name
                    )
                })?;
            tessera_datasets::name::check_namespace(&t.namespace)
                .map_err(|e| format!("token '{}': {e}", t.name))?;
            if tokens
                .insert(
                    raw,
                    Token {
                        name: t.name.clone(),
                        namespace: t.namespace,
                        role: t.role,
                    },
                )
                .is_some()
            {
                return Err(format!("token '{}': the same hash is listed twice", t.name));
            }
        }
        let jwt = match file.jwt {
            None => None,
            Some(config) => {
                let base = base.map(Path::to_path_buf);
                let set = fetch_jwks(&config.jwks, base.as_deref()).await?;
                Some(Jwt {
                    config,
                    keys: RwLock::new(Keys {
                        set,
                        fetched: Instant::now(),
                    }),
                    base,
                })
            }
        };
        if tokens.is_empty() && jwt.is_none() {
            return Err(
                "the auth file lists no tokens and no [jwt] section: nobody could call".into(),
            );
        }
        Ok(Auth { tokens, jwt })
    }

    /// Check an `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Identity, ApiError> {
        let Some(h) = header else {
            return Err(ApiError::Unauthorized(
                "this server needs a bearer token (Authorization: Bearer …)".into(),
            ));
        };
        let Some(token) = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .map(str::trim)
        else {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be 'Bearer <token>'".into(),
            ));
        };
        if token.split('.').count() == 3 {
            return match &self.jwt {
                Some(j) => j.verify(token).await,
                None => Err(ApiError::Unauthorized(
                    "this server does not accept JWTs; use an API token".into(),
                )),
            };
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match self.tokens.get(&hash) {
            Some(t) => Ok(Identity {
                namespace: t.namespace.clone(),
                role: t.role,
                subject: t.name.clone(),
            }),
            None => Err(ApiError::Unauthorized(
                "unknown or revoked API token".into(),
            )),
        }
    }
}

async fn fetch_jwks(src: &str, base: Option<&Path>) -> Result<JwkSet, String> {
    let text = if src.starts_with("https://") || src.starts_with("http://") {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(src)
            .send()
            .await
            .map_err(|e| format!("cannot fetch JWKS {src}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("cannot fetch JWKS {src}: HTTP {}", resp.status()));
        }
        resp.text()
            .await
            .map_err(|e| format!("cannot fetch JWKS {src}: {e}"))?
    } else {
        let p = Path::new(src.strip_prefix("file://").unwrap_or(src));
        let p = match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        };
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read JWKS {}: {e}", p.display()))?
    };
    serde_json::from_str(&text).map_err(|e| format!("JWKS {src} is not a JWK set: {e}"))
}

impl Jwt {
    async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, ApiError> {
        for attempt in 0..2 {
            {
                let keys = self.keys.read().await;
                let found = match kid {
                    Some(k) => keys.set.find(k),
                    None if keys.set.keys.len() == 1 => keys.set.keys.first(),
                    None => None,
                };
                if let Some(jwk) = found {
                    return DecodingKey::from_jwk(jwk)
                        .map_err(|_| ApiError::Unauthorized("the token's key is unusable".into()));
                }
                // Keys rotate: look again, at most once a minute.
                if attempt == 1 || keys.fetched.elapsed() < Duration::from_secs(60) {
                    break;
                }
            }
            let mut keys = self.keys.write().await;
            if keys.fetched.elapsed() >= Duration::from_secs(60) {
                keys.fetched = Instant::now();
                match fetch_jwks(&self.config.jwks, self.base.as_deref()).await {
                    Ok(set) => keys.set = set,
                    Err(e) => tracing::warn!("JWKS refresh failed: {e}"),
                }
            }
        }
        Err(ApiError::Unauthorized(
            "the token is signed by a key this server does not trust".into(),
        ))
    }

    async fn verify(&self, token: &str) -> Result<Identity, ApiError> {
        let bad = |why: &str| ApiError::Unauthorized(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(bad("only RS256 and ES256 tokens are accepted"));
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let c = &self.config;
        let mut v = Validation::new(header.alg);
        v.leeway = c.leeway_seconds;
        v.set_required_spec_claims(&["exp"]);
        if let Some(iss) = &c.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        match &c.audience {
            OneOrMany::None => v.validate_aud = false,
            OneOrMany::One(a) => v.set_audience(&[a]),
            OneOrMany::Many(a) => v.set_audience(a),
        }
        if !matches!(c.audience, OneOrMany::None) {
            // jsonwebtoken checks `aud` only when the token has one: a
            // token without an audience would pass for every audience.
            v.required_spec_claims.insert("aud".into());
        }
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &v)
                .map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind as K;
                    match e.kind() {
                        K::ExpiredSignature => bad("expired"),
                        K::InvalidSignature => bad("bad signature"),
                        K::InvalidIssuer => bad("wrong issuer"),
                        K::InvalidAudience => bad("wrong audience"),
                        K::ImmatureSignature => bad("not valid yet"),
                        K::MissingRequiredClaim(c) => bad(&format!("missing claim '{c}'")),
                        _ => bad("cannot be verified"),
                    }
                })?;
        let claims = data.claims;
        let namespace = claims
            .get(&c.namespace_claim)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                bad(&format!(
                    "no string claim '{}' to take the namespace from",
                    c.namespace_claim
                ))
            })?
            .to_string();
        if tessera_datasets::name::check_namespace(&namespace).is_err() {
            return Err(ApiError::Forbidden(format!(
                "claim '{}' is not a usable namespace (letters, digits, '.', '_' and '-')",
                c.namespace_claim
            )));
        }
        let role = match &c.role_claim {
            None => c.default_role,
            Some(rc) => match claims.get(rc) {
                Some(serde_json::Value::String(s)) => Role::parse(s).unwrap_or(c.default_role),
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().and_then(Role::parse))
                    .max()
                    .unwrap_or(c.default_role),
                _ => c.default_role,
            },
        };
        let subject = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .unwrap_or("jwt")
            .to_string();
        Ok(Identity {
            namespace,
            role,
            subject,
        })
    }
}

/// The shared, optional authenticator.
pub type SharedAuth = Option<Arc<Auth>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn api_tokens_are_checked_by_hash() {
        let (token, hash) = new_token();
        assert!(token.starts_with("tsr_") && hash.len() == 64);
        let auth = Auth::from_toml(
            &format!("[[tokens]]\nname='etl'\nsha256='{hash}'\nnamespace='team-a'\nrole='write'\n"),
            None,
        )
        .await
        .unwrap();
        let id = auth
            .authenticate(Some(&format!("Bearer {token}")))
            .await
            .unwrap();
        assert_eq!((id.namespace.as_str(), id.role), ("team-a", Role::Write));
        assert!(id.require(Role::Admin).is_err());
        assert!(id.check_namespace(Some("team-b"), "x").is_err());
        for h in [None, Some("Basic abc"), Some("Bearer tsr_nope")] {
            let e = auth.authenticate(h).await.unwrap_err();
            assert_eq!(e.status(), 401);
            assert!(!e.to_string().contains(&token));
        }
    }

    #[tokio::test]
    async fn bad_auth_files_are_refused() {
        for (t, want) in [
            ("", "no tokens"),
            ("[[tokens]]\nname='a'\nsha256='zz'\nnamespace='n'\nrole='read'", "64 hex"),
            (
                "[[tokens]]\nname='a'\nsha256='00000000000000000000000000000000000000000000000000000000000000aa'\nnamespace='n'\nrole='boss'",
                "role",
            ),
            (
                "[[tokens]]\nname='a'\nsha256='00000000000000000000000000000000000000000000000000000000000000aa'\nnamespace='../x'\nrole='read'",
                "namespace",
            ),
        ] {
            let e = Auth::from_toml(t, None).await.unwrap_err();
            assert!(e.contains(want), "{t}: {e}");
        }
    }
}
