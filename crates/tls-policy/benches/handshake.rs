//! Full TLS handshakes per second with mutual authentication and ECDSA P-256
//! certificates (client and server in one process, in memory, no session
//! resumption), plus the cost of loading a policy from files.
//!
//! Compare with `../shared/tools/go-tls-bench/run.sh`, which does the same
//! handshake with Go's crypto/tls.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use consul_sec_tls_policy::{TlsPolicy, crypto_provider, load_private_key};
use criterion::{Criterion, criterion_group, criterion_main};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use rustls::client::Resumption;
use rustls::server::NoServerSessionStorage;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use rustls_pki_types::ServerName;

fn leaf_params(cn: &str, dns: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    for d in dns {
        p.subject_alt_names.push(SanType::DnsName((*d).try_into().expect("dns")));
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2100, 1, 1);
    p
}

/// Writes a CA, a server cert (server.dc1.consul) and a client cert into `dir`
/// and returns (server policy with verify_incoming, client policy with
/// verify_server_hostname).
fn policies(dir: &Path) -> (TlsPolicy, TlsPolicy) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = date_time_ymd(2020, 1, 1);
    ca.not_after = date_time_ymd(2100, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let ca_file = write("ca.pem", &ca_cert.pem());
    let make = |name: &str, cn: &str, dns: &[&str]| {
        let key = KeyPair::generate().expect("key");
        let cert = leaf_params(cn, dns).signed_by(&key, &issuer).expect("sign");
        (
            write(&format!("{name}.pem"), &cert.pem()),
            write(&format!("{name}-key.pem"), &key.serialize_pem()),
        )
    };
    let (sc, sk) = make("server", "server.dc1.consul", &["server.dc1.consul", "localhost"]);
    let (cc, ck) = make("client", "client.dc1.consul", &["client.dc1.consul"]);
    let server = TlsPolicy {
        ca_file: Some(ca_file.clone()),
        cert_file: Some(sc),
        key_file: Some(sk),
        verify_incoming: true,
        ..TlsPolicy::default()
    };
    let client = TlsPolicy {
        ca_file: Some(ca_file),
        cert_file: Some(cc),
        key_file: Some(ck),
        verify_server_hostname: true,
        ..TlsPolicy::default()
    };
    (server, client)
}

/// The loaded configurations with resumption switched off, so every
/// iteration is a full handshake (the Go side disables tickets too).
fn configs(
    server: &TlsPolicy,
    client: &TlsPolicy,
    tls12: bool,
) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let s = server.load().expect("server policy");
    let c = client.load().expect("client policy");
    let mut sc = (*s.server_config().expect("server config")).clone();
    sc.session_storage = Arc::new(NoServerSessionStorage {});
    sc.send_tls13_tickets = 0;
    let mut cc = (*c.client_config()).clone();
    cc.resumption = Resumption::disabled();
    if tls12 {
        // The same CA, certificate and key, built directly with rustls limited to TLS 1.2.
        let mut roots = rustls::RootCertStore::empty();
        for ca in c.ca_certificates() {
            roots.add(ca.clone()).expect("root");
        }
        let chain = c.certificate_chain().expect("client chain").to_vec();
        let key = load_private_key(client.key_file.as_deref().expect("key file")).expect("key");
        let mut cc12 = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("tls12")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key.clone_key())
            .expect("client cert");
        cc12.resumption = Resumption::disabled();
        cc = cc12;
    }
    (Arc::new(sc), Arc::new(cc))
}

fn transfer<A, B>(
    from: &mut rustls::ConnectionCommon<A>,
    to: &mut rustls::ConnectionCommon<B>,
    buf: &mut Vec<u8>,
) {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf).expect("write_tls");
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).expect("read_tls");
        to.process_new_packets().expect("handshake");
    }
}

fn one_handshake(
    server: &Arc<ServerConfig>,
    client: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    buf: &mut Vec<u8>,
) {
    let mut c = ClientConnection::new(client.clone(), name.clone()).expect("client");
    let mut s = ServerConnection::new(server.clone()).expect("server");
    while c.is_handshaking() || s.is_handshaking() {
        transfer(&mut *c, &mut *s, buf);
        transfer(&mut *s, &mut *c, buf);
    }
    black_box((c, s));
}

fn bench(crit: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client) = policies(dir.path());
    let name = ServerName::try_from("server.dc1.consul").expect("name");
    let mut buf = Vec::with_capacity(8192);

    let mut group = crit.benchmark_group("handshake");
    for (label, tls12) in [("tls13_mtls_p256", false), ("tls12_mtls_p256", true)] {
        let (sc, cc) = configs(&server, &client, tls12);
        group.bench_function(label, |b| b.iter(|| one_handshake(&sc, &cc, &name, &mut buf)));
    }
    group.finish();

    crit.bench_function("load_policy/server_verify_incoming", |b| {
        b.iter(|| black_box(server.load().expect("load")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
