//! An image spec (`images/*.toml`): parsed strictly, with its `files_from` read beside it,
//! and hashed in canonical form (what names its image directory).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::BUILDER_VERSION;

/// Longest `description`, in characters: one line in a menu.
const DESCRIPTION_MAX: usize = 200;

/// mmdebstrap's package sets (`--variant`), from its manual.
const VARIANTS: &[&str] = &[
    "extract",
    "custom",
    "essential",
    "apt",
    "required",
    "minbase",
    "buildd",
    "important",
    "debootstrap",
    "standard",
];

/// What goes into an image: `images/<name>.toml`, parsed strictly (an unknown field is an
/// error, so a typo never silently builds something else).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The image's name, part of its directory name: `[a-z0-9][a-z0-9._-]*`, at most 64.
    pub name: String,
    /// One line for people choosing an image (`GET /api/images`); not part of the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Debian suite, e.g. `bookworm`.
    pub suite: String,
    /// mmdebstrap's `--variant`: the package set installed before `packages`.
    #[serde(default = "default_variant")]
    pub variant: String,
    /// Debian packages to install (`--include`), with their dependencies but no recommends.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Environment variables, written to `/etc/environment`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Files to write, absolute path in the image → contents (mode 0644).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Files to write whose contents live beside the spec, absolute path in the image → path
    /// relative to the spec's directory, so specs share one copy (the shell integration, which
    /// the agent's tests source too). [`load_spec`] reads them into `files`, so the hash
    /// covers their contents.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_from: BTreeMap<String, String>,
    /// Shell commands run in order inside the image (`chroot`, `sh -e`) once its packages
    /// are installed and before `files` and `env` are written: what apt cannot install, such
    /// as an npm package. They run with the network of the build (the Debian and npm
    /// registries), with a clean environment: `PATH`, `HOME=/root`, `LANG=C.UTF-8`,
    /// `DEBIAN_FRONTEND=noninteractive`, the spec's `env`, and the host's CA bundle as
    /// `SSL_CERT_FILE` and `NODE_EXTRA_CA_CERTS` (for a host behind a TLS-inspecting proxy).
    /// A failing command fails the build. They run as root on the build host (a `chroot` is
    /// no sandbox): a spec is trusted like the server's own code. Order matters, so the hash
    /// keeps it; an empty list is left out of the hash, so specs without `run` keep their
    /// images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<String>,
}

fn default_variant() -> String {
    "apt".to_owned()
}

impl Spec {
    /// Parses and validates the TOML text of a spec.
    pub fn parse(text: &str) -> anyhow::Result<Spec> {
        let spec: Spec = toml::from_str(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// The spec with everything that does not change the image normalised away: the
    /// description dropped, the package list sorted and deduplicated (tables are sorted
    /// already; `run` keeps its order, which is the order its commands run in).
    pub fn canonical(&self) -> Spec {
        let mut spec = self.clone();
        spec.description = None;
        spec.packages.sort();
        spec.packages.dedup();
        spec
    }

    /// Hex SHA-256 of [`BUILDER_VERSION`] and the canonical spec as JSON: the image's
    /// identity. Comments, layout, key order and package order don't change it.
    pub fn hash(&self) -> String {
        // A struct of strings, a list and string-keyed maps: serde_json cannot fail on it.
        let json =
            serde_json::to_string(&self.canonical()).expect("a spec of strings serialises to JSON");
        let mut hasher = Sha256::new();
        hasher.update(format!("flint image builder {BUILDER_VERSION}\n"));
        hasher.update(json);
        format!("{:x}", hasher.finalize())
    }

    /// Checks what TOML's types cannot: names, paths and values safe to hand to mmdebstrap
    /// and to write into the image.
    pub fn validate(&self) -> anyhow::Result<()> {
        let name_ok = self.name.len() <= 64
            && self.name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && self.name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !name_ok {
            bail!(
                "invalid `name` {:?}: use [a-z0-9][a-z0-9._-]*, at most 64 characters",
                self.name
            );
        }
        if let Some(description) = &self.description
            && (description.chars().count() > DESCRIPTION_MAX
                || description.chars().any(char::is_control))
        {
            bail!(
                "invalid `description`: one line of at most {DESCRIPTION_MAX} characters, \
                 without control characters"
            );
        }
        if self.suite.is_empty() || !self.suite.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("invalid `suite` {:?}: a Debian suite name such as \"bookworm\"", self.suite);
        }
        if !VARIANTS.contains(&self.variant.as_str()) {
            bail!("invalid `variant` {:?}: one of {}", self.variant, VARIANTS.join(", "));
        }
        for package in &self.packages {
            // Names, `name=version` and `name:arch`, as apt takes them; never an option.
            let ok = package.starts_with(|c: char| c.is_ascii_alphanumeric())
                && package.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | ':' | '=' | '~')
                });
            if !ok {
                bail!("invalid package {package:?} in `packages`");
            }
        }
        for (key, value) in &self.env {
            let key_ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
                bail!("invalid variable name {key:?} in `env`");
            }
            // `/etc/environment` holds one `KEY="value"` per line, without escapes.
            if value.contains(['\n', '\r', '\0', '"', '\\']) {
                bail!("invalid value of {key} in `env`: no newlines, NULs, quotes or backslashes");
            }
        }
        for source in self.files_from.values() {
            let source_ok = !source.is_empty()
                && !source.contains('\0')
                && Path::new(source).components().all(|c| matches!(c, Component::Normal(_)));
            if !source_ok {
                bail!(
                    "invalid source {source:?} in `files_from`: use a path below the spec's \
                     directory, without `.` or `..`"
                );
            }
        }
        for (index, command) in self.run.iter().enumerate() {
            let number = index + 1;
            if command.trim().is_empty() {
                bail!("invalid command {number} in `run`: it is empty");
            }
            if command.contains('\0') {
                bail!("invalid command {number} in `run`: it contains a NUL");
            }
        }
        if !self.run.is_empty() && self.variant == "extract" {
            bail!(
                "`run` needs packages that are installed, not only unpacked: variant \"extract\" \
                 runs no commands in the image"
            );
        }
        for path in self.files.keys().chain(self.files_from.keys()) {
            let path_ok = path.starts_with('/')
                && !path.contains('\0')
                && Path::new(path)
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
                && Path::new(path).file_name().is_some();
            if !path_ok {
                bail!("invalid path {path:?} in `files`: use an absolute path without `.` or `..`");
            }
        }
        Ok(())
    }
}

/// Reads, parses and validates the spec at `path`, with its `files_from` read into `files`.
pub fn load_spec(path: &Path) -> anyhow::Result<Spec> {
    Ok(load_spec_and_sources(path)?.0)
}

/// [`load_spec`], with the files it read: the spec, then its `files_from` sources.
fn load_spec_and_sources(path: &Path) -> anyhow::Result<(Spec, Vec<PathBuf>)> {
    let text =
        fs::read_to_string(path).with_context(|| format!("reading spec {}", path.display()))?;
    let mut spec =
        Spec::parse(&text).with_context(|| format!("invalid image spec {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut sources = vec![path.to_owned()];
    for (target, source) in std::mem::take(&mut spec.files_from) {
        let source = dir.join(source);
        let contents = fs::read_to_string(&source).with_context(|| {
            format!("reading {} (`files_from` of {})", source.display(), path.display())
        })?;
        if spec.files.insert(target.clone(), contents).is_some() {
            bail!("{target} is in both `files` and `files_from` of {}", path.display());
        }
        sources.push(source);
    }
    Ok((spec, sources))
}

/// How long a file stays unmodified before its time and size are trusted to tell a change:
/// two writes within one tick of the file system's clock can leave both the same. Git
/// treats its index the same way ("racy git").
const SETTLED: Duration = Duration::from_secs(1);

/// The image directories ([`spec_dir`](super::spec_dir)) of spec files, each kept while the
/// spec and its `files_from` sources keep their modification time and size: the warm pool
/// asks every two seconds, and reading, parsing and hashing them each time is waste.
pub struct SpecDirs {
    data_dir: PathBuf,
    known: Mutex<HashMap<PathBuf, Known>>,
}

struct Known {
    /// The files the spec was read from, with their time and size then.
    files: Vec<(PathBuf, Stamp)>,
    dir: PathBuf,
}

type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl SpecDirs {
    /// Image directories under `data_dir`.
    pub fn new(data_dir: &Path) -> SpecDirs {
        SpecDirs { data_dir: data_dir.to_owned(), known: Mutex::default() }
    }

    /// The image directory of the spec at `path`, read again only when one of its files
    /// changed (or was modified just before it was last read).
    pub fn dir(&self, path: &Path) -> anyhow::Result<PathBuf> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = known.get(path)
            && k.files.iter().all(|(file, then)| stamp(file).as_ref() == Some(then))
        {
            return Ok(k.dir.clone());
        }
        let reading = SystemTime::now();
        let (spec, sources) = load_spec_and_sources(path)?;
        let dir = super::spec_dir(&self.data_dir, &spec);
        let settled = |(modified, _): &Stamp| *modified + SETTLED < reading;
        let files: Option<Vec<(PathBuf, Stamp)>> = sources
            .into_iter()
            .map(|file| stamp(&file).filter(settled).map(|then| (file, then)))
            .collect();
        match files {
            Some(files) => known.insert(path.to_owned(), Known { files, dir: dir.clone() }),
            None => known.remove(path),
        };
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::spec_dir;
    use std::ffi::OsStr;

    const SPEC: &str = r#"
        name = "demo"
        suite = "bookworm"
        packages = ["bash", "tini"]
        [env]
        LANG = "C.UTF-8"
        EDITOR = "vi"
        [files]
        "/etc/motd" = "hi\n"
        "/etc/profile.d/a.sh" = "true\n"
    "#;

    fn parse(text: &str) -> Spec {
        Spec::parse(text).expect("valid spec")
    }

    #[test]
    fn layout_key_order_and_package_order_do_not_change_the_hash() {
        let reordered = r#"
packages = ["tini", "bash", "bash"]
variant = "apt"
suite = "bookworm"
name = "demo"
# the same image, written differently
[files]
"/etc/profile.d/a.sh"   =   "true\n"
"/etc/motd" = """hi
"""

[env]
EDITOR="vi"
LANG="C.UTF-8"
"#;
        let a = parse(SPEC);
        let b = parse(reordered);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(spec_dir(Path::new("/d"), &a), spec_dir(Path::new("/d"), &b));
        assert_eq!(a.variant, "apt", "variant defaults to apt");
        let described = parse(&format!("description = \"a demo\"\n{SPEC}"));
        assert_eq!(described.description.as_deref(), Some("a demo"));
        assert_eq!(described.hash(), a.hash(), "a description is for people, not the image");
    }

    #[test]
    fn any_change_of_content_changes_the_hash() {
        let base = parse(SPEC);
        let other_packages = parse(&SPEC.replace("\"tini\"", "\"tini\", \"git\""));
        let other_env = parse(&SPEC.replace("\"vi\"", "\"vim\""));
        let other_file = parse(&SPEC.replace("hi\\n", "hello\\n"));
        let other_variant = parse(&format!("variant = \"minbase\"\n{SPEC}"));
        let with_run = parse(&format!("run = [\"echo a\", \"echo b\"]\n{SPEC}"));
        let other_run = parse(&format!("run = [\"echo a\", \"echo c\"]\n{SPEC}"));
        let run_reordered = parse(&format!("run = [\"echo b\", \"echo a\"]\n{SPEC}"));
        let hashes = [
            &base,
            &other_packages,
            &other_env,
            &other_file,
            &other_variant,
            &with_run,
            &other_run,
            &run_reordered,
        ]
        .map(|spec| spec.hash());
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let dir = spec_dir(Path::new("/data"), &base);
        let leaf = dir.file_name().and_then(OsStr::to_str).expect("utf-8 leaf");
        assert_eq!(leaf, format!("demo-{}", &base.hash()[..16]));
        assert_eq!(dir.parent(), Some(Path::new("/data/images")));
    }

    #[test]
    fn run_keeps_its_order_and_an_empty_run_keeps_the_image() {
        let base = parse(SPEC);
        assert!(base.run.is_empty());
        assert_eq!(parse(&format!("run = []\n{SPEC}")).hash(), base.hash(), "no commands");
        let multi_line =
            "run = [\"\"\"\nnpm install --prefix /opt/vite vite@5.4.21\nrm -rf /root/.npm\n\"\"\"]";
        let spec = parse(&format!("{multi_line}\n{SPEC}"));
        assert_eq!(spec.run, ["npm install --prefix /opt/vite vite@5.4.21\nrm -rf /root/.npm\n"]);
        assert_eq!(spec.canonical().run, spec.run, "canonical form keeps the commands as written");
        let json = serde_json::to_value(base.canonical()).expect("json");
        assert!(json.get("run").is_none(), "an empty run is not part of the hashed form");
    }

    #[test]
    fn bad_specs_are_refused_naming_the_field() {
        let cases = [
            ("name = \"x\"\nsuite = \"bookworm\"\npackges = []", "packges"),
            ("suite = \"bookworm\"", "name"),
            ("name = \"../x\"\nsuite = \"bookworm\"", "name"),
            ("name = \"x\"\nsuite = \"bookworm\"\nvariant = \"huge\"", "variant"),
            ("name = \"x\"\nsuite = \"bookworm\"\npackages = [\"--hook=x\"]", "packages"),
            ("name = \"x\"\nsuite = \"bookworm\"\ndescription = \"a\\nb\"", "description"),
            ("name = \"x\"\nsuite = \"bookworm\"\n[env]\n\"A B\" = \"1\"", "env"),
            ("name = \"x\"\nsuite = \"bookworm\"\n[env]\nA = \"a\\nb\"", "env"),
            ("name = \"x\"\nsuite = \"bookworm\"\n[files]\n\"etc/x\" = \"\"", "files"),
            ("name = \"x\"\nsuite = \"bookworm\"\n[files]\n\"/etc/../x\" = \"\"", "files"),
            ("name = \"x\"\nsuite = \"bookworm\"\nrun = \"echo hi\"", "run"),
            ("name = \"x\"\nsuite = \"bookworm\"\nrun = [\"true\", \"  \"]", "command 2 in `run`"),
            ("name = \"x\"\nsuite = \"bookworm\"\nrun = [\"a\\u0000b\"]", "`run`"),
            (
                "name = \"x\"\nsuite = \"bookworm\"\nvariant = \"extract\"\nrun = [\"true\"]",
                "`run`",
            ),
        ];
        for (text, field) in cases {
            let error = format!("{:#}", Spec::parse(text).expect_err(text));
            assert!(error.contains(field), "{text:?} gave {error:?}");
        }
    }

    #[test]
    fn files_from_are_read_beside_the_spec_and_hashed_by_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("shell")).expect("mkdir");
        fs::write(dir.path().join("shell/a.sh"), "echo one\n").expect("write");
        let spec_path = dir.path().join("demo.toml");
        let text = format!("{SPEC}\n[files_from]\n\"/etc/profile.d/b.sh\" = \"shell/a.sh\"\n");
        fs::write(&spec_path, &text).expect("write spec");
        let spec = load_spec(&spec_path).expect("load");
        assert_eq!(spec.files.get("/etc/profile.d/b.sh").map(String::as_str), Some("echo one\n"));
        assert!(spec.files_from.is_empty());
        let inline =
            parse(&SPEC.replace("[files]", "[files]\n\"/etc/profile.d/b.sh\" = \"echo one\\n\""));
        assert_eq!(spec.hash(), inline.hash(), "the same contents, the same image");

        fs::write(dir.path().join("shell/a.sh"), "echo two\n").expect("write");
        assert_ne!(load_spec(&spec_path).expect("load").hash(), spec.hash());
        for bad in ["../a.sh", "/etc/passwd", "./a.sh", ""] {
            let text = format!("{SPEC}\n[files_from]\n\"/etc/x\" = \"{bad}\"\n");
            let error = format!("{:#}", Spec::parse(&text).expect_err(bad));
            assert!(error.contains("files_from"), "{bad}: {error}");
        }
    }

    #[test]
    fn spec_dirs_are_read_again_when_the_spec_or_a_source_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec_path = dir.path().join("demo.toml");
        let source = dir.path().join("a.sh");
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let write = |path: &Path, text: &str| {
            fs::write(path, text).expect("write");
            let file = fs::File::options().write(true).open(path).expect("open");
            file.set_modified(an_hour_ago).expect("set the time");
        };
        write(&source, "echo one\n");
        write(&spec_path, &format!("{SPEC}\n[files_from]\n\"/etc/b.sh\" = \"a.sh\"\n"));
        let data = dir.path().join("data");
        let dirs = SpecDirs::new(&data);
        let first = dirs.dir(&spec_path).expect("dir");
        assert_eq!(first, spec_dir(&data, &load_spec(&spec_path).expect("load")));

        // The same time and size: trusted, not read again.
        write(&source, "echo two\n");
        assert_eq!(dirs.dir(&spec_path).expect("dir"), first);
        // A source of another size.
        write(&source, "echo three\n");
        let second = dirs.dir(&spec_path).expect("dir");
        assert_ne!(second, first);
        assert_eq!(second, spec_dir(&data, &load_spec(&spec_path).expect("load")));
        // The spec itself, just written: read every time until it settles.
        fs::write(&spec_path, SPEC).expect("write");
        let third = dirs.dir(&spec_path).expect("dir");
        assert_eq!(third, spec_dir(&data, &parse(SPEC)));
        fs::write(&spec_path, SPEC.replace("vi", "ed")).expect("write");
        assert_ne!(dirs.dir(&spec_path).expect("dir"), third);
        fs::remove_file(&spec_path).expect("remove");
        assert!(dirs.dir(&spec_path).is_err(), "a spec that is gone has no directory");
    }
}
