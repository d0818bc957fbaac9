//! What a hostile client, a hostile configuration and other crates' layers
//! can do to palisade's layers: each test here pins down a defence. The
//! module is named so that `cargo test hardening` runs them all.

#[cfg(feature = "http")]
mod body_buffer;
mod budget;
#[cfg(feature = "http")]
mod caller_deadline;
#[cfg(feature = "http")]
mod client_ip;
mod config_bounds;
mod end_of_clock;
#[cfg(feature = "grpc")]
mod grpc_status;
mod key_flood;
mod pushback;
#[cfg(feature = "http")]
mod tower_refusals;
