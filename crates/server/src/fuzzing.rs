//! Entry points for the fuzz targets in `fuzz/` (built with the `fuzzing`
//! feature only; not part of the API). Each panics when a law breaks.
//!
//! The law behind both: a request the server accepts runs. A mistake in a
//! query string or a SQL text is a 400 before anything runs; an error after
//! that point would be a 5xx for the caller's input, which is a server bug.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use deltalake::datafusion::common::tree_node::TreeNode;
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::logical_expr::LogicalPlan;
use deltalake::datafusion::prelude::SessionContext;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::params::Params;
use crate::query;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// A small table with a column of each kind a filter can compare, nulls
/// included.
fn table() -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("day", DataType::Date32, true),
        Field::new("x", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, -2, 3, i64::MAX])),
        Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some("%_\\"),
            Some("été"),
        ])),
        Arc::new(Date32Array::from(vec![
            Some(0),
            Some(19_000),
            None,
            Some(-1),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(0.5),
            Some(f64::NAN),
            None,
            Some(-1e300),
        ])),
        Arc::new(BooleanArray::from(vec![
            Some(true),
            None,
            Some(false),
            None,
        ])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![Some(0), None, Some(1_700_000_000_000_000), None])
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).expect("a batch")
}

fn context() -> SessionContext {
    let batch = table();
    let ctx = SessionContext::new_with_config(crate::tables::session_config());
    let mem = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("a table");
    ctx.register_table("t", Arc::new(mem)).expect("registered");
    ctx
}

/// Deserialize `T` from the query string, as the extractor does.
fn parse<T: DeserializeOwned>(params: &Params) -> bool {
    T::deserialize(params).is_ok()
}

/// A query string as the rows endpoint takes it (every endpoint's
/// parameters are parsed too): if the filters, sort and columns are
/// accepted, the query runs and counts without error; a cursor the server
/// made for a query is read back as its offset and refused for another.
pub fn query_string(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let params = Params::parse(Some(raw));
    // Every endpoint's parameters: parsing never panics.
    let _ = parse::<crate::api::datasets::ListParams>(&params);
    let _ = parse::<crate::api::datasets::GetParams>(&params);
    let _ = parse::<crate::api::datasets::PutParams>(&params);
    let _ = parse::<crate::api::query_parquet::QueryParquetParams>(&params);
    let _ = parse::<crate::api::sql::SqlParams>(&params);
    let Ok(rows) = crate::api::tables::RowsParams::deserialize(&params) else {
        return;
    };
    let (filters, sort, columns, cursor) = rows.request();
    if filters.len() > query::MAX_FILTERS {
        return;
    }
    let fp = query::fingerprint(&[raw]);
    if let Some(c) = cursor {
        if let Ok(n) = query::parse_cursor(c, &fp) {
            assert_eq!(query::cursor(n, &fp), c.trim(), "a cursor reads back");
        }
    }
    let n = (data.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    assert_eq!(
        query::parse_cursor(&query::cursor(n, &fp), &fp).ok(),
        Some(n)
    );
    assert!(query::parse_cursor(&query::cursor(n, &fp), "other").is_err());

    let ctx = context();
    runtime().block_on(async {
        let df = ctx.table("t").await.expect("the table");
        let Ok((df, counted)) = crate::api::tables::shape_rows(df, filters, sort, columns) else {
            return; // a 400
        };
        if let Err(e) = df.limit(0, Some(2)).expect("a limit").collect().await {
            panic!("an accepted rows query failed to run (a 5xx): {e}\nquery: {raw:?}");
        }
        if let Err(e) = counted.count().await {
            panic!("an accepted rows query failed to count (a 5xx): {e}\nquery: {raw:?}");
        }
    });
}

/// A SQL text as `/v1/sql` plans it: anything it accepts is a query (no
/// DDL, DML, COPY or statement anywhere in the plan).
pub fn sql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = context();
    runtime().block_on(async {
        let Ok(df) = ctx
            .sql_with_options(text, crate::api::sql::read_only())
            .await
        else {
            return; // a 400
        };
        let plan = df.logical_plan();
        let forbidden = plan
            .exists(|p| {
                Ok(matches!(
                    p,
                    LogicalPlan::Ddl(_)
                        | LogicalPlan::Dml(_)
                        | LogicalPlan::Copy(_)
                        | LogicalPlan::Statement(_)
                ))
            })
            .unwrap_or(true);
        assert!(
            !forbidden,
            "the read-only guard let through: {text:?}\n{plan}"
        );
    });
}
