//! What talks to the Flint guest agent, apart from the agent itself: the typed [`client`]
//! the server (and the tests) speak it with, the agent link's HTTP/2 settings both ends
//! share ([`link`]), listen addresses ([`listen`]), the [`error`] type, the certificate
//! bundle parser ([`trust`]) and the MCP tools ([`mcp`]), which the server serves over
//! Streamable HTTP and the agent over stdio inside the sandbox.
//!
//! **Architecture invariant:** nothing here drives Chromium, owns a pty or reads netlink:
//! those stay in the `guest-agent` binary, so the server links none of them.

pub mod client;
pub mod error;
pub mod frames;
pub mod link;
pub mod listen;
pub mod mcp;
pub mod trust;

pub use error::Error;
