//! Sandboxes: where a session's guest agent runs. Today the `process` driver (namespaces,
//! an overlay root, cgroup limits: **weak isolation**); gVisor and micro-VMs come later
//! behind the same shape.

pub mod cgroup;
pub mod process;
pub mod volume;
