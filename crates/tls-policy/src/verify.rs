//! The two server-certificate verifiers that deviate from rustls' default,
//! both named as dangerous.
//!
//! * [`DangerousChainOnlyVerifier`]: `verify_outgoing` without
//!   `verify_server_hostname` — the chain is verified, the name is not.
//! * [`DangerousNoServerVerification`]: `verify_outgoing = false` — nothing
//!   is verified (Go's `InsecureSkipVerify`).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// DANGEROUS: verifies the server's chain against the CA but **ignores the
/// server name**, as Consul does with `verify_outgoing = true` and
/// `verify_server_hostname = false`.
///
/// It delegates everything to rustls' [`WebPkiServerVerifier`] and turns
/// exactly two errors into success:
/// `CertificateError::NotValidForName` and
/// `CertificateError::NotValidForNameContext { .. }`. Every other error
/// (unknown issuer, expiry, bad signature, missing serverAuth EKU, ...) and
/// every signature check are passed through unchanged. Because webpki checks
/// the name last, a name error means everything else already passed.
///
/// Any certificate issued by the CA — including a client certificate — is
/// therefore accepted as a server; this is the man-in-the-middle risk
/// Consul's documentation warns about and the reason to turn on
/// `verify_server_hostname`.
#[derive(Debug)]
pub struct DangerousChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl DangerousChainOnlyVerifier {
    /// Wraps a chain-and-name verifier, dropping only its name check.
    pub fn new(inner: Arc<WebPkiServerVerifier>) -> Self {
        Self { inner }
    }
}

impl ServerCertVerifier for DangerousChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// DANGEROUS: accepts any server certificate without checking chain, name
/// or validity (Go's `InsecureSkipVerify`), as Consul's outgoing TLS does
/// with `verify_outgoing = false`.
///
/// Only the handshake signatures are checked (so the peer must hold the key
/// of the certificate it shows, whatever that certificate is). Used only
/// when a caller runs TLS although outgoing verification is off.
#[derive(Debug)]
pub struct DangerousNoServerVerification {
    provider: Arc<CryptoProvider>,
}

impl DangerousNoServerVerification {
    /// Builds the verifier; `provider` supplies the signature algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self { provider }
    }
}

impl ServerCertVerifier for DangerousNoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
