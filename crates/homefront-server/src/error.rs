//! The one API error type. 4xx answers carry a stable machine `code`, a
//! human `message` and, for input errors, the `field` to fix; 5xx answers
//! log the cause and say little.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use homefront_store::StoreError;
use serde::Serialize;

/// An error answer: `{"code": "...", "message": "...", "field": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code, e.g. `invalid_phone`, `not_found`.
    pub code: &'static str,
    /// Human message saying what is wrong and how to fix it.
    pub message: String,
    /// The request field at fault, for input errors.
    pub field: Option<String>,
    /// Seconds after which a throttled client may retry.
    pub retry_after_s: Option<i64>,
}

/// The JSON body of an error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Stable machine code.
    pub code: &'a str,
    /// Human message.
    pub message: &'a str,
    /// Field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl ApiError {
    /// An error with status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_s: None,
        }
    }

    /// 422 for a bad input `field`.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        }
    }

    /// 404, used both for missing records and for records outside the
    /// caller's scope, so the two cannot be told apart.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such record")
    }

    /// 401: sign in first.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: POST /api/v1/auth/login",
        )
    }

    /// 403 for a signed-in user whose role may not do this at all.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this action",
        )
    }

    /// 409 with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500; the cause is logged, not returned.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; try again, and tell the operator if it persists",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::conflict(
                "duplicate",
                format!("a record with the same unique value exists ({what})"),
            ),
            StoreError::MissingReference(what) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_reference",
                format!("a referenced record does not exist ({what})"),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
