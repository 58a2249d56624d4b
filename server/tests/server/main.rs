//! Integration tests: the real `flint` binary with a real SQLite store, over real HTTP.

mod auth;
mod browser;
mod common;
mod files;
mod gvisor;
mod host_dir;
mod kernel_surface;
mod mcp;
mod network;
mod openapi;
mod people;
mod pool;
mod preview;
mod preview_hosts;
mod sessions;
mod sturdy;
#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;
mod terminal_ws;
mod trust;
