//! [`TlsPolicy::load`]: files read, rules checked, rustls configurations built.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, ServerName};

use crate::verify::{DangerousChainOnlyVerifier, DangerousNoServerVerification};
use crate::{Error, TlsPolicy, crypto_provider, files};

/// Something legal but worth telling the operator about, found while loading.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// `verify_server_hostname` is set without `verify_outgoing`; outgoing
    /// verification is on anyway (the CVE-2018-19653 fix).
    VerifyOutgoingImplied,
    /// Outgoing TLS verifies the chain but not `server.<dc>.<domain>`, so any
    /// certificate from the CA (a client's too) is accepted as a server.
    NoServerHostnameCheck,
    /// A CA is configured but outgoing verification is off, so outgoing RPC
    /// stays plaintext (files alone do not turn TLS on, Consul >= 1.7.3).
    CaWithoutVerifyOutgoing,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::VerifyOutgoingImplied => {
                "verify_outgoing: turned on because verify_server_hostname is set"
            }
            Self::NoServerHostnameCheck => {
                "verify_server_hostname: off, so any certificate signed by the CA (including a client certificate) is accepted as a server"
            }
            Self::CaWithoutVerifyOutgoing => {
                "verify_outgoing: off although a CA is configured, so outgoing RPC is plaintext"
            }
        })
    }
}

/// A [`TlsPolicy`] whose files were read and checked, with the rustls
/// configurations built once.
///
/// Cheap to share (`Arc` inside); the configurations it hands out are
/// `Arc` clones.
#[derive(Clone)]
pub struct LoadedPolicy {
    policy: TlsPolicy,
    provider: Arc<CryptoProvider>,
    ca_certs: Vec<CertificateDer<'static>>,
    certified_key: Option<Arc<CertifiedKey>>,
    server_config: Option<Arc<ServerConfig>>,
    insecure_server_config: Option<Arc<ServerConfig>>,
    client_config: Arc<ClientConfig>,
    warnings: Vec<Warning>,
}

impl fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signing key's Debug is opaque in rustls, but keep it out anyway.
        f.debug_struct("LoadedPolicy")
            .field("policy", &self.policy)
            .field("ca_certs", &self.ca_certs.len())
            .field("has_certificate", &self.certified_key.is_some())
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl TlsPolicy {
    /// Reads the files, applies Consul's rules and builds the rustls
    /// configurations.
    ///
    /// Checks, in order: TLS version and cipher suites; `cert_file` and
    /// `key_file` must both be set or both unset (stricter than Consul); the
    /// key must match the certificate; CAs from `ca_file` (wins) or `ca_path`;
    /// `verify_incoming` needs a CA and a certificate; effective
    /// `verify_outgoing` needs a CA.
    pub fn load(&self) -> Result<LoadedPolicy, Error> {
        let suites = self.cipher_suites()?;
        let provider = provider_with_suites(&suites);

        let certified_key = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(files::load_certified_key(cert, key)?),
            (Some(cert), None) => return Err(Error::CertWithoutKey { cert_file: cert.clone() }),
            (None, Some(key)) => return Err(Error::KeyWithoutCert { key_file: key.clone() }),
            (None, None) => None,
        };

        let ca_certs = match (&self.ca_file, &self.ca_path) {
            (Some(file), _) => files::load_ca_file(file)?,
            (None, Some(dir)) => files::load_ca_path(dir)?,
            (None, None) => Vec::new(),
        };
        let roots = Arc::new(root_store(self, &ca_certs)?);

        if self.verify_incoming {
            if ca_certs.is_empty() {
                return Err(Error::VerifyIncomingWithoutCa);
            }
            if certified_key.is_none() {
                return Err(Error::VerifyIncomingWithoutCert);
            }
        }
        let outgoing = self.verify_outgoing_effective();
        if outgoing && ca_certs.is_empty() {
            return Err(Error::VerifyOutgoingWithoutCa { implied: self.verify_outgoing_implied() });
        }

        let mut warnings = Vec::new();
        if self.verify_outgoing_implied() {
            warnings.push(Warning::VerifyOutgoingImplied);
        }
        if outgoing && !self.verify_server_hostname {
            warnings.push(Warning::NoServerHostnameCheck);
        }
        if !outgoing && !ca_certs.is_empty() {
            warnings.push(Warning::CaWithoutVerifyOutgoing);
        }

        let (server_config, insecure_server_config) = match &certified_key {
            Some(key) => (
                Some(build_server_config(self, &provider, &roots, key, self.verify_incoming)?),
                Some(build_server_config(self, &provider, &roots, key, false)?),
            ),
            None => (None, None),
        };
        let client_config = build_client_config(self, &provider, &roots, certified_key.as_ref())?;

        Ok(LoadedPolicy {
            policy: self.clone(),
            provider,
            ca_certs,
            certified_key,
            server_config,
            insecure_server_config,
            client_config,
            warnings,
        })
    }
}

impl LoadedPolicy {
    /// The settings this was loaded from.
    pub fn policy(&self) -> &TlsPolicy {
        &self.policy
    }

    /// Whether outgoing RPC uses verified TLS (`verify_outgoing OR verify_server_hostname`).
    pub fn verify_outgoing_effective(&self) -> bool {
        self.policy.verify_outgoing_effective()
    }

    /// True when outgoing verification is on only because `verify_server_hostname` is set.
    pub fn verify_outgoing_implied(&self) -> bool {
        self.policy.verify_outgoing_implied()
    }

    /// Things worth logging at start.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The CA certificates from `ca_file`/`ca_path`, in file order.
    pub fn ca_certificates(&self) -> &[CertificateDer<'static>] {
        &self.ca_certs
    }

    /// This agent's certificate chain (leaf first), when `cert_file` is set.
    pub fn certificate_chain(&self) -> Option<&[CertificateDer<'static>]> {
        self.certified_key.as_ref().map(|k| k.cert.as_slice())
    }

    /// The crypto provider the configurations were built with (ring, with
    /// the TLS 1.2 suites narrowed by `tls_cipher_suites`).
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The incoming (server side) configuration: client certificates are
    /// required and verified against the CA exactly when `verify_incoming`
    /// is set, and not asked for otherwise.
    ///
    /// Fails with [`Error::NoServerCertificate`] when no `cert_file` is
    /// configured (a TLS upgrade cannot be served).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        self.server_config.clone().ok_or(Error::NoServerCertificate)
    }

    /// The configuration for Consul's insecure TLS (`0x07`, auto-encrypt
    /// bootstrap): the server certificate without any client certificate
    /// request, whatever `verify_incoming` says. Only the bootstrap endpoints
    /// may be served on such a connection.
    pub fn insecure_server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        self.insecure_server_config.clone().ok_or(Error::NoServerCertificate)
    }

    /// The outgoing (client side) configuration. Presents `cert_file` when
    /// set. Server verification follows the policy: full chain and name with
    /// `verify_server_hostname`; chain only ([`DangerousChainOnlyVerifier`])
    /// with `verify_outgoing` alone; none ([`DangerousNoServerVerification`])
    /// otherwise. SNI is sent only when the name is verified.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config.clone()
    }

    /// Inspects this agent's own certificate (`cert_file`) for `options.role`;
    /// `None` when no certificate is configured. The key was already checked
    /// against the certificate at load, so no key problem is reported here.
    pub fn inspect_certificate(
        &self,
        options: &crate::InspectOptions,
    ) -> Option<Result<crate::CertificateReport, Error>> {
        let leaf = self.certified_key.as_ref()?.cert.first()?;
        Some(crate::inspect_certificate(leaf, None, options))
    }

    /// The name to dial a server of `target_dc` by: `server.<target_dc>.<domain>`.
    pub fn server_name_for(&self, target_dc: &str) -> Result<ServerName<'static>, Error> {
        let name = self.policy.server_name_for(target_dc);
        ServerName::try_from(name.clone()).map_err(|_| Error::InvalidServerName { name })
    }
}

fn provider_with_suites(suites: &[SupportedCipherSuite]) -> Arc<CryptoProvider> {
    let base = crypto_provider();
    if suites.is_empty() {
        return base;
    }
    // Go (and so Consul) applies the list to TLS 1.2 only; TLS 1.3 suites stay on.
    let mut provider = (*base).clone();
    provider.cipher_suites.retain(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
    provider.cipher_suites.extend_from_slice(suites);
    Arc::new(provider)
}

fn root_store(
    policy: &TlsPolicy,
    certs: &[CertificateDer<'static>],
) -> Result<RootCertStore, Error> {
    let (setting, path) = match (&policy.ca_file, &policy.ca_path) {
        (Some(f), _) => ("ca_file", f.clone()),
        (None, Some(p)) => ("ca_path", p.clone()),
        (None, None) => return Ok(RootCertStore::empty()),
    };
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots.add(cert.clone()).map_err(|source| Error::InvalidCa {
            setting,
            path: path.clone(),
            index: i + 1,
            source,
        })?;
    }
    Ok(roots)
}

fn build_server_config(
    policy: &TlsPolicy,
    provider: &Arc<CryptoProvider>,
    roots: &Arc<RootCertStore>,
    key: &Arc<CertifiedKey>,
    verify_incoming: bool,
) -> Result<Arc<ServerConfig>, Error> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(policy.tls_min_version.protocol_versions())
        .map_err(|source| Error::Config { what: "server configuration", source })?;
    let builder = if verify_incoming {
        // webpki requires the clientAuth EKU when the extension is present and
        // accepts a certificate without the extension, as Go does.
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|source| Error::Verifier {
                setting: "verify_incoming",
                role: "client",
                source,
            })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())))))
}

fn build_client_config(
    policy: &TlsPolicy,
    provider: &Arc<CryptoProvider>,
    roots: &Arc<RootCertStore>,
    key: Option<&Arc<CertifiedKey>>,
) -> Result<Arc<ClientConfig>, Error> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(policy.tls_min_version.protocol_versions())
        .map_err(|source| Error::Config { what: "client configuration", source })?;
    let builder = if policy.verify_outgoing_effective() {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|source| Error::Verifier {
                setting: "verify_outgoing",
                role: "server",
                source,
            })?;
        if policy.verify_server_hostname {
            builder.with_webpki_verifier(webpki)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(DangerousChainOnlyVerifier::new(webpki)))
        }
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(
            DangerousNoServerVerification::new(provider.clone()),
        ))
    };
    let mut config = match key {
        Some(key) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())))
        }
        None => builder.with_no_client_auth(),
    };
    // Consul sets ServerName (and so SNI) only when the name is verified.
    config.enable_sni = policy.verify_server_hostname;
    Ok(Arc::new(config))
}
