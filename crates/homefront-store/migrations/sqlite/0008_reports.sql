-- Reports: service-hours certificates (志愿服务证明) with a public
-- verification code. Figures and exports are computed from the event log
-- and the hours ledger, so they need no tables of their own.

-- A certificate is a document: its figures are a snapshot taken when it was
-- issued, so the public verification page shows what was printed even if
-- the ledger is adjusted later. Rows are never updated.
create table certificate (
    id integer primary key,
    -- random, unguessable (256 bits, base64url); the public URL's key
    code text not null unique,
    volunteer_user_id bigint not null references app_user (id),
    -- the period covered, [period_from, period_to), epoch ms
    period_from bigint not null,
    period_to bigint not null,
    volunteer_name text not null,
    -- the phone with all but the last four digits hidden
    masked_phone text not null,
    organisation text not null,
    recorded_minutes bigint not null,
    backfilled_minutes bigint not null,
    -- JSON array of {"item": name, "orders": n, "minutes": m}
    services text not null,
    issued_by bigint references app_user (id),
    issued_at bigint not null,
    check (period_to > period_from)
);
create index certificate_volunteer on certificate (volunteer_user_id, period_from);
