//! Reading CA certificates, certificate chains and private keys from PEM files.
//!
//! PEM is decoded by `rustls-pki-types` ([`PemObject`]); CRLF line ends are
//! handled there. Every error names the setting and the file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::Error;

fn read_file(setting: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::Read { setting, path: path.to_owned(), source })
}

/// Every `CERTIFICATE` block in `bytes`, in file order.
fn parse_certs(
    setting: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Pem { setting, path: path.to_owned(), reason: pem_reason(&e) })?;
    if certs.is_empty() {
        return Err(Error::NoPem { setting, path: path.to_owned(), expected: "CERTIFICATE" });
    }
    Ok(certs)
}

/// Reads every certificate in a PEM file (a CA bundle, or a leaf followed by
/// its intermediates). `setting` names the option for error messages.
pub fn load_certs(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = read_file(setting, path)?;
    parse_certs(setting, path, &bytes)
}

/// Reads the CA certificates of `ca_file`. The file must hold at least one `CERTIFICATE` block.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    load_certs("ca_file", path)
}

/// Reads the CA certificates under `ca_path`, walking it recursively.
///
/// Like Consul (Go's `filepath.Walk`), every regular file is read whatever
/// its extension, and **every file must hold at least one PEM certificate**:
/// a stray non-PEM file (a README, a key) is an error naming that file
/// rather than being skipped silently, exactly as Consul refuses to start.
/// Symbolic links to files are read; symbolic links to directories are not
/// followed. Files are visited in name order. A `ca_path` naming a file
/// reads that file. A tree with no file at all is
/// [`Error::NoCaInPath`].
pub fn load_ca_path(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut files = Vec::new();
    let meta = fs::metadata(path).map_err(|source| Error::Read {
        setting: "ca_path",
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        walk("ca_path", path, &mut files)?;
    } else {
        // Go's Walk on a file visits just that file.
        files.push(path.to_owned());
    }
    let mut certs = Vec::new();
    for file in files {
        let bytes = read_file("ca_path", &file)?;
        certs.extend(parse_certs("ca_path", &file, &bytes)?);
    }
    if certs.is_empty() {
        return Err(Error::NoCaInPath { path: path.to_owned() });
    }
    Ok(certs)
}

fn walk(setting: &'static str, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Read { setting, path, source }
    };
    let mut entries = fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.is_dir() {
            walk(setting, &path, out)?;
        } else if meta.file_type().is_symlink() {
            // Go's Walk does not descend into a linked directory; a linked file is read.
            match fs::metadata(&path) {
                Ok(target) if target.is_dir() => {}
                Ok(_) => out.push(path),
                Err(source) => return Err(Error::Read { setting, path, source }),
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a private key in PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`,
/// what Consul writes) or PKCS#1 (`RSA PRIVATE KEY`) form.
///
/// Encrypted keys (`ENCRYPTED PRIVATE KEY`, or a legacy block with
/// `Proc-Type: 4,ENCRYPTED`) are refused with [`Error::EncryptedKey`]. The
/// file contents and the key are wiped from memory when dropped.
pub fn load_private_key(path: &Path) -> Result<Zeroizing<PrivateKeyDer<'static>>, Error> {
    let bytes = Zeroizing::new(read_file("key_file", path)?);
    if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(&bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(Error::EncryptedKey { path: path.to_owned() });
    }
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(Zeroizing::new(key)),
        Err(pem::Error::NoItemsFound) => Err(Error::NoPem {
            setting: "key_file",
            path: path.to_owned(),
            expected: "PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY",
        }),
        Err(e) => {
            Err(Error::Pem { setting: "key_file", path: path.to_owned(), reason: pem_reason(&e) })
        }
    }
}

/// A PEM reader error in words that never quote the file: its
/// `MissingSectionEnd`/`IllegalSectionStart` carry the raw line, which is
/// the key itself when a key file lost its line breaks.
fn pem_reason(err: &pem::Error) -> &'static str {
    match err {
        pem::Error::MissingSectionEnd { .. } => {
            "a BEGIN line has no matching END line (were the line breaks lost?)"
        }
        pem::Error::IllegalSectionStart { .. } => {
            "a malformed BEGIN line (were the line breaks lost?)"
        }
        pem::Error::Base64Decode(_) => "invalid base64 inside a PEM block",
        pem::Error::SectionTooLarge => "a PEM block larger than 256 MB",
        pem::Error::NoItemsFound => "no PEM block",
        _ => "the PEM reader refused it",
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Loads `cert_file` + `key_file` into a rustls [`CertifiedKey`], refusing a
/// key that does not belong to the first certificate.
pub fn load_certified_key(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, Error> {
    let chain = load_certs("cert_file", cert_file)?;
    let key = load_private_key(key_file)?;
    // `KeyProvider::load_private_key` takes the DER by value and drops it
    // unwiped; ring's loader (the same one our provider's key provider calls)
    // borrows it, so the only copy stays in the `Zeroizing` wrapper.
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|source| Error::InvalidKey { path: key_file.to_owned(), source })?;
    drop(key);
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(Error::KeyMismatch {
                cert_file: cert_file.to_owned(),
                key_file: key_file.to_owned(),
            })
        }
        // The provider could not report the public key; nothing to compare.
        Err(rustls::Error::InconsistentKeys(_)) => Ok(Arc::new(certified)),
        Err(other) => Err(Error::ParseCertificate {
            what: format!("cert_file {}", cert_file.display()),
            message: other.to_string(),
        }),
    }
}
