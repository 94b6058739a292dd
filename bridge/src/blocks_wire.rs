//! The block protocol's wire format, `/swarmseed/blocks/1.0.0`.
//!
//! One request per stream: a varint length and a CID. The answer is a status
//! byte; for `Ok`, a varint of the provider's current receipt epoch (the
//! receiver names it in its receipt); a varint length, then the block in
//! writes of at most 16 KiB, each flushed, because WebRTC carries one
//! message per flush and larger messages reset the stream.

use bytes::{Bytes, BytesMut};
use cid::Cid;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/swarmseed/blocks/1.0.0");
/// Largest write on the stream.
pub const FRAME: usize = 16 * 1024;
/// CIDs are well under this.
const MAX_CID_LEN: u64 = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    /// The provider is at its limit for this peer.
    Busy = 2,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message")]
    Malformed,
    #[error("message of {0} bytes is over the limit")]
    TooLarge(u64),
}

pub async fn read_varint(s: &mut (impl AsyncRead + Unpin)) -> Result<u64, WireError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] < 0x80 {
            return Ok(v);
        }
    }
    Err(WireError::Malformed)
}

pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub async fn write_request(s: &mut (impl AsyncWrite + Unpin), cid: &Cid) -> Result<(), WireError> {
    let bytes = cid.to_bytes();
    let mut msg = Vec::with_capacity(bytes.len() + 2);
    varint(bytes.len() as u64, &mut msg);
    msg.extend_from_slice(&bytes);
    s.write_all(&msg).await?;
    s.flush().await?;
    Ok(())
}

pub async fn read_request(s: &mut (impl AsyncRead + Unpin)) -> Result<Cid, WireError> {
    let len = read_varint(s).await?;
    if len > MAX_CID_LEN {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await?;
    Cid::try_from(buf.as_slice()).map_err(|_| WireError::Malformed)
}

/// A block the provider sends, and the epoch its receipt belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub data: Bytes,
    pub epoch: u64,
}

/// Writes an answer; `epoch` is sent with `Ok` only.
pub async fn write_response(
    s: &mut (impl AsyncWrite + Unpin),
    status: Status,
    epoch: u64,
    data: &[u8],
) -> Result<(), WireError> {
    let mut head = vec![status as u8];
    if status == Status::Ok {
        varint(epoch, &mut head);
    }
    varint(data.len() as u64, &mut head);
    s.write_all(&head).await?;
    s.flush().await?;
    for frame in data.chunks(FRAME) {
        s.write_all(frame).await?;
        s.flush().await?;
    }
    Ok(())
}

/// Reads an answer: the block for `Ok`, else the status.
pub async fn read_response(
    s: &mut (impl AsyncRead + Unpin),
    max: u64,
) -> Result<Result<Delivered, Status>, WireError> {
    let mut status = [0u8; 1];
    s.read_exact(&mut status).await?;
    let status = match status[0] {
        0 => Status::Ok,
        1 => Status::NotFound,
        2 => Status::Busy,
        _ => return Err(WireError::Malformed),
    };
    let epoch = if status == Status::Ok {
        read_varint(s).await?
    } else {
        0
    };
    let len = read_varint(s).await?;
    if status != Status::Ok {
        return Ok(Err(status));
    }
    if len > max {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = BytesMut::zeroed(len as usize);
    s.read_exact(&mut buf).await?;
    Ok(Ok(Delivered {
        data: buf.freeze(),
        epoch,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[test]
    fn round_trip_and_limits() {
        futures::executor::block_on(async {
            let cid: Cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
                .parse()
                .unwrap();
            let mut buf = Cursor::new(Vec::new());
            write_request(&mut buf, &cid).await.unwrap();
            let mut r = Cursor::new(buf.into_inner());
            assert_eq!(read_request(&mut r).await.unwrap(), cid);

            let data = vec![7u8; 40_000];
            let mut buf = Cursor::new(Vec::new());
            write_response(&mut buf, Status::Ok, 300, &data)
                .await
                .unwrap();
            let bytes = buf.into_inner();
            let got = read_response(&mut Cursor::new(bytes.clone()), 1 << 20)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.data, data);
            assert_eq!(got.epoch, 300);
            assert!(matches!(
                read_response(&mut Cursor::new(bytes), 1000).await,
                Err(WireError::TooLarge(40_000))
            ));

            // Garbage: an oversized CID length, a bad status, a truncated body.
            assert!(
                read_request(&mut Cursor::new(vec![0xff, 0x01]))
                    .await
                    .is_err()
            );
            assert!(
                read_response(&mut Cursor::new(vec![9, 0]), 10)
                    .await
                    .is_err()
            );
            assert!(
                read_response(&mut Cursor::new(vec![0, 0, 5, 1]), 10)
                    .await
                    .is_err()
            );
        });
    }
}
