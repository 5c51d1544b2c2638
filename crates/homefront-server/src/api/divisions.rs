//! `GET /api/v1/divisions`: the province → city → county reference tree.
//! Divisions are public reference data (GB/T 2260), readable by any
//! signed-in user, e.g. to pick a household's district; teams, employers
//! and partners are not listed here.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use homefront_domain::org::OrgKind;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{ErrorShape, QueryRejection};
use crate::auth::Actor;
use crate::error::ApiResult;

/// Division routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/divisions", get(list))
}

/// Query of `GET /api/v1/divisions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DivisionQuery {
    /// Only the direct children of this unit id; without it, the provinces.
    pub parent_id: Option<i64>,
}

/// A division as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DivisionItem {
    /// Org-unit id.
    pub id: i64,
    /// `province`, `city` or `county`.
    #[schema(value_type = String)]
    pub kind: OrgKind,
    /// 12-digit code.
    pub adcode: Option<String>,
    /// Chinese name.
    pub name: String,
    /// Enclosing division.
    pub parent_id: Option<i64>,
    /// Representative point, decimal degrees.
    pub longitude: Option<f64>,
    /// Representative point, decimal degrees.
    pub latitude: Option<f64>,
}

/// Divisions (province, city, county) of the GB/T 2260 tree, one level at a time.
///
/// Without `parent_id`, the provinces; with it, that unit's direct child
/// divisions. Teams, employers and partners are left out.
#[utoipa::path(get, path = "/api/v1/divisions", tag = "divisions", operation_id = "list_divisions",
    params(DivisionQuery),
    responses(
        (status = 200, body = Vec<DivisionItem>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        QueryRejection))]
async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(q): ApiQuery<DivisionQuery>,
) -> ApiResult<Json<Vec<DivisionItem>>> {
    let units = match q.parent_id {
        Some(p) => state.store.org_units(None, Some(p), None).await?,
        None => {
            state
                .store
                .org_units(None, None, Some(OrgKind::Province))
                .await?
        }
    };
    Ok(Json(
        units
            .into_iter()
            .filter(|u| u.kind.is_division())
            .map(|u| DivisionItem {
                id: u.id,
                kind: u.kind,
                adcode: u.adcode,
                name: u.name,
                parent_id: u.parent_id,
                longitude: u.longitude,
                latitude: u.latitude,
            })
            .collect(),
    ))
}
