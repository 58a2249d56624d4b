//! Files: binary and large round trips, ranges, tar export, and errors with clear codes.

use bytes::Bytes;
use http_body_util::BodyExt;
use proto::error::ErrorCode;
use proto::files::{FileKind, MoveRequest, ReadQuery, RemoveRequest, WriteQuery};

use crate::common::*;

#[tokio::test]
async fn binary_data_round_trips_and_ranges_read_the_right_bytes() {
    let agent = TestAgent::start().await;
    let path = path_str(&agent.workdir().join("all-bytes.bin"));
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let stat = agent.client.write(&path, data.clone()).await.expect("write");
    assert_eq!((stat.kind, stat.size, stat.mode), (FileKind::File, 10_000, 0o644));
    assert_eq!(agent.client.read(&path).await.expect("read"), Bytes::from(data.clone()));

    let range = ReadQuery { path: path.clone(), offset: Some(300), length: Some(1000) };
    let body = agent.client.read_stream(&range).await.expect("range");
    let got = body.collect().await.expect("collect").to_bytes();
    assert_eq!(&got[..], &data[300..1300]);

    // Replacing keeps the mode unless told otherwise.
    let query = WriteQuery { path: path.clone(), mode: Some(0o600), ..WriteQuery::default() };
    let stat =
        agent.client.write_body(&query, guest_agent::client::full(&b"x"[..])).await.expect("write");
    assert_eq!((stat.size, stat.mode), (1, 0o600));
    let stat = agent.client.write(&path, &b"yy"[..]).await.expect("write");
    assert_eq!((stat.size, stat.mode), (2, 0o600));
}

#[tokio::test]
async fn a_100_mb_file_round_trips_streamed() {
    let agent = TestAgent::start().await;
    let path = path_str(&agent.workdir().join("big.bin"));
    const SIZE: usize = 100 << 20;
    let (tx, body) = guest_agent::client::channel_body();
    let writer = tokio::spawn(async move {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        for (i, chunk) in (0..SIZE).step_by(1 << 20).enumerate() {
            let block = noise((SIZE - chunk).min(1 << 20), i as u64 + 1);
            hash.update(&block);
            tx.send(Bytes::from(block)).await.expect("send");
        }
        hash.finalize().to_vec()
    });
    let query = WriteQuery { path: path.clone(), mode: None, ..WriteQuery::default() };
    let stat = agent.client.write_body(&query, body).await.expect("write");
    let sent_hash = writer.await.expect("writer");
    assert_eq!(stat.size, SIZE as u64);

    let mut body = agent
        .client
        .read_stream(&ReadQuery { path, offset: None, length: None })
        .await
        .expect("read");
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            total += data.len();
            hash.update(&data);
        }
    }
    assert_eq!(total, SIZE);
    assert_eq!(hash.finalize().to_vec(), sent_hash);
}

#[tokio::test]
async fn an_aborted_upload_leaves_the_old_file_whole() {
    let agent = TestAgent::start().await;
    let path = path_str(&agent.workdir().join("keep.txt"));
    agent.client.write(&path, &b"original"[..]).await.expect("write");
    // A body that fails mid-way: hyper resets the stream, the agent sees an error, not an end.
    let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>> = vec![
        Ok(hyper::body::Frame::data(Bytes::from(noise(200_000, 9)))),
        Err(std::io::Error::other("client gave up")),
    ];
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed();
    let query = WriteQuery { path: path.clone(), mode: None, ..WriteQuery::default() };
    agent.client.write_body(&query, body).await.expect_err("an aborted upload fails");
    assert_eq!(agent.client.read(&path).await.expect("read"), Bytes::from_static(b"original"));
    // The agent cleans up once it sees the reset, which may be just after our call returned.
    let start = std::time::Instant::now();
    loop {
        let listing = agent.client.list(&path_str(&agent.workdir()), None).await.expect("list");
        if listing.entries.len() == 1 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "temporary file left: {:?}", listing.entries);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_tree_exports_as_a_tar_that_unpacks_to_the_same_files() {
    let agent = TestAgent::start().await;
    let root = agent.workdir().join("tree");
    let files = [
        ("a.txt", noise(10, 1)),
        ("sub/b.bin", noise(70_000, 2)),
        ("sub/deeper/c", noise(1, 3)),
        ("sub/deeper/empty", Vec::new()),
    ];
    for (name, data) in &files {
        let path = root.join(name);
        agent.client.mkdir(&path_str(path.parent().expect("parent"))).await.expect("mkdir");
        agent.client.write(&path_str(&path), data.clone()).await.expect("write");
    }
    agent.client.mkdir(&path_str(&root.join("empty-dir"))).await.expect("mkdir");

    let body = agent.client.tar(&path_str(&root)).await.expect("tar");
    let tar_bytes = body.collect().await.expect("collect").to_bytes();
    let out = tempfile::tempdir().expect("tempdir");
    tar::Archive::new(&tar_bytes[..]).unpack(out.path()).expect("unpack");
    for (name, data) in &files {
        assert_eq!(&std::fs::read(out.path().join(name)).expect(name), data, "{name}");
    }
    assert!(out.path().join("empty-dir").is_dir());

    let listing = agent.client.list(&path_str(&root), Some(3)).await.expect("list");
    let names: Vec<String> = listing
        .entries
        .iter()
        .map(|e| e.path.strip_prefix(&path_str(&root)).expect("under root").to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "/a.txt",
            "/empty-dir",
            "/sub",
            "/sub/b.bin",
            "/sub/deeper",
            "/sub/deeper/c",
            "/sub/deeper/empty"
        ]
    );
    let shallow = agent.client.list(&path_str(&root), None).await.expect("list");
    assert_eq!(shallow.entries.len(), 3);
}

#[tokio::test]
async fn errors_have_clear_codes() {
    let agent = TestAgent::start().await;
    let work = agent.workdir();
    let dir = path_str(&work.join("dir"));
    let file = path_str(&work.join("dir/file"));
    agent.client.mkdir(&dir).await.expect("mkdir");
    agent.client.write(&file, &b"1"[..]).await.expect("write");
    fn code<T: std::fmt::Debug>(result: Result<T, guest_agent::Error>) -> ErrorCode {
        result.expect_err("must fail").code()
    }

    assert_eq!(
        code(agent.client.read(&path_str(&work.join("missing"))).await),
        ErrorCode::NotFound
    );
    assert_eq!(code(agent.client.read(&dir).await), ErrorCode::IsADirectory);
    assert_eq!(code(agent.client.write(&dir, &b"x"[..]).await), ErrorCode::IsADirectory);
    assert_eq!(code(agent.client.list(&file, None).await), ErrorCode::NotADirectory);
    assert_eq!(code(agent.client.read("relative/path").await), ErrorCode::BadRequest);
    assert_eq!(
        code(agent.client.write(&path_str(&work.join("no/such/dir/f")), &b"x"[..]).await),
        ErrorCode::NotFound
    );
    let remove = RemoveRequest { path: dir.clone(), recursive: false };
    assert_eq!(code(agent.client.remove(&remove).await), ErrorCode::DirectoryNotEmpty);
    let other = path_str(&work.join("other"));
    agent.client.write(&other, &b"2"[..]).await.expect("write");
    let clash = MoveRequest { from: other.clone(), to: file.clone(), overwrite: false };
    assert_eq!(code(agent.client.rename(&clash).await), ErrorCode::AlreadyExists);

    // And the happy paths of the same operations.
    agent.client.rename(&MoveRequest { overwrite: true, ..clash }).await.expect("move");
    assert_eq!(agent.client.read(&file).await.expect("read"), Bytes::from_static(b"2"));
    agent
        .client
        .remove(&RemoveRequest { path: dir.clone(), recursive: true })
        .await
        .expect("rm -r");
    assert_eq!(code(agent.client.stat(&dir).await), ErrorCode::NotFound);
}

/// Gives `path` new contents and a modification time `shift_ms` after `base_ms`, as the shell
/// or an agent would (a shifted time, so the change never hides in the same millisecond).
fn change_on_disk(path: &str, contents: &[u8], base_ms: i64, shift_ms: i64) {
    std::fs::write(path, contents).expect("write behind the agent's back");
    let when = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(base_ms + shift_ms).expect("after 1970"));
    let file = std::fs::File::options().write(true).open(path).expect("open");
    file.set_modified(when).expect("set mtime");
}

#[tokio::test]
async fn a_write_with_if_modified_ms_never_overwrites_a_change_made_since() {
    let agent = TestAgent::start().await;
    let path = path_str(&agent.workdir().join("edited.txt"));
    let read = agent.client.write(&path, &b"v1"[..]).await.expect("write");
    let conditional = |expected: i64| WriteQuery {
        path: path.clone(),
        mode: None,
        if_modified_ms: Some(expected),
        if_absent: false,
    };

    // Unchanged since it was read: the write goes through, and answers the new time.
    let saved = agent
        .client
        .write_body(&conditional(read.modified_ms), guest_agent::client::full(&b"v2"[..]))
        .await
        .expect("an unchanged file is written");
    assert_eq!(agent.client.read(&path).await.expect("read"), Bytes::from_static(b"v2"));

    // Changed behind the editor's back: refused with file_changed (409), the change kept.
    change_on_disk(&path, b"from the shell", saved.modified_ms, 5_000);
    let err = agent
        .client
        .write_body(&conditional(saved.modified_ms), guest_agent::client::full(&b"v3"[..]))
        .await
        .expect_err("a changed file is not overwritten");
    assert_eq!(err.code(), ErrorCode::FileChanged);
    assert_eq!(err.code().status(), 409);
    assert!(err.to_string().contains("changed on disk"), "{err}");
    assert_eq!(
        agent.client.read(&path).await.expect("read"),
        Bytes::from_static(b"from the shell")
    );

    // Changed while the body is on its way: the check before the rename catches it.
    let now = agent.client.stat(&path).await.expect("stat");
    let (tx, body) = guest_agent::client::channel_body();
    let query = conditional(now.modified_ms);
    let client = agent.client.clone();
    let upload = tokio::spawn(async move { client.write_body(&query, body).await });
    tx.send(Bytes::from_static(b"half of v4")).await.expect("send");
    // The temporary file exists once the first check passed and the body is being written.
    let start = std::time::Instant::now();
    while agent.client.list(&path_str(&agent.workdir()), None).await.expect("list").entries.len()
        < 2
    {
        assert!(start.elapsed() < DEADLINE, "the upload never started");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    change_on_disk(&path, b"from the agent", now.modified_ms, 7_000);
    tx.send(Bytes::from_static(b", the rest")).await.expect("send");
    drop(tx);
    let err = upload.await.expect("join").expect_err("a change during the upload is caught");
    assert_eq!(err.code(), ErrorCode::FileChanged);
    assert_eq!(
        agent.client.read(&path).await.expect("read"),
        Bytes::from_static(b"from the agent")
    );

    // Deleted since: refused too, and not created again.
    let now = agent.client.stat(&path).await.expect("stat");
    std::fs::remove_file(&path).expect("rm");
    let err = agent
        .client
        .write_body(&conditional(now.modified_ms), guest_agent::client::full(&b"v5"[..]))
        .await
        .expect_err("a deleted file is not written");
    assert_eq!(err.code(), ErrorCode::FileChanged);
    assert!(err.to_string().contains("deleted"), "{err}");
    // No temporary file is left behind by any refusal; no precondition, no check.
    let listing = agent.client.list(&path_str(&agent.workdir()), None).await.expect("list");
    assert!(listing.entries.is_empty(), "left behind: {:?}", listing.entries);
    agent.client.write(&path, &b"v6"[..]).await.expect("an unconditional write creates it");
}

#[tokio::test]
async fn a_write_through_a_symlink_changes_the_file_it_leads_to_and_keeps_the_link() {
    let agent = TestAgent::start().await;
    let dir = agent.workdir();
    std::fs::create_dir_all(dir.join("dotfiles")).expect("mkdir");
    std::fs::write(dir.join("dotfiles/bashrc"), "old\n").expect("write");
    // A relative link to a relative link, as dotfile managers make them.
    std::os::unix::fs::symlink("dotfiles/bashrc", dir.join("middle")).expect("link");
    std::os::unix::fs::symlink("middle", dir.join(".bashrc")).expect("link");
    let link = path_str(&dir.join(".bashrc"));
    agent.client.write(&link, &b"new\n"[..]).await.expect("write through the links");
    assert_eq!(std::fs::read_to_string(dir.join("dotfiles/bashrc")).expect("read"), "new\n");
    for name in [".bashrc", "middle"] {
        let meta = std::fs::symlink_metadata(dir.join(name)).expect("stat");
        assert!(meta.file_type().is_symlink(), "{name} is still a link");
    }
    // A dangling link: the file it names is made.
    std::os::unix::fs::symlink(dir.join("made-later.txt"), dir.join("dangling")).expect("link");
    agent.client.write(&path_str(&dir.join("dangling")), &b"x"[..]).await.expect("write");
    assert_eq!(std::fs::read_to_string(dir.join("made-later.txt")).expect("read"), "x");
    // A loop is refused and nothing is written.
    std::os::unix::fs::symlink("loop-b", dir.join("loop-a")).expect("link");
    std::os::unix::fs::symlink("loop-a", dir.join("loop-b")).expect("link");
    let looped = agent.client.write(&path_str(&dir.join("loop-a")), &b"x"[..]).await;
    match looped {
        Err(guest_agent::Error::Api { code, message }) => {
            assert_eq!(code, ErrorCode::BadRequest, "{message}");
            assert!(message.contains("too many levels of symbolic links"), "{message}");
        }
        other => panic!("a loop was written: {other:?}"),
    }
    assert!(std::fs::symlink_metadata(dir.join("loop-a")).expect("stat").is_symlink());
}

#[tokio::test]
async fn a_write_if_absent_makes_a_new_file_and_never_replaces_one() {
    let agent = TestAgent::start().await;
    let path = path_str(&agent.workdir().join("new.txt"));
    let new = WriteQuery { path: path.clone(), if_absent: true, ..WriteQuery::default() };
    let stat = agent
        .client
        .write_body(&new, guest_agent::client::full(&b"first"[..]))
        .await
        .expect("a new file");
    assert_eq!((stat.kind, stat.size, stat.mode), (FileKind::File, 5, 0o644));
    // Someone else made it first: refused, and their file stays as they wrote it.
    match agent.client.write_body(&new, guest_agent::client::full(&b"second"[..])).await {
        Err(guest_agent::Error::Api { code, message }) => {
            assert_eq!(code, ErrorCode::AlreadyExists, "{message}");
            assert!(message.contains("new.txt"), "{message}");
        }
        other => panic!("an existing file was replaced: {other:?}"),
    }
    assert_eq!(agent.client.read(&path).await.expect("read"), Bytes::from_static(b"first"));
    // A dangling link is something there too.
    let link = agent.workdir().join("link");
    std::os::unix::fs::symlink(agent.workdir().join("nowhere"), &link).expect("link");
    let through = WriteQuery { path: path_str(&link), if_absent: true, ..WriteQuery::default() };
    let refused = agent.client.write_body(&through, guest_agent::client::full(&b"x"[..])).await;
    assert!(matches!(refused, Err(guest_agent::Error::Api { code: ErrorCode::AlreadyExists, .. })));
    assert!(!agent.workdir().join("nowhere").exists());
    // Both preconditions at once make no sense.
    let both = WriteQuery { if_modified_ms: Some(1), ..new };
    let refused = agent.client.write_body(&both, guest_agent::client::full(&b"x"[..])).await;
    assert!(matches!(refused, Err(guest_agent::Error::Api { code: ErrorCode::BadRequest, .. })));
    assert_eq!(agent.client.read(&path).await.expect("read"), Bytes::from_static(b"first"));
}
