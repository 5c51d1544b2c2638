-- Orders: service catalogue, households, orders with their append-only event
-- log, idempotency keys and the access log of sensitive reads.

create table service_item (
    id integer primary key,
    code text not null,
    -- null: the deployment-wide catalogue; otherwise an item of one org subtree.
    org_unit_id bigint references org_unit (id),
    name_zh text not null,
    name_en text not null,
    mode text not null check (mode in ('onsite', 'remote')),
    -- comma-separated qualification codes a volunteer needs, e.g. 'driving_licence'
    qualifications text not null default '',
    default_duration_minutes bigint not null check (default_duration_minutes > 0),
    offer_timeout_seconds bigint not null check (offer_timeout_seconds > 0),
    lane text not null check (lane in ('priority', 'urgent', 'standard')),
    -- 1: staff deployed to the epidemic's centre get the priority lane
    priority_channel bigint not null default 0 check (priority_channel in (0, 1)),
    -- days after completion at which a follow-up order is scheduled; null: none
    follow_up_days bigint,
    retired_at bigint,
    created_at bigint not null
);
create unique index service_item_code on service_item (code, coalesce(org_unit_id, 0));

create table household (
    id integer primary key,
    requester_user_id bigint not null unique references app_user (id),
    employer_id bigint references org_unit (id),
    department text,
    -- 1: deployed to the epidemic's centre (set by a liaison when verifying)
    deployed_to_centre bigint not null default 0 check (deployed_to_centre in (0, 1)),
    verified_by bigint references app_user (id),
    verified_at bigint,
    created_at bigint not null
);

create table household_member (
    id integer primary key,
    household_id bigint not null references household (id),
    name text not null,
    relation text not null check (relation in ('self', 'parent', 'child', 'spouse', 'other')),
    age_years bigint,
    school_grade text,
    phone text,
    division_id bigint not null references org_unit (id),
    street text not null,
    longitude double precision,
    latitude double precision,
    guardian_consent bigint not null default 0 check (guardian_consent in (0, 1)),
    created_at bigint not null
);
create index household_member_household on household_member (household_id);

create table service_order (
    id integer primary key,
    item_id bigint not null references service_item (id),
    household_id bigint not null references household (id),
    member_id bigint not null references household_member (id),
    placed_by bigint not null references app_user (id),
    -- the county (or city) division where the service happens: scope of the order
    division_id bigint not null references org_unit (id),
    state text not null check (state in ('submitted', 'dispatching', 'assigned', 'in_service',
                                         'completed', 'confirmed', 'cancelled', 'unfulfilled')),
    lane text not null check (lane in ('priority', 'urgent', 'standard')),
    urgency text not null check (urgency in ('normal', 'urgent')),
    window_start bigint not null,
    window_end bigint not null,
    -- sensitive: purged a configured number of days after the order ends
    street text,
    contact_phone text,
    longitude double precision,
    latitude double precision,
    notes text,
    -- shown to volunteers before they accept: must not identify the household
    public_note text,
    assignee_user_id bigint references app_user (id),
    created_at bigint not null,
    updated_at bigint not null,
    ended_at bigint,
    purged_at bigint,
    check (window_end > window_start)
);
create index service_order_division_state on service_order (division_id, state);
create index service_order_household on service_order (household_id);
create index service_order_assignee on service_order (assignee_user_id, state);
create index service_order_ended on service_order (ended_at);

-- Append-only: rows are inserted with each transition and never updated.
create table order_event (
    id integer primary key,
    order_id bigint not null references service_order (id),
    at bigint not null,
    action text not null,
    from_state text,
    to_state text not null,
    -- null: the system (dispatcher, workers)
    actor_user_id bigint references app_user (id),
    reason text
);
create index order_event_order on order_event (order_id, id);

create table idempotency_key (
    user_id bigint not null references app_user (id),
    idem_key text not null,
    -- SHA-256 of the canonical request body
    request_hash text not null,
    response_status bigint not null,
    response_body text not null,
    created_at bigint not null,
    primary key (user_id, idem_key)
);

-- Who read which sensitive fields of which record, when and why; never values.
create table access_log (
    id integer primary key,
    actor_user_id bigint not null references app_user (id),
    record_kind text not null,
    record_id bigint not null,
    fields text not null,
    purpose text not null,
    at bigint not null
);
create index access_log_record on access_log (record_kind, record_id);

-- The catalogue of SPEC.md, from the 2020 programme.
insert into service_item (code, name_zh, name_en, mode, qualifications, default_duration_minutes, offer_timeout_seconds, lane, priority_channel, follow_up_days, created_at) values
('errands', '代购跑腿', 'Errands and purchasing', 'onsite', '', 60, 300, 'standard', 0, null, 0),
('groceries', '买菜送菜', 'Groceries', 'onsite', '', 60, 300, 'standard', 0, null, 0),
('courier', '快递跑腿', 'Courier runs', 'onsite', '', 45, 300, 'standard', 0, null, 0),
('meal_delivery', '送餐', 'Meal delivery', 'onsite', '', 45, 180, 'urgent', 0, null, 0),
('ride', '免费用车', 'Free ride', 'onsite', 'driving_licence', 60, 180, 'urgent', 0, null, 0),
('tutoring_video', '视频课业辅导', 'Child tutoring by video', 'remote', 'teacher', 60, 900, 'standard', 0, null, 0),
('companionship', '亲情陪伴照顾', 'Companionship and care for parents and children', 'onsite', 'first_aid', 120, 600, 'standard', 0, null, 0),
('counselling', '心理疏导(12355)', 'Psychological counselling (12355 hotline)', 'remote', 'counsellor', 50, 120, 'urgent', 1, 7, 0),
('home_medical', '上门义诊', 'Home medical consultation', 'onsite', 'medical_licence', 60, 600, 'urgent', 0, null, 0),
('repair_advice', '咨询维修', 'Repair advice', 'remote', '', 30, 600, 'standard', 0, null, 0),
('supplies_delivery', '医疗及生活物资配送', 'Delivery of medical and daily supplies', 'onsite', '', 60, 300, 'urgent', 0, null, 0),
('carrier_data', '免费通话及流量', 'Free call time and data', 'remote', '', 15, 3600, 'standard', 0, null, 0);
