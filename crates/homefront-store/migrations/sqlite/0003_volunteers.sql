-- Volunteers: profile, vetting log, credentials with validity, duty log,
-- weekly availability windows and leave. Depends only on org_unit,
-- app_user and role_grant (0001). Portable schema as in 0001.

-- One row per volunteer, keyed by the account (app_user) that holds a
-- volunteer grant bound to team_id; the grant and team_id move together.
create table volunteer (
    user_id integer primary key references app_user (id),
    team_id bigint not null references org_unit (id),
    -- Home division (province, city or county unit, found by adcode).
    home_division_id bigint not null references org_unit (id),
    -- Own coordinates; null = use the home division's point.
    home_longitude double precision,
    home_latitude double precision,
    service_radius_km double precision not null default 10
        check (service_radius_km > 0 and service_radius_km <= 200),
    -- Qualifications the applicant or the roster claims (JSON array of
    -- qualification codes). Eligibility uses credentials, never this.
    declared_qualifications text not null default '[]',
    vehicle_seats bigint check (vehicle_seats is null or (vehicle_seats between 1 and 60)),
    -- JSON array of language names as written, e.g. ["普通话", "English"].
    languages text not null default '[]',
    max_concurrent bigint not null default 1 check (max_concurrent between 1 and 10),
    gender text check (gender in ('female', 'male', 'unspecified')),
    emergency_contact_name text,
    -- E.164.
    emergency_contact_phone text,
    vetting_state text not null default 'applied' check (vetting_state in (
        'applied', 'reviewed', 'interviewed', 'trained', 'exam_passed', 'agreement_signed',
        'insured', 'active', 'rejected', 'suspended', 'withdrawn')),
    on_duty bigint not null default 0 check (on_duty in (0, 1)),
    -- Set while on duty (epoch ms of the switch-on), null while off.
    on_duty_since bigint,
    created_at bigint not null,
    updated_at bigint not null,
    check ((on_duty = 1) = (on_duty_since is not null))
);
create index volunteer_team on volunteer (team_id);
create index volunteer_vetting_state on volunteer (vetting_state);

-- Append-only: every vetting move, including the application itself
-- (from_state null, action 'apply').
create table vetting_event (
    id integer primary key,
    volunteer_id bigint not null references volunteer (user_id),
    from_state text check (from_state in (
        'applied', 'reviewed', 'interviewed', 'trained', 'exam_passed', 'agreement_signed',
        'insured', 'active', 'rejected', 'suspended', 'withdrawn')),
    to_state text not null check (to_state in (
        'applied', 'reviewed', 'interviewed', 'trained', 'exam_passed', 'agreement_signed',
        'insured', 'active', 'rejected', 'suspended', 'withdrawn')),
    action text not null check (action in ('apply', 'advance', 'reject', 'suspend', 'reinstate', 'withdraw')),
    -- null when the system acted (command-line import).
    actor_id bigint references app_user (id),
    at bigint not null,
    note text,
    document_ref text
);
create index vetting_event_volunteer on vetting_event (volunteer_id, id);

create table credential (
    id integer primary key,
    volunteer_id bigint not null references volunteer (user_id),
    kind text not null check (kind in ('driving_licence', 'teacher', 'counsellor', 'medical_licence',
        'first_aid', 'language', 'training_certificate', 'service_agreement', 'insurance')),
    -- Validity is the half-open interval [valid_from, valid_to), epoch ms;
    -- valid_to null = no expiry.
    valid_from bigint not null,
    valid_to bigint,
    insurer text,
    policy_number text,
    document_ref text,
    created_by bigint references app_user (id),
    created_at bigint not null,
    -- Revocation ends validity at revoked_at (rows are never deleted).
    revoked_at bigint,
    revoked_by bigint references app_user (id),
    revoke_reason text,
    check (valid_to is null or valid_to > valid_from)
);
create index credential_volunteer on credential (volunteer_id);
create index credential_valid_to on credential (valid_to);

-- Append-only: every switch of the duty toggle.
create table duty_event (
    id integer primary key,
    volunteer_id bigint not null references volunteer (user_id),
    on_duty bigint not null check (on_duty in (0, 1)),
    -- 'toggle' (the volunteer or a coordinator) or 'deactivated' (suspension, withdrawal, rejection).
    reason text not null check (reason in ('toggle', 'deactivated')),
    actor_id bigint references app_user (id),
    at bigint not null
);
create index duty_event_volunteer on duty_event (volunteer_id, at);

-- Weekly windows in the team's local time: ISO weekday (1 = Monday),
-- minutes after local midnight; end_minute <= start_minute crosses midnight.
create table availability_window (
    id integer primary key,
    volunteer_id bigint not null references volunteer (user_id),
    weekday bigint not null check (weekday between 1 and 7),
    start_minute bigint not null check (start_minute between 0 and 1439),
    end_minute bigint not null check (end_minute between 0 and 1439),
    created_at bigint not null
);
create index availability_window_volunteer on availability_window (volunteer_id);

-- Leave: unavailable on [starts_at, ends_at), epoch ms.
create table volunteer_leave (
    id integer primary key,
    volunteer_id bigint not null references volunteer (user_id),
    starts_at bigint not null,
    ends_at bigint not null,
    reason text,
    created_at bigint not null,
    check (ends_at > starts_at)
);
create index volunteer_leave_volunteer on volunteer_leave (volunteer_id, ends_at);
