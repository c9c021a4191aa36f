//! `cargo xtask gen-certs`: the test PKI (a CA and one certificate and key
//! per node), made with the same `consul-sec-pki` functions as
//! `consul-sec tls ca create` and `tls cert create`.
//!
//! Idempotent: a complete set is left alone; missing node certificates are
//! issued by the existing CA; `--force` deletes the CA and every server and
//! client certificate of the domain (all dcs: they were signed by that CA)
//! and starts again.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use consul_sec_pki::files::{load_ca, write_pair};
use consul_sec_pki::names::{
    ca_cert_file, ca_key_file, cert_files, cert_prefix, validate_dns_name,
};
use consul_sec_pki::{Ca, CaRequest, CertKind, CertRequest, create_ca, issue_cert};

/// The most server (and client) certificates one run writes: a test PKI
/// needs a handful, and a typo such as `--servers 99999999` should not fill
/// a disk.
pub const MAX_NODES: u32 = 100;

/// Arguments of `gen-certs`.
#[derive(Debug, Args)]
pub struct GenCerts {
    /// Datacenter in the certificate names
    #[arg(long, default_value = "dc1")]
    dc: String,
    /// Consul domain in the certificate names
    #[arg(long, default_value = "consul")]
    domain: String,
    /// Number of server certificates (<dc>-server-<domain>-<n>.pem), at most 100
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(..=MAX_NODES as i64))]
    servers: u32,
    /// Number of client certificates (<dc>-client-<domain>-<n>.pem), at most 100
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(..=MAX_NODES as i64))]
    clients: u32,
    /// Output directory [default: <workspace>/target/test-pki]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Delete the CA and the domain's node certificates (every dc) and make new ones
    #[arg(long)]
    force: bool,
}

impl GenCerts {
    fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            // xtask/ sits in the workspace root.
            let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            xtask_dir.parent().unwrap_or(xtask_dir).join("target").join("test-pki")
        })
    }

    /// Every certificate/key pair of the set: the CA first, then servers,
    /// then clients.
    fn pairs(&self, dir: &Path) -> Vec<Pair> {
        let mut pairs = vec![Pair {
            kind: None,
            cert: dir.join(ca_cert_file(&self.domain)),
            key: dir.join(ca_key_file(&self.domain)),
        }];
        for (kind, count) in [(CertKind::Server, self.servers), (CertKind::Client, self.clients)] {
            let prefix = cert_prefix(kind, &self.dc, &self.domain);
            for n in 0..count {
                let (cert, key) = cert_files(&prefix, n);
                pairs.push(Pair { kind: Some(kind), cert: dir.join(cert), key: dir.join(key) });
            }
        }
        pairs
    }
}

/// One certificate and its key; `kind` is `None` for the CA.
struct Pair {
    kind: Option<CertKind>,
    cert: PathBuf,
    key: PathBuf,
}

impl Pair {
    fn state(&self) -> (bool, bool) {
        (self.cert.exists(), self.key.exists())
    }
}

/// Writes the test PKI that `args` describes and reports what it did to `out`.
pub fn run(args: &GenCerts, out: &mut dyn Write) -> anyhow::Result<()> {
    // Checked before anything is written or removed.
    validate_dns_name(&args.dc, "datacenter")?;
    validate_dns_name(&args.domain, "domain")?;
    if args.servers > MAX_NODES || args.clients > MAX_NODES {
        bail!("at most {MAX_NODES} server and {MAX_NODES} client certificates per run");
    }
    let dir = args.out_dir();
    if args.force {
        remove_set(args, &dir, out)?;
    }
    let pairs = args.pairs(&dir);
    if pairs.iter().all(|p| p.state() == (true, true)) {
        // "Up to date" only if the CA still loads (and its key matches) and
        // every node certificate parses and names it as issuer.
        load_ca(&pairs[0].cert, &pairs[0].key)
            .context("the test PKI's CA cannot be used; run with --force to regenerate")?;
        let (ca_subject, _) = names_of(&pairs[0].cert)?;
        for pair in &pairs[1..] {
            let (_, issuer) = names_of(&pair.cert).with_context(|| {
                format!("{}: run with --force to regenerate", pair.cert.display())
            })?;
            if issuer != ca_subject {
                bail!(
                    "{} was not issued by {}; run with --force to regenerate",
                    pair.cert.display(),
                    pairs[0].cert.display()
                );
            }
        }
        writeln!(
            out,
            "test PKI in {} is up to date ({} files); use --force to regenerate",
            dir.display(),
            pairs.len() * 2
        )?;
        return Ok(());
    }
    for pair in &pairs {
        if let (true, false) | (false, true) = pair.state() {
            bail!(
                "{} and {} must both exist or both be missing; run with --force to regenerate",
                pair.cert.display(),
                pair.key.display()
            );
        }
    }

    let (ca_pair, nodes) = pairs.split_first().context("the set always has a CA")?;
    let ca = if ca_pair.state() == (true, true) {
        load_ca(&ca_pair.cert, &ca_pair.key)?
    } else {
        // Any server or client certificate of this domain, whatever its dc,
        // was signed by the CA that is gone and would not chain to a new one.
        if let Some(stale) = node_files(dir.as_path(), &args.domain)?.first() {
            bail!("{} exists but its CA does not; run with --force to regenerate", stale.display());
        }
        let request = CaRequest { domain: args.domain.clone(), ..CaRequest::default() };
        let issued = create_ca(&request)?;
        write_pair(&issued, &ca_pair.cert, &ca_pair.key)?;
        wrote(out, ca_pair)?;
        Ca::from_pem(&issued.cert_pem, issued.key_pem.as_str())?
    };
    for pair in nodes.iter().filter(|p| p.state() == (false, false)) {
        let Some(kind) = pair.kind else { continue };
        let request = CertRequest {
            dc: args.dc.clone(),
            domain: args.domain.clone(),
            ..CertRequest::new(kind)
        };
        let issued = issue_cert(&ca, &request)?;
        write_pair(&issued, &pair.cert, &pair.key)?;
        wrote(out, pair)?;
    }
    Ok(())
}

/// The raw subject and issuer names of the PEM certificate at `path`. A
/// CA's name carries its random serial, so equal names mean the same CA
/// (signatures are not checked: this is a test PKI's freshness check).
fn names_of(path: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let text = fs::read(path).with_context(|| format!("{}: reading", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", path.display()))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("{}: not a certificate: {e}", path.display()))?;
    Ok((cert.subject().as_raw().to_vec(), cert.issuer().as_raw().to_vec()))
}

fn wrote(out: &mut dyn Write, pair: &Pair) -> io::Result<()> {
    writeln!(out, "wrote {}", pair.cert.display())?;
    writeln!(out, "wrote {}", pair.key.display())
}

/// Deletes the CA files and every server and client certificate and key of
/// the domain in `dir`: those of every dc (they were all signed by this CA)
/// and indices beyond the current counts.
fn remove_set(args: &GenCerts, dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut paths: Vec<PathBuf> = [ca_cert_file(&args.domain), ca_key_file(&args.domain)]
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| fs::symlink_metadata(path).is_ok())
        .collect();
    paths.extend(node_files(dir, &args.domain)?);
    for path in paths {
        fs::remove_file(&path).with_context(|| format!("{}: removing", path.display()))?;
        writeln!(out, "removed {}", path.display())?;
    }
    Ok(())
}

/// The `<dc>-<server|client>-<domain>-<n>.pem` and `...-<n>-key.pem` files
/// in `dir` for any dc, sorted; none if `dir` does not exist.
fn node_files(dir: &Path, domain: &str) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: listing", dir.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: listing", dir.display()))?;
        if is_node_file(&entry.file_name().to_string_lossy(), domain) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

fn is_node_file(name: &str, domain: &str) -> bool {
    let Some(stem) = name.strip_suffix(".pem") else { return false };
    let stem = stem.strip_suffix("-key").unwrap_or(stem);
    let Some((rest, index)) = stem.rsplit_once('-') else { return false };
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    [CertKind::Server, CertKind::Client].iter().any(|kind| {
        rest.strip_suffix(&format!("-{}-{domain}", kind.as_str())).is_some_and(|dc| !dc.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path, servers: u32, clients: u32, force: bool) -> GenCerts {
        GenCerts {
            dc: "dc1".to_owned(),
            domain: "consul".to_owned(),
            servers,
            clients,
            out: Some(dir.to_owned()),
            force,
        }
    }

    fn run_to_string(args: &GenCerts) -> anyhow::Result<String> {
        let mut out = Vec::new();
        run(args, &mut out)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        names
    }

    /// (subject CN, issuer CN, DNS SANs, has serverAuth, has clientAuth)
    fn inspect(path: &Path) -> (String, String, Vec<String>, bool, bool) {
        use x509_parser::extensions::{GeneralName, ParsedExtension};
        let text = fs::read_to_string(path).expect("read cert");
        let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).expect("pem");
        let cert = pem.parse_x509().expect("x509");
        let cn = |n: &x509_parser::x509::X509Name<'_>| {
            n.iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or("").to_owned()
        };
        let (mut dns, mut server_auth, mut client_auth) = (Vec::new(), false, false);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        if let GeneralName::DNSName(d) = name {
                            dns.push((*d).to_owned());
                        }
                    }
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    server_auth = eku.server_auth;
                    client_auth = eku.client_auth;
                }
                _ => {}
            }
        }
        (cn(cert.subject()), cn(cert.issuer()), dns, server_auth, client_auth)
    }

    #[test]
    fn gen_certs_writes_a_set_is_idempotent_and_force_regenerates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");

        let out = run_to_string(&args(&dir, 2, 1, false)).expect("first run");
        let expected = [
            "consul-agent-ca-key.pem",
            "consul-agent-ca.pem",
            "dc1-client-consul-0-key.pem",
            "dc1-client-consul-0.pem",
            "dc1-server-consul-0-key.pem",
            "dc1-server-consul-0.pem",
            "dc1-server-consul-1-key.pem",
            "dc1-server-consul-1.pem",
        ];
        assert_eq!(listing(&dir), expected);
        assert_eq!(out.lines().count(), 8, "{out}");
        assert!(out.starts_with(&format!("wrote {}\n", dir.join("consul-agent-ca.pem").display())));

        // The CA and its key belong together; nodes are signed by it with Consul's profiles.
        let ca_pem = fs::read_to_string(dir.join("consul-agent-ca.pem")).expect("ca");
        let ca_key = fs::read_to_string(dir.join("consul-agent-ca-key.pem")).expect("key");
        Ca::from_pem(&ca_pem, &ca_key).expect("CA loads");
        let (ca_cn, _, _, _, _) = inspect(&dir.join("consul-agent-ca.pem"));
        let (cn, issuer, dns, server_auth, client_auth) =
            inspect(&dir.join("dc1-server-consul-1.pem"));
        assert_eq!((cn.as_str(), issuer.as_str()), ("server.dc1.consul", ca_cn.as_str()));
        assert_eq!(dns, ["server.dc1.consul", "localhost"]);
        assert!(server_auth && client_auth);
        let (cn, _, _, _, _) = inspect(&dir.join("dc1-client-consul-0.pem"));
        assert_eq!(cn, "client.dc1.consul");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.join("dc1-client-consul-0-key.pem"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Second run: nothing changes.
        let before = fs::read(dir.join("dc1-server-consul-0.pem")).expect("read");
        let out = run_to_string(&args(&dir, 2, 1, false)).expect("second run");
        assert!(out.contains("is up to date (8 files)"), "{out}");
        assert_eq!(fs::read(dir.join("dc1-server-consul-0.pem")).expect("read"), before);

        // More servers: only the new one is issued, by the existing CA.
        let out = run_to_string(&args(&dir, 3, 1, false)).expect("grow");
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("dc1-server-consul-2.pem"), "{out}");
        assert_eq!(inspect(&dir.join("dc1-server-consul-2.pem")).1, ca_cn);

        // A half-present pair is refused rather than guessed at.
        fs::remove_file(dir.join("dc1-client-consul-0-key.pem")).expect("rm");
        let err = run_to_string(&args(&dir, 3, 1, false)).expect_err("incomplete");
        assert!(err.to_string().contains("--force"), "{err}");

        // --force starts over with a new CA.
        let out = run_to_string(&args(&dir, 2, 1, true)).expect("force");
        assert!(out.contains("removed "), "{out}");
        assert_eq!(listing(&dir), expected, "the extra server-2 from before is gone");
        assert_ne!(fs::read(dir.join("dc1-server-consul-0.pem")).expect("read"), before);
        assert_ne!(inspect(&dir.join("consul-agent-ca.pem")).0, ca_cn);
    }

    #[test]
    fn force_for_one_dc_also_removes_the_other_dcs_certificates_of_the_old_ca() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dc =
            |dc: &str, force: bool| GenCerts { dc: dc.to_owned(), ..args(tmp.path(), 1, 1, force) };
        run_to_string(&dc("dc1", false)).expect("dc1");
        run_to_string(&dc("dc2", false)).expect("dc2 shares the CA");
        // A certificate of another domain and a CLI certificate are not ours.
        fs::write(tmp.path().join("dc1-server-other-0.pem"), "x").expect("write");
        fs::write(tmp.path().join("dc1-cli-consul-0.pem"), "x").expect("write");

        let out = run_to_string(&dc("dc2", true)).expect("force dc2");
        assert!(out.contains("removed ") && out.contains("dc1-server-consul-0.pem"), "{out}");
        let mut expected = vec![
            "consul-agent-ca-key.pem",
            "consul-agent-ca.pem",
            "dc1-cli-consul-0.pem",
            "dc1-server-other-0.pem",
            "dc2-client-consul-0-key.pem",
            "dc2-client-consul-0.pem",
            "dc2-server-consul-0-key.pem",
            "dc2-server-consul-0.pem",
        ];
        assert_eq!(listing(tmp.path()), expected, "dc1's certificates of the old CA are gone");

        // dc1 is issued afresh by the new CA instead of being "up to date".
        let ca_cn = inspect(&tmp.path().join("consul-agent-ca.pem")).0;
        let out = run_to_string(&dc("dc1", false)).expect("dc1 again");
        assert!(!out.contains("up to date"), "{out}");
        assert_eq!(inspect(&tmp.path().join("dc1-server-consul-0.pem")).1, ca_cn);
        expected.extend([
            "dc1-client-consul-0-key.pem",
            "dc1-client-consul-0.pem",
            "dc1-server-consul-0-key.pem",
            "dc1-server-consul-0.pem",
        ]);
        expected.sort_unstable();
        assert_eq!(listing(tmp.path()), expected);
    }

    #[test]
    fn another_dcs_certificates_without_their_ca_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        run_to_string(&args(tmp.path(), 1, 0, false)).expect("dc1");
        fs::remove_file(tmp.path().join("consul-agent-ca.pem")).expect("rm");
        fs::remove_file(tmp.path().join("consul-agent-ca-key.pem")).expect("rm");
        let dc2 = GenCerts { dc: "dc2".to_owned(), ..args(tmp.path(), 1, 0, false) };
        let err = run_to_string(&dc2).expect_err("stale dc1");
        assert!(err.to_string().contains("dc1-server-consul-0"), "{err}");
        assert!(err.to_string().contains("exists but its CA does not"), "{err}");
    }

    #[test]
    fn node_file_names() {
        assert!(is_node_file("dc1-server-consul-0.pem", "consul"));
        assert!(is_node_file("my-dc-client-consul-12-key.pem", "consul"));
        assert!(is_node_file("dc1-server-my-domain-3.pem", "my-domain"));
        assert!(!is_node_file("dc1-cli-consul-0.pem", "consul"));
        assert!(!is_node_file("dc1-server-consul-0.pem", "other"));
        assert!(!is_node_file("-server-consul-0.pem", "consul"));
        assert!(!is_node_file("dc1-server-consul-x.pem", "consul"));
        assert!(!is_node_file("dc1-server-consul-0.txt", "consul"));
        assert!(!is_node_file("consul-agent-ca.pem", "consul"));
    }

    #[test]
    fn node_certificates_without_their_ca_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        run_to_string(&args(tmp.path(), 1, 0, false)).expect("first");
        fs::remove_file(tmp.path().join("consul-agent-ca.pem")).expect("rm");
        fs::remove_file(tmp.path().join("consul-agent-ca-key.pem")).expect("rm");
        let err = run_to_string(&args(tmp.path(), 1, 0, false)).expect_err("stale");
        assert!(err.to_string().contains("exists but its CA does not"), "{err}");
    }

    /// Bad names and counts are refused before anything is written, and a
    /// complete set with a broken CA is not "up to date".
    #[test]
    fn bad_input_is_refused_before_writing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");
        let bad_dc = GenCerts { dc: "bad dc".to_owned(), ..args(&dir, 1, 1, false) };
        let err = run_to_string(&bad_dc).unwrap_err().to_string();
        assert_eq!(err, "\"bad dc\": not a valid DNS name (used as datacenter)");
        let bad_domain = GenCerts { domain: "-x".to_owned(), ..args(&dir, 1, 1, false) };
        assert!(run_to_string(&bad_domain).is_err());
        let err = run_to_string(&args(&dir, MAX_NODES + 1, 0, false)).unwrap_err().to_string();
        assert_eq!(err, "at most 100 server and 100 client certificates per run");
        assert!(!dir.exists(), "nothing may be written");

        // The command line refuses large counts too.
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            gen_certs: GenCerts,
        }
        assert!(Cli::try_parse_from(["x", "--servers", "100"]).is_ok());
        let err = Cli::try_parse_from(["x", "--servers", "99999999"]).err().expect("refused");
        assert!(err.to_string().contains("99999999"), "{err}");

        run_to_string(&args(&dir, 1, 0, false)).expect("a good set");
        // A broken node certificate, then one from another CA.
        let server = dir.join("dc1-server-consul-0.pem");
        let good = fs::read(&server).expect("read");
        fs::write(&server, "junk").expect("write");
        let err = format!("{:#}", run_to_string(&args(&dir, 1, 0, false)).unwrap_err());
        assert!(err.contains("dc1-server-consul-0.pem: run with --force"), "{err}");
        let other = tmp.path().join("other");
        run_to_string(&args(&other, 1, 0, false)).expect("another set");
        fs::copy(other.join("dc1-server-consul-0.pem"), &server).expect("copy");
        let err = run_to_string(&args(&dir, 1, 0, false)).unwrap_err().to_string();
        assert!(err.contains("dc1-server-consul-0.pem was not issued by"), "{err}");
        fs::write(&server, good).expect("restore");
        run_to_string(&args(&dir, 1, 0, false)).expect("up to date again");

        fs::write(dir.join("consul-agent-ca.pem"), "garbage").expect("write");
        let err = format!("{:#}", run_to_string(&args(&dir, 1, 0, false)).unwrap_err());
        assert!(err.starts_with("the test PKI's CA cannot be used; run with --force"), "{err}");
    }
}
