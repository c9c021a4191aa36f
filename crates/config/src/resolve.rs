//! From the merged figment to the settings types, with Consul's
//! validation rules and a record of where every shown value came from.
//! This is the one place Consul's file shape becomes domain types.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use consul_sec_gossip_crypto::SecretKey;
use consul_sec_tls_policy::{ConsulCipherSuite, TlsPolicy, TlsVersion};
use figment::Figment;
use figment::value::Value;
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::{Error, Origin, Warning};
use crate::schema::TLS_STANZAS;
use crate::settings::{
    AgentSettings, Config, GossipSettings, Limits, LogLevel, Ports, TlsSettings,
};
use crate::source::{Source, origin_of};

/// One resolved setting and where its value came from, for
/// `consul-sec validate -show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The group it belongs to (`Gossip encryption`, `Internal RPC TLS`, ...).
    pub section: &'static str,
    /// The setting's key within the group (e.g. `verify_outgoing`).
    pub key: String,
    /// The value as shown: secrets redacted, `(not set)` when unset.
    pub value: String,
    /// The source of the value.
    pub origin: Origin,
    /// How the value was reached (inherited from `tls.defaults`, written as a
    /// deprecated flat key, implied by another setting).
    pub note: Option<String>,
}

/// Accepted `tls_min_version` spellings inside the `tls` stanza (Consul 1.12+).
const TLS_VERSIONS: &str = "TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3";

pub(crate) struct Resolver<'a> {
    figment: &'a Figment,
    sources: &'a [Source],
    dev: bool,
    /// A file could not be read or parsed: a required key may be in it, so
    /// its absence is not reported on top of that error.
    pub(crate) sources_incomplete: bool,
    pub(crate) errors: Vec<Error>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) shown: Vec<Provenance>,
}

/// A value found in the merged configuration, with its origin and the key it was found under.
struct Found {
    value: Value,
    origin: Origin,
    key: String,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(figment: &'a Figment, sources: &'a [Source], dev: bool) -> Self {
        Resolver {
            figment,
            sources,
            dev,
            sources_incomplete: false,
            errors: Vec::new(),
            warnings: Vec::new(),
            shown: Vec::new(),
        }
    }

    fn find(&self, key: &str) -> Option<Found> {
        let value = self.figment.find_value(key).ok()?;
        let origin =
            self.figment.get_metadata(value.tag()).map(origin_of).unwrap_or(Origin::Default);
        Some(Found { value, origin, key: key.to_owned() })
    }

    fn string(&self, key: &str) -> Option<(String, Origin)> {
        let found = self.find(key)?;
        found.value.into_string().map(|s| (s, found.origin))
    }

    fn boolean(&self, key: &str) -> Option<(bool, Origin)> {
        let found = self.find(key)?;
        found.value.to_bool().map(|b| (b, found.origin))
    }

    fn integer(&self, key: &str) -> Option<(i128, Origin)> {
        let found = self.find(key)?;
        found.value.to_num().and_then(crate::schema::integer).map(|n| (n, found.origin))
    }

    fn list(&self, key: &str) -> Vec<(String, Origin)> {
        let Some(found) = self.find(key) else { return Vec::new() };
        let Some(items) = found.value.into_array() else { return Vec::new() };
        items
            .into_iter()
            .filter_map(|item| {
                let origin =
                    self.figment.get_metadata(item.tag()).map(origin_of).unwrap_or(Origin::Default);
                item.into_string().map(|s| (s, origin))
            })
            .collect()
    }

    fn invalid(&mut self, key: &str, origin: Option<Origin>, message: impl Into<String>) {
        self.errors.push(Error::Invalid {
            key: key.to_owned(),
            origin,
            position: None,
            message: message.into(),
        });
    }

    fn warn(&mut self, message: impl Into<String>, origin: Option<Origin>) {
        self.warnings.push(Warning::new(message, origin));
    }

    /// "written as deprecated 'x'" when the value at `key` came from a flat key of its source.
    fn moved_note(&self, key: &str, origin: &Origin) -> Option<String> {
        self.sources
            .iter()
            .filter(|s| &s.origin == origin)
            .flat_map(|s| s.moved.iter())
            .find(|m| m.new_path == key)
            .map(|m| format!("written as deprecated '{}'", m.old_key))
    }

    fn show(
        &mut self,
        section: &'static str,
        key: &str,
        value: String,
        origin: Origin,
        note: Option<String>,
    ) {
        self.shown.push(Provenance { section, key: key.to_owned(), value, origin, note });
    }

    pub(crate) fn resolve(&mut self) -> Config {
        let agent = self.agent();
        let gossip = self.gossip();
        let tls = self.tls(&agent.datacenter, &agent.domain);
        if let Some(port) = agent.ports.https
            && tls.https.cert_file.is_none()
        {
            self.warn(
                format!(
                    "ports.https is {port} but tls.https has no cert_file and key_file; the agent will refuse \
                     to start (an HTTPS listener needs a certificate)"
                ),
                None,
            );
        }
        Config { agent, gossip, tls }
    }

    fn agent(&mut self) -> AgentSettings {
        let (datacenter, dc_origin) =
            self.string("datacenter").unwrap_or_else(|| ("dc1".into(), Origin::Default));
        let datacenter = datacenter.to_lowercase();
        if datacenter.is_empty() {
            self.invalid("datacenter", Some(dc_origin), "datacenter cannot be empty");
        } else if !datacenter
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            self.invalid(
                "datacenter",
                Some(dc_origin),
                format!("datacenter can only contain lowercase alphanumeric, - or _ characters. received: {datacenter:?}"),
            );
        }
        let (domain, _) =
            self.string("domain").unwrap_or_else(|| ("consul".into(), Origin::Default));

        let node_name = match self.string("node_name") {
            Some((name, _)) if !name.trim().is_empty() => name,
            _ => match host_name() {
                Some(name) => name,
                None => {
                    self.invalid(
                        "node_name",
                        None,
                        "cannot determine the host name; set node_name or -node",
                    );
                    String::new()
                }
            },
        };

        // Consul's map rule: a later non-empty map replaces the earlier map
        // as a whole (figment would merge the keys).
        let mut node_meta = BTreeMap::new();
        for source in self.sources {
            if let Some(Value::Dict(_, map)) = source.dict.get("node_meta")
                && !map.is_empty()
            {
                node_meta = map
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect();
            }
        }

        let data_dir = self.data_dir();
        let (server, _) = self.boolean("server").unwrap_or((false, Origin::Default));
        let bootstrap_expect = match self.integer("bootstrap_expect") {
            Some((n, origin)) => {
                let n = u32::try_from(n).unwrap_or(0);
                if n > 0 && !server {
                    self.invalid(
                        "bootstrap_expect",
                        Some(origin.clone()),
                        "'bootstrap_expect > 0' requires 'server = true'",
                    );
                }
                if n > 0 && self.dev {
                    self.invalid(
                        "bootstrap_expect",
                        Some(origin),
                        "'bootstrap_expect > 0' not allowed in dev mode",
                    );
                }
                n
            }
            None => 0,
        };

        let bind_addr = self.address("bind_addr").unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let advertise_addr = self.address("advertise_addr");
        if advertise_addr.is_some_and(|addr| addr.is_unspecified()) {
            let origin = self.find("advertise_addr").map(|f| f.origin);
            self.invalid(
                "advertise_addr",
                origin,
                "Advertise address cannot be 0.0.0.0, :: or [::]",
            );
        }
        let client_addr = self.client_addrs();
        let ports = self.ports();
        let count = |key: &str, default: u32| {
            self.integer(key).and_then(|(n, _)| u32::try_from(n).ok()).unwrap_or(default)
        };
        let limits = Limits {
            http_max_conns_per_client: count("limits.http_max_conns_per_client", 200),
            rpc_max_conns_per_client: count("limits.rpc_max_conns_per_client", 100),
        };
        let retry_join = self.list("retry_join").into_iter().map(|(s, _)| s).collect();
        let start_join = self.list("start_join").into_iter().map(|(s, _)| s).collect();
        let log_level = match self.string("log_level") {
            Some((text, origin)) => LogLevel::from_str(&text).unwrap_or_else(|message| {
                self.invalid("log_level", Some(origin), message);
                LogLevel::Info
            }),
            None => LogLevel::Info,
        };
        AgentSettings {
            datacenter,
            domain,
            node_name,
            node_meta,
            data_dir,
            dev: self.dev,
            server,
            bootstrap_expect,
            bind_addr,
            advertise_addr,
            client_addr,
            ports,
            limits,
            retry_join,
            start_join,
            log_level,
        }
    }

    fn data_dir(&mut self) -> Option<PathBuf> {
        let found = self.string("data_dir").filter(|(s, _)| !s.is_empty());
        let Some((dir, origin)) = found else {
            if !self.dev && !self.sources_incomplete {
                self.invalid(
                    "data_dir",
                    None,
                    "data_dir cannot be empty: set it in a file, with CONSUL_SEC_DATA_DIR or with the agent's -data-dir flag",
                );
            }
            return None;
        };
        let path = PathBuf::from(&dir);
        match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => {
                self.invalid(
                    "data_dir",
                    Some(origin),
                    format!("data_dir {dir:?} is not a directory"),
                );
            }
            Ok(_) => {}
            // A missing directory is created by the agent.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => self.invalid(
                "data_dir",
                Some(origin),
                format!("Error getting info on data_dir: {err}"),
            ),
        }
        Some(path)
    }

    fn address(&mut self, key: &str) -> Option<IpAddr> {
        let (text, origin) = self.string(key)?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        match parse_ip(text) {
            Ok(ip) => Some(ip),
            Err(message) => {
                self.invalid(key, Some(origin), message);
                None
            }
        }
    }

    fn client_addrs(&mut self) -> Vec<IpAddr> {
        let Some((text, origin)) = self.string("client_addr") else {
            return vec![IpAddr::from([127, 0, 0, 1])];
        };
        let mut out = Vec::new();
        for part in text.split_whitespace() {
            match parse_ip(part) {
                Ok(ip) => out.push(ip),
                Err(message) => self.invalid("client_addr", Some(origin.clone()), message),
            }
        }
        out
    }

    fn ports(&mut self) -> Ports {
        let mut port = |key: &str, default: i128, required: bool| -> Option<u16> {
            let path = format!("ports.{key}");
            let (n, origin) = self.integer(&path).unwrap_or((default, Origin::Default));
            if n <= 0 {
                if required {
                    self.invalid(
                        &path,
                        Some(origin),
                        "must be between 1 and 65535; this listener cannot be disabled",
                    );
                }
                return None;
            }
            u16::try_from(n).ok()
        };
        let ports = Ports {
            http: port("http", 8500, false),
            https: port("https", -1, false),
            dns: port("dns", 8600, false),
            grpc: port("grpc", -1, false),
            grpc_tls: port("grpc_tls", -1, false),
            serf_lan: port("serf_lan", 8301, true).unwrap_or(8301),
            serf_wan: port("serf_wan", 8302, false),
            server: port("server", 8300, true).unwrap_or(8300),
        };
        let named = [
            ("http", ports.http),
            ("https", ports.https),
            ("dns", ports.dns),
            ("grpc", ports.grpc),
            ("grpc_tls", ports.grpc_tls),
            ("serf_lan", Some(ports.serf_lan)),
            ("serf_wan", ports.serf_wan),
            ("server", Some(ports.server)),
        ];
        for (i, (name, port)) in named.iter().enumerate() {
            let Some(port) = port else { continue };
            if let Some((earlier, _)) = named[..i].iter().find(|(_, p)| *p == Some(*port)) {
                let key = format!("ports.{name}");
                let origin = self.find(&key).map(|f| f.origin);
                self.invalid(
                    &key,
                    origin,
                    format!("port {port} is already used by ports.{earlier}"),
                );
            }
        }
        ports
    }

    fn gossip(&mut self) -> GossipSettings {
        const SECTION: &str = "Gossip encryption";
        let mut encrypt = None;
        match self.find("encrypt") {
            Some(found) => {
                let origin = found.origin;
                // Held as a SecretString from here on; never formatted.
                let secret = found.value.into_string().map(SecretString::from);
                match secret {
                    Some(secret) if !secret.expose_secret().is_empty() => {
                        match SecretKey::from_base64(secret.expose_secret()) {
                            Ok(key) => {
                                let shown = format!("<set, {} bytes>", key.size().len());
                                self.show(SECTION, "encrypt", shown, origin, None);
                                encrypt = Some(key);
                            }
                            Err(source) => {
                                self.show(
                                    SECTION,
                                    "encrypt",
                                    "<invalid>".into(),
                                    origin.clone(),
                                    None,
                                );
                                self.errors.push(Error::InvalidEncryptKey {
                                    origin,
                                    position: None,
                                    source,
                                });
                            }
                        }
                    }
                    _ => self.show(SECTION, "encrypt", "(not set)".into(), origin, None),
                }
            }
            None => self.show(SECTION, "encrypt", "(not set)".into(), Origin::Default, None),
        }
        let flag = |this: &mut Self, key: &str, default: bool| {
            let (value, origin) = this.boolean(key).unwrap_or((default, Origin::Default));
            this.show(SECTION, key, value.to_string(), origin.clone(), None);
            (value, origin)
        };
        let (encrypt_verify_incoming, _) = flag(self, "encrypt_verify_incoming", true);
        let (encrypt_verify_outgoing, out_origin) = flag(self, "encrypt_verify_outgoing", true);
        let (disable_keyring_file, _) = flag(self, "disable_keyring_file", self.dev);
        if encrypt.is_some() && encrypt_verify_incoming && !encrypt_verify_outgoing {
            self.warn(
                "encrypt_verify_outgoing = false with encrypt_verify_incoming = true: this agent sends plaintext \
                 gossip but drops plaintext from other agents; the upshift procedure turns verify_outgoing on first",
                // Point at the setting to change: the `false`.
                Some(out_origin),
            );
        }
        GossipSettings {
            encrypt,
            encrypt_verify_incoming,
            encrypt_verify_outgoing,
            disable_keyring_file,
        }
    }

    fn tls(&mut self, datacenter: &str, domain: &str) -> TlsSettings {
        // Checks on what each stanza itself says, once per stanza.
        let mut own_version: BTreeMap<&str, TlsVersion> = BTreeMap::new();
        for stanza in TLS_STANZAS {
            self.check_stanza(stanza, &mut own_version);
        }
        let defaults_version = own_version.get("defaults").copied().unwrap_or_default();
        let policy = |this: &mut Self, proto: &'static str, section: &'static str| {
            let version = own_version.get(proto).copied().unwrap_or(defaults_version);
            this.policy(proto, section, version, datacenter, domain)
        };
        let internal_rpc = policy(self, "internal_rpc", "Internal RPC TLS (tls.internal_rpc)");
        let https = policy(self, "https", "HTTPS TLS (tls.https)");
        let grpc = policy(self, "grpc", "gRPC TLS (tls.grpc)");
        TlsSettings { internal_rpc, https, grpc }
    }

    fn check_stanza(
        &mut self,
        stanza: &'static str,
        own_version: &mut BTreeMap<&'static str, TlsVersion>,
    ) {
        let key = |field: &str| format!("tls.{stanza}.{field}");
        if stanza != "internal_rpc"
            && let Some(found) = self.find(&key("verify_server_hostname"))
        {
            self.invalid(
                &found.key,
                Some(found.origin),
                "verify_server_hostname is only valid in the tls.internal_rpc stanza",
            );
        }
        if stanza == "grpc" {
            if let Some(found) = self.find(&key("verify_outgoing")) {
                self.invalid(
                    &found.key,
                    Some(found.origin),
                    "verify_outgoing is not valid in the tls.grpc stanza",
                );
            }
        } else if let Some(found) = self.find(&key("use_auto_cert")) {
            self.invalid(
                &found.key,
                Some(found.origin),
                "use_auto_cert is only valid in the tls.grpc stanza",
            );
        }
        if let Some((text, origin)) = self.string(&key("tls_min_version")) {
            if !TLS_VERSIONS.split(", ").any(|v| v == text) && !text.is_empty() {
                self.invalid(
                    &key("tls_min_version"),
                    Some(origin),
                    format!(
                        "invalid TLS version: no matching TLS version found for {text}, please specify one of [{TLS_VERSIONS}]"
                    ),
                );
            } else {
                match TlsVersion::from_str(&text) {
                    Ok(version) => {
                        own_version.insert(stanza, version);
                    }
                    Err(err) => {
                        self.invalid(&key("tls_min_version"), Some(origin), err.to_string())
                    }
                }
            }
        }
        if let Some((text, origin)) = self.string(&key("tls_cipher_suites")) {
            let names = split_suites(&text);
            let mut unknown = Vec::new();
            let mut unsupported = Vec::new();
            for name in &names {
                match ConsulCipherSuite::from_str(name) {
                    Ok(suite) if suite.rustls_suite().is_none() => unsupported.push(name.clone()),
                    Ok(_) => {}
                    Err(_) => unknown.push(name.clone()),
                }
            }
            if !unknown.is_empty() {
                self.invalid(
                    &key("tls_cipher_suites"),
                    Some(origin.clone()),
                    format!(
                        "invalid TLS cipher suites: no matching Consul Agent TLS cipher suite found for {}",
                        unknown.join(",")
                    ),
                );
            }
            if !unsupported.is_empty() {
                self.invalid(
                    &key("tls_cipher_suites"),
                    Some(origin.clone()),
                    format!(
                        "{}: CBC cipher suites are not implemented by rustls",
                        unsupported.join(",")
                    ),
                );
            }
            let effective = own_version
                .get(stanza)
                .copied()
                .or_else(|| {
                    if stanza == "defaults" { None } else { own_version.get("defaults").copied() }
                })
                .unwrap_or_default();
            if effective == TlsVersion::Tls13 && !names.is_empty() {
                self.invalid(
                    &key("tls_cipher_suites"),
                    Some(origin),
                    "TLS 1.3 cipher suites are not configurable",
                );
            }
        }
    }

    /// The protocol's value if set, else `tls.defaults`' value.
    fn pick(&self, proto: &str, field: &str) -> Option<Found> {
        self.find(&format!("tls.{proto}.{field}"))
            .or_else(|| self.find(&format!("tls.defaults.{field}")))
    }

    fn note_for(&self, proto: &str, found: &Found) -> Option<String> {
        let mut notes = Vec::new();
        if !found.key.starts_with(&format!("tls.{proto}.")) {
            notes.push(format!("inherited from {}", found.key));
        }
        if let Some(moved) = self.moved_note(&found.key, &found.origin) {
            notes.push(moved);
        }
        (!notes.is_empty()).then(|| notes.join(", "))
    }

    fn policy(
        &mut self,
        proto: &'static str,
        section: &'static str,
        version: TlsVersion,
        datacenter: &str,
        domain: &str,
    ) -> TlsPolicy {
        let path_field = |this: &mut Self, field: &str| -> Option<PathBuf> {
            match this.pick(proto, field) {
                Some(found) => {
                    let note = this.note_for(proto, &found);
                    let text = found.value.as_str().unwrap_or_default().to_owned();
                    let shown = if text.is_empty() { "(not set)".to_owned() } else { text.clone() };
                    this.show(section, field, shown, found.origin.clone(), note);
                    (!text.is_empty()).then(|| PathBuf::from(text))
                }
                None => {
                    this.show(section, field, "(not set)".into(), Origin::Default, None);
                    None
                }
            }
        };
        let ca_file = path_field(self, "ca_file");
        let ca_path = path_field(self, "ca_path");
        let cert_file = path_field(self, "cert_file");
        let key_file = path_field(self, "key_file");

        let bool_field = |this: &mut Self, field: &str, inherit: bool| -> (bool, Option<Found>) {
            let found = if inherit {
                this.pick(proto, field)
            } else {
                this.find(&format!("tls.{proto}.{field}"))
            };
            match found {
                Some(found) => (found.value.to_bool().unwrap_or(false), Some(found)),
                None => (false, None),
            }
        };
        let show_bool = |this: &mut Self,
                         field: &str,
                         value: bool,
                         found: &Option<Found>,
                         extra: Option<String>| {
            let (origin, mut note) = match found {
                Some(f) => (f.origin.clone(), this.note_for(proto, f)),
                None => (Origin::Default, None),
            };
            if let Some(extra) = extra {
                note = Some(match note {
                    Some(n) => format!("{n}, {extra}"),
                    None => extra,
                });
            }
            this.show(section, field, value.to_string(), origin, note);
        };

        let (verify_incoming, vi_found) = bool_field(self, "verify_incoming", true);
        show_bool(self, "verify_incoming", verify_incoming, &vi_found, None);

        // gRPC never inherits verify_outgoing and never uses it.
        let (mut verify_outgoing, vo_found) =
            if proto == "grpc" { (false, None) } else { bool_field(self, "verify_outgoing", true) };
        let (verify_server_hostname, vsh_found) = if proto == "internal_rpc" {
            bool_field(self, "verify_server_hostname", false)
        } else {
            (false, None)
        };
        let mut implied = None;
        if verify_server_hostname && !verify_outgoing {
            // CVE-2018-19653: verify_server_hostname without verify_outgoing
            // once meant plaintext RPC. It implies verify_outgoing; when
            // verify_outgoing was explicitly turned off, say so loudly.
            verify_outgoing = true;
            implied = Some("implied by verify_server_hostname".to_owned());
            if let Some(vo) = &vo_found {
                let vsh_origin =
                    vsh_found.as_ref().map(|f| f.origin.to_string()).unwrap_or_default();
                self.warn(
                    format!(
                        "WARNING: tls.internal_rpc.verify_server_hostname is true (in {vsh_origin}) but verify_outgoing \
                         is false (as {} in {}); verify_server_hostname implies verify_outgoing, so outgoing RPC will \
                         use TLS and verify server.<datacenter>.{} certificates. Remove the contradictory \
                         verify_outgoing = false (Consul before 1.4.1 silently used plaintext here: CVE-2018-19653)",
                        vo.key,
                        vo.origin,
                        domain.trim_end_matches('.'),
                    ),
                    Some(vo.origin.clone()),
                );
            }
        }
        if proto != "grpc" {
            show_bool(self, "verify_outgoing", verify_outgoing, &vo_found, implied);
        }
        if proto == "internal_rpc" {
            show_bool(self, "verify_server_hostname", verify_server_hostname, &vsh_found, None);
        }

        let version_found = self.pick(proto, "tls_min_version");
        let version_note = version_found.as_ref().and_then(|f| self.note_for(proto, f));
        let version_origin = version_found.map(|f| f.origin).unwrap_or(Origin::Default);
        self.show(
            section,
            "tls_min_version",
            version.as_str().to_owned(),
            version_origin,
            version_note,
        );

        // The protocol's own suites, else the inherited ones unless this
        // protocol's minimum is TLS 1.3 (then they are dropped silently).
        let own = self.find(&format!("tls.{proto}.tls_cipher_suites"));
        let suites_found = match own {
            Some(found) => Some(found),
            None if version == TlsVersion::Tls13 => None,
            None => self.find("tls.defaults.tls_cipher_suites"),
        };
        let tls_cipher_suites = suites_found
            .as_ref()
            .map(|f| split_suites(f.value.as_str().unwrap_or_default()))
            .unwrap_or_default();
        let shown = if tls_cipher_suites.is_empty() {
            "(library defaults)".to_owned()
        } else {
            tls_cipher_suites.join(",")
        };
        let (origin, note) = match &suites_found {
            Some(f) => (f.origin.clone(), self.note_for(proto, f)),
            None => (Origin::Default, None),
        };
        self.show(section, "tls_cipher_suites", shown, origin, note);

        let policy = TlsPolicy {
            ca_file,
            ca_path,
            cert_file,
            key_file,
            verify_incoming,
            verify_outgoing,
            verify_server_hostname,
            tls_min_version: version,
            tls_cipher_suites,
            datacenter: datacenter.to_owned(),
            domain: domain.to_owned(),
        };
        self.startup_warnings(proto, &policy);
        policy
    }

    /// Settings the agent will refuse at start (Consul checks them when the
    /// TLS configurator is built, not in `consul validate`): warned here so
    /// `validate` shows them early.
    fn startup_warnings(&mut self, proto: &str, policy: &TlsPolicy) {
        let has_ca = policy.ca_file.is_some() || policy.ca_path.is_some();
        if policy.verify_outgoing && !has_ca {
            self.warn(
                format!(
                    "tls.{proto}: verify_outgoing is on but neither ca_file nor ca_path is set; the agent will refuse \
                     to start (VerifyOutgoing set but no CA certificates were provided)"
                ),
                None,
            );
        }
        if policy.verify_incoming && !has_ca {
            self.warn(
                format!(
                    "tls.{proto}: verify_incoming is on but neither ca_file nor ca_path is set; the agent will refuse \
                     to start (VerifyIncoming set but no CA certificates were provided)"
                ),
                None,
            );
        }
        if policy.verify_incoming && (policy.cert_file.is_none() || policy.key_file.is_none()) {
            self.warn(
                format!(
                    "tls.{proto}: verify_incoming is on but cert_file and key_file are not both set; the agent will \
                     refuse to start"
                ),
                None,
            );
        }
        if policy.cert_file.is_some() != policy.key_file.is_some() {
            self.warn(
                format!(
                    "tls.{proto}: only one of cert_file and key_file is set; consul-sec refuses to start with half a \
                     key pair (Consul would silently load no certificate)"
                ),
                None,
            );
        }
    }
}

fn split_suites(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    if text.contains("{{") {
        return Err(format!(
            "go-sockaddr templates are not supported by consul-sec, found {text:?}; write an IP address"
        ));
    }
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    IpAddr::from_str(bare).map_err(|_| format!("expected an IP address, found {text:?}"))
}

fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_parsing() {
        assert_eq!(parse_ip("10.0.0.1"), Ok(IpAddr::from([10, 0, 0, 1])));
        assert!(parse_ip("[::1]").is_ok());
        assert!(parse_ip("{{ GetPrivateIP }}").unwrap_err().contains("templates"));
        assert!(parse_ip("nope").unwrap_err().contains("\"nope\""));
    }

    #[test]
    fn suites_split_and_trim() {
        assert_eq!(split_suites(" A, B ,,"), ["A", "B"]);
        assert!(split_suites("").is_empty());
    }
}
