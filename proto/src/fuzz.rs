//! Entry points for fuzzing every decoder of bytes a peer sends (`cargo xtask fuzz`), also
//! replayed over the committed corpus as ordinary tests (`proto/tests/fuzz_corpus.rs`). Each
//! takes any bytes and must neither panic nor allocate without bound; where a decode
//! succeeds, what it gives must encode and decode to itself.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{FrameDecoder, encode};

/// A fuzz target's entry point: any bytes.
pub type Entry = fn(&[u8]);

/// The fuzz targets: name, entry point.
pub const TARGETS: &[(&str, Entry)] =
    &[("frames", frames), ("ws_messages", ws_messages), ("agent_json", agent_json)];

/// A postcard message that decoded must round-trip.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(message: &T) {
    let Ok(bytes) = encode(message) else { return };
    let mut decoder = FrameDecoder::new();
    decoder.push(&bytes);
    let again: Option<T> = decoder.next_message().ok().flatten();
    assert_eq!(again.as_ref(), Some(message), "a decoded frame did not round-trip");
}

fn postcard_as<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(payload: &[u8]) {
    if let Ok(message) = postcard::from_bytes::<T>(payload) {
        round_trip(&message);
    }
}

/// Length-prefixed frames, as an agent stream or an upload delivers them, in pieces cut where
/// the input says; each whole payload decoded as every frame type both ends read.
pub fn frames(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else { return };
    let mut decoder = FrameDecoder::new();
    for piece in rest.chunks(usize::from(cut).max(1)) {
        decoder.push(piece);
        loop {
            match decoder.next_payload() {
                Ok(Some(payload)) => {
                    let payload = payload.to_vec();
                    postcard_as::<crate::terminal::AttachUp>(&payload);
                    postcard_as::<crate::terminal::AttachDown>(&payload);
                    postcard_as::<crate::exec::ExecUp>(&payload);
                    postcard_as::<crate::exec::ExecDown>(&payload);
                    postcard_as::<crate::audit::GuestReport>(&payload);
                    postcard_as::<crate::ports::PortEvent>(&payload);
                    postcard_as::<crate::browser::ScreencastEvent>(&payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.finish();
}

fn json_as<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(message) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_vec(&message).unwrap_or_default();
        assert!(serde_json::from_slice::<T>(&text).is_ok(), "a decoded message did not round-trip");
    }
}

/// What browsers send on the terminal and browser websockets.
pub fn ws_messages(data: &[u8]) {
    json_as::<crate::api::TerminalClientMessage>(data);
    json_as::<crate::browser::BrowserClientMessage>(data);
}

/// The JSON bodies the guest agent decodes from the server (and the server from the API).
pub fn agent_json(data: &[u8]) {
    json_as::<crate::terminal::CreateTerminal>(data);
    json_as::<crate::terminal::RunCommand>(data);
    json_as::<crate::exec::ExecRequest>(data);
    json_as::<crate::files::MkdirRequest>(data);
    json_as::<crate::files::MoveRequest>(data);
    json_as::<crate::files::RemoveRequest>(data);
    json_as::<crate::browser::Navigate>(data);
    json_as::<crate::browser::Click>(data);
    json_as::<crate::browser::TypeText>(data);
    json_as::<crate::audit::ToolReport>(data);
    json_as::<crate::api::CreateSession>(data);
}

/// Replays the committed corpus (`corpus/<target>/` for each of `targets`) through the
/// targets: the ordinary tests of `proto` and `server` call this on stable. Panics naming
/// the input that fails, or a target with no corpus.
pub fn replay_corpus(corpus: &Path, targets: &[(&str, Entry)]) {
    for (target, entry) in targets {
        let dir = corpus.join(target);
        let mut inputs = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let replay = std::panic::catch_unwind(|| entry(&data));
            assert!(replay.is_ok(), "{target}: {} fails", path.display());
            inputs += 1;
        }
        assert!(inputs > 0, "no corpus for {target}: run `cargo xtask fuzz {target}`");
    }
}
