//! p2p-media-loader 2.x browser swarms (`shared/P2PML.md`): the swarm ids
//! players compute from a master playlist ([`stream`], for the 2.2 and 2.3
//! generations), and the binary commands they speak on a WebRTC data
//! channel ([`command`], the same in both).

mod attrs;
pub mod command;
mod fields;
mod hls;
mod js;
pub mod stream;
