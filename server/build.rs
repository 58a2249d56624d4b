//! Builds the shim preloaded in gVisor sandboxes (`src/sandbox/gvisor/preload.c`) with
//! the C compiler Rust links with, so the server carries it (`include_bytes!`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/sandbox/gvisor/preload.c";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(out.join("flint-preload.so"))
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("running {compiler} to build {source}: {e}"));
    assert!(status.success(), "{compiler} could not build {source}");
}
