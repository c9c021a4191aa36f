//! `consul-sec tls ca create` / `tls cert create` end to end, run in a
//! temporary working directory as an operator would.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

fn tls(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("consul-sec")
        .expect("binary built")
        .current_dir(dir)
        .arg("tls")
        .args(args)
        .assert()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

fn stdout(assert: assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("utf-8")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

const WARNING: &str = "==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.
";

#[test]
fn ca_create_writes_consul_files_and_refuses_a_second_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout(tls(dir.path(), &["ca", "create"]).success());
    assert_eq!(out, "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n");
    assert_eq!(files(dir.path()), ["consul-agent-ca-key.pem", "consul-agent-ca.pem"]);
    let key = fs::read_to_string(dir.path().join("consul-agent-ca-key.pem")).expect("key");
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    #[cfg(unix)]
    assert_eq!(mode(&dir.path().join("consul-agent-ca-key.pem")), 0o600);

    let before = fs::read(dir.path().join("consul-agent-ca.pem")).expect("cert");
    tls(dir.path(), &["ca", "create"])
        .code(1)
        .stdout("")
        .stderr(contains("consul-agent-ca.pem: already exists"));
    assert_eq!(fs::read(dir.path().join("consul-agent-ca.pem")).expect("cert"), before);
}

#[test]
fn ca_create_domain_and_name_constraint_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout(
        tls(
            dir.path(),
            &[
                "ca",
                "create",
                "-domain=corp",
                "-name-constraint",
                "-additional-name-constraint",
                "example.com",
            ],
        )
        .success(),
    );
    assert_eq!(out, "==> Saved corp-agent-ca.pem\n==> Saved corp-agent-ca-key.pem\n");
    let pem = fs::read_to_string(dir.path().join("corp-agent-ca.pem")).expect("ca");
    // A server certificate outside the constraints is refused by the CA check.
    tls(
        dir.path(),
        &["cert", "create", "-server", "-domain", "corp", "-additional-dnsname=evil.test"],
    )
    .code(1)
    .stderr(contains("evil.test: not permitted by the name constraints of the CA"));
    tls(
        dir.path(),
        &["cert", "create", "-server", "-domain", "corp", "-additional-dnsname=a.example.com"],
    )
    .success();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // -additional-name-constraint without -name-constraint is a usage error here.
    let other = tempfile::tempdir().expect("tempdir");
    tls(other.path(), &["ca", "create", "-additional-name-constraint=x.example"]).code(2);
    assert!(files(other.path()).is_empty());
    // ... and so is an explicit -name-constraint=false, which would otherwise drop it silently.
    tls(
        other.path(),
        &["ca", "create", "-name-constraint=false", "-additional-name-constraint=x.example"],
    )
    .code(1)
    .stdout("")
    .stderr(contains("-additional-name-constraint requires -name-constraint"));
    assert!(files(other.path()).is_empty());
}

#[test]
fn cert_create_server_prints_warning_and_takes_the_next_free_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    tls(dir.path(), &["ca", "create"]).success();
    let out = stdout(tls(dir.path(), &["cert", "create", "-server", "-node", "n1"]).success());
    assert_eq!(
        out,
        format!(
            "{WARNING}==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
             ==> Saved dc1-server-consul-0.pem\n==> Saved dc1-server-consul-0-key.pem\n"
        )
    );
    let out = stdout(tls(dir.path(), &["cert", "create", "-server"]).success());
    assert!(
        out.ends_with("==> Saved dc1-server-consul-1.pem\n==> Saved dc1-server-consul-1-key.pem\n")
    );
    let key = fs::read_to_string(dir.path().join("dc1-server-consul-1-key.pem")).expect("key");
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.path().join("dc1-server-consul-0-key.pem")), 0o600);
        assert_eq!(mode(&dir.path().join("dc1-server-consul-1-key.pem")), 0o600);
    }
}

#[test]
fn cert_create_client_and_cli_have_no_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    tls(dir.path(), &["ca", "create"]).success();
    let out = stdout(tls(dir.path(), &["cert", "create", "-client"]).success());
    assert_eq!(
        out,
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-client-consul-0.pem\n==> Saved dc1-client-consul-0-key.pem\n"
    );
    let out = stdout(tls(dir.path(), &["cert", "create", "--cli"]).success());
    assert!(out.ends_with("==> Saved dc1-cli-consul-0.pem\n==> Saved dc1-cli-consul-0-key.pem\n"));
    assert!(!out.contains("WARNING"));
}

#[test]
fn dc_flag_in_both_styles() {
    let dir = tempfile::tempdir().expect("tempdir");
    tls(dir.path(), &["ca", "create"]).success();
    let out = stdout(tls(dir.path(), &["cert", "create", "-client", "-dc=dc2"]).success());
    assert!(out.contains("==> Saved dc2-client-consul-0.pem\n"), "{out}");
    let out = stdout(tls(dir.path(), &["cert", "create", "--client", "--dc", "dc2"]).success());
    assert!(out.contains("==> Saved dc2-client-consul-1.pem\n"), "{out}");
    let out = stdout(
        tls(dir.path(), &["cert", "create", "-server=true", "-dc", "dc3", "-days=30"]).success(),
    );
    assert!(out.contains("==> Saved dc3-server-consul-0.pem\n"), "{out}");
}

#[test]
fn exactly_one_kind_and_node_only_for_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    tls(dir.path(), &["ca", "create"]).success();
    for args in [
        &["cert", "create"][..],
        &["cert", "create", "-server", "-client"],
        &["cert", "create", "-server=false"],
    ] {
        tls(dir.path(), args)
            .code(1)
            .stdout("")
            .stderr(contains("Please provide either -server, -client, or -cli"));
    }
    tls(dir.path(), &["cert", "create", "-client", "-node", "n1"])
        .code(1)
        .stderr(contains("-node requires -server"));
    assert_eq!(files(dir.path()), ["consul-agent-ca-key.pem", "consul-agent-ca.pem"]);
}

#[test]
fn bad_input_fails_before_any_file_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    tls(dir.path(), &["ca", "create"]).success();
    let ca_only = files(dir.path());

    // An invalid IP address is a usage error naming the flag.
    tls(dir.path(), &["cert", "create", "-server", "-additional-ipaddress=10.0.0.300"])
        .code(2)
        .stdout("")
        .stderr(contains("10.0.0.300").and(contains("--additional-ipaddress")));
    // An invalid DNS name.
    tls(dir.path(), &["cert", "create", "-server", "-additional-dnsname", "bad name"])
        .code(1)
        .stdout("")
        .stderr(contains("\"bad name\": not a valid DNS name"));
    // A CA key that is not the CA certificate's key.
    let other = tempfile::tempdir().expect("tempdir");
    tls(other.path(), &["ca", "create"]).success();
    let other_key = other.path().join("consul-agent-ca-key.pem");
    tls(dir.path(), &["cert", "create", "-server", "-key", other_key.to_str().expect("utf-8")])
        .code(1)
        .stdout("")
        .stderr(contains("private key does not match the CA certificate consul-agent-ca.pem"));
    // A missing CA file, through the #DOMAIN# default.
    tls(dir.path(), &["cert", "create", "-client", "-domain", "nosuch"])
        .code(1)
        .stdout("")
        .stderr(contains("nosuch-agent-ca.pem: reading the CA certificate failed"));
    tls(dir.path(), &["cert", "create", "-client", "-ca="])
        .code(1)
        .stderr(contains("Please provide the ca"));
    assert_eq!(files(dir.path()), ca_only);
}

#[test]
fn stray_positional_argument_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    tls(dir.path(), &["ca", "create", "extra"]).code(2).stdout("");
    assert!(files(dir.path()).is_empty());
    tls(dir.path(), &["ca", "create"]).success();
    tls(dir.path(), &["cert", "create", "-server", "extra"]).code(2).stdout("");
    tls(dir.path(), &["cert", "create", "-server", "true"]).code(2).stdout("");
    assert_eq!(files(dir.path()), ["consul-agent-ca-key.pem", "consul-agent-ca.pem"]);
}

#[test]
fn cert_create_help_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout(tls(dir.path(), &["cert", "create", "--help"]).success());
    insta::assert_snapshot!(out);
}
