//! Query-string parameters, parsed by hand so that every mistake gets a
//! JSON 400 that names the parameter (and repeated keys such as
//! `filter=…&filter=…` work).

use crate::error::{ApiError, ApiResult};
use crate::format::truncate;

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parse a raw query string.
    pub fn parse(raw: Option<&str>) -> Params {
        Params(
            raw.map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// An unsigned integer in `[min, max]`, or `default` when absent.
    pub fn uint(&self, key: &str, default: u64, min: u64, max: u64) -> ApiResult<u64> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let n: u64 = v.trim().parse().map_err(|_| {
            ApiError::bad(format!(
                "{key}='{}' is not a whole number from {min} to {max}",
                truncate(v, 40)
            ))
        })?;
        if n < min || n > max {
            return Err(ApiError::bad(format!(
                "{key}={n} is out of range: it must be from {min} to {max}"
            )));
        }
        Ok(n)
    }

    /// A boolean flag: absent = false; `true/1/yes` or an empty value = true.
    pub fn flag(&self, key: &str) -> ApiResult<bool> {
        match self.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v.is_empty() || v == "true" || v == "1" || v == "yes" => Ok(true),
            Some(v) if v == "false" || v == "0" || v == "no" => Ok(false),
            Some(v) => Err(ApiError::bad(format!(
                "{key}='{}' is not true or false",
                truncate(&v, 40)
            ))),
        }
    }

    /// Refuse keys outside `known`, so that a typo is not silently ignored.
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        for (k, _) in &self.0 {
            if !known.contains(&k.as_str()) {
                return Err(ApiError::bad(format!(
                    "unknown parameter '{}' (known: {})",
                    truncate(k, 40),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}
