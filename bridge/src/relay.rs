//! A circuit relay v2 server. Browsers cannot listen for one another, so
//! they reserve a slot here and meet over `/p2p-circuit`, only long enough
//! to exchange WebRTC offers; the media then flows between them directly.
//! The limits keep the relay a signalling path, never a media path.

use std::time::Duration;

use libp2p::{PeerId, relay};

/// How much of this node the relay may use.
#[derive(Clone, Copy, Debug)]
pub struct RelayLimits {
    /// Reservations held at once, all peers together.
    pub max_reservations: usize,
    /// Reservations one peer may hold.
    pub max_reservations_per_peer: usize,
    /// Circuits open at once, all peers together.
    pub max_circuits: usize,
    /// Circuits one peer may have open.
    pub max_circuits_per_peer: usize,
    /// Longest a circuit lives.
    pub max_circuit_duration: Duration,
    /// Most bytes a circuit carries each way.
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_reservations_per_peer: 4,
            max_circuits: 64,
            max_circuits_per_peer: 8,
            max_circuit_duration: Duration::from_secs(120),
            // An SDP exchange takes a few KiB.
            max_circuit_bytes: 256 * 1024,
        }
    }
}

/// The relay server behaviour for the swarm.
pub fn server(local: PeerId, limits: &RelayLimits) -> relay::Behaviour {
    let config = relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: limits.max_reservations_per_peer,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: limits.max_circuit_duration,
        max_circuit_bytes: limits.max_circuit_bytes,
        ..relay::Config::default()
    };
    relay::Behaviour::new(local, config)
}
