//! The JSON API under `/api/v1`, one module per feature, merged here.

pub mod catalogue;
pub mod certificates;
pub mod dispatch;
pub mod divisions;
pub mod health;
pub mod hours;
pub mod households;
pub mod notifications;
pub mod offers;
pub mod openapi;
pub mod orders;
pub mod org_units;
pub mod paging;
pub mod pairings;
pub mod push;
pub mod reports;
pub mod sessions;
pub mod users;
pub mod volunteers;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Every route of the application.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(certificates::public_router())
        .nest(
            "/api/v1",
            Router::new()
                .merge(sessions::router())
                .merge(divisions::router())
                .merge(org_units::router())
                .merge(catalogue::router())
                .merge(households::router())
                .merge(orders::router())
                .merge(offers::router())
                .merge(dispatch::router())
                .merge(pairings::router())
                .merge(hours::router())
                .merge(users::router())
                .merge(volunteers::router())
                .merge(reports::router())
                .merge(certificates::router())
                .merge(openapi::router())
                .merge(notifications::router())
                .merge(push::router()),
        )
        .merge(crate::ui::router())
        .fallback(|| async { ApiError::not_found() })
}

/// A JSON body whose parse errors answer in the API's error shape, naming
/// the field when serde reports one, and whose every string obeys the text
/// rule ([`crate::input::check_json`]: 422 `invalid_text` naming the field).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        // Bytes honours the route's body limit (an extension in `parts`).
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|r| ApiError::new(r.status(), "invalid_body", r.body_text()))?;
        let req = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => {
                if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    // serde reads a struct from an array of its fields in
                    // order too (`[null, null]` for a patch of two optional
                    // fields); every body of this API is an object.
                    if !doc.is_object() {
                        return Err(ApiError::new(
                            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid_body",
                            "the request body must be a JSON object ({...}) with the fields this endpoint documents",
                        ));
                    }
                    crate::input::check_json(&doc)?;
                }
                Ok(ApiJson(v))
            }
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

/// An optional JSON body: an empty body is `None`; anything else must be
/// the JSON [`ApiJson`] accepts.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts.clone(), body);
        // Bytes honours the app's body limit.
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::new(r.status(), "invalid_body", r.body_text()))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        <ApiJson<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    // serde_path_to_error is not involved; serde's messages name the field
    // as "missing field `phone`" or "unknown field `x`", or "at line..".
    let field = text
        .split('`')
        .nth(1)
        .filter(|_| text.contains("field `"))
        .map(str::to_string);
    let mut err = ApiError::new(
        rejection.status(),
        "invalid_body",
        format!("the request body is not valid JSON for this endpoint: {text}"),
    );
    err.field = field;
    err
}

/// A query string whose parse errors answer in the API's error shape
/// (400 `invalid_query`, naming the parameter, as a malformed JSON body
/// answers 400 `invalid_body`), like [`ApiJson`] for
/// bodies; axum's own extractor answers plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(query_error(&rejection.body_text())),
        }
    }
}

/// The parameter a query-string error names: serde's "missing field `x`",
/// or the "x: ..." prefix of a value that does not parse.
fn query_error(text: &str) -> ApiError {
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(text);
    let field = if let Some(rest) = detail.split("missing field `").nth(1) {
        rest.split('`').next().map(str::to_string)
    } else {
        detail
            .split_once(": ")
            .map(|(f, _)| f.to_string())
            .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    let mut err = ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_query",
        format!("the query string is not valid for this endpoint: {detail}"),
    );
    err.field = field;
    err
}

/// Checks optional coordinates given as a pair.
pub fn coordinates(lon: Option<f64>, lat: Option<f64>) -> ApiResult<Option<(f64, f64)>> {
    match (lon, lat) {
        (None, None) => Ok(None),
        (Some(lon), Some(lat)) => homefront_domain::GeoPoint::new(lon, lat)
            .map(|p| Some((p.longitude, p.latitude)))
            .map_err(|e| {
                let field = if matches!(e, homefront_domain::geo::GeoError::Longitude(_)) {
                    "longitude"
                } else {
                    "latitude"
                };
                ApiError::invalid(field, "invalid_coordinates", e.to_string())
            }),
        (Some(_), None) => Err(ApiError::invalid(
            "latitude",
            "invalid_coordinates",
            "give latitude together with longitude",
        )),
        (None, Some(_)) => Err(ApiError::invalid(
            "longitude",
            "invalid_coordinates",
            "give longitude together with latitude",
        )),
    }
}

/// Parses a path or query id, answering 404 for anything that is not one
/// (so probing ids tells nothing).
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::not_found())
}

#[cfg(test)]
mod tests {
    use super::query_error;

    #[test]
    fn query_errors_name_the_parameter() {
        let e = query_error("Failed to deserialize query string: missing field `from`");
        assert_eq!(
            (e.code, e.field.as_deref(), e.status.as_u16()),
            ("invalid_query", Some("from"), 400)
        );
        let e =
            query_error("Failed to deserialize query string: from: invalid digit found in string");
        assert_eq!(e.field.as_deref(), Some("from"));
        assert!(e.message.contains("invalid digit"));
    }
}
