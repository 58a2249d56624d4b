//! What an [`Action`](super::Action) produced, and its JSON.

use agent_client::client::Client;
use proto::api::{ActivityEvent, ExecResult, Me, NewToken, SessionInfo};
use proto::files::{FileList, FileStat};
use proto::ports::PortList;
use proto::terminal::TerminalInfo;

use crate::error::{AppError, Result};
use crate::store::ApiToken;

/// What an action produced.
pub enum Outcome {
    /// `WhoAmI`
    Me(Me),
    /// `ServerInfo`
    Server(proto::api::ServerInfo),
    /// `CreateToken`: the only time the secret is shown.
    NewToken(NewToken),
    /// `ListTokens`
    Tokens(Vec<ApiToken>),
    /// A session.
    Session(SessionInfo),
    /// Sessions.
    Sessions(Vec<SessionInfo>),
    /// `Vec<ImageInfo>`
    Images(Vec<proto::api::ImageInfo>),
    /// A terminal.
    Terminal(TerminalInfo),
    /// Terminals.
    Terminals(Vec<TerminalInfo>),
    /// A running session's agent.
    Agent(Client),
    /// `ExportWorkspace`: a tar stream.
    Tarball(crate::sessions::ByteStream),
    /// A command's collected output.
    ExecResult(ExecResult),
    /// A directory listing.
    Files(FileList),
    /// One path's metadata.
    Stat(FileStat),
    /// Listening ports.
    Ports(PortList),
    /// Audit events.
    Events(Vec<ActivityEvent>),
    /// Ports as previews.
    Previews(Vec<proto::api::PreviewPort>),
    /// One port's preview.
    Preview(proto::api::PreviewPort),
    /// A new share link.
    Share(proto::api::ShareLink),
    /// Done, nothing to say.
    Done,
}

impl Outcome {
    /// The outcome as a JSON value (an agent client has none).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        let value = match self {
            Outcome::Me(me) => serde_json::to_value(me),
            Outcome::Server(info) => serde_json::to_value(info),
            Outcome::NewToken(token) => serde_json::to_value(token),
            Outcome::Tokens(tokens) => serde_json::to_value(tokens),
            Outcome::Session(session) => serde_json::to_value(session),
            Outcome::Sessions(sessions) => serde_json::to_value(sessions),
            Outcome::Images(images) => serde_json::to_value(images),
            Outcome::Terminal(terminal) => serde_json::to_value(terminal),
            Outcome::Terminals(terminals) => serde_json::to_value(terminals),
            Outcome::ExecResult(result) => serde_json::to_value(result),
            Outcome::Files(files) => serde_json::to_value(files),
            Outcome::Stat(stat) => serde_json::to_value(stat),
            Outcome::Ports(ports) => serde_json::to_value(ports),
            Outcome::Events(events) => serde_json::to_value(events),
            Outcome::Previews(previews) => serde_json::to_value(previews),
            Outcome::Preview(preview) => serde_json::to_value(preview),
            Outcome::Share(share) => serde_json::to_value(share),
            Outcome::Agent(_) | Outcome::Tarball(_) | Outcome::Done => Ok(serde_json::Value::Null),
        };
        value.map_err(AppError::internal)
    }
}
