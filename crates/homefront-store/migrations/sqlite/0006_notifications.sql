-- Notifications: the transactional outbox, its per-channel deliveries and
-- every attempt, the in-app inbox, preferences, and group bots.
--
-- An event row is written in the same transaction as what it announces.
-- The delivery worker later fans it out ("plans" it) into one delivery per
-- channel and target, each with its own idempotent delivery id, and sends
-- them with retries; planning and each delivery's outcome are transactions
-- of their own, so a crash at any point loses nothing and re-sends nothing
-- already marked delivered.

create table group_bot (
    id integer primary key,
    org_unit_id bigint not null references org_unit (id),
    kind text not null check (kind in ('wecom', 'dingtalk', 'webhook')),
    name text not null,
    url text not null,
    -- DingTalk signing secret (SEC...), or a webhook's whsec_ secret
    secret text,
    locale text not null default 'zh-CN' check (locale in ('zh-CN', 'en')),
    created_by bigint references app_user (id),
    created_at bigint not null,
    deleted_at bigint
);
create index group_bot_unit on group_bot (org_unit_id);

create table outbox_event (
    id integer primary key,
    kind text not null check (kind in ('order_submitted', 'order_state', 'order_assigned',
        'order_auto_confirmed', 'order_escalated', 'offer_made', 'offer_taken',
        'offer_withdrawn', 'credential_expiring', 'delivery_failed', 'bot_test')),
    order_id bigint references service_order (id),
    -- the one person it concerns (offers, credentials); null: derived from the order
    user_id bigint references app_user (id),
    -- the org unit it concerns (delivery failures, bot tests)
    org_unit_id bigint references org_unit (id),
    -- a bot test's bot
    bot_id bigint references group_bot (id),
    -- JSON of template parameters; never a street address or phone number
    data text not null default '{}',
    -- events discovered by a periodic pass (credential expiry) are written once
    dedupe_key text unique,
    created_at bigint not null,
    -- set when the deliveries were written
    planned_at bigint
);
create index outbox_event_unplanned on outbox_event (planned_at, id);

create table outbox_delivery (
    id integer primary key,
    event_id bigint not null references outbox_event (id),
    channel text not null check (channel in ('inbox', 'wecom', 'dingtalk', 'webhook')),
    -- inbox: the user; wecom/dingtalk/webhook: the group bot (bot_id set)
    -- or a user's personal webhook (user_id set)
    user_id bigint references app_user (id),
    bot_id bigint references group_bot (id),
    -- the idempotent delivery id sent to the receiver (webhook-id), a UUIDv7
    delivery_key text not null unique,
    state text not null check (state in ('pending', 'delivered', 'dead')),
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    -- compare-and-set lease of the worker sending it
    claimed_until bigint,
    claim_token text,
    last_error text,
    delivered_at bigint,
    created_at bigint not null
);
create unique index outbox_delivery_once on outbox_delivery (event_id, channel, coalesce(user_id, 0), coalesce(bot_id, 0));
create index outbox_delivery_due on outbox_delivery (state, next_attempt_at);

create table outbox_attempt (
    id integer primary key,
    delivery_id bigint not null references outbox_delivery (id),
    -- the bot sent to, for the per-bot rate limit
    bot_id bigint references group_bot (id),
    at bigint not null,
    ok bigint not null check (ok in (0, 1)),
    http_status bigint,
    error text
);
create index outbox_attempt_delivery on outbox_attempt (delivery_id);
create index outbox_attempt_bot on outbox_attempt (bot_id, at);

-- The in-app inbox: one row per delivered inbox delivery.
create table notification (
    id integer primary key,
    user_id bigint not null references app_user (id),
    delivery_id bigint not null unique references outbox_delivery (id),
    kind text not null,
    order_id bigint references service_order (id),
    title text not null,
    body text not null,
    created_at bigint not null,
    read_at bigint
);
create index notification_user on notification (user_id, read_at, id);

create table notification_preference (
    user_id bigint primary key references app_user (id),
    inbox bigint not null default 1 check (inbox in (0, 1)),
    -- a volunteer off duty hears of no new offers
    mute_offers_off_duty bigint not null default 1 check (mute_offers_off_duty in (0, 1)),
    -- a personal Standard Webhooks endpoint and its whsec_ secret
    webhook_url text,
    webhook_secret text,
    updated_at bigint not null
);
