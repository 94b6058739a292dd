//! Block bytes in content-addressed files: `blocks/<xx>/<cid>`.
//!
//! A block is written to a temp file, fsynced and renamed into place, so a
//! crash leaves either the whole block or none of it. Every read is checked
//! against the CID all the same, because disks and filesystems fail too.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cid::Cid;
use tracing::warn;

use super::unixfs::{Block, verify};

pub struct BlockFiles {
    dir: PathBuf,
    tmp: PathBuf,
}

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
        File::open(shard)?.sync_all()
    }

    /// Deletes a block no object holds any more.
    pub fn remove(&self, cid: &str) -> io::Result<()> {
        let Ok(cid) = Cid::try_from(cid) else {
            return Ok(());
        };
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
        warn!(cid = %cid, path = %path.display(), "block fails its CID; dropping it");
        fs::remove_file(&path)?;
        Ok(None)
    }
}
