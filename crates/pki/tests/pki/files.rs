//! Consul's file names, the next free index, permissions and refusal to
//! overwrite.

use std::fs;
use std::path::Path;

use consul_sec_pki::files::{create_ca_files, create_cert_files, load_ca, next_free_cert_files};
use consul_sec_pki::{CaRequest, CertKind, CertRequest, Error};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn ca_files_use_consul_names_and_are_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let saved = create_ca_files(dir.path(), &CaRequest::default()).expect("create");
    assert_eq!(saved.cert, dir.path().join("consul-agent-ca.pem"));
    assert_eq!(saved.key, dir.path().join("consul-agent-ca-key.pem"));
    let before = fs::read(&saved.cert).expect("read");

    let err = create_ca_files(dir.path(), &CaRequest::default()).expect_err("second run");
    assert!(matches!(&err, Error::FileExists { path } if *path == saved.cert), "{err}");
    assert!(err.to_string().ends_with("consul-agent-ca.pem: already exists"), "{err}");
    assert_eq!(fs::read(&saved.cert).expect("read"), before);

    // Only the key left behind: still refused, and the certificate is not written.
    fs::remove_file(&saved.cert).expect("rm");
    assert!(matches!(
        create_ca_files(dir.path(), &CaRequest::default()),
        Err(Error::FileExists { path }) if path == saved.key
    ));
    assert_eq!(names(dir.path()), ["consul-agent-ca-key.pem"]);

    let other = CaRequest { domain: "example".to_owned(), ..CaRequest::default() };
    let saved = create_ca_files(dir.path(), &other).expect("other domain");
    assert_eq!(saved.cert, dir.path().join("example-agent-ca.pem"));
}

#[cfg(unix)]
#[test]
fn keys_are_0600_and_certificates_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = create_ca_files(dir.path(), &CaRequest::default()).expect("ca");
    assert_eq!(mode(&ca.key), 0o600);
    let loaded = load_ca(&ca.cert, &ca.key).expect("load");
    let saved = create_cert_files(dir.path(), &loaded, &CertRequest::new(CertKind::Server))
        .expect("server");
    assert_eq!(mode(&saved.key), 0o600);
    // Certificates are 0666 minus the umask: at least readable by the owner, never executable.
    assert_eq!(mode(&saved.cert) & 0o600, 0o600);
    assert_eq!(mode(&saved.cert) & 0o111, 0);
}

#[test]
fn certificates_take_the_next_free_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ca = create_ca_files(d, &CaRequest::default()).expect("ca");
    let ca = load_ca(&ca.cert, &ca.key).expect("load");
    let first = create_cert_files(d, &ca, &CertRequest::new(CertKind::Server)).expect("0");
    let second = create_cert_files(d, &ca, &CertRequest::new(CertKind::Server)).expect("1");
    assert_eq!(first.cert, d.join("dc1-server-consul-0.pem"));
    assert_eq!(first.key, d.join("dc1-server-consul-0-key.pem"));
    assert_eq!(second.cert, d.join("dc1-server-consul-1.pem"));

    // An index is taken when either file of the pair exists.
    fs::write(d.join("dc1-server-consul-2-key.pem"), "x").expect("write");
    let (cert, key) = next_free_cert_files(d, "dc1-server-consul").expect("free");
    assert_eq!(
        (cert, key),
        (d.join("dc1-server-consul-3.pem"), d.join("dc1-server-consul-3-key.pem"))
    );

    let mut client = CertRequest::new(CertKind::Client);
    client.dc = "dc2".to_owned();
    let saved = create_cert_files(d, &ca, &client).expect("client");
    assert_eq!(saved.cert, d.join("dc2-client-consul-0.pem"));
    let saved = create_cert_files(d, &ca, &CertRequest::new(CertKind::Cli)).expect("cli");
    assert_eq!(saved.key, d.join("dc1-cli-consul-0-key.pem"));
}

#[test]
fn load_ca_errors_name_the_file_and_nothing_is_written_on_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let err = load_ca(&d.join("missing.pem"), &d.join("missing-key.pem")).expect_err("missing");
    assert!(matches!(err, Error::Io { action: "reading the CA certificate", .. }), "{err}");
    assert!(err.to_string().contains("missing.pem: reading the CA certificate failed"), "{err}");

    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let ca_a = create_ca_files(a.path(), &CaRequest::default()).expect("a");
    let ca_b = create_ca_files(b.path(), &CaRequest::default()).expect("b");
    let err = load_ca(&ca_a.cert, &ca_b.key).expect_err("mismatch");
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("consul-agent-ca-key.pem: private key does not match"),
        "{err}"
    );

    // A bad request fails before the first file is written.
    let ca = load_ca(&ca_a.cert, &ca_a.key).expect("load");
    let mut bad = CertRequest::new(CertKind::Server);
    bad.additional_dns_names = vec!["not valid!".to_owned()];
    assert!(create_cert_files(d, &ca, &bad).is_err());
    assert!(names(d).is_empty());
}
