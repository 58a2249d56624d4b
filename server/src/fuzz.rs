//! Entry points for fuzzing the server's own decoders of peers' bytes (`cargo xtask fuzz`):
//! a preview `Host` header, and an image spec's TOML (a spec file may come from anyone who
//! can write to the images directory). Replayed over the committed corpus as a unit test.
//! The wire types' targets are `proto::fuzz`'s.

/// The server's fuzz targets: name, entry point.
pub const TARGETS: &[(&str, proto::fuzz::Entry)] =
    &[("preview_host", preview_host), ("image_spec", image_spec)];

/// A `Host` header: a preview host parses to a port and session, and the host it names
/// parses back to the same.
pub fn preview_host(data: &[u8]) {
    let Ok(host) = std::str::from_utf8(data) else { return };
    for domain in [crate::preview::DEFAULT_DOMAIN, "p.example.com"] {
        if let Some(target) = crate::preview::Target::parse(host, domain) {
            let again = crate::preview::Target::parse(&target.host(domain), domain);
            assert_eq!(again.as_ref(), Some(&target), "{host:?} did not round-trip");
        }
    }
}

/// An image spec's text: parsed and validated, then hashed as the builder does.
pub fn image_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = crate::images::Spec::parse(text) {
        let _ = spec.hash();
    }
}

#[cfg(test)]
mod tests {
    /// The committed corpus (`fuzz/corpus/<target>/`) goes through each target.
    #[test]
    fn every_server_fuzz_target_takes_its_whole_corpus() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        proto::fuzz::replay_corpus(&corpus, super::TARGETS);
    }
}
