-- Dispatch: per-unit settings, offers with their explanations, late
-- responses, escalation level, and pairings (households linked to their
-- volunteers, offered first).

create table dispatch_setting (
    org_unit_id bigint primary key references org_unit (id),
    mode text not null check (mode in ('auto', 'sequential', 'broadcast', 'batch', 'manual')),
    -- offers sent at once in broadcast mode
    broadcast_k bigint not null default 5 check (broadcast_k between 1 and 50),
    -- homefront_dispatch::CostWeights as JSON; missing keys take the defaults
    weights text not null default '{}',
    updated_at bigint not null
);

create table offer (
    id integer primary key,
    order_id bigint not null references service_order (id),
    volunteer_user_id bigint not null references app_user (id),
    state text not null check (state in ('offered', 'accepted', 'declined', 'expired', 'withdrawn')),
    -- how the offer came about: sequential, broadcast, batch, manual, pairing
    via text not null,
    round bigint not null,
    -- candidate rank (1 = best) and the cost terms, for explanations
    candidate_rank bigint not null,
    distance_km double precision,
    cost double precision not null,
    explanation text not null,
    offered_at bigint not null,
    expires_at bigint not null,
    responded_at bigint,
    -- null: the dispatcher; else the coordinator who made a manual offer
    offered_by bigint references app_user (id)
);
-- Exactly one accepted offer per order, whatever the concurrency.
create unique index offer_one_accepted on offer (order_id) where state = 'accepted';
-- At most one open offer per order and volunteer.
create unique index offer_one_open on offer (order_id, volunteer_user_id) where state = 'offered';
create index offer_volunteer_state on offer (volunteer_user_id, state);
create index offer_state_expiry on offer (state, expires_at);

-- Responses that came too late or twice, recorded against the original offer.
create table offer_response (
    id integer primary key,
    offer_id bigint not null references offer (id),
    volunteer_user_id bigint not null references app_user (id),
    response text not null check (response in ('accept', 'decline')),
    outcome text not null,
    at bigint not null
);
create index offer_response_offer on offer_response (offer_id);

-- 0: with the dispatcher; 1: county queue; 2: city; 3: province.
alter table service_order add column escalation_level bigint not null default 0;
alter table service_order add column escalated_at bigint;
create index service_order_state_created on service_order (state, created_at);

create table pairing (
    id integer primary key,
    household_id bigint not null references household (id),
    volunteer_user_id bigint not null references app_user (id),
    role text not null check (role in ('primary', 'backup')),
    started_at bigint not null,
    ended_at bigint,
    end_reason text,
    created_by bigint references app_user (id)
);
create unique index pairing_live on pairing (household_id, volunteer_user_id) where ended_at is null;
create index pairing_volunteer on pairing (volunteer_user_id) where ended_at is null;
