//! Constraint violations are classified on both engines: the named
//! constraints callers map to their own answers are recognised, and what
//! reaches a client never names a constraint.

use homefront_domain::catalogue::{Lane, ServiceMode};
use homefront_domain::locale::Locale;
use homefront_domain::pairing::PairingRole;
use homefront_domain::{PhoneNumber, Role};
use homefront_server::error::ApiError;
use homefront_store::catalogue::ItemFields;
use homefront_store::{StoreError, constraint};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{T0, TestApp};

fn item(code: &str, minutes: i64) -> ItemFields {
    ItemFields {
        code: code.into(),
        org_unit_id: None,
        name_zh: "测试".into(),
        name_en: "Test".into(),
        mode: ServiceMode::Onsite,
        qualifications: String::new(),
        default_duration_minutes: minutes,
        offer_timeout_seconds: 60,
        lane: Lane::Standard,
        priority_channel: false,
        follow_up_days: None,
        runs_alongside: false,
    }
}

#[tokio::test]
async fn constraint_violations_are_classified_and_named_on_both_engines() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    let phone = PhoneNumber::parse("13800000009").unwrap();
    app.user("13800000009", &[]).await;

    let e = app
        .store
        .create_user(&phone, "again", "x", Locale::ZhCn, T0.0)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert!(e.violates(&constraint::USER_PHONE), "{e:?}");
    assert!(!e.violates(&constraint::PAIRING_LIVE), "{e:?}");

    app.store
        .create_service_item(&item("test_item", 30), T0.0)
        .await
        .unwrap();
    let e = app
        .store
        .create_service_item(&item("test_item", 30), T0.0)
        .await
        .unwrap_err();
    assert!(e.violates(&constraint::SERVICE_ITEM_CODE), "{e:?}");

    // CHECK (default_duration_minutes > 0)
    let e = app
        .store
        .create_service_item(&item("zero_minutes", 0), T0.0)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::CheckViolation(_)), "{e:?}");

    // A grant on a unit that does not exist: a foreign key.
    let uid = app.user("13800000010", &[]).await;
    let e = app
        .store
        .grant_role(uid, Role::Coordinator, Some(xuanwu + 100_000), T0.0)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::MissingReference(_)), "{e:?}");

    let requester = app.user("13800000011", &[(Role::Requester, None)]).await;
    let volunteer = app.user("13900000001", &[(Role::Volunteer, None)]).await;
    let household = app.store.household_of(requester, T0.0).await.unwrap();
    app.store
        .create_pairing(household.id, volunteer, PairingRole::Primary, None, T0.0)
        .await
        .unwrap();
    let e = app
        .store
        .create_pairing(household.id, volunteer, PairingRole::Backup, None, T0.0)
        .await
        .unwrap_err();
    assert!(e.violates(&constraint::PAIRING_LIVE), "{e:?}");
}

#[tokio::test]
async fn no_answer_names_a_constraint() {
    let app = TestApp::spawn().await;
    let phone = PhoneNumber::parse("13800000009").unwrap();
    app.user("13800000009", &[]).await;
    let uid = app.user("13800000010", &[]).await;
    let errors = [
        app.store
            .create_user(&phone, "again", "x", Locale::ZhCn, T0.0)
            .await
            .unwrap_err(),
        app.store
            .create_service_item(&item("zero_minutes", 0), T0.0)
            .await
            .unwrap_err(),
        app.store
            .grant_role(uid, Role::Coordinator, Some(100_000), T0.0)
            .await
            .unwrap_err(),
    ];
    for (e, (status, code)) in errors.into_iter().zip([
        (409, "duplicate"),
        (422, "invalid_value"),
        (422, "missing_reference"),
    ]) {
        let logged = e.to_string();
        let answer = ApiError::from(e);
        assert_eq!((answer.status.as_u16(), answer.code), (status, code));
        for word in [
            "app_user",
            "phone",
            "service_item",
            "role_grant",
            "constraint",
            "_key",
        ] {
            assert!(
                !answer.message.contains(word),
                "{} ({logged})",
                answer.message
            );
        }
    }
}

#[tokio::test]
async fn a_duplicate_answers_without_naming_the_constraint() {
    let app = TestApp::spawn().await;
    app.user("13800000001", &[(Role::Admin, None)]).await;
    app.user("13800000002", &[]).await;
    let admin = app.login("13800000001").await;
    let (status, body) = app
        .post(
            &admin,
            "/api/v1/users",
            json!({"phone": "13800000002", "display_name": "Again", "password": "long enough pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "phone_taken");
    let text = body.to_string();
    for name in [
        constraint::USER_PHONE.postgres,
        constraint::USER_PHONE.sqlite,
        "constraint",
    ] {
        assert!(!text.contains(name), "{text}");
    }
}

/// A unique violation that no call site maps (the org-unit handler passes
/// the store's error on with a plain `?`) still answers 409 `duplicate`,
/// not 500, and names neither the index nor its columns. The unique index
/// is the test's own, on (parent, name), so the violation is one nobody
/// wrote an answer for.
#[tokio::test]
async fn an_unmapped_unique_violation_through_a_plain_question_mark_answers_409() {
    let w = crate::helpers::World::jiangsu()
        .county("320102")
        .admin("13800138000")
        .build()
        .await;
    let mut tx = w.app.store.begin_write().await.unwrap();
    sqlx::query("create unique index zz_test_unit_name on org_unit (parent_id, name)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let admin = w.session("13800138000");
    let body = json!({"kind": "team", "name": "玄武区志愿服务队", "parent_id": w.county});
    let (status, first) = w.app.post(&admin, "/api/v1/org-units", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = w.app.post(&admin, "/api/v1/org-units", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["code"], "duplicate", "{again}");
    let text = again.to_string();
    for word in ["zz_test_unit_name", "org_unit", "parent_id", "constraint"] {
        assert!(!text.contains(word), "{text}");
    }
    let named: i64 =
        sqlx::query_scalar("select cast(count(*) as bigint) from org_unit where name = $1")
            .bind("玄武区志愿服务队")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap();
    assert_eq!(named, 1, "the refused unit was not created");
}
