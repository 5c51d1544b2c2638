-- An accepted offer whose assignment was later taken back (the volunteer
-- was deactivated, or a coordinator reassigned the order) keeps its state
-- 'accepted' (it was accepted, and its volunteer is not offered the order
-- again) but is released: released_at, epoch ms. At most one accepted
-- offer per order that is not released, so the order can be accepted
-- again by someone else.
alter table offer add column released_at bigint;
drop index offer_one_accepted;
create unique index offer_one_accepted on offer (order_id) where state = 'accepted' and released_at is null;
