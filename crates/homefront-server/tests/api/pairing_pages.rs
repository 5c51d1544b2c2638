//! Pairings over HTTP: `POST /api/v1/pairings/{id}/repair`, and the
//! coordinator's `/board/pairings` page signed in by form — find a family
//! by the requester's phone, pair a volunteer, re-pair, end with a reason;
//! refusals name the field, keep the input and change nothing; a family
//! outside the coordinator's area is not found.

use homefront_domain::Role;
use homefront_domain::pairing::PairingRole;
use reqwest::StatusCode;
use serde_json::json;

use crate::dispatch::{Flaw, World, world};
use crate::language::assert_language;
use crate::ui::{browser, sign_in};

async fn get(client: &reqwest::Client, w: &World, path: &str, lang: &str) -> (StatusCode, String) {
    let resp = client
        .get(format!("{}{path}", w.app.base))
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post(
    client: &reqwest::Client,
    w: &World,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let resp = client
        .post(format!("{}{path}", w.app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let to = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status(), to, resp.text().await.unwrap())
}

#[tokio::test]
async fn repair_hands_the_family_to_another_volunteer_in_one_step() {
    let w = world().await;
    let first = w.volunteer("13900000001", 0.5, &[], Flaw::default()).await;
    let second = w.volunteer("13900000002", 1.0, &[], Flaw::default()).await;
    let (status, p) = w
        .app
        .post(
            &w.coordinator,
            "/api/v1/pairings",
            json!({"household_id": w.household, "volunteer_user_id": first, "role": "primary"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_i64().unwrap();
    let path = format!("/api/v1/pairings/{id}/repair");
    for (body, code, field) in [
        (
            json!({"reason": "", "volunteer_user_id": second}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
        ),
        (
            json!({"reason": "搬家", "volunteer_user_id": first}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "volunteer_user_id",
        ),
        (
            json!({"reason": "搬家", "volunteer_user_id": 999_999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "volunteer_user_id",
        ),
    ] {
        let (status, err) = w.app.post(&w.coordinator, &path, body.clone()).await;
        assert_eq!(status, code, "{body}: {err}");
        assert_eq!(err["field"], field, "{body}: {err}");
    }
    let live = w.app.store.live_pairings(w.household).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].volunteer_user_id, first);

    let (status, new) = w
        .app
        .post(
            &w.coordinator,
            &path,
            json!({"reason": "志愿者搬家了", "volunteer_user_id": second}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert_eq!(new["volunteer_user_id"], second);
    assert_eq!(new["role"], "primary");
    let live = w.app.store.live_pairings(w.household).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].volunteer_user_id, second);
    assert_eq!(live[0].role, PairingRole::Primary);
    let old = w.app.store.pairing(id).await.unwrap().unwrap();
    assert!(old.ended_at.is_some());
    assert_eq!(old.end_reason.as_deref(), Some("志愿者搬家了"));
    // The ended pairing cannot be re-paired again.
    let (status, err) = w
        .app
        .post(
            &w.coordinator,
            &path,
            json!({"reason": "再换", "volunteer_user_id": first}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "already_ended");
    // Re-pairing onto a volunteer already paired with the family changes
    // nothing.
    let (status, backup) = w
        .app
        .post(
            &w.coordinator,
            "/api/v1/pairings",
            json!({"household_id": w.household, "volunteer_user_id": first, "role": "backup"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{backup}");
    let current = new["id"].as_i64().unwrap();
    let (status, err) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/pairings/{current}/repair"),
            json!({"reason": "再换", "volunteer_user_id": first}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "already_paired");
    assert!(
        w.app
            .store
            .pairing(current)
            .await
            .unwrap()
            .unwrap()
            .ended_at
            .is_none()
    );
    // A requester may not.
    let (status, _) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/pairings/{current}/repair"),
            json!({"reason": "想换", "volunteer_user_id": first}),
        )
        .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
        "{status}"
    );
}

#[tokio::test]
async fn coordinator_pairs_repairs_and_ends_on_the_pairings_page() {
    let w = world().await;
    let first = w.volunteer("13900000001", 0.5, &[], Flaw::default()).await;
    let second = w.volunteer("13900000002", 1.0, &[], Flaw::default()).await;
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/board/pairings").await;

    // Found by the requester's phone, as typed with spaces.
    let (status, html) = get(&client, &w, "/board/pairings?phone=138+0000+0001", "zh-CN").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("id=\"household\"") && html.contains("刘护士"),
        "{html}"
    );
    assert!(html.contains("id=\"no-pairings\"") && html.contains("id=\"pair-form\""));
    assert!(html.contains("玄武区"), "{html}");
    assert_language("/board/pairings?phone", &html, false);

    let household = w.household.to_string();
    // An unknown volunteer phone: 422 naming the field, input kept.
    let (status, _, html) = post(
        &client,
        &w,
        "/board/pairings/new",
        &[
            ("_csrf", &csrf),
            ("household_id", &household),
            ("volunteer_phone", "13900000099"),
            ("role", "primary"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("id=\"form-error\"") && html.contains("志愿者手机号"),
        "{html}"
    );
    assert!(html.contains("value=\"13900000099\""), "{html}");
    assert!(
        w.app
            .store
            .live_pairings(w.household)
            .await
            .unwrap()
            .is_empty()
    );

    // Pair the first as primary.
    let (status, to, _) = post(
        &client,
        &w,
        "/board/pairings/new",
        &[
            ("_csrf", &csrf),
            ("household_id", &household),
            ("volunteer_phone", "139 0000 0001"),
            ("role", "primary"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.contains("done=paired"), "{to}");
    let live = w.app.store.live_pairings(w.household).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].volunteer_user_id, live[0].role),
        (first, PairingRole::Primary)
    );
    let pairing = live[0].id;

    // A second primary is refused with the page's words; nothing changes.
    let (status, _, html) = post(
        &client,
        &w,
        "/board/pairings/new",
        &[
            ("_csrf", &csrf),
            ("household_id", &household),
            ("volunteer_phone", "13900000002"),
            ("role", "primary"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("已有主结对志愿者"), "{html}");
    assert_eq!(
        w.app.store.live_pairings(w.household).await.unwrap().len(),
        1
    );

    // The page lists the pairing with confirmations on both actions.
    let (_, html) = get(
        &client,
        &w,
        &format!("/board/pairings?household={household}&done=paired"),
        "zh-CN",
    )
    .await;
    assert!(
        html.contains(&format!("id=\"pairing-{pairing}\"")),
        "{html}"
    );
    assert!(html.contains("已结对。") && html.contains("主结对志愿者"));
    assert_eq!(html.matches("data-confirm=").count(), 2, "{html}");
    assert_language("/board/pairings?household", &html, false);
    let (_, en) = get(
        &client,
        &w,
        &format!("/board/pairings?household={household}&done=paired"),
        "en",
    )
    .await;
    assert!(
        en.contains("Paired volunteers") && en.contains("Xuanwu"),
        "{en}"
    );
    assert_language("/board/pairings?household (en)", &en, true);

    // Re-pair without a reason: refused, nothing changes.
    let (status, _, html) = post(
        &client,
        &w,
        &format!("/board/pairings/{pairing}/repair"),
        &[
            ("_csrf", &csrf),
            ("volunteer_phone", "13900000002"),
            ("reason", " "),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("id=\"form-error\"") && html.contains("原因"),
        "{html}"
    );
    assert!(html.contains("value=\"13900000002\""), "{html}");
    assert_eq!(
        w.app.store.live_pairings(w.household).await.unwrap()[0].id,
        pairing
    );

    // Re-pair with a reason: the second takes the primary role at once.
    let (status, to, _) = post(
        &client,
        &w,
        &format!("/board/pairings/{pairing}/repair"),
        &[
            ("_csrf", &csrf),
            ("volunteer_phone", "13900000002"),
            ("reason", "志愿者返乡"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.contains("done=repaired"), "{to}");
    let live = w.app.store.live_pairings(w.household).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].volunteer_user_id, live[0].role),
        (second, PairingRole::Primary)
    );
    let old = w.app.store.pairing(pairing).await.unwrap().unwrap();
    assert_eq!(old.end_reason.as_deref(), Some("志愿者返乡"));

    // A coordinator of another county finds no family and cannot end it.
    let other_county = w.app.division("320104").await;
    w.app
        .user("13800000009", &[(Role::Coordinator, Some(other_county))])
        .await;
    let other = browser();
    let other_csrf = sign_in(&w.app, &other, "13800000009", "/board/pairings").await;
    let (status, html) = get(&other, &w, "/board/pairings?phone=13800000001", "zh-CN").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("id=\"no-household\"") && !html.contains("刘护士"),
        "{html}"
    );
    let (_, html) = get(
        &other,
        &w,
        &format!("/board/pairings?household={household}"),
        "zh-CN",
    )
    .await;
    assert!(!html.contains("刘护士"), "{html}");
    let now = live[0].id;
    let (status, _, _) = post(
        &other,
        &w,
        &format!("/board/pairings/{now}/end"),
        &[("_csrf", &other_csrf), ("reason", "越权")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // End with a reason.
    let (status, to, _) = post(
        &client,
        &w,
        &format!("/board/pairings/{now}/end"),
        &[("_csrf", &csrf), ("reason", "家庭不再需要")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.contains("done=ended"), "{to}");
    assert!(
        w.app
            .store
            .live_pairings(w.household)
            .await
            .unwrap()
            .is_empty()
    );
}
