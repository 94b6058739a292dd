//! The swarmseed daemon as a library: the binary in `main.rs` and the tests
//! drive it through [`run::run`] and the CLI commands.

pub mod browsers;
pub mod cdn;
pub mod cidmap;
pub mod cli;
pub mod config;
pub mod fetch;
#[doc(hidden)]
pub mod fuzz_api;
pub mod holdings;
pub mod ipfs_provide;
pub mod mirrors;
pub mod notify;
pub mod passthrough;
pub mod peers;
pub mod peertube;
pub mod pin_cli;
pub mod playlists;
pub mod proofs_cli;
pub mod receipts;
pub mod rooms;
pub mod run;
pub mod seeder;
pub mod service;
pub mod sha256_list;
pub mod store;
pub mod swarm;
pub mod trust;
pub mod video;
