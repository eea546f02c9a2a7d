//! Read-only SQL over files, folders, datasets, manifests and Arrow data.

use std::sync::Arc;

use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use pyo3::prelude::*;
use tessera_datasets::{sql as dsql, AsOf};
use tessera_store::Location;

use crate::arrow_io::{batches_from_py, table_to_py};
use crate::datasets::PyDatasets;
use crate::errors::{Raised, ResultExt};
use crate::runtime::block_on;
use crate::store::{opts, PyStoreOptions};

/// Run one query (SELECT, WITH, VALUES, EXPLAIN) over the tables given and
/// return its rows as a `pyarrow.Table`.
///
/// `files`: `(table name, URL, format or None)`: a file, or a folder when
/// the URL ends in `/` or names no object. `datasets`: `(table name,
/// Datasets, dataset name, Delta version or None)`. `arrow`: `(table name,
/// Arrow data)`.
#[pyfunction]
#[pyo3(signature = (query, *, files=Vec::new(), datasets=Vec::new(), arrow=Vec::new(), limit=None, store=None))]
#[allow(clippy::type_complexity)]
pub fn sql<'py>(
    py: Python<'py>,
    query: String,
    files: Vec<(String, String, Option<String>)>,
    datasets: Vec<(String, PyRef<'py, PyDatasets>, String, Option<u64>)>,
    arrow: Vec<(String, Bound<'py, PyAny>)>,
    limit: Option<usize>,
    store: Option<PyRef<'py, PyStoreOptions>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ctx = SessionContext::new_with_config(dsql::session_config());
    for (name, data) in &arrow {
        let (schema, batches) = batches_from_py(py, data)?;
        let table = MemTable::try_new(schema, vec![batches])
            .map_err(|e| PyErr::from(Raised::invalid(format!("table '{name}': {e}"))))?;
        register(&ctx, name, Arc::new(table))?;
    }
    let gets: Vec<(String, tessera_datasets::Get)> = datasets
        .iter()
        .map(|(name, ds, dsname, version)| {
            let mut g = ds.inner().get(dsname);
            if let Some(v) = version {
                g = g.with_as_of(AsOf::Version(*v));
            }
            (name.clone(), g)
        })
        .collect();
    let o = opts(store.as_deref());
    let (schema, batches) = block_on(py, async move {
        for (name, url, format) in &files {
            let loc = Location::open(url, &o).await.py()?;
            let folder = dsql::is_folder(url, &loc).await;
            let t = dsql::source_table(&ctx, &loc, folder, format.as_deref())
                .await
                .py()?;
            register(&ctx, name, t)?;
        }
        for (name, get) in gets {
            let t = get.table_provider(&ctx).await.py()?;
            register(&ctx, &name, t)?;
        }
        let stream = dsql::query(&ctx, &query, limit).await.py()?;
        let schema = stream.schema();
        let batches: Vec<_> = stream
            .try_collect()
            .await
            .map_err(|e| PyErr::from(Raised::invalid(format!("SQL: {e}"))))?;
        Ok((schema, batches))
    })?;
    table_to_py(py, batches, schema)
}

/// Register a table under `name` (a name used twice is an input error).
fn register(
    ctx: &SessionContext,
    name: &str,
    table: Arc<dyn deltalake::datafusion::catalog::TableProvider>,
) -> PyResult<()> {
    ctx.register_table(name, table)
        .map(|_| ())
        .map_err(|e| Raised::invalid(format!("table '{name}': {e}")).into())
}
