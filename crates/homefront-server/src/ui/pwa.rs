//! The installed app: the web app manifest, the service worker and the
//! page shown when a page is asked for without network and no copy of it
//! is kept.
//!
//! - `GET /manifest.webmanifest` (also `/manifest.json`): name, icons,
//!   `display: standalone`, start and scope `/`, in the viewer's language
//!   (`?lang=` from the page, else the cookie or `Accept-Language`).
//! - `GET /sw.js`: the service worker (`assets/sw.js`, its cache name set
//!   to the assets' version), at the site's root so its scope covers every
//!   page; `no-cache`, so a release reaches phones on their next visit.
//! - `GET /offline`: the fallback page the service worker keeps.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::i18n::{Lang, Tr};
use super::{Layout, anonymous};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/manifest.webmanifest", get(manifest))
        .route("/manifest.json", get(manifest))
        .route("/sw.js", get(service_worker))
        .route("/offline", get(offline))
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// The Web App Manifest (W3C Application Manifest).
async fn manifest(headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    let t = Tr(q
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or_else(|| Lang::of(&headers)));
    let body = json!({
        "name": t.t("app.name"),
        "short_name": t.t("app.name"),
        "description": t.t("pwa.description"),
        "lang": t.lang(),
        "dir": "ltr",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b5cad",
        "icons": [
            {"src": "/assets/icon.svg", "sizes": "any", "type": "image/svg+xml"},
            {"src": "/assets/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/assets/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "/assets/icon-maskable-512.png", "sizes": "512x512", "type": "image/png",
             "purpose": "maskable"}
        ],
        "shortcuts": [
            {"name": t.t("pwa.shortcut_offers"), "url": "/volunteer",
             "icons": [{"src": "/assets/icon-192.png", "sizes": "192x192"}]}
        ]
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/manifest+json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The service worker script.
async fn service_worker() -> Response {
    let script = super::assets::SERVICE_WORKER.replace("__VERSION__", super::assets::version());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                HeaderValue::from_static("/"),
            ),
        ],
        script,
    )
        .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "offline.html")]
struct OfflinePage {
    t: Tr,
    l: Layout,
}

/// The page shown without network for a page not kept offline.
async fn offline(headers: HeaderMap) -> OfflinePage {
    let l = anonymous(&headers, "/offline");
    OfflinePage { t: l.t, l }
}
