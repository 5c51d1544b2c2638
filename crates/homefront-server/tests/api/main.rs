//! Integration suite: the real application over HTTP on 127.0.0.1:0.
//!
//! Every test gets a fresh database: a new SQLite file by default, or a new
//! PostgreSQL database when `HOMEFRONT_TEST_DB=postgres` (server at
//! `HOMEFRONT_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), created and dropped by
//! the test. Time comes from a `ManualClock`; no test sleeps.

mod authz;
mod catalogue;
mod constraints;
mod coordinator_pages;
mod demo;
mod dispatch;
mod dispatch_effective;
mod fulfilment;
mod helpers;
mod household_pages;
mod language;
mod liaison_pages;
mod notify;
mod openapi;
mod orders;
mod org_units;
mod pages;
mod pairing_pages;
mod privacy_scan;
mod province_pages;
mod push;
mod reads;
mod reassign_api;
mod reports;
mod security;
mod sessions;
mod ui;
mod volunteers;
mod wizard_pages;
