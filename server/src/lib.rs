//! The Flint control plane: `flint serve` and the pieces behind it.
//!
//! [`app::app`] builds the HTTP router; [`core`] holds the one [`core::Action`] enum every
//! transport (REST now; websockets, MCP and the CLI) translates into; [`store`] is all the SQL.

pub mod activity;
pub mod app;
pub mod auth;
pub mod browser;
pub mod config;
pub mod core;
pub mod drivers;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod images;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod people;
pub mod preview;
pub mod sandbox;
pub mod sessions;
pub mod store;
pub mod web;

mod api;
