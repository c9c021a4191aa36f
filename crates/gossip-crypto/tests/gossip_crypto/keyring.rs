//! Keyring rules (issue 2, point 2): every scenario of
//! memberlist-keyring-vectors.json, and rotation under concurrent use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use consul_sec_gossip_crypto::{EncryptionVersion, Error, KeySize, Keyring, SecretKey};
use serde_json::Value;

use crate::support::read_vectors;

/// Maps Go's exact error text to our variant.
fn expected_variant(go_error: &str) -> fn(&Error) -> bool {
    match go_error {
        "Empty primary key not allowed" => |e| matches!(e, Error::EmptyPrimaryKey),
        "key size must be 16, 24 or 32 bytes" => |e| matches!(e, Error::KeySize { .. }),
        "Requested key is not in the keyring" => |e| matches!(e, Error::KeyNotInKeyring),
        "Removing the primary key is not allowed" => |e| matches!(e, Error::RemovePrimaryKey),
        // Go panics (index out of range); we return an error.
        e if e.starts_with("panic: runtime error: index out of range") => {
            |e| matches!(e, Error::EmptyKeyring)
        }
        other => panic!("vector has an unknown error text: {other}"),
    }
}

fn parse(text: &str) -> Result<SecretKey, Error> {
    SecretKey::from_base64(text)
}

fn str_of<'a>(step: &'a Value, field: &str) -> Option<&'a str> {
    step.get(field).and_then(Value::as_str)
}

/// Applies one step; an invalid key fails at parsing, as the size check of
/// memberlist's AddKey/NewKeyring does.
fn apply(ring: &mut Keyring, step: &Value) -> Result<(), Error> {
    let op = str_of(step, "op").expect("op");
    match op {
        "new" => {
            let keys: Vec<SecretKey> = step
                .get("keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|k| parse(k.as_str().unwrap())).collect())
                .transpose()?
                .unwrap_or_default();
            let primary = str_of(step, "key").filter(|k| !k.is_empty()).map(parse).transpose()?;
            *ring = Keyring::new(keys, primary)?;
            Ok(())
        }
        "add" => ring.install_key(parse(str_of(step, "key").unwrap())?),
        "use" => ring.use_key(&parse(str_of(step, "key").unwrap())?),
        "remove" => ring.remove_key(&parse(str_of(step, "key").unwrap())?),
        other => panic!("unknown op {other}"),
    }
}

#[test]
fn every_keyring_vector_scenario() {
    let scenarios = read_vectors("memberlist-keyring-vectors.json");
    let scenarios = scenarios.as_array().expect("array");
    assert_eq!(scenarios.len(), 18, "vector file changed");
    let mut steps_checked = 0;
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap();
        let mut ring = Keyring::empty();
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let result = apply(&mut ring, step);
            let go_error = str_of(step, "error").unwrap_or("");
            match (&result, go_error) {
                (Ok(()), "") => {}
                (Err(err), go) if !go.is_empty() => {
                    assert!(
                        expected_variant(go)(err),
                        "{name} step {i}: got {err:?}, Go said {go:?}"
                    )
                }
                (result, go) => panic!("{name} step {i}: got {result:?}, Go said {go:?}"),
            }
            let expected: Vec<String> = step["keys_after"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect();
            let actual: Vec<String> =
                ring.keys().iter().map(|k| k.to_base64().as_str().to_owned()).collect();
            assert_eq!(actual, expected, "{name} step {i}: keys after");
            assert_eq!(
                ring.primary_key().map(|k| k.to_base64().as_str().to_owned()),
                expected.first().cloned(),
                "{name} step {i}: primary"
            );
            steps_checked += 1;
        }
    }
    assert_eq!(steps_checked, 34, "vector file changed");
}

fn key(byte: u8, size: KeySize) -> SecretKey {
    SecretKey::from_bytes(&vec![byte; size.len()]).unwrap()
}

#[test]
fn remove_from_empty_ring_is_an_error() {
    let err = Keyring::empty().remove_key(&key(1, KeySize::Aes128)).unwrap_err();
    assert!(matches!(err, Error::EmptyKeyring), "{err:?}");
    assert_eq!(err.to_string(), "keyring: keyring is empty (encryption not enabled)");
}

#[test]
fn only_the_primary_seals_and_every_key_opens() {
    let (a, b, c) = (key(1, KeySize::Aes128), key(2, KeySize::Aes192), key(3, KeySize::Aes256));
    let ring = Keyring::new([b.clone(), c.clone()], Some(a.clone())).unwrap();
    let sealed_by_a = ring.seal(b"m", b"", EncryptionVersion::V1).unwrap();
    assert!(Keyring::new([], Some(a.clone())).unwrap().open(&sealed_by_a, b"").is_ok());
    assert!(Keyring::new([], Some(b.clone())).unwrap().open(&sealed_by_a, b"").is_err());
    for primary in [&b, &c] {
        let single = Keyring::new([], Some(primary.clone())).unwrap();
        let payload = single.seal(b"from elsewhere", b"", EncryptionVersion::V1).unwrap();
        assert_eq!(ring.open(&payload, b"").unwrap(), b"from elsewhere");
    }
    ring.use_key(&c).unwrap();
    let sealed_by_c = ring.seal(b"m", b"", EncryptionVersion::V1).unwrap();
    assert!(Keyring::new([], Some(c.clone())).unwrap().open(&sealed_by_c, b"").is_ok());
    assert!(Keyring::new([], Some(a)).unwrap().open(&sealed_by_c, b"").is_err());
}

#[test]
fn clones_share_state() {
    let ring = Keyring::empty();
    let other = ring.clone();
    other.install_key(key(5, KeySize::Aes256)).unwrap();
    assert_eq!(ring.len(), 1);
    assert!(!ring.is_empty());
}

#[test]
fn opens_stay_correct_while_another_thread_rotates() {
    // Two stable keys stay installed the whole time; rotation installs,
    // promotes and removes a third. Readers must always open frames sealed
    // by the stable keys and never see an error or a panic.
    let stable_a = key(0xa1, KeySize::Aes256);
    let stable_b = key(0xb2, KeySize::Aes128);
    let ring = Keyring::new([stable_b.clone()], Some(stable_a.clone())).unwrap();
    let frames: Vec<(Vec<u8>, Vec<u8>)> = [&stable_a, &stable_b]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let msg = format!("message {i}").into_bytes();
            let single = Keyring::new([], Some((*k).clone())).unwrap();
            (single.seal(&msg, b"", EncryptionVersion::V1).unwrap(), msg)
        })
        .collect();
    let frames = Arc::new(frames);
    // Every key the ring can hold during the test, to check frames that the
    // ring sealed with a rotating primary that was removed before the reader
    // opened them again (a removed key no longer opens anything).
    let extra_key = |round: u32| key((round % 200) as u8, KeySize::Aes192);
    let every_key = Keyring::from_keys(
        [stable_a.clone(), stable_b.clone()].into_iter().chain((0..200).map(extra_key)),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));

    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (ring, frames, stop, opened, every_key) =
                (ring.clone(), frames.clone(), stop.clone(), opened.clone(), every_key.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let (payload, msg) = &frames[i % frames.len()];
                    assert_eq!(&ring.open(payload, b"").unwrap(), msg);
                    let own = ring.seal(msg, b"", EncryptionVersion::V1).unwrap();
                    match ring.open(&own, b"") {
                        Ok(opened) => assert_eq!(&opened, msg),
                        Err(Error::NoKeyDecrypts { .. }) => {
                            assert_eq!(&every_key.open(&own, b"").unwrap(), msg)
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                    opened.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();

    let rotating = ring.clone();
    for round in 0..2000u32 {
        let extra = extra_key(round);
        rotating.install_key(extra.clone()).unwrap();
        rotating.use_key(&extra).unwrap();
        rotating.use_key(if round % 2 == 0 { &stable_a } else { &stable_b }).unwrap();
        rotating.remove_key(&extra).unwrap();
    }
    // Let the readers run at least a little after rotation too.
    while opened.load(Ordering::Relaxed) < 300 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("reader thread panicked");
    }
    assert_eq!(ring.len(), 2);
    assert_eq!(ring.primary_key(), Some(stable_b));
}
