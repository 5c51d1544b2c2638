-- Foundation: organisation tree, accounts, role grants, sessions, login throttling.
-- Portable schema: BIGINT ids, epoch-millisecond BIGINT timestamps (UTC),
-- enums as TEXT with CHECK, booleans as 0/1, coordinates as DOUBLE PRECISION.

create table org_unit (
    id integer primary key,
    kind text not null check (kind in ('province', 'city', 'county', 'team', 'employer', 'partner')),
    -- GB/T 2260 12-digit code; only divisions carry one.
    adcode text unique,
    name text not null,
    parent_id bigint references org_unit (id),
    -- materialised path of ids ('/1/2/15/'): subtree checks are prefix tests.
    path text not null unique,
    longitude double precision,
    latitude double precision,
    time_zone text not null default 'Asia/Shanghai',
    created_at bigint not null
);
create index org_unit_parent on org_unit (parent_id);

create table app_user (
    id integer primary key,
    -- E.164, normalised by the domain crate before it gets here.
    phone text not null unique,
    display_name text not null,
    password_hash text not null,
    locale text not null default 'zh-CN' check (locale in ('zh-CN', 'en')),
    totp_secret text,
    totp_enabled bigint not null default 0 check (totp_enabled in (0, 1)),
    disabled bigint not null default 0 check (disabled in (0, 1)),
    created_at bigint not null
);

create table role_grant (
    id integer primary key,
    user_id bigint not null references app_user (id),
    role text not null check (role in ('admin', 'coordinator', 'liaison', 'requester', 'volunteer')),
    org_unit_id bigint references org_unit (id),
    created_at bigint not null
);
create unique index role_grant_scoped on role_grant (user_id, role, org_unit_id) where org_unit_id is not null;
create unique index role_grant_unscoped on role_grant (user_id, role) where org_unit_id is null;
create index role_grant_org_unit on role_grant (org_unit_id);

create table user_session (
    id integer primary key,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash text not null unique,
    user_id bigint not null references app_user (id),
    csrf_token text not null,
    created_at bigint not null,
    expires_at bigint not null
);
create index user_session_user_id on user_session (user_id);

create table login_attempt (
    id integer primary key,
    phone text not null,
    ip text not null,
    succeeded bigint not null check (succeeded in (0, 1)),
    at bigint not null
);
create index login_attempt_phone on login_attempt (phone, at);
create index login_attempt_ip on login_attempt (ip, at);
