//! p2p-media-loader browser swarms (`shared/P2PML.md`,
//! `shared/PEERTUBE.md`): the swarm ids players compute from a master
//! playlist ([`stream`], for the 2.2 and 2.3 generations and PeerTube's
//! UUID-named swarms), the binary commands they speak on a WebRTC data
//! channel ([`command`], the same in all of them), PeerTube's 1.0.x fork
//! with its own ids and JSON commands ([`fork`]), and the seeder that joins
//! their swarms and serves them ([`Swarms`], asking the daemon through
//! [`Host`]).

mod attrs;
mod client;
pub mod command;
mod fields;
pub mod fork;
mod hls;
mod host;
mod js;
mod peer;
pub mod stream;
mod swarms;

pub use host::{AnnouncePolicy, BrowserEvent, Held, Host, SwarmSpec, Wire};
pub use peer::PeerLimits;
pub use swarms::{SwarmStatus, Swarms, SwarmsConfig};
