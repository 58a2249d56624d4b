//! What every server test binary needs: the workspace's guest-agent binary and the test
//! image, both built once and shared.

pub mod client;
pub mod uplink;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The guest-agent binary of this workspace, built if missing (`cargo test -p server` alone
/// does not build other packages' binaries).
pub fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = target_dir().join("debug/guest-agent");
        if !bin.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "-p", "guest-agent"])
                .status()
                .expect("cargo build -p guest-agent");
            assert!(status.success(), "building guest-agent failed");
        }
        bin
    })
    .clone()
}

/// The repository's image specs.
pub fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images")
}

/// A data directory holding the built test image (`images/test.toml`), built once per
/// machine and spec: tests link its `images/` into their own data directories.
pub fn image_cache() -> PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| build_image("test")).clone()
}

/// Builds `images/NAME.toml` into the shared cache (once per spec: cached by its hash);
/// the cache's data directory.
pub fn build_image(name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let data = target_dir().join("flint-test-data");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flint"))
        .args(["image", "build"])
        .arg(images_dir().join(format!("{name}.toml")))
        .arg("--data-dir")
        .arg(&data)
        .env("FLINT_LOG", "warn")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run flint image build");
    assert!(output.status.success(), "building the {name} image failed");
    data
}

/// The test image's root filesystem.
pub fn test_rootfs() -> PathBuf {
    let images = image_cache().join("images");
    let entry = std::fs::read_dir(&images)
        .expect("image cache")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test-"))
                && p.join("rootfs").is_dir()
        })
        .expect("a built test image");
    entry.join("rootfs")
}

/// Links the shared image cache into a fresh data directory.
pub fn link_images(data_dir: &Path) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    std::os::unix::fs::symlink(image_cache().join("images"), data_dir.join("images"))
        .expect("link images");
}
