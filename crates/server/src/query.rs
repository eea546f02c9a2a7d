//! Building DataFusion queries from request parameters: column lists,
//! `col:op:value` filters, sorts and paging cursors.

use arrow::datatypes::{DataType, Schema};
use base64::Engine;
use deltalake::datafusion::common::{Column, ScalarValue};
use deltalake::datafusion::logical_expr::{lit, Expr, SortExpr};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::format::truncate;

/// Most filters one request may carry.
pub const MAX_FILTERS: usize = 64;

fn column_of(schema: &Schema, name: &str, what: &str) -> ApiResult<(Expr, DataType)> {
    match schema.field_with_name(name) {
        Ok(f) => Ok((
            Expr::Column(Column::new_unqualified(name)),
            f.data_type().clone(),
        )),
        Err(_) => Err(ApiError::bad(format!(
            "{what}: no column '{}' (columns: {})",
            truncate(name, 60),
            truncate(
                &schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                300
            )
        ))),
    }
}

/// `a,b,c` → the column names, each checked against the schema.
pub fn columns(schema: &Schema, spec: &str) -> ApiResult<Vec<String>> {
    let cols: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if cols.is_empty() {
        return Err(ApiError::bad(
            "columns= is empty; list column names separated by commas",
        ));
    }
    for c in &cols {
        column_of(schema, c, "columns")?;
    }
    Ok(cols)
}

fn value(raw: &str, ty: &DataType, filter: &str) -> ApiResult<Expr> {
    let target = match ty {
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => &DataType::Utf8,
        t => t,
    };
    ScalarValue::try_from_string(raw.to_string(), target)
        .map(lit)
        .map_err(|_| {
            ApiError::bad(format!(
                "filter '{}': '{}' is not a {ty} value",
                truncate(filter, 80),
                truncate(raw, 60)
            ))
        })
}

/// One `column:op:value` filter; ops `eq ne lt lte gt gte in like`; `in`
/// takes `a,b,c` or a JSON array.
pub fn filter(schema: &Schema, spec: &str) -> ApiResult<Expr> {
    let mut parts = spec.splitn(3, ':');
    let (Some(name), Some(op), Some(raw)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::bad(format!(
            "filter '{}' is not column:op:value (ops: eq ne lt lte gt gte in like)",
            truncate(spec, 80)
        )));
    };
    let (col, ty) = column_of(schema, name, &format!("filter '{}'", truncate(spec, 80)))?;
    Ok(match op {
        "eq" => col.eq(value(raw, &ty, spec)?),
        "ne" => col.not_eq(value(raw, &ty, spec)?),
        "lt" => col.lt(value(raw, &ty, spec)?),
        "lte" => col.lt_eq(value(raw, &ty, spec)?),
        "gt" => col.gt(value(raw, &ty, spec)?),
        "gte" => col.gt_eq(value(raw, &ty, spec)?),
        "in" => {
            let items: Vec<String> = if raw.trim_start().starts_with('[') {
                serde_json::from_str::<Vec<serde_json::Value>>(raw)
                    .map_err(|e| {
                        ApiError::bad(format!(
                            "filter '{}': bad JSON list: {e}",
                            truncate(spec, 80)
                        ))
                    })?
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        v => v.to_string(),
                    })
                    .collect()
            } else {
                raw.split(',').map(String::from).collect()
            };
            if items.is_empty() || items.len() > 10_000 {
                return Err(ApiError::bad(format!(
                    "filter '{}': 'in' takes 1 to 10000 values",
                    truncate(spec, 80)
                )));
            }
            let list = items
                .iter()
                .map(|v| value(v, &ty, spec))
                .collect::<ApiResult<Vec<_>>>()?;
            col.in_list(list, false)
        }
        "like" => {
            if !matches!(
                ty,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) {
                return Err(ApiError::bad(format!(
                    "filter '{}': like applies to string columns; '{name}' is {ty}",
                    truncate(spec, 80)
                )));
            }
            col.like(lit(raw.to_string()))
        }
        _ => {
            return Err(ApiError::bad(format!(
                "filter '{}': unknown op '{}' (eq ne lt lte gt gte in like)",
                truncate(spec, 80),
                truncate(op, 20)
            )))
        }
    })
}

/// `a,-b` → ascending a, then descending b.
pub fn sort(schema: &Schema, spec: &str) -> ApiResult<Vec<SortExpr>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (name, asc) = match s.strip_prefix('-') {
                Some(n) => (n, false),
                None => (s.strip_prefix('+').unwrap_or(s), true),
            };
            let (col, _) = column_of(schema, name, "sort")?;
            Ok(col.sort(asc, !asc))
        })
        .collect()
}

/// An opaque cursor: the next offset, bound to the query it came from.
pub fn cursor(offset: u64, fingerprint: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{offset}:{fingerprint}"))
}

/// Decode a cursor of the same query.
pub fn parse_cursor(c: &str, fingerprint: &str) -> ApiResult<u64> {
    let bad = || ApiError::bad("cursor is not one this server gave out");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim())
        .map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    let (o, fp) = s.split_once(':').ok_or_else(bad)?;
    if fp != fingerprint {
        return Err(ApiError::bad(
            "cursor belongs to another query (different table, columns, filters, sort or limit)",
        ));
    }
    o.parse().map_err(|_| bad())
}

/// A short hash of the parts that define a query.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
        ])
    }

    #[test]
    fn filters_are_typed_by_column() {
        let s = schema();
        assert_eq!(
            filter(&s, "id:gte:5").unwrap().to_string(),
            "id >= Int64(5)"
        );
        assert_eq!(
            filter(&s, "day:lt:2024-03-01").unwrap().to_string(),
            "day < Date32(\"2024-03-01\")"
        );
        assert!(filter(&s, "name:in:[\"a,b\",\"c\"]")
            .unwrap()
            .to_string()
            .contains("a,b"));
        assert_eq!(
            filter(&s, "name:eq:O'Brien; DROP").unwrap().to_string(),
            "name = Utf8(\"O'Brien; DROP\")"
        );
        for (bad, want) in [
            ("id", "column:op:value"),
            ("id:gt:abc", "not a Int64"),
            ("nope:eq:1", "no column 'nope'"),
            ("id:between:1", "unknown op"),
            ("id:like:1%", "string columns"),
            ("day:eq:yesterday", "not a Date32"),
        ] {
            let e = filter(&s, bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn cursors_are_bound_to_their_query() {
        let fp = fingerprint(&["t", "id:gt:1"]);
        let c = cursor(200, &fp);
        assert_eq!(parse_cursor(&c, &fp).unwrap(), 200);
        assert!(parse_cursor(&c, &fingerprint(&["t"]))
            .unwrap_err()
            .to_string()
            .contains("another query"));
        assert!(parse_cursor("!!", &fp).is_err());
    }

    #[test]
    fn sorts_and_columns_are_checked() {
        let s = schema();
        assert_eq!(sort(&s, "id,-name").unwrap().len(), 2);
        assert!(sort(&s, "-x").is_err());
        assert_eq!(columns(&s, "id, name").unwrap(), vec!["id", "name"]);
        assert!(columns(&s, "id,\"x").is_err());
        assert!(columns(&s, ",").is_err());
    }
}
