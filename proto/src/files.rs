//! Files: stat, list, read, write, mkdir, move, remove and tar. Paths are absolute.

use serde::{Deserialize, Serialize};

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// A socket, fifo or device.
    Other,
}

/// Metadata of one path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileStat {
    /// Absolute path.
    pub path: String,
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

/// Query of the routes that take only a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    /// Absolute path.
    pub path: String,
}

/// Query of `GET /v1/files/list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Absolute path of a directory.
    pub path: String,
    /// 1 lists the directory itself; 2 also its subdirectories, and so on. Default 1.
    pub depth: Option<u32>,
}

/// `GET /v1/files/list` response, sorted by path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileList {
    /// Entries below the directory (not the directory itself).
    pub entries: Vec<FileStat>,
    /// True when the listing stopped at the entry limit.
    pub truncated: bool,
}

/// Query of `GET /v1/files/read`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Absolute path of a file.
    pub path: String,
    /// First byte to read; default 0.
    pub offset: Option<u64>,
    /// Most bytes to read; default to the end.
    pub length: Option<u64>,
}

/// Query of `PUT /v1/files/write`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteQuery {
    /// Absolute path of the file to replace or create.
    pub path: String,
    /// Permission bits of a new file; default 0644, or the old file's mode when replacing.
    pub mode: Option<u32>,
    /// A precondition: the file's current modification time (`FileStat::modified_ms`) must
    /// be exactly this, or the write is refused with `file_changed` (409) and nothing is
    /// written. An editor sends the time it read the file at, so a change made meanwhile (by
    /// the shell, an agent, another tab) is never silently overwritten. A missing file fails
    /// it too (it was deleted). Absent: no precondition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_modified_ms: Option<i64>,
    /// A precondition: nothing is at `path` yet. The file is then made exclusively (`O_EXCL`,
    /// written in place), so of two people making the same new file one gets `already_exists`
    /// (409) and neither loses the other's. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub if_absent: bool,
}

/// `POST /v1/files/mkdir` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MkdirRequest {
    /// Directory to create, with its parents.
    pub path: String,
}

/// `POST /v1/files/move` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// Existing path.
    pub from: String,
    /// New path.
    pub to: String,
    /// Replace an existing `to`.
    #[serde(default)]
    pub overwrite: bool,
}

/// `POST /v1/files/remove` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    /// Path to remove.
    pub path: String,
    /// Remove a non-empty directory and all below it.
    #[serde(default)]
    pub recursive: bool,
}

/// Response of mkdir, move and remove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Always true; errors are error bodies.
    pub ok: bool,
}
