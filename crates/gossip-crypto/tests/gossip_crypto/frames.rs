//! Frames (issue 2, point 3): the 46 vectors, seal/open, streams, labels,
//! and property tests.

use consul_sec_gossip_crypto::{
    EncryptionVersion, Error, Keyring, Label, MAX_STREAM_PAYLOAD, SecretKey, split_label_header,
    stream_payload_len,
};
use proptest::prelude::*;

use crate::support::{key, read_vectors, unhex};

/// One entry of memberlist-vectors.json.
pub(crate) struct Vector {
    pub(crate) name: String,
    pub(crate) keys_b64: Vec<String>,
    pub(crate) vsn: u8,
    pub(crate) aad: Vec<u8>,
    pub(crate) plaintext: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    pub(crate) ok: bool,
}

impl Vector {
    pub(crate) fn keyring(&self) -> Keyring {
        Keyring::from_keys(self.keys_b64.iter().map(|k| key(k))).unwrap()
    }

    pub(crate) fn version(&self) -> EncryptionVersion {
        match self.vsn {
            0 => EncryptionVersion::V0,
            _ => EncryptionVersion::V1,
        }
    }
}

pub(crate) fn vectors() -> Vec<Vector> {
    let all: serde_json::Value = read_vectors("memberlist-vectors.json");
    all.as_array()
        .expect("array")
        .iter()
        .map(|v| {
            let s = |f: &str| v[f].as_str().unwrap_or_else(|| panic!("field {f}")).to_owned();
            Vector {
                name: s("name"),
                keys_b64: v["keys_b64"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect(),
                vsn: v["vsn"].as_u64().and_then(|n| u8::try_from(n).ok()).unwrap(),
                aad: unhex(&s("aad_hex")),
                plaintext: unhex(&s("plaintext_hex")),
                payload: unhex(&s("payload_hex")),
                ok: match v["expect"].as_str() {
                    Some("ok") => true,
                    Some("error") => false,
                    other => panic!("expect {other:?}"),
                },
            }
        })
        .collect()
}

/// The error kind each negative vector must produce.
fn expected_error(name: &str) -> fn(&Error) -> bool {
    if name == "neg_empty_payload" {
        |e| matches!(e, Error::EmptyPayload)
    } else if name.starts_with("neg_version_byte_") {
        |e| matches!(e, Error::UnsupportedVersion { .. })
    } else if name.starts_with("neg_truncated_below_min") {
        |e| matches!(e, Error::PayloadTooShort { .. })
    } else {
        |e| matches!(e, Error::NoKeyDecrypts { .. })
    }
}

#[test]
fn every_encryption_vector_opens_as_go_says() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 46, "vector file changed");
    for v in &vectors {
        let result = v.keyring().open(&v.payload, &v.aad);
        if v.ok {
            assert_eq!(result.as_deref().ok(), Some(&v.plaintext[..]), "{}: {result:?}", v.name);
        } else {
            let err = result.expect_err(&v.name);
            assert!(expected_error(&v.name)(&err), "{}: {err:?}", v.name);
        }
    }
}

#[test]
fn negative_vectors_report_the_details() {
    for v in vectors() {
        let err = match v.keyring().open(&v.payload, &v.aad) {
            Ok(_) => continue,
            Err(err) => err,
        };
        match v.name.as_str() {
            "neg_version_byte_2" => {
                assert!(matches!(err, Error::UnsupportedVersion { version: 2 }))
            }
            "neg_version_byte_255" => {
                assert!(matches!(err, Error::UnsupportedVersion { version: 255 }))
            }
            "neg_truncated_below_min_v1_28_bytes" => {
                assert!(matches!(err, Error::PayloadTooShort { len: 28, version: 1, min: 29 }))
            }
            "neg_truncated_below_min_v0_44_bytes" => {
                assert!(matches!(err, Error::PayloadTooShort { len: 44, version: 0, min: 45 }))
            }
            "neg_wrong_keys_all_tried" => assert!(matches!(err, Error::NoKeyDecrypts { tried: 3 })),
            _ => {}
        }
    }
}

#[test]
fn our_seal_of_every_ok_vector_opens_with_its_ring_and_has_go_length() {
    for v in vectors().iter().filter(|v| v.ok && !v.name.starts_with("quirk_")) {
        let single = Keyring::new([], Some(key(&v.keys_b64[0]))).unwrap();
        let ours = single.seal(&v.plaintext, &v.aad, v.version()).unwrap();
        assert_eq!(ours.len(), v.payload.len(), "{}", v.name);
        assert_eq!(ours[0], v.vsn, "{}", v.name);
        // A fresh nonce every time.
        assert_ne!(ours[1..13], v.payload[1..13], "{}", v.name);
        assert_eq!(v.keyring().open(&ours, &v.aad).unwrap(), v.plaintext, "{}", v.name);
    }
}

#[test]
fn stream_vectors_use_the_five_header_bytes_as_aad() {
    let streams: Vec<Vector> =
        vectors().into_iter().filter(|v| v.name.starts_with("stream_")).collect();
    assert_eq!(streams.len(), 3);
    for v in &streams {
        let len = u32::try_from(v.payload.len()).unwrap();
        let mut frame = vec![0x0a];
        frame.extend_from_slice(&len.to_be_bytes());
        assert_eq!(frame, v.aad, "{}", v.name);
        frame.extend_from_slice(&v.payload);
        assert_eq!(v.keyring().open_stream(&frame, &Label::default()).unwrap(), v.plaintext);
        // And our stream frame for the same message has the same header.
        let ours = v.keyring().seal_stream(&v.plaintext, &Label::default(), v.version()).unwrap();
        assert_eq!(ours[..5], v.aad[..], "{}", v.name);
        assert_eq!(v.keyring().open_stream(&ours, &Label::default()).unwrap(), v.plaintext);
    }
}

#[test]
fn quirk_relabelled_payload_strips_by_last_byte_like_go() {
    let v = vectors().into_iter().find(|v| v.name.starts_with("quirk_")).unwrap();
    let opened = v.keyring().open(&v.payload, &v.aad).unwrap();
    assert_eq!(opened, v.plaintext);
}

fn ring(len: usize) -> Keyring {
    Keyring::new([], Some(SecretKey::from_bytes(&vec![0x42; len]).unwrap())).unwrap()
}

#[test]
fn v0_padding_longer_than_the_plaintext_is_an_error_not_a_panic() {
    let ring = ring(32);
    // 16 bytes ending in 17: relabelled as version 0, the "padding" is 17.
    let mut msg = [b'a'; 16];
    msg[15] = 17;
    let mut payload = ring.seal(&msg, b"", EncryptionVersion::V1).unwrap();
    payload[0] = 0;
    let err = ring.open(&payload, b"").unwrap_err();
    assert!(matches!(err, Error::InvalidPadding { padding: 17, len: 16 }), "{err:?}");
    // Exactly the plaintext length strips everything, as Go does.
    msg[15] = 16;
    let mut payload = ring.seal(&msg, b"", EncryptionVersion::V1).unwrap();
    payload[0] = 0;
    assert_eq!(ring.open(&payload, b"").unwrap(), b"");
}

#[test]
fn v0_seal_pads_like_pkcs7() {
    for (len, payload_len) in [(0, 45), (15, 45), (16, 61), (17, 61), (31, 61), (32, 77)] {
        let msg = vec![7u8; len];
        let payload = ring(16).seal(&msg, b"l", EncryptionVersion::V0).unwrap();
        assert_eq!(payload.len(), payload_len, "len {len}");
        assert_eq!(payload[0], 0);
        assert_eq!(ring(16).open(&payload, b"l").unwrap(), msg);
    }
}

#[test]
fn aad_must_match() {
    let payload = ring(24).seal(b"msg", b"label-a", EncryptionVersion::V1).unwrap();
    assert_eq!(ring(24).open(&payload, b"label-a").unwrap(), b"msg");
    for wrong in [&b""[..], b"label-b"] {
        let err = ring(24).open(&payload, wrong).unwrap_err();
        assert!(matches!(err, Error::NoKeyDecrypts { tried: 1 }), "{err:?}");
    }
}

#[test]
fn empty_ring_opens_nothing() {
    let payload = ring(16).seal(b"msg", b"", EncryptionVersion::V1).unwrap();
    let err = Keyring::empty().open(&payload, b"").unwrap_err();
    assert!(matches!(err, Error::NoKeyDecrypts { tried: 0 }), "{err:?}");
}

#[test]
fn stream_frame_errors() {
    let ring = ring(32);
    let label = Label::default();
    let frame = ring.seal_stream(b"state", &label, EncryptionVersion::V1).unwrap();
    assert_eq!(frame.len(), 5 + 5 + 29);
    assert_eq!(frame[..5], [0x0a, 0, 0, 0, 34]);

    let err = ring.open_stream(&frame[..4], &label).unwrap_err();
    assert!(matches!(err, Error::StreamLength { expected: 5, actual: 4 }), "{err:?}");
    let err = ring.open_stream(&frame[..frame.len() - 1], &label).unwrap_err();
    assert!(matches!(err, Error::StreamLength { expected: 39, actual: 38 }), "{err:?}");
    let mut long = frame.clone();
    long.push(0);
    let err = ring.open_stream(&long, &label).unwrap_err();
    assert!(matches!(err, Error::StreamLength { expected: 39, actual: 40 }), "{err:?}");
    let mut not_stream = frame.clone();
    not_stream[0] = 0x06;
    let err = ring.open_stream(&not_stream, &label).unwrap_err();
    assert!(matches!(err, Error::NotEncryptedStream { found: 0x06 }), "{err:?}");
    // The length is authenticated: changing it (and the payload to match) fails.
    let mut relength = frame.clone();
    relength[4] += 1;
    relength.push(0);
    let err = ring.open_stream(&relength, &label).unwrap_err();
    assert!(matches!(err, Error::NoKeyDecrypts { .. }), "{err:?}");
}

#[test]
fn stream_length_limit_is_20_mib() {
    let limit = u32::try_from(MAX_STREAM_PAYLOAD).unwrap();
    assert_eq!(stream_payload_len([0x0a, 0, 0, 0, 29]).unwrap(), 29);
    assert_eq!(
        stream_payload_len({
            let [a, b, c, d] = limit.to_be_bytes();
            [0x0a, a, b, c, d]
        })
        .unwrap(),
        MAX_STREAM_PAYLOAD
    );
    let [a, b, c, d] = (limit + 1).to_be_bytes();
    let err = stream_payload_len([0x0a, a, b, c, d]).unwrap_err();
    assert!(
        matches!(err, Error::StreamTooLarge { len, limit: l } if len == MAX_STREAM_PAYLOAD + 1 && l == MAX_STREAM_PAYLOAD)
    );
    let err = stream_payload_len([0x0a, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(err, Error::StreamTooLarge { .. }), "{err:?}");
    // Sealing refuses what the receiver would refuse.
    let big = vec![0u8; MAX_STREAM_PAYLOAD - 28];
    let err = ring(16).seal_stream(&big, &Label::default(), EncryptionVersion::V1).unwrap_err();
    assert!(matches!(err, Error::StreamTooLarge { len, .. } if len == MAX_STREAM_PAYLOAD + 1));
}

#[test]
fn stream_label_is_additional_data() {
    let ring = ring(16);
    let label = Label::new("dc1-lan").unwrap();
    let frame = ring.seal_stream(b"push-pull", &label, EncryptionVersion::V1).unwrap();
    assert_eq!(ring.open_stream(&frame, &label).unwrap(), b"push-pull");
    let err = ring.open_stream(&frame, &Label::default()).unwrap_err();
    assert!(matches!(err, Error::NoKeyDecrypts { .. }), "{err:?}");
    // Equivalent to opening the payload with header || label as AAD.
    let mut aad = frame[..5].to_vec();
    aad.extend_from_slice(b"dc1-lan");
    assert_eq!(ring.open(&frame[5..], &aad).unwrap(), b"push-pull");
}

#[test]
fn label_header_format_and_errors() {
    let label = Label::new("my-label").unwrap();
    let header = label.header();
    assert_eq!(header[..2], [0xF4, 8]);
    assert_eq!(&header[2..], b"my-label");
    assert!(Label::default().header().is_empty());

    let mut packet = header.clone();
    packet.extend_from_slice(b"rest");
    let (got, rest) = split_label_header(&packet).unwrap();
    assert_eq!(got, label);
    assert_eq!(rest, b"rest");

    let (got, rest) = split_label_header(b"\x01plain").unwrap();
    assert!(got.is_empty());
    assert_eq!(rest, b"\x01plain");
    let (got, rest) = split_label_header(b"").unwrap();
    assert!(got.is_empty() && rest.is_empty());

    let err = split_label_header(b"\xF4\x00rest").unwrap_err();
    assert!(matches!(err, Error::EmptyLabelHeader), "{err:?}");
    let err = split_label_header(b"\xF4").unwrap_err();
    assert!(matches!(err, Error::TruncatedLabelHeader { declared: 0, available: 0 }), "{err:?}");
    let err = split_label_header(b"\xF4\x05abc").unwrap_err();
    assert!(matches!(err, Error::TruncatedLabelHeader { declared: 5, available: 3 }), "{err:?}");

    assert!(Label::new(vec![b'x'; 255]).is_ok());
    let err = Label::new(vec![b'x'; 256]).unwrap_err();
    assert!(matches!(err, Error::LabelTooLong { len: 256 }), "{err:?}");
    let max = Label::new(vec![b'x'; 255]).unwrap();
    assert_eq!(max.header()[1], 255);
}

fn rings() -> Vec<Keyring> {
    vec![
        ring(16),
        Keyring::from_keys(
            [16usize, 24, 32].map(|n| SecretKey::from_bytes(&vec![n as u8; n]).unwrap()),
        )
        .unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), aad in proptest::collection::vec(any::<u8>(), 0..8)) {
        for ring in rings() {
            let _ = ring.open(&data, &aad);
            let _ = ring.open_stream(&data, &Label::default());
            let security = consul_sec_gossip_crypto::GossipSecurity::new(ring);
            let _ = security.decode_packet(&data);
            let _ = security.decode_stream(&data);
            let _ = security.strip_stream_label(&data);
        }
        let _ = split_label_header(&data);
        if let Ok(header) = <[u8; 5]>::try_from(data.get(..5).unwrap_or(&[])) {
            let _ = stream_payload_len(header);
        }
        let _ = SecretKey::from_base64(&String::from_utf8_lossy(&data));
    }

    #[test]
    fn random_text_keys_never_panic(text in ".{0,60}") {
        let _ = SecretKey::from_base64(&text);
    }

    #[test]
    fn random_payloads_with_a_valid_header_are_rejected(
        version in 0u8..2, body in proptest::collection::vec(any::<u8>(), 44..120)
    ) {
        let mut payload = vec![version];
        payload.extend_from_slice(&body);
        for ring in rings() {
            let err = ring.open(&payload, b"").unwrap_err();
            prop_assert!(matches!(err, Error::NoKeyDecrypts { .. }), "{:?}", err);
        }
    }

    #[test]
    fn any_flipped_bit_in_nonce_ciphertext_or_tag_is_rejected(
        msg in proptest::collection::vec(any::<u8>(), 0..100),
        aad in proptest::collection::vec(any::<u8>(), 0..10),
        key_len in prop_oneof![Just(16usize), Just(24), Just(32)],
        v0 in any::<bool>(),
        bit in any::<proptest::sample::Index>(),
    ) {
        let version = if v0 { EncryptionVersion::V0 } else { EncryptionVersion::V1 };
        let ring = ring(key_len);
        let payload = ring.seal(&msg, &aad, version).unwrap();
        prop_assert_eq!(ring.open(&payload, &aad).unwrap(), msg);
        // Every bit after the version byte: nonce, ciphertext, tag.
        let bit = 8 + bit.index((payload.len() - 1) * 8);
        let mut tampered = payload.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        let err = ring.open(&tampered, &aad).unwrap_err();
        prop_assert!(matches!(err, Error::NoKeyDecrypts { tried: 1 }), "{:?}", err);
    }
}
