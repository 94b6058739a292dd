//! `/swarmseed/receipts/1.0.0`: a receiver sends a batch of signed receipts
//! and the provider answers one verdict byte per receipt, in order.
//!
//! Request: varint count (1..=MAX_BATCH), then per receipt a varint length
//! (at most MAX_RECEIPT) and the signed DAG-CBOR bytes. Each write is at
//! most 16 KiB, as on the block protocol.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::blocks_wire::{FRAME, WireError, read_varint, varint};

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/swarmseed/receipts/1.0.0");
pub const MAX_BATCH: usize = 256;
/// A signed receipt is about 300 bytes.
pub const MAX_RECEIPT: u64 = 1024;

/// The provider's answer to one receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    Accepted = 0,
    /// Not canonical DAG-CBOR of a receipt, or a field out of range.
    Malformed = 1,
    /// The signature is not the receiver's.
    BadSignature = 2,
    /// Names another provider, or a receiver other than the sending peer.
    NotForUs = 3,
    /// Its seq is not above the receiver's last accepted one.
    Replayed = 4,
    /// Claims bytes that were not sent, or were already receipted.
    OverClaim = 5,
    /// Its epoch has closed.
    Late = 6,
    /// The provider could not store it; it may be sent again.
    Unavailable = 7,
}

impl Verdict {
    fn from_u8(b: u8) -> Option<Self> {
        use Verdict::*;
        [
            Accepted,
            Malformed,
            BadSignature,
            NotForUs,
            Replayed,
            OverClaim,
            Late,
            Unavailable,
        ]
        .get(b as usize)
        .copied()
    }
}

pub async fn write_batch(
    s: &mut (impl AsyncWrite + Unpin),
    receipts: &[Vec<u8>],
) -> Result<(), WireError> {
    let mut msg = Vec::new();
    varint(receipts.len() as u64, &mut msg);
    for r in receipts {
        varint(r.len() as u64, &mut msg);
        msg.extend_from_slice(r);
    }
    for frame in msg.chunks(FRAME) {
        s.write_all(frame).await?;
        s.flush().await?;
    }
    Ok(())
}

pub async fn read_batch(s: &mut (impl AsyncRead + Unpin)) -> Result<Vec<Vec<u8>>, WireError> {
    let n = read_varint(s).await?;
    if n == 0 || n > MAX_BATCH as u64 {
        return Err(WireError::TooLarge(n));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = read_varint(s).await?;
        if len > MAX_RECEIPT {
            return Err(WireError::TooLarge(len));
        }
        let mut buf = vec![0u8; len as usize];
        s.read_exact(&mut buf).await?;
        out.push(buf);
    }
    Ok(out)
}

pub async fn write_verdicts(
    s: &mut (impl AsyncWrite + Unpin),
    verdicts: &[Verdict],
) -> Result<(), WireError> {
    let bytes: Vec<u8> = verdicts.iter().map(|v| *v as u8).collect();
    s.write_all(&bytes).await?;
    s.flush().await?;
    Ok(())
}

pub async fn read_verdicts(
    s: &mut (impl AsyncRead + Unpin),
    n: usize,
) -> Result<Vec<Verdict>, WireError> {
    let mut bytes = vec![0u8; n];
    s.read_exact(&mut bytes).await?;
    bytes
        .into_iter()
        .map(|b| Verdict::from_u8(b).ok_or(WireError::Malformed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[test]
    fn batches_round_trip_and_limits_hold() {
        futures::executor::block_on(async {
            let batch = vec![vec![1u8; 300], vec![2u8; 20]];
            let mut buf = Cursor::new(Vec::new());
            write_batch(&mut buf, &batch).await.unwrap();
            let got = read_batch(&mut Cursor::new(buf.into_inner()))
                .await
                .unwrap();
            assert_eq!(got, batch);
            // Too many, too long, empty.
            assert!(
                read_batch(&mut Cursor::new(vec![0x81, 0x04]))
                    .await
                    .is_err()
            );
            assert!(
                read_batch(&mut Cursor::new(vec![1, 0x81, 0x10]))
                    .await
                    .is_err()
            );
            assert!(read_batch(&mut Cursor::new(vec![0])).await.is_err());
            let mut buf = Cursor::new(Vec::new());
            write_verdicts(&mut buf, &[Verdict::Accepted, Verdict::Late])
                .await
                .unwrap();
            let v = read_verdicts(&mut Cursor::new(buf.into_inner()), 2)
                .await
                .unwrap();
            assert_eq!(v, vec![Verdict::Accepted, Verdict::Late]);
            assert!(read_verdicts(&mut Cursor::new(vec![9]), 1).await.is_err());
        });
    }
}
