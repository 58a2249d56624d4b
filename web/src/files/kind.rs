//! What the editor makes of a file, pure (tested natively): its Monaco language from its
//! name, and whether it is refused (too large, or binary) with a message a person reads.

/// Largest file the editor opens: Monaco holds the whole text in memory and a model of a
/// few megabytes already makes typing lag; bigger files are downloaded instead.
pub const MAX_EDIT_BYTES: u64 = 5 << 20;

/// Bytes looked at to tell text from binary, as git and most editors do.
pub const SNIFF_BYTES: usize = 8 << 10;

/// Why the editor does not open a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than [`MAX_EDIT_BYTES`].
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// NUL bytes, or not UTF-8.
    Binary,
}

impl Refusal {
    /// What the editor shows instead of the text.
    pub fn message(&self) -> String {
        match self {
            Refusal::TooLarge { size } => format!(
                "This file is too large to edit here ({}; the editor opens files up to {}). \
                 Download it instead.",
                human_size(*size),
                human_size(MAX_EDIT_BYTES)
            ),
            Refusal::Binary => {
                "This looks like a binary file (not UTF-8 text), so the editor does not open it. \
                 Download it instead."
                    .to_owned()
            }
        }
    }
}

/// Refuses a file by its size alone (before reading it).
pub fn check_size(size: u64) -> Result<(), Refusal> {
    if size > MAX_EDIT_BYTES { Err(Refusal::TooLarge { size }) } else { Ok(()) }
}

/// True when the first [`SNIFF_BYTES`] hold a NUL byte or are not UTF-8 (a character cut
/// at the end of the sample is not held against it).
pub fn looks_binary(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if sample.contains(&0) {
        return true;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => false,
        // `error_len() == None`: the sample ends inside a character, an error only when the
        // file itself ends there.
        Err(e) => e.error_len().is_some() || sample.len() == bytes.len(),
    }
}

/// The file's text, or why the editor refuses it.
pub fn decode(bytes: Vec<u8>) -> Result<String, Refusal> {
    check_size(bytes.len() as u64)?;
    if looks_binary(&bytes) {
        return Err(Refusal::Binary);
    }
    String::from_utf8(bytes).map_err(|_| Refusal::Binary)
}

/// Monaco's language id for a file name (`plaintext` when unknown).
pub fn language(path: &str) -> &'static str {
    let name = super::tree::name(path);
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "dockerfile" | "containerfile" => return "dockerfile",
        "makefile" | "gnumakefile" => return "plaintext",
        ".bashrc" | ".bash_profile" | ".profile" | ".zshrc" => return "shell",
        "cargo.lock" => return "ini",
        _ => {}
    }
    if lower.starts_with("dockerfile.") {
        return "dockerfile";
    }
    let Some((_, ext)) = lower.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()) else {
        return "plaintext";
    };
    match ext {
        "rs" => "rust",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "mts" | "cts" | "tsx" => "typescript",
        "json" | "jsonc" | "json5" | "webmanifest" => "json",
        "md" | "markdown" => "markdown",
        "mdx" => "mdx",
        "py" | "pyi" | "pyw" => "python",
        "go" => "go",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" | "ino" => "cpp",
        "cs" | "csx" => "csharp",
        "java" => "java",
        "kt" | "kts" => "kotlin",
        "scala" | "sc" => "scala",
        "swift" => "swift",
        "rb" | "rake" | "gemspec" => "ruby",
        "php" => "php",
        "pl" | "pm" => "perl",
        "lua" => "lua",
        "r" => "r",
        "jl" => "julia",
        "dart" => "dart",
        "ex" | "exs" => "elixir",
        "clj" | "cljs" | "cljc" | "edn" => "clojure",
        "fs" | "fsi" | "fsx" => "fsharp",
        "sh" | "bash" | "zsh" | "ksh" => "shell",
        "ps1" | "psm1" => "powershell",
        "bat" | "cmd" => "bat",
        "html" | "htm" | "xhtml" => "html",
        "vue" | "svelte" => "html",
        "css" => "css",
        "scss" => "scss",
        "less" => "less",
        "xml" | "svg" | "xsd" | "xsl" | "plist" | "csproj" => "xml",
        "yaml" | "yml" => "yaml",
        // No TOML grammar in Monaco: INI's sections, keys and comments are close.
        "toml" | "ini" | "cfg" | "conf" | "properties" | "env" => "ini",
        "sql" => "sql",
        "graphql" | "gql" => "graphql",
        "proto" => "protobuf",
        "sol" => "sol",
        "tf" | "hcl" => "hcl",
        "pug" => "pug",
        "hbs" | "handlebars" => "handlebars",
        "twig" => "twig",
        "liquid" => "liquid",
        "rst" => "restructuredtext",
        "tcl" => "tcl",
        "vb" => "vb",
        "wgsl" => "wgsl",
        "m" => "objective-c",
        "pas" => "pascal",
        "scm" | "ss" => "scheme",
        "coffee" => "coffeescript",
        _ => "plaintext",
    }
}

/// Bytes as a person reads them (`1.5 MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_follow_the_file_name() {
        assert_eq!(language("/workspace/src/main.rs"), "rust");
        assert_eq!(language("/workspace/App.TSX"), "typescript");
        assert_eq!(language("/workspace/index.mjs"), "javascript");
        assert_eq!(language("/workspace/Cargo.toml"), "ini");
        assert_eq!(language("/workspace/notes.md"), "markdown");
        assert_eq!(language("/workspace/run.sh"), "shell");
        assert_eq!(language("/workspace/Dockerfile"), "dockerfile");
        assert_eq!(language("/workspace/Dockerfile.dev"), "dockerfile");
        assert_eq!(language("/workspace/config.yml"), "yaml");
        assert_eq!(language("/workspace/README"), "plaintext");
        assert_eq!(language("/workspace/.gitignore"), "plaintext", "a dot file has no extension");
        assert_eq!(language("/workspace/archive.tar.gz"), "plaintext");
    }

    #[test]
    fn binary_is_nul_bytes_or_not_utf8_in_the_first_8_kb() {
        assert!(!looks_binary(b"plain text\n"));
        assert!(!looks_binary("héllo — ✓".as_bytes()));
        assert!(!looks_binary(b""));
        assert!(looks_binary(b"PK\x03\x04\x00\x00"));
        assert!(looks_binary(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]));
        assert!(looks_binary(&[b'a', 0xff, b'b']));
        // A NUL after the sample is not looked at by the sniff...
        let mut late = vec![b'a'; SNIFF_BYTES];
        late.push(0);
        assert!(!looks_binary(&late));
        // ...and a character cut by the sample's end is not an error.
        let mut cut = vec![b'a'; SNIFF_BYTES - 1];
        cut.extend_from_slice("é".as_bytes());
        assert!(!looks_binary(&cut));
        // But a file that ends in half a character is not UTF-8.
        assert!(looks_binary(&"é".as_bytes()[..1]));
    }

    #[test]
    fn decode_refuses_large_and_binary_files_with_a_message() {
        assert_eq!(decode(b"fn main() {}\n".to_vec()).as_deref(), Ok("fn main() {}\n"));
        assert_eq!(decode(vec![0, 1, 2]), Err(Refusal::Binary));
        // Valid UTF-8 in the sample but not after it: still refused (never saved mangled).
        let mut tail = vec![b'a'; SNIFF_BYTES + 10];
        tail.push(0xff);
        assert_eq!(decode(tail), Err(Refusal::Binary));
        assert_eq!(check_size(MAX_EDIT_BYTES), Ok(()));
        let big = Refusal::TooLarge { size: 6 << 20 };
        assert_eq!(check_size(6 << 20), Err(big.clone()));
        assert!(
            big.message().contains("too large") && big.message().contains("6.0 MB"),
            "{}",
            big.message()
        );
        assert!(Refusal::Binary.message().contains("binary"));
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 << 20), "5.0 MB");
    }
}
