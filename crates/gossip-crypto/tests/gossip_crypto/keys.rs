//! Key parsing, generation and redaction (issue 2, point 1).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consul_sec_gossip_crypto::{Error, GossipSecurity, KeySize, Keyring, SecretKey};

const KEY16: &str = "DnAjdcjDHvDvwdSNKWmEvg==";
const KEY32: &str = "fMP6tyHHM+k+nfIar+v3n1WWQR1Cc/0l6L4shMK/O7Y=";

#[test]
fn parses_all_three_sizes_and_round_trips() {
    for (len, size) in [(16, KeySize::Aes128), (24, KeySize::Aes192), (32, KeySize::Aes256)] {
        let bytes: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37).wrapping_add(200)).collect();
        let text = STANDARD.encode(&bytes);
        let key = SecretKey::from_base64(&text).unwrap();
        assert_eq!(key.as_bytes(), &bytes[..]);
        assert_eq!(key.size(), size);
        assert_eq!(key.to_base64().as_str(), text);
        assert_eq!(SecretKey::from_bytes(&bytes).unwrap(), key);
    }
}

#[test]
fn worked_example_key_decodes_to_the_documented_bytes() {
    let key = SecretKey::from_base64(KEY16).unwrap();
    assert_eq!(hex::encode(key.as_bytes()), "0e702375c8c31ef0efc1d48d296984be");
}

#[test]
fn cr_and_lf_anywhere_are_skipped() {
    let expected = SecretKey::from_base64(KEY32).unwrap();
    for text in [
        format!("{KEY32}\n"),
        format!("{KEY32}\r\n"),
        format!("\n{}\r\n{}\n", &KEY32[..10], &KEY32[10..]),
        format!("{}\r{}", &KEY32[..43], &KEY32[43..]),
    ] {
        assert_eq!(SecretKey::from_base64(&text).unwrap(), expected, "{text:?}");
    }
}

#[test]
fn stray_character_is_reported_at_its_position() {
    // Position counts the skipped newline too: it is the index in the input.
    let text = format!("\n{} {}", &KEY32[..5], &KEY32[5..]);
    let err = SecretKey::from_base64(&text).unwrap_err();
    assert!(matches!(err, Error::InvalidKeyCharacter { position: 6 }), "{err:?}");
    assert_eq!(err.to_string(), "key: invalid base64 character at byte 6");

    let err = SecretKey::from_base64(&format!("{KEY32}\t")).unwrap_err();
    assert!(matches!(err, Error::InvalidKeyCharacter { position: 44 }), "{err:?}");

    // Non-ASCII: the byte index of the first UTF-8 byte.
    let err = SecretKey::from_base64(&format!("ab\u{e9}{KEY16}")).unwrap_err();
    assert!(matches!(err, Error::InvalidKeyCharacter { position: 2 }), "{err:?}");
}

#[test]
fn url_safe_alphabet_gets_a_hint() {
    let url_safe = KEY32.replace('+', "-").replace('/', "_");
    let err = SecretKey::from_base64(&url_safe).unwrap_err();
    let first = url_safe.find(['-', '_']).unwrap();
    assert!(matches!(err, Error::UrlSafeKey { position } if position == first), "{err:?}");
    assert!(err.to_string().contains("standard base64"), "{err}");
}

#[test]
fn wrong_decoded_length_gives_the_length() {
    // 20 bytes: the keyring vectors' bad-size key.
    let err = SecretKey::from_base64("QCDsDFq6Qtwx0DJlnwA+Yonh0nU=").unwrap_err();
    assert!(matches!(err, Error::KeySize { len: 20 }), "{err:?}");
    assert_eq!(err.to_string(), "key: decodes to 20 bytes; key size must be 16, 24 or 32 bytes");
    let err = SecretKey::from_base64("").unwrap_err();
    assert!(matches!(err, Error::KeySize { len: 0 }), "{err:?}");
    let err = SecretKey::from_bytes(&[0; 31]).unwrap_err();
    assert!(matches!(err, Error::KeySize { len: 31 }), "{err:?}");
}

#[test]
fn malformed_base64_is_an_error_without_the_key() {
    // Missing padding (Go's StdEncoding requires it).
    let err = SecretKey::from_base64(KEY16.trim_end_matches('=')).unwrap_err();
    assert!(matches!(err, Error::MalformedKey { .. }), "{err:?}");
    // Padding in the middle.
    let text = format!("{}={}", &KEY32[..8], &KEY32[9..]);
    let err = SecretKey::from_base64(&text).unwrap_err();
    assert!(matches!(&err, Error::MalformedKey { reason } if reason.contains("byte 8")), "{err:?}");
    // Length not a multiple of four.
    let err = SecretKey::from_base64(&KEY32[..41]).unwrap_err();
    assert!(matches!(err, Error::MalformedKey { .. }), "{err:?}");
    for err in [err, SecretKey::from_base64(&text).unwrap_err()] {
        assert!(!err.to_string().contains(&KEY32[..6]), "{err}");
    }
}

#[test]
fn non_canonical_trailing_bits_are_accepted_like_go() {
    // Go's StdEncoding is not strict: `DnAjdcjDHvDvwdSNKWmEvh==` (last
    // symbol with a stray low bit) decodes to the same bytes.
    let loose = SecretKey::from_base64("DnAjdcjDHvDvwdSNKWmEvh==").unwrap();
    assert_eq!(loose, SecretKey::from_base64(KEY16).unwrap());
}

#[test]
fn double_encoded_key_gets_a_hint() {
    // A 16-byte key's text encoded again decodes to 24 bytes: a valid
    // AES-192 size, but the bytes are base64 text.
    let twice = STANDARD.encode(KEY16);
    let err = SecretKey::from_base64(&twice).unwrap_err();
    assert!(matches!(err, Error::DoubleEncodedKey { len: 24 }), "{err:?}");
    assert!(err.to_string().contains("base64-encoded twice"), "{err}");
    // A 32-byte key's text encoded again decodes to 44 bytes (a wrong size).
    let err = SecretKey::from_base64(&STANDARD.encode(KEY32)).unwrap_err();
    assert!(matches!(err, Error::DoubleEncodedKey { len: 44 }), "{err:?}");
    // A wrong-size decode that is not text is a plain size error.
    let err = SecretKey::from_base64(&STANDARD.encode([0xffu8; 20])).unwrap_err();
    assert!(matches!(err, Error::KeySize { len: 20 }), "{err:?}");
}

#[test]
fn generate_gives_fresh_keys_of_each_size() {
    for size in [KeySize::Aes128, KeySize::Aes192, KeySize::Aes256] {
        let a = SecretKey::generate(size).unwrap();
        let b = SecretKey::generate(size).unwrap();
        assert_eq!(a.size(), size);
        assert_eq!(a.as_bytes().len(), size.len());
        assert_ne!(a, b);
        assert_eq!(SecretKey::from_base64(&a.to_base64()).unwrap(), a);
    }
    assert_eq!(SecretKey::generate(KeySize::Aes256).unwrap().to_base64().len(), 44);
}

#[test]
fn debug_and_errors_never_contain_the_key() {
    let key = SecretKey::from_base64(KEY32).unwrap();
    let b64 = key.to_base64();
    let hex_key = hex::encode(key.as_bytes());
    let ring = Keyring::new([], Some(key.clone())).unwrap();
    let security = GossipSecurity::new(ring.clone());
    let mut texts = vec![
        format!("{key:?}"),
        format!("{ring:?}"),
        format!("{ring:#?}"),
        format!("{security:?}"),
        format!("{:?}", ring.keys()),
    ];
    let bad_inputs = [
        format!("{}!", &KEY32[..43]),
        KEY32.replace('+', "-"),
        KEY32[..40].to_owned(),
        STANDARD.encode(KEY32),
    ];
    for input in &bad_inputs {
        let err = SecretKey::from_base64(input).unwrap_err();
        texts.push(format!("{err:?}"));
        texts.push(err.to_string());
    }
    for text in &texts {
        assert!(!text.contains(b64.as_str()), "{text}");
        assert!(!text.contains(&KEY32[..8]), "{text}");
        assert!(!text.contains(&hex_key[..8]), "{text}");
        // Debug of the raw byte array would show the first byte as a number list.
        assert!(!text.contains(&format!("{:?}", &key.as_bytes()[..4])[1..12]), "{text}");
    }
    assert_eq!(format!("{key:?}"), "SecretKey(AES-256, redacted)");
}
