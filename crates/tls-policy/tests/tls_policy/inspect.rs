//! Certificate inspection against roles.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use consul_sec_tls_policy::{InspectOptions, Problem, Role, inspect_certificate_file};

use crate::support::*;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

// 2030-01-01T00:00:00Z: inside the Current window (2020..2100).
const Y2030: u64 = 1_893_456_000;
// 2100-01-01T00:00:00Z: the end of Current.
const Y2100: u64 = 4_102_444_800;

#[test]
fn reports_fields_of_a_consul_style_server_certificate() {
    let ca = Ca::new("Inspect CA 1");
    let files = Files::new(&ca);
    let leaf = ca.issue(&LeafSpec::server(&["server.dc1.consul", "localhost"]));
    let (cert, key) = files.leaf("srv", &leaf);
    let opts = InspectOptions {
        now: at(Y2030),
        ..InspectOptions::new(Role::Server { datacenter: "dc1".into() })
    };
    let r = inspect_certificate_file(&cert, Some(&key), &opts).unwrap();
    assert_eq!(r.subject, "CN=server.dc1.consul");
    assert_eq!(r.issuer, "CN=Inspect CA 1");
    assert!(!r.serial.is_empty());
    assert_eq!(r.not_before, 1_577_836_800);
    assert_eq!(r.not_after, Y2100 as i64);
    assert_eq!(r.dns_names, ["server.dc1.consul", "localhost"]);
    assert_eq!(r.ip_addresses, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        r.extended_key_usage.as_deref(),
        Some(&["serverAuth".to_owned(), "clientAuth".to_owned()][..])
    );
    assert!(!r.is_ca);
    assert!(r.fits(), "{:?}", r.problems);
}

#[test]
fn reports_every_problem_for_the_role() {
    let ca = Ca::new("Inspect CA 2");
    let files = Files::new(&ca);
    let other = ca.issue(&LeafSpec::client());
    let bad = ca.issue(&LeafSpec {
        eku: Some(CLIENT_ONLY),
        validity: Validity::Expired,
        ..LeafSpec::client()
    });
    let (cert, _) = files.leaf("bad", &bad);
    let (_, wrong_key) = files.leaf("other", &other);
    let opts = InspectOptions {
        now: at(Y2030),
        ..InspectOptions::new(Role::Server { datacenter: "dc2".into() })
    };
    let r = inspect_certificate_file(&cert, Some(&wrong_key), &opts).unwrap();
    assert_eq!(
        r.problems,
        vec![
            Problem::Expired { not_after: 1_609_459_200 },
            Problem::MissingEku { usage: "serverAuth" },
            Problem::MissingServerName { expected: "server.dc2.consul".into() },
            Problem::KeyMismatch,
        ]
    );
    let text: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    assert_eq!(text[2], "DNS SANs lack server.dc2.consul (needed for verify_server_hostname)");
}

#[test]
fn not_yet_valid_and_expiring_soon() {
    let ca = Ca::new("Inspect CA 3");
    let files = Files::new(&ca);
    let future = ca.issue(&LeafSpec { validity: Validity::NotYetValid, ..LeafSpec::client() });
    let (cert, _) = files.leaf("future", &future);
    let r = inspect_certificate_file(
        &cert,
        None,
        &InspectOptions { now: at(Y2030), ..InspectOptions::new(Role::Client) },
    )
    .unwrap();
    assert!(matches!(r.problems[..], [Problem::NotYetValid { .. }]), "{:?}", r.problems);

    let leaf = ca.issue(&LeafSpec::client());
    let (cert, _) = files.leaf("soon", &leaf);
    let ten_days_before_end = at(Y2100 - 10 * 86_400);
    let r = inspect_certificate_file(
        &cert,
        None,
        &InspectOptions { now: ten_days_before_end, ..InspectOptions::new(Role::Client) },
    )
    .unwrap();
    assert_eq!(r.problems, vec![Problem::ExpiresSoon { days_left: 10 }]);
}

#[test]
fn client_role_and_no_eku_extension() {
    let ca = Ca::new("Inspect CA 4");
    let files = Files::new(&ca);
    let server_only = ca.issue(&LeafSpec { eku: Some(SERVER_ONLY), ..LeafSpec::client() });
    let (cert, _) = files.leaf("s", &server_only);
    let opts = InspectOptions { now: at(Y2030), ..InspectOptions::new(Role::Client) };
    let r = inspect_certificate_file(&cert, None, &opts).unwrap();
    assert_eq!(r.problems, vec![Problem::MissingEku { usage: "clientAuth" }]);

    let none = ca.issue(&LeafSpec { eku: None, ..LeafSpec::client() });
    let (cert, _) = files.leaf("n", &none);
    let r = inspect_certificate_file(&cert, None, &opts).unwrap();
    assert_eq!(r.extended_key_usage, None);
    assert!(r.fits());
}

#[test]
fn inspecting_a_non_certificate_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "x.pem", "hello\n");
    let err = inspect_certificate_file(&f, None, &InspectOptions::new(Role::Client)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cert_file {}: no PEM CERTIFICATE block found", f.display())
    );
}

#[test]
fn loaded_policy_inspects_its_own_certificate() {
    let ca = Ca::new("Inspect CA 5");
    let files = Files::new(&ca);
    let leaf = ca.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let loaded = files.policy("srv", Some(&leaf)).load().unwrap();
    let opts = InspectOptions {
        now: at(Y2030),
        ..InspectOptions::new(Role::Server { datacenter: "dc3".into() })
    };
    let report = loaded.inspect_certificate(&opts).expect("has a certificate").unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::MissingServerName { expected: "server.dc3.consul".into() }]
    );
    assert!(
        consul_sec_tls_policy::TlsPolicy::default()
            .load()
            .unwrap()
            .inspect_certificate(&opts)
            .is_none()
    );
}
