//! Authorization matrix: every endpoint × every role × a record inside and
//! a record outside the caller's scope.
//!
//! Fixture (Jiangsu divisions imported):
//! - Nanjing city 320100 with counties Xuanwu 320102 and Qinhuai 320104;
//!   Wuxi city 320200.
//! - team A and employer E under Xuanwu; team B under Qinhuai.
//! - accounts: admin; Nanjing city coordinator; Xuanwu and Qinhuai county
//!   coordinators; Wuxi city coordinator; a liaison of E; a volunteer of
//!   team A; a requester.

use homefront_domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

struct Fixture {
    app: TestApp,
    xuanwu: i64,
    employer_e: i64,
    team_a: i64,
    team_b: i64,
    /// Volunteer account of team A.
    volunteer_a: i64,
    /// Volunteer account of team B.
    volunteer_b: i64,
    sessions: Vec<(&'static str, Session)>,
}

const ACTORS: [&str; 8] = [
    "admin",
    "city_nanjing",
    "county_xuanwu",
    "county_qinhuai",
    "city_wuxi",
    "liaison_e",
    "volunteer_a",
    "requester",
];

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let nanjing = app.division("320100").await;
    let xuanwu = app.division("320102").await;
    let qinhuai = app.division("320104").await;
    let wuxi = app.division("320200").await;
    use homefront_domain::org::OrgKind;
    let team_a = app.unit(OrgKind::Team, "玄武区志愿服务队", xuanwu).await;
    let employer_e = app.unit(OrgKind::Employer, "江苏省人民医院", xuanwu).await;
    let team_b = app.unit(OrgKind::Team, "秦淮区志愿服务队", qinhuai).await;

    let phones = [
        ("admin", "13800000001", vec![(Role::Admin, None)]),
        (
            "city_nanjing",
            "13800000002",
            vec![(Role::Coordinator, Some(nanjing))],
        ),
        (
            "county_xuanwu",
            "13800000003",
            vec![(Role::Coordinator, Some(xuanwu))],
        ),
        (
            "county_qinhuai",
            "13800000004",
            vec![(Role::Coordinator, Some(qinhuai))],
        ),
        (
            "city_wuxi",
            "13800000005",
            vec![(Role::Coordinator, Some(wuxi))],
        ),
        (
            "liaison_e",
            "13800000006",
            vec![(Role::Liaison, Some(employer_e))],
        ),
        (
            "volunteer_a",
            "13800000007",
            vec![(Role::Volunteer, Some(team_a))],
        ),
        ("requester", "13800000008", vec![(Role::Requester, None)]),
    ];
    let mut sessions = Vec::new();
    let mut volunteer_a = 0;
    for (name, phone, grants) in phones {
        let id = app.user(phone, &grants).await;
        if name == "volunteer_a" {
            volunteer_a = id;
        }
        sessions.push((name, app.login(phone).await));
    }
    let volunteer_b = app
        .user("13800000009", &[(Role::Volunteer, Some(team_b))])
        .await;
    Fixture {
        app,
        xuanwu,
        employer_e,
        team_a,
        team_b,
        volunteer_a,
        volunteer_b,
        sessions,
    }
}

impl Fixture {
    fn session(&self, name: &str) -> &Session {
        &self.sessions.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

/// One row of the matrix: a request and the status each actor must get.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    /// Status per actor, in the order of [`ACTORS`].
    expect: [u16; 8],
}

async fn check(f: &Fixture, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in &cases {
        // Unauthenticated: always 401.
        let (status, _) = f
            .app
            .call(None, case.method.clone(), &case.path, case.body.clone())
            .await;
        if status != StatusCode::UNAUTHORIZED {
            failures.push(format!(
                "{} as anonymous: got {status}, want 401",
                case.what
            ));
        }
        for (i, actor) in ACTORS.iter().enumerate() {
            let (status, body) = f
                .app
                .call(
                    Some(f.session(actor)),
                    case.method.clone(),
                    &case.path,
                    case.body.clone(),
                )
                .await;
            if status.as_u16() != case.expect[i] {
                failures.push(format!(
                    "{} as {actor}: got {status} {body}, want {}",
                    case.what, case.expect[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn org_unit_endpoints_respect_scope() {
    let f = fixture().await;
    let (a, b) = (f.team_a, f.team_b);
    //            admin city_nj xuanwu qinhuai city_wx liaison vol_a requester
    let cases = vec![
        Case {
            what: "read team A (Xuanwu)",
            method: Method::GET,
            path: format!("/api/v1/org-units/{a}"),
            body: None,
            expect: [200, 200, 200, 404, 404, 404, 200, 404],
        },
        Case {
            what: "read team B (Qinhuai)",
            method: Method::GET,
            path: format!("/api/v1/org-units/{b}"),
            body: None,
            expect: [200, 200, 404, 200, 404, 404, 404, 404],
        },
        Case {
            what: "rename team A",
            method: Method::PATCH,
            path: format!("/api/v1/org-units/{a}"),
            body: Some(json!({"name": "玄武区青年突击队"})),
            expect: [200, 200, 200, 404, 404, 404, 403, 404],
        },
        Case {
            what: "rename team B",
            method: Method::PATCH,
            path: format!("/api/v1/org-units/{b}"),
            body: Some(json!({"time_zone": "Asia/Shanghai"})),
            expect: [200, 200, 404, 200, 404, 404, 404, 404],
        },
        Case {
            what: "create a team under Xuanwu",
            method: Method::POST,
            path: "/api/v1/org-units".into(),
            body: Some(json!({"kind": "team", "name": "新队", "parent_id": f.xuanwu})),
            expect: [201, 201, 201, 422, 422, 403, 403, 403],
        },
        Case {
            what: "list divisions",
            method: Method::GET,
            path: "/api/v1/divisions".into(),
            body: None,
            expect: [200; 8],
        },
        Case {
            what: "read a missing unit",
            method: Method::GET,
            path: "/api/v1/org-units/999999".into(),
            body: None,
            expect: [404; 8],
        },
    ];
    check(&f, cases).await;
}

#[tokio::test]
async fn user_endpoints_respect_scope() {
    let f = fixture().await;
    let (va, vb) = (f.volunteer_a, f.volunteer_b);
    let new_volunteer = |phone: &str, team: i64| {
        json!({"phone": phone, "display_name": "新志愿者", "password": "long enough pw",
               "grants": [{"role": "volunteer", "org_unit_id": team}]})
    };
    //            admin city_nj xuanwu qinhuai city_wx liaison vol_a requester
    let cases = vec![
        Case {
            what: "read volunteer of team A",
            method: Method::GET,
            path: format!("/api/v1/users/{va}"),
            body: None,
            expect: [200, 200, 200, 404, 404, 404, 200, 404],
        },
        Case {
            what: "read volunteer of team B",
            method: Method::GET,
            path: format!("/api/v1/users/{vb}"),
            body: None,
            expect: [200, 200, 404, 200, 404, 404, 404, 404],
        },
        Case {
            what: "list users",
            method: Method::GET,
            path: "/api/v1/users".into(),
            body: None,
            expect: [200, 200, 200, 200, 200, 403, 403, 403],
        },
        Case {
            // Lifting sign-in throttling follows the password-reset rule.
            what: "unlock volunteer of team B",
            method: Method::POST,
            path: format!("/api/v1/users/{vb}/unlock"),
            body: None,
            expect: [204, 204, 404, 204, 404, 403, 403, 403],
        },
        Case {
            // Once the admin (first in the row) has put volunteer A on
            // team B too, the account has a role in each county: both
            // county coordinators see it, neither administers it. Only the
            // city's coordinator, above both, does.
            what: "grant a role in team B to volunteer A",
            method: Method::POST,
            path: format!("/api/v1/users/{va}/grants"),
            body: Some(json!({"role": "volunteer", "org_unit_id": f.team_b})),
            expect: [201, 201, 403, 403, 404, 403, 403, 403],
        },
        Case {
            // Targets another account: granting it to an actor would change
            // that actor's answers in the rest of the matrix.
            what: "grant admin",
            method: Method::POST,
            path: format!("/api/v1/users/{vb}/grants"),
            body: Some(json!({"role": "admin"})),
            expect: [201, 403, 404, 403, 404, 403, 403, 403],
        },
    ];
    check(&f, cases).await;

    // Creating accounts: each actor tries a fresh phone in team A.
    let expect = [201, 201, 201, 422, 422, 403, 403, 403];
    for (i, actor) in ACTORS.iter().enumerate() {
        let phone = format!("1391234560{i}");
        let (status, body) = f
            .app
            .post(
                f.session(actor),
                "/api/v1/users",
                new_volunteer(&phone, f.team_a),
            )
            .await;
        assert_eq!(status.as_u16(), expect[i], "create user as {actor}: {body}");
    }
}

#[tokio::test]
async fn lists_show_only_the_subtree() {
    let f = fixture().await;
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect()
    };
    let (_, xuanwu_users) = f.app.get(f.session("county_xuanwu"), "/api/v1/users").await;
    let xuanwu_users = ids(&xuanwu_users);
    assert!(xuanwu_users.contains(&f.volunteer_a));
    assert!(!xuanwu_users.contains(&f.volunteer_b));
    let (_, city_users) = f.app.get(f.session("city_nanjing"), "/api/v1/users").await;
    let city_users = ids(&city_users);
    assert!(city_users.contains(&f.volunteer_a) && city_users.contains(&f.volunteer_b));
    let (_, wuxi_units) = f.app.get(f.session("city_wuxi"), "/api/v1/org-units").await;
    let wuxi_units = ids(&wuxi_units);
    assert!(!wuxi_units.contains(&f.team_a) && !wuxi_units.contains(&f.team_b));
    assert!(!wuxi_units.is_empty());
    let (_, qinhuai_units) = f
        .app
        .get(f.session("county_qinhuai"), "/api/v1/org-units?kind=team")
        .await;
    assert_eq!(ids(&qinhuai_units), vec![f.team_b]);
}

#[tokio::test]
async fn out_of_scope_is_indistinguishable_from_missing() {
    let f = fixture().await;
    let s = f.session("county_xuanwu");
    let (s1, b1) = f
        .app
        .get(s, &format!("/api/v1/org-units/{}", f.team_b))
        .await;
    let (s2, b2) = f.app.get(s, "/api/v1/org-units/987654").await;
    assert_eq!((s1, b1.clone()), (s2, b2));
    assert_eq!(b1["code"], "not_found");
    let (s3, b3) = f
        .app
        .get(s, &format!("/api/v1/users/{}", f.volunteer_b))
        .await;
    assert_eq!((s3, b3), (StatusCode::NOT_FOUND, b1));
}

/// Places an order for the fixture's requester at `adcode`; returns its id.
async fn order_at(f: &Fixture, adcode: &str, key: &str) -> i64 {
    let requester = f.session("requester");
    let (_, household) = f.app.get(requester, "/api/v1/household").await;
    let member = match household["members"].as_array().and_then(|m| m.first()) {
        Some(m) => m["id"].as_i64().unwrap(),
        None => {
            let (_, m) = f
                .app
                .post(
                    requester,
                    "/api/v1/household/members",
                    json!({"name": "周护士", "relation": "self", "adcode": "320102", "street": "珠江路1号"}),
                )
                .await;
            m["id"].as_i64().unwrap()
        }
    };
    let item = f.app.store.service_items(false).await.unwrap()[0].id;
    let resp = f
        .app
        .client
        .post(format!("{}/api/v1/orders", f.app.base))
        .bearer_auth(&requester.token)
        .header("Idempotency-Key", key)
        .json(&json!({"item_id": item, "member_id": member, "window_start": "2020-02-12T20:00",
                      "window_end": "2020-02-12T22:00", "location": {"adcode": adcode, "street": "某路2号"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn order_endpoints_respect_scope() {
    let f = fixture().await;
    let xw = order_at(&f, "320102", "xw").await;
    let qh = order_at(&f, "320104", "qh").await;
    // Volunteer of team B (Qinhuai): out of scope for Xuanwu's coordinator.
    let vb = f.volunteer_b;
    //            admin city_nj xuanwu qinhuai city_wx liaison vol_a requester
    let cases = vec![
        Case {
            what: "read a Xuanwu order",
            method: Method::GET,
            path: format!("/api/v1/orders/{xw}"),
            body: None,
            expect: [200, 200, 200, 404, 404, 404, 404, 200],
        },
        Case {
            what: "read a Qinhuai order",
            method: Method::GET,
            path: format!("/api/v1/orders/{qh}"),
            body: None,
            expect: [200, 200, 404, 200, 404, 404, 404, 200],
        },
        Case {
            what: "read a Qinhuai order's events",
            method: Method::GET,
            path: format!("/api/v1/orders/{qh}/events"),
            body: None,
            expect: [200, 200, 404, 200, 404, 404, 404, 200],
        },
        Case {
            // An empty reason: allowed callers get 422 and nothing changes.
            what: "cancel a Xuanwu order",
            method: Method::POST,
            path: format!("/api/v1/orders/{xw}/cancel"),
            body: Some(json!({"reason": ""})),
            expect: [422, 422, 422, 404, 404, 404, 404, 422],
        },
        Case {
            // Team B (Qinhuai) does not serve Xuanwu while the order is not
            // escalated: not in its candidate list, so not assignable, for
            // the admin and Nanjing's coordinator as for Xuanwu's (422).
            what: "assign a Xuanwu order to team B's volunteer",
            method: Method::POST,
            path: format!("/api/v1/orders/{xw}/assign"),
            body: Some(json!({"volunteer_user_id": vb})),
            expect: [422, 422, 422, 404, 404, 404, 404, 403],
        },
        Case {
            what: "list orders",
            method: Method::GET,
            path: "/api/v1/orders".into(),
            body: None,
            expect: [200, 200, 200, 200, 200, 403, 200, 200],
        },
        Case {
            what: "read the household",
            method: Method::GET,
            path: "/api/v1/household".into(),
            body: None,
            expect: [403, 403, 403, 403, 403, 403, 403, 200],
        },
        Case {
            what: "read the catalogue",
            method: Method::GET,
            path: "/api/v1/service-items".into(),
            body: None,
            expect: [200; 8],
        },
    ];
    check(&f, cases).await;
    // Only the Xuanwu order is in Xuanwu's list; Wuxi's is empty.
    let (_, list) = f
        .app
        .get(f.session("county_xuanwu"), "/api/v1/orders")
        .await;
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![xw]);
    let (_, list) = f.app.get(f.session("city_wuxi"), "/api/v1/orders").await;
    assert!(list.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn password_resets_respect_scope() {
    let f = fixture().await;
    let (va, vb) = (f.volunteer_a, f.volunteer_b);
    //            admin city_nj xuanwu qinhuai city_wx liaison vol_a requester
    let cases = vec![
        Case {
            what: "reset team B's volunteer",
            method: Method::POST,
            path: format!("/api/v1/users/{vb}/password"),
            body: Some(json!({"password": "short"})),
            expect: [422, 422, 404, 422, 404, 403, 403, 403],
        },
        Case {
            // The admin's reset, first in the row, ends volunteer A's own
            // session: hence 401 in its column.
            what: "reset team A's volunteer",
            method: Method::POST,
            path: format!("/api/v1/users/{va}/password"),
            body: Some(json!({"password": "a new long password"})),
            expect: [204, 204, 204, 404, 404, 403, 401, 403],
        },
    ];
    check(&f, cases).await;
    let (status, _) = f
        .app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "13800000007", "password": "a new long password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Signs in with `password` and returns the status.
async fn login_status(f: &Fixture, phone: &str, password: &str) -> StatusCode {
    f.app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": phone, "password": password})),
        )
        .await
        .0
}

/// Ids of the fixture's accounts by actor name.
fn id_of(f: &Fixture, name: &str) -> i64 {
    f.session(name).user_id
}

/// Chains of actions, each allowed on its own, that together would hand a
/// county coordinator someone else's account: a team of its own, then a
/// grant there (or a volunteer registration, or a roster row) for an
/// account elsewhere, then a password reset. None of them may end in a
/// reset, and the targets can still sign in with their own password.
#[tokio::test]
async fn chains_of_actions_do_not_take_over_accounts() {
    let f = fixture().await;
    let xw = f.session("county_xuanwu");
    let new_password = "taken over, 2020!";
    // 1. A team of the county coordinator's own: allowed.
    let (status, team) = f
        .app
        .post(
            xw,
            "/api/v1/org-units",
            json!({"kind": "team", "name": "x", "parent_id": f.xuanwu}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team = team["id"].as_i64().unwrap();
    // Targets: a superior, peers elsewhere, the admin, a requester with no
    // employer, another county's volunteer.
    let targets = [
        ("city_nanjing", "13800000002"),
        ("county_qinhuai", "13800000004"),
        ("city_wuxi", "13800000005"),
        ("admin", "13800000001"),
        ("requester", "13800000008"),
    ];
    let mut failures = Vec::new();
    for (name, phone) in targets {
        let id = id_of(&f, name);
        // 2a. Create unit → grant → reset.
        let (s_grant, b) = f
            .app
            .post(
                xw,
                &format!("/api/v1/users/{id}/grants"),
                json!({"role": "volunteer", "org_unit_id": team}),
            )
            .await;
        if s_grant != StatusCode::NOT_FOUND {
            failures.push(format!("grant on {name}: {s_grant} {b}"));
        }
        // 2b. Register the account as a volunteer, by id and by phone.
        let (s_id, b) = f
            .app
            .post(
                xw,
                "/api/v1/volunteers",
                json!({"user_id": id, "team_id": team}),
            )
            .await;
        if (s_id, b["code"].as_str()) != (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_user")) {
            failures.push(format!("register {name} by id: {s_id} {b}"));
        }
        let (s_phone, b) = f
            .app
            .post(
                xw,
                "/api/v1/volunteers",
                json!({"phone": phone, "team_id": team, "display_name": "x"}),
            )
            .await;
        if (s_phone, b["code"].as_str(), b["field"].as_str())
            != (
                StatusCode::FORBIDDEN,
                Some("account_outside_area"),
                Some("phone"),
            )
        {
            failures.push(format!("register {name} by phone: {s_phone} {b}"));
        }
        // 2c. A roster row with the account's phone.
        let csv = format!("姓名,手机号\nx,{phone}\n");
        let resp = f
            .app
            .client
            .post(format!(
                "{}/api/v1/volunteers/import?team_id={team}",
                f.app.base
            ))
            .bearer_auth(&xw.token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let report: Value = resp.json().await.unwrap();
        if report["rows"][0]["errors"][0]["code"] != "account_outside_area"
            || report["created"] != 0
        {
            failures.push(format!("roster row for {name}: {report}"));
        }
        // 3. The reset: the account is still out of reach.
        let (s_reset, b) = f
            .app
            .post(
                xw,
                &format!("/api/v1/users/{id}/password"),
                json!({"password": new_password}),
            )
            .await;
        if s_reset != StatusCode::NOT_FOUND {
            failures.push(format!("reset {name}: {s_reset} {b}"));
        }
        if login_status(&f, phone, new_password).await != StatusCode::UNAUTHORIZED
            || login_status(&f, phone, crate::helpers::PASSWORD).await != StatusCode::OK
        {
            failures.push(format!("{name}'s password changed"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let volunteers: i64 = sqlx::query_scalar("select cast(count(*) as bigint) from volunteer")
        .fetch_one(f.app.store.pool())
        .await
        .unwrap();
    assert_eq!(volunteers, 0, "no account became a volunteer");
}

/// An account made visible to a county coordinator by an admin (the city
/// coordinator, added to a county team as a volunteer) is visible, but its
/// password and roles stay out of the county coordinator's reach; so are a
/// peer coordinator's. What the county coordinator administers (an account
/// whose every role is in the county) it may still change.
#[tokio::test]
async fn visibility_does_not_open_reset_or_grants() {
    let f = fixture().await;
    let xw = f.session("county_xuanwu");
    let admin = f.session("admin");
    let city = id_of(&f, "city_nanjing");
    let (s, _) = f
        .app
        .post(
            admin,
            &format!("/api/v1/users/{city}/grants"),
            json!({"role": "volunteer", "org_unit_id": f.team_a}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let peer = f
        .app
        .user("13800000010", &[(Role::Coordinator, Some(f.xuanwu))])
        .await;
    for (name, id) in [("city coordinator", city), ("peer coordinator", peer)] {
        let (s, user) = f.app.get(xw, &format!("/api/v1/users/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{name} is visible");
        let (s, b) = f
            .app
            .post(
                xw,
                &format!("/api/v1/users/{id}/password"),
                json!({"password": "taken over, 2020!"}),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("account_outside_area")),
            "reset {name}"
        );
        let (s, b) = f
            .app
            .post(
                xw,
                &format!("/api/v1/users/{id}/grants"),
                json!({"role": "liaison", "org_unit_id": f.employer_e}),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("account_outside_area")),
            "grant to {name}"
        );
        let grant = user["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["org_unit_id"] == f.team_a || g["org_unit_id"] == f.xuanwu)
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let (s, b) = f
            .app
            .call(
                Some(xw),
                Method::DELETE,
                &format!("/api/v1/users/{id}/grants/{grant}"),
                None,
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("account_outside_area")),
            "revoke {name}'s grant"
        );
    }
    assert_eq!(
        login_status(&f, "13800000002", crate::helpers::PASSWORD).await,
        StatusCode::OK
    );
    // The city coordinator administers both (below its level), and the
    // county coordinator a requester of an employer in the county: it may
    // make that requester a volunteer, and then reset the password.
    let city_s = f.session("city_nanjing");
    let (s, _) = f
        .app
        .post(
            city_s,
            &format!("/api/v1/users/{peer}/password"),
            json!({"password": "a new long password"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let nurse = f
        .app
        .user("13800000011", &[(Role::Requester, Some(f.employer_e))])
        .await;
    let (s, b) = f
        .app
        .post(
            xw,
            "/api/v1/volunteers",
            json!({"phone": "13800000011", "team_id": f.team_a}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = f
        .app
        .post(
            xw,
            &format!("/api/v1/users/{nurse}/password"),
            json!({"password": "a new long password"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // The admin attaches anyone.
    let wuxi = id_of(&f, "city_wuxi");
    let (s, b) = f
        .app
        .post(
            admin,
            "/api/v1/volunteers",
            json!({"user_id": wuxi, "team_id": f.team_b}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}
