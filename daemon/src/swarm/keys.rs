//! The node's identity key and WebRTC certificate, kept in `data_dir` with
//! mode 0600 so the peer id and the `/certhash/` stay the same across
//! restarts. A key file others can read is refused.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use bridge::rtc::direct::DirectCert;
use libp2p::identity::Keypair;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Exposed { path: String, mode: u32 },
    #[error("{path} does not hold a valid {what}")]
    Invalid { path: String, what: &'static str },
}

pub const IDENTITY_FILE: &str = "identity.key";
pub const CERT_FILE: &str = "webrtc-cert.pem";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a secret file, refusing it if group or others can read it.
fn read_secret(path: &Path) -> Result<Option<Vec<u8>>, KeyError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.display().to_string(),
            mode,
        });
    }
    fs::read(path).map(Some).map_err(io(path))
}

/// Writes a secret file with mode 0600, atomically.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

pub fn load_or_create_identity(data_dir: &Path) -> Result<Keypair, KeyError> {
    let path = data_dir.join(IDENTITY_FILE);
    let invalid = || KeyError::Invalid {
        path: path.display().to_string(),
        what: "libp2p identity key",
    };
    if let Some(bytes) = read_secret(&path)? {
        return Keypair::from_protobuf_encoding(&bytes).map_err(|_| invalid());
    }
    let key = Keypair::generate_ed25519();
    write_secret(&path, &key.to_protobuf_encoding().map_err(|_| invalid())?)?;
    Ok(key)
}

/// The WebRTC-direct certificate; files written by earlier releases read
/// back with the same digest.
pub fn load_or_create_certificate(data_dir: &Path) -> Result<DirectCert, KeyError> {
    let path = data_dir.join(CERT_FILE);
    let invalid = || KeyError::Invalid {
        path: path.display().to_string(),
        what: "WebRTC certificate",
    };
    if let Some(bytes) = read_secret(&path)? {
        let pem = String::from_utf8(bytes).map_err(|_| invalid())?;
        return DirectCert::from_pem(&pem).map_err(|_| invalid());
    }
    let cert = DirectCert::generate().map_err(|_| invalid())?;
    write_secret(&path, cert.to_pem().as_bytes())?;
    Ok(cert)
}

/// The API token for mutating HTTP requests, created at first start.
pub fn load_or_create_token(data_dir: &Path) -> Result<String, KeyError> {
    let path = data_dir.join("api.token");
    if let Some(bytes) = read_secret(&path)? {
        let token = String::from_utf8_lossy(&bytes).trim().to_owned();
        if token.len() >= 16 {
            return Ok(token);
        }
    }
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    write_secret(&path, token.as_bytes())?;
    Ok(token)
}

/// The key behind the gateway's path tokens, created at first start. Kept,
/// so the paths players hold stay valid across restarts.
pub fn load_or_create_path_key(data_dir: &Path) -> Result<[u8; 32], KeyError> {
    let path = data_dir.join(PATH_KEY_FILE);
    if let Some(bytes) = read_secret(&path)? {
        return bytes.try_into().map_err(|_| KeyError::Invalid {
            path: path.display().to_string(),
            what: "gateway path key (32 bytes)",
        });
    }
    let key: [u8; 32] = rand::random();
    write_secret(&path, &key)?;
    Ok(key)
}

pub const PATH_KEY_FILE: &str = "gateway.key";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_and_exposed_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_identity(dir.path()).unwrap();
        let b = load_or_create_identity(dir.path()).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        let c1 = load_or_create_certificate(dir.path()).unwrap();
        let c2 = load_or_create_certificate(dir.path()).unwrap();
        assert_eq!(c1.fingerprint, c2.fingerprint);
        let path = dir.path().join(IDENTITY_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create_identity(dir.path()),
            Err(KeyError::Exposed { .. })
        ));
    }

    #[test]
    fn the_path_key_persists_and_is_refused_when_group_readable() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_path_key(dir.path()).unwrap();
        assert_eq!(load_or_create_path_key(dir.path()).unwrap(), a);
        let path = dir.path().join(PATH_KEY_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_or_create_path_key(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::Exposed { .. }));
        // The message names the file and the fix, never the key.
        let text = err.to_string();
        assert!(text.contains("chmod 600") && !text.contains(&format!("{:?}", a)));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            load_or_create_path_key(dir.path()),
            Err(KeyError::Invalid { .. })
        ));
    }
}

#[cfg(test)]
mod earlier_files {
    use super::*;

    /// A certificate file as releases before the engine wrote it.
    const V1: &str = include_str!("../../../tests/fixtures/keys/webrtc-cert-v1.pem");

    #[test]
    fn a_certificate_file_of_an_earlier_release_keeps_its_certhash() {
        let dir = tempfile::tempdir().unwrap();
        write_secret(&dir.path().join(CERT_FILE), V1.as_bytes()).unwrap();
        let cert = load_or_create_certificate(dir.path()).unwrap();
        let hex: String = cert
            .fingerprint
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "e176acff77843b77380739b4a250876857cf99d6ff425d75437ff87def3b0bc0"
        );
        assert_eq!(cert.certhash().to_bytes()[..2], [0x12, 0x20]);
    }
}
