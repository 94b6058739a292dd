//! The WebRTC-direct certificate. Its SHA-256 digest is in every browser
//! address (`/certhash/…`), so it is kept in `data_dir` and read back on
//! every start. The file holds PEM blocks: `EXPIRES` (8 bytes, seconds
//! since 1970, little-endian), `PRIVATE_KEY` (PKCS#8 DER) and
//! `CERTIFICATE` (DER), as earlier releases wrote it.

use base64::Engine as _;
use multihash::Multihash;
use sha2::{Digest, Sha256};
use str0m::config::DtlsCert;

/// The multihash code of SHA-256.
const SHA2_256: u64 = 0x12;

/// Ten years: the file's `EXPIRES` block. Browsers check the digest, not
/// the dates.
const LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("no {0} block")]
    Missing(&'static str),
    #[error("a PEM block is not base64")]
    Base64,
    #[error("the WebRTC engine cannot make a certificate")]
    Generate,
}

/// A certificate and its key, as the engine takes them.
#[derive(Clone)]
pub struct DirectCert {
    pub dtls: DtlsCert,
    /// SHA-256 of the certificate's DER.
    pub fingerprint: [u8; 32],
}

impl std::fmt::Debug for DirectCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectCert")
            .field("fingerprint", &hex(&self.fingerprint))
            .finish()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

impl DirectCert {
    pub fn new(dtls: DtlsCert) -> Self {
        let fingerprint = Sha256::digest(&dtls.certificate).into();
        Self { dtls, fingerprint }
    }

    /// A new certificate, from the engine's own crypto provider.
    pub fn generate() -> Result<Self, CertError> {
        let crypto = str0m::crypto::from_feature_flags();
        let dtls = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or(CertError::Generate)?;
        Ok(Self::new(dtls))
    }

    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let key = block(pem, "PRIVATE_KEY")?.ok_or(CertError::Missing("PRIVATE_KEY"))?;
        let cert = block(pem, "CERTIFICATE")?.ok_or(CertError::Missing("CERTIFICATE"))?;
        Ok(Self::new(DtlsCert {
            certificate: cert,
            private_key: key,
        }))
    }

    pub fn to_pem(&self) -> String {
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + LIFETIME_SECS;
        [
            pem_block("EXPIRES", &expires.to_le_bytes()),
            pem_block("PRIVATE_KEY", &self.dtls.private_key),
            pem_block("CERTIFICATE", &self.dtls.certificate),
        ]
        .join("\n")
    }

    /// The digest as addresses carry it.
    pub fn certhash(&self) -> Multihash<64> {
        Multihash::wrap(SHA2_256, &self.fingerprint).expect("32 bytes fit 64")
    }
}

/// The multihash bytes of a SHA-256 certificate digest, as Noise's
/// prologue takes them.
pub fn fingerprint_multihash(digest: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![SHA2_256 as u8, 32];
    out.extend_from_slice(digest);
    out
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

fn block(pem: &str, tag: &str) -> Result<Option<Vec<u8>>, CertError> {
    let begin = format!("-----BEGIN {tag}-----");
    let end = format!("-----END {tag}-----");
    let Some(start) = pem.find(&begin) else {
        return Ok(None);
    };
    let body = &pem[start + begin.len()..];
    let Some(stop) = body.find(&end) else {
        return Ok(None);
    };
    let b64: String = body[..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Some)
        .map_err(|_| CertError::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_reads_back_with_the_same_digest() {
        let cert = DirectCert::generate().unwrap();
        let again = DirectCert::from_pem(&cert.to_pem()).unwrap();
        assert_eq!(cert.fingerprint, again.fingerprint);
        assert_eq!(cert.dtls.private_key, again.dtls.private_key);
        assert!(
            DirectCert::from_pem("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(DirectCert::from_pem("").is_err());
    }
}
