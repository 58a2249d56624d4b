//! The frame codec of streamed bodies: a 4-byte big-endian length, then that many bytes of
//! postcard-encoded message.
//!
//! postcard is a compact serde format in which `serde_bytes` payloads are raw bytes behind a
//! varint length, so terminal output and file data cross as bytes, not as JSON arrays.

use serde::{Serialize, de::DeserializeOwned};

/// Largest frame payload accepted or produced: 1 MiB.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Bytes of the length prefix.
pub const PREFIX_BYTES: usize = 4;

/// What can go wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME_BYTES`].
    TooLarge(usize),
    /// The payload does not decode as the expected message.
    Malformed(String),
    /// The stream ended inside a frame.
    Truncated,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes is over the limit of {MAX_FRAME_BYTES}")
            }
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
            FrameError::Truncated => f.write_str("stream ended inside a frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes one message as a prefixed frame.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; PREFIX_BYTES];
    out = postcard::to_extend(message, out).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = out.len() - PREFIX_BYTES;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge(len))?.to_be_bytes();
    out[..PREFIX_BYTES].copy_from_slice(&prefix);
    Ok(out)
}

/// Splits a byte stream into frames. Feed it chunks as they arrive with [`push`], take
/// messages with [`next`].
///
/// [`push`]: FrameDecoder::push
/// [`next`]: FrameDecoder::next_message
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame's payload, if one is buffered. A too-large length is an error
    /// at once, before its bytes arrive.
    pub fn next_payload(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let available = &self.buf[self.start..];
        let Some(prefix) = available.first_chunk::<PREFIX_BYTES>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        if available.len() < PREFIX_BYTES + len {
            return Ok(None);
        }
        let begin = self.start + PREFIX_BYTES;
        self.start = begin + len;
        Ok(Some(&self.buf[begin..begin + len]))
    }

    /// The next whole frame, decoded.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_payload()? {
            None => Ok(None),
            Some(payload) => postcard::from_bytes(payload)
                .map(Some)
                .map_err(|e| FrameError::Malformed(e.to_string())),
        }
    }

    /// Call at the end of the stream: an error if a partial frame is left.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buffered() == 0 { Ok(()) } else { Err(FrameError::Truncated) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::{AttachDown, AttachUp, Size};
    use serde_bytes::ByteBuf;

    #[test]
    fn frames_round_trip_when_split_at_every_byte() {
        let messages = vec![
            AttachDown::Output { offset: 7, data: ByteBuf::from(b"hello\x00\xff".to_vec()) },
            AttachDown::Resized(Size { cols: 80, rows: 24 }),
            AttachDown::Missed { from: 1, to: 9 },
        ];
        let mut wire = Vec::new();
        for m in &messages {
            wire.extend(encode(m).expect("encode"));
        }
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for byte in &wire {
            decoder.push(std::slice::from_ref(byte));
            while let Some(m) = decoder.next_message::<AttachDown>().expect("decode") {
                got.push(m);
            }
        }
        assert_eq!(got, messages);
        decoder.finish().expect("no partial frame");
    }

    #[test]
    fn bytes_travel_as_bytes_not_as_numbers() {
        let data = vec![0xabu8; 1000];
        let frame = encode(&AttachUp::Input(ByteBuf::from(data))).expect("encode");
        // prefix + variant + varint length (2) + payload
        assert_eq!(frame.len(), PREFIX_BYTES + 1 + 2 + 1000);
    }

    #[test]
    fn oversized_length_is_refused_before_the_payload_arrives() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&((MAX_FRAME_BYTES as u32) + 1).to_be_bytes());
        assert_eq!(
            decoder.next_message::<AttachUp>(),
            Err(FrameError::TooLarge(MAX_FRAME_BYTES + 1))
        );
    }

    #[test]
    fn garbage_payload_is_malformed_and_partial_frame_is_truncated() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&[0, 0, 0, 2, 0xee, 0xee]);
        assert!(matches!(decoder.next_message::<AttachUp>(), Err(FrameError::Malformed(_))));
        decoder.push(&[0, 0, 0, 9, 1]);
        assert_eq!(decoder.next_message::<AttachUp>(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated));
    }
}
