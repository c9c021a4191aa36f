//! The serf/Consul keyring file: a JSON array of base64 keys, primary first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::{Error, Keyring, SecretKey};

/// Mode of a written keyring file, whatever the umask.
const FILE_MODE: u32 = 0o600;

/// Loads a keyring file (`serf/local.keyring`, serf's `-keyring-file`): a
/// JSON array of standard-base64 keys, the first one primary.
///
/// Errors name the path and what is wrong: unreadable, not JSON, not an
/// array of strings, an invalid key (with its index), or no keys at all
/// (Consul: `no keys present in keyring`). Loading never writes.
pub fn load_keyring_file(path: impl AsRef<Path>) -> Result<Keyring, Error> {
    let path = path.as_ref();
    let text = Zeroizing::new(
        fs::read(path)
            .map_err(|source| Error::KeyringFileRead { path: path.to_owned(), source })?,
    );
    // The parser's errors give a line and column, never the content.
    let mut value: Value = serde_json::from_slice(&text)
        .map_err(|source| Error::KeyringFileJson { path: path.to_owned(), source })?;
    let shape = |found: String| Error::KeyringFileShape { path: path.to_owned(), found };
    let Value::Array(items) = &mut value else {
        return Err(shape(format!("found {}", describe(&value))));
    };
    if items.is_empty() {
        return Err(Error::KeyringFileEmpty { path: path.to_owned() });
    }
    let mut keys = Vec::with_capacity(items.len());
    for (index, item) in items.iter_mut().enumerate() {
        let Value::String(text) = item else {
            return Err(shape(format!("entry {index} is {}", describe(item))));
        };
        // Take the text out of the JSON tree so it is wiped after parsing.
        let text = Zeroizing::new(std::mem::take(text));
        let key = SecretKey::from_base64(&text).map_err(|source| Error::KeyringFileKey {
            path: path.to_owned(),
            index,
            source: Box::new(source),
        })?;
        keys.push(key);
    }
    Keyring::from_keys(keys)
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Saves `keyring` as a keyring file, primary first, with two-space
/// indentation and no trailing newline, as serf writes it.
///
/// The write is atomic: a temporary file in the same directory is written,
/// flushed to disk, renamed over `path`, and the directory is flushed. The
/// file gets mode 0600 whatever the umask (serf keeps the mode of an
/// existing file; here the file is always replaced, so it is always 0600).
/// If any step before the rename fails the old file is untouched and the
/// temporary file is removed. An empty keyring is an [`Error::EmptyKeyring`]:
/// such a file could not be loaded again.
pub fn save_keyring_file(path: impl AsRef<Path>, keyring: &Keyring) -> Result<(), Error> {
    let path = path.as_ref();
    let keys = keyring.keys();
    if keys.is_empty() {
        return Err(Error::EmptyKeyring);
    }
    let encoded: Vec<Zeroizing<String>> = keys.iter().map(SecretKey::to_base64).collect();
    let texts: Vec<&str> = encoded.iter().map(|s| s.as_str()).collect();
    let json = Zeroizing::new(serde_json::to_vec_pretty(&texts).map_err(|err| {
        Error::KeyringFileWrite { path: path.to_owned(), step: "encode", source: err.into() }
    })?);
    write_atomic(path, &json)
}

fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let fail = |step: &'static str| {
        move |source: io::Error| Error::KeyringFileWrite { path: path.to_owned(), step, source }
    };
    let name = path.file_name().ok_or_else(|| {
        fail("name the file")(io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .map_err(fail("create temporary file"))?;
    let written = (|| {
        // The umask may have removed bits from the creation mode; set it
        // explicitly.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(fail("set permissions"))?;
        file.write_all(contents).map_err(fail("write"))?;
        file.sync_all().map_err(fail("sync"))?;
        injected_failure().map_err(fail("rename"))?;
        fs::rename(&tmp, path).map_err(fail("rename"))
    })();
    drop(file);
    if let Err(err) = written {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    // Make the rename itself durable.
    File::open(&dir).and_then(|d| d.sync_all()).map_err(fail("sync directory"))
}

#[cfg(test)]
thread_local! {
    static FAIL_BEFORE_RENAME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Unit tests can make the step just before the rename fail.
fn injected_failure() -> io::Result<()> {
    #[cfg(test)]
    if FAIL_BEFORE_RENAME.with(|f| f.get()) {
        return Err(io::Error::other("injected failure"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_before_rename_keeps_old_file_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.keyring");
        let old = SecretKey::from_bytes(&[1; 32]).unwrap();
        save_keyring_file(&path, &Keyring::from_keys([old.clone()]).unwrap()).unwrap();
        let before = fs::read(&path).unwrap();

        let new = Keyring::from_keys([SecretKey::from_bytes(&[2; 32]).unwrap()]).unwrap();
        FAIL_BEFORE_RENAME.with(|f| f.set(true));
        let err = save_keyring_file(&path, &new).unwrap_err();
        FAIL_BEFORE_RENAME.with(|f| f.set(false));

        assert!(matches!(err, Error::KeyringFileWrite { step: "rename", .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(load_keyring_file(&path).unwrap().keys(), vec![old]);
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("local.keyring")]);
    }
}
