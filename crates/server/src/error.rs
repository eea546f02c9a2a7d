//! The one error type of the server, and how it becomes an HTTP response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every failure a handler can report. Client mistakes map to 4xx with a
/// message that names the parameter, table or column at fault; only faults
/// of the server or its store are 5xx.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A bad parameter, filter, name or body (400).
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or credentials that do not check out (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right to do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such table, file, dataset or manifest (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state, e.g. a concurrent
    /// writer won (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the configured limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many queries are running; retry after a second (429).
    #[error("{0}")]
    TooManyRequests(String),
    /// The query ran longer than the configured timeout (504).
    #[error("{0}")]
    Timeout(String),
    /// The store failed or is unreachable (502).
    #[error("{0}")]
    Store(String),
    /// A fault of the server itself (500).
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `bad_request`, `not_found`.
    pub error: &'static str,
    /// What went wrong, for a human.
    pub message: String,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Store(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::Timeout(_) => "timeout",
            ApiError::Store(_) => "store_error",
            ApiError::Internal(_) => "internal",
        }
    }

    pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "{self}");
        }
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        match self {
            ApiError::TooManyRequests(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthorized(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

impl From<tessera_store::Error> for ApiError {
    fn from(e: tessera_store::Error) -> Self {
        use tessera_store::Error as E;
        match e {
            E::NotFound { .. } => ApiError::NotFound(e.to_string()),
            E::InvalidUrl { .. } => ApiError::BadRequest(e.to_string()),
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                ApiError::Store(format!("the server's store refused access: {e}"))
            }
            _ => ApiError::Store(e.to_string()),
        }
    }
}

impl From<tessera_datasets::Error> for ApiError {
    fn from(e: tessera_datasets::Error) -> Self {
        use tessera_datasets::Error as E;
        match &e {
            E::InvalidName { .. }
            | E::InvalidOption { .. }
            | E::InvalidPredicate { .. }
            | E::NoSuchColumn { .. }
            | E::InvalidKeyColumn { .. }
            | E::ReservedColumn { .. }
            | E::UnsupportedType { .. }
            | E::SchemaMismatch { .. }
            | E::LayoutMismatch { .. }
            | E::InvalidRecord { .. }
            | E::UnknownFormat { .. }
            | E::EmptyInput { .. }
            | E::NoLoads { .. }
            | E::NoSuchVersion { .. }
            | E::Format(_) => ApiError::BadRequest(e.to_string()),
            E::NotFound { .. } | E::Vacuumed { .. } => ApiError::NotFound(e.to_string()),
            E::Conflict { .. } | E::TooManyConflicts { .. } | E::UnsafeStore { .. } => {
                ApiError::Conflict(e.to_string())
            }
            E::Store(s) => match s {
                tessera_store::Error::NotFound { .. } => ApiError::NotFound(e.to_string()),
                _ => ApiError::Store(e.to_string()),
            },
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<tessera_manifest::Error> for ApiError {
    fn from(e: tessera_manifest::Error) -> Self {
        use tessera_manifest::Error as E;
        match &e {
            E::Store(tessera_store::Error::NotFound { .. }) | E::NotFound { .. } => {
                ApiError::NotFound(e.to_string())
            }
            E::Store(_) | E::Parquet { .. } | E::Arrow(_) => ApiError::Store(e.to_string()),
            E::Internal(_) => ApiError::Internal(e.to_string()),
            _ => ApiError::BadRequest(e.to_string()),
        }
    }
}

/// A handler result.
pub type ApiResult<T> = Result<T, ApiError>;
