//! `GET /healthz` and `GET /readyz`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;

/// Health routes (outside `/api/v1`, no authentication).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(readyz))
}

/// `GET /readyz`: the same check as `/healthz`, for orchestrators'
/// readiness probes (not ready while the database does not answer).
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "The database answers", body = Object),
              (status = 503, description = "The database does not answer", body = Object)))]
pub async fn readyz(state: State<AppState>) -> (StatusCode, Json<Value>) {
    health(state).await
}

/// 200 `{"status":"ok","database":"sqlite"|"postgres"}` when the database
/// answers, else 503 `{"status":"unavailable",...}`.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "`{\"status\":\"ok\",\"database\":\"sqlite\"}`", body = Object),
              (status = 503, description = "The database does not answer", body = Object)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = state.store.backend().as_str();
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": database})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "database ping failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": database})),
            )
        }
    }
}
