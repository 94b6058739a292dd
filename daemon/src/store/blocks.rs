//! Block bytes in content-addressed files: `blocks/<xx>/<cid>`.
//!
//! A block is written to a temp file, fsynced and renamed into place, so a
//! crash leaves either the whole block or none of it. Every read is checked
//! against the CID all the same, because disks and filesystems fail too; a
//! file opened to be sent as it is (`open_checked`) is hashed when this
//! process has not yet checked it as it now stands.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use cid::Cid;
use tracing::warn;

use super::unixfs::{Block, verify};

pub struct BlockFiles {
    dir: PathBuf,
    tmp: PathBuf,
    /// Block files this process checked against their CIDs, as they were
    /// then. Any write to a file, by anything, changes its ctime, so a
    /// file whose stamp still matches holds the bytes that were checked.
    checked: Mutex<HashMap<Cid, Stamp>>,
}

/// A file's identity and its last change, as `stat(2)` gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The stamp of an open file, as it stands now.
    pub fn now(file: &File) -> io::Result<Self> {
        Ok(Self::of(&file.metadata()?))
    }

    fn of(m: &fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Stamps kept at most; past it the oldest are simply checked again.
const MAX_CHECKED: usize = 1 << 16;

impl BlockFiles {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let tmp = dir.join(".tmp");
        // Leftovers are writes a crash interrupted; they were never renamed in.
        if tmp.exists() {
            let interrupted = fs::read_dir(&tmp)?.count();
            if interrupted > 0 {
                warn!(interrupted, "discarding block writes a crash interrupted");
            }
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            tmp,
            checked: Mutex::default(),
        })
    }

    #[cfg(test)]
    pub fn path_of(&self, cid: &Cid) -> PathBuf {
        self.path(cid)
    }

    fn path(&self, cid: &Cid) -> PathBuf {
        let name = cid.to_string();
        let shard = &name[name.len().saturating_sub(2)..];
        self.dir.join(shard).join(name)
    }

    pub fn put(&self, block: &Block) -> io::Result<()> {
        if self.get(&block.cid)?.is_some() {
            return Ok(());
        }
        let path = self.path(&block.cid);
        let shard = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(shard)?;
        let tmp = self
            .tmp
            .join(format!("{}.{:016x}", block.cid, rand::random::<u64>()));
        let written = File::create(&tmp).and_then(|mut file| {
            file.write_all(&block.data)?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
            // A partial temp file only takes room a full disk lacks.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // The rename itself must reach the disk before the index names the block.
        File::open(shard)?.sync_all()?;
        // Its bytes were checked by the import that made the block.
        if let Ok(m) = fs::metadata(&path) {
            self.stamp(block.cid, Stamp::of(&m));
        }
        Ok(())
    }

    fn stamp(&self, cid: Cid, stamp: Stamp) {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.len() >= MAX_CHECKED {
            checked.clear();
        }
        checked.insert(cid, stamp);
    }

    fn unstamp(&self, cid: &Cid) {
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cid);
    }

    /// The block's file, open, if present and intact: hashed only when
    /// this process has not checked it as it now stands. A block that
    /// fails its CID is deleted and reported as absent, as by `get`.
    pub fn open_checked(&self, cid: &Cid) -> io::Result<Option<(File, Stamp)>> {
        let path = self.path(cid);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let before = Stamp::of(&file.metadata()?);
        let known = self
            .checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(cid)
            .copied();
        if known == Some(before) {
            return Ok(Some((file, before)));
        }
        let mut data = Vec::with_capacity(before.len as usize);
        file.read_to_end(&mut data)?;
        if !verify(cid, &data) {
            return self.drop_damaged(cid, &path).map(|()| None);
        }
        // Changed while being read: checked bytes, but not a stamp to trust.
        if Stamp::of(&file.metadata()?) != before || data.len() as u64 != before.len {
            return Ok(None);
        }
        self.stamp(*cid, before);
        Ok(Some((file, before)))
    }

    /// Deletes a block no object holds any more.
    pub fn remove(&self, cid: &str) -> io::Result<()> {
        let Ok(cid) = Cid::try_from(cid) else {
            return Ok(());
        };
        self.unstamp(&cid);
        match fs::remove_file(self.path(&cid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The block's bytes if present and intact. A block that fails its CID is
    /// deleted and reported as absent, so it is fetched again.
    pub fn get(&self, cid: &Cid) -> io::Result<Option<Bytes>> {
        let path = self.path(cid);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if verify(cid, &data) {
            return Ok(Some(data.into()));
        }
        self.drop_damaged(cid, &path).map(|()| None)
    }

    /// Deletes a block file that failed its CID, so it is fetched again.
    fn drop_damaged(&self, cid: &Cid, path: &Path) -> io::Result<()> {
        warn!(cid = %cid, path = %path.display(), "block fails its CID; dropping it");
        self.unstamp(cid);
        fs::remove_file(path)
    }
}
