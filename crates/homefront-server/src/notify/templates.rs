//! Message templates in zh-CN and English, chosen by the recipient's
//! language (`app_user.locale`, or the bot's `locale`).
//!
//! Messages are built only from an event's non-identifying facts (item,
//! district, time window, lane, state): never a street address, phone
//! number, coordinates, notes or names. Free text typed by people
//! (cancellation reasons, notes) is left out for the same reason.

use chrono::TimeZone;
use homefront_domain::catalogue::Lane;
use homefront_domain::clock::DEFAULT_TIME_ZONE;
use homefront_domain::locale::Locale;
use homefront_domain::notify::EventKind;
use homefront_domain::order_state::OrderState;
use serde_json::Value;

/// A rendered message: a short title and a Markdown body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// One line, no Markdown (DingTalk's `title`, the inbox title).
    pub title: String,
    /// Markdown body (WeCom `content`, DingTalk `text`, inbox body).
    pub body: String,
}

/// The two languages of the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese (default).
    Zh,
    /// English.
    En,
}

impl From<Locale> for Lang {
    fn from(locale: Locale) -> Lang {
        match locale {
            Locale::ZhCn => Lang::Zh,
            Locale::En => Lang::En,
        }
    }
}

impl Lang {
    /// `en` (any `en-*`) is English; anything else Chinese.
    pub fn from_locale(locale: &str) -> Lang {
        if locale.starts_with("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

fn text<'a>(data: &'a Value, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An order state named in an event's data, in words (as given when it
/// names no state).
fn state_label(lang: Lang, state: &str) -> String {
    let Ok(state) = state.parse::<OrderState>() else {
        return state.to_string();
    };
    let (zh, en) = match state {
        OrderState::Submitted => ("已提交", "submitted"),
        OrderState::Dispatching => ("派单中", "being dispatched"),
        OrderState::Assigned => ("已接单", "assigned"),
        OrderState::InService => ("服务中", "in service"),
        OrderState::Completed => ("已完成", "completed"),
        OrderState::Confirmed => ("已确认", "confirmed"),
        OrderState::Cancelled => ("已取消", "cancelled"),
        OrderState::Unfulfilled => ("未能安排", "unfulfilled"),
    };
    lang.pick(zh, en).to_string()
}

/// A lane named in an event's data, in words (standard when it names none).
fn lane_label(lang: Lang, lane: &str) -> String {
    let (zh, en) = match lane.parse::<Lane>() {
        Ok(Lane::Priority) => ("优先通道", "priority lane"),
        Ok(Lane::Urgent) => ("紧急", "urgent"),
        Ok(Lane::Standard) | Err(_) => ("普通", "standard"),
    };
    lang.pick(zh, en).to_string()
}

/// `02-12 18:00–22:00` in the division's time zone.
fn window(data: &Value) -> String {
    // Events carry their division's zone; an event written without one
    // shows the deployment's.
    let tz: chrono_tz::Tz = text(data, "time_zone").parse().unwrap_or(DEFAULT_TIME_ZONE);
    let at = |key: &str| {
        data.get(key)
            .and_then(Value::as_i64)
            .and_then(|ms| tz.timestamp_millis_opt(ms).single())
    };
    match (at("window_start"), at("window_end")) {
        (Some(s), Some(e)) if s.date_naive() == e.date_naive() => {
            format!("{}–{}", s.format("%m-%d %H:%M"), e.format("%H:%M"))
        }
        (Some(s), Some(e)) => format!("{} – {}", s.format("%m-%d %H:%M"), e.format("%m-%d %H:%M")),
        _ => String::new(),
    }
}

/// A credential kind (`insurance`, ...) in words, not as its code.
fn credential_label(lang: Lang, kind: &str) -> String {
    let (zh, en) = match kind {
        "driving_licence" => ("驾驶证", "driving licence"),
        "teacher" => ("教师资格证", "teacher's certificate"),
        "counsellor" => ("心理咨询师证书", "counsellor's certificate"),
        "medical_licence" => ("医护执业证书", "medical licence"),
        "first_aid" => ("急救证书", "first-aid certificate"),
        "language" => ("语言能力证明", "language certificate"),
        "training_certificate" => ("防护培训证书", "protective-equipment training certificate"),
        "service_agreement" => ("志愿服务协议", "service agreement"),
        "insurance" => ("意外保险", "accident insurance"),
        other => (other, other),
    };
    lang.pick(zh, en).to_string()
}

fn item(lang: Lang, data: &Value) -> String {
    lang.pick(text(data, "item_name_zh"), text(data, "item_name_en"))
        .to_string()
}

/// Bullet lines describing the order (no address, no phone), with the
/// texts from the event's data passed through `esc`.
fn order_lines(lang: Lang, data: &Value, esc: Escape) -> String {
    let mut lines = Vec::new();
    if let Some(id) = data.get("order_id").and_then(Value::as_i64) {
        lines.push(format!("- {}#{id}", lang.pick("订单号：", "Order: ")));
    }
    lines.push(format!(
        "- {}{}",
        lang.pick("服务项目：", "Service: "),
        esc(&item(lang, data))
    ));
    lines.push(format!(
        "- {}{}",
        lang.pick("区域：", "District: "),
        esc(text(data, "district"))
    ));
    let w = window(data);
    if !w.is_empty() {
        lines.push(format!("- {}{w}", lang.pick("时间：", "Time: ")));
    }
    lines.push(format!(
        "- {}{}",
        lang.pick("通道：", "Lane: "),
        lane_label(lang, text(data, "lane"))
    ));
    lines.join("\n")
}

fn queue(lang: Lang, level: i64) -> &'static str {
    match level {
        1 => lang.pick("区县", "county"),
        2 => lang.pick("市级", "city"),
        _ => lang.pick("省级", "province"),
    }
}

/// How a text taken from an event's data (a name someone typed: an item,
/// a division, a channel) is put into a message.
type Escape = fn(&str) -> String;

/// Escapes `text` for the Markdown of a group bot so that a name cannot
/// add links, emphasis, headings, HTML (WeCom's `<font>`) or lines: every
/// ASCII character with a meaning in CommonMark's inline syntax, and `#`,
/// gets a backslash (CommonMark 0.31 §2.4: any ASCII punctuation may be
/// escaped so), and line breaks become spaces, so a name cannot start a
/// heading, list or quote line of its own.
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '<' | '>' | '~' | '|'
            | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Renders event `kind` with its `data` in `lang`: a plain title, and a
/// Markdown body for group bots and webhooks in which every text from the
/// event's data is escaped ([`markdown_escape`]).
pub fn render(kind: EventKind, data: &Value, lang: Lang) -> Message {
    Message {
        title: compose(kind, data, lang, str::to_string).title,
        body: compose(kind, data, lang, markdown_escape).body,
    }
}

/// Renders event `kind` with its `data` in `lang` with texts as typed, for
/// readers that show the body as plain lines (the inbox, push alerts).
pub fn render_plain(kind: EventKind, data: &Value, lang: Lang) -> Message {
    compose(kind, data, lang, str::to_string)
}

fn compose(kind: EventKind, data: &Value, lang: Lang, esc: Escape) -> Message {
    let it = esc(&item(lang, data));
    let district = esc(text(data, "district"));
    let (title, lead) = match kind {
        EventKind::OrderSubmitted => (
            match lang {
                Lang::Zh => format!("新订单：{it}（{district}）"),
                Lang::En => format!("New order: {it} ({district})"),
            },
            // Read by the county's group and by the requester alike.
            lang.pick(
                "一条新的服务订单已提交，正在为它寻找志愿者。",
                "A new service order was placed; a volunteer is being found.",
            )
            .to_string(),
        ),
        EventKind::OrderEscalated => {
            let level = data.get("level").and_then(Value::as_i64).unwrap_or(1);
            (
                format!("{}{it}", lang.pick("订单升级：", "Order escalated: ")),
                match lang {
                    Lang::Zh => format!(
                        "该订单未在时限内被接单，已转至{}协调员队列，请协助安排。",
                        queue(lang, level)
                    ),
                    Lang::En => format!(
                        "Not accepted in time: moved to the {} coordinators' queue. Please help place it.",
                        queue(lang, level)
                    ),
                },
            )
        }
        EventKind::OrderAssigned => (
            lang.pick("订单已有志愿者接单", "A volunteer accepted the order")
                .to_string(),
            lang.pick(
                "志愿者已接单，将按约定时间提供服务。",
                "A volunteer accepted and will serve in the agreed window.",
            )
            .to_string(),
        ),
        EventKind::OrderAutoConfirmed => (
            lang.pick("订单已自动确认", "Order confirmed automatically")
                .to_string(),
            lang.pick(
                "服务完成后未在期限内确认，系统已自动确认。",
                "The order was not confirmed in time after completion, so the system confirmed it.",
            )
            .to_string(),
        ),
        EventKind::OrderState => {
            let to = esc(&state_label(lang, text(data, "to")));
            (
                format!("{}{to}", lang.pick("订单状态：", "Order status: ")),
                match lang {
                    Lang::Zh => format!("订单状态已变为「{to}」。"),
                    Lang::En => format!("The order is now {to}."),
                },
            )
        }
        EventKind::OfferMade => {
            let km = data
                .get("distance_km")
                .and_then(Value::as_f64)
                .map(|d| match lang {
                    Lang::Zh => format!("约 {d:.1} 公里。"),
                    Lang::En => format!("About {d:.1} km away."),
                })
                .unwrap_or_default();
            (
                format!("{}{it}", lang.pick("新的服务邀请：", "New offer: ")),
                format!(
                    "{}{km}",
                    lang.pick(
                        "有一条订单邀请您接单，请尽快在应用内回复。",
                        "An order is offered to you; please answer in the app soon. "
                    )
                ),
            )
        }
        EventKind::OfferTaken => (
            lang.pick("订单已被其他志愿者接走", "Another volunteer took the order")
                .to_string(),
            lang.pick(
                "感谢您的响应，本单已由其他志愿者承接。",
                "Thank you; another volunteer accepted it first.",
            )
            .to_string(),
        ),
        EventKind::OfferWithdrawn => (
            lang.pick("服务邀请已撤回", "Offer withdrawn").to_string(),
            lang.pick("该订单不再需要您接单。", "This order no longer needs you.")
                .to_string(),
        ),
        EventKind::CredentialExpiring => {
            let until = data
                .get("valid_to")
                .and_then(Value::as_i64)
                .and_then(|ms| DEFAULT_TIME_ZONE.timestamp_millis_opt(ms).single())
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let what = esc(&credential_label(lang, text(data, "credential_kind")));
            (
                lang.pick("证件即将到期", "A credential expires soon")
                    .to_string(),
                match lang {
                    Lang::Zh => format!("您的证件（{what}）将于 {until} 到期，请及时更新。"),
                    Lang::En => {
                        format!("Your credential ({what}) expires on {until}; please renew it.")
                    }
                },
            )
        }
        EventKind::DeliveryFailed => (
            lang.pick("通知投递失败", "A notification could not be delivered")
                .to_string(),
            match lang {
                Lang::Zh => format!(
                    "渠道 {} 的通知（{}）多次重试后仍未送达，请检查配置。",
                    esc(text(data, "channel")),
                    esc(text(data, "failed_kind"))
                ),
                Lang::En => format!(
                    "A {} notice ({}) failed after every retry; check the channel's settings.",
                    esc(text(data, "channel")),
                    esc(text(data, "failed_kind"))
                ),
            },
        ),
        EventKind::BotTest => (
            lang.pick("Homefront 测试消息", "Homefront test message")
                .to_string(),
            lang.pick(
                "这是一条测试消息：本群将收到辖区内的新订单和升级订单通知。",
                "This is a test: this group will hear about new and escalated orders in its area.",
            )
            .to_string(),
        ),
    };
    let mut body = format!("### {title}\n\n{lead}");
    if data.get("order_id").is_some() && !district.is_empty() {
        body.push_str("\n\n");
        body.push_str(&order_lines(lang, data, esc));
    }
    Message { title, body }
}

/// A push alert's text: a title and one or two plain lines (no Markdown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushText {
    /// The alert's title.
    pub title: String,
    /// What to do, then the district, time window and (for offers) the
    /// approximate distance.
    pub body: String,
}

/// Renders event `kind` for a phone's lock screen, from the same facts as
/// [`render`]: never a street, phone number or name.
pub fn render_push(kind: EventKind, data: &Value, lang: Lang) -> PushText {
    let m = render_plain(kind, data, lang);
    // The lead sentence: the paragraph after the "### title" line.
    let lead = m
        .body
        .split("\n\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut facts = Vec::new();
    let district = text(data, "district");
    if !district.is_empty() {
        facts.push(district.to_string());
    }
    let w = window(data);
    if !w.is_empty() {
        facts.push(w);
    }
    let mut body = lead;
    if !facts.is_empty() {
        body.push('\n');
        body.push_str(&facts.join(" · "));
    }
    PushText {
        title: m.title,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Value {
        serde_json::json!({"order_id": 7, "item_name_zh": "买菜", "item_name_en": "Groceries",
            "district": "玄武区", "time_zone": "Asia/Shanghai", "lane": "priority",
            "window_start": 1_581_501_600_000_i64, "window_end": 1_581_516_000_000_i64})
    }

    #[test]
    fn renders_both_languages() {
        let zh = render(EventKind::OrderSubmitted, &order(), Lang::Zh);
        assert_eq!(zh.title, "新订单：买菜（玄武区）");
        assert!(zh.body.contains("- 时间：02-12 18:00–22:00"), "{}", zh.body);
        assert!(zh.body.contains("优先通道"));
        let en = render(EventKind::OrderSubmitted, &order(), Lang::En);
        assert_eq!(en.title, "New order: Groceries (玄武区)");
        assert!(en.body.contains("- Time: 02-12 18:00–22:00"), "{}", en.body);
    }

    #[test]
    fn typed_names_cannot_add_markdown_to_a_bot_message() {
        assert_eq!(
            markdown_escape("[x](http://evil) **b** _i_ `c` <b>&amp; ~s~ |t| !\\"),
            r"\[x\]\(http://evil\) \*\*b\*\* \_i\_ \`c\` \<b\>\&amp; \~s\~ \|t\| \!\\"
        );
        assert_eq!(
            markdown_escape("a\n# b\r\n- c\u{2028}> d"),
            r"a \# b  - c \> d"
        );
        assert_eq!(markdown_escape("玄武区 1.5 km - ok"), "玄武区 1.5 km - ok");
        let mut d = order();
        d["item_name_zh"] = "[买菜](http://evil)\n# 加急".into();
        let m = render(EventKind::OrderSubmitted, &d, Lang::Zh);
        assert_eq!(m.title, "新订单：[买菜](http://evil)\n# 加急（玄武区）");
        assert!(
            m.body
                .starts_with(r"### 新订单：\[买菜\]\(http://evil\) \# 加急（玄武区）"),
            "{}",
            m.body
        );
        assert!(
            m.body
                .contains(r"- 服务项目：\[买菜\]\(http://evil\) \# 加急"),
            "{}",
            m.body
        );
        let plain = render_plain(EventKind::OrderSubmitted, &d, Lang::Zh);
        assert!(
            plain
                .body
                .contains("- 服务项目：[买菜](http://evil)\n# 加急")
        );
    }

    #[test]
    fn escalation_names_the_queue() {
        let mut d = order();
        d["level"] = 2.into();
        assert!(
            render(EventKind::OrderEscalated, &d, Lang::Zh)
                .body
                .contains("市级协调员队列")
        );
        assert!(
            render(EventKind::OrderEscalated, &d, Lang::En)
                .body
                .contains("city coordinators")
        );
    }

    #[test]
    fn credential_notices_name_the_credential_in_words() {
        let d =
            serde_json::json!({"credential_kind": "insurance", "valid_to": 1_581_500_531_000_i64});
        let zh = render(EventKind::CredentialExpiring, &d, Lang::Zh);
        assert_eq!(
            zh.body,
            "### 证件即将到期\n\n您的证件（意外保险）将于 2020-02-12 到期，请及时更新。"
        );
        let en = render(EventKind::CredentialExpiring, &d, Lang::En);
        assert!(
            en.body
                .contains("Your credential (accident insurance) expires on 2020-02-12")
        );
    }

    #[test]
    fn push_texts_are_plain_and_carry_the_offer_facts() {
        let mut d = order();
        d["distance_km"] = 1.2.into();
        let zh = render_push(EventKind::OfferMade, &d, Lang::Zh);
        assert_eq!(zh.title, "新的服务邀请：买菜");
        assert_eq!(
            zh.body,
            "有一条订单邀请您接单，请尽快在应用内回复。约 1.2 公里。\n玄武区 · 02-12 18:00–22:00"
        );
        let en = render_push(EventKind::OfferMade, &d, Lang::En);
        assert!(
            en.body
                .ends_with("About 1.2 km away.\n玄武区 · 02-12 18:00–22:00"),
            "{}",
            en.body
        );
        assert!(!en.body.contains('#') && !en.body.contains("- "));
    }

    #[test]
    fn locale_picks_language() {
        assert_eq!(Lang::from_locale("en"), Lang::En);
        assert_eq!(Lang::from_locale("zh-CN"), Lang::Zh);
    }
}
