//! The Flint guest agent: the daemon inside every sandbox.
//!
//! It serves the API declared in [`proto::routes`] as HTTP/2 with prior knowledge over one byte
//! stream (see [`listen`]), to one client that presents the session's secret. Everything a
//! session does inside its sandbox — shared terminals, commands, files, ports, tunnels — goes
//! through it. [`client`] is the typed client the server (and the tests) speak it with.

pub mod client;
pub mod error;
pub mod listen;
pub mod server;

mod attach;
mod exec;
mod files;
mod http;
mod info;
mod ports;
mod ring;
mod terminal;
mod tunnel;

pub use error::Error;
