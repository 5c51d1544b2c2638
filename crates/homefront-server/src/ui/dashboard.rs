//! The coordinator's dashboard (`GET /board/dashboard?org_unit=&from=&to=`):
//! the figures of `GET /api/v1/reports/summary` (the same
//! [`summary_for`]), charts of orders per day by state, time to accept
//! (p50/p90 per day) and hours by team and item, and a map of open orders
//! and on-duty volunteers by division. Each chart has its numbers in a
//! table beside it.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Duration as Days, NaiveDate};
use homefront_domain::Role;
use homefront_domain::order_state::OrderState;
use homefront_store::figures::{HoursLine, ReportScope};
use homefront_store::org_units::OrgUnit;
use serde::Deserialize;

use super::charts::{self, MapDot};
use super::i18n::Tr;
use super::{Layout, Localize, PageResult, Viewer};
use crate::AppState;
use crate::api::reports::{ReportQuery, Summary, summary_for};
use crate::auth::Actor;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/board/dashboard", get(dashboard))
}

/// Longest period the daily charts draw, in days.
pub const MAX_DAYS: i64 = 366;

/// Default period: the last 14 days, today included.
const DEFAULT_DAYS: i64 = 14;

#[derive(Debug, Default, Deserialize)]
struct DashQuery {
    org_unit: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A figure tile.
struct Tile {
    label: &'static str,
    value: String,
}

/// A chart with its accessible table.
struct Chart {
    title: String,
    svg: String,
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    t: Tr,
    l: Layout,
    units: Vec<(i64, String)>,
    unit: i64,
    from: String,
    to: String,
    tiles: Vec<Tile>,
    charts: Vec<Chart>,
    legend: Vec<(String, String)>,
    map: Option<Chart>,
    export_query: String,
    /// A refused filter (bad or too long a period), shown above the form.
    error: Option<String>,
}

/// Divisions the actor may report on, parents first.
async fn report_units(state: &AppState, actor: &Actor) -> Result<Vec<OrgUnit>, ApiError> {
    let scopes = actor.managed_scopes();
    let mut units = state.store.org_units(scopes.as_deref(), None, None).await?;
    super::tree_order(&mut units);
    Ok(units
        .into_iter()
        .filter(|u| matches!(u.kind.as_str(), "province" | "city" | "county" | "team"))
        .collect())
}

fn minutes(ms: Option<i64>) -> String {
    #[allow(clippy::cast_precision_loss)] // durations are far below 2^52 ms
    ms.map_or_else(|| "–".into(), |v| format!("{:.0}", v as f64 / 60_000.0))
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".into(), |r| format!("{:.0}%", r * 100.0))
}

/// Hours from minutes, for display (sum minutes first, convert last).
fn minutes_to_hours(m: i64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // minutes are far below 2^52
    let h = m as f64 / 60.0;
    h
}

fn tiles(s: &Summary) -> Vec<Tile> {
    let f = &s.figures;
    let tile = |label, value: String| Tile { label, value };
    vec![
        tile("dash.orders", f.orders.total.to_string()),
        tile("dash.completed", f.orders.completed.to_string()),
        tile("dash.completion_rate", percent(f.orders.completion_rate)),
        tile(
            "dash.cancellation_rate",
            percent(f.orders.cancellation_rate),
        ),
        tile("dash.escalations", f.escalations.events.to_string()),
        tile(
            "dash.first_offer",
            format!(
                "{} / {}",
                minutes(f.orders.time_to_first_offer.p50_ms),
                minutes(f.orders.time_to_first_offer.p90_ms)
            ),
        ),
        tile(
            "dash.accept",
            format!(
                "{} / {}",
                minutes(f.orders.time_to_accept.p50_ms),
                minutes(f.orders.time_to_accept.p90_ms)
            ),
        ),
        tile("dash.active", f.volunteers.active.to_string()),
        tile("dash.on_duty", f.volunteers.on_duty.to_string()),
        tile("dash.newly_vetted", f.volunteers.newly_vetted.to_string()),
        tile(
            "dash.hours_recorded",
            super::hours_text(f.hours.recorded_minutes),
        ),
        tile(
            "dash.hours_backfilled",
            super::hours_text(f.hours.backfilled_minutes),
        ),
        tile("dash.pairings", f.pairings.live_at_end.to_string()),
    ]
}

/// Item names by code in the viewer's language.
type ItemNames = BTreeMap<String, String>;

fn hour_chart(t: Tr, title: &str, lines: &[HoursLine], items: Option<&ItemNames>) -> Chart {
    let named: Vec<(String, f64, f64)> = lines
        .iter()
        .map(|l| {
            let name = match items {
                Some(_) if l.key.is_empty() => t.t("dash.backfill_no_item").to_string(),
                Some(names) => names.get(&l.key).cloned().unwrap_or_else(|| l.key.clone()),
                None => l.name.clone(),
            };
            (
                name,
                minutes_to_hours(l.recorded_minutes),
                minutes_to_hours(l.backfilled_minutes),
            )
        })
        .collect();
    Chart {
        title: title.to_string(),
        svg: charts::hour_bars(title, &named).unwrap_or_default(),
        head: vec![
            t.t("dash.name").into(),
            t.t("dash.hours_recorded").into(),
            t.t("dash.hours_backfilled").into(),
            t.t("dash.orders").into(),
        ],
        rows: named
            .iter()
            .zip(lines)
            .map(|((n, r, b), l)| {
                vec![
                    n.clone(),
                    format!("{r:.1}"),
                    format!("{b:.1}"),
                    l.orders.to_string(),
                ]
            })
            .collect(),
    }
}

async fn dashboard(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<DashQuery>,
) -> PageResult<axum::response::Response> {
    let t = v.t();
    let actor = &v.actor;
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden()).page(t);
    }
    let units = report_units(&state, actor).await.page(t)?;
    let unit = match q.org_unit.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => {
            let id = crate::api::parse_id(raw).page(t)?;
            units
                .iter()
                .find(|u| u.id == id)
                .cloned()
                .ok_or_else(ApiError::not_found)
                .page(t)?
        }
        None => units
            .first()
            .cloned()
            .ok_or_else(ApiError::not_found)
            .page(t)?,
    };
    let tz = unit.time_zone;
    let today = chrono::DateTime::from_timestamp_millis(state.clock.now().epoch_ms())
        .map_or_else(|| NaiveDate::MIN, |d| d.with_timezone(&tz).date_naive());
    let to =
        q.to.filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| today.to_string());
    let from = q
        .from
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| (today - Days::days(DEFAULT_DAYS - 1)).to_string());
    let query = ReportQuery {
        org_unit: unit.id,
        from: from.clone(),
        to: to.clone(),
    };
    let units_shown: Vec<(i64, String)> = units
        .iter()
        .map(|u| (u.id, format!("{}{}", indent(&u.path), t.place(&u.name))))
        .collect();
    let summary = summary_for(&state, actor, &query).await.and_then(|s| {
        if (s.to - s.from) / 86_400_000 > MAX_DAYS {
            Err(ApiError::invalid(
                "to",
                "period_too_long",
                format!("the dashboard draws at most {MAX_DAYS} days; shorten the period"),
            ))
        } else {
            Ok(s)
        }
    });
    let summary = match summary {
        Ok(s) => s,
        // A bad period: the form again with what is wrong, not an error page.
        Err(err) if err.status.as_u16() == 422 => {
            return Ok((
                err.status,
                DashboardPage {
                    t,
                    units: units_shown,
                    unit: unit.id,
                    from,
                    to,
                    tiles: Vec::new(),
                    charts: Vec::new(),
                    legend: Vec::new(),
                    map: None,
                    export_query: String::new(),
                    error: Some(super::field_error(t, &err)),
                    l: v.l,
                },
            )
                .into_response());
        }
        Err(err) => return Err(err).page(t),
    };
    let scope = ReportScope {
        path: unit.path.clone(),
        from_ms: summary.from,
        to_ms: summary.to,
    };
    let timelines = state.store.order_timelines(&scope).await.page(t)?;

    // Days of the period in the unit's time zone.
    let day_of = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.with_timezone(&tz).date_naive())
            .unwrap_or(NaiveDate::MIN)
    };
    let first = day_of(summary.from);
    let last = day_of(summary.to - 1);
    let mut days = Vec::new();
    let mut d = first;
    while d <= last && days.len() <= usize::try_from(MAX_DAYS).unwrap_or(366) {
        days.push(d);
        d += Days::days(1);
    }
    let index: BTreeMap<NaiveDate, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let labels: Vec<String> = days.iter().map(ToString::to_string).collect();
    let states: Vec<OrderState> = charts::STATE_COLOURS.iter().map(|(s, _)| *s).collect();
    let mut per_state: Vec<Vec<i64>> = vec![vec![0; days.len()]; states.len()];
    let mut accept: Vec<Vec<i64>> = vec![Vec::new(); days.len()];
    for o in &timelines {
        let Some(&i) = index.get(&day_of(o.created_at)) else {
            continue;
        };
        if let Some(s) = states.iter().position(|s| *s == o.state) {
            per_state[s][i] += 1;
        }
        if let Some(a) = o.first_assigned_at {
            accept[i].push(a - o.created_at);
        }
    }
    let series: Vec<(OrderState, Vec<i64>)> = states
        .iter()
        .zip(per_state)
        .filter(|(_, v)| v.iter().any(|c| *c > 0))
        .map(|(s, v)| (*s, v))
        .collect();
    let orders_title = t.t("dash.chart_orders").to_string();
    let orders_chart = Chart {
        svg: charts::stacked_days(&orders_title, &labels, &series).unwrap_or_default(),
        head: std::iter::once(t.t("dash.day").to_string())
            .chain(
                series
                    .iter()
                    .map(|(s, _)| t.k("state", s.as_str()).to_string()),
            )
            .collect(),
        // No orders: the "no data" note instead of empty axes.
        rows: labels
            .iter()
            .enumerate()
            .filter(|_| !series.is_empty())
            .map(|(i, day)| {
                std::iter::once(day.clone())
                    .chain(series.iter().map(|(_, v)| v[i].to_string()))
                    .collect()
            })
            .collect(),
        title: orders_title,
    };
    // Minutes at a percentile of one day's times (the report's rule).
    for day in &mut accept {
        day.sort_unstable();
    }
    let pct = |v: &[i64], p: usize| {
        #[allow(clippy::cast_precision_loss)]
        homefront_store::figures::percentile(v, p).map(|ms| ms as f64 / 60_000.0)
    };
    let p50: Vec<Option<f64>> = accept.iter().map(|v| pct(v, 50)).collect();
    let p90: Vec<Option<f64>> = accept.iter().map(|v| pct(v, 90)).collect();
    let accept_title = t.t("dash.chart_accept").to_string();
    let fmt = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |m| format!("{m:.0}"));
    let accept_chart = Chart {
        svg: charts::percentile_lines(&accept_title, &labels, &p50, &p90).unwrap_or_default(),
        head: vec![
            t.t("dash.day").into(),
            t.t("dash.p50").into(),
            t.t("dash.p90").into(),
            t.t("dash.accepted").into(),
        ],
        rows: labels
            .iter()
            .enumerate()
            .filter(|_| accept.iter().any(|v| !v.is_empty()))
            .map(|(i, day)| {
                vec![
                    day.clone(),
                    fmt(p50[i]),
                    fmt(p90[i]),
                    accept[i].len().to_string(),
                ]
            })
            .collect(),
        title: accept_title,
    };
    let team_chart = hour_chart(
        t,
        t.t("dash.chart_hours_team"),
        &summary.figures.hours.by_team,
        None,
    );
    let item_names: ItemNames = state
        .store
        .service_items(true)
        .await
        .page(t)?
        .into_iter()
        .map(|i| (i.code.clone(), t.pick(&i.name_zh, &i.name_en).to_string()))
        .collect();
    let item_chart = hour_chart(
        t,
        t.t("dash.chart_hours_item"),
        &summary.figures.hours.by_item,
        Some(&item_names),
    );

    // A county's map shows its city's other divisions as grey context
    // dots (positions only: their counts are outside the viewer's area).
    let context = match (unit.kind.as_str(), unit.parent_id) {
        ("county", Some(parent)) => state.store.org_unit(parent).await.page(t)?,
        _ => None,
    };
    let context_path = context
        .as_ref()
        .map_or_else(|| unit.path.clone(), |p| p.path.clone());
    let outline = area_outline(
        context
            .as_ref()
            .and_then(|c| c.adcode.as_deref())
            .or(unit.adcode.as_deref()),
    );
    let points: Vec<_> = state
        .store
        .map_points(&context_path)
        .await
        .page(t)?
        .into_iter()
        .map(|mut p| {
            if !p.path.starts_with(&unit.path) {
                p.open_orders = 0;
                p.on_duty = 0;
            }
            p
        })
        .collect();
    let dots: Vec<MapDot> = points
        .iter()
        .map(|p| MapDot {
            name: t.place(&p.name),
            longitude: p.longitude,
            latitude: p.latitude,
            open_orders: p.open_orders,
            on_duty: p.on_duty,
        })
        .collect();
    let map_title = t.t("dash.map").to_string();
    let map = Some(Chart {
        svg: charts::division_map(&map_title, &dots, &outline).unwrap_or_default(),
        head: vec![
            t.t("dash.division").into(),
            t.t("dash.open_orders").into(),
            t.t("dash.on_duty").into(),
        ],
        rows: points
            .iter()
            .filter(|p| p.open_orders > 0 || p.on_duty > 0)
            .map(|p| {
                vec![
                    t.place(&p.name),
                    p.open_orders.to_string(),
                    p.on_duty.to_string(),
                ]
            })
            .collect(),
        title: map_title,
    });
    let legend = series
        .iter()
        .map(|(s, _)| (charts::state_hex(*s), t.k("state", s.as_str()).to_string()))
        .collect();
    // The exports take the same period as instants (epoch ms, half-open),
    // and hold every order of it (as many as the tiles count).
    let export_query = format!(
        "org_unit={}&from={}&to={}",
        unit.id, summary.from, summary.to
    );
    Ok(DashboardPage {
        t,
        units: units_shown,
        unit: unit.id,
        from,
        to,
        tiles: tiles(&summary),
        charts: vec![orders_chart, accept_chart, team_chart, item_chart],
        legend,
        map,
        export_query,
        error: None,
        l: v.l,
    }
    .into_response())
}

/// Non-breaking spaces by depth, so the unit picker reads as a tree.
/// The outline of the division `adcode` for the map: the convex hull of
/// its county-level divisions' points from the shipped adcode list (a
/// province's or a city's), pushed out 0.06° so edge divisions sit
/// inside. Empty when the code is unknown or names a county.
fn area_outline(adcode: Option<&str>) -> Vec<(f64, f64)> {
    use homefront_domain::adcode::DivisionLevel;
    let Some(code) = adcode.and_then(|c| homefront_domain::Adcode::parse(c).ok()) else {
        return Vec::new();
    };
    let prefix = match code.level() {
        DivisionLevel::Province => 2,
        DivisionLevel::City => 4,
        DivisionLevel::County => return Vec::new(),
    };
    let own = code.as_string();
    let points: Vec<(f64, f64)> = homefront_store::divisions::province_divisions(code.province())
        .into_iter()
        .filter(|d| d.adcode.level() == DivisionLevel::County)
        .filter(|d| d.adcode.as_string().get(..prefix) == own.get(..prefix))
        .map(|d| (d.longitude, d.latitude))
        .collect();
    charts::padded(&charts::convex_hull(&points), 0.06)
}

fn indent(path: &str) -> String {
    let depth = path.matches('/').count().saturating_sub(2);
    "\u{a0}\u{a0}".repeat(depth)
}
