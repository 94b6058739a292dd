//! Running under systemd: readiness, orderly shutdown, and config errors
//! that name the key.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use support::TEST_TIMEOUT;
use support::daemon::{BIN, Daemon};

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_sent_to_notify_socket_and_sigterm_exits_cleanly() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let socket_path = work.path().join("notify.sock");
        let sock = UnixDatagram::bind(&socket_path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let env = [("NOTIFY_SOCKET", socket_path.to_str().unwrap())];
        let mut daemon = Daemon::start_with_env(&work.path().join("node"), "", &env).await;
        assert!(recv(&sock).lines().any(|l| l == "READY=1"));
        assert!(daemon.healthy().await);
        let status = daemon.terminate();
        assert!(status.success(), "exit after SIGTERM: {status}");
        assert!(recv(&sock).lines().any(|l| l == "STOPPING=1"));
        let log = daemon.log();
        assert!(log.contains("stopped"), "{log}");
        assert!(!work.path().join("node/data/gateway.addr").exists());
    })
    .await
    .expect("test timed out");
}

fn refused(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        format!("data_dir = {:?}\n{config}", dir.path().join("d")),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{config:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_keys_and_bad_values_are_refused_by_name() {
    let e = refused("[gateway]\nlisten = \"127.0.0.1:0\"\nprefetch_segmnts = 4\n");
    assert!(e.contains("prefetch_segmnts"), "{e}");
    let e = refused("[gateway]\nlisten = \"localhost-ish\"\n");
    assert!(e.contains("gateway.listen"), "{e}");
    let e = refused("[gateway]\np2p_timeout_ms = -5\n");
    assert!(e.contains("gateway.p2p_timeout_ms"), "{e}");
    let e = refused("[store]\nmax_bytes = \"a lot\"\n");
    assert!(e.contains("store.max_bytes"), "{e}");
    let e = refused("[[videos]]\nurl = \"file:///etc/passwd\"\n");
    assert!(e.contains("videos[0].url"), "{e}");
}

#[test]
fn cid_of_a_missing_file_names_the_file() {
    let out = Command::new(BIN)
        .args(["cid", "/nonexistent/segment.ts"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/segment.ts"));
}
