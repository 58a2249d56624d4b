//! Integration tests: the real `flint` binary with a real SQLite store, over real HTTP.

mod auth;
mod common;
