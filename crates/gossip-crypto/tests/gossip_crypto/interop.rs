//! Go interop (issue 2, point 3): the real memberlist 0.2.2 code, through
//! `../shared/tools/memberlist-crypto`, opens what we seal and we open what
//! it seals.

use std::path::PathBuf;

use consul_sec_gossip_crypto::{EncryptionVersion, KeySize, Keyring, Label, SecretKey};

use crate::frames::vectors;
use crate::support::{memberlist_crypto, require_tool, run_tool, unhex};

fn tool() -> Option<PathBuf> {
    let found = memberlist_crypto();
    let why = found.as_ref().err().cloned().unwrap_or_default();
    require_tool("memberlist-crypto (Go)", found.is_ok(), &why).then(|| found.ok()).flatten()
}

fn keys_arg(keys: &[SecretKey]) -> String {
    keys.iter().map(|k| k.to_base64().as_str().to_owned()).collect::<Vec<_>>().join(",")
}

fn fresh_key(size: KeySize) -> SecretKey {
    SecretKey::generate(size).unwrap()
}

const SIZES: [KeySize; 3] = [KeySize::Aes128, KeySize::Aes192, KeySize::Aes256];
const VERSIONS: [EncryptionVersion; 2] = [EncryptionVersion::V0, EncryptionVersion::V1];

fn messages() -> Vec<Vec<u8>> {
    vec![Vec::new(), b"hello, memberlist".to_vec(), (0..=255u8).cycle().take(1400).collect()]
}

#[test]
fn go_opens_our_packets_for_every_size_and_version() {
    let Some(tool) = tool() else { return };
    for size in SIZES {
        let key = fresh_key(size);
        let ring = Keyring::new([], Some(key.clone())).unwrap();
        for version in VERSIONS {
            for aad in [&b""[..], b"my-label"] {
                for msg in messages() {
                    let payload = ring.seal(&msg, aad, version).unwrap();
                    let mut args = vec!["decrypt", "-keys"];
                    let keys = keys_arg(std::slice::from_ref(&key));
                    args.push(&keys);
                    let aad_hex = hex::encode(aad);
                    if !aad.is_empty() {
                        args.extend(["-aad", &aad_hex]);
                    }
                    let out = run_tool(&tool, &args, &payload);
                    assert_eq!(
                        out.map(|hex| unhex(&hex)),
                        Ok(msg.clone()),
                        "{size:?} {version:?} aad {aad:?} len {}",
                        msg.len()
                    );
                }
            }
        }
    }
}

#[test]
fn go_rejects_our_payload_under_a_wrong_key() {
    let Some(tool) = tool() else { return };
    let ring = Keyring::new([], Some(fresh_key(KeySize::Aes256))).unwrap();
    let payload = ring.seal(b"secret", b"", EncryptionVersion::V1).unwrap();
    let other = keys_arg(&[fresh_key(KeySize::Aes256)]);
    let err = run_tool(&tool, &["decrypt", "-keys", &other], &payload).unwrap_err();
    assert!(err.contains("No installed keys could decrypt the message"), "{err}");
}

#[test]
fn go_opens_our_packets_sealed_by_a_rotated_primary() {
    let Some(tool) = tool() else { return };
    let (a, b, c) =
        (fresh_key(KeySize::Aes128), fresh_key(KeySize::Aes192), fresh_key(KeySize::Aes256));
    let ring = Keyring::new([b.clone(), c.clone()], Some(a.clone())).unwrap();
    ring.use_key(&c).unwrap();
    let payload = ring.seal(b"rotated", b"", EncryptionVersion::V1).unwrap();
    // Go tries its keys in its own order; only `c` opens it.
    let out = run_tool(&tool, &["decrypt", "-keys", &keys_arg(&[a, b, c.clone()])], &payload);
    assert_eq!(out.map(|h| unhex(&h)), Ok(b"rotated".to_vec()));
    let only_c = run_tool(&tool, &["decrypt", "-keys", &keys_arg(&[c])], &payload);
    assert_eq!(only_c.map(|h| unhex(&h)), Ok(b"rotated".to_vec()));
}

#[test]
fn go_opens_our_stream_frames() {
    let Some(tool) = tool() else { return };
    for size in SIZES {
        let key = fresh_key(size);
        let ring = Keyring::new([], Some(key.clone())).unwrap();
        for version in VERSIONS {
            for msg in messages() {
                let frame = ring.seal_stream(&msg, &Label::default(), version).unwrap();
                let out = run_tool(
                    &tool,
                    &["stream-decrypt", "-keys", &keys_arg(std::slice::from_ref(&key))],
                    &frame,
                );
                assert_eq!(
                    out.map(|h| unhex(&h)),
                    Ok(msg.clone()),
                    "{size:?} {version:?} len {}",
                    msg.len()
                );
            }
        }
    }
}

#[test]
fn we_open_go_packets_and_stream_frames() {
    let Some(tool) = tool() else { return };
    for size in SIZES {
        let key = fresh_key(size);
        // Our ring has the key last, behind two others, to exercise the search.
        let ring = Keyring::new(
            [fresh_key(KeySize::Aes256), key.clone()],
            Some(fresh_key(KeySize::Aes128)),
        )
        .unwrap();
        let b64 = key.to_base64();
        for version in VERSIONS {
            let vsn = version.byte().to_string();
            for msg in messages() {
                for aad in [&b""[..], b"my-label"] {
                    let aad_hex = hex::encode(aad);
                    let mut args = vec!["encrypt", "-key", b64.as_str(), "-vsn", &vsn];
                    if !aad.is_empty() {
                        args.extend(["-aad", &aad_hex]);
                    }
                    let payload = unhex(&run_tool(&tool, &args, &msg).unwrap());
                    assert_eq!(payload[0], version.byte());
                    assert_eq!(ring.open(&payload, aad).unwrap(), msg, "{size:?} {version:?}");
                }
                let frame = unhex(
                    &run_tool(&tool, &["stream-encrypt", "-key", b64.as_str(), "-vsn", &vsn], &msg)
                        .unwrap(),
                );
                assert_eq!(ring.open_stream(&frame, &Label::default()).unwrap(), msg);
            }
        }
    }
}

#[test]
fn go_opens_our_seal_of_every_ok_vector() {
    let Some(tool) = tool() else { return };
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v.ok && !v.name.starts_with("quirk_")) {
        let payload = v.keyring().seal(&v.plaintext, &v.aad, v.version()).unwrap();
        let keys = v.keys_b64.join(",");
        let aad_hex = hex::encode(&v.aad);
        let mut args = vec!["decrypt", "-keys", keys.as_str()];
        if !v.aad.is_empty() {
            args.extend(["-aad", &aad_hex]);
        }
        let out = run_tool(&tool, &args, &payload);
        assert_eq!(out.map(|h| unhex(&h)), Ok(v.plaintext.clone()), "{}", v.name);
        checked += 1;
    }
    assert_eq!(checked, 29, "vector file changed");
}
