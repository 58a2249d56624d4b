#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proto::fuzz::agent_json(data));
