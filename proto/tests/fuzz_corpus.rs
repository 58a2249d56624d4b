//! The fuzz corpus (`fuzz/corpus/<target>/`), committed, replayed through each target's entry
//! point as an ordinary test: every input found once stays checked, on stable, in seconds.

#[test]
fn every_fuzz_target_takes_its_whole_corpus() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    proto::fuzz::replay_corpus(&corpus, proto::fuzz::TARGETS);
}
