-- Overlapping assignments: a volunteer's live assignments may not overlap
-- in time unless one of them is a remote item the catalogue marks as able
-- to run alongside other work (1), such as activating a carrier's free
-- call time and data. On-site items never run alongside (the API refuses
-- the flag for them).
alter table service_item add column runs_alongside bigint not null default 0
    check (runs_alongside in (0, 1));
update service_item set runs_alongside = 1
    where code = 'carrier_data' and org_unit_id is null and mode = 'remote';
