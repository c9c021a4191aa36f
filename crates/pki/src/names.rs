//! Consul's file names for CAs and certificates, and DNS-name checks.

use crate::{CertKind, Error, Result};

/// Default CA certificate path of `consul tls cert create -ca`; the first
/// `#DOMAIN#` is replaced by the domain.
pub const CA_CERT_TEMPLATE: &str = "#DOMAIN#-agent-ca.pem";

/// Default CA key path of `consul tls cert create -key`; the first
/// `#DOMAIN#` is replaced by the domain.
pub const CA_KEY_TEMPLATE: &str = "#DOMAIN#-agent-ca-key.pem";

/// How many `<prefix>-<n>.pem` names are tried before giving up, as Consul.
pub const MAX_CERT_INDEX: u32 = 10_000;

/// Replaces the first `#DOMAIN#` in `template` with `domain`, as Consul does
/// for the `-ca` and `-key` flags.
pub fn expand_domain(template: &str, domain: &str) -> String {
    template.replacen("#DOMAIN#", domain, 1)
}

/// `<domain>-agent-ca.pem`, the file `tls ca create` writes the CA
/// certificate to.
pub fn ca_cert_file(domain: &str) -> String {
    expand_domain(CA_CERT_TEMPLATE, domain)
}

/// `<domain>-agent-ca-key.pem`, the file `tls ca create` writes the CA key to.
pub fn ca_key_file(domain: &str) -> String {
    expand_domain(CA_KEY_TEMPLATE, domain)
}

/// `<dc>-<server|client|cli>-<domain>`, the prefix of certificate file names.
pub fn cert_prefix(kind: CertKind, dc: &str, domain: &str) -> String {
    format!("{dc}-{}-{domain}", kind.as_str())
}

/// `(<prefix>-<n>.pem, <prefix>-<n>-key.pem)`.
pub fn cert_files(prefix: &str, n: u32) -> (String, String) {
    (format!("{prefix}-{n}.pem"), format!("{prefix}-{n}-key.pem"))
}

/// Checks that `name` is a DNS name a certificate may carry: labels of
/// letters, digits, `-` and `_`, at most 63 bytes each, 253 in all, and an
/// optional leading `*.` wildcard label. `role` says what the name is for in
/// the error.
pub fn validate_dns_name(name: &str, role: &'static str) -> Result<()> {
    let rest = name.strip_prefix("*.").unwrap_or(name);
    // rustls-pki-types implements the RFC 1035/5890 host-name rules that
    // webpki applies when matching; a name it rejects could never match.
    if rustls_pki_types::DnsName::try_from(rest).is_ok() && !rest.starts_with('*') {
        Ok(())
    } else {
        Err(Error::InvalidDnsName { name: name.to_owned(), role })
    }
}

/// Whether `name` falls inside a DNS name-constraint subtree, with the
/// rules Go's x509 package applies (which Consul uses to check a new
/// certificate): `example.com` permits itself and every subdomain,
/// `.example.com` only subdomains, and the empty constraint everything.
/// Comparison ignores ASCII case and a trailing dot.
pub(crate) fn dns_name_within(name: &str, constraint: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let constraint = constraint.trim_end_matches('.').to_ascii_lowercase();
    if constraint.is_empty() {
        return true;
    }
    if let Some(suffix) = constraint.strip_prefix('.') {
        return name.len() > suffix.len() && name.ends_with(&constraint);
    }
    name == constraint || name.ends_with(&format!(".{constraint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_file_names() {
        assert_eq!(ca_cert_file("consul"), "consul-agent-ca.pem");
        assert_eq!(ca_key_file("example"), "example-agent-ca-key.pem");
        assert_eq!(expand_domain("#DOMAIN#-#DOMAIN#.pem", "x"), "x-#DOMAIN#.pem");
        let prefix = cert_prefix(CertKind::Server, "dc1", "consul");
        assert_eq!(prefix, "dc1-server-consul");
        assert_eq!(
            cert_files(&prefix, 0),
            ("dc1-server-consul-0.pem".to_owned(), "dc1-server-consul-0-key.pem".to_owned())
        );
        assert_eq!(cert_prefix(CertKind::Cli, "dc2", "corp"), "dc2-cli-corp");
        assert_eq!(cert_prefix(CertKind::Client, "dc2", "corp"), "dc2-client-corp");
    }

    #[test]
    fn dns_name_validation() {
        for good in ["localhost", "server.dc1.consul", "a-b.c_d.example", "*.dc1.consul", "x."] {
            assert!(validate_dns_name(good, "test").is_ok(), "{good}");
        }
        for bad in ["", "a b", "-a.example", "a..b", "*", "a.*.b", "**.b", "é.example", "1.2.3.4"]
        {
            let err = validate_dns_name(bad, "additional DNS name").expect_err(bad);
            assert!(matches!(&err, Error::InvalidDnsName { name, .. } if name == bad), "{bad}");
        }
        let long_label = "a".repeat(64);
        assert!(validate_dns_name(&format!("{long_label}.example"), "t").is_err());
    }

    #[test]
    fn name_constraint_matching_follows_go_rules() {
        assert!(dns_name_within("consul", "consul"));
        assert!(dns_name_within("server.dc1.consul", "consul"));
        assert!(dns_name_within("Server.DC1.Consul.", "consul"));
        assert!(!dns_name_within("notconsul", "consul"));
        assert!(!dns_name_within("consul.evil", "consul"));
        assert!(dns_name_within("a.example.com", ".example.com"));
        assert!(!dns_name_within("example.com", ".example.com"));
        assert!(dns_name_within("anything", ""));
    }
}
