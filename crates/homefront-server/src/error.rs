//! The one API error type. 4xx answers carry a stable machine `code`, a
//! human `message` and, for input errors, the `field` to fix; 5xx answers
//! log the cause and say little.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use homefront_store::{ConstraintName, StoreError};
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
    /// The answer for a store error no call site mapped itself: 409 for a
    /// duplicate or a concurrent change, 422 for a missing reference or a
    /// refused value, 500 for the rest. Constraint names stay in the log.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => {
                tracing::info!(constraint = %what, "unique constraint violated");
                ApiError::conflict("duplicate", "a record with the same unique value exists")
            }
            StoreError::MissingReference(what) => {
                tracing::info!(constraint = %what, "foreign key violated");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "missing_reference",
                    "a referenced record does not exist; check the ids in the request",
                )
            }
            StoreError::CheckViolation(what) => {
                tracing::info!(constraint = %what, "check constraint violated");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_value",
                    "a value is outside what this record allows",
                )
            }
            StoreError::Transition(t) => ApiError::conflict(t.code(), t.to_string()),
            StoreError::Stale => ApiError::conflict(
                "stale",
                "the record changed while this request was handled; reload it and try again",
            ),
            other => ApiError::internal(other),
        }
    }
}

/// Maps one named constraint's violation to one answer (the
/// realworld-axum-sqlx pattern): `store_call.await.on_constraint(
/// constraint::USER_PHONE, || ApiError::conflict("phone_taken", ...))`.
/// Any other error converts as usual.
pub trait OnConstraint<T> {
    /// `answer()` when the error is a violation of `constraint`.
    ///
    /// # Errors
    /// `answer()`'s error, or the store error converted.
    fn on_constraint(
        self,
        constraint: ConstraintName,
        answer: impl FnOnce() -> ApiError,
    ) -> Result<T, ApiError>;
}

impl<T> OnConstraint<T> for Result<T, StoreError> {
    fn on_constraint(
        self,
        constraint: ConstraintName,
        answer: impl FnOnce() -> ApiError,
    ) -> Result<T, ApiError> {
        self.map_err(|e| {
            if e.violates(&constraint) {
                answer()
            } else {
                e.into()
            }
        })
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
