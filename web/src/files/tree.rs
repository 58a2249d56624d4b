//! The file tree's model, pure (tested natively): each directory as it was last listed,
//! which ones are expanded, the order entries show in, and the rows on screen.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use proto::files::{FileKind, FileStat};

/// The tree's root: the session's volume, the shell's working directory.
pub const ROOT: &str = "/workspace";

/// One listed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path.
    pub path: String,
    /// Its last component.
    pub name: String,
    /// File, directory, symlink (not followed) or other.
    pub kind: FileKind,
    /// Bytes.
    pub size: u64,
}

impl Entry {
    /// An entry from the agent's stat.
    pub fn from_stat(stat: &FileStat) -> Entry {
        Entry {
            path: stat.path.clone(),
            name: name(&stat.path).to_owned(),
            kind: stat.kind,
            size: stat.size,
        }
    }

    /// A directory (a symlink to one is not expanded: it may lead anywhere, even to `/`).
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }
}

/// A row on screen: an entry, how deep it sits below the root, whether it is expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The entry.
    pub entry: Entry,
    /// 0 for the root's children.
    pub depth: usize,
    /// A directory shown open.
    pub expanded: bool,
}

/// Listed directories and expanded ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    listed: BTreeMap<String, Vec<Entry>>,
    expanded: BTreeSet<String>,
}

impl Tree {
    /// Takes `dir`'s listing (its direct children; anything else is ignored), sorted. A
    /// subdirectory that is gone is forgotten with everything below it. True when
    /// something changed.
    pub fn set_listing(&mut self, dir: &str, stats: &[FileStat]) -> bool {
        let mut entries: Vec<Entry> = stats
            .iter()
            .filter(|stat| parent(&stat.path) == dir && stat.path != dir)
            .map(Entry::from_stat)
            .collect();
        entries.sort_by(order);
        if self.listed.get(dir) == Some(&entries) {
            return false;
        }
        let gone: Vec<String> = self
            .listed
            .get(dir)
            .map(|old| {
                old.iter()
                    .filter(|e| {
                        e.is_dir() && !entries.iter().any(|n| n.path == e.path && n.is_dir())
                    })
                    .map(|e| e.path.clone())
                    .collect()
            })
            .unwrap_or_default();
        for path in gone {
            self.forget(&path);
        }
        self.listed.insert(dir.to_owned(), entries);
        true
    }

    /// `dir` was listed at least once.
    pub fn is_listed(&self, dir: &str) -> bool {
        self.listed.contains_key(dir)
    }

    /// `dir` is shown open (the root always is).
    pub fn is_expanded(&self, dir: &str) -> bool {
        dir == ROOT || self.expanded.contains(dir)
    }

    /// Opens or closes `dir`; true when it is now open.
    pub fn toggle(&mut self, dir: &str) -> bool {
        if self.expanded.remove(dir) {
            return false;
        }
        self.expanded.insert(dir.to_owned());
        true
    }

    /// Opens `dir` and every directory above it (up to the root).
    pub fn expand(&mut self, dir: &str) {
        let mut dir = dir;
        while dir != ROOT && dir.starts_with(ROOT) {
            self.expanded.insert(dir.to_owned());
            dir = parent(dir);
        }
    }

    /// The directories on screen, which a refresh lists again: the root and every expanded
    /// directory whose parents are expanded too.
    pub fn shown_dirs(&self) -> Vec<String> {
        let mut dirs = vec![ROOT.to_owned()];
        dirs.extend(self.rows().into_iter().filter(|r| r.expanded).map(|r| r.entry.path));
        dirs
    }

    /// The rows on screen: the root's children, and the children of each expanded
    /// directory under it, depth first, in [`order`].
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        self.push_rows(ROOT, 0, &mut rows);
        rows
    }

    fn push_rows(&self, dir: &str, depth: usize, rows: &mut Vec<Row>) {
        let Some(entries) = self.listed.get(dir) else { return };
        for entry in entries {
            let expanded = entry.is_dir() && self.expanded.contains(&entry.path);
            rows.push(Row { entry: entry.clone(), depth, expanded });
            if expanded {
                self.push_rows(&entry.path, depth + 1, rows);
            }
        }
    }

    /// The entry at `path`, when its directory was listed.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.listed.get(parent(path))?.iter().find(|e| e.path == path)
    }

    /// Drops `path` and everything below it (it was removed, or renamed away).
    pub fn forget(&mut self, path: &str) {
        let below = format!("{path}/");
        self.listed.retain(|dir, _| dir != path && !dir.starts_with(&below));
        self.expanded.retain(|dir| dir != path && !dir.starts_with(&below));
        if let Some(entries) = self.listed.get_mut(parent(path)) {
            entries.retain(|e| e.path != path);
        }
    }

    /// After a rename of directory `from` to `to`: what was open below it stays open.
    pub fn moved(&mut self, from: &str, to: &str) {
        let renamed: Vec<String> =
            self.expanded.iter().filter_map(|dir| moved_path(dir, from, to)).collect();
        self.forget(from);
        self.expanded.extend(renamed);
    }
}

/// `path` after `from` was renamed to `to`, when it was `from` or below it.
pub fn moved_path(path: &str, from: &str, to: &str) -> Option<String> {
    if path == from {
        return Some(to.to_owned());
    }
    path.strip_prefix(from).filter(|rest| rest.starts_with('/')).map(|rest| format!("{to}{rest}"))
}

/// `path` is `dir` or below it.
pub fn within(path: &str, dir: &str) -> bool {
    moved_path(path, dir, dir).is_some()
}

/// Directories first, then by name: case-insensitive, digit runs compared as numbers
/// (`file2` before `file10`), the exact name breaking ties.
pub fn order(a: &Entry, b: &Entry) -> Ordering {
    b.is_dir().cmp(&a.is_dir()).then_with(|| natural(&a.name, &b.name)).then(a.name.cmp(&b.name))
}

/// Compares names as a person sorts them (see [`order`]).
pub fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (x, y) = (digits(&mut a), digits(&mut b));
                // Leading zeros aside, a longer run is a bigger number.
                let (xs, ys) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                let by_value = xs.len().cmp(&ys.len()).then_with(|| xs.cmp(ys));
                if by_value != Ordering::Equal {
                    return by_value;
                }
            }
            (Some(x), Some(y)) => {
                let by_char = x.to_lowercase().cmp(y.to_lowercase());
                if by_char != Ordering::Equal {
                    return by_char;
                }
                a.next();
                b.next();
            }
        }
    }
}

fn digits(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut run = String::new();
    while let Some(c) = chars.next_if(char::is_ascii_digit) {
        run.push(c);
    }
    run
}

/// The directory holding `path` (`/` for a top-level one).
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of `path`.
pub fn name(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `dir/name`.
pub fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Whether `name` can name a new file or directory: not empty, not `.` or `..`, no `/`.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("a name cannot be empty");
    }
    if name == "." || name == ".." {
        return Err("“.” and “..” cannot be names");
    }
    if name.contains('/') || name.contains('\0') {
        return Err("a name cannot contain “/”");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(path: &str, kind: FileKind) -> FileStat {
        FileStat { path: path.to_owned(), kind, size: 1, mode: 0o644, modified_ms: 0 }
    }

    fn names(tree: &Tree) -> Vec<String> {
        tree.rows().iter().map(|r| format!("{}{}", "  ".repeat(r.depth), r.entry.name)).collect()
    }

    #[test]
    fn directories_come_first_then_names_as_people_sort_them() {
        let mut tree = Tree::default();
        let listing = [
            stat("/workspace/file10.txt", FileKind::File),
            stat("/workspace/b.rs", FileKind::File),
            stat("/workspace/src", FileKind::Dir),
            stat("/workspace/file2.txt", FileKind::File),
            stat("/workspace/A.md", FileKind::File),
            stat("/workspace/.git", FileKind::Dir),
            stat("/workspace/a.md", FileKind::File),
            stat("/workspace/Zeta", FileKind::Dir),
        ];
        assert!(tree.set_listing(ROOT, &listing));
        assert_eq!(
            names(&tree),
            [".git", "src", "Zeta", "A.md", "a.md", "b.rs", "file2.txt", "file10.txt"]
        );
        assert!(!tree.set_listing(ROOT, &listing), "the same listing changes nothing");
        assert_eq!(natural("v1.9", "v1.10"), Ordering::Less);
        assert_eq!(natural("x007", "x7"), Ordering::Equal, "ties go to the exact name");
        assert_eq!(natural("abc", "abcd"), Ordering::Less);
    }

    #[test]
    fn expanded_directories_show_their_children_below_them() {
        let mut tree = Tree::default();
        tree.set_listing(
            ROOT,
            &[stat("/workspace/src", FileKind::Dir), stat("/workspace/z", FileKind::File)],
        );
        assert_eq!(names(&tree), ["src", "z"]);
        assert!(tree.toggle("/workspace/src"));
        // Not listed yet: nothing below it until its listing arrives.
        assert_eq!(names(&tree), ["src", "z"]);
        tree.set_listing(
            "/workspace/src",
            &[
                stat("/workspace/src/main.rs", FileKind::File),
                stat("/workspace/src/lib", FileKind::Dir),
            ],
        );
        assert_eq!(names(&tree), ["src", "  lib", "  main.rs", "z"]);
        assert_eq!(tree.shown_dirs(), ["/workspace", "/workspace/src"]);
        assert!(!tree.toggle("/workspace/src"));
        assert_eq!(names(&tree), ["src", "z"]);
        assert_eq!(tree.shown_dirs(), ["/workspace"]);
        assert!(tree.is_listed("/workspace/src"), "a closed directory keeps its listing");
    }

    #[test]
    fn a_directory_that_went_away_is_forgotten_with_everything_below_it() {
        let mut tree = Tree::default();
        tree.set_listing(ROOT, &[stat("/workspace/a", FileKind::Dir)]);
        tree.expand("/workspace/a/b");
        tree.set_listing("/workspace/a", &[stat("/workspace/a/b", FileKind::Dir)]);
        tree.set_listing("/workspace/a/b", &[stat("/workspace/a/b/f", FileKind::File)]);
        assert_eq!(names(&tree), ["a", "  b", "    f"]);
        tree.set_listing(ROOT, &[]);
        assert!(names(&tree).is_empty());
        assert!(!tree.is_listed("/workspace/a/b") && !tree.is_expanded("/workspace/a"));
        // A file of the same name later is not expanded.
        tree.set_listing(ROOT, &[stat("/workspace/a", FileKind::File)]);
        assert_eq!(tree.rows()[0].expanded, false);
    }

    #[test]
    fn a_renamed_directory_stays_open() {
        let mut tree = Tree::default();
        tree.set_listing(ROOT, &[stat("/workspace/old", FileKind::Dir)]);
        tree.expand("/workspace/old/sub");
        tree.moved("/workspace/old", "/workspace/new");
        assert!(tree.is_expanded("/workspace/new") && tree.is_expanded("/workspace/new/sub"));
        assert!(!tree.is_expanded("/workspace/old"));
        assert_eq!(
            moved_path("/workspace/old/x.rs", "/workspace/old", "/workspace/new").as_deref(),
            Some("/workspace/new/x.rs")
        );
        assert_eq!(moved_path("/workspace/older", "/workspace/old", "/workspace/new"), None);
        assert!(
            within("/workspace/old/a", "/workspace/old")
                && within("/workspace/old", "/workspace/old")
        );
        assert!(!within("/workspace/older", "/workspace/old"));
    }

    #[test]
    fn paths_split_and_names_are_checked() {
        assert_eq!(parent("/workspace/a/b.txt"), "/workspace/a");
        assert_eq!(parent("/workspace"), "/");
        assert_eq!(name("/workspace/a/b.txt"), "b.txt");
        assert_eq!(join("/workspace/", "x"), "/workspace/x");
        assert!(check_name("notes.md").is_ok());
        for bad in ["", "  ", ".", "..", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
