//! Issue 8, acceptance 2 with real agent processes: a server agent under
//! `verify_incoming`, `verify_outgoing` and `verify_server_hostname`, and
//! client agents set up wrongly in each way the policy must catch, each
//! asked to ping the server over RPC (`/v1/internal/rpc/ping`).
//! Certificates come from `cargo xtask gen-certs` (two separate CAs).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

/// A test PKI (CA, 3 server and 2 client certificates of dc1) in `dir`.
fn gen_certs(dir: &Path) -> PathBuf {
    let mut report = Vec::new();
    xtask::run_from(["xtask", "gen-certs", "--out", dir.to_str().unwrap()], &mut report).unwrap();
    dir.to_owned()
}

/// An HCL file with `body` in `dir`, as a `-config-file` flag.
fn config(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(format!("{name}.hcl"));
    std::fs::write(&path, body).unwrap();
    format!("-config-file={}", path.display())
}

/// The `tls` stanza: CA from `ca_pki`, certificate `cert` (`None`: none)
/// from `cert_pki`, and the three verify flags.
fn tls(
    ca_pki: &Path,
    cert: Option<(&Path, &str)>,
    incoming: bool,
    outgoing: bool,
    hostname: bool,
) -> String {
    let files = cert.map_or_else(String::new, |(dir, name)| {
        format!(
            "    cert_file = \"{dir}/{name}.pem\"\n    key_file = \"{dir}/{name}-key.pem\"\n",
            dir = dir.display()
        )
    });
    format!(
        "tls {{\n  defaults {{\n    ca_file = \"{ca}\"\n{files}    verify_incoming = {incoming}\n    verify_outgoing = {outgoing}\n  }}\n  internal_rpc {{\n    verify_server_hostname = {hostname}\n  }}\n}}\n",
        ca = ca_pki.join("consul-agent-ca.pem").display()
    )
}

/// `(status, body)` of this agent's RPC ping to `rpc` (optionally as if
/// dialling datacenter `dc`).
fn ping(agent: &Agent, rpc: u16, dc: Option<&str>) -> (u16, String) {
    let dc = dc.map_or_else(String::new, |dc| format!("&dc={dc}"));
    http_get(agent.http, &format!("/v1/internal/rpc/ping?addr=127.0.0.1:{rpc}{dc}")).unwrap()
}

fn start_server(dir: &Path, name: &str, tls_config: &str) -> (Agent, u16) {
    let rpc = free_port();
    let flags =
        ["-server".to_owned(), format!("-server-port={rpc}"), config(dir, name, tls_config)];
    (Agent::start(name, &dir.join(name), &flags), rpc)
}

fn start_client(dir: &Path, name: &str, tls_config: &str) -> Agent {
    Agent::start(name, &dir.join(name), &[config(dir, name, tls_config)])
}

#[test]
fn policy_in_force_between_real_agents() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let pki = gen_certs(&dir.join("pki"));
    let other = gen_certs(&dir.join("other-pki"));

    let (server, rpc) = start_server(
        dir,
        "server",
        &tls(&pki, Some((&pki, "dc1-server-consul-0")), true, true, true),
    );
    assert!(server.stdout().contains("RPC-TLS: true, TLS-Incoming: true"), "{}", server.stdout());

    // A well-configured client: TLS both ways, accepted.
    let good = start_client(
        dir,
        "good",
        &tls(&pki, Some((&pki, "dc1-client-consul-0")), false, true, true),
    );
    let (status, body) = ping(&good, rpc, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""TLS":true"#), "{body}");

    // Plaintext: closed without a reply, and the server logs why.
    let plain = start_client(dir, "plain", "datacenter = \"dc1\"\n");
    let (status, body) = ping(&plain, rpc, None);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("closed the plaintext RPC connection without answering; it may require TLS"),
        "{body}"
    );
    wait_for("the VerifyIncoming warning", Duration::from_secs(5), || {
        server.stderr().contains("Non-TLS connection attempted with VerifyIncoming set")
    });

    // TLS without a client certificate: refused by the server.
    let no_cert = start_client(dir, "no-cert", &tls(&pki, None, false, true, true));
    let (status, body) = ping(&no_cert, rpc, None);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("alert CertificateRequired"), "{body}");

    // A client certificate from another CA: refused by the server.
    let foreign = start_client(
        dir,
        "foreign",
        &tls(&pki, Some((&other, "dc1-client-consul-0")), false, true, true),
    );
    let (status, body) = ping(&foreign, rpc, None);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("alert UnknownCA"), "{body}");

    // The client trusts another CA: it refuses the server.
    let distrust = start_client(
        dir,
        "distrust",
        &tls(&other, Some((&other, "dc1-client-consul-0")), false, true, false),
    );
    let (status, body) = ping(&distrust, rpc, None);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("not signed by a CA from ca_file/ca_path (unknown issuer)"), "{body}");

    // verify_server_hostname: the dc dialled decides the name; dc2 is
    // refused even though a connection verified for dc1 sits in the pool.
    let (status, body) = ping(&good, rpc, Some("dc2"));
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("not valid for server.dc2.consul: it holds server.dc1.consul"), "{body}");

    // A client certificate posing as a server: chains to the CA, but is
    // not valid for server.dc1.consul, so a client with
    // verify_server_hostname refuses it; without the hostname check it
    // would pass, which is why the docs insist on it.
    let (poser, poser_rpc) = start_server(
        dir,
        "poser",
        &tls(&pki, Some((&pki, "dc1-client-consul-1")), false, false, false),
    );
    let (status, body) = ping(&good, poser_rpc, None);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("not valid for server.dc1.consul: it holds client.dc1.consul"), "{body}");
    let lax = start_client(
        dir,
        "lax",
        &tls(&pki, Some((&pki, "dc1-client-consul-1")), false, true, false),
    );
    let (status, body) = ping(&lax, poser_rpc, None);
    assert_eq!(status, 200, "without verify_server_hostname the poser passes: {body}");
    drop(poser);
}
