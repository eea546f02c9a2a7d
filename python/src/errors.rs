//! Library errors as the exceptions of `tessera.errors`.
//!
//! The exception classes are defined in Python (so they pickle and can
//! inherit from `FileNotFoundError`, `ValueError`, …); each library error
//! variant is mapped to one of them here, with the library's message and
//! the variant's name as `.variant`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The `tessera.errors` class for an error and its variant name.
#[derive(Debug, Clone, Copy)]
pub enum Class {
    NotFound,
    AlreadyExists,
    InvalidInput,
    Schema,
    Conflict,
    StaleIndex,
    AccessDenied,
    Store,
    Internal,
    Other,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::NotFound => "NotFoundError",
            Class::AlreadyExists => "AlreadyExistsError",
            Class::InvalidInput => "InvalidInputError",
            Class::Schema => "SchemaError",
            Class::Conflict => "ConflictError",
            Class::StaleIndex => "StaleIndexError",
            Class::AccessDenied => "AccessDeniedError",
            Class::Store => "StoreError",
            Class::Internal => "InternalError",
            Class::Other => "TesseraError",
        }
    }
}

/// The variant's name, read from its `Debug` form (`NotFound { .. }`).
fn variant_of(e: &dyn std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    s.split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The class for a variant name (shared by every crate's error).
fn class_of_variant(v: &str) -> Class {
    match v {
        "NotFound" | "NoIndex" | "NoLoads" | "NoSuchVersion" | "NoSuchSlice" | "NoInput"
        | "Vacuumed" => Class::NotFound,
        "AlreadyExists" => Class::AlreadyExists,
        "SchemaMismatch" | "NoSuchColumn" | "MissingColumn" | "UnsupportedType"
        | "ReservedColumn" | "LayoutMismatch" | "InvalidKeyColumn" | "InvalidSchema"
        | "FormatMismatch" | "MixedInputs" | "UnknownField" => Class::Schema,
        "Conflict" | "TooManyConflicts" | "Precondition" => Class::Conflict,
        "StaleIndex" => Class::StaleIndex,
        "PermissionDenied" | "Unauthenticated" => Class::AccessDenied,
        "Unreachable" | "Store" | "Io" | "Journal" | "Parquet" | "Arrow" => Class::Store,
        "Internal" => Class::Internal,
        "Delta" | "Query" => Class::Other,
        _ => Class::InvalidInput,
    }
}

/// An error the binding raises: the class, the variant and the message.
#[derive(Debug)]
pub struct Raised {
    class: Class,
    variant: String,
    message: String,
}

impl Raised {
    pub fn new(class: Class, variant: impl Into<String>, message: impl Into<String>) -> Self {
        Raised {
            class,
            variant: variant.into(),
            message: message.into(),
        }
    }

    /// A bad argument from Python (raised as `InvalidInputError`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Raised::new(Class::InvalidInput, "InvalidArgument", message)
    }
}

impl From<Raised> for PyErr {
    fn from(r: Raised) -> PyErr {
        Python::attach(|py| make(py, r.class, &r.variant, &r.message))
    }
}

fn make(py: Python<'_>, class: Class, variant: &str, message: &str) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let module = py.import("tessera.errors")?;
        let cls = module.getattr(class.name())?;
        let exc = cls.call1(PyTuple::new(py, [message])?)?;
        exc.setattr("variant", variant)?;
        Ok(PyErr::from_value(exc))
    })();
    built.unwrap_or_else(|e| {
        PyRuntimeError::new_err(format!(
            "{message} (and tessera.errors could not be imported: {e})"
        ))
    })
}

/// What a library error is: its exception class and the variant named in
/// `.variant`, both the innermost error's (through the `Store(…)` and
/// `Format(…)` wrappers).
pub trait Kind: std::fmt::Display {
    fn kind(&self) -> (Class, String);
}

/// The class and variant of an error that wraps no other.
fn own(e: &dyn std::fmt::Debug) -> (Class, String) {
    let v = variant_of(e);
    (class_of_variant(&v), v)
}

impl Kind for tessera_store::Error {
    fn kind(&self) -> (Class, String) {
        own(self)
    }
}

impl Kind for tessera_formats::Error {
    fn kind(&self) -> (Class, String) {
        match self {
            tessera_formats::Error::Store(s) => s.kind(),
            other => own(other),
        }
    }
}

impl Kind for tessera_manifest::Error {
    fn kind(&self) -> (Class, String) {
        match self {
            tessera_manifest::Error::Store(s) => s.kind(),
            other => own(other),
        }
    }
}

impl Kind for tessera_pack::Error {
    fn kind(&self) -> (Class, String) {
        match self {
            tessera_pack::Error::Store(s) => s.kind(),
            tessera_pack::Error::Format(f) => f.kind(),
            other => own(other),
        }
    }
}

impl Kind for tessera_datasets::Error {
    fn kind(&self) -> (Class, String) {
        match self {
            tessera_datasets::Error::Store(s) => s.kind(),
            tessera_datasets::Error::Format(f) => f.kind(),
            other => own(other),
        }
    }
}

impl Kind for tessera_slice::Error {
    fn kind(&self) -> (Class, String) {
        match self {
            tessera_slice::Error::Store(s) => s.kind(),
            other => own(other),
        }
    }
}

/// Library results into Python results.
pub trait ResultExt<T> {
    fn py(self) -> PyResult<T>;
}

impl<T, E: Kind> ResultExt<T> for Result<T, E> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| {
            let (class, variant) = e.kind();
            Raised::new(class, variant, e.to_string()).into()
        })
    }
}

/// An Arrow error while moving data between Python and Rust.
pub fn arrow_err(e: arrow::error::ArrowError) -> PyErr {
    Raised::new(Class::InvalidInput, "Arrow", e.to_string()).into()
}
