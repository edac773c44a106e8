//! The pure-Rust core of `edgeward-native`: matchers that know nothing about
//! Python, HTTP or configuration. `cargo test -p edgeward-core` covers them.
#![forbid(unsafe_code)]

pub mod basic_auth;
pub mod cel;
pub mod geo;
pub mod h2;
pub mod ipnet;
pub mod ja4;
pub mod ratelimit;
pub mod webhooks;
