//! Integration tests: the real `guest-agent` binary on a unix socket, driven by the typed
//! client over the real protocol. One test binary, one module per area.

mod browser;
mod common;
mod exec;
mod files;
mod flow_control;
mod guest;
mod ports;
mod routes;
mod run;
mod terminals;
