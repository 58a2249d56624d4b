//! Integration tests of `flint image build`: the real binary running the real mmdebstrap.
//!
//! One real build per run (about half a minute): `images/test.toml`, asked for twice at once,
//! checked, then asked for again. The other tests fail before mmdebstrap starts.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use server::images::{load_spec, spec_dir};

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ sits in the workspace")
}

/// `flint image build SPEC --data-dir DATA_DIR`, with `path` as `$PATH` when given.
fn image_build(spec: &Path, data_dir: &Path, path: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flint"));
    command
        .args(["image", "build"])
        .arg(spec)
        .arg("--data-dir")
        .arg(data_dir)
        .env("FLINT_LOG", "warn");
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.output().expect("run flint image build")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn test_image_is_built_with_its_files_then_cached() {
    let data = tempfile::tempdir().expect("tempdir");
    let spec_path = workspace_root().join("images/test.toml");
    let spec = load_spec(&spec_path).expect("images/test.toml is valid");

    // Leftovers of a build that died half-way: both are replaced, not trusted.
    let image_dir = spec_dir(data.path(), &spec);
    for leftover in ["rootfs.partial", "rootfs"] {
        fs::create_dir_all(image_dir.join(leftover)).expect("mkdir");
        fs::write(image_dir.join(leftover).join("leftover"), "").expect("write");
    }

    // Two builds of one spec at once: one builds, the other waits for it and reuses it.
    let spawn = || {
        let data = data.path().to_owned();
        let spec_path = spec_path.clone();
        std::thread::spawn(move || image_build(&spec_path, &data, None))
    };
    let (a, b) = (spawn(), spawn());
    let outputs = [a.join().expect("first"), b.join().expect("second")];
    let mut built = 0;
    for output in &outputs {
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "build failed:\n{stderr}");
        if stderr.contains("built image test") {
            built += 1;
        } else {
            assert!(stderr.contains("image test is cached"), "{stderr}");
        }
    }
    assert_eq!(built, 1, "exactly one of two concurrent builds runs mmdebstrap");
    assert_eq!(text(&outputs[0].stdout), text(&outputs[1].stdout));
    let rootfs = PathBuf::from(text(&outputs[0].stdout).trim());
    assert_eq!(rootfs, image_dir.join("rootfs"));

    // What the packages put there (bookworm has merged /usr: /bin is a link to usr/bin).
    for program in ["bin/bash", "usr/bin/tini", "usr/bin/python3", "usr/bin/ps"] {
        assert!(rootfs.join(program).is_file(), "no /{program} in the image");
    }
    // What Flint adds: its mount points, empty.
    for dir in ["workspace", "opt/flint"] {
        let entries =
            fs::read_dir(rootfs.join(dir)).unwrap_or_else(|e| panic!("/{dir}: {e}")).count();
        assert_eq!(entries, 0, "/{dir} is not empty");
    }
    // What the spec asks for.
    assert!(!spec.files.is_empty() && !spec.env.is_empty());
    for (path, contents) in &spec.files {
        let written = fs::read_to_string(rootfs.join(path.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(&written, contents, "{path}");
    }
    let environment = fs::read_to_string(rootfs.join("etc/environment")).expect("environment");
    for (key, value) in &spec.env {
        assert!(
            environment.lines().any(|line| line == format!("{key}=\"{value}\"")),
            "{key} missing from /etc/environment:\n{environment}"
        );
    }
    assert!(image_dir.join(".complete").is_file());
    assert!(!image_dir.join("rootfs.partial").exists());
    assert!(!rootfs.join("leftover").exists());

    // The same spec again: nothing is rebuilt, the same tree is handed out.
    let before = fs::metadata(&rootfs).expect("stat rootfs");
    let second = image_build(&spec_path, data.path(), None);
    let stderr = text(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains("image test is cached"), "{stderr}");
    assert_eq!(PathBuf::from(text(&second.stdout).trim()), rootfs);
    let after = fs::metadata(&rootfs).expect("stat rootfs");
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec())
    );
}

#[test]
fn invalid_specs_fail_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cases = [
        ("typo.toml", "name = \"x\"\nsuite = \"bookworm\"\npackges = [\"bash\"]\n", "packges"),
        ("nameless.toml", "suite = \"bookworm\"\n", "missing field `name`"),
        (
            "escape.toml",
            "name = \"x\"\nsuite = \"bookworm\"\n[files]\n\"/etc/../../x\" = \"\"\n",
            "files",
        ),
    ];
    for (file, spec, expected) in cases {
        let spec_path = dir.path().join(file);
        fs::write(&spec_path, spec).expect("write spec");
        let output = image_build(&spec_path, &data, None);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{file} was accepted");
        assert!(stderr.contains(expected) && stderr.contains(file), "{file}: {stderr}");
    }
    assert!(!data.exists(), "a refused spec touched the data directory");
}

#[test]
fn missing_mmdebstrap_says_how_to_install_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty_path = dir.path().join("bin");
    fs::create_dir(&empty_path).expect("mkdir");
    let data = dir.path().join("data");
    let output = image_build(&workspace_root().join("images/test.toml"), &data, Some(&empty_path));
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("apt-get install mmdebstrap"), "{stderr}");
    assert!(!data.exists(), "a build that could not start touched the data directory");
}
