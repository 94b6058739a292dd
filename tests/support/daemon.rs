//! A real `swarmseed run` process with its own data dir, gateway on port 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_swarmseed");

/// Test daemons bind the WebRTC engine's socket on loopback, port 0, so
/// many run at once.
pub const WEBTORRENT_ON_LOOPBACK: &str = "[webtorrent]\nlisten = \"127.0.0.1:0\"\n";

pub struct Daemon {
    child: Child,
    pub home: PathBuf,
    pub addr: SocketAddr,
}

impl Daemon {
    /// Starts a daemon whose state lives in `home/data`. `gateway_extra` is
    /// TOML appended to the `[gateway]` table.
    pub async fn start(home: &Path, gateway_extra: &str) -> Daemon {
        Self::start_with_env(home, gateway_extra, &[]).await
    }

    pub async fn start_with_env(home: &Path, gateway_extra: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_full(home, gateway_extra, "listen = []\n", env).await
    }

    /// A daemon in the swarm: `p2p_extra` is TOML for the `[p2p]` table
    /// (listeners on loopback are added).
    pub async fn start_p2p(home: &Path, gateway_extra: &str, p2p_extra: &str) -> Daemon {
        let p2p = format!(
            "listen = [\"/ip4/127.0.0.1/tcp/0\", \"/ip4/127.0.0.1/udp/0/webrtc-direct\"]\n{p2p_extra}\n"
        );
        Self::start_full(home, gateway_extra, &p2p, &[]).await
    }

    pub async fn start_full(
        home: &Path,
        gateway_extra: &str,
        p2p: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let config = Self::write_config(home, gateway_extra, p2p);
        let mut command = Command::new(BIN);
        command.args(["run", "--config"]).arg(&config);
        Self::launch(home, command, env).await
    }

    /// Writes `home/config.toml`: data in `home/data`, the gateway on
    /// loopback port 0 with `gateway_extra`, and `p2p` as the `[p2p]` table.
    pub fn write_config(home: &Path, gateway_extra: &str, p2p: &str) -> PathBuf {
        std::fs::create_dir_all(home).unwrap();
        let config = home.join("config.toml");
        let listen = if gateway_extra.contains("listen =") {
            ""
        } else {
            "listen = \"127.0.0.1:0\"\n"
        };
        std::fs::write(
            &config,
            format!(
                "data_dir = {data:?}\n[gateway]\n{listen}{gateway_extra}\n[p2p]\nmdns = false\n{p2p}\n{webtorrent}",
                data = home.join("data"),
                webtorrent = if p2p.contains("[webtorrent]") { "" } else { WEBTORRENT_ON_LOOPBACK },
            ),
        )
        .unwrap();
        config
    }

    /// As `start`, in a mount namespace of the daemon's own where
    /// `/etc/hosts` is `hosts`, so names resolve where the test says.
    /// Needs root (or `unshare -m` rights).
    pub async fn start_with_hosts(home: &Path, gateway_extra: &str, hosts: &str) -> Daemon {
        let config = Self::write_config(home, gateway_extra, "listen = []\n");
        let hosts_file = home.join("hosts");
        std::fs::write(&hosts_file, hosts).unwrap();
        let mut command = Command::new("unshare");
        command
            .args(["-m", "sh", "-c"])
            .arg("mount --bind \"$1\" /etc/hosts && exec \"$2\" run --config \"$3\"")
            .arg("sh")
            .arg(&hosts_file)
            .arg(BIN)
            .arg(&config);
        Self::launch(home, command, &[]).await
    }

    /// Runs `swarmseed run` on a config that it must refuse: its exit
    /// status and what it printed.
    pub fn refused(home: &Path, gateway_extra: &str) -> (ExitStatus, String) {
        let config = Self::write_config(home, gateway_extra, "listen = []\n");
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn swarmseed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the daemon started on a config it should refuse");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status, text)
    }

    /// A daemon browsers can dial: TCP for the swarm, and WebRTC-direct and
    /// WebSocket on loopback.
    pub async fn start_for_browsers(home: &Path) -> Daemon {
        let p2p = "listen = [\"/ip4/127.0.0.1/tcp/0\", \"/ip4/127.0.0.1/udp/0/webrtc-direct\", \"/ip4/127.0.0.1/tcp/0/ws\"]\n";
        Self::start_full(home, "", p2p, &[]).await
    }

    /// A daemon without listeners whose config has `store` as its `[store]` table.
    pub async fn start_store(home: &Path, store: &str) -> Daemon {
        Self::start_full(home, "", &format!("listen = []\n[store]\n{store}\n"), &[]).await
    }

    /// As `start_store`, with `data_dir/store` on a tmpfs of `size` (e.g.
    /// "2m") mounted in a mount namespace of the daemon's own, so the store
    /// meets a real full filesystem. Needs root (or `unshare -m` rights).
    pub async fn start_store_on_tmpfs(home: &Path, store: &str, size: &str) -> Daemon {
        let config = home.join("config.toml");
        std::fs::create_dir_all(home.join("data/store")).unwrap();
        std::fs::set_permissions(
            home.join("data"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(
            &config,
            format!(
                "data_dir = {data:?}\n[gateway]\nlisten = \"127.0.0.1:0\"\n[p2p]\nmdns = false\nlisten = []\n[store]\n{store}\n{WEBTORRENT_ON_LOOPBACK}",
                data = home.join("data")
            ),
        )
        .unwrap();
        let mut command = Command::new("unshare");
        command
            .args(["-m", "sh", "-c"])
            .arg("mount -t tmpfs -o size=\"$1\" tmpfs \"$2\" && exec \"$3\" run --config \"$4\"")
            .arg("sh")
            .arg(size)
            .arg(home.join("data/store"))
            .arg(BIN)
            .arg(&config);
        Self::launch(home, command, &[]).await
    }

    async fn launch(home: &Path, mut command: Command, env: &[(&str, &str)]) -> Daemon {
        let addr_file = home.join("data/gateway.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("daemon.log"))
            .unwrap();
        let child = command
            .envs(env.iter().copied())
            // `DAEMON_LOG` widens it when chasing a failure, as in
            // `DAEMON_LOG=info,swarmseed=debug,libp2p_relay=debug`.
            .env(
                "RUST_LOG",
                std::env::var("DAEMON_LOG").unwrap_or_else(|_| "info,swarmseed=debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn swarmseed");
        let mut daemon = Daemon {
            child,
            home: home.to_path_buf(),
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("daemon exited at start with {status}:\n{}", daemon.log());
            }
            if let Some(addr) = std::fs::read_to_string(&addr_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                daemon.addr = addr;
                if let Ok(r) = reqwest::get(daemon.url("/api/v1/health")).await
                    && r.status().is_success()
                {
                    return daemon;
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn hls(&self, upstream: &str) -> String {
        format!("http://{}/hls?url={}", self.addr, upstream)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `peer`'s line in `GET /api/v1/proofs/peers`; `Null` when the ledger
    /// has none.
    pub async fn ledger_line(&self, peer: &str) -> serde_json::Value {
        let ledger: serde_json::Value = self.get_json("/api/v1/proofs/peers").await;
        ledger
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["peer"] == peer)
            .cloned()
            .unwrap_or_default()
    }

    /// `GET path` on the gateway, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        super::json_at(self.url(path)).await
    }

    pub async fn stats(&self) -> serde_json::Value {
        self.get_json("/api/v1/stats").await
    }

    /// Waits until the store holds at least `n` segments (they are stored
    /// just after they are first served).
    pub async fn wait_stored(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stats().await["segments_stored"].as_u64().unwrap() < n {
            assert!(
                Instant::now() < deadline,
                "store never reached {n} segments:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of one sample on `/metrics`: `name` with its labels, if
    /// any, as the line spells them.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
            .parse()
            .unwrap()
    }

    pub async fn healthy(&self) -> bool {
        matches!(reqwest::get(self.url("/api/v1/health")).await, Ok(r) if r.status().is_success())
    }

    /// Polls `GET /api/v1/node` until `pick` finds what it looks for in
    /// the answer; `what` names it in the failure.
    async fn node_when<T>(&self, what: &str, pick: impl Fn(&serde_json::Value) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info: serde_json::Value = self.get_json("/api/v1/node").await;
            if let Some(found) = pick(&info) {
                return found;
            }
            assert!(Instant::now() < deadline, "{what}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /api/v1/node` once the node listens: (peer id, addresses).
    pub async fn node(&self) -> (String, Vec<String>) {
        self.node_when("node never listened", |info| {
            let addrs = strings_in(info, "addrs", "");
            let id = info["peer_id"].as_str()?.to_owned();
            addrs
                .iter()
                .any(|a| a.contains("/tcp/"))
                .then_some((id, addrs))
        })
        .await
    }

    /// The peer id and the `browser_addrs` of `GET /api/v1/node` that
    /// contain `transport` (`"/webrtc-direct/"`, `"/ws/"`), once there are any.
    pub async fn browser_addrs(&self, transport: &str) -> (String, Vec<String>) {
        let what = format!("no {transport} address a browser can dial");
        self.node_when(&what, |info| {
            let addrs = strings_in(info, "browser_addrs", transport);
            let id = info["peer_id"].as_str()?.to_owned();
            (!addrs.is_empty()).then_some((id, addrs))
        })
        .await
    }

    /// The node's TCP address, with `/p2p/`.
    pub async fn tcp_addr(&self) -> String {
        self.node()
            .await
            .1
            .into_iter()
            .find(|a| a.contains("/tcp/"))
            .unwrap()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.join("data/api.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// `POST /api/v1/videos`, then waits until the video is seeded.
    pub async fn seed(&self, url: &str) -> serde_json::Value {
        let client = reqwest::Client::new();
        let r = client
            .post(self.url("/api/v1/videos"))
            .bearer_auth(self.token())
            .json(&serde_json::json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        let id = r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.wait_seeded(&id).await
    }

    pub async fn wait_seeded(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let videos: serde_json::Value = self.get_json("/api/v1/videos").await;
            if let Some(v) = videos.as_array().unwrap().iter().find(|v| v["id"] == id) {
                match v["state"].as_str().unwrap() {
                    "complete" => return v.clone(),
                    "failed" => panic!("seeding failed: {v}\n{}", self.log()),
                    _ => {}
                }
            }
            assert!(
                Instant::now() < deadline,
                "seeding never finished:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still alive.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon ignored SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The strings of the array `info[key]` that contain `needle`.
fn strings_in(info: &serde_json::Value, key: &str, needle: &str) -> Vec<String> {
    info[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .filter(|a| a.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The daemon's server-sent events (`/api/v1/events`), read as they come.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Daemon {
    /// Subscribes to the daemon's events from now on.
    pub async fn events(&self) -> Events {
        let response = reqwest::get(self.url("/api/v1/events")).await.unwrap();
        assert!(response.status().is_success());
        Events {
            response,
            buffer: String::new(),
        }
    }
}

impl Events {
    /// The next event named `name` whose data satisfies `matches`, within
    /// `timeout`.
    pub async fn wait(
        &mut self,
        name: &str,
        timeout: Duration,
        mut matches: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let mut kind = "";
                let mut data = "";
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        kind = v;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v;
                    }
                }
                if kind == name
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(data)
                    && matches(&v)
                {
                    return v;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {name} event within {timeout:?}"))
                .unwrap()
                .expect("the event stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for the browser `peer` to leave; returns why it did.
    pub async fn browser_left(&mut self, peer: &str, timeout: Duration) -> String {
        let e = self
            .wait("browser-disconnected", timeout, |v| v["peer"] == peer)
            .await;
        e["reason"].as_str().unwrap_or_default().to_owned()
    }
}
