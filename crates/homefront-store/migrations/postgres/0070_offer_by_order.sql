-- Every offer of one order, oldest first: the order page, the dispatcher's
-- re-offer cooldown and the replay read offers by order. The partial
-- unique indexes on offer cover only open and accepted offers, so without
-- this a read by order scanned the whole table.
create index offer_order on offer (order_id, offered_at);
