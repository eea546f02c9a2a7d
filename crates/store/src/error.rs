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
    #[error("access denied to {url}: {message}")]
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
    #[error("cannot reach the store for {url}: {message}")]
    Unreachable {
        /// The object.
        url: String,
        /// The transport error, secrets removed.
        message: String,
    },
    /// Bad configuration (profile, endpoint, cache settings...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A fault of tessera itself (a background task that panicked), not of
    /// the input or the store.
    #[error("internal error: {0}")]
    Internal(String),
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
        Self::from_object_store_redacting(url, err, &[])
    }

    /// [`Error::from_object_store`], also removing `secrets` from the message.
    pub(crate) fn from_object_store_redacting(
        url: impl fmt::Display,
        err: object_store::Error,
        secrets: &[String],
    ) -> Self {
        let url = url.to_string();
        let redact = |m: &str| redact_secrets(m, secrets);
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
                        message: "no AWS credentials found: no access keys or profile are \
                                  configured, and no web identity, container or instance \
                                  metadata credentials are available here"
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

/// Remove request signatures and signed credentials from a message
/// (`X-Amz-Signature=…`, `X-Amz-Credential=…`, `sig=…`, …).
///
/// Secrets the caller configured are removed by
/// [`StoreOptions::redact`](crate::StoreOptions::redact), which knows them;
/// errors of a [`Location`](crate::Location) have them removed already.
pub fn redact(message: &str) -> String {
    redact_secrets(message, &[])
}

/// [`redact`], also replacing every occurrence of each of `secrets`
/// (values shorter than 4 characters are left: they would mangle the text
/// and reveal little).
pub(crate) fn redact_secrets(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for secret in secrets {
        if secret.len() >= 4 {
            out = out.replace(secret.as_str(), "[redacted]");
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
    fn store_errors_lose_the_secrets_they_are_given() {
        let e = Error::from_object_store_redacting(
            "s3://b/k",
            object_store::Error::Generic {
                store: "S3",
                source: "request with key topsecret-1 failed: Forbidden".into(),
            },
            &["topsecret-1".to_string()],
        );
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
        let m = e.to_string();
        assert!(
            !m.contains("topsecret-1") && m.contains("[redacted]"),
            "{m}"
        );
    }

    #[test]
    fn messages_name_no_command_line_flag() {
        let e = Error::from_object_store(
            "s3://b/k",
            object_store::Error::Generic {
                store: "S3",
                source: "error sending request for url (http://169.254.169.254/latest/api/token)"
                    .into(),
            },
        );
        assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
        assert!(e.to_string().contains("no AWS credentials found"), "{e}");
        assert!(!e.to_string().contains("--"), "{e}");
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
