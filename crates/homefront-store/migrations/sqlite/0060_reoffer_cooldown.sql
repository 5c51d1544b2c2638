-- An order is dispatched until it is served or its window passes: a
-- volunteer whose offer expired (or was withdrawn) may be offered the same
-- order again once this many minutes have passed since; a decline stays
-- final for that order. Per unit, like the mode.
alter table dispatch_setting add column reoffer_cooldown_minutes bigint not null default 10
    check (reoffer_cooldown_minutes between 0 and 1440);
