//! Homefront's HTTP service: the JSON API under `/api/v1`, authentication
//! and authorization, and background workers.
//!
//! [`build_app`] returns the router and [`serve`] runs it on a listener, so
//! tests bind `127.0.0.1:0` and drive the real application over HTTP.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod burst;
pub mod config;
pub mod demo;
pub mod dispatcher;
pub mod error;
pub mod exports;
pub mod input;
pub mod leader;
pub mod live;
pub mod loadgen;
pub mod metrics;
pub mod notify;
pub mod privacy;
pub mod roster;
pub mod ui;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use homefront_domain::Clock;
use homefront_store::Store;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The source of "now"; a `ManualClock` in tests.
    pub clock: Arc<dyn Clock>,
    /// Loaded configuration.
    pub config: Arc<Config>,
    /// Wakes the dispatcher early (a new order, a declined offer).
    pub dispatch_wake: Arc<tokio::sync::Notify>,
    /// Order-change notices for live views.
    pub live: tokio::sync::broadcast::Sender<live::OrderChanged>,
    /// Inbox-change notices for live views.
    pub inbox: tokio::sync::broadcast::Sender<live::InboxChanged>,
    /// Account-change notices: live views check their session again.
    pub accounts: tokio::sync::broadcast::Sender<live::AccountChanged>,
    /// Wakes the notification delivery worker early (something committed).
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// HTTP client of the notification channels (group bots, webhooks).
    pub http: reqwest::Client,
    /// The VAPID key pair of Web Push, loaded (or made) on first use.
    pub vapid: Arc<tokio::sync::OnceCell<Arc<notify::push::Vapid>>>,
}

impl AppState {
    /// State over `store` with `clock` and `config`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: Config) -> Self {
        Self {
            store,
            clock,
            config: Arc::new(config),
            dispatch_wake: Arc::new(tokio::sync::Notify::new()),
            live: live::channel(),
            inbox: tokio::sync::broadcast::channel(live::CAPACITY).0,
            accounts: tokio::sync::broadcast::channel(live::CAPACITY).0,
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            http: reqwest::Client::builder()
                .timeout(notify::channels::SEND_TIMEOUT)
                .build()
                .unwrap_or_default(),
            vapid: Arc::new(tokio::sync::OnceCell::new()),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The Content-Security-Policy of every response. Scripts, styles,
/// images, workers, the manifest and connections (fetch, server-sent
/// events) come from this origin only; no inline script, `eval`, plugin,
/// `<base>` or framing (`frame-ancestors 'none'`); forms post here only.
/// Inline style *attributes* are allowed (the dashboard's legend swatches
/// carry their colour), `<style>` elements are not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
    connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The security headers on every response (OWASP Secure Headers Project;
/// tower-http's header layers): CSP, `X-Frame-Options: DENY`,
/// `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
/// `Cache-Control: no-store` unless a response says otherwise (only the
/// embedded assets, the manifest and the service worker do: they hold no
/// personal data), and with `secure_cookies` (served over HTTPS) HSTS for
/// a year.
fn with_security_headers(router: Router, hsts: bool) -> Router {
    use axum::http::{HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    let router = router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    if hsts {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ))
    } else {
        router
    }
}

/// The whole application as a router: API routes, request ids, tracing
/// (method, path and status only: no query strings, bodies, tokens or
/// personal data), the text rule on paths and queries, security headers
/// and a 30 s request timeout.
pub fn build_app(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
    });
    let hsts = state.config.secure_cookies;
    let app = api::router()
        .route_layer(axum::middleware::from_fn(metrics::track_http))
        .with_state(state)
        .layer(axum::middleware::from_fn(input::check_uri))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(30),
                )),
        );
    // Outermost, so every answer carries them, a timeout's included.
    with_security_headers(app, hsts)
}

/// Serves the application on `listener` until `shutdown` completes, then
/// finishes in-flight requests (graceful shutdown). On PostgreSQL it also
/// relays live changes committed by any instance to this one's open pages.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The VAPID key pair is made on first start (or read), so the pages
    // can offer alerts at once.
    if let Err(e) = notify::push::vapid(&state).await {
        tracing::warn!(error = %e, "Web Push is unavailable: no VAPID key");
    }
    let relay = live::spawn_relay(state.clone());
    let app = build_app(state);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Some(r) = relay {
        r.abort();
    }
    served
}
