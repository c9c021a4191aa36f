//! The agent's LAN keyring: set up at start from `encrypt` and
//! `<data_dir>/serf/local.keyring` with Consul's precedence, then kept in
//! step with the file on every key change.
//!
//! Consul's rules (`setupBaseKeyrings`), reproduced here:
//!
//! * `disable_keyring_file`: no file is read or written; `encrypt` (if any)
//!   is the only key, in memory.
//! * otherwise, on first start `encrypt` seeds the file (directory 0700,
//!   file 0600, written atomically);
//! * an existing file always wins over `encrypt`, which is then not added;
//!   the agent warns (`WARNING: LAN keyring exists but -encrypt given, using
//!   keyring`, and `keyring doesn't include key provided with -encrypt, using
//!   keyring` when the file lacks that key);
//! * a file without `encrypt` turns encryption on by itself.
//!
//! The `encrypt` key arrives already checked (standard base64 of 16, 24 or
//! 32 bytes) from `consul-sec-config`, so a bad key stops the agent before
//! this module writes anything.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use consul_sec_config::GossipSettings;
use consul_sec_gossip_crypto::{Keyring, SecretKey, load_keyring_file, save_keyring_file};

use crate::Error;

/// The LAN keyring file below `data_dir`, as Consul names it.
pub const LAN_KEYRING_FILE: &str = "serf/local.keyring";

/// Printed when `encrypt` is given but a keyring file already exists
/// (Consul up to 1.7, and the acceptance wording).
pub const WARN_KEYRING_EXISTS: &str =
    "WARNING: LAN keyring exists but -encrypt given, using keyring";

/// Logged when the existing keyring file does not hold the `encrypt` key
/// (newer Consul, with `keyring=LAN`).
pub const WARN_KEY_NOT_IN_KEYRING: &str =
    "keyring doesn't include key provided with -encrypt, using keyring";

/// A keyring change requested through the cluster (serf's key queries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// Add a key (memberlist `AddKey`); a key already present is a no-op.
    Install(SecretKey),
    /// Make an installed key the primary key.
    Use(SecretKey),
    /// Remove a key that is not the primary.
    Remove(SecretKey),
}

/// The keyring in use plus where it is persisted.
///
/// The [`Keyring`] is a shared handle: the gossip engine encrypts with the
/// same ring this store changes. Every change made through
/// [`KeyringStore::apply`] is written to the file before `apply` returns.
#[derive(Debug)]
pub struct KeyringStore {
    keyring: Keyring,
    file: Option<PathBuf>,
    /// Serialises change + save so the file always ends with the last state.
    write: Mutex<()>,
}

impl KeyringStore {
    /// A store that keeps `keyring` in `file` (or only in memory with `None`).
    pub fn new(keyring: Keyring, file: Option<PathBuf>) -> KeyringStore {
        KeyringStore { keyring, file, write: Mutex::new(()) }
    }

    /// The shared keyring handle.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The keyring file, `None` with `disable_keyring_file`.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether gossip is encrypted: the ring holds at least one key.
    pub fn encryption_enabled(&self) -> bool {
        !self.keyring.is_empty()
    }

    /// Applies `change` to the ring, then writes the file (when there is
    /// one); returns only after the file holds the new state.
    ///
    /// Errors: [`Error::NoKeyring`] when encryption is off (serf refuses to
    /// create a ring through a key query), [`Error::KeyOperation`] for
    /// memberlist's refusals (the ring is unchanged), [`Error::KeyringWrite`]
    /// when the file cannot be written (the ring has changed in memory, as in
    /// serf, and the error is what the operation reports).
    pub fn apply(&self, change: &KeyChange) -> Result<(), Error> {
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        if self.keyring.is_empty() {
            return Err(Error::NoKeyring);
        }
        match change {
            KeyChange::Install(key) => self.keyring.install_key(key.clone()),
            KeyChange::Use(key) => self.keyring.use_key(key),
            KeyChange::Remove(key) => self.keyring.remove_key(key),
        }
        .map_err(Error::KeyOperation)?;
        self.save_locked()
    }

    /// Writes the current ring to the file, for changes the gossip engine
    /// made itself (a key query from another member).
    pub fn persist(&self) -> Result<(), Error> {
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        self.save_locked()
    }

    fn save_locked(&self) -> Result<(), Error> {
        match &self.file {
            Some(path) if !self.keyring.is_empty() => {
                save_keyring_file(path, &self.keyring).map_err(Error::KeyringWrite)
            }
            _ => Ok(()),
        }
    }
}

/// What [`setup_keyring`] produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct KeyringSetup {
    /// The keyring and its file.
    pub store: KeyringStore,
    /// Warnings to show the user (Consul's wording, see the module docs).
    pub warnings: Vec<String>,
    /// Whether the file was created from `encrypt` by this call.
    pub created: bool,
}

/// Builds the LAN keyring with Consul's precedence (see the module docs).
///
/// `data_dir` is required unless `disable_keyring_file` is set. Errors are
/// [`Error::KeyringSetup`] (`Failed to configure keyring: ...`) for an
/// unreadable or invalid file, [`Error::KeyringDir`] when `serf/` cannot
/// be created, and [`Error::NoDataDir`].
pub fn setup_keyring(
    gossip: &GossipSettings,
    data_dir: Option<&Path>,
) -> Result<KeyringSetup, Error> {
    if gossip.disable_keyring_file {
        // Existing files are ignored entirely; the key (if any) lives in memory.
        let keyring = match &gossip.encrypt {
            Some(key) => Keyring::from_keys([key.clone()]).map_err(Error::KeyringSetup)?,
            None => Keyring::empty(),
        };
        return Ok(KeyringSetup {
            store: KeyringStore::new(keyring, None),
            warnings: Vec::new(),
            created: false,
        });
    }
    let data_dir = data_dir.ok_or(Error::NoDataDir)?;
    let path = data_dir.join(LAN_KEYRING_FILE);
    let exists = path.try_exists().map_err(|source| {
        Error::KeyringSetup(consul_sec_gossip_crypto::Error::KeyringFileRead {
            path: path.clone(),
            source,
        })
    })?;
    let mut warnings = Vec::new();
    let mut created = false;
    match (&gossip.encrypt, exists) {
        (Some(key), false) => {
            let dir = path.parent().unwrap_or(data_dir);
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| Error::KeyringDir { path: dir.to_owned(), source })?;
            let keyring = Keyring::from_keys([key.clone()]).map_err(Error::KeyringSetup)?;
            save_keyring_file(&path, &keyring).map_err(Error::KeyringSetup)?;
            created = true;
        }
        (Some(_), true) => warnings.push(WARN_KEYRING_EXISTS.to_owned()),
        (None, _) => {}
    }
    if !exists && !created {
        // No key anywhere: gossip is not encrypted. The file's place is kept
        // so a key installed later would be persisted, but serf refuses key
        // changes on an unencrypted node, so nothing is written.
        return Ok(KeyringSetup {
            store: KeyringStore::new(Keyring::empty(), Some(path)),
            warnings,
            created,
        });
    }
    let keyring = load_keyring_file(&path).map_err(Error::KeyringSetup)?;
    if let Some(key) = &gossip.encrypt
        && !created
        && !keyring.keys().contains(key)
    {
        warnings.push(format!("{WARN_KEY_NOT_IN_KEYRING} (keyring=LAN)"));
    }
    Ok(KeyringSetup { store: KeyringStore::new(keyring, Some(path)), warnings, created })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn settings(encrypt: Option<SecretKey>, disable_keyring_file: bool) -> GossipSettings {
        // GossipSettings is non-exhaustive: start from a loaded default.
        let options = consul_sec_config::LoadOptions { dev: true, ..Default::default() };
        let mut gossip = consul_sec_config::load(&options, std::iter::empty::<(String, String)>())
            .unwrap()
            .config
            .gossip;
        gossip.encrypt = encrypt;
        gossip.disable_keyring_file = disable_keyring_file;
        gossip
    }

    fn file_keys(path: &Path) -> Vec<SecretKey> {
        load_keyring_file(path).unwrap().keys()
    }

    #[test]
    fn encrypt_seeds_a_new_file_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let setup = setup_keyring(&settings(Some(key(1)), false), Some(dir.path())).unwrap();
        let path = dir.path().join("serf/local.keyring");
        assert!(setup.created);
        assert!(setup.warnings.is_empty());
        assert_eq!(setup.store.file(), Some(path.as_path()));
        assert_eq!(file_keys(&path), vec![key(1)]);
        assert_eq!(setup.store.keyring().keys(), vec![key(1)]);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let serf = dir.path().join("serf");
        assert_eq!(fs::metadata(&serf).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn existing_file_wins_and_warns_when_it_lacks_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAN_KEYRING_FILE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        save_keyring_file(&path, &Keyring::from_keys([key(2), key(3)]).unwrap()).unwrap();
        let before = fs::read(&path).unwrap();

        let setup = setup_keyring(&settings(Some(key(1)), false), Some(dir.path())).unwrap();
        assert!(!setup.created);
        assert_eq!(setup.store.keyring().keys(), vec![key(2), key(3)]);
        assert_eq!(
            setup.warnings,
            vec![
                WARN_KEYRING_EXISTS.to_owned(),
                format!("{WARN_KEY_NOT_IN_KEYRING} (keyring=LAN)")
            ]
        );
        assert_eq!(fs::read(&path).unwrap(), before, "the file must be left untouched");
    }

    #[test]
    fn existing_file_holding_the_key_gives_only_the_exists_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAN_KEYRING_FILE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        save_keyring_file(&path, &Keyring::from_keys([key(2), key(1)]).unwrap()).unwrap();
        let setup = setup_keyring(&settings(Some(key(1)), false), Some(dir.path())).unwrap();
        assert_eq!(setup.warnings, vec![WARN_KEYRING_EXISTS.to_owned()]);
        assert_eq!(setup.store.keyring().primary_key(), Some(key(2)));
    }

    #[test]
    fn file_without_encrypt_turns_encryption_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAN_KEYRING_FILE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        save_keyring_file(&path, &Keyring::from_keys([key(4), key(5)]).unwrap()).unwrap();
        let setup = setup_keyring(&settings(None, false), Some(dir.path())).unwrap();
        assert!(setup.warnings.is_empty());
        assert!(setup.store.encryption_enabled());
        assert_eq!(setup.store.keyring().keys(), vec![key(4), key(5)]);
    }

    #[test]
    fn no_key_and_no_file_means_no_encryption_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let setup = setup_keyring(&settings(None, false), Some(dir.path())).unwrap();
        assert!(!setup.store.encryption_enabled());
        assert!(!dir.path().join("serf").exists());
        assert!(matches!(setup.store.apply(&KeyChange::Install(key(1))), Err(Error::NoKeyring)));
        assert!(!dir.path().join("serf").exists());
    }

    #[test]
    fn disable_keyring_file_keeps_the_key_in_memory_and_ignores_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAN_KEYRING_FILE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        save_keyring_file(&path, &Keyring::from_keys([key(9)]).unwrap()).unwrap();
        let before = fs::read(&path).unwrap();

        let setup = setup_keyring(&settings(Some(key(1)), true), Some(dir.path())).unwrap();
        assert_eq!(setup.store.file(), None);
        assert_eq!(setup.store.keyring().keys(), vec![key(1)]);
        setup.store.apply(&KeyChange::Install(key(2))).unwrap();
        assert_eq!(setup.store.keyring().keys(), vec![key(1), key(2)]);
        assert_eq!(fs::read(&path).unwrap(), before);

        let none = setup_keyring(&settings(None, true), None).unwrap();
        assert!(!none.store.encryption_enabled(), "existing files are ignored");
    }

    #[test]
    fn empty_or_invalid_file_fails_with_consuls_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAN_KEYRING_FILE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "[]").unwrap();
        let err = setup_keyring(&settings(None, false), Some(dir.path())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Failed to configure keyring: {}: no keys present in keyring", path.display())
        );
        fs::write(&path, "{").unwrap();
        let err = setup_keyring(&settings(Some(key(1)), false), Some(dir.path())).unwrap_err();
        assert!(matches!(err, Error::KeyringSetup(_)), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), b"{", "a broken file is not overwritten");
    }

    #[test]
    fn keyring_file_needs_a_data_dir() {
        let err = setup_keyring(&settings(Some(key(1)), false), None).unwrap_err();
        assert!(matches!(err, Error::NoDataDir), "{err:?}");
    }

    #[test]
    fn every_change_is_in_the_file_before_apply_returns() {
        let dir = tempfile::tempdir().unwrap();
        let setup = setup_keyring(&settings(Some(key(1)), false), Some(dir.path())).unwrap();
        let store = setup.store;
        let path = dir.path().join(LAN_KEYRING_FILE);

        store.apply(&KeyChange::Install(key(2))).unwrap();
        assert_eq!(file_keys(&path), vec![key(1), key(2)]);
        store.apply(&KeyChange::Use(key(2))).unwrap();
        assert_eq!(file_keys(&path), vec![key(2), key(1)]);
        store.apply(&KeyChange::Remove(key(1))).unwrap();
        assert_eq!(file_keys(&path), vec![key(2)]);

        let err = store.apply(&KeyChange::Remove(key(2))).unwrap_err();
        assert_eq!(err.to_string(), "keyring: removing the primary key is not allowed");
        let err = store.apply(&KeyChange::Use(key(7))).unwrap_err();
        assert_eq!(err.to_string(), "keyring: requested key is not in the keyring");
        assert_eq!(file_keys(&path), vec![key(2)]);
    }

    #[test]
    fn a_failed_write_is_the_operations_error() {
        let dir = tempfile::tempdir().unwrap();
        let setup = setup_keyring(&settings(Some(key(1)), false), Some(dir.path())).unwrap();
        // Make the directory read-only so the temporary file cannot be created.
        let serf = dir.path().join("serf");
        fs::set_permissions(&serf, fs::Permissions::from_mode(0o500)).unwrap();
        let probe = serf.join("probe");
        if fs::write(&probe, b"x").is_ok() {
            // Running as root: permissions do not stop writes; use a missing directory instead.
            fs::remove_file(&probe).unwrap();
            fs::set_permissions(&serf, fs::Permissions::from_mode(0o700)).unwrap();
            fs::remove_dir_all(&serf).unwrap();
        }
        let err = setup.store.apply(&KeyChange::Install(key(2))).unwrap_err();
        assert!(matches!(err, Error::KeyringWrite(_)), "{err:?}");
        assert!(err.to_string().starts_with("Failed to write keyring file: "), "{err}");
        let _ = fs::set_permissions(&serf, fs::Permissions::from_mode(0o700));
    }
}
