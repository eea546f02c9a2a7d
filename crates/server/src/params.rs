//! Query-string parameters. Each endpoint declares its parameters once, as a
//! `#[derive(Deserialize, IntoParams)]` struct (the OpenAPI document comes
//! from the same struct), and takes it through the [`Query`] extractor.
//!
//! The deserializer is our own rather than `serde_urlencoded` so that every
//! mistake gets a JSON 400 that names the parameter, unknown keys are refused
//! (a typo is not silently ignored), a repeated key fills a `Vec` field
//! (`filter=…&filter=…`) and a plain field takes the last value.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::value::{SeqDeserializer, StrDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

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
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Refuse keys outside `known`, so that a typo is not silently ignored.
    fn only(&self, known: &[&str]) -> Result<(), ParamError> {
        for (k, _) in &self.0 {
            if !known.contains(&k.as_str()) {
                return Err(ParamError(format!(
                    "unknown parameter '{}' (known: {})",
                    truncate(k, 40),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// A typed query string: `T` is a struct of the endpoint's parameters.
/// A mistake is answered with a 400 naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let params = Params::parse(parts.uri.query());
        T::deserialize(&params)
            .map(Query)
            .map_err(|e| ApiError::BadRequest(e.0))
    }
}

/// `value` (or `default` when absent) checked to lie in `[min, max]`.
pub fn bounded(key: &str, value: Option<u64>, default: u64, min: u64, max: u64) -> ApiResult<u64> {
    let n = value.unwrap_or(default);
    if n < min || n > max {
        return Err(ApiError::bad(format!(
            "{key}={n} is out of range: it must be from {min} to {max}"
        )));
    }
    Ok(n)
}

/// Why a query string does not fit an endpoint's parameters.
#[derive(Debug)]
pub struct ParamError(String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        ParamError(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        ParamError(format!("{field} is required"))
    }
}

impl<'de> de::Deserializer<'de> for &'de Params {
    type Error = ParamError;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.only(fields)?;
        visitor.visit_map(Fields {
            params: self,
            fields: fields.iter(),
            current: "",
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ParamError> {
        Err(ParamError(
            "query parameters are read into a struct of named fields".into(),
        ))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The declared fields that the query string holds, in declaration order.
struct Fields<'de> {
    params: &'de Params,
    fields: std::slice::Iter<'static, &'static str>,
    current: &'static str,
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = ParamError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamError> {
        for &field in self.fields.by_ref() {
            if self.params.get(field).is_some() {
                self.current = field;
                let key: StrDeserializer<'_, ParamError> = field.into_deserializer();
                return seed.deserialize(key).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ParamError> {
        seed.deserialize(Value {
            params: self.params,
            key: self.current,
        })
    }
}

/// The value(s) of one parameter that is present.
struct Value<'de> {
    params: &'de Params,
    key: &'static str,
}

impl<'de> Value<'de> {
    fn last(&self) -> &'de str {
        self.params.get(self.key).unwrap_or_default()
    }
}

impl<'de> de::Deserializer<'de> for Value<'de> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_borrowed_str(self.last())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    /// A flag: `true/1/yes` or an empty value is true, `false/0/no` false.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let v = self.last().to_ascii_lowercase();
        match v.as_str() {
            "" | "true" | "1" | "yes" => visitor.visit_bool(true),
            "false" | "0" | "no" => visitor.visit_bool(false),
            _ => Err(ParamError(format!(
                "{}='{}' is not true or false",
                self.key,
                truncate(&v, 40)
            ))),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let v = self.last();
        match v.trim().parse::<u64>() {
            Ok(n) => visitor.visit_u64(n),
            Err(_) => Err(ParamError(format!(
                "{}='{}' is not a whole number",
                self.key,
                truncate(v, 40)
            ))),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let values = self.params.all(self.key).map(|v| {
            let v: StrDeserializer<'_, ParamError> = v.into_deserializer();
            v
        });
        visitor.visit_seq(SeqDeserializer::new(values))
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Q {
        name: String,
        #[serde(default)]
        filter: Vec<String>,
        page: Option<u64>,
        #[serde(default)]
        last: bool,
    }

    fn parse(q: &str) -> Result<Q, String> {
        Q::deserialize(&Params::parse(Some(q))).map_err(|e| e.0)
    }

    #[test]
    fn typed_parameters() {
        assert_eq!(
            parse("name=a&filter=x:eq:1&filter=y:gt:2&page=3&last=&name=b").unwrap(),
            Q {
                name: "b".into(),
                filter: vec!["x:eq:1".into(), "y:gt:2".into()],
                page: Some(3),
                last: true,
            }
        );
        assert_eq!(
            parse("name=a").unwrap(),
            Q {
                name: "a".into(),
                filter: vec![],
                page: None,
                last: false,
            }
        );
        assert_eq!(parse("page=1").unwrap_err(), "name is required");
        assert!(parse("name=a&pgae=1")
            .unwrap_err()
            .starts_with("unknown parameter 'pgae' (known: name, filter, page, last)"));
        assert!(parse("name=a&page=-1")
            .unwrap_err()
            .starts_with("page='-1'"));
        assert!(parse("name=a&last=maybe")
            .unwrap_err()
            .starts_with("last='maybe' is not true or false"));
    }

    #[test]
    fn bounds() {
        assert_eq!(bounded("limit", None, 100, 1, 1000).unwrap(), 100);
        let e = bounded("limit", Some(0), 100, 1, 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "limit=0 is out of range: it must be from 1 to 1000"
        );
    }
}
