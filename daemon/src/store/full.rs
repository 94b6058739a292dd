//! A full disk: writes are refused before the disk fills (so sled always
//! has room for its own log), `ENOSPC` is reported the same way, and the
//! warning is logged once a minute however many writes fail.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::warn;

use super::{Inner, StoreError};

const WARN_EVERY: Duration = Duration::from_secs(60);

/// Bytes an unprivileged writer may still use on the filesystem of `dir`.
fn available(dir: &Path) -> io::Result<u64> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

pub(super) fn is_enospc(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(libc::ENOSPC)
}

impl Inner {
    /// Refuses a write of `bytes` that would leave less than `min_free` on the disk.
    pub(super) fn check_room(&self, bytes: u64) -> Result<(), StoreError> {
        let free = available(&self.dir)?;
        if free < bytes.saturating_add(self.min_free) {
            return Err(self.full(free));
        }
        Ok(())
    }

    /// Counts and (now and then) logs a refused write.
    pub(super) fn full(&self, free: u64) -> StoreError {
        self.full_errors.fetch_add(1, Ordering::Relaxed);
        let mut last = self.full_warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            warn!(
                dir = %self.dir.display(),
                free,
                min_free = self.min_free,
                refused = self.full_errors.load(Ordering::Relaxed),
                "store disk full: segments are served but not stored"
            );
        }
        StoreError::Full { free }
    }
}
