//! The swarmseed daemon as a library: the binary in `main.rs` and the tests
//! drive it through [`run::run`] and the CLI commands.

pub mod cdn;
pub mod cli;
pub mod config;
pub mod fetch;
pub mod notify;
pub mod playlists;
pub mod run;
pub mod store;
