//! An open file's state, pure (tested natively): loading, refused or ready; unsaved changes
//! (Monaco's alternative version id against the one last saved, so undoing back to the saved
//! text is clean again); the file on disk as it was read or saved, and whether it changed or
//! went since, as the stat polls and a refused save tell.

/// The file on disk as the editor last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// `FileStat::modified_ms`: what a save's precondition names.
    pub modified_ms: i64,
    /// Bytes.
    pub size: u64,
}

/// The file on disk against the editor's [`Stamp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disk {
    /// As read or saved.
    InSync,
    /// Changed since, by someone else (the shell, an agent, another tab); the text says
    /// what is known about it.
    Changed(String),
    /// Deleted since.
    Deleted,
}

/// Where an open file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Being read.
    Loading,
    /// In the editor.
    Ready,
    /// Not opened, and why (too large, binary): it can still be downloaded.
    Refused(String),
    /// Reading it failed.
    Failed(String),
}

/// One open file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    /// Absolute path.
    pub path: String,
    /// Where it is.
    pub phase: Phase,
    /// Its text differs from what was last read or saved.
    pub dirty: bool,
    /// The file on disk against [`Doc::stamp`].
    pub disk: Disk,
    /// A save is on its way.
    pub saving: bool,
    /// What was read or saved last (none while loading).
    pub stamp: Option<Stamp>,
    /// Monaco's alternative version id of the text last read or saved.
    saved_version: u32,
    /// Bumped by each read and save: a stat asked before one is stale when it answers.
    generation: u64,
}

/// A save about to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Save {
    /// The precondition: the modification time the text was read or saved at; `None` to
    /// overwrite whatever is on disk.
    pub if_modified_ms: Option<i64>,
    /// The version being saved.
    pub version: u32,
}

impl Doc {
    /// A file being opened.
    pub fn loading(path: String) -> Doc {
        Doc {
            path,
            phase: Phase::Loading,
            dirty: false,
            disk: Disk::InSync,
            saving: false,
            stamp: None,
            saved_version: 0,
            generation: 0,
        }
    }

    /// Ready, or read again ("Reload from disk"): the text at `version` is what is on disk.
    pub fn loaded(&mut self, stamp: Stamp, version: u32) {
        self.phase = Phase::Ready;
        self.stamp = Some(stamp);
        self.saved_version = version;
        self.dirty = false;
        self.disk = Disk::InSync;
        self.generation += 1;
    }

    /// The text is now at `version`; true when that changed [`Doc::dirty`].
    pub fn edited(&mut self, version: u32) -> bool {
        let dirty = self.phase == Phase::Ready && version != self.saved_version;
        std::mem::replace(&mut self.dirty, dirty) != dirty
    }

    /// Would [`Doc::edited`] change anything (checked before touching a signal per key)?
    pub fn would_change(&self, version: u32) -> bool {
        (self.phase == Phase::Ready && version != self.saved_version) != self.dirty
    }

    /// Starts a save of the text at `version`: with the precondition, or `overwrite`. `None`
    /// when there is nothing to save yet or a save is already on its way.
    pub fn begin_save(&mut self, version: u32, overwrite: bool) -> Option<Save> {
        let stamp = self.stamp?;
        if self.phase != Phase::Ready || self.saving {
            return None;
        }
        self.saving = true;
        self.generation += 1;
        let if_modified_ms = (!overwrite).then_some(stamp.modified_ms);
        Some(Save { if_modified_ms, version })
    }

    /// The save went through: the disk holds `save.version`, as `stamp` says. The text may
    /// have changed meanwhile (typing goes on during a save): `now` is its version.
    pub fn saved(&mut self, save: Save, stamp: Stamp, now: u32) {
        self.saving = false;
        self.stamp = Some(stamp);
        self.saved_version = save.version;
        self.disk = Disk::InSync;
        self.dirty = now != save.version;
        self.generation += 1;
    }

    /// The save was refused: the file changed on disk since it was read or saved.
    pub fn save_refused(&mut self) {
        self.saving = false;
        if self.disk == Disk::InSync {
            self.disk = Disk::Changed("your save was refused so as not to lose it".to_owned());
        }
    }

    /// The save failed for another reason; nothing changed.
    pub fn save_failed(&mut self) {
        self.saving = false;
    }

    /// The poll's generation: pass it back to [`Doc::polled`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A stat of the file (asked at `generation`) answered `now` (`None`: no such file).
    /// True when that flagged something new. A stale answer (a read or save came between)
    /// and answers during a save are dropped: the save's own answer is the truth.
    pub fn polled(&mut self, generation: u64, now: Option<Stamp>) -> bool {
        let Some(held) = self.stamp else { return false };
        if generation != self.generation || self.saving || self.phase != Phase::Ready {
            return false;
        }
        let disk = match now {
            None => Disk::Deleted,
            Some(now) if now == held => return false,
            Some(now) if now.size == held.size => Disk::Changed("same size".to_owned()),
            Some(now) => Disk::Changed(format!("{} bytes now, {} before", now.size, held.size)),
        };
        // Flagged already: the first news stands (a second change is the same news).
        if self.disk != Disk::InSync && !(self.disk == Disk::Deleted && now.is_some()) {
            return false;
        }
        self.disk = disk;
        true
    }

    /// Changed or deleted on disk since it was read or saved.
    pub fn flagged(&self) -> bool {
        self.disk != Disk::InSync
    }

    /// A path change (the file or a directory above it was renamed).
    pub fn rename(&mut self, path: String) {
        self.path = path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Stamp = Stamp { modified_ms: 1_000, size: 5 };

    fn ready() -> Doc {
        let mut doc = Doc::loading("/workspace/a.txt".to_owned());
        doc.loaded(READ, 1);
        doc
    }

    #[test]
    fn edits_make_it_dirty_and_undoing_them_clean_again() {
        let mut doc = Doc::loading("/workspace/a.txt".to_owned());
        assert!(!doc.edited(3), "nothing is dirty while loading");
        doc.loaded(READ, 1);
        assert!(!doc.dirty);
        assert!(doc.would_change(2));
        assert!(doc.edited(2) && doc.dirty);
        assert!(!doc.would_change(3) && !doc.edited(3), "still dirty: no change to report");
        // Undo back to the saved text: Monaco gives the saved version id again.
        assert!(doc.edited(1) && !doc.dirty);
    }

    #[test]
    fn a_save_names_the_time_it_was_read_at_and_holds_the_new_one() {
        let mut doc = ready();
        doc.edited(4);
        let save = doc.begin_save(4, false).expect("a save");
        assert_eq!(save, Save { if_modified_ms: Some(1_000), version: 4 });
        assert_eq!(doc.begin_save(4, false), None, "one save at a time");
        // Typing went on during the save: still dirty after it.
        let written = Stamp { modified_ms: 2_000, size: 9 };
        doc.saved(save, written, 5);
        assert!(doc.dirty && !doc.saving);
        assert_eq!(doc.stamp, Some(written));
        let next = doc.begin_save(5, false).expect("a save");
        assert_eq!(next.if_modified_ms, Some(2_000));
        doc.saved(next, Stamp { modified_ms: 3_000, size: 10 }, 5);
        assert!(!doc.dirty);
        // Overwrite sends no precondition.
        assert_eq!(doc.begin_save(5, true).map(|s| s.if_modified_ms), Some(None));
    }

    #[test]
    fn a_change_on_disk_is_flagged_once_and_a_stale_poll_is_dropped() {
        let mut doc = ready();
        let asked = doc.generation();
        assert!(!doc.polled(asked, Some(READ)), "unchanged");
        assert!(!doc.flagged());
        assert!(doc.polled(asked, Some(Stamp { modified_ms: 1_500, size: 7 })));
        assert!(matches!(&doc.disk, Disk::Changed(why) if why.contains("7 bytes now")));
        assert!(!doc.polled(asked, Some(Stamp { modified_ms: 1_600, size: 8 })), "flagged once");
        // Deleted, then back with other contents: each is news.
        let mut doc = ready();
        assert!(doc.polled(doc.generation(), None) && doc.disk == Disk::Deleted);
        assert!(doc.polled(doc.generation(), Some(Stamp { modified_ms: 9, size: 1 })));
        assert!(matches!(doc.disk, Disk::Changed(_)));

        // A stat asked before our own save answers after it: dropped.
        let mut doc = ready();
        let asked = doc.generation();
        let save = doc.begin_save(1, false).expect("a save");
        assert!(!doc.polled(asked, Some(Stamp { modified_ms: 2_000, size: 5 })), "during the save");
        doc.saved(save, Stamp { modified_ms: 2_000, size: 5 }, 1);
        assert!(!doc.polled(asked, Some(Stamp { modified_ms: 2_000, size: 5 })), "asked before");
        assert!(!doc.flagged());
    }

    #[test]
    fn a_refused_save_flags_the_change_and_reload_or_overwrite_clear_it() {
        let mut doc = ready();
        doc.edited(2);
        doc.begin_save(2, false).expect("a save");
        doc.save_refused();
        assert!(doc.flagged() && doc.dirty && !doc.saving);
        // Overwrite: no precondition, and the flag goes with the answer.
        let save = doc.begin_save(2, true).expect("a save");
        assert_eq!(save.if_modified_ms, None);
        doc.saved(save, Stamp { modified_ms: 5_000, size: 3 }, 2);
        assert!(!doc.flagged() && !doc.dirty);
        // Reload: read again, the text replaced.
        doc.polled(doc.generation(), Some(Stamp { modified_ms: 6_000, size: 4 }));
        assert!(doc.flagged());
        doc.loaded(Stamp { modified_ms: 6_000, size: 4 }, 7);
        assert!(!doc.flagged() && !doc.dirty);
        assert!(!doc.edited(7));
        // A failed save (network) changes nothing but lets the next one go.
        doc.edited(8);
        doc.begin_save(8, false).expect("a save");
        doc.save_failed();
        assert!(doc.dirty && !doc.flagged() && doc.begin_save(8, false).is_some());
    }
}
