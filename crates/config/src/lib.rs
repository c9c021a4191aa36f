//! Consul agent configuration from JSON, HCL, environment variables and
//! command-line flags, merged the way Consul merges it, checked for
//! everything a user can get wrong, and converted into the settings types
//! of the other crates: [`AgentSettings`], [`GossipSettings`] and one
//! [`TlsPolicy`](consul_sec_tls_policy::TlsPolicy) per listener.
//!
//! This is the only crate that knows Consul's file shape (snake_case keys,
//! the deprecated flat TLS keys, HCL/JSON quirks). It reads no certificate
//! and no keyring file: the TLS policy and the gossip key are checked for
//! syntax and consistency here and loaded by the agent.
//!
//! Sources, in merge order (later wins for scalars):
//!
//! 1. built-in defaults (Consul's: `datacenter = "dc1"`, `domain = "consul"`,
//!    ports 8500/8600/8301/8302/8300, HTTPS off, `encrypt_verify_*` on,
//!    `tls.defaults.tls_min_version = "TLSv1_2"`), then the `-dev` defaults;
//! 2. the list-valued flags (`-retry-join`, `-join`), which Consul puts
//!    before the files so their entries come first;
//! 3. `-config-file` / `-config-dir` paths in the order given; a directory
//!    contributes its `.json` and `.hcl` files in name order (not
//!    recursive; other files are skipped with a warning);
//! 4. environment variables named [`ENV_PREFIX`] + the key, nested keys
//!    joined by `__`: `CONSUL_SEC_DATA_DIR`, `CONSUL_SEC_PORTS__HTTPS=8501`,
//!    `CONSUL_SEC_TLS__INTERNAL_RPC__VERIFY_INCOMING=true`,
//!    `CONSUL_SEC_RETRY_JOIN=a,b` (or `[a, b]`). Names are case-insensitive
//!    after the prefix. This is a consul-sec addition: Consul's agent reads
//!    no such variables;
//! 5. the other command-line flags ([`Flags`]).
//!
//! Merging follows Consul's `agent/config/merge.go`: scalars from a later
//! source replace earlier ones, lists are concatenated (figment's
//! `admerge`), objects are merged key by key, and **maps** (`node_meta`)
//! are replaced whole by a later non-empty map, where figment alone would
//! merge them key by key. Each source is checked on its own before merging
//! (unknown keys with a "did you mean", wrong types) and has its flat TLS
//! keys (`ca_file`, `verify_outgoing`, ...) mapped into the `tls` stanza
//! with Consul's deprecation warning; a stanza value in the same source
//! wins over the flat key.
//!
//! ```
//! use consul_sec_config::{ConfigPath, LoadOptions, load};
//!
//! let dir = std::env::temp_dir().join(format!("consul-sec-config-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let file = dir.join("agent.hcl");
//! std::fs::write(&file, r#"
//!   data_dir = "/var/lib/consul"
//!   encrypt  = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
//!   tls {
//!     defaults {
//!       ca_file         = "/etc/consul/ca.pem"
//!       verify_outgoing = true
//!     }
//!     internal_rpc { verify_server_hostname = true }
//!   }
//! "#).unwrap();
//!
//! let options = LoadOptions { paths: vec![ConfigPath::File(file)], ..LoadOptions::default() };
//! // The environment is passed in, so nothing leaks in from the process.
//! let loaded = load(&options, std::iter::empty::<(String, String)>()).unwrap();
//! let rpc = &loaded.config.tls.internal_rpc;
//! assert!(rpc.verify_outgoing && rpc.verify_server_hostname);
//! assert_eq!(loaded.config.gossip.encrypt.as_ref().map(|k| k.size().len()), Some(32));
//! assert_eq!(loaded.config.agent.ports.https, None);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![warn(missing_docs)]

mod deprecated;
mod error;
mod format;
mod resolve;
mod schema;
mod settings;
mod show;
mod source;

use std::ffi::OsStr;

use figment::Figment;

pub use error::{Error, LoadFailure, Origin, Position, Warning};
pub use format::{FileFormat, Hcl};
pub use resolve::Provenance;
pub use settings::{AgentSettings, Config, GossipSettings, Limits, LogLevel, Ports, TlsSettings};
pub use source::{ConfigPath, ENV_PREFIX, Flags, TOOLING_ENV_VARS};

/// What to load: the paths and flags of one agent (or `validate`) run.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// `-config-file` and `-config-dir` paths, in command-line order.
    pub paths: Vec<ConfigPath>,
    /// `-config-format`: parse every file as this format, whatever its extension.
    pub format: Option<FileFormat>,
    /// The configuration flags given on the command line.
    pub flags: Flags,
    /// `-dev`: dev-mode defaults, `data_dir` not required.
    pub dev: bool,
}

/// A configuration that loaded without errors.
#[derive(Debug)]
#[non_exhaustive]
pub struct Loaded {
    /// The resolved settings.
    pub config: Config,
    /// Deprecations, skipped files and risky combinations; none of them stops the agent.
    pub warnings: Vec<Warning>,
    /// Where each gossip-encryption and TLS setting came from, in display order.
    pub provenance: Vec<Provenance>,
}

impl Loaded {
    /// The resolved TLS and gossip-encryption settings with the source of
    /// each value, as `consul-sec validate -show` prints them. The gossip
    /// key is shown only as `<set, N bytes>`.
    pub fn render_provenance(&self) -> String {
        show::render(&self.provenance)
    }
}

/// Go's `strconv.ParseBool`, the spellings Consul accepts for a boolean
/// in configuration, environment variables and query parameters.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Loads the configuration from `options` and the environment variables
/// `env` (pass `std::env::vars_os()` for the process environment; tests pass
/// their own pairs). Returns every error found, not just the first.
pub fn load<I, K, V>(options: &LoadOptions, env: I) -> Result<Loaded, LoadFailure>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut sources = source::defaults(options.dev, &mut errors, &mut warnings);
    sources.extend(source::list_flags(&options.flags, &mut errors, &mut warnings));
    sources.extend(source::files(&options.paths, options.format, &mut errors, &mut warnings));
    sources.extend(source::env(env, &mut errors, &mut warnings));
    sources.extend(source::scalar_flags(&options.flags, &mut errors, &mut warnings));

    source::attach_positions(&mut errors, &sources);

    let figment = sources
        .iter()
        .fold(Figment::new(), |figment, s| figment.admerge(source::SourceProvider(s)));
    let mut resolver = resolve::Resolver::new(&figment, &sources, options.dev);
    resolver.sources_incomplete = errors.iter().any(|e| {
        matches!(e, Error::Io { .. } | Error::Parse { .. } | Error::UnknownExtension { .. })
    });
    let config = resolver.resolve();
    source::attach_positions(&mut resolver.errors, &sources);
    errors.append(&mut resolver.errors);
    warnings.append(&mut resolver.warnings);
    if errors.is_empty() {
        Ok(Loaded { config, warnings, provenance: resolver.shown })
    } else {
        Err(LoadFailure { errors, warnings })
    }
}
