//! Public API tests: real serf traffic, Go's LZW output, and robustness.

use std::path::PathBuf;

use consul_sec_gossip_wire::serf::{KeyResponse, Query, QueryResponse, Relay, SerfMessage};
use consul_sec_gossip_wire::{
    Error, MAX_PACKET_DECOMPRESSED, Message, StreamMessage, decode_compound, decode_packet,
    decode_stream_message, encode_compound, encode_compress, encode_message, encode_stream_message,
    lzw_compress, lzw_decompress, stream_frame_len,
};
use proptest::prelude::*;

fn shared() -> PathBuf {
    std::env::var_os("CONSUL_SEC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

struct Capture {
    file: String,
    line: usize,
    kind: String,
    transport: String,
    bytes: Vec<u8>,
}

fn captures() -> Vec<Capture> {
    let dir = shared().join("vectors/captures");
    let mut out = Vec::new();
    for name in ["run1-join-keyops.jsonl", "run2-restart-refute.jsonl", "run3.jsonl"] {
        let text = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
        for (i, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push(Capture {
                file: name.to_owned(),
                line: i + 1,
                kind: v["kind"].as_str().unwrap().to_owned(),
                transport: v["transport"].as_str().unwrap().to_owned(),
                bytes: hex::decode(v["hex"].as_str().unwrap()).unwrap(),
            });
        }
    }
    assert_eq!(out.len(), 86, "expected every capture line");
    out
}

/// Every captured message decodes, and every bare message (and every serf
/// message inside a user message) re-encodes to exactly Go's bytes.
#[test]
fn captures_decode_and_round_trip_byte_exact() {
    let mut serf_seen = std::collections::BTreeSet::new();
    let mut exact = 0;
    for c in captures() {
        let at = format!("{}:{} ({})", c.file, c.line, c.kind);
        if c.transport == "tcp" {
            let msg = decode_stream_message(&c.bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(stream_frame_len(&c.bytes).unwrap(), Some(c.bytes.len()), "{at}");
            assert_eq!(encode_stream_message(&msg, false), c.bytes, "{at}");
            let StreamMessage::PushPull(pp) = &msg else { panic!("{at}: not a push/pull") };
            assert!(!pp.states.is_empty(), "{at}");
            let serf = SerfMessage::decode(&pp.user_state).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(matches!(serf, SerfMessage::PushPull(_)), "{at}");
            assert_eq!(serf.encode(), pp.user_state, "{at}");
            // Compressed form round-trips through our LZW.
            let compressed = encode_stream_message(&msg, true);
            assert_eq!(decode_stream_message(&compressed).unwrap(), msg, "{at}");
            exact += 1;
            continue;
        }
        match c.bytes.first() {
            // The capture tool logs the 5-byte hasCrc header on its own line.
            Some(12) => assert_eq!(c.bytes.len(), 5, "{at}"),
            Some(7) => {
                let (parts, truncated) = decode_compound(&c.bytes).unwrap();
                assert!(!truncated && parts.len() >= 2, "{at}");
                let owned: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
                assert_eq!(encode_compound(&owned), c.bytes, "{at}");
                for m in decode_packet(&c.bytes) {
                    m.unwrap_or_else(|e| panic!("{at}: {e}"));
                }
            }
            Some(9) => {
                let msgs = decode_packet(&c.bytes);
                assert!(!msgs.is_empty(), "{at}");
                for m in msgs {
                    m.unwrap_or_else(|e| panic!("{at}: {e}"));
                }
            }
            _ => {
                let msgs = decode_packet(&c.bytes);
                let [Ok(msg)] = msgs.as_slice() else { panic!("{at}: {msgs:?}") };
                assert_eq!(encode_message(msg), c.bytes, "{at}");
                exact += 1;
                if let Message::User(inner) = msg {
                    let serf = SerfMessage::decode(inner).unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert_eq!(&serf.encode(), inner, "{at}");
                    if let SerfMessage::QueryResponse(r) = &serf
                        && !r.payload.is_empty()
                    {
                        let kr = SerfMessage::decode(&r.payload).unwrap();
                        assert_eq!(kr.encode(), r.payload, "{at}");
                        serf_seen.insert("keyResponse");
                    }
                    if let SerfMessage::Query(q) = &serf {
                        assert!(q.name.starts_with("_serf_"), "{at}");
                        let kr = SerfMessage::decode(&q.payload).unwrap();
                        assert!(matches!(kr, SerfMessage::KeyRequest(_)), "{at}");
                        assert_eq!(kr.encode(), q.payload, "{at}");
                        serf_seen.insert("keyRequest");
                    }
                    serf_seen.insert(match serf {
                        SerfMessage::Query(_) => "query",
                        SerfMessage::QueryResponse(_) => "queryResponse",
                        SerfMessage::Join(_) => "join",
                        _ => "other",
                    });
                }
            }
        }
    }
    assert!(exact > 60, "only {exact} messages compared byte for byte");
    for k in ["query", "queryResponse", "join", "keyRequest", "keyResponse"] {
        assert!(serf_seen.contains(k), "no {k} in captures");
    }
}

/// A list-keys answer as captured (Appendix B.7) decodes to the right values.
#[test]
fn captured_list_keys_response_values() {
    let c = captures()
        .into_iter()
        .find(|c| c.kind == "user/queryResponse(list-keys)")
        .expect("capture present");
    let msgs = decode_packet(&c.bytes);
    let [Ok(Message::User(inner))] = msgs.as_slice() else { panic!("not a user message") };
    let SerfMessage::QueryResponse(r) = SerfMessage::decode(inner).unwrap() else {
        panic!("not a query response")
    };
    assert_eq!(r.from, "rust-like");
    let SerfMessage::KeyResponse(KeyResponse { result, keys: Some(keys), primary_key, .. }) =
        SerfMessage::decode(&r.payload).unwrap()
    else {
        panic!("not a key response")
    };
    assert!(result);
    assert_eq!(keys.first(), Some(&primary_key));
    assert_eq!(primary_key.len(), 44);
}

/// Go's compress/lzw output (memberlist's compress path) decodes with our
/// LZW, and our compressed messages decode back.
#[test]
fn lzw_vectors_from_go() {
    let text =
        std::fs::read_to_string(shared().join("vectors/memberlist-lzw-vectors.json")).unwrap();
    let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), 7);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let plain = hex::decode(v["plaintext_hex"].as_str().unwrap()).unwrap();
        let lzw = hex::decode(v["lzw_hex"].as_str().unwrap()).unwrap();
        let framed = hex::decode(v["compressed_hex"].as_str().unwrap()).unwrap();
        assert_eq!(lzw_decompress(&lzw, 1 << 24).unwrap(), plain, "{name}");
        assert_eq!(lzw_decompress(&lzw_compress(&plain), 1 << 24).unwrap(), plain, "{name}");
        // The full compress message: unwrap it as a packet when it holds a
        // message, else just check the framing prefix.
        assert_eq!(&framed[..12], b"\x09\x82\xa4Algo\x00\xa3Buf", "{name}");
    }
}

/// A ping (type 0) whose body is a map holding one array of `nils` nils:
/// valid msgpack that Go would decode, but millions of values.
fn nil_ping(nils: u32) -> Vec<u8> {
    let mut b = vec![0x00, 0x81, 0xa1, b'X', 0xdd];
    b.extend_from_slice(&nils.to_be_bytes());
    b.resize(b.len() + nils as usize, 0xc0);
    b
}

/// Decode amplification over a stream: a small compress wrapper around a
/// ping of 20 million nils is refused by the value-count bound instead of
/// being built into a ~800 MB tree.
#[test]
fn stream_of_millions_of_nils_is_refused() {
    let wire = encode_compress(&nil_ping(20_000_000));
    assert!(wire.len() < 64 * 1024, "attack input is small: {} bytes", wire.len());
    let err = decode_stream_message(&wire).unwrap_err();
    assert_eq!(
        err,
        Error::Msgpack { what: "ping", reason: "more than 1000000 values in one message".into() }
    );
    assert_eq!(stream_frame_len(&wire).unwrap_err(), err);
}

/// Decode amplification over UDP: each compress part of a compound would
/// expand to 20 MB; the packet's 64 KiB decompression budget refuses them.
#[test]
fn packet_of_compressed_nils_is_refused() {
    let part = encode_compress(&nil_ping(20_000_000));
    let packet = encode_compound(&[part.clone(), part.clone(), part]);
    assert!(packet.len() < 64 * 1024, "attack input is small: {} bytes", packet.len());
    let limit = MAX_PACKET_DECOMPRESSED;
    assert_eq!(limit, 64 * 1024);
    let out = decode_packet(&packet);
    assert_eq!(out, vec![Err(Error::DecompressedTooLarge { limit }); 3]);
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "compress message: decompressed data exceeds 65536 bytes"
    );
}

/// The decompression budget is per packet, not per compress part: two
/// 30 kB parts fit, the third one does not.
#[test]
fn packet_decompression_budget_is_shared_by_its_parts() {
    let user = encode_message(&Message::User(vec![7; 30_000]));
    let part = encode_compress(&user);
    let out = decode_packet(&encode_compound(&[part.clone(), part.clone(), part.clone()]));
    let [Ok(Message::User(a)), Ok(Message::User(b)), Err(e)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!((a.len(), b.len()), (30_000, 30_000));
    assert_eq!(*e, Error::DecompressedTooLarge { limit: MAX_PACKET_DECOMPRESSED });
    // Nested compress layers spend from the same budget.
    let nested = encode_compress(&encode_compound(&[part.clone(), part.clone(), part]));
    let out = decode_packet(&nested);
    assert!(matches!(out.as_slice(), [Ok(_), Ok(_), Err(Error::DecompressedTooLarge { .. })]));
}

/// A stream still accepts large compressed messages (memberlist's 20 MiB).
#[test]
fn stream_keeps_large_decompression_limit() {
    let msg = StreamMessage::User(vec![3; 1_000_000]);
    let wire = encode_stream_message(&msg, true);
    assert_eq!(decode_stream_message(&wire).unwrap(), msg);
}

/// Key material never reaches Debug output: a key request's raw key, a key
/// response's base64 keys, a key query's payload, a query response's
/// payload and a relayed message all print lengths only.
#[test]
fn debug_output_redacts_keys() {
    let key: Vec<u8> = vec![
        0x8a, 0x17, 0xe3, 0x01, 0x9c, 0x42, 0xd5, 0x6b, 0xf0, 0x33, 0x71, 0xae, 0x05, 0xc9, 0x28,
        0x7d,
    ];
    let b64 = "ihfjAZxC1WvwM3GuBckofQ==";
    let key_dbg = format!("{key:?}");
    // The key's bytes as a Debug list, without the brackets, so that it
    // is found inside any longer byte list too.
    let key_list = &key_dbg[1..key_dbg.len() - 1];
    let request = SerfMessage::KeyRequest(key.clone());
    let response = SerfMessage::KeyResponse(KeyResponse {
        result: true,
        message: String::new(),
        keys: Some(vec![b64.to_owned()]),
        primary_key: b64.to_owned(),
    });
    let query = SerfMessage::Query(Query {
        name: "_serf_install-key".into(),
        payload: request.encode(),
        ..Query::default()
    });
    let answer = QueryResponse { id: 9, payload: response.encode(), ..QueryResponse::default() };
    let relay = SerfMessage::Relay(Relay {
        dest_name: "b".into(),
        inner: SerfMessage::QueryResponse(answer.clone()).encode(),
        ..Relay::default()
    });
    let answer = SerfMessage::QueryResponse(answer);
    for msg in [&request, &response, &query, &answer, &relay] {
        for dbg in [format!("{msg:?}"), format!("{msg:#?}")] {
            assert!(!dbg.contains(b64), "{dbg}");
            assert!(!dbg.contains(key_list), "{dbg}");
            assert!(dbg.contains("redacted"), "{dbg}");
        }
    }
    assert_eq!(format!("{request:?}"), "KeyRequest(<16 bytes redacted>)");
    let dbg = format!("{response:?}");
    assert!(dbg.contains("<1 keys redacted>") && dbg.contains("<24 bytes redacted>"), "{dbg}");
    // Other queries keep their payload visible.
    let ping = Query { name: "_serf_ping".into(), payload: vec![1, 2, 3], ..Query::default() };
    assert!(format!("{ping:?}").contains("payload: [1, 2, 3]"));
}

/// The captured key queries and list-keys answer, decoded, do not show
/// their keys in Debug output.
#[test]
fn captured_key_messages_debug_redacted() {
    let mut checked = 0;
    for c in captures() {
        let msgs = decode_packet(&c.bytes);
        let [Ok(Message::User(inner))] = msgs.as_slice() else { continue };
        let Ok(serf) = SerfMessage::decode(inner) else { continue };
        let payload = match &serf {
            SerfMessage::Query(q) => &q.payload,
            SerfMessage::QueryResponse(r) => &r.payload,
            _ => continue,
        };
        let Ok(inner_msg) = SerfMessage::decode(payload) else { continue };
        let secrets: Vec<String> = match &inner_msg {
            // list-keys sends an empty key request.
            SerfMessage::KeyRequest(k) if k.is_empty() => continue,
            SerfMessage::KeyRequest(k) => {
                let d = format!("{k:?}");
                vec![d[1..d.len() - 1].to_owned()]
            }
            SerfMessage::KeyResponse(r) => {
                let mut s = r.keys.clone().unwrap_or_default();
                s.push(r.primary_key.clone());
                s.retain(|k| !k.is_empty());
                s
            }
            _ => continue,
        };
        if secrets.is_empty() {
            continue;
        }
        for dbg in [format!("{serf:?}"), format!("{inner_msg:?}")] {
            for s in &secrets {
                assert!(!dbg.contains(s.as_str()), "{}:{}: {dbg}", c.file, c.line);
            }
        }
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} captured key messages");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random bytes never panic any decoder.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_packet(&bytes);
        let _ = decode_stream_message(&bytes);
        let _ = stream_frame_len(&bytes);
        let _ = SerfMessage::decode(&bytes);
        let _ = consul_sec_gossip_wire::serf::decode_tags(&bytes);
        let _ = lzw_decompress(&bytes, 1 << 16);
    }

    /// Truncating or flipping a byte of a real message never panics.
    #[test]
    fn mutated_captures_never_panic(idx in 0usize..100, cut in 0usize..2000, flip in any::<(usize, u8)>()) {
        static CAPS: std::sync::OnceLock<Vec<Capture>> = std::sync::OnceLock::new();
        let caps = CAPS.get_or_init(captures);
        let c = &caps[idx % caps.len()];
        let mut b = c.bytes.clone();
        b.truncate(cut.min(b.len()));
        if !b.is_empty() {
            let i = flip.0 % b.len();
            b[i] ^= flip.1;
        }
        let _ = decode_packet(&b);
        let _ = decode_stream_message(&b);
        let _ = stream_frame_len(&b);
        if let Some(rest) = b.get(1..) { let _ = SerfMessage::decode(rest); }
    }
}
