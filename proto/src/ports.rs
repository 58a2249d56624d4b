//! Listening TCP ports seen in the guest, as a list and as events.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Listener {
    /// The address it listens on (`0.0.0.0`, `::`, `127.0.0.1`, `::1`, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: IpAddr,
    /// The port.
    pub port: u16,
    /// The owning process, when it could be found.
    pub pid: Option<u32>,
    /// The owning process's name (`comm`), when it could be found.
    pub process: Option<String>,
}

/// `GET /v1/ports` response, sorted by port then address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortList {
    /// Listening sockets.
    pub listeners: Vec<Listener>,
}

/// Frames of `GET /v1/ports/events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortEvent {
    /// Every listener now. The first frame, and sent again after a client fell behind.
    Snapshot(Vec<Listener>),
    /// A socket started listening.
    Opened(Listener),
    /// A socket stopped listening.
    Closed {
        /// Its address.
        address: IpAddr,
        /// Its port.
        port: u16,
    },
}
