//! gRPC message framing over HTTP/2: each message is a 1-byte compression flag, a 4-byte
//! big-endian length, then the message (gRPC over HTTP/2, "Length-Prefixed-Message").

use bytes::{BufMut, Bytes, BytesMut};

/// Why a unary body cannot be read as one message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed gRPC frame: {0}")]
    Malformed(&'static str),
    /// A compressed message (`grpc-encoding`): the gateway cannot inspect it.
    #[error("clipgate cannot rewrite compressed gRPC messages (grpc-encoding); send this method uncompressed")]
    Compressed,
}

/// The single message of a unary request or reply body.
pub fn single(body: &[u8]) -> Result<&[u8], FrameError> {
    let header = body
        .get(..5)
        .ok_or(FrameError::Malformed("body shorter than a frame header"))?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if body.len() != 5 + len {
        return Err(FrameError::Malformed(
            "body is not exactly one length-prefixed message",
        ));
    }
    match header[0] {
        0 => Ok(&body[5..]),
        1 => Err(FrameError::Compressed),
        _ => Err(FrameError::Malformed("unknown compression flag")),
    }
}

/// `message` as one uncompressed frame.
pub fn encode(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let framed = encode(b"abc");
        assert_eq!(single(&framed), Ok(&b"abc"[..]));
        assert!(single(&framed[..6]).is_err());
        assert!(single(&[0, 0, 0]).is_err());
        let mut compressed = framed.to_vec();
        compressed[0] = 1;
        assert_eq!(single(&compressed), Err(FrameError::Compressed));
        let mut two = framed.to_vec();
        two.extend_from_slice(&framed);
        assert!(single(&two).is_err());
    }
}
