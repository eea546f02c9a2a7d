//! `tessera._tessera`: the native module of the tessera Python package.
//!
//! One call is one operation of the tessera library crates (the same the
//! command line and the server use); this crate only converts arguments,
//! results and errors. The pure-Python package `tessera` (beside this
//! crate) is the public face: it adds pandas conversion, keyword store
//! options, report objects and the exception classes.
//!
//! Every call that does I/O or real work releases the GIL and runs on one
//! tokio runtime per process (made again after `fork`); a pending signal
//! (Ctrl-C) cancels a waiting call.

use pyo3::prelude::*;

mod arrow_io;
mod datasets;
mod errors;
mod manifest;
mod pack;
mod runtime;
mod slice;
mod sql;
mod store;

#[pymodule]
fn _tessera(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<store::PyStoreOptions>()?;
    m.add_function(wrap_pyfunction!(store::ls, m)?)?;
    m.add_function(wrap_pyfunction!(store::fetch, m)?)?;
    m.add_class::<manifest::PyManifest>()?;
    m.add_function(wrap_pyfunction!(manifest::build_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(pack::pack, m)?)?;
    m.add_function(wrap_pyfunction!(pack::compact, m)?)?;
    m.add_class::<datasets::PyDatasets>()?;
    m.add_function(wrap_pyfunction!(sql::sql, m)?)?;
    m.add_class::<slice::PyIndex>()?;
    m.add_class::<slice::PySlice>()?;
    m.add_function(wrap_pyfunction!(slice::index, m)?)?;
    m.add_function(wrap_pyfunction!(slice::open_index, m)?)?;
    m.add_function(wrap_pyfunction!(slice::plan, m)?)?;
    Ok(())
}
