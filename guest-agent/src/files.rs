//! Files: stat, list, read, write, mkdir, move, remove and tar. Paths must be absolute.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt as _, PermissionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use proto::error::ErrorCode;
use proto::files::{
    Done, FileKind, FileList, FileStat, ListQuery, MkdirRequest, MoveRequest, PathQuery, ReadQuery,
    RemoveRequest, WriteQuery,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::http::{Body, json, query, read_json, streaming};

/// Bytes per chunk of a streamed read or tar.
const CHUNK_BYTES: usize = 64 << 10;

/// Chunks queued before a slow reader pushes back on the disk.
const QUEUE_CHUNKS: usize = 4;

/// Entries a listing returns at most; a deeper walk says it was truncated.
const LIST_LIMIT: usize = 10_000;

fn absolute(path: &str) -> Result<PathBuf> {
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err(Error::bad_request(format!("path {} is not absolute", path.display())));
    }
    Ok(path.to_owned())
}

fn to_stat(path: &Path, meta: &std::fs::Metadata) -> FileStat {
    let kind = if meta.is_symlink() {
        FileKind::Symlink
    } else if meta.is_dir() {
        FileKind::Dir
    } else if meta.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    FileStat {
        path: path.to_string_lossy().into_owned(),
        kind,
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        modified_ms: meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000,
    }
}

fn describe(path: &Path) -> String {
    path.display().to_string()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::api(ErrorCode::Internal, format!("file task: {e}")))?
}

/// `GET /v1/files/stat`
pub async fn stat(uri: &Uri) -> Result<Response<Body>> {
    let q: PathQuery = query(uri)?;
    let path = absolute(&q.path)?;
    let meta =
        tokio::fs::symlink_metadata(&path).await.map_err(|e| Error::io(&describe(&path), e))?;
    json(&to_stat(&path, &meta))
}

/// `GET /v1/files/list`
pub async fn list(uri: &Uri) -> Result<Response<Body>> {
    let q: ListQuery = query(uri)?;
    let root = absolute(&q.path)?;
    let depth = q.depth.unwrap_or(1).max(1);
    let listing = blocking(move || {
        let meta = std::fs::metadata(&root).map_err(|e| Error::io(&describe(&root), e))?;
        if !meta.is_dir() {
            return Err(Error::api(
                ErrorCode::NotADirectory,
                format!("{}: not a directory", describe(&root)),
            ));
        }
        let mut entries = Vec::new();
        let mut truncated = false;
        walk(&root, depth, &mut entries, &mut truncated)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(FileList { entries, truncated })
    })
    .await?;
    json(&listing)
}

fn walk(dir: &Path, depth: u32, out: &mut Vec<FileStat>, truncated: &mut bool) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(&describe(dir), e))?;
    for entry in entries {
        let Ok(entry) = entry else { continue };
        if out.len() >= LIST_LIMIT {
            *truncated = true;
            return Ok(());
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        out.push(to_stat(&path, &meta));
        if depth > 1 && meta.is_dir() {
            // An unreadable subdirectory is listed but not entered.
            let _ = walk(&path, depth - 1, out, truncated);
        }
    }
    Ok(())
}

/// `GET /v1/files/read`: the file's bytes (or a range of them), streamed.
pub async fn read(uri: &Uri) -> Result<Response<Body>> {
    let q: ReadQuery = query(uri)?;
    let path = absolute(&q.path)?;
    let meta = tokio::fs::metadata(&path).await.map_err(|e| Error::io(&describe(&path), e))?;
    if meta.is_dir() {
        return Err(Error::api(
            ErrorCode::IsADirectory,
            format!("{}: is a directory", describe(&path)),
        ));
    }
    let mut file =
        tokio::fs::File::open(&path).await.map_err(|e| Error::io(&describe(&path), e))?;
    let offset = q.offset.unwrap_or(0);
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| Error::io(&describe(&path), e))?;
    }
    let mut remaining = q.length.unwrap_or(u64::MAX);
    let (tx, response) = streaming("application/octet-stream", QUEUE_CHUNKS);
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK_BYTES];
        while remaining > 0 {
            let want = usize::try_from(remaining).unwrap_or(CHUNK_BYTES).min(CHUNK_BYTES);
            match file.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    remaining -= n as u64;
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(response)
}

/// `PUT /v1/files/write`: the body goes to a temporary file beside the target, which is
/// renamed over it only once the whole body arrived, so readers never see half a file.
///
/// With `if_modified_ms` the file's modification time is checked before the body is read
/// (a stale editor fails at once, without uploading) and again right before the rename, so
/// a change made during the upload is caught too. What is left between that check and the
/// rename is one syscall's window, which an advisory check cannot close (nothing stops
/// another writer from ignoring it).
///
/// With `if_absent` the file must not exist yet: see [`write_new`].
pub async fn write(uri: &Uri, mut body: Incoming) -> Result<Response<Body>> {
    let q: WriteQuery = query(uri)?;
    let path = absolute(&q.path)?;
    if q.if_absent {
        if q.if_modified_ms.is_some() {
            return Err(Error::bad_request(
                "if_absent and if_modified_ms exclude each other: a new file has no time yet",
            ));
        }
        return write_new(&path, q.mode, body).await;
    }
    if let Some(expected) = q.if_modified_ms {
        unchanged_since(&path, expected).await?;
    }
    // Through a symlink the file it leads to is written, and the link stays a link.
    let target = write_target(&path).await?;
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(Error::bad_request(format!("{} names no file", describe(&path))));
    };
    let mode = match (q.mode, tokio::fs::metadata(&path).await) {
        (Some(mode), _) => mode & 0o7777,
        (None, Ok(old)) if old.is_dir() => {
            return Err(Error::api(
                ErrorCode::IsADirectory,
                format!("{}: is a directory", describe(&path)),
            ));
        }
        (None, Ok(old)) => old.mode() & 0o7777,
        (None, Err(_)) => 0o644,
    };
    let temp = parent.join(format!(
        ".{}.flint-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    // Made and guarded with no `.await` between: hyper drops this future when the client
    // resets the stream, and a file made by a blocking-pool open that outlived the dropped
    // future would be left behind. (One open; not worth a blocking-pool hop.)
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| Error::io(&describe(&path), e))?;
    let mut guard = RemoveOnDrop(Some(temp.clone()));
    let mut file = tokio::fs::File::from_std(file);
    let written = async {
        fill(&mut file, &mut body, mode, &path).await?;
        if let Some(expected) = q.if_modified_ms {
            unchanged_since(&path, expected).await?;
        }
        tokio::fs::rename(&temp, &target).await.map_err(|e| Error::io(&describe(&path), e))
    }
    .await;
    written?;
    guard.0 = None;
    let meta =
        tokio::fs::symlink_metadata(&path).await.map_err(|e| Error::io(&describe(&path), e))?;
    json(&to_stat(&path, &meta))
}

/// [`write`] with `if_absent`: the file is made with `O_EXCL` (an existing one, or a link,
/// is `already_exists`) and written in place; a failed upload's file is removed again.
async fn write_new(path: &Path, mode: Option<u32>, mut body: Incoming) -> Result<Response<Body>> {
    if path.file_name().is_none() {
        return Err(Error::bad_request(format!("{} names no file", describe(path))));
    }
    let mode = mode.map_or(0o644, |mode| mode & 0o7777);
    // Made and guarded with no `.await` between, as in `write`.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(&describe(path), e))?;
    let mut guard = RemoveOnDrop(Some(path.to_owned()));
    let mut file = tokio::fs::File::from_std(file);
    fill(&mut file, &mut body, mode, path).await?;
    guard.0 = None;
    let meta =
        tokio::fs::symlink_metadata(path).await.map_err(|e| Error::io(&describe(path), e))?;
    json(&to_stat(path, &meta))
}

/// Writes the whole body into `file`, then gives it `mode` and syncs it (errors name `path`).
async fn fill(
    file: &mut tokio::fs::File,
    body: &mut Incoming,
    mode: u32,
    path: &Path,
) -> Result<()> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::bad_request(format!("reading body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data).await.map_err(|e| Error::io(&describe(path), e))?;
        }
    }
    file.flush().await.map_err(|e| Error::io(&describe(path), e))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| Error::io(&describe(path), e))?;
    file.sync_all().await.map_err(|e| Error::io(&describe(path), e))
}

/// Where a write to `path` lands: the file a symlink (or a chain of them) leads to, dangling
/// or not, as editors save through links; else `path` itself.
async fn write_target(path: &Path) -> Result<PathBuf> {
    let mut target = path.to_path_buf();
    // Linux's own limit on links followed in one lookup.
    for _ in 0..40 {
        match tokio::fs::symlink_metadata(&target).await {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = tokio::fs::read_link(&target)
                    .await
                    .map_err(|e| Error::io(&describe(path), e))?;
                // Relative to the link's directory; an absolute link replaces the whole path.
                target = target.parent().map_or_else(|| link.clone(), |dir| dir.join(&link));
            }
            _ => return Ok(target),
        }
    }
    Err(Error::bad_request(format!("{}: too many levels of symbolic links", describe(path))))
}

/// The precondition of a write: `path` exists and was last modified at `expected` (ms).
async fn unchanged_since(path: &Path, expected: i64) -> Result<()> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) => {
            let now = to_stat(path, &meta).modified_ms;
            if now == expected {
                return Ok(());
            }
            Err(Error::api(
                ErrorCode::FileChanged,
                format!(
                    "{} changed on disk since it was read (modified at {now} ms, not {expected} ms)",
                    describe(path)
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::api(
            ErrorCode::FileChanged,
            format!("{} was deleted since it was read", describe(path)),
        )),
        Err(e) => Err(Error::io(&describe(path), e)),
    }
}

/// Removes a temporary file unless disarmed (by taking the path out).
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // One unlink; not worth a blocking-pool hop.
            let _ = std::fs::remove_file(path);
        }
    }
}

static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `POST /v1/files/mkdir`
pub async fn mkdir(body: Incoming) -> Result<Response<Body>> {
    let request: MkdirRequest = read_json(body).await?;
    let path = absolute(&request.path)?;
    tokio::fs::create_dir_all(&path).await.map_err(|e| Error::io(&describe(&path), e))?;
    json(&Done { ok: true })
}

/// `POST /v1/files/move`
pub async fn rename(body: Incoming) -> Result<Response<Body>> {
    let request: MoveRequest = read_json(body).await?;
    let from = absolute(&request.from)?;
    let to = absolute(&request.to)?;
    tokio::fs::symlink_metadata(&from).await.map_err(|e| Error::io(&describe(&from), e))?;
    if !request.overwrite && tokio::fs::symlink_metadata(&to).await.is_ok() {
        return Err(Error::api(
            ErrorCode::AlreadyExists,
            format!("{}: already exists", describe(&to)),
        ));
    }
    tokio::fs::rename(&from, &to).await.map_err(|e| Error::io(&describe(&to), e))?;
    json(&Done { ok: true })
}

/// `POST /v1/files/remove`
pub async fn remove(body: Incoming) -> Result<Response<Body>> {
    let request: RemoveRequest = read_json(body).await?;
    let path = absolute(&request.path)?;
    if path == Path::new("/") {
        return Err(Error::bad_request("refusing to remove /"));
    }
    let meta =
        tokio::fs::symlink_metadata(&path).await.map_err(|e| Error::io(&describe(&path), e))?;
    let removed = if !meta.is_dir() {
        tokio::fs::remove_file(&path).await
    } else if request.recursive {
        tokio::fs::remove_dir_all(&path).await
    } else {
        tokio::fs::remove_dir(&path).await
    };
    removed.map_err(|e| Error::io(&describe(&path), e))?;
    json(&Done { ok: true })
}

/// `GET /v1/files/tar`: a tar of the directory's contents (paths relative to it), streamed.
pub async fn tar(uri: &Uri) -> Result<Response<Body>> {
    let q: PathQuery = query(uri)?;
    let root = absolute(&q.path)?;
    let meta = tokio::fs::metadata(&root).await.map_err(|e| Error::io(&describe(&root), e))?;
    if !meta.is_dir() {
        return Err(Error::api(
            ErrorCode::NotADirectory,
            format!("{}: not a directory", describe(&root)),
        ));
    }
    let (tx, response) = streaming("application/x-tar", QUEUE_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let writer = std::io::BufWriter::with_capacity(CHUNK_BYTES, ChannelWriter(tx));
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        let result =
            builder.append_dir_all(".", &root).and_then(|()| builder.into_inner()?.flush());
        if let Err(e) = result {
            // The body just ends early; the client sees a truncated tar.
            tracing::warn!("tar of {} stopped: {e}", root.display());
        }
    });
    Ok(response)
}

/// A blocking writer into a response stream.
struct ChannelWriter(mpsc::Sender<Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
