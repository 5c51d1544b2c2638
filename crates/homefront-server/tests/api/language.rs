//! Language completeness over HTTP: every page visited here, in Chinese,
//! holds no English UI text, and in English no Chinese, apart from data
//! (elements marked `translate="no"`: names, streets, times, phones); and
//! phones read `138 0001 0001`, never `+8613800010001`.
//!
//! The pages are walked as a browser would see their text: text nodes and
//! the attributes people read (`title`, `placeholder`, `aria-label`,
//! `data-confirm`), outside `script`, `style` and `translate="no"`
//! subtrees.

use homefront_domain::Role;
use homefront_domain::credentials::CredentialKind;
use homefront_domain::org::OrgKind;
use reqwest::StatusCode;

use crate::dispatch::{Flaw, accept, world};
use crate::ui::{browser, sign_in};

/// Elements without a closing tag.
const VOID: [&str; 9] = [
    "area", "br", "col", "embed", "hr", "img", "input", "link", "meta",
];

/// Attributes whose values people read.
const READ_ATTRS: [&str; 4] = ["title", "placeholder", "aria-label", "data-confirm"];

/// The UI text of `html` (see the module doc), one entry per text node or
/// read attribute, trimmed, empty ones left out.
pub fn ui_texts(html: &str) -> Vec<String> {
    let body = html.find("<body").map_or(html, |i| &html[i..]);
    let mut out = Vec::new();
    // (tag, skipped: inside translate="no", script or style)
    let mut stack: Vec<(String, bool)> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            break;
        };
        let text = rest[..lt].trim();
        let skipped = stack.last().is_some_and(|(_, s)| *s);
        if !text.is_empty() && !skipped {
            out.push(decode(text));
        }
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |e| &rest[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            if let Some(pos) = stack.iter().rposition(|(n, _)| *n == name) {
                stack.truncate(pos);
            }
            continue;
        }
        let name: String = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let skip = skipped
            || tag.contains("translate=\"no\"")
            || matches!(name.as_str(), "script" | "style");
        if !skip {
            for attr in READ_ATTRS {
                if let Some(v) = tag
                    .split(&format!(" {attr}=\""))
                    .nth(1)
                    .and_then(|v| v.split('"').next())
                    .filter(|v| !v.trim().is_empty())
                {
                    out.push(decode(v.trim()));
                }
            }
        }
        if !VOID.contains(&name.as_str()) && !tag.ends_with('/') && !name.starts_with('!') {
            stack.push((name, skip));
        }
    }
    out
}

fn decode(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

fn has_english_word(s: &str) -> bool {
    s.split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| w.len() >= 3)
}

/// Fails naming the page and the offending texts.
pub(crate) fn assert_language(path: &str, html: &str, en: bool) {
    let texts = ui_texts(html);
    // The walk saw the page's words (a walker that skipped everything
    // would pass anything).
    assert!(texts.len() > 10, "{path}: {texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| if en { has_english_word(t) } else { has_cjk(t) }),
        "{path}: {texts:?}"
    );
    let wrong: Vec<&String> = texts
        .iter()
        .filter(|t| {
            if en {
                has_cjk(t) && t.as_str() != "中文"
            } else {
                has_english_word(t) && t.as_str() != "English"
            }
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{path} ({}): {wrong:?}",
        if en { "en" } else { "zh" }
    );
    assert!(!html.contains(">+86"), "{path}: a phone in E.164 form");
}

#[test]
fn the_walker_skips_data_and_reads_attributes() {
    let html = r#"<body><p>订单 <span translate="no">Wang <b>Fang</b></span> 已提交</p>
        <form data-confirm="确认？"><input placeholder="手机号"><script>var x = "abc";</script></form></body>"#;
    assert_eq!(ui_texts(html), vec!["订单", "已提交", "确认？", "手机号"]);
    assert!(has_english_word("Sign in") && !has_english_word("第1名 · 0.5 km"));
}

#[tokio::test]
async fn pages_speak_one_language_each_and_show_phones_spaced() {
    let w = world().await;
    let quals = [CredentialKind::DrivingLicence];
    w.volunteer("13900000001", 0.5, &quals, Flaw::default())
        .await;
    w.volunteer(
        "13900000002",
        1.0,
        &[],
        Flaw {
            off_duty: true,
            ..Flaw::default()
        },
    )
    .await;
    let hospital = w
        .app
        .unit(OrgKind::Employer, "江苏省人民医院", w.xuanwu)
        .await;
    w.app
        .user("13800000004", &[(Role::Liaison, Some(hospital))])
        .await;
    let live = w.order("groceries", "lang-2").await;
    w.tick().await;
    let offer = w
        .open_offers(live)
        .await
        .into_iter()
        .next()
        .expect("an offer of the groceries order");
    let s = w.app.login("13900000001").await;
    let (status, body) = accept(&w.app, &s, offer.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Waiting: the licensed driver is busy, the other off duty.
    let waiting = w.order("ride", "lang-1").await;
    w.tick().await;
    // The liaison verifies the requester so their pages have data.
    let liaison = browser();
    let csrf = sign_in(&w.app, &liaison, "13800000004", "/liaison").await;
    let resp = liaison
        .post(format!("{}/liaison/verify", w.app.base))
        .form(&[("_csrf", csrf.as_str()), ("phone", "13800000001")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    let coordinator = browser();
    sign_in(&w.app, &coordinator, "13800000002", "/board").await;
    let requester = browser();
    sign_in(&w.app, &requester, "13800000001", "/orders").await;
    let household = w.household;
    let groceries = w
        .app
        .store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == "groceries")
        .unwrap()
        .id;
    let visits: Vec<(&reqwest::Client, String)> = vec![
        (&coordinator, format!("/board/orders/{waiting}")),
        (&coordinator, format!("/board/orders/{live}")),
        (&coordinator, format!("/admin/units/{}/dispatch", w.xuanwu)),
        (&requester, "/orders/new".to_string()),
        (&requester, format!("/orders/new/who?item={groceries}")),
        (&requester, format!("/orders/{waiting}")),
        (&requester, format!("/orders/{live}")),
        (&liaison, "/liaison".to_string()),
        (&liaison, format!("/liaison/order?household={household}")),
    ];
    for (client, path) in visits {
        for (lang, en) in [("zh-CN", false), ("en", true)] {
            let resp = client
                .get(format!("{}{path}", w.app.base))
                .header("accept-language", lang)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let html = resp.text().await.unwrap();
            assert_language(&path, &html, en);
        }
    }
    // Phones spaced where people read them.
    let html = coordinator
        .get(format!("{}/board/orders/{waiting}", w.app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(">139 0000 0001<") && html.contains(">139 0000 0002<"));
    let html = requester
        .get(format!("{}/orders/{live}", w.app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(">139 0000 0001<"), "{html}");
}
