//! The napi binding: converts JS values to and from the pure-Rust crates
//! in `crates/` and nothing more. Options are checked, with the messages
//! users see, in the TS layer; what arrives here is converted exactly, so
//! a bad call is an Error, never a silent truncation or UB.
//!
//! `arrays`: JS memory in and out; `cache_dir`: the `CacheDir` class;
//! `remote`: the `RemoteCache` class (object stores); `keys`: call keys; `npy`: `readNpy`/`writeNpy`; `tables`: what the TS
//! layer takes from the core (dtypes, defaults, file names); `errors`: JS
//! errors with stable codes; `guard`: panics as errors; `jobs`: long
//! maintenance jobs with progress and stopping, on either thread.

#[macro_use]
extern crate napi_derive;

mod arrays;
mod cache_dir;
mod errors;
mod guard;
mod jobs;
mod keys;
mod memory;
mod npy;
mod remote;
mod tables;
