//! Length-prefixed frame streams read from an HTTP body: requests in the agent, responses in
//! the client ([`proto::frame`] is the format).

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use proto::frame::FrameDecoder;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Reads length-prefixed frames from a streamed body (requests in the agent, responses in
/// the client).
pub struct FrameReader {
    body: Incoming,
    decoder: FrameDecoder,
    ended: bool,
}

impl FrameReader {
    /// Wraps a request body.
    pub fn new(body: Incoming) -> FrameReader {
        FrameReader { body, decoder: FrameDecoder::new(), ended: false }
    }

    /// The next frame; `Ok(None)` at a clean end of the body.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            if let Some(message) = self.decoder.next_message::<T>()? {
                return Ok(Some(message));
            }
            if self.ended {
                self.decoder.finish()?;
                return Ok(None);
            }
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(e)) => return Err(Error::Transport(format!("reading body: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                    }
                }
            }
        }
    }
}
