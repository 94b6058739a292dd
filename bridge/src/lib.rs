//! What a swarmseed daemon offers browsers, and the wire formats browsers
//! and daemons share. The daemon builds its swarm with these parts; the
//! JavaScript client in `bridge/js` speaks the same protocols.
//!
//! - [`transport`]: WebRTC-direct, which browsers dial with no signalling
//!   server and no TLS certificate, and which addresses they can dial.
//! - [`blocks_wire`], [`receipts_wire`]: `/swarmseed/blocks/1.0.0` and
//!   `/swarmseed/receipts/1.0.0`, spoken alike by daemons and browsers, so
//!   a browser takes the same limits and penalties as any peer.
//! - [`relay`]: a circuit relay v2 server with limits, through which
//!   browsers reach each other (`/webrtc`, private to private).
//! - [`web`]: the web page the gateway serves at `GET /`, built into the binary.

pub mod blocks_wire;
#[doc(hidden)]
pub mod fuzz_api;
pub mod p2pml;
pub mod receipts_wire;
pub mod relay;
pub mod rtc;
pub mod tracker;
pub mod transport;
pub mod web;
