//! The fuzz corpus (`fuzz/corpus/<target>/`), committed, replayed through each target's entry
//! point as an ordinary test: every input found once stays checked, on stable, in seconds.

use std::path::Path;

#[test]
fn every_fuzz_target_takes_its_whole_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, entry) in proto::fuzz::TARGETS {
        let dir = corpus.join(target);
        let mut inputs = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.expect("a corpus entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let replay = std::panic::catch_unwind(|| entry(&data));
            assert!(replay.is_ok(), "{target}: {} fails", path.display());
            inputs += 1;
        }
        assert!(inputs > 0, "no corpus for {target}: run `cargo xtask fuzz {target}`");
    }
}
