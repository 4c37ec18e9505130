//! A cache location opened as one tier (`open`), and the tiers that give a
//! cache its policy: [`FailOpen`], which turns an outage into a miss and a
//! failed store into a note (pausing a store after an outage), and
//! [`Tiered`], a local directory in front of an object store. Everything a
//! binding needs beyond converting values lives here or below.

#![warn(unreachable_pub)]

mod fail_open;
mod open;
mod tiered;

pub use fail_open::{FailOpen, STORE_PAUSE};
pub use open::{open, shared_limits, Options};
pub use tiered::Tiered;
