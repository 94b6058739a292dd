//! The fuzz targets' inputs replayed in the normal test suite: every file
//! of `fuzz/corpus/<target>/` (the committed seeds) and of
//! `fuzz/regressions/<target>/` (inputs that once crashed a target), run
//! through the same function the fuzz target calls (the crates'
//! `fuzz_api` modules). Each must return, without a panic, within a time
//! bound; each target's corpus must hold inputs its parsers accept, so the
//! replay exercises more than the refusals.
//!
//! The daemon's test suite runs this file (daemon/Cargo.toml), and so does
//! `cargo test` in `fuzz/` (fuzz/Cargo.toml).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Much more than any input takes, unoptimised.
const PER_INPUT: Duration = Duration::from_secs(60);

fn fuzz_dir() -> PathBuf {
    // Both packages that run this file sit one level below the root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs every input of `target` through `run`, each on a thread of its own
/// so a panic names its file and a hang fails the test instead of stalling
/// it. Returns the results, one per input.
fn replay<T: Send + 'static>(target: &str, run: fn(&[u8]) -> T) -> Vec<T> {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "{target}: no inputs in fuzz/corpus/{target}/"
    );
    let mut results = Vec::with_capacity(files.len());
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(run(&data));
        });
        match rx.recv_timeout(PER_INPUT) {
            Ok(r) => results.push(r),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{target}: {} panics the target", path.display())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{target}: {} takes over {PER_INPUT:?}", path.display())
            }
        }
    }
    results
}

/// Replays a target whose function tells whether its input was accepted.
fn replay_accepting(target: &str, run: fn(&[u8]) -> bool) {
    let results = replay(target, run);
    let accepted = results.iter().filter(|&&a| a).count();
    assert!(
        accepted > 0,
        "{target}: none of {} inputs is accepted",
        results.len()
    );
    // The edge cases are refused, or the corpus would test only the happy path.
    assert!(
        accepted < results.len(),
        "{target}: every input is accepted"
    );
}

#[test]
fn blocks_wire() {
    replay_accepting("blocks_wire", bridge::fuzz_api::blocks_wire);
}

#[test]
fn receipts_wire() {
    replay_accepting("receipts_wire", bridge::fuzz_api::receipts_wire);
}

#[test]
fn bitswap() {
    replay_accepting("bitswap", swarmseed::fuzz_api::bitswap);
}

#[test]
fn dag_pb() {
    replay_accepting("dag_pb", swarmseed::fuzz_api::dag_pb);
}

#[test]
fn cidmap() {
    replay_accepting("cidmap", swarmseed::fuzz_api::cidmap);
}

#[test]
fn proofs() {
    replay_accepting("proofs", proofs::fuzz_api::proofs);
}

#[test]
fn tracker_wire() {
    replay_accepting("tracker_wire", bridge::fuzz_api::tracker_wire);
}

#[test]
fn config() {
    replay_accepting("config", swarmseed::fuzz_api::config);
}

/// Tokens no one minted never open; rewritten playlists name only paths
/// that open to what the playlist named (checked inside `paths`).
#[test]
fn gateway_paths() {
    replay_accepting("gateway_paths", gateway::fuzz_api::paths);
}

/// Commands that decode must also survive encode → decode (checked inside
/// `p2pml_command`); the corpus must hold some, and a split one.
#[test]
fn p2pml_command() {
    let decoded = replay("p2pml_command", bridge::fuzz_api::p2pml_command);
    assert!(
        decoded.iter().sum::<usize>() > 0,
        "p2pml_command: no input decodes to a command"
    );
    assert!(
        decoded.iter().any(|&n| n > 1),
        "p2pml_command: no input is a channel of several commands"
    );
    assert!(decoded.contains(&0), "p2pml_command: no input is refused");
}

/// PeerTube's fork: commands, chunks and swarm ids (checked inside `fork`).
#[test]
fn fork() {
    replay_accepting("fork", bridge::fuzz_api::fork);
}

/// SHA-256 lists: what reads is found again (checked inside `sha256_list`).
#[test]
fn sha256_list() {
    replay_accepting("sha256_list", swarmseed::fuzz_api::sha256_list);
}

/// PeerTube's answers, page URLs and versions.
#[test]
fn peertube() {
    replay_accepting("peertube", swarmseed::fuzz_api::peertube);
}

/// WebRTC-direct stream frames, split and joined (checked inside).
#[test]
fn webrtc_framing() {
    replay_accepting("webrtc_framing", bridge::fuzz_api::webrtc_framing);
}
