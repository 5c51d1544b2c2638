//! Static assets compiled into the binary and served under `/assets/`:
//! the stylesheet, the page scripts (countdowns; the installed app's
//! offline queue and alerts), the icons, and vendored htmx with its SSE
//! extension (BSD Zero-Clause licence, in `assets/vendor/`). Nothing is
//! fetched from the internet. [`version`] names this set of assets, so the
//! service worker replaces its cached copies when a release changes them.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "pwa.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/pwa.js"),
    ),
    (
        "offline-queue.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/offline-queue.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/icon.svg"),
    ),
    (
        "icon-192.png",
        "image/png",
        include_bytes!("../../assets/icon-192.png"),
    ),
    (
        "icon-512.png",
        "image/png",
        include_bytes!("../../assets/icon-512.png"),
    ),
    (
        "icon-maskable-512.png",
        "image/png",
        include_bytes!("../../assets/icon-maskable-512.png"),
    ),
    (
        "vendor/htmx-2.0.11.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
    ),
    (
        "vendor/htmx-ext-sse-2.2.4.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/htmx-ext-sse-2.2.4.min.js"),
    ),
];

/// The service worker's source; `__VERSION__` becomes [`version`].
pub(super) const SERVICE_WORKER: &str = include_str!("../../assets/sw.js");

/// The first 12 hex digits of the SHA-256 of every asset and the service
/// worker: a new value when any of them changes.
pub fn version() -> &'static str {
    use sha2::{Digest, Sha256};
    static V: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut h = Sha256::new();
        for (name, _, bytes) in ASSETS {
            h.update(name.as_bytes());
            h.update(bytes);
        }
        h.update(SERVICE_WORKER.as_bytes());
        h.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    &V
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/{*name}", get(asset))
        // Browsers ask for it even with a <link rel=icon>; answer with the icon.
        .route(
            "/favicon.ico",
            get(|| async { axum::response::Redirect::permanent("/assets/icon.svg") }),
        )
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(ctype)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
