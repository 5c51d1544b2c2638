//! Text input checked once, at the edge, by one rule
//! ([`homefront_domain::text::check`]): JSON bodies ([`crate::api::ApiJson`]),
//! posted forms ([`crate::ui::Posted`] and the sign-in form), query strings
//! and paths ([`check_uri`], a middleware over every route) and roster
//! cells. A value that breaks it answers 422 `invalid_text` naming the field
//! (`location.street`, `grants[0].role`, a query parameter's name), on every
//! engine alike, before any handler sees it.

use std::borrow::Cow;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use homefront_domain::text::{self, TextError};
use serde_json::Value;

use crate::error::ApiError;

/// 422 `invalid_text` on `field`.
pub fn invalid_text(field: &str, e: &TextError) -> ApiError {
    ApiError::invalid(field, "invalid_text", format!("{field} {e}"))
}

/// Checks one named value.
///
/// # Errors
/// 422 `invalid_text` naming `field`.
pub fn check_field(field: &str, value: &str) -> Result<(), ApiError> {
    text::check(value).map_err(|e| invalid_text(field, &e))
}

/// Checks every string (and object key) of a JSON document; the error
/// names the first bad one by its path.
///
/// # Errors
/// 422 `invalid_text` naming the value's path.
pub fn check_json(value: &Value) -> Result<(), ApiError> {
    fn walk(v: &Value, path: &mut String) -> Result<(), ApiError> {
        match v {
            Value::String(s) => check_field(if path.is_empty() { "body" } else { path }, s),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if let Err(e) = text::check(k) {
                        return Err(invalid_text(path, &e));
                    }
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// Checks decoded `name=value` pairs (a query string, a form body); the
/// error names the parameter.
///
/// # Errors
/// 422 `invalid_text` naming the parameter.
pub fn check_pairs<'a>(
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
) -> Result<(), ApiError> {
    for (name, value) in pairs {
        // A name that is itself bad text cannot be named as it is.
        text::check(&name).map_err(|e| invalid_text("query", &e))?;
        check_field(&name, &value)?;
    }
    Ok(())
}

/// Middleware over every route: a query parameter breaking the text rule
/// answers 422 `invalid_text` naming it; a path segment breaking it answers
/// 404, as no record has such an id or code.
pub async fn check_uri(req: Request, next: Next) -> Response {
    let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
    if text::check(&path).is_err() {
        return ApiError::not_found().into_response();
    }
    if let Some(query) = req.uri().query()
        && let Err(e) = check_pairs(form_urlencoded::parse(query.as_bytes()))
    {
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_path() {
        let doc = serde_json::json!({"name": "ok", "location": {"street": "a\u{0}b"}});
        let e = check_json(&doc).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_text", Some("location.street"))
        );
        let doc = serde_json::json!({"grants": [{"role": "x"}, {"role": "\u{202E}x"}]});
        let e = check_json(&doc).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("grants[1].role"));
        assert!(check_json(&serde_json::json!({"a": [1, true, null, "x\ny"]})).is_ok());
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = check_pairs(form_urlencoded::parse(b"state=open&item=%00")).unwrap_err();
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("item")));
        assert!(check_pairs(form_urlencoded::parse("q=%E7%8F%A0%E6%B1%9F".as_bytes())).is_ok());
    }
}
