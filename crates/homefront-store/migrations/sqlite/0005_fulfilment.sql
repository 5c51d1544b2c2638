-- Fulfilment: check-in/out on the order, the service-hours ledger,
-- confirmation feedback, the coordinator's follow-up queue, and follow-up
-- orders (counselling).

alter table service_order add column checked_in_at bigint;
alter table service_order add column checked_out_at bigint;
-- sensitive like the address: purged with it
alter table service_order add column checkin_longitude double precision;
alter table service_order add column checkin_latitude double precision;
-- a follow-up order points at the order it follows up, and prefers its volunteer
alter table service_order add column follow_up_of bigint references service_order (id);
alter table service_order add column preferred_volunteer_user_id bigint references app_user (id);
-- 1 once an open check-in was flagged and capped
alter table service_order add column session_capped bigint not null default 0;

-- Append-only ledger: entries are never edited or deleted; an adjustment is
-- a new entry (minutes may be negative) pointing at the entry it adjusts.
create table hours_entry (
    id integer primary key,
    volunteer_user_id bigint not null references app_user (id),
    order_id bigint references service_order (id),
    item_id bigint references service_item (id),
    team_id bigint references org_unit (id),
    kind text not null check (kind in ('recorded', 'backfilled')),
    minutes bigint not null,
    started_at bigint,
    ended_at bigint,
    adjusts_entry_id bigint references hours_entry (id),
    capped bigint not null default 0 check (capped in (0, 1)),
    reason text,
    actor_user_id bigint references app_user (id),
    created_at bigint not null
);
create index hours_entry_volunteer on hours_entry (volunteer_user_id, started_at);
create index hours_entry_team on hours_entry (team_id, started_at);
-- one recorded entry per order (the check-out); adjustments point at it
create unique index hours_entry_recorded_order on hours_entry (order_id)
    where kind = 'recorded' and adjusts_entry_id is null;

create table order_feedback (
    order_id bigint primary key references service_order (id),
    rating bigint check (rating between 1 and 5),
    comment text,
    complaint bigint not null default 0 check (complaint in (0, 1)),
    at bigint not null
);

create table follow_up_item (
    id integer primary key,
    order_id bigint not null references service_order (id),
    kind text not null check (kind in ('low_rating', 'complaint', 'open_session')),
    status text not null default 'open' check (status in ('open', 'closed')),
    created_at bigint not null,
    closed_at bigint,
    closed_by bigint references app_user (id),
    note text
);
create unique index follow_up_item_once on follow_up_item (order_id, kind);
create index follow_up_item_status on follow_up_item (status, created_at);

-- When a paired volunteer is suspended or withdraws, the pairing ends and a
-- proposal names the nearest eligible replacement for a coordinator to accept.
create table pairing_proposal (
    id integer primary key,
    ended_pairing_id bigint not null references pairing (id),
    household_id bigint not null references household (id),
    role text not null check (role in ('primary', 'backup')),
    proposed_volunteer_user_id bigint references app_user (id),
    status text not null default 'proposed' check (status in ('proposed', 'accepted', 'dismissed')),
    created_at bigint not null,
    decided_at bigint,
    decided_by bigint references app_user (id)
);
create unique index pairing_proposal_once on pairing_proposal (ended_pairing_id);

-- a follow-up is created once per order
create unique index service_order_follow_up on service_order (follow_up_of) where follow_up_of is not null;
-- volunteers per frontline family (the Nantong model pairs two)
alter table dispatch_setting add column pairing_max bigint not null default 2;
