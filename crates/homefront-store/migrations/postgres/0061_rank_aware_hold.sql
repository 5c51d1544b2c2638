-- Rank-aware acceptance (broadcast): an accept from a lower-ranked
-- candidate while better-ranked ones are still deciding is held rather
-- than assigned. held_at: when it was held; hold_until: when it wins at
-- the latest, unless a better-ranked candidate accepts first. A held
-- offer stays 'offered' and does not expire while held.
alter table offer add column held_at bigint;
alter table offer add column hold_until bigint;
