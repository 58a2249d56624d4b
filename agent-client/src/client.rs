//! A typed client of the agent API over one HTTP/2 connection: what the server and the tests
//! speak to an agent with. Every call maps an error response back to [`Error::Api`].

use std::marker::PhantomData;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use proto::audit::{GuestReport, ReportQueued, ToolReport};
use proto::browser::{
    BrowserStatus, Click, ConsoleLog, ConsoleQuery, InputDone, InputEvent, Navigate, NewTab,
    PageInfo, PageText, ScreencastEvent, ScreencastQuery, TabId, TabInfo, TabList, TypeText,
};
use proto::error::{ErrorBody, ErrorCode};
use proto::exec::{ExecDown, ExecRequest, ExecUp};
use proto::files::{
    Done, FileList, FileStat, ListQuery, MkdirRequest, MoveRequest, PathQuery, ReadQuery,
    RemoveRequest, WriteQuery,
};
use proto::info::AgentInfo;
use proto::ports::{PortEvent, PortList};
use proto::routes::Route;
use proto::terminal::{
    AttachDown, AttachQuery, AttachUp, CreateTerminal, InputWritten, OutputQuery, RunCommand,
    RunResult, Screen, Size, TerminalId, TerminalInfo, TerminalList,
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{Error, Result};
use crate::frames::FrameReader;
use crate::link::{
    CONNECTION_WINDOW_BYTES, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MAX_FRAME_BYTES, MAX_STREAMS,
    STREAM_WINDOW_BYTES,
};
use crate::listen::{Listen, Stream};

/// Every request body the client sends.
pub type ClientBody = BoxBody<Bytes, std::io::Error>;

/// Chunks queued on a streamed request body before the sender waits.
const SEND_QUEUE: usize = 16;

/// An empty body.
pub fn empty() -> ClientBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ClientBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A streamed body: what is sent on the returned sender, until it is dropped.
pub fn channel_body() -> (mpsc::Sender<Bytes>, ClientBody) {
    let (tx, rx) = mpsc::channel::<Bytes>(SEND_QUEUE);
    let stream = futures_util::StreamExt::map(ReceiverStream::new(rx), |bytes| {
        Ok::<_, std::io::Error>(Frame::data(bytes))
    });
    (tx, StreamBody::new(stream).boxed())
}

/// A streamed body that can also fail: an `Err` resets the stream, so the agent sees an
/// aborted upload (and keeps the old file) rather than a short one.
pub fn fallible_channel_body() -> (mpsc::Sender<std::io::Result<Bytes>>, ClientBody) {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(SEND_QUEUE);
    let stream =
        futures_util::StreamExt::map(ReceiverStream::new(rx), |chunk| chunk.map(Frame::data));
    (tx, StreamBody::new(stream).boxed())
}

fn transport(e: impl std::fmt::Display) -> Error {
    Error::Transport(e.to_string())
}

/// The largest JSON answer read from an agent (a deep file listing, a command's collected
/// output): the server holds it whole, and the agent is the guest's, so it is bounded.
pub const JSON_RESPONSE_MAX: usize = 16 << 20;

/// The largest file read whole (`Client::read`, for an agent's MCP tools; the REST API
/// streams) and the largest screenshot.
pub const WHOLE_BODY_MAX: usize = 32 << 20;

/// `body` whole, refused past `max` bytes with `TooLarge` naming the limit.
async fn collect_limited(body: Incoming, max: usize, what: &str) -> Result<Bytes> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(Error::api(
                ErrorCode::TooLarge,
                format!("the agent's {what} is over the limit of {} MiB", max >> 20),
            ))
        }
        Err(e) => Err(transport(e)),
    }
}

/// One HTTP/2 connection to an agent.
#[derive(Clone)]
pub struct Client {
    sender: SendRequest<ClientBody>,
    /// `None` on the restricted in-sandbox socket, which takes no secret.
    authorization: Option<HeaderValue>,
}

impl Client {
    /// Connects to an agent listening at `listen`.
    pub async fn connect(listen: &Listen, secret: &str) -> Result<Client> {
        let stream: Box<dyn Stream> = match listen {
            Listen::Unix(path) => {
                Box::new(tokio::net::UnixStream::connect(path).await.map_err(transport)?)
            }
            Listen::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.map_err(transport)?;
                stream.set_nodelay(true).map_err(transport)?;
                Box::new(stream)
            }
        };
        Client::handshake(stream, secret).await
    }

    /// Connects to the agent's restricted in-sandbox socket (`serve --guest-listen`), which
    /// needs no secret and serves only [`Route::guest_allowed`] routes.
    pub async fn connect_guest(path: &std::path::Path) -> Result<Client> {
        let stream = tokio::net::UnixStream::connect(path).await.map_err(transport)?;
        Client::handshake_with(Box::new(stream), None).await
    }

    /// Speaks HTTP/2 over an already connected byte stream.
    pub async fn handshake(stream: Box<dyn Stream>, secret: &str) -> Result<Client> {
        let authorization = HeaderValue::from_str(&format!("Bearer {secret}"))
            .map_err(|_| Error::bad_request("the secret is not a valid header value"))?;
        Client::handshake_with(stream, Some(authorization)).await
    }

    async fn handshake_with(
        stream: Box<dyn Stream>,
        authorization: Option<HeaderValue>,
    ) -> Result<Client> {
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .adaptive_window(false)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .max_frame_size(MAX_FRAME_BYTES)
            // Pinged while idle too: a wedged agent is noticed before anyone waits on it.
            .keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            // Streams cancelled here (a browser that aborted a download) still receive the
            // DATA in flight: remember enough of them to drop it quietly, and never close the
            // connection over the resets h2 sends for the rest (see `server::http2_builder`).
            .max_concurrent_reset_streams(MAX_STREAMS as usize)
            .max_local_error_reset_streams(None)
            .max_pending_accept_reset_streams(Some(MAX_STREAMS as usize))
            .handshake(TokioIo::new(stream))
            .await
            .map_err(transport)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("agent connection ended: {e}");
            }
        });
        Ok(Client { sender, authorization })
    }

    /// Whether the connection is gone (closed by either end, or its keepalive went
    /// unanswered): every request on it would fail; connect again.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// A request with the secret set; for callers that need a route's raw response.
    pub fn request(&self, method: http::Method, path_and_query: &str) -> http::request::Builder {
        let builder =
            Request::builder().method(method).uri(format!("http://agent{path_and_query}"));
        match &self.authorization {
            Some(authorization) => builder.header(header::AUTHORIZATION, authorization.clone()),
            None => builder,
        }
    }

    /// Sends a request as it is and returns the raw response.
    pub async fn send(&self, request: Request<ClientBody>) -> Result<Response<Incoming>> {
        let mut sender = self.sender.clone();
        sender.ready().await.map_err(transport)?;
        sender.send_request(request).await.map_err(transport)
    }

    async fn call(
        &self,
        route: Route,
        query: Option<String>,
        body: ClientBody,
    ) -> Result<Incoming> {
        let mut target = route.path();
        if let Some(query) = query {
            target.push('?');
            target.push_str(&query);
        }
        let method = http::Method::from_bytes(route.decl().method.name().as_bytes())
            .map_err(|e| Error::bad_request(e.to_string()))?;
        let request = self.request(method, &target).body(body).map_err(transport)?;
        let response = self.send(request).await?;
        if response.status().is_success() {
            return Ok(response.into_body());
        }
        Err(error_from(response).await)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        route: Route,
        query: Option<String>,
        body: ClientBody,
    ) -> Result<T> {
        let body = self.call(route, query, body).await?;
        let bytes = collect_limited(body, JSON_RESPONSE_MAX, "answer").await?;
        serde_json::from_slice(&bytes).map_err(|e| transport(format!("invalid response: {e}")))
    }

    /// `GET /v1/info`
    pub async fn info(&self) -> Result<AgentInfo> {
        self.json(Route::Info, None, empty()).await
    }

    /// `GET /v1/terminals`
    pub async fn terminals(&self) -> Result<Vec<TerminalInfo>> {
        Ok(self.json::<TerminalList>(Route::TerminalList, None, empty()).await?.terminals)
    }

    /// `POST /v1/terminals`
    pub async fn create_terminal(&self, request: &CreateTerminal) -> Result<TerminalInfo> {
        self.json(Route::TerminalCreate, None, json_body(request)?).await
    }

    /// `GET /v1/terminals/{id}`
    pub async fn terminal(&self, id: &TerminalId) -> Result<TerminalInfo> {
        self.json(Route::TerminalGet(id.clone()), None, empty()).await
    }

    /// `DELETE /v1/terminals/{id}`
    pub async fn kill_terminal(&self, id: &TerminalId) -> Result<TerminalInfo> {
        self.json(Route::TerminalKill(id.clone()), None, empty()).await
    }

    /// `POST /v1/terminals/{id}/resize`
    pub async fn resize_terminal(&self, id: &TerminalId, size: Size) -> Result<TerminalInfo> {
        self.json(Route::TerminalResize(id.clone()), None, json_body(&size)?).await
    }

    /// `GET /v1/terminals/{id}/screen`
    pub async fn screen(&self, id: &TerminalId) -> Result<Screen> {
        self.json(Route::TerminalScreen(id.clone()), None, empty()).await
    }

    /// `GET /v1/terminals/{id}/output`: output `from..to` still in the scrollback.
    pub async fn output(
        &self,
        id: &TerminalId,
        range: OutputQuery,
    ) -> Result<FrameStream<AttachDown>> {
        let query = encode_query(&range)?;
        Ok(FrameStream::new(
            self.call(Route::TerminalOutput(id.clone()), Some(query), empty()).await?,
        ))
    }

    /// `POST /v1/terminals/{id}/attach`
    pub async fn attach(
        &self,
        id: &TerminalId,
        query: AttachQuery,
    ) -> Result<(FrameSender<AttachUp>, FrameStream<AttachDown>)> {
        let (tx, body) = channel_body();
        let output =
            self.call(Route::TerminalAttach(id.clone()), Some(encode_query(&query)?), body).await?;
        Ok((FrameSender::new(tx), FrameStream::new(output)))
    }

    /// `POST /v1/terminals/{id}/run`: types `request.command` at the shell's empty prompt and
    /// waits for it to end (or for the timeout: then `timed_out` and the command runs on).
    pub async fn run(&self, id: &TerminalId, request: &RunCommand) -> Result<RunResult> {
        self.json(Route::TerminalRun(id.clone()), None, json_body(request)?).await
    }

    /// `POST /v1/terminals/{id}/input`: raw keys, written to the pty as if typed.
    pub async fn input(&self, id: &TerminalId, keys: impl Into<Bytes>) -> Result<InputWritten> {
        self.json(Route::TerminalInput(id.clone()), None, full(keys)).await
    }

    /// `POST /v1/exec`, streaming: frames up (stdin) and down (output, exit).
    pub async fn exec(
        &self,
        request: ExecRequest,
    ) -> Result<(FrameSender<ExecUp>, FrameStream<ExecDown>)> {
        let (tx, body) = channel_body();
        let input = FrameSender::new(tx);
        input.send(&ExecUp::Start(request)).await?;
        let output = self.call(Route::Exec, None, body).await?;
        Ok((input, FrameStream::new(output)))
    }

    /// `POST /v1/exec` in collect mode, without stdin: the one `Finished` frame.
    pub async fn exec_collect(&self, mut request: ExecRequest) -> Result<ExecDown> {
        request.collect = true;
        request.stdin = false;
        let (input, mut output) = self.exec(request).await?;
        drop(input);
        while let Some(frame) = output.next().await? {
            match frame {
                ExecDown::Started { .. } => continue,
                ExecDown::Error(message) => return Err(Error::api(ErrorCode::Internal, message)),
                last => return Ok(last),
            }
        }
        Err(transport("exec stream ended without a result"))
    }

    /// `GET /v1/files/stat`
    pub async fn stat(&self, path: &str) -> Result<FileStat> {
        let query = encode_query(&PathQuery { path: path.to_owned() })?;
        self.json(Route::FileStat, Some(query), empty()).await
    }

    /// `GET /v1/files/list`
    pub async fn list(&self, path: &str, depth: Option<u32>) -> Result<FileList> {
        let query = encode_query(&ListQuery { path: path.to_owned(), depth })?;
        self.json(Route::FileList, Some(query), empty()).await
    }

    /// `GET /v1/files/read`, as a stream.
    pub async fn read_stream(&self, query: &ReadQuery) -> Result<Incoming> {
        self.call(Route::FileRead, Some(encode_query(query)?), empty()).await
    }

    /// `GET /v1/files/read`, whole.
    pub async fn read(&self, path: &str) -> Result<Bytes> {
        let query = ReadQuery { path: path.to_owned(), offset: None, length: None };
        let body = self.read_stream(&query).await?;
        collect_limited(body, WHOLE_BODY_MAX, "file").await
    }

    /// `PUT /v1/files/write` from any body.
    pub async fn write_body(&self, query: &WriteQuery, body: ClientBody) -> Result<FileStat> {
        self.json(Route::FileWrite, Some(encode_query(query)?), body).await
    }

    /// `PUT /v1/files/write` of these bytes.
    pub async fn write(&self, path: &str, bytes: impl Into<Bytes>) -> Result<FileStat> {
        let query = WriteQuery { path: path.to_owned(), mode: None, ..WriteQuery::default() };
        self.write_body(&query, full(bytes)).await
    }

    /// `POST /v1/files/mkdir`
    pub async fn mkdir(&self, path: &str) -> Result<Done> {
        self.json(Route::FileMkdir, None, json_body(&MkdirRequest { path: path.to_owned() })?).await
    }

    /// `POST /v1/files/move`
    pub async fn rename(&self, request: &MoveRequest) -> Result<Done> {
        self.json(Route::FileMove, None, json_body(request)?).await
    }

    /// `POST /v1/files/remove`
    pub async fn remove(&self, request: &RemoveRequest) -> Result<Done> {
        self.json(Route::FileRemove, None, json_body(request)?).await
    }

    /// `GET /v1/files/tar`, as a stream.
    pub async fn tar(&self, path: &str) -> Result<Incoming> {
        let query = encode_query(&PathQuery { path: path.to_owned() })?;
        self.call(Route::FileTar, Some(query), empty()).await
    }

    /// `GET /v1/ports`
    pub async fn ports(&self) -> Result<PortList> {
        self.json(Route::PortList, None, empty()).await
    }

    /// `GET /v1/ports/events`
    pub async fn port_events(&self) -> Result<FrameStream<PortEvent>> {
        Ok(FrameStream::new(self.call(Route::PortEvents, None, empty()).await?))
    }

    /// `POST /v1/audit`: reports a tool call of the in-sandbox MCP server; returns its
    /// sequence number.
    pub async fn report(&self, report: &ToolReport) -> Result<ReportQueued> {
        self.json(Route::AuditReport, None, json_body(report)?).await
    }

    /// `GET /v1/audit/events`: every report the agent holds, then new ones live.
    pub async fn audit_events(&self) -> Result<FrameStream<GuestReport>> {
        Ok(FrameStream::new(self.call(Route::AuditEvents, None, empty()).await?))
    }

    /// `GET /v1/browser/status`: whether the shared browser runs (never starts it).
    pub async fn browser_status(&self) -> Result<BrowserStatus> {
        self.json(Route::BrowserStatus, None, empty()).await
    }

    /// `POST /v1/browser/navigate`: loads a URL in the active tab and waits for it.
    pub async fn browser_navigate(&self, request: &Navigate) -> Result<PageInfo> {
        self.json(Route::BrowserNavigate, None, json_body(request)?).await
    }

    /// `POST /v1/browser/click`: a selector or a point of the active tab.
    pub async fn browser_click(&self, request: &Click) -> Result<PageInfo> {
        self.json(Route::BrowserClick, None, json_body(request)?).await
    }

    /// `POST /v1/browser/type`: text into the focused element or a selector.
    pub async fn browser_type(&self, request: &TypeText) -> Result<PageInfo> {
        self.json(Route::BrowserType, None, json_body(request)?).await
    }

    /// `GET /v1/browser/screenshot`: a PNG of the active tab's viewport.
    pub async fn browser_screenshot(&self) -> Result<Bytes> {
        let body = self.call(Route::BrowserScreenshot, None, empty()).await?;
        collect_limited(body, WHOLE_BODY_MAX, "screenshot").await
    }

    /// `GET /v1/browser/text`: the active tab's visible text, URL and title.
    pub async fn browser_text(&self) -> Result<PageText> {
        self.json(Route::BrowserText, None, empty()).await
    }

    /// `GET /v1/browser/console`: console messages after `since` (all held when `None`).
    pub async fn browser_console(&self, since: Option<u64>) -> Result<ConsoleLog> {
        let query = encode_query(&ConsoleQuery { since })?;
        self.json(Route::BrowserConsole, Some(query), empty()).await
    }

    /// `GET /v1/browser/tabs`
    pub async fn browser_tabs(&self) -> Result<TabList> {
        self.json(Route::BrowserTabs, None, empty()).await
    }

    /// `POST /v1/browser/tabs`: opens a tab (loading `url`, if any) and makes it active.
    pub async fn browser_new_tab(&self, request: &NewTab) -> Result<TabInfo> {
        self.json(Route::BrowserNewTab, None, json_body(request)?).await
    }

    /// `DELETE /v1/browser/tabs/{tab}`
    pub async fn browser_close_tab(&self, tab: TabId) -> Result<TabList> {
        self.json(Route::BrowserCloseTab(tab), None, empty()).await
    }

    /// `POST /v1/browser/tabs/{tab}/activate`
    pub async fn browser_activate_tab(&self, tab: TabId) -> Result<TabList> {
        self.json(Route::BrowserActivateTab(tab), None, empty()).await
    }

    /// `POST /v1/browser/input`: one input event on the active tab.
    pub async fn browser_input(&self, event: &InputEvent) -> Result<InputDone> {
        self.json(Route::BrowserInput, None, json_body(event)?).await
    }

    /// `GET /v1/browser/screencast`: frames of the active tab, the newest whenever the
    /// reader is ready for one.
    pub async fn browser_screencast(
        &self,
        query: &ScreencastQuery,
    ) -> Result<FrameStream<ScreencastEvent>> {
        let query = encode_query(query)?;
        Ok(FrameStream::new(self.call(Route::BrowserScreencast, Some(query), empty()).await?))
    }

    /// `POST /v1/tunnels/{port}`: bytes sent on the sender reach the port (dropping it
    /// half-closes), the port's bytes arrive on the body.
    pub async fn tunnel(&self, port: u16) -> Result<(mpsc::Sender<Bytes>, Incoming)> {
        let (tx, body) = channel_body();
        let incoming = self.call(Route::Tunnel(port), None, body).await?;
        Ok((tx, incoming))
    }
}

fn json_body<T: Serialize>(value: &T) -> Result<ClientBody> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::bad_request(e.to_string()))?;
    Ok(full(bytes))
}

fn encode_query<T: Serialize>(value: &T) -> Result<String> {
    serde_urlencoded::to_string(value).map_err(|e| Error::bad_request(e.to_string()))
}

/// Reads an error response into [`Error::Api`].
pub async fn error_from(response: Response<Incoming>) -> Error {
    let status = response.status();
    let bytes = match Limited::new(response.into_body(), 64 << 10).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return transport(format!("status {status}, body unreadable: {e}")),
    };
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Error::api(body.code, body.error),
        Err(_) => Error::api(
            if status == StatusCode::NOT_FOUND { ErrorCode::NotFound } else { ErrorCode::Internal },
            format!("status {status}: {}", String::from_utf8_lossy(&bytes)),
        ),
    }
}

/// Sends typed frames on a streamed request body.
pub struct FrameSender<T> {
    tx: mpsc::Sender<Bytes>,
    _message: PhantomData<fn(T)>,
}

impl<T: Serialize> FrameSender<T> {
    fn new(tx: mpsc::Sender<Bytes>) -> FrameSender<T> {
        FrameSender { tx, _message: PhantomData }
    }

    /// Sends one frame.
    pub async fn send(&self, message: &T) -> Result<()> {
        let bytes = proto::frame::encode(message)?;
        self.send_raw(Bytes::from(bytes)).await
    }

    /// Sends bytes as they are (to test how the agent meets a bad frame).
    pub async fn send_raw(&self, bytes: Bytes) -> Result<()> {
        self.tx.send(bytes).await.map_err(|_| transport("request stream closed"))
    }
}

/// Reads typed frames from a streamed response body.
pub struct FrameStream<T> {
    reader: FrameReader,
    _message: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> FrameStream<T> {
    fn new(body: Incoming) -> FrameStream<T> {
        FrameStream { reader: FrameReader::new(body), _message: PhantomData }
    }

    /// The next frame, or `None` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<T>> {
        self.reader.next::<T>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer claiming to be an agent answers `/v1/info` with `size` bytes.
    async fn answering(size: usize) -> Client {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request| async move {
                let body = Full::new(Bytes::from(vec![b' '; size]));
                Ok::<_, std::convert::Infallible>(Response::new(body))
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(theirs), service)
                .await;
        });
        Client::handshake(Box::new(ours), "secret").await.expect("handshake")
    }

    #[tokio::test]
    async fn an_agents_answer_past_the_limit_is_refused_with_the_limit() {
        let client = answering(JSON_RESPONSE_MAX + 1).await;
        let error = client.info().await.expect_err("over the limit");
        assert_eq!(error.code(), ErrorCode::TooLarge, "{error}");
        assert!(error.to_string().contains("16 MiB"), "{error}");
        // Under it, the answer is read (and here is no JSON).
        let client = answering(1 << 20).await;
        let error = client.info().await.expect_err("not JSON");
        assert_ne!(error.code(), ErrorCode::TooLarge, "{error}");
    }
}
