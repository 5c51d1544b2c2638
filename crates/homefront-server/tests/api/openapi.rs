//! The OpenAPI document: served, generated from the code, and snapshotted
//! so that a change to it is a deliberate one (`cargo insta review`).

use reqwest::StatusCode;
use serde_json::Value;

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
    // Served as generated. (That every route is in the document is checked
    // against the routers' source by the unit tests in `api/openapi.rs`.)
    assert_eq!(
        doc,
        serde_json::to_value(homefront_server::api::openapi::document()).unwrap()
    );
    assert_error_answers_are_documented(&doc);
    // The snapshot is of the document the code generates, not of the
    // response bytes: the same value either way.
    insta::assert_json_snapshot!("openapi", doc);
}

/// Every operation that needs a session documents 401, every one with a
/// JSON body the extractor's 400, 413 and 415 and a 422, and every JSON
/// error answer is an `ErrorShape`.
fn assert_error_answers_are_documented(doc: &Value) {
    let error_shape = "#/components/schemas/ErrorShape";
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let here = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if !public {
                assert!(responses.contains_key("401"), "{here} documents 401");
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{here} documents {status}");
                }
            }
            for (status, answer) in responses {
                let json = &answer["content"]["application/json"]["schema"]["$ref"];
                if status.starts_with('4') && !json.is_null() {
                    assert_eq!(json, error_shape, "{here} {status} is an ErrorShape");
                }
            }
        }
    }
}
