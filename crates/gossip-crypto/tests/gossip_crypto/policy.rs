//! Verify flags (issue 2, point 4): the whole table of gossip-wire.md 2.7.

use consul_sec_gossip_crypto::{
    Decoded, EncryptionVersion, Error, GossipSecurity, KeySize, Keyring, Label, SecretKey,
};

fn node(keyed: bool, incoming: bool, outgoing: bool) -> GossipSecurity {
    let keyring = if keyed {
        Keyring::new([], Some(SecretKey::from_bytes(&[0x11; 32]).unwrap())).unwrap()
    } else {
        Keyring::empty()
    };
    GossipSecurity {
        verify_incoming: incoming,
        verify_outgoing: outgoing,
        ..GossipSecurity::new(keyring)
    }
}

fn sealed_packet(msg: &[u8]) -> Vec<u8> {
    node(true, true, true).encode_packet(msg).unwrap()
}

fn sealed_stream(msg: &[u8]) -> Vec<u8> {
    node(true, true, true).encode_stream(msg).unwrap()
}

const FLAGS: [(bool, bool); 4] = [(true, true), (true, false), (false, true), (false, false)];

#[test]
fn defaults_are_both_flags_on_version_1_no_label() {
    let security = GossipSecurity::default();
    assert!(security.verify_incoming && security.verify_outgoing);
    assert_eq!(security.encryption_version, EncryptionVersion::V1);
    assert!(security.label.is_empty());
    assert!(!security.encryption_enabled());
    let keyed = GossipSecurity::new(node(true, true, true).keyring);
    assert!(keyed.verify_incoming && keyed.verify_outgoing && keyed.encryption_enabled());
}

#[test]
fn outgoing_is_sealed_only_with_keys_and_verify_outgoing() {
    let msg = b"\x00ping-body";
    for keyed in [true, false] {
        for (incoming, outgoing) in FLAGS {
            let security = node(keyed, incoming, outgoing);
            let seals = keyed && outgoing;
            assert_eq!(security.seals_outgoing(), seals);
            let packet = security.encode_packet(msg).unwrap();
            let stream = security.encode_stream(msg).unwrap();
            if seals {
                assert_eq!(packet.len(), msg.len() + 29);
                assert_eq!(packet[0], 1);
                assert_eq!(security.keyring.open(&packet, b"").unwrap(), msg);
                assert_eq!(stream[0], 0x0a);
                assert_eq!(security.keyring.open_stream(&stream, &Label::default()).unwrap(), msg);
            } else {
                assert_eq!(packet, msg, "keyed {keyed} in {incoming} out {outgoing}");
                assert_eq!(stream, msg);
            }
        }
    }
}

#[test]
fn encrypted_packet_decrypts_whatever_the_flags() {
    for (incoming, outgoing) in FLAGS {
        let got = node(true, incoming, outgoing).decode_packet(&sealed_packet(b"gossip")).unwrap();
        assert_eq!(got, Decoded::Decrypted(b"gossip".to_vec()));
    }
}

#[test]
fn packet_failing_to_decrypt_is_dropped_with_verify_incoming() {
    for outgoing in [true, false] {
        let security = node(true, true, outgoing);
        let err = security.decode_packet(b"\x00plain ping").unwrap_err();
        assert!(matches!(err, Error::PayloadTooShort { .. }), "{err:?}");
        // Sealed by a key we do not have.
        let stranger = GossipSecurity::new(
            Keyring::new([], Some(SecretKey::generate(KeySize::Aes128).unwrap())).unwrap(),
        );
        let foreign = stranger.encode_packet(&[4u8; 40]).unwrap();
        let err = security.decode_packet(&foreign).unwrap_err();
        assert!(matches!(err, Error::NoKeyDecrypts { tried: 1 }), "{err:?}");
    }
}

#[test]
fn packet_failing_to_decrypt_is_plaintext_without_verify_incoming() {
    for outgoing in [true, false] {
        let security = node(true, false, outgoing);
        let plain = b"\x00plain ping that happens to start with a version byte".to_vec();
        assert_eq!(security.decode_packet(&plain).unwrap(), Decoded::Plaintext(plain.clone()));
        let stranger = GossipSecurity::new(
            Keyring::new([], Some(SecretKey::generate(KeySize::Aes128).unwrap())).unwrap(),
        );
        let foreign = stranger.encode_packet(b"x").unwrap();
        assert_eq!(security.decode_packet(&foreign).unwrap(), Decoded::Plaintext(foreign));
    }
}

#[test]
fn keyless_node_takes_every_packet_as_plaintext() {
    for (incoming, outgoing) in FLAGS {
        let security = node(false, incoming, outgoing);
        let sealed = sealed_packet(b"m");
        assert_eq!(security.decode_packet(&sealed).unwrap(), Decoded::Plaintext(sealed.clone()));
        assert_eq!(
            security.decode_packet(b"\x02ack").unwrap(),
            Decoded::Plaintext(b"\x02ack".to_vec())
        );
    }
}

#[test]
fn encrypted_stream_decrypts_whatever_the_flags() {
    for (incoming, outgoing) in FLAGS {
        let got =
            node(true, incoming, outgoing).decode_stream(&sealed_stream(b"push-pull")).unwrap();
        assert_eq!(got, Decoded::Decrypted(b"push-pull".to_vec()));
        // A frame that fails to open is an error either way.
        let mut bad = sealed_stream(b"push-pull");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let err = node(true, incoming, outgoing).decode_stream(&bad).unwrap_err();
        assert!(matches!(err, Error::NoKeyDecrypts { .. }), "{err:?}");
    }
}

#[test]
fn keyless_node_refuses_an_encrypted_stream() {
    for (incoming, outgoing) in FLAGS {
        let err =
            node(false, incoming, outgoing).decode_stream(&sealed_stream(b"state")).unwrap_err();
        assert!(matches!(err, Error::RemoteStateEncrypted), "{err:?}");
        assert_eq!(
            err.to_string(),
            "stream: remote state is encrypted and encryption is not configured"
        );
    }
}

#[test]
fn plaintext_stream_is_refused_with_verify_incoming() {
    for outgoing in [true, false] {
        let err = node(true, true, outgoing).decode_stream(b"\x06push-pull").unwrap_err();
        assert!(matches!(err, Error::RemoteStateNotEncrypted), "{err:?}");
        assert_eq!(
            err.to_string(),
            "stream: encryption is configured but remote state is not encrypted"
        );
    }
}

#[test]
fn plaintext_stream_is_accepted_without_verify_incoming_or_keys() {
    for (keyed, incoming, outgoing) in
        [(true, false, true), (true, false, false), (false, true, true), (false, false, false)]
    {
        let got = node(keyed, incoming, outgoing).decode_stream(b"\x06push-pull").unwrap();
        assert_eq!(got, Decoded::Plaintext(b"\x06push-pull".to_vec()));
    }
}

#[test]
fn empty_stream_is_an_error() {
    let err = node(true, false, false).decode_stream(b"").unwrap_err();
    assert!(matches!(err, Error::StreamLength { expected: 1, actual: 0 }), "{err:?}");
}

#[test]
fn upshift_procedure_never_loses_a_message() {
    // Stage 1: keys with both flags off; 2: outgoing on; 3: incoming on.
    // Nodes of adjacent stages must understand each other.
    let stages = [
        node(false, true, true),
        node(true, false, false),
        node(true, false, true),
        node(true, true, true),
    ];
    for pair in stages.windows(2) {
        for (from, to) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
            let packet = from.encode_packet(b"\x04alive").unwrap();
            assert_eq!(to.decode_packet(&packet).unwrap().into_bytes(), b"\x04alive");
            let stream = from.encode_stream(b"\x06state").unwrap();
            assert_eq!(to.decode_stream(&stream).unwrap().into_bytes(), b"\x06state");
        }
    }
}

#[test]
fn label_goes_in_a_header_and_into_the_aad() {
    let label = Label::new("dc1").unwrap();
    let labelled = GossipSecurity { label: label.clone(), ..node(true, true, true) };
    let packet = labelled.encode_packet(b"msg").unwrap();
    assert_eq!(packet[..5], [0xF4, 3, b'd', b'c', b'1']);
    assert_eq!(labelled.keyring.open(&packet[5..], b"dc1").unwrap(), b"msg");
    assert!(labelled.keyring.open(&packet[5..], b"").is_err());
    assert_eq!(labelled.decode_packet(&packet).unwrap(), Decoded::Decrypted(b"msg".to_vec()));

    // A node with another label, or none, drops it.
    for other in [Label::new("dc2").unwrap(), Label::default()] {
        let node = GossipSecurity { label: other, ..node(true, true, true) };
        let err = node.decode_packet(&packet).unwrap_err();
        assert!(matches!(err, Error::LabelMismatch { .. }), "{err:?}");
    }
    // An unlabelled packet at a labelled node is dropped.
    let plain = node(true, true, true).encode_packet(b"msg").unwrap();
    let err = labelled.decode_packet(&plain).unwrap_err();
    assert!(
        matches!(&err, Error::LabelMismatch { expected, got } if expected == "dc1" && got.is_empty())
    );

    // Plaintext packets carry the header too.
    let clear = GossipSecurity { label: label.clone(), ..node(false, true, true) };
    let packet = clear.encode_packet(b"msg").unwrap();
    assert_eq!(packet, [&[0xF4, 3][..], b"dc1", b"msg"].concat());
    assert_eq!(clear.decode_packet(&packet).unwrap(), Decoded::Plaintext(b"msg".to_vec()));

    // Streams: the connection header is checked once, the frame uses the label as AAD.
    let stream = labelled.encode_stream(b"state").unwrap();
    assert_eq!(stream[0], 0x0a);
    let mut conn = label.header();
    conn.extend_from_slice(&stream);
    let rest = labelled.strip_stream_label(&conn).unwrap();
    assert_eq!(labelled.decode_stream(rest).unwrap(), Decoded::Decrypted(b"state".to_vec()));
    let err = node(true, true, true).strip_stream_label(&conn).unwrap_err();
    assert!(matches!(err, Error::LabelMismatch { .. }), "{err:?}");
    let err = node(true, true, true).decode_stream(&stream).unwrap_err();
    assert!(matches!(err, Error::NoKeyDecrypts { .. }), "{err:?}");
}

#[test]
fn version_0_is_sent_on_request() {
    let security =
        GossipSecurity { encryption_version: EncryptionVersion::V0, ..node(true, true, true) };
    let packet = security.encode_packet(b"abc").unwrap();
    assert_eq!(packet[0], 0);
    assert_eq!(packet.len(), 45);
    assert_eq!(
        node(true, true, true).decode_packet(&packet).unwrap(),
        Decoded::Decrypted(b"abc".to_vec())
    );
}
