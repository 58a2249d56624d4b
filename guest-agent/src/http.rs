//! HTTP plumbing shared by the handlers: bodies, JSON in and out, frame streams, queries.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use proto::error::ErrorCode;
use proto::frame::MAX_FRAME_BYTES;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub use agent_client::frames::FrameReader;

use crate::error::{Error, Result};

/// Every response body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Largest JSON request body: 1 MiB, like a frame.
const JSON_BODY_LIMIT: usize = MAX_FRAME_BYTES;

/// A 200 with a JSON body.
pub fn json<T: Serialize>(value: &T) -> Result<Response<Body>> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::api(ErrorCode::Internal, format!("encoding response: {e}")))?;
    Ok(with_type(StatusCode::OK, full(bytes), "application/json"))
}

/// The error response of `err`.
pub fn error_response(err: &Error) -> Response<Body> {
    let status =
        StatusCode::from_u16(err.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = serde_json::to_vec(&err.body()).unwrap_or_else(|_| b"{}".to_vec());
    with_type(status, full(bytes), "application/json")
}

/// A 200 whose body is whatever arrives on the returned sender, until it is dropped.
pub fn streaming(
    content_type: &'static str,
    capacity: usize,
) -> (mpsc::Sender<Bytes>, Response<Body>) {
    let (tx, rx) = mpsc::channel::<Bytes>(capacity);
    let stream = futures_util::StreamExt::map(ReceiverStream::new(rx), |bytes| {
        Ok::<_, std::io::Error>(Frame::data(bytes))
    });
    let body = BodyExt::boxed(StreamBody::new(stream));
    (tx, with_type(StatusCode::OK, body, content_type))
}

/// A whole body of already-encoded frames.
pub fn frames(bytes: Vec<u8>) -> Response<Body> {
    with_type(StatusCode::OK, full(bytes), proto::FRAMES_CONTENT_TYPE)
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed()
}

fn with_type(status: StatusCode, body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Reads a whole JSON body of at most 1 MiB.
pub async fn read_json<T: DeserializeOwned>(body: Incoming) -> Result<T> {
    let bytes = Limited::new(body, JSON_BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Error::api(ErrorCode::TooLarge, "body is over the limit of 1 MiB")
            } else {
                Error::bad_request(format!("reading body: {e}"))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("invalid json body: {e}")))
}

/// Parses the query string into `T`; a missing query parses as empty.
pub fn query<T: DeserializeOwned>(uri: &http::Uri) -> Result<T> {
    serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| Error::bad_request(format!("invalid query: {e}")))
}

/// Encodes a frame for a response stream. Messages the agent builds never exceed the frame
/// limit, so a failure here is a bug worth an internal error, not a panic.
pub fn frame<T: Serialize>(message: &T) -> Result<Bytes> {
    proto::frame::encode(message)
        .map(Bytes::from)
        .map_err(|e| Error::api(ErrorCode::Internal, format!("encoding frame: {e}")))
}
