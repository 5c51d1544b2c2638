-- Web Push (RFC 8030) as a notification channel, and offline check-in/out.
--
-- A browser that opts in gives a push subscription: the push service's
-- endpoint URL and the keys its messages are encrypted to (RFC 8291:
-- the browser's P-256 public key `p256dh` and 16-byte `auth` secret). It
-- belongs to the session that made it: when that session ends (sign-out,
-- sign-out everywhere, a password change, expiry) the subscription gets no
-- more messages, so a phone that was signed out hears nothing.

create table push_subscription (
    id integer primary key,
    user_id bigint not null references app_user (id),
    -- null once the session ended (sign-out): no more messages
    session_id bigint references user_session (id) on delete set null,
    -- the push service's URL for this browser (a capability: treat as secret)
    endpoint text not null unique,
    -- base64url (no padding) of the browser's uncompressed P-256 point, 65 bytes
    p256dh text not null,
    -- base64url (no padding) of the browser's 16-byte authentication secret
    auth text not null,
    -- what the browser calls itself, shortened (for "alerts are on for ...")
    label text,
    created_at bigint not null,
    updated_at bigint not null,
    -- unsubscribed, or the push service answered 404/410 (gone)
    ended_at bigint,
    last_delivered_at bigint,
    last_error text
);
create index push_subscription_user on push_subscription (user_id);

-- The server's VAPID key pair (RFC 8292), made on first start unless one is
-- configured (`vapid_private_key`); one row, shared by every instance.
create table push_vapid_key (
    id bigint primary key check (id = 1),
    -- base64url of the 32-byte P-256 private scalar
    private_key text not null,
    -- base64url of the uncompressed public point (65 bytes): the browser's
    -- applicationServerKey
    public_key text not null,
    created_at bigint not null
);

-- A delivery may now go to one push subscription (channel 'push'). SQLite
-- cannot change a CHECK in place: the table is rebuilt, its rows copied
-- with their ids. Foreign keys from outbox_attempt and notification are
-- deferred to the commit, by which time every parent row is back.
pragma defer_foreign_keys = on;
create table outbox_delivery_copy as select * from outbox_delivery;
drop table outbox_delivery;
create table outbox_delivery (
    id integer primary key,
    event_id bigint not null references outbox_event (id),
    channel text not null check (channel in ('inbox', 'wecom', 'dingtalk', 'webhook', 'push')),
    -- inbox and push: the user; wecom/dingtalk/webhook: the group bot
    -- (bot_id set) or a user's personal webhook (user_id set)
    user_id bigint references app_user (id),
    bot_id bigint references group_bot (id),
    -- push: the subscription (one browser of the user)
    push_subscription_id bigint references push_subscription (id),
    -- the idempotent delivery id sent to the receiver (webhook-id)
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
insert into outbox_delivery (id, event_id, channel, user_id, bot_id, delivery_key, state, attempts,
    next_attempt_at, claimed_until, claim_token, last_error, delivered_at, created_at)
select id, event_id, channel, user_id, bot_id, delivery_key, state, attempts,
    next_attempt_at, claimed_until, claim_token, last_error, delivered_at, created_at
from outbox_delivery_copy;
drop table outbox_delivery_copy;
create unique index outbox_delivery_once on outbox_delivery
    (event_id, channel, coalesce(user_id, 0), coalesce(bot_id, 0), coalesce(push_subscription_id, 0));
create index outbox_delivery_due on outbox_delivery (state, next_attempt_at);

-- A check-in or check-out done without network is sent later with the
-- time the phone recorded: the event's `at` is that time, and this is when
-- the server received it (null when it acted at once).
alter table order_event add column received_at bigint;
