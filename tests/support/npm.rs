//! The npm folders the tests run (`bridge/js`, `tests/helia`): their locked
//! packages are installed with `npm ci` when missing or older than the
//! lock, so `cargo test` on a fresh clone needs only npm itself.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A folder of the repository.
pub fn dir(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The newest modification time under `path`; the epoch when it is missing.
pub fn newest(path: &Path) -> SystemTime {
    let Ok(meta) = std::fs::metadata(path) else {
        return SystemTime::UNIX_EPOCH;
    };
    let mut t = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            t = t.max(newest(&entry.path()));
        }
    }
    t
}

/// When `package.json` or the lock last changed.
pub fn locked(dir: &Path) -> SystemTime {
    newest(&dir.join("package.json")).max(newest(&dir.join("package-lock.json")))
}

/// Runs `npm ci` in `dir` unless its packages are installed (`needs`, a
/// path under `node_modules`, exists) and no older than the lock.
pub fn install(dir: &Path, needs: &str) {
    // npm ci rewrites this file; older than the lock means the packages
    // installed are not the locked ones.
    let installed = newest(&dir.join("node_modules/.package-lock.json"));
    if installed < locked(dir) || !dir.join("node_modules").join(needs).exists() {
        run(dir, &["ci", "--no-audit", "--no-fund"]);
    }
}

pub fn run(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run npm ({e}): apt-get install -y npm, then `npm ci` in {}",
                dir.display()
            )
        });
    assert!(
        status.success(),
        "npm {} failed in {}",
        args.join(" "),
        dir.display()
    );
}

/// Runs `node tests/helia/<script> <args>…` with the folder's packages
/// installed (`needs`, as for `install`) and reads the one JSON line it
/// prints. `log` goes with any failure.
pub async fn helia_script(
    script: &str,
    needs: &str,
    args: impl IntoIterator<Item = String>,
    log: impl FnOnce() -> String,
) -> serde_json::Value {
    let helia = dir("tests/helia");
    install(&helia, needs);
    let out = tokio::process::Command::new("node")
        .arg(helia.join(script))
        .args(args)
        .output()
        .await
        .expect("run node");
    assert!(
        out.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log()
    );
    serde_json::from_slice(&out.stdout).expect("the script's JSON")
}
