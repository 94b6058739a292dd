//! libp2p WebRTC-direct on the engine: a browser dials an address that
//! names this node's certificate digest, its first STUN check opens the
//! session on the engine's socket (ICE-lite, no SDP), Noise on channel 0
//! proves both peer ids, and every further channel is one libp2p stream,
//! framed with the spec's FIN, STOP_SENDING, RESET and FIN_ACK.

mod cert;
mod conn;
pub mod framing;
pub(crate) mod ice;
mod muxer;
mod stream;
mod transport;

pub use cert::{CertError, DirectCert};
pub use conn::{DirectConn, DirectEvent, Opener};
pub use muxer::Connection;
pub use stream::Substream;
pub use transport::{DirectError, Transport};
