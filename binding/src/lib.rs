//! The napi binding: converts JS values to and from the pure-Rust crates
//! in `crates/` and nothing more. Options are checked, with the messages
//! users see, in the TS layer; what arrives here is converted exactly, so
//! a bad call is an Error, never a silent truncation or UB.
//!
//! `cache`: the `Cache` class, one location over the tier contract;
//! `values`: what it takes and gives; `calls`: sync methods run inline,
//! async ones on the cache's runtime; `jobs`: progress and stopping of long
//! jobs; `arrays`: JS memory coming in; `memory`: loaded arrays going out;
//! `keys`: call keys; `opened`: entries opened for partial reads; `output`: results written straight into the cache; `npy`: `readNpy`/`writeNpy`; `tables`: what the TS
//! layer takes from the core (dtypes, defaults, names); `errors`: failures
//! as JS errors.

#[macro_use]
extern crate napi_derive;

mod arrays;
mod cache;
mod calls;
mod errors;
mod jobs;
mod keys;
mod memory;
mod npy;
mod opened;
mod output;
mod tables;
mod values;
