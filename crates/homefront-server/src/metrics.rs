//! Prometheus metrics, served on their own listener (`--metrics-bind`) so
//! they never share a port with the public application.
//!
//! Recorded with the `metrics` facade and rendered by
//! `metrics-exporter-prometheus` (without its HTTP server: [`router`]
//! serves `handle.render()`):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `homefront_http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `homefront_dispatch_offers_total` | counter | — (offers made by dispatch rounds) |
//! | `homefront_dispatch_escalations_total` | counter | — |
//! | `homefront_dispatch_unfulfilled_total` | counter | — |
//! | `homefront_offer_outcomes_total` | counter | `outcome`: accepted, declined, expired, refused |
//! | `homefront_db_pool_connections` | gauge | `state`: idle, in_use |
//! | `homefront_db_pool_max_connections` | gauge | — |
//! | `homefront_outbox_waiting` | gauge | — (events unplanned + deliveries pending) |
//! | `homefront_outbox_lag_seconds` | gauge | — (age of the oldest waiting event; 0 when none) |

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use homefront_store::Store;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds (from 5 ms to 10 s).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its
/// handle (later calls return the same handle).
///
/// # Panics
/// Never in practice: the bucket list is non-empty, and a recorder installed
/// by someone else makes this fall back to a detached recorder.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("non-empty buckets");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

/// Middleware: times each request and records it under its route pattern
/// (`/api/v1/orders/{id}`, never the concrete path: bounded cardinality and
/// no ids in metrics).
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "homefront_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Counts an offer's outcome (`accepted`, `declined`, `expired`, `refused`).
pub fn offer_outcome(outcome: &'static str, n: u64) {
    metrics::counter!("homefront_offer_outcomes_total", "outcome" => outcome).increment(n);
}

/// Records one dispatcher pass.
pub fn dispatch_tick(offers: usize, escalated: usize, unfulfilled: usize) {
    metrics::counter!("homefront_dispatch_offers_total").increment(offers as u64);
    metrics::counter!("homefront_dispatch_escalations_total").increment(escalated as u64);
    metrics::counter!("homefront_dispatch_unfulfilled_total").increment(unfulfilled as u64);
}

#[derive(Clone)]
struct MetricsState {
    handle: PrometheusHandle,
    store: Store,
}

/// The metrics listener's router: `GET /metrics` in the Prometheus text
/// format, with the database pool sampled at each scrape.
pub fn router(handle: PrometheusHandle, store: Store) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(MetricsState { handle, store })
}

async fn render(State(s): State<MetricsState>) -> String {
    let pool = s.store.pool();
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    metrics::gauge!("homefront_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("homefront_db_pool_connections", "state" => "in_use").set(size - idle);
    metrics::gauge!("homefront_db_pool_max_connections")
        .set(f64::from(pool.options().get_max_connections()));
    match s.store.outbox_backlog().await {
        Ok((waiting, oldest)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let lag_ms = oldest.map_or(0, |t| (now - t).max(0));
            metrics::gauge!("homefront_outbox_waiting").set(waiting as f64);
            metrics::gauge!("homefront_outbox_lag_seconds").set(lag_ms as f64 / 1000.0);
        }
        Err(e) => tracing::warn!(error = %e, "outbox backlog for metrics"),
    }
    s.handle.render()
}

/// Serves [`router`] on `listener` until the task is dropped.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    store: Store,
) -> std::io::Result<()> {
    axum::serve(listener, router(handle, store)).await
}
