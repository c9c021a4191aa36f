//! Consul's certificate files: default names in a directory, the next free
//! `<prefix>-<n>.pem`, and safe writing.
//!
//! Files are written atomically (a temporary file in the same directory,
//! flushed to disk, then linked into place) and never replace an existing
//! file. Private keys get mode 0600 whatever the process umask;
//! certificates get 0666 minus the umask, as Consul writes them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::names::{MAX_CERT_INDEX, ca_cert_file, ca_key_file, cert_files, cert_prefix};
use crate::{Ca, CaRequest, CertRequest, Error, Issued, Result, create_ca, issue_cert};

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A certificate: mode 0666 reduced by the umask.
    Public,
    /// A private key: mode 0600, set explicitly so the umask cannot widen
    /// or narrow it.
    Private,
}

/// The two files written for a certificate or a CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The certificate file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
}

/// Writes `contents` to a new file at `path`, creating missing parent
/// directories (mode 0755).
///
/// The data is written to a temporary file beside `path`, synced, and then
/// hard-linked to `path`, which fails rather than replace a file that
/// appeared in the meantime; so `path` either does not exist or holds all of
/// `contents`. An existing `path` is [`Error::FileExists`].
pub fn write_new(path: &Path, contents: &[u8], access: Access) -> Result<()> {
    let io_error = |action: &'static str| {
        move |source: io::Error| Error::Io { path: path.to_owned(), action, source }
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_error("naming the file")(io::Error::new(io::ErrorKind::InvalidInput, "no file name"))
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if fs::symlink_metadata(path).is_ok() {
        return Err(Error::FileExists { path: path.to_owned() });
    }
    create_dirs(&dir).map_err(io_error("creating the parent directory"))?;

    let tmp =
        dir.join(format!(".{}.{:016x}.tmp", file_name.to_string_lossy(), rand::random::<u64>()));
    let result = write_tmp(&tmp, contents, access)
        .map_err(io_error("writing a temporary file"))
        .and_then(|()| link_into_place(&tmp, path));
    // The temporary name is gone after a successful link as well.
    let _ = fs::remove_file(&tmp);
    result?;
    // Make the new directory entry durable too.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder.create(dir)
}

fn write_tmp(tmp: &Path, contents: &[u8], access: Access) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let mode = match access {
            Access::Public => 0o666,
            Access::Private => 0o600,
        };
        options.mode(mode);
        let mut file = options.open(tmp)?;
        if access == Access::Private {
            // The umask only applies at creation; set the mode exactly.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(contents)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = access;
        let mut file = options.open(tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    }
}

fn link_into_place(tmp: &Path, path: &Path) -> Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(Error::FileExists { path: path.to_owned() })
        }
        Err(_) if fs::symlink_metadata(path).is_err() => {
            // Some file systems have no hard links; a rename is still atomic,
            // with a small window in which another writer could be replaced.
            fs::rename(tmp, path).map_err(|source| Error::Io {
                path: path.to_owned(),
                action: "moving the new file into place",
                source,
            })
        }
        Err(_) => Err(Error::FileExists { path: path.to_owned() }),
    }
}

/// Writes a certificate (public) and its key (0600) to two new files. Both
/// must be free beforehand; if the key cannot be written the certificate
/// written just before is removed again.
pub fn write_pair(issued: &Issued, cert_path: &Path, key_path: &Path) -> Result<Saved> {
    for path in [cert_path, key_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(Error::FileExists { path: path.to_owned() });
        }
    }
    write_new(cert_path, issued.cert_pem.as_bytes(), Access::Public)?;
    if let Err(e) = write_new(key_path, issued.key_pem.as_str().as_bytes(), Access::Private) {
        let _ = fs::remove_file(cert_path);
        return Err(e);
    }
    Ok(Saved { cert: cert_path.to_owned(), key: key_path.to_owned() })
}

/// `consul tls ca create`: creates a CA and writes `<domain>-agent-ca.pem`
/// and `<domain>-agent-ca-key.pem` in `dir`. If either file exists nothing
/// is written.
pub fn create_ca_files(dir: &Path, request: &CaRequest) -> Result<Saved> {
    let cert_path = dir.join(ca_cert_file(&request.domain));
    let key_path = dir.join(ca_key_file(&request.domain));
    for path in [&cert_path, &key_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(Error::FileExists { path: path.clone() });
        }
    }
    let ca = create_ca(request)?;
    write_pair(&ca, &cert_path, &key_path)
}

/// Reads a CA certificate and its key (SEC1 or PKCS#8) from files and
/// checks that they belong together; see [`Ca::from_pem`].
pub fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Ca> {
    let cert = fs::read_to_string(cert_path).map_err(|source| Error::Io {
        path: cert_path.to_owned(),
        action: "reading the CA certificate",
        source,
    })?;
    let key = zeroize::Zeroizing::new(fs::read_to_string(key_path).map_err(|source| {
        Error::Io { path: key_path.to_owned(), action: "reading the CA key", source }
    })?);
    Ca::from_pem_named(
        &cert,
        &cert_path.display().to_string(),
        &key,
        &key_path.display().to_string(),
    )
}

/// The first `n` in `0..10000` for which neither `<prefix>-<n>.pem` nor
/// `<prefix>-<n>-key.pem` exists in `dir`, as Consul picks file names.
pub fn next_free_cert_files(dir: &Path, prefix: &str) -> Result<(PathBuf, PathBuf)> {
    (0..MAX_CERT_INDEX)
        .map(|n| {
            let (cert, key) = cert_files(prefix, n);
            (dir.join(cert), dir.join(key))
        })
        .find(|(cert, key)| {
            fs::symlink_metadata(cert).is_err() && fs::symlink_metadata(key).is_err()
        })
        .ok_or_else(|| Error::NoFreeFileName { prefix: prefix.to_owned() })
}

/// `consul tls cert create`: issues a certificate signed by `ca` and writes
/// it and its key to the next free `<dc>-<kind>-<domain>-<n>.pem` /
/// `-key.pem` in `dir`. Every check happens before the first file is
/// written.
pub fn create_cert_files(dir: &Path, ca: &Ca, request: &CertRequest) -> Result<Saved> {
    let issued = issue_cert(ca, request)?;
    let prefix = cert_prefix(request.kind, &request.dc, &request.domain);
    let (cert_path, key_path) = next_free_cert_files(dir, &prefix)?;
    write_pair(&issued, &cert_path, &key_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_refuses_to_replace_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/a.pem");
        write_new(&path, b"one", Access::Public).expect("first write");
        let err = write_new(&path, b"two", Access::Public).expect_err("second write");
        assert!(matches!(&err, Error::FileExists { path: p } if *p == path));
        assert_eq!(fs::read(&path).expect("read"), b"one");
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a.pem"]);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        write_new(&path, b"secret", Access::Private).expect("write");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
