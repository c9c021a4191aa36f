//! The keyring: an ordered set of keys, primary first, shared between
//! threads.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::cipher::Cipher;
use crate::{Error, SecretKey};

/// One installed key with its cipher, keyed once when the key was added.
pub(crate) struct Entry {
    pub(crate) key: SecretKey,
    pub(crate) cipher: Cipher,
}

/// An immutable view of the ring. Rotations build a new snapshot and swap
/// it in, so readers never wait for key schedules and never see a
/// half-updated ring.
pub(crate) struct Snapshot {
    pub(crate) entries: Vec<Arc<Entry>>,
    /// Index of the key that opened the last frame. Opening tries it first:
    /// which key authenticates a frame does not depend on the order keys are
    /// tried in, and in steady state one key keeps matching.
    pub(crate) hint: AtomicUsize,
}

/// memberlist's keyring: an ordered list of distinct keys where index 0 is
/// the primary key.
///
/// The primary key seals every outgoing message; opening tries every key.
/// The add/use/remove rules are memberlist's, including its silent cases:
/// installing a key that is already present and removing one that is not are
/// both successes that change nothing.
///
/// A `Keyring` is a handle: clones share the same ring, so the gossip engine
/// and the agent's key management see one state. It is safe to seal and open
/// from many threads while another thread rotates keys; each operation works
/// on a consistent snapshot of the ring.
#[derive(Clone)]
pub struct Keyring {
    shared: Arc<RwLock<Arc<Snapshot>>>,
}

impl Keyring {
    /// An empty keyring: encryption is off until a key is installed.
    pub fn empty() -> Keyring {
        Keyring::from_entries(Vec::new(), 0)
    }

    /// Builds a keyring the way memberlist's `NewKeyring` does: the primary
    /// key first, then `keys` in order with duplicates (including the
    /// primary) skipped. With no keys and no primary the ring is empty;
    /// keys without a primary are an [`Error::EmptyPrimaryKey`].
    pub fn new(
        keys: impl IntoIterator<Item = SecretKey>,
        primary: Option<SecretKey>,
    ) -> Result<Keyring, Error> {
        let mut keys = keys.into_iter().peekable();
        let Some(primary) = primary else {
            return match keys.peek() {
                Some(_) => Err(Error::EmptyPrimaryKey),
                None => Ok(Keyring::empty()),
            };
        };
        Keyring::from_keys(std::iter::once(primary).chain(keys))
    }

    /// A keyring holding `keys` in order, the first one primary, duplicates
    /// skipped (the order of a keyring file).
    pub fn from_keys(keys: impl IntoIterator<Item = SecretKey>) -> Result<Keyring, Error> {
        let mut entries: Vec<Arc<Entry>> = Vec::new();
        for key in keys {
            if !entries.iter().any(|e| e.key == key) {
                let cipher = Cipher::new(&key)?;
                entries.push(Arc::new(Entry { key, cipher }));
            }
        }
        Ok(Keyring::from_entries(entries, 0))
    }

    fn from_entries(entries: Vec<Arc<Entry>>, hint: usize) -> Keyring {
        Keyring { shared: Arc::new(RwLock::new(Arc::new(Snapshot { entries, hint: hint.into() }))) }
    }

    /// The current state of the ring.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        // A panic while holding the lock cannot leave a half-written
        // snapshot (writers only swap a finished `Arc`), so a poisoned lock
        // is still consistent.
        Arc::clone(&self.shared.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` on the current state of the ring under the read lock: on the
    /// per-message path this saves the reference-count traffic of cloning
    /// the snapshot. Writers wait at most one seal or open.
    pub(crate) fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.shared.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the ring with what `change` makes of the current entries.
    fn update(
        &self,
        change: impl FnOnce(&[Arc<Entry>]) -> Result<Option<Vec<Arc<Entry>>>, Error>,
    ) -> Result<(), Error> {
        let mut guard = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        let Some(entries) = change(&guard.entries)? else { return Ok(()) };
        // Keep pointing the hint at the same key if it is still installed.
        let old_hint = guard.hint.load(Ordering::Relaxed);
        let hint = guard
            .entries
            .get(old_hint)
            .and_then(|hinted| entries.iter().position(|e| Arc::ptr_eq(e, hinted)))
            .unwrap_or(0);
        *guard = Arc::new(Snapshot { entries, hint: hint.into() });
        Ok(())
    }

    /// Installs a key at the end of the ring (memberlist `AddKey`). A key
    /// already present is left where it is; into an empty ring the key
    /// becomes the primary key. The cipher is keyed here, once.
    pub fn install_key(&self, key: SecretKey) -> Result<(), Error> {
        let cipher = Cipher::new(&key)?;
        let entry = Arc::new(Entry { key, cipher });
        self.update(|entries| {
            if entries.iter().any(|e| e.key == entry.key) {
                return Ok(None);
            }
            let mut next = entries.to_vec();
            next.push(entry);
            Ok(Some(next))
        })
    }

    /// Makes an installed key the primary key (memberlist `UseKey`); the
    /// other keys keep their relative order. A key that is not installed is
    /// an [`Error::KeyNotInKeyring`].
    pub fn use_key(&self, key: &SecretKey) -> Result<(), Error> {
        self.update(|entries| {
            let index = entries.iter().position(|e| &e.key == key).ok_or(Error::KeyNotInKeyring)?;
            if index == 0 {
                return Ok(None);
            }
            let mut next = entries.to_vec();
            let chosen = next.remove(index);
            next.insert(0, chosen);
            Ok(Some(next))
        })
    }

    /// Removes a key (memberlist `RemoveKey`). Removing the primary key is an
    /// [`Error::RemovePrimaryKey`]; removing a key that is not installed
    /// succeeds and changes nothing; removing from an empty ring is an
    /// [`Error::EmptyKeyring`] (Go panics there).
    pub fn remove_key(&self, key: &SecretKey) -> Result<(), Error> {
        self.update(|entries| {
            let primary = entries.first().ok_or(Error::EmptyKeyring)?;
            if &primary.key == key {
                return Err(Error::RemovePrimaryKey);
            }
            if !entries.iter().any(|e| &e.key == key) {
                return Ok(None);
            }
            Ok(Some(entries.iter().filter(|e| &e.key != key).cloned().collect()))
        })
    }

    /// The installed keys, primary first.
    pub fn keys(&self) -> Vec<SecretKey> {
        self.snapshot().entries.iter().map(|e| e.key.clone()).collect()
    }

    /// The primary key, `None` when the ring is empty.
    pub fn primary_key(&self) -> Option<SecretKey> {
        self.snapshot().entries.first().map(|e| e.key.clone())
    }

    /// How many keys are installed.
    pub fn len(&self) -> usize {
        self.snapshot().entries.len()
    }

    /// `true` when no key is installed, i.e. encryption is off.
    pub fn is_empty(&self) -> bool {
        self.snapshot().entries.is_empty()
    }
}

impl Default for Keyring {
    fn default() -> Keyring {
        Keyring::empty()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.snapshot();
        let sizes: Vec<String> =
            snapshot.entries.iter().map(|e| e.key.size().to_string()).collect();
        f.debug_struct("Keyring").field("keys", &sizes).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 16]).unwrap()
    }

    #[test]
    fn hint_follows_its_key_through_rotation() {
        let ring = Keyring::from_keys([key(1), key(2), key(3)]).unwrap();
        ring.snapshot().hint.store(2, Ordering::Relaxed);
        ring.use_key(&key(3)).unwrap();
        // key(3) moved to index 0; the hint moved with it.
        assert_eq!(ring.snapshot().hint.load(Ordering::Relaxed), 0);
        ring.snapshot().hint.store(2, Ordering::Relaxed);
        ring.remove_key(&key(2)).unwrap();
        // key(2) was at index 2 and is gone: the hint falls back to the primary.
        assert_eq!(ring.snapshot().hint.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn clones_share_one_ring() {
        let a = Keyring::from_keys([key(1)]).unwrap();
        let b = a.clone();
        b.install_key(key(2)).unwrap();
        assert_eq!(a.keys(), vec![key(1), key(2)]);
    }
}
