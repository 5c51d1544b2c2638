//! Planning: each new outbox event fanned out into its deliveries.

use homefront_domain::notify::{BotKind, Channel, EventKind};

use super::inbox::preferences_in;
use super::{inboxed, pushed};
use crate::decode::Text;
use crate::{Result, Store, Tx};

/// Kinds group chat bots (WeCom, DingTalk) hear: a county's group hears
/// about its new and escalated orders.
const GROUP_KINDS: [EventKind; 2] = [EventKind::OrderSubmitted, EventKind::OrderEscalated];

async fn coordinators_above(tx: &mut Tx, path: &str) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "select distinct g.user_id from role_grant g join org_unit u on u.id = g.org_unit_id
         join app_user a on a.id = g.user_id
         where g.role = 'coordinator' and a.disabled = 0 and $1 like u.path || '%'
         order by g.user_id",
    )
    .bind(path)
    .fetch_all(&mut **tx)
    .await?)
}

/// Who a delivery goes to.
#[derive(Clone, Copy)]
enum Target {
    User(i64),
    Bot(i64),
    /// A user's push subscription.
    Push(i64, i64),
}

async fn insert_delivery(
    tx: &mut Tx,
    event_id: i64,
    channel: Channel,
    target: Target,
    now_ms: i64,
) -> Result<()> {
    // Stable and unique per event, channel and target: the receiver's
    // deduplication key, the same on every retry and after a restart.
    let (user_id, bot_id, sub_id, tag) = match target {
        Target::User(u) => (Some(u), None, None, format!("u{u}")),
        Target::Bot(b) => (None, Some(b), None, format!("b{b}")),
        Target::Push(u, s) => (Some(u), None, Some(s), format!("s{s}")),
    };
    let key = format!("hf-{event_id}-{channel}-{tag}");
    sqlx::query(
        "insert into outbox_delivery (event_id, channel, user_id, bot_id, push_subscription_id,
            delivery_key, state, attempts, next_attempt_at, created_at)
         values ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) on conflict do nothing",
    )
    .bind(event_id)
    .bind(channel.as_str())
    .bind(user_id)
    .bind(bot_id)
    .bind(sub_id)
    .bind(key)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    #[sqlx(try_from = "Text")]
    kind: EventKind,
    order_id: Option<i64>,
    user_id: Option<i64>,
    org_unit_id: Option<i64>,
    bot_id: Option<i64>,
    data: String,
}

impl Store {
    /// Fans out up to `limit` unplanned events into deliveries (see the
    /// module docs). Returns how many events this call planned.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn plan_outbox(&self, now_ms: i64, limit: i64) -> Result<usize> {
        let events: Vec<EventRow> = sqlx::query_as(
            "select id, kind, order_id, user_id, org_unit_id, bot_id, data from outbox_event
             where planned_at is null order by id limit $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut planned = 0;
        for e in events {
            let mut tx = self.begin_write().await?;
            // Compare-and-set: one instance plans each event.
            let won = sqlx::query(
                "update outbox_event set planned_at = $1 where id = $2 and planned_at is null",
            )
            .bind(now_ms)
            .bind(e.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !won {
                tx.rollback().await?;
                continue;
            }
            plan_event(&mut tx, &e, now_ms).await?;
            tx.commit().await?;
            planned += 1;
        }
        Ok(planned)
    }
}

/// Writes the deliveries of one event inside `tx`.
async fn plan_event(tx: &mut Tx, e: &EventRow, now_ms: i64) -> Result<()> {
    let order: Option<(String, i64, Option<i64>)> = match e.order_id {
        Some(id) => {
            sqlx::query_as(
                "select d.path, h.requester_user_id, o.assignee_user_id from service_order o
                 join org_unit d on d.id = o.division_id join household h on h.id = o.household_id
                 where o.id = $1",
            )
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
        }
        None => None,
    };
    let unit_path: Option<String> = match (&order, e.org_unit_id) {
        (Some((path, _, _)), _) => Some(path.clone()),
        (None, Some(u)) => {
            sqlx::query_scalar("select path from org_unit where id = $1")
                .bind(u)
                .fetch_optional(&mut **tx)
                .await?
        }
        (None, None) => None,
    };
    let k = e.kind;
    let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
    let mut users: Vec<i64> = match k {
        EventKind::OfferMade
        | EventKind::OfferTaken
        | EventKind::OfferWithdrawn
        | EventKind::CredentialExpiring => e.user_id.into_iter().collect(),
        EventKind::OrderEscalated | EventKind::DeliveryFailed => match &unit_path {
            Some(p) => coordinators_above(tx, p).await?,
            None => Vec::new(),
        },
        EventKind::BotTest => Vec::new(),
        _ => match &order {
            Some((_, requester, assignee)) => {
                let mut v = vec![*requester];
                v.extend(assignee.filter(|a| a != requester));
                // The volunteer a release or reassignment took it from.
                v.extend(
                    data.get("released_user_id")
                        .and_then(serde_json::Value::as_i64)
                        .filter(|r| !v.contains(r)),
                );
                v
            }
            None => Vec::new(),
        },
    };
    users.dedup();
    let push = pushed(k, &data);
    for user in users {
        let prefs = preferences_in(tx, user).await?;
        if k == EventKind::OfferMade && prefs.mute_offers_off_duty {
            let on_duty: Option<i64> =
                sqlx::query_scalar("select on_duty from volunteer where user_id = $1")
                    .bind(user)
                    .fetch_optional(&mut **tx)
                    .await?;
            if on_duty == Some(0) {
                continue;
            }
        }
        let wanted_in_inbox = match &order {
            Some((_, requester, assignee)) if k.as_str().starts_with("order_") => {
                inboxed(k, &data, user, *requester, *assignee)
            }
            _ => true,
        };
        if prefs.inbox && wanted_in_inbox {
            insert_delivery(tx, e.id, Channel::Inbox, Target::User(user), now_ms).await?;
        }
        if prefs.webhook_url.is_some() && k != EventKind::DeliveryFailed {
            insert_delivery(tx, e.id, Channel::Webhook, Target::User(user), now_ms).await?;
        }
        // The volunteer who accepted needs no alert that someone accepted.
        let own_accept = k == EventKind::OrderAssigned
            && order
                .as_ref()
                .is_some_and(|(_, _, assignee)| *assignee == Some(user));
        if push && !own_accept {
            // Each browser of the user that is signed in and subscribed.
            let subs: Vec<i64> = sqlx::query_scalar(
                "select s.id from push_subscription s join user_session us on us.id = s.session_id
                 where s.user_id = $1 and s.ended_at is null and us.expires_at > $2 order by s.id",
            )
            .bind(user)
            .bind(now_ms)
            .fetch_all(&mut **tx)
            .await?;
            for sub in subs {
                insert_delivery(tx, e.id, Channel::Push, Target::Push(user, sub), now_ms).await?;
            }
        }
    }
    let bots: Vec<(i64, Text)> = if k == EventKind::BotTest {
        sqlx::query_as("select id, kind from group_bot where id = $1 and deleted_at is null")
            .bind(e.bot_id)
            .fetch_all(&mut **tx)
            .await?
    } else if let (Some(path), true) = (&unit_path, e.order_id.is_some()) {
        // Bots of the order's division and of every unit above it.
        sqlx::query_as(
            "select b.id, b.kind from group_bot b join org_unit u on u.id = b.org_unit_id
             where b.deleted_at is null and $1 like u.path || '%' order by b.id",
        )
        .bind(path)
        .fetch_all(&mut **tx)
        .await?
    } else {
        Vec::new()
    };
    let order_kind = k.as_str().starts_with("order_");
    for (bot, bot_kind) in bots {
        let bot_kind = BotKind::try_from(bot_kind)?;
        let wanted = k == EventKind::BotTest
            || match bot_kind {
                BotKind::Webhook => order_kind,
                BotKind::Wecom | BotKind::Dingtalk => GROUP_KINDS.contains(&k),
            };
        if wanted {
            insert_delivery(tx, e.id, bot_kind.channel(), Target::Bot(bot), now_ms).await?;
        }
    }
    Ok(())
}
