//! The data-dir lock: one agent per `data_dir`, as the keyring file and
//! every other piece of state below it assume.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use crate::Error;

/// The lock file's name inside `data_dir`.
pub const LOCK_FILE: &str = "consul-sec.lock";

/// An exclusive advisory lock on `<data_dir>/consul-sec.lock`, held until
/// dropped (or until the process exits, whatever way it exits).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `data_dir` if needed and takes the lock, writing this
    /// process's id into the file. A second agent gets
    /// [`Error::DataDirLocked`] naming the holder's pid.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, Error> {
        let path = data_dir.join(LOCK_FILE);
        let fail = |source| Error::DataDirLock { path: path.clone(), source };
        std::fs::create_dir_all(data_dir).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = Some(holder.trim().to_owned()).filter(|h| !h.is_empty());
                return Err(Error::DataDirLocked { path, holder });
            }
            Err(TryLockError::Error(source)) => return Err(fail(source)),
        }
        file.set_len(0).map_err(fail)?;
        file.seek(SeekFrom::Start(0)).map_err(fail)?;
        write!(file, "{}", std::process::id()).map_err(fail)?;
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).unwrap();
        assert_eq!(std::fs::read_to_string(first.path()).unwrap(), std::process::id().to_string());
        let err = DataDirLock::acquire(&data).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: data_dir is in use by another consul-sec agent (pid {}); stop it or pick another -data-dir",
                data.join(LOCK_FILE).display(),
                std::process::id()
            )
        );
        drop(first);
        DataDirLock::acquire(&data).unwrap();
    }
}
