//! The one error type of the store layer.

use std::fmt;

/// Result alias for the store layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when opening, reading, writing or caching objects.
///
/// Messages name the object (as a URL) and say what was expected. They never
/// contain credentials: object store errors are passed through [`redact`] first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The location string is not a URL or path tessera understands.
    #[error("invalid location '{url}': {reason}")]
    InvalidUrl {
        /// The location as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object or prefix does not exist.
    #[error("not found: {url}")]
    NotFound {
        /// The object that was asked for.
        url: String,
    },
    /// A create-if-absent write found the object already there.
    #[error("already exists: {url}")]
    AlreadyExists {
        /// The object that exists.
        url: String,
    },
    /// A conditional write or read failed its precondition (the object changed).
    #[error("precondition failed for {url}: the object changed since it was read")]
    Precondition {
        /// The object.
        url: String,
    },
    /// The credentials were accepted but lack permission, or were rejected.
    #[error("access denied to {url}: {message} (check the credentials: AWS_ACCESS_KEY_ID / AWS_PROFILE / --profile)")]
    PermissionDenied {
        /// The object.
        url: String,
        /// What the store said, secrets removed.
        message: String,
    },
    /// No usable credentials were found, or the store rejected them as invalid.
    #[error("cannot authenticate to {url}: {message}")]
    Unauthenticated {
        /// The object.
        url: String,
        /// What went wrong, secrets removed.
        message: String,
    },
    /// The store's endpoint could not be reached.
    #[error("cannot reach the store for {url}: {message} (check --endpoint / AWS_ENDPOINT_URL and the network)")]
    Unreachable {
        /// The object.
        url: String,
        /// The transport error, secrets removed.
        message: String,
    },
    /// Bad configuration (profile, endpoint, cache settings...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Any other error reported by the object store.
    #[error("storage error at {url}: {message}")]
    Store {
        /// The object.
        url: String,
        /// The store's message, secrets removed.
        message: String,
    },
    /// A local file-system error (cache, local outputs).
    #[error("{action} {path}: {source}")]
    Io {
        /// What tessera was doing ("cannot create", "cannot read", ...).
        action: &'static str,
        /// The local path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Translate an `object_store` error about `url` into a tessera error.
    pub fn from_object_store(url: impl fmt::Display, err: object_store::Error) -> Self {
        let url = url.to_string();
        match err {
            object_store::Error::NotFound { .. } => Error::NotFound { url },
            object_store::Error::AlreadyExists { .. } => Error::AlreadyExists { url },
            object_store::Error::Precondition { .. } => Error::Precondition { url },
            object_store::Error::PermissionDenied { source, .. } => Error::PermissionDenied {
                url,
                message: redact(&source.to_string()),
            },
            object_store::Error::Unauthenticated { source, .. } => Error::Unauthenticated {
                url,
                message: redact(&source.to_string()),
            },
            other => {
                let message = redact(&error_chain(&other));
                if message.contains("169.254.169.254") || message.contains("169.254.170.2") {
                    Error::Unauthenticated {
                        url,
                        message: "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                                  or use --profile / AWS_PROFILE, or run where web identity or instance \
                                  metadata provides credentials"
                            .into(),
                    }
                } else if is_transport_error(&message) {
                    Error::Unreachable { url, message }
                } else if message.contains("InvalidAccessKeyId")
                    || message.contains("SignatureDoesNotMatch")
                    || message.contains("No such key")
                    || message.contains("Forbidden")
                {
                    Error::PermissionDenied { url, message }
                } else {
                    Error::Store { url, message }
                }
            }
        }
    }

    /// Build an [`Error::Io`].
    pub fn io(
        action: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// True when the error means the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

fn is_transport_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "connection refused",
        "error sending request",
        "dns error",
        "failed to lookup address",
        "connect error",
        "tcp connect",
        "timed out",
        "operation timed out",
        "connection reset",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Remove anything that looks like a credential from a message: query-string
/// signatures, `Authorization` headers, access keys and secrets given in the environment.
pub fn redact(message: &str) -> String {
    let mut out = message.to_string();
    for var in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
    ] {
        if let Ok(v) = std::env::var(var) {
            if v.len() >= 4 {
                out = out.replace(&v, "[redacted]");
            }
        }
    }
    for key in [
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
        "sig=",
        "Signature=",
    ] {
        let mut start = 0;
        while let Some(pos) = out[start..].find(key) {
            let begin = start + pos + key.len();
            let end = out[begin..]
                .find(['&', ' ', '"', '\'', ')'])
                .map(|e| begin + e)
                .unwrap_or(out.len());
            out.replace_range(begin..end, "[redacted]");
            start = begin + "[redacted]".len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_signatures() {
        let m = redact("GET http://x/b/k?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA123 failed");
        assert!(!m.contains("abcdef"), "{m}");
        assert!(!m.contains("AKIA123"), "{m}");
        assert!(m.contains("[redacted]"));
    }

    #[test]
    fn not_found_maps() {
        let e = Error::from_object_store(
            "s3://b/k",
            object_store::Error::NotFound {
                path: "k".into(),
                source: "gone".into(),
            },
        );
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "not found: s3://b/k");
    }
}
