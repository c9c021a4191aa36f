//! Interop with `openssl s_server` / `openssl s_client` as the real peer, on
//! 127.0.0.1 with free ports. Blocking std::net + rustls::StreamOwned.
//! Skipped (with the reason printed) when openssl is absent, failed instead
//! when CONSUL_SEC_INTEROP=1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consul_sec_tls_policy::{TlsPolicy, handshake_error};
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use rustls_pki_types::ServerName;

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Kills the child we started when the test ends, whatever happens.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Pki {
    ca: Ca,
    files: Files,
    rogue_files: Files,
    rogue: Ca,
}

fn pki() -> Pki {
    let ca = Ca::new("Interop CA main");
    let rogue = Ca::new("Interop CA rogue");
    Pki { files: Files::new(&ca), rogue_files: Files::new(&rogue), ca, rogue }
}

/// The error under an io::Error from a rustls stream, if any.
fn rustls_error(e: &std::io::Error) -> Option<rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).cloned()
}

// ---------- our side as client, openssl s_server as the peer ----------

/// Starts `openssl s_server` with `cert`/`key`, requiring a client cert from `ca`.
///
/// The free port can be taken by a parallel test between our probe and
/// s_server's bind, so a server that exits before listening is started
/// again on another port.
fn s_server(ca: &Path, cert: &Path, key: &Path) -> (Peer, u16) {
    for _attempt in 0..5 {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-rev", "-Verify", "1", "-verify_return_error"])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .arg("-CAfile")
            .arg(ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let mut peer = Peer(child);
        let start = Instant::now();
        // Wait until it listens; s_server shrugs off the plain TCP probe.
        loop {
            if matches!(peer.0.try_wait(), Ok(Some(_))) {
                break; // exited (port taken): try another port
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (peer, port);
            }
            assert!(start.elapsed() < TIMEOUT, "openssl s_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("openssl s_server could not bind a free port in 5 attempts");
}

/// Connects to s_server, retrying briefly: it accepts one connection at a
/// time and may still be closing the readiness probe.
fn connect_retrying(port: u16) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(sock) => return sock,
            Err(e) if start.elapsed() >= Duration::from_secs(3) => {
                panic!("connect to openssl s_server on port {port}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Dials s_server with our client policy; sends "ping\n" and expects "gnip".
fn dial_s_server(client: &TlsPolicy, port: u16) -> Result<String, rustls::Error> {
    let loaded = client.load().unwrap();
    let name = ServerName::try_from("server.dc1.consul").unwrap();
    let conn = ClientConnection::new(loaded.client_config(), name).unwrap();
    let sock = connect_retrying(port);
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    let io = |e: std::io::Error| {
        rustls_error(&e).unwrap_or_else(|| rustls::Error::General(e.to_string()))
    };
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).map_err(io)?;
    }
    tls.write_all(b"ping\n").map_err(io)?;
    tls.flush().map_err(io)?;
    let mut line = String::new();
    BufReader::new(&mut tls).read_line(&mut line).map_err(io)?;
    Ok(line.trim().to_owned())
}

/// Starts s_server with `leaf` (from `files`' CA, which it also trusts for clients).
fn serve(files: &Files, leaf: &Leaf, name: &str) -> (Peer, u16) {
    let (cert, key) = files.leaf(name, leaf);
    s_server(&files.ca_file, &cert, &key)
}

fn our_client(pki: &Pki) -> TlsPolicy {
    let leaf = pki.ca.issue(&LeafSpec::client());
    let mut p = pki.files.policy("our-client", Some(&leaf));
    p.verify_server_hostname = true;
    p
}

#[test]
fn client_against_s_server() {
    if !require_tool("openssl") {
        return;
    }
    let pki = pki();
    let good_server = pki.ca.issue(&LeafSpec::server(&["server.dc1.consul", "localhost"]));

    // mTLS accept: data flows both ways (s_server -rev reverses the line).
    let (_p, port) = serve(&pki.files, &good_server, "srv");
    assert_eq!(dial_s_server(&our_client(&pki), port).unwrap(), "gnip");

    // Missing client certificate: s_server (-Verify 1) refuses us.
    let (_p, port) = serve(&pki.files, &good_server, "srv");
    let no_cert = TlsPolicy {
        ca_file: Some(pki.files.ca_file.clone()),
        verify_server_hostname: true,
        ..TlsPolicy::default()
    };
    let err = dial_s_server(&no_cert, port).unwrap_err();
    assert!(matches!(err, rustls::Error::AlertReceived(_)), "{err:?}");

    // Wrong CA: a server certificate from another CA is refused by us.
    let rogue_server = pki.rogue.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let (_p, port) = serve(&pki.rogue_files, &rogue_server, "rogue");
    let err = dial_s_server(&our_client(&pki), port).unwrap_err();
    assert_eq!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));

    // Wrong hostname: refused with the names listed.
    let wrong = pki.ca.issue(&LeafSpec::server(&["server.dc9.consul"]));
    let (_p, port) = serve(&pki.files, &wrong, "wrong");
    let err = dial_s_server(&our_client(&pki), port).unwrap_err();
    let msg = handshake_error(err).to_string();
    assert!(msg.contains("not valid for server.dc1.consul: it holds server.dc9.consul"), "{msg}");
    // ...and accepted with verify_outgoing alone (chain only).
    let (_p, port) = serve(&pki.files, &wrong, "wrong");
    let mut chain_only = our_client(&pki);
    chain_only.verify_server_hostname = false;
    chain_only.verify_outgoing = true;
    assert_eq!(dial_s_server(&chain_only, port).unwrap(), "gnip");

    // Expired server certificate.
    let expired = pki.ca.issue(&LeafSpec {
        validity: Validity::Expired,
        ..LeafSpec::server(&["server.dc1.consul"])
    });
    let (_p, port) = serve(&pki.files, &expired, "expired");
    let err = dial_s_server(&our_client(&pki), port).unwrap_err();
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
        ),
        "{err:?}"
    );

    // EKU: a server certificate with clientAuth only.
    let client_eku = pki
        .ca
        .issue(&LeafSpec { eku: Some(CLIENT_ONLY), ..LeafSpec::server(&["server.dc1.consul"]) });
    let (_p, port) = serve(&pki.files, &client_eku, "eku");
    let err = dial_s_server(&our_client(&pki), port).unwrap_err();
    let msg = handshake_error(err).to_string();
    assert!(msg.contains("server certificate lacks the serverAuth extended key usage"), "{msg}");
}

// ---------- our side as server, openssl s_client as the peer ----------

struct ClientRun {
    server: Result<String, rustls::Error>,
    s_client_output: String,
    s_client_ok: bool,
}

/// Runs our verify_incoming server for one connection from `openssl s_client`
/// started with `args`; s_client sends "ping".
fn against_s_client(server: &TlsPolicy, args: &[&str], files: &[(&str, &Path)]) -> ClientRun {
    let loaded = server.load().unwrap();
    let config = loaded.server_config().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || serve_one(listener, config));

    let mut cmd = Command::new("openssl");
    cmd.arg("s_client").arg("-connect").arg(format!("127.0.0.1:{port}")).args(args);
    for (flag, path) in files {
        cmd.arg(flag).arg(path);
    }
    let mut child = Peer(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start openssl s_client"),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let _ = stdin.write_all(b"ping\n");
    let server = handle.join().expect("server thread");
    drop(stdin);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut o) = child.0.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut out);
    }
    ClientRun { server, s_client_output: out, s_client_ok: status.is_some_and(|s| s.success()) }
}

fn serve_one(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> Result<String, rustls::Error> {
    let (sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), sock);
    let io = |e: std::io::Error| {
        rustls_error(&e).unwrap_or_else(|| rustls::Error::General(e.to_string()))
    };
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).map_err(io)?;
    }
    let mut line = String::new();
    BufReader::new(&mut tls).read_line(&mut line).map_err(io)?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(line.trim().to_owned())
}

fn s_client_files(files: &Files, leaf: &Leaf, name: &str) -> (PathBuf, PathBuf) {
    files.leaf(name, leaf)
}

#[test]
fn server_against_s_client() {
    if !require_tool("openssl") {
        return;
    }
    let pki = pki();
    let server_leaf = pki.ca.issue(&LeafSpec::server(&["server.dc1.consul", "localhost"]));
    let mut server = pki.files.policy("our-server", Some(&server_leaf));
    server.verify_incoming = true;
    let ca = pki.files.ca_file.clone();
    let verify_args = [
        "-verify_return_error",
        "-verify_hostname",
        "server.dc1.consul",
        "-servername",
        "server.dc1.consul",
    ];

    // mTLS accept: s_client verifies us (CA + hostname), we verify it.
    let client_leaf = pki.ca.issue(&LeafSpec::client());
    let (c, k) = s_client_files(&pki.files, &client_leaf, "c");
    let run =
        against_s_client(&server, &verify_args, &[("-CAfile", &ca), ("-cert", &c), ("-key", &k)]);
    assert_eq!(run.server.as_deref(), Ok("ping"), "{}", run.s_client_output);
    assert!(run.s_client_output.contains("Verify return code: 0 (ok)"), "{}", run.s_client_output);

    // Missing client certificate.
    let run = against_s_client(&server, &verify_args, &[("-CAfile", &ca)]);
    assert_eq!(run.server, Err(rustls::Error::NoCertificatesPresented), "{}", run.s_client_output);

    // Wrong CA for the client certificate.
    let rogue_client = pki.rogue.issue(&LeafSpec::client());
    let (c, k) = s_client_files(&pki.rogue_files, &rogue_client, "rc");
    let run =
        against_s_client(&server, &verify_args, &[("-CAfile", &ca), ("-cert", &c), ("-key", &k)]);
    assert_eq!(
        run.server,
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
    );

    // Wrong hostname: openssl checks our certificate for server.dc2.consul and refuses it.
    let client_leaf = pki.ca.issue(&LeafSpec::client());
    let (c, k) = s_client_files(&pki.files, &client_leaf, "c2");
    let run = against_s_client(
        &server,
        &["-verify_return_error", "-verify_hostname", "server.dc2.consul"],
        &[("-CAfile", &ca), ("-cert", &c), ("-key", &k)],
    );
    assert!(run.server.is_err());
    assert!(!run.s_client_ok);
    assert!(
        run.s_client_output.to_lowercase().contains("hostname mismatch"),
        "{}",
        run.s_client_output
    );

    // Expired client certificate.
    let expired = pki.ca.issue(&LeafSpec { validity: Validity::Expired, ..LeafSpec::client() });
    let (c, k) = s_client_files(&pki.files, &expired, "exp");
    let run =
        against_s_client(&server, &verify_args, &[("-CAfile", &ca), ("-cert", &c), ("-key", &k)]);
    assert!(
        matches!(
            run.server,
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. }))
        ),
        "{:?}",
        run.server
    );

    // EKU: a client certificate with serverAuth only is refused, and says so.
    let server_eku = pki.ca.issue(&LeafSpec { eku: Some(SERVER_ONLY), ..LeafSpec::client() });
    let (c, k) = s_client_files(&pki.files, &server_eku, "eku");
    let run =
        against_s_client(&server, &verify_args, &[("-CAfile", &ca), ("-cert", &c), ("-key", &k)]);
    let err = run.server.expect_err("EKU must be refused");
    assert_eq!(
        handshake_error(err).to_string(),
        "tls handshake: client certificate lacks the clientAuth extended key usage (it allows: serverAuth)"
    );
    // A client certificate without any EKU extension is accepted (Go semantics).
    let no_eku = pki.ca.issue(&LeafSpec { eku: None, ..LeafSpec::client() });
    let (c, k) = s_client_files(&pki.files, &no_eku, "noeku");
    let run =
        against_s_client(&server, &verify_args, &[("-CAfile", &ca), ("-cert", &c), ("-key", &k)]);
    assert_eq!(run.server.as_deref(), Ok("ping"), "{}", run.s_client_output);
}
