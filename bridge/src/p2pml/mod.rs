//! p2p-media-loader 2.x browser swarms (`shared/P2PML.md`): the swarm ids
//! players compute from a master playlist ([`stream`], for the 2.2 and 2.3
//! generations), the binary commands they speak on a WebRTC data channel
//! ([`command`], the same in both), and the seeder that joins their swarms
//! and serves them ([`Swarms`], asking the daemon through [`Host`]).

mod attrs;
mod client;
pub mod command;
mod fields;
mod hls;
mod host;
mod js;
mod peer;
pub mod stream;
mod swarms;

pub use host::{BrowserEvent, Held, Host, SwarmSpec};
pub use peer::PeerLimits;
pub use swarms::{SwarmStatus, Swarms, SwarmsConfig};
