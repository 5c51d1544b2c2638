//! Who may see which fields of an order: the one place that decides.
//!
//! - `Full`: the requester who owns the household, the liaison who placed
//!   the order, a coordinator whose subtree holds the order's division, an
//!   admin. Sees everything that has not been purged.
//! - `AssignedLive`: the assigned volunteer while the assignment is live
//!   (`assigned`, `in_service`): street, phone, coordinates and notes.
//! - `Limited`: the assigned volunteer after the service (no address or
//!   phone), or a volunteer holding an offer: item, district, approximate
//!   distance, time window and the non-identifying public note.
//!
//! Anyone else gets `None`, and the API answers 404. Every answer that
//! carries a sensitive field writes an `access_log` row (who, which record,
//! which fields, why, when), never the values.

use homefront_domain::order_state::OrderState;
use homefront_domain::org::OrgPath;
use homefront_store::orders::OrderRow;

use crate::auth::Actor;

/// How much of an order an actor may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrderAccess {
    /// Item, district, window, public note only.
    Limited,
    /// The assigned volunteer during the live assignment.
    AssignedLive,
    /// Requester, placing liaison, coordinator in scope, admin.
    Full,
}

impl OrderAccess {
    /// Whether the street, phone, coordinates and notes may be shown.
    pub fn sees_location(self) -> bool {
        self >= OrderAccess::AssignedLive
    }
}

/// The access `actor` has to `order`; `has_offer` says whether the actor
/// holds an offer for it (dispatch decides that).
pub fn order_access(actor: &Actor, order: &OrderRow, has_offer: bool) -> Option<OrderAccess> {
    let uid = actor.user.id;
    if order.requester_user_id == uid
        || order.placed_by == uid
        || actor.manages(&OrgPath::from_stored(order.division_path.clone()))
    {
        return Some(OrderAccess::Full);
    }
    if order.assignee_user_id == Some(uid) {
        let live = matches!(order.state, OrderState::Assigned | OrderState::InService);
        return Some(if live {
            OrderAccess::AssignedLive
        } else {
            OrderAccess::Limited
        });
    }
    has_offer.then_some(OrderAccess::Limited)
}

/// The sensitive order fields present (not purged) in `order`, as named in
/// the access log.
pub fn sensitive_fields(order: &OrderRow) -> Vec<&'static str> {
    let mut f = Vec::new();
    if order.street.is_some() {
        f.push("street");
    }
    if order.contact_phone.is_some() {
        f.push("contact_phone");
    }
    if order.longitude.is_some() {
        f.push("coordinates");
    }
    if order.notes.is_some() {
        f.push("notes");
    }
    f
}
