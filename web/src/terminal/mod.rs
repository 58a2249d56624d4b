//! Terminal tabs: xterm.js bindings, output offset tracking, and the reconnecting link to a
//! shell.

pub mod conn;
pub mod cursor;
pub mod xterm;
