//! Wire types shared by the Flint server, the web app and the guest agent.
//!
//! **Architecture invariant:** this crate knows nothing about tokio, hyper or any I/O. It is
//! serde types, the agent's route table and the length-prefixed frame codec, so it builds for
//! wasm and for the in-guest agent alike.

pub mod api;
pub mod audit;
pub mod browser;
pub mod error;
pub mod exec;
pub mod files;
pub mod frame;
#[doc(hidden)]
pub mod fuzz;
pub mod info;
pub mod people;
pub mod ports;
pub mod routes;
pub mod terminal;

/// Version of the host↔agent API. Bump it on any incompatible change to a route, a body or a
/// frame in this crate; the server refuses an agent whose version it does not speak.
pub const AGENT_API_VERSION: u32 = 1;

/// Header on every agent response carrying [`AGENT_API_VERSION`].
pub const AGENT_API_VERSION_HEADER: &str = "x-flint-agent-api";

/// Media type of a body made of length-prefixed frames (see [`frame`]).
pub const FRAMES_CONTENT_TYPE: &str = "application/x-flint-frames";

/// Exit status of a shell or a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExitStatus {
    /// Exit code, when the process exited normally.
    pub code: Option<i32>,
    /// Signal number, when the process was killed by a signal.
    pub signal: Option<i32>,
    /// True when the agent killed the process because its timeout expired.
    #[serde(default)]
    pub timed_out: bool,
}

impl ExitStatus {
    /// True for a normal exit with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}
