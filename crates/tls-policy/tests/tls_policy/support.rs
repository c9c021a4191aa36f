//! Certificates generated in the test with rcgen, written to a temp dir, and
//! an in-memory handshake driver (no sockets, no tokio).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use consul_sec_tls_policy::TlsPolicy;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use rustls_pki_types::ServerName;

/// Validity windows, as (not_before, not_after) years.
#[derive(Clone, Copy)]
pub(crate) enum Validity {
    Current,
    Expired,
    NotYetValid,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) {
        let (nb, na) = match self {
            Self::Current => ((2020, 1, 1), (2100, 1, 1)),
            Self::Expired => ((2020, 1, 1), (2021, 1, 1)),
            Self::NotYetValid => ((2090, 1, 1), (2100, 1, 1)),
        };
        params.not_before = date_time_ymd(nb.0, nb.1, nb.2);
        params.not_after = date_time_ymd(na.0, na.1, na.2);
    }
}

pub(crate) struct Ca {
    pub(crate) pem: String,
    issuer: Issuer<'static, KeyPair>,
}

pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    /// PKCS#8 PEM.
    pub(crate) key_pem: String,
}

/// What to put into a leaf certificate.
pub(crate) struct LeafSpec<'a> {
    pub(crate) cn: &'a str,
    pub(crate) dns: &'a [&'a str],
    pub(crate) ips: &'a [&'a str],
    /// `None`: no EKU extension at all.
    pub(crate) eku: Option<&'a [ExtendedKeyUsagePurpose]>,
    pub(crate) validity: Validity,
}

pub(crate) const BOTH: &[ExtendedKeyUsagePurpose] =
    &[ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
pub(crate) const SERVER_ONLY: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ServerAuth];
pub(crate) const CLIENT_ONLY: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];

impl<'a> LeafSpec<'a> {
    /// Like `consul tls cert create -server`: server.<dc>.consul + localhost + 127.0.0.1, both EKUs.
    pub(crate) fn server(dc_name: &'a [&'a str]) -> Self {
        Self {
            cn: dc_name[0],
            dns: dc_name,
            ips: &["127.0.0.1"],
            eku: Some(BOTH),
            validity: Validity::Current,
        }
    }
    /// Like `consul tls cert create -client`: client.dc1.consul + localhost, both EKUs.
    pub(crate) fn client() -> Self {
        Self {
            cn: "client.dc1.consul",
            dns: &["client.dc1.consul", "localhost"],
            ips: &["127.0.0.1"],
            eku: Some(BOTH),
            validity: Validity::Current,
        }
    }
}

impl Ca {
    /// A CA with a distinct CN (webpki reports BadSignature when two CAs share a name).
    pub(crate) fn new(cn: &str) -> Self {
        Self::with_validity(cn, Validity::Current)
    }

    pub(crate) fn with_validity(cn: &str, validity: Validity) -> Self {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity.apply(&mut params);
        let cert = params.self_signed(&key).expect("self-sign CA");
        Self { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// An intermediate CA signed by this one.
    pub(crate) fn intermediate(&self, cn: &str) -> Self {
        let key = KeyPair::generate().expect("generate key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Validity::Current.apply(&mut params);
        let cert = params.signed_by(&key, &self.issuer).expect("sign intermediate");
        Self { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    pub(crate) fn issue(&self, spec: &LeafSpec<'_>) -> Leaf {
        let key = KeyPair::generate().expect("generate key");
        self.issue_for_key(spec, key)
    }

    pub(crate) fn issue_for_key(&self, spec: &LeafSpec<'_>, key: KeyPair) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, spec.cn);
        for d in spec.dns {
            params.subject_alt_names.push(SanType::DnsName((*d).try_into().expect("dns name")));
        }
        for ip in spec.ips {
            params.subject_alt_names.push(SanType::IpAddress(ip.parse().expect("ip")));
        }
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = spec.eku.map(<[_]>::to_vec).unwrap_or_default();
        params.use_authority_key_identifier_extension = true;
        spec.validity.apply(&mut params);
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// Writes `contents` to `dir/name` and returns the path.
pub(crate) fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, contents).expect("write file");
    path
}

/// A temp dir holding one CA and the leaves written so far.
pub(crate) struct Files {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca_file: PathBuf,
}

impl Files {
    pub(crate) fn new(ca: &Ca) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = write(dir.path(), "ca.pem", &ca.pem);
        Self { dir, ca_file }
    }

    pub(crate) fn leaf(&self, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        (
            write(self.dir.path(), &format!("{name}.pem"), &leaf.cert_pem),
            write(self.dir.path(), &format!("{name}-key.pem"), &leaf.key_pem),
        )
    }

    /// A policy with this CA and the given leaf as cert/key.
    pub(crate) fn policy(&self, name: &str, leaf: Option<&Leaf>) -> TlsPolicy {
        let (cert_file, key_file) = match leaf {
            Some(l) => {
                let (c, k) = self.leaf(name, l);
                (Some(c), Some(k))
            }
            None => (None, None),
        };
        TlsPolicy {
            ca_file: Some(self.ca_file.clone()),
            cert_file,
            key_file,
            ..TlsPolicy::default()
        }
    }
}

/// What each side saw in a handshake.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) client: Result<(), rustls::Error>,
    pub(crate) server: Result<(), rustls::Error>,
    /// The client certificate chain the server received, if any.
    pub(crate) client_cert_seen: bool,
    /// The SNI the server received.
    pub(crate) sni: Option<String>,
    /// Application data "ping" arrived at the server.
    pub(crate) data_arrived: bool,
}

impl Outcome {
    pub(crate) fn ok(&self) -> bool {
        self.client.is_ok() && self.server.is_ok() && self.data_arrived
    }
    pub(crate) fn server_err(&self) -> &rustls::Error {
        self.server.as_ref().expect_err("expected a server-side error")
    }
    pub(crate) fn client_err(&self) -> &rustls::Error {
        self.client.as_ref().expect_err("expected a client-side error")
    }
}

fn pump<A, B>(
    from: &mut rustls::ConnectionCommon<A>,
    to: &mut rustls::ConnectionCommon<B>,
    err: &mut Option<rustls::Error>,
) -> bool {
    let mut buf = Vec::new();
    while from.wants_write() {
        match from.write_tls(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if buf.is_empty() || err.is_some() {
        return false;
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        match to.read_tls(&mut rd) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Err(e) = to.process_new_packets() {
                    *err = Some(e);
                    break;
                }
            }
        }
    }
    true
}

/// Drives a client and a server connection against each other through
/// in-memory buffers until neither has anything to send, then sends "ping".
pub(crate) fn handshake(
    client: Arc<ClientConfig>,
    name: &str,
    server: Arc<ServerConfig>,
) -> Outcome {
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let c = ClientConnection::new(client, name).expect("client connection");
    let s = ServerConnection::new(server).expect("server connection");
    drive(c, s)
}

pub(crate) fn drive(mut c: ClientConnection, mut s: ServerConnection) -> Outcome {
    use std::io::{Read, Write};
    let (mut c_err, mut s_err) = (None, None);
    let mut sent = false;
    for _ in 0..64 {
        let a = pump(&mut *c, &mut *s, &mut s_err);
        let b = pump(&mut *s, &mut *c, &mut c_err);
        if !c.is_handshaking() && c_err.is_none() && !sent {
            c.writer().write_all(b"ping").expect("write app data");
            sent = true;
            continue;
        }
        if !a && !b {
            break;
        }
    }
    let mut data = [0u8; 4];
    let data_arrived =
        s_err.is_none() && s.reader().read_exact(&mut data).is_ok() && &data == b"ping";
    Outcome {
        client_cert_seen: s.peer_certificates().is_some_and(|c| !c.is_empty()),
        sni: s.server_name().map(str::to_owned),
        client: match c_err {
            Some(e) => Err(e),
            None if c.is_handshaking() => {
                Err(rustls::Error::General("client still handshaking".into()))
            }
            None => Ok(()),
        },
        server: match s_err {
            Some(e) => Err(e),
            None if s.is_handshaking() => {
                Err(rustls::Error::General("server still handshaking".into()))
            }
            None => Ok(()),
        },
        data_arrived,
    }
}

/// True if `name` is on PATH. When it is not: print why the test skips, or
/// fail when CONSUL_SEC_INTEROP=1 demands real peers.
pub(crate) fn require_tool(name: &str) -> bool {
    let found = std::process::Command::new(name)
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CONSUL_SEC_INTEROP").as_deref() != Ok("1"),
            "{name} not found but CONSUL_SEC_INTEROP=1 requires it"
        );
        eprintln!(
            "skipping: {name} not found on PATH (install it, or set CONSUL_SEC_INTEROP=1 to make this fail)"
        );
    }
    found
}
