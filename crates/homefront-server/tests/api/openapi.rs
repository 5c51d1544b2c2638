//! The OpenAPI document: served, generated from the code, and snapshotted
//! so that a change to it is a deliberate one (`cargo insta review`).

use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let app = TestApp::spawn().await;
    let (status, doc) = app
        .call(None, reqwest::Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/reports/summary",
        "/api/v1/reports/public",
        "/api/v1/reports/hours",
        "/api/v1/exports/orders",
        "/api/v1/exports/hours",
        "/api/v1/volunteers/{id}/certificate",
        "/certificates/{code}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"]["ErrorShape"].is_object());
    // The snapshot is of the document the code generates, not of the
    // response bytes: the same value either way.
    insta::assert_json_snapshot!("openapi", doc);
}
