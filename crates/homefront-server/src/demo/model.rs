//! The stated models the simulator draws from: when requesters place
//! orders (arrival model) and how volunteers and requesters behave
//! (behaviour model). Every figure is a parameter here, not a result: the
//! results come out of the database after the run.
//!
//! Calibration target (the seed's press report of 12 Feb 2020): the
//! provincial team's 46 volunteers had completed 69 orders and over 130
//! service hours in roughly the programme's first two weeks. The
//! provincial streams below sum to about 6.5 orders a day from the nine
//! hospitals' staff (about 90 placed in 14 days, some cancelled, some
//! taken by Nanjing's own volunteers), and on-site services last their
//! catalogue duration times 1.0–1.9 (shopping and queueing under epidemic
//! controls), about 1.5 h an order.

use rand::RngExt;
use rand::rngs::StdRng;

use super::scenario::Programme;

/// One arrival stream: orders of `item` from households of `households`.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    /// Whose households place them.
    pub households: Programme,
    /// Catalogue item code.
    pub item: &'static str,
    /// Mean orders per day (Poisson), spread over 07:00–21:00 local time;
    /// for [`Programme::Counselling`], per city with a 12355 team.
    pub per_day: f64,
    /// Household members served, in order of preference.
    pub members: &'static [&'static str],
}

/// The arrival model: Poisson arrivals per item and programme (and so per
/// city: each programme's households live in its city).
pub const STREAMS: &[Stream] = &[
    // The nine hospitals' staff in Nanjing (provincial team).
    s(Programme::Provincial, "groceries", 1.8, &["parent", "self"]),
    s(Programme::Provincial, "errands", 1.4, &["parent", "self"]),
    s(Programme::Provincial, "supplies_delivery", 1.2, &["self"]),
    s(
        Programme::Provincial,
        "companionship",
        0.7,
        &["parent", "child"],
    ),
    s(Programme::Provincial, "ride", 0.6, &["self"]),
    // Nanjing committee: courier errands, carriers' call time and data.
    s(Programme::Provincial, "courier", 0.8, &["self"]),
    s(Programme::Provincial, "carrier_data", 0.6, &["self"]),
    // Southeast University: meals to Zhongda Hospital.
    s(Programme::Seu, "meal_delivery", 1.5, &["self"]),
    // Yangzhou: free rides by the partner fleet.
    s(Programme::Yangzhou, "ride", 3.0, &["self"]),
    // Xuzhou: the six-item menu.
    s(Programme::Xuzhou, "groceries", 0.5, &["parent", "self"]),
    s(Programme::Xuzhou, "ride", 0.4, &["self"]),
    s(
        Programme::Xuzhou,
        "companionship",
        0.4,
        &["child", "parent"],
    ),
    s(Programme::Xuzhou, "errands", 0.3, &["parent"]),
    s(Programme::Xuzhou, "meal_delivery", 0.2, &["self"]),
    s(Programme::Xuzhou, "supplies_delivery", 0.2, &["self"]),
    // Yancheng: evening lessons by video for 99 paired children.
    s(Programme::Yancheng, "tutoring_video", 9.0, &["child"]),
    // Nantong: care for parents and children, errands, home medical
    // consultations, repair advice.
    s(
        Programme::Nantong,
        "companionship",
        0.5,
        &["parent", "child"],
    ),
    s(Programme::Nantong, "errands", 0.4, &["parent"]),
    s(Programme::Nantong, "home_medical", 0.3, &["parent"]),
    s(Programme::Nantong, "repair_advice", 0.3, &["self"]),
    // 12355 counselling with the priority channel, per city.
    s(
        Programme::Counselling,
        "counselling",
        0.25,
        &["self", "spouse"],
    ),
];

const fn s(
    households: Programme,
    item: &'static str,
    per_day: f64,
    members: &'static [&'static str],
) -> Stream {
    Stream {
        households,
        item,
        per_day,
        members,
    }
}

/// Local hours in which orders are placed: 07:00 to 21:00.
pub const PLACING_HOURS: (i64, i64) = (7, 21);

/// Local hours in which the provincial coordinator watches the province's
/// queue (orders escalated to the top): 07:00 to 23:00.
pub const COORDINATOR_HOURS: (i64, i64) = (7, 23);

/// Minutes between two looks of the coordinator at the queue (uniform):
/// the coordinator's reaction time to an order reaching the top is half
/// of this on average.
pub const COORDINATOR_LOOK_EVERY_MIN: (f64, f64) = (5.0, 15.0);

/// Orders the coordinator handles in one look, oldest escalation first;
/// the rest wait for the next look.
pub const COORDINATOR_ORDERS_PER_LOOK: usize = 10;

/// Mean volunteer response delay after an offer arrives, seconds, by lane
/// (exponential, plus [`MIN_RESPONSE_S`]); a response later than the
/// offer's timeout is no response: the offer expires.
pub fn mean_response_s(lane: &str) -> f64 {
    match lane {
        "priority" => 45.0,
        "urgent" => 90.0,
        _ => 240.0,
    }
}

/// Nobody answers faster than this, seconds.
pub const MIN_RESPONSE_S: f64 = 15.0;

/// Probability a volunteer declines an offer: of a pairing offer, of an
/// offer while already serving an order, and otherwise.
pub const DECLINE_PAIRED: f64 = 0.05;
/// See [`DECLINE_PAIRED`].
pub const DECLINE_BUSY: f64 = 0.5;
/// See [`DECLINE_PAIRED`].
pub const DECLINE_OTHER: f64 = 0.15;

/// Probability a volunteer takes a rest day (stays off duty all day).
pub const REST_DAY: f64 = 1.0 / 7.0;

/// Travel speed in town, km/h, and preparation before leaving, minutes
/// (uniform): check-in is at the later of the window start and arrival.
pub const TRAVEL_KMH: f64 = 20.0;
/// See [`TRAVEL_KMH`].
pub const PREPARE_MIN: (f64, f64) = (10.0, 30.0);

/// Actual service time as a multiple of the item's catalogue duration
/// (uniform): on site, and remote. The ledger caps a session at the
/// catalogue duration once it runs past duration + 60 min of grace, so
/// on-site services stay within that (a 60-min item takes 60–114 min).
pub const DURATION_ONSITE: (f64, f64) = (1.0, 1.9);
/// See [`DURATION_ONSITE`].
pub const DURATION_REMOTE: (f64, f64) = (0.8, 1.2);

/// Probability the requester confirms (the rest are auto-confirmed by the
/// worker after `auto_confirm_days`), and the delay after check-out,
/// minutes (uniform).
pub const CONFIRM: f64 = 0.85;
/// See [`CONFIRM`].
pub const CONFIRM_DELAY_MIN: (f64, f64) = (10.0, 480.0);

/// Probability a requester cancels an order, and when, minutes after
/// placing it (uniform; only while nobody has checked in).
pub const CANCEL: f64 = 0.04;
/// See [`CANCEL`].
pub const CANCEL_AFTER_MIN: (f64, f64) = (5.0, 60.0);

/// Ratings given on confirmation: (rating, probability).
pub const RATINGS: [(i64, f64); 3] = [(5, 0.70), (4, 0.25), (2, 0.05)];

/// A uniform draw from `[lo, hi)`.
pub fn uniform(rng: &mut StdRng, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// An exponential draw with `mean`.
pub fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    let u: f64 = rng.random();
    -mean * (1.0 - u).ln()
}

/// A Poisson draw with mean `lambda` (Knuth's method; small means only).
pub fn poisson(rng: &mut StdRng, lambda: f64) -> u32 {
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p: f64 = rng.random();
    while p > limit {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

/// A rating drawn from [`RATINGS`].
pub fn rating(rng: &mut StdRng) -> i64 {
    let mut u: f64 = rng.random();
    for (r, p) in RATINGS {
        if u < p {
            return r;
        }
        u -= p;
    }
    5
}
