//! Issuing server, client and CLI certificates (`consul tls cert create`).

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType, SerialNumber,
};

use crate::ca::{Ca, set_validity};
use crate::key::{Issued, PrivateKey, write_signing_key};
use crate::names::validate_dns_name;
use crate::{Error, Result};

/// Validity of a new certificate in days when none is given, as Consul.
pub const DEFAULT_CERT_DAYS: u32 = 365;

/// Which of Consul's three certificate profiles to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// `-server`: DNS `server.<dc>.<domain>` and `localhost`, IP
    /// `127.0.0.1`, EKU serverAuth + clientAuth. Grants server authority.
    Server,
    /// `-client`: DNS `client.<dc>.<domain>` and `localhost`, IP
    /// `127.0.0.1`, EKU clientAuth + serverAuth.
    Client,
    /// `-cli`: DNS `cli.<dc>.<domain>` and `localhost`, no extended key
    /// usage; additional DNS names are ignored, as Consul does.
    Cli,
}

impl CertKind {
    /// `server`, `client` or `cli`, as used in names and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Server => "server",
            CertKind::Client => "client",
            CertKind::Cli => "cli",
        }
    }
}

/// What `consul tls cert create` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequest {
    /// The profile (`-server`, `-client` or `-cli`).
    pub kind: CertKind,
    /// Datacenter (`-dc`, default `dc1`).
    pub dc: String,
    /// Consul domain (`-domain`, default `consul`).
    pub domain: String,
    /// Validity in days from now (`-days`, default 365; 0 means 365).
    pub days: u32,
    /// Node name (`-node`, servers only): adds `<node>.server.<dc>.<domain>`.
    pub node: Option<String>,
    /// Extra DNS names (`-additional-dnsname`); trimmed, empty ones skipped.
    pub additional_dns_names: Vec<String>,
    /// Extra IP addresses (`-additional-ipaddress`).
    pub additional_ips: Vec<IpAddr>,
}

impl CertRequest {
    /// A request with Consul's defaults: `dc1`, `consul`, 365 days.
    pub fn new(kind: CertKind) -> Self {
        CertRequest {
            kind,
            dc: "dc1".to_owned(),
            domain: "consul".to_owned(),
            days: DEFAULT_CERT_DAYS,
            node: None,
            additional_dns_names: Vec::new(),
            additional_ips: Vec::new(),
        }
    }

    /// The subject common name: `<server|client|cli>.<dc>.<domain>`.
    pub fn common_name(&self) -> String {
        format!("{}.{}.{}", self.kind.as_str(), self.dc, self.domain)
    }

    /// The DNS subject alternative names, in Consul's order: additional names
    /// (not for CLI certificates), the node name (servers), the common name,
    /// `localhost`. Duplicates are dropped.
    pub fn dns_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.kind != CertKind::Cli {
            names.extend(
                self.additional_dns_names
                    .iter()
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
            );
        }
        if let (CertKind::Server, Some(node)) = (self.kind, &self.node) {
            names.push(format!("{node}.server.{}.{}", self.dc, self.domain));
        }
        names.push(self.common_name());
        names.push("localhost".to_owned());
        dedup(names)
    }

    /// The IP subject alternative names: additional addresses, then
    /// `127.0.0.1` for servers and clients.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        let mut ips = self.additional_ips.clone();
        if self.kind != CertKind::Cli {
            ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        dedup(ips)
    }
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Issues a certificate signed by `ca`, with a new P-256 key, a random
/// 128-bit serial, the names of [`CertRequest::dns_names`] and
/// [`CertRequest::ip_addresses`] in the subject alternative names (the
/// common name is always among them), key usage digitalSignature +
/// keyEncipherment, basic constraints CA=false, and validity from now for
/// `days`.
///
/// Every name is checked first: an invalid DNS name, a node name on a
/// client or CLI certificate, or a name outside the CA's name constraints
/// is an error and nothing is signed.
pub fn issue_cert(ca: &Ca, request: &CertRequest) -> Result<Issued> {
    if let (CertKind::Client | CertKind::Cli, Some(node)) = (request.kind, &request.node) {
        return Err(Error::NodeRequiresServer { node: node.clone() });
    }
    validate_dns_name(&request.dc, "datacenter")?;
    validate_dns_name(&request.domain, "domain")?;
    if let Some(node) = &request.node {
        validate_dns_name(node, "node name")?;
    }
    let dns_names = request.dns_names();
    for name in &dns_names {
        validate_dns_name(name, "DNS name")?;
        ca.check_name(name)?;
    }

    let key = PrivateKey::generate()?;
    let mut params = CertificateParams::default();
    let serial = crate::ca::random_serial();
    params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, request.common_name());
    params.distinguished_name = subject;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = match request.kind {
        CertKind::Server => {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        }
        CertKind::Client => {
            vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth]
        }
        CertKind::Cli => Vec::new(),
    };
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, request.days)?;
    let mut sans = Vec::new();
    for name in dns_names {
        let ia5 = name
            .clone()
            .try_into()
            .map_err(|source| Error::Generate { what: format!("DNS name {name:?}"), source })?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(request.ip_addresses().into_iter().map(SanType::IpAddress));
    params.subject_alt_names = sans;

    let cert = params.signed_by(&key, ca.issuer()).map_err(|source| Error::Generate {
        what: format!("{} certificate", request.kind.as_str()),
        source,
    })?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: write_signing_key(&key)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_plan_matches_consul_profiles() {
        let mut server = CertRequest::new(CertKind::Server);
        server.node = Some("n1".to_owned());
        server.additional_dns_names = vec![" extra.example ".to_owned(), String::new()];
        server.additional_ips = vec!["10.0.0.1".parse().expect("ip")];
        assert_eq!(
            server.dns_names(),
            ["extra.example", "n1.server.dc1.consul", "server.dc1.consul", "localhost"]
        );
        assert_eq!(
            server.ip_addresses(),
            ["10.0.0.1".parse::<IpAddr>().expect("ip"), Ipv4Addr::LOCALHOST.into()]
        );

        let mut cli = CertRequest::new(CertKind::Cli);
        cli.additional_dns_names = vec!["foo.example".to_owned()];
        assert_eq!(cli.dns_names(), ["cli.dc1.consul", "localhost"]);
        assert!(cli.ip_addresses().is_empty());

        let client = CertRequest { dc: "dc2".to_owned(), ..CertRequest::new(CertKind::Client) };
        assert_eq!(client.common_name(), "client.dc2.consul");
        assert_eq!(client.dns_names(), ["client.dc2.consul", "localhost"]);
    }
}
