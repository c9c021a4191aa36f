//! Seal and open of a 1400-byte packet (memberlist's UDP budget), to compare
//! with Go memberlist's `encryptPayload` / `decryptPayload`
//! (`../shared/tools/memberlist-bench`, which measures the same cases).

use std::hint::black_box;

use consul_sec_gossip_crypto::{EncryptionVersion, Keyring, SecretKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PACKET: usize = 1400;

/// Key `i` of `len` bytes, as the Go benchmark builds them (zero bytes with
/// the first byte set to `i + 1`).
fn key(len: usize, i: u8) -> SecretKey {
    let mut bytes = vec![0u8; len];
    bytes[0] = i + 1;
    SecretKey::from_bytes(&bytes).expect("valid size")
}

fn seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal_1400");
    group.throughput(Throughput::Bytes(PACKET as u64));
    let msg = vec![0u8; PACKET];
    for len in [16, 32] {
        let ring = Keyring::new([], Some(key(len, 0))).expect("ring");
        let mut out = Vec::with_capacity(PACKET + 64);
        group.bench_function(format!("key{len}"), |b| {
            b.iter(|| {
                out.clear();
                ring.seal_into(&mut out, black_box(&msg), b"", EncryptionVersion::V1)
                    .expect("seal");
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_1400");
    group.throughput(Throughput::Bytes(PACKET as u64));
    let msg = vec![0u8; PACKET];
    for (len, keys) in [(16, 1), (32, 1), (32, 4)] {
        let all: Vec<SecretKey> = (0..keys).map(|i| key(len, i)).collect();
        let ring = Keyring::from_keys(all.clone()).expect("ring");
        // Sealed by the last key, as in Go's benchmark.
        let sealer = Keyring::new([], all.last().cloned()).expect("ring");
        let payload = sealer.seal(&msg, b"", EncryptionVersion::V1).expect("seal");
        let name = if keys == 1 { format!("key{len}") } else { format!("key{len}_last_of_{keys}") };
        // The hot path: plaintext into a reused buffer, as seal_1400 reuses its output.
        let mut out = Vec::with_capacity(PACKET);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                ring.open_into(&mut out, black_box(&payload), b"").expect("open");
                black_box(&out);
            })
        });
        if keys == 1 && len == 16 {
            // The allocating convenience form, for comparison.
            group.bench_function("key16_alloc", |b| {
                b.iter(|| black_box(ring.open(black_box(&payload), b"").expect("open")))
            });
        }
    }
    group.finish();
}

/// The backend alone (ring's AES-128-GCM in place, no framing, no nonce
/// generation, no allocation): the floor our seal/open can approach.
fn backend(c: &mut Criterion) {
    use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let mut group = c.benchmark_group("ring_aead_1400");
    group.throughput(Throughput::Bytes(PACKET as u64));
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[1u8; 16]).expect("key"));
    let nonce = || Nonce::assume_unique_for_key([0; 12]);
    let mut buf = vec![0u8; PACKET];
    let tag = key.seal_in_place_separate_tag(nonce(), Aad::empty(), &mut buf).expect("seal");
    let ciphertext = buf.clone();
    group.bench_function("seal_key16", |b| {
        b.iter(|| key.seal_in_place_separate_tag(nonce(), Aad::empty(), black_box(&mut buf)))
    });
    group.bench_function("open_key16", |b| {
        b.iter(|| {
            buf.copy_from_slice(&ciphertext);
            key.open_in_place_separate_tag(nonce(), Aad::empty(), tag, black_box(&mut buf), 0..)
                .map(|plain| plain.len())
        })
    });
    group.finish();
}

criterion_group!(benches, seal, open, backend);
criterion_main!(benches);
