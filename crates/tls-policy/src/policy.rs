//! The settings type ([`TlsPolicy`]) and its pure parts: TLS versions, cipher
//! suite names and the `verify_server_hostname` ⇒ `verify_outgoing` rule.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite;

use crate::Error;

/// Consul's default DNS domain, used in `server.<datacenter>.<domain>`.
pub const DEFAULT_DOMAIN: &str = "consul";

/// Consul's default datacenter name.
pub const DEFAULT_DATACENTER: &str = "dc1";

/// The TLS options of one Consul listener/dialler (Consul's `tls.internal_rpc`
/// after inheritance from `tls.defaults`), as plain settings.
///
/// Nothing is read from disk until [`TlsPolicy::load`]. The `config` crate
/// converts Consul's file shape into this type; this crate never sees JSON or
/// HCL.
///
/// Differences from Consul, on purpose:
/// * setting only one of `cert_file`/`key_file` is an error at load (Consul
///   silently loads no certificate);
/// * `tls_min_version` cannot be TLS 1.0 or 1.1 (rustls does not speak them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPolicy {
    /// PEM file with the CA certificate(s) peers must chain to; wins over `ca_path`.
    pub ca_file: Option<PathBuf>,
    /// Directory walked recursively; every regular file must hold PEM certificates.
    pub ca_path: Option<PathBuf>,
    /// PEM file with this agent's certificate, optionally followed by intermediates.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key for `cert_file` (PKCS#8, SEC1 or PKCS#1).
    pub key_file: Option<PathBuf>,
    /// Require and verify a client certificate on incoming TLS, and refuse plaintext RPC.
    pub verify_incoming: bool,
    /// Use TLS for outgoing RPC and verify the server's chain against the CA.
    pub verify_outgoing: bool,
    /// Also require `server.<dc>.<domain>` in the server certificate; implies `verify_outgoing`.
    pub verify_server_hostname: bool,
    /// Lowest TLS version offered and accepted (Consul default `TLSv1_2`).
    pub tls_min_version: TlsVersion,
    /// Go/Consul cipher suite names for TLS 1.2 (empty: the library defaults).
    pub tls_cipher_suites: Vec<String>,
    /// This agent's datacenter (Consul `datacenter`, default `dc1`).
    pub datacenter: String,
    /// Consul's DNS domain (default `consul`); a trailing dot is ignored.
    pub domain: String,
}

impl Default for TlsPolicy {
    fn default() -> Self {
        Self {
            ca_file: None,
            ca_path: None,
            cert_file: None,
            key_file: None,
            verify_incoming: false,
            verify_outgoing: false,
            verify_server_hostname: false,
            tls_min_version: TlsVersion::default(),
            tls_cipher_suites: Vec::new(),
            datacenter: DEFAULT_DATACENTER.to_owned(),
            domain: DEFAULT_DOMAIN.to_owned(),
        }
    }
}

impl TlsPolicy {
    /// Whether outgoing RPC uses TLS: `verify_outgoing OR verify_server_hostname`.
    ///
    /// Consul 0.5.1–1.4.0 left RPC in plaintext when only
    /// `verify_server_hostname` was set (CVE-2018-19653); this is the fixed rule.
    pub fn verify_outgoing_effective(&self) -> bool {
        self.verify_outgoing || self.verify_server_hostname
    }

    /// True when outgoing verification is on only because of `verify_server_hostname`.
    pub fn verify_outgoing_implied(&self) -> bool {
        self.verify_server_hostname && !self.verify_outgoing
    }

    /// The domain without a trailing dot, as used in server names.
    pub fn domain_trimmed(&self) -> &str {
        let d = self.domain.trim_end_matches('.');
        if d.is_empty() { DEFAULT_DOMAIN } else { d }
    }

    /// The name a server of datacenter `target_dc` must hold:
    /// `server.<target_dc>.<domain>` (the datacenter being dialled, not the local one).
    pub fn server_name_for(&self, target_dc: &str) -> String {
        server_name(target_dc, self.domain_trimmed())
    }

    /// The TLS 1.2 cipher suites selected by `tls_cipher_suites`, checked
    /// against `tls_min_version`. An empty list means "all suites rustls offers".
    pub fn cipher_suites(&self) -> Result<Vec<SupportedCipherSuite>, Error> {
        let names: Vec<&str> =
            self.tls_cipher_suites.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        if self.tls_min_version == TlsVersion::Tls13 {
            return Err(Error::CipherSuitesWithTls13);
        }
        let mut unknown = Vec::new();
        let mut unsupported = Vec::new();
        let mut out: Vec<SupportedCipherSuite> = Vec::new();
        for name in names {
            match ConsulCipherSuite::from_str(name) {
                Ok(suite) => match suite.rustls_suite() {
                    Some(s) => {
                        if !out.iter().any(|o| o.suite() == s.suite()) {
                            out.push(s);
                        }
                    }
                    None => unsupported.push(name.to_owned()),
                },
                Err(_) => unknown.push(name.to_owned()),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::UnknownCipherSuite { names: unknown.join(",") });
        }
        if !unsupported.is_empty() {
            return Err(Error::UnsupportedCipherSuite { names: unsupported.join(",") });
        }
        Ok(out)
    }

    /// Checks everything that needs no file: versions and cipher suites.
    pub fn validate(&self) -> Result<(), Error> {
        self.cipher_suites().map(|_| ())
    }
}

/// `server.<datacenter>.<domain>`, the identity Consul servers are dialled by.
///
/// The datacenter is lower-cased as Consul does; a trailing dot on the domain is dropped.
pub fn server_name(datacenter: &str, domain: &str) -> String {
    let domain = domain.trim_end_matches('.');
    let domain = if domain.is_empty() { DEFAULT_DOMAIN } else { domain };
    format!("server.{}.{}", datacenter.to_ascii_lowercase(), domain)
}

/// A minimum TLS version as Consul spells it.
///
/// Parsing accepts the modern (`TLSv1_2`, `TLSv1_3`, `TLS_AUTO`) and the
/// legacy (`tls12`, `tls13`) spellings; `TLS_AUTO` and the empty string mean
/// TLS 1.2 as in Consul 1.12+. TLS 1.0 and 1.1 are refused with
/// [`Error::UnsupportedTlsVersion`] because rustls does not implement them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 (`TLSv1_2`, the default).
    #[default]
    Tls12,
    /// TLS 1.3 (`TLSv1_3`).
    Tls13,
}

impl TlsVersion {
    /// Consul's modern spelling (`TLSv1_2`/`TLSv1_3`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls12 => "TLSv1_2",
            Self::Tls13 => "TLSv1_3",
        }
    }

    /// The rustls protocol versions allowed with this minimum.
    pub fn protocol_versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static BOTH: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static ONLY13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            Self::Tls12 => &BOTH,
            Self::Tls13 => &ONLY13,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsVersion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "TLS_AUTO" | "TLSv1_2" | "tls12" => Ok(Self::Tls12),
            "TLSv1_3" | "tls13" => Ok(Self::Tls13),
            "TLSv1_0" | "TLSv1_1" | "tls10" | "tls11" => {
                Err(Error::UnsupportedTlsVersion { value: s.to_owned() })
            }
            _ => Err(Error::UnknownTlsVersion { value: s.to_owned() }),
        }
    }
}

/// The cipher suite names Consul accepts for the agent (TLS 1.2 suites only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConsulCipherSuite {
    /// `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`
    EcdheEcdsaChacha20Poly1305Sha256,
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`
    EcdheEcdsaAes128GcmSha256,
    /// `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`
    EcdheEcdsaAes256GcmSha384,
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA` (not implemented by rustls)
    EcdheEcdsaAes128CbcSha,
    /// `TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA` (not implemented by rustls)
    EcdheEcdsaAes256CbcSha,
    /// `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`
    EcdheRsaChacha20Poly1305Sha256,
    /// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`
    EcdheRsaAes128GcmSha256,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`
    EcdheRsaAes256GcmSha384,
    /// `TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA` (not implemented by rustls)
    EcdheRsaAes128CbcSha,
    /// `TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA` (not implemented by rustls)
    EcdheRsaAes256CbcSha,
}

impl ConsulCipherSuite {
    /// Every name Consul accepts, in Consul's order.
    pub const ALL: [Self; 10] = [
        Self::EcdheEcdsaChacha20Poly1305Sha256,
        Self::EcdheEcdsaAes128GcmSha256,
        Self::EcdheEcdsaAes256GcmSha384,
        Self::EcdheEcdsaAes128CbcSha,
        Self::EcdheEcdsaAes256CbcSha,
        Self::EcdheRsaChacha20Poly1305Sha256,
        Self::EcdheRsaAes128GcmSha256,
        Self::EcdheRsaAes256GcmSha384,
        Self::EcdheRsaAes128CbcSha,
        Self::EcdheRsaAes256CbcSha,
    ];

    /// The Go/IANA name, as written in Consul's configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdheEcdsaChacha20Poly1305Sha256 => {
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            }
            Self::EcdheEcdsaAes128GcmSha256 => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            Self::EcdheEcdsaAes256GcmSha384 => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            Self::EcdheEcdsaAes128CbcSha => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
            Self::EcdheEcdsaAes256CbcSha => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
            Self::EcdheRsaChacha20Poly1305Sha256 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            Self::EcdheRsaAes128GcmSha256 => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            Self::EcdheRsaAes256GcmSha384 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            Self::EcdheRsaAes128CbcSha => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
            Self::EcdheRsaAes256CbcSha => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        }
    }

    /// The rustls (ring) suite, or `None` for the CBC suites rustls does not implement.
    pub fn rustls_suite(self) -> Option<SupportedCipherSuite> {
        match self {
            Self::EcdheEcdsaChacha20Poly1305Sha256 => {
                Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
            }
            Self::EcdheEcdsaAes128GcmSha256 => {
                Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
            }
            Self::EcdheEcdsaAes256GcmSha384 => {
                Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
            }
            Self::EcdheRsaChacha20Poly1305Sha256 => {
                Some(cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
            }
            Self::EcdheRsaAes128GcmSha256 => {
                Some(cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
            }
            Self::EcdheRsaAes256GcmSha384 => {
                Some(cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)
            }
            Self::EcdheEcdsaAes128CbcSha
            | Self::EcdheEcdsaAes256CbcSha
            | Self::EcdheRsaAes128CbcSha
            | Self::EcdheRsaAes256CbcSha => None,
        }
    }
}

impl fmt::Display for ConsulCipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConsulCipherSuite {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| Error::UnknownCipherSuite { names: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_version_spellings() {
        for (s, v) in [
            ("TLSv1_2", TlsVersion::Tls12),
            ("tls12", TlsVersion::Tls12),
            ("TLS_AUTO", TlsVersion::Tls12),
            ("", TlsVersion::Tls12),
            ("TLSv1_3", TlsVersion::Tls13),
            ("tls13", TlsVersion::Tls13),
        ] {
            assert_eq!(s.parse::<TlsVersion>().ok(), Some(v), "{s}");
        }
        for old in ["tls10", "tls11", "TLSv1_0", "TLSv1_1"] {
            let err = old.parse::<TlsVersion>().unwrap_err();
            assert!(matches!(err, Error::UnsupportedTlsVersion { .. }), "{old}");
            let msg = err.to_string();
            assert!(msg.contains(old) && msg.contains("rustls"), "{msg}");
        }
        let err = "TLSv9".parse::<TlsVersion>().unwrap_err();
        assert!(matches!(err, Error::UnknownTlsVersion { .. }));
        assert!(err.to_string().contains("TLSv9"));
        assert_eq!(TlsVersion::default().to_string(), "TLSv1_2");
    }

    #[test]
    fn cipher_names_round_trip() {
        for c in ConsulCipherSuite::ALL {
            assert_eq!(c.name().parse::<ConsulCipherSuite>().ok(), Some(c));
        }
    }

    #[test]
    fn server_name_uses_target_dc_and_strips_dot() {
        assert_eq!(server_name("DC2", "consul."), "server.dc2.consul");
        let p = TlsPolicy { domain: "example.".into(), ..TlsPolicy::default() };
        assert_eq!(p.server_name_for("dc3"), "server.dc3.example");
        assert_eq!(TlsPolicy::default().server_name_for("dc1"), "server.dc1.consul");
    }
}
