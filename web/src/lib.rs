//! The Flint web app (Leptos, client-side rendered, built by Trunk): sign-in state, the
//! sessions list and the workspace of one session with its terminal tabs, the shared
//! browser, its files in an editor, its agents' activity and its listening ports.
//!
//! Everything goes through the server's REST and websocket API; wire types come from
//! `proto`, never copied by hand.

pub mod agent;
pub mod api;
pub mod app;
pub mod auth;
pub mod browser;
pub mod clipboard;
pub mod clock;
pub mod confirm;
pub mod events;
pub mod files;
pub mod notice;
pub mod people;
pub mod ports;
pub mod sessions;
pub mod socket;
pub mod terminal;
pub mod workspace;

pub use app::App;
