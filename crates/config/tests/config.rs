//! The public API of `consul-sec-config`: loading, merging, errors, the TLS
//! mapping and provenance, with small inline JSON/HCL fixtures.

use std::path::{Path, PathBuf};

use consul_sec_config::{
    ConfigPath, Error, FileFormat, Flags, LoadFailure, LoadOptions, Loaded, LogLevel, Origin, load,
};
use consul_sec_gossip_crypto::SecretKey;
use consul_sec_tls_policy::TlsVersion;
use secrecy::SecretString;
use tempfile::TempDir;

/// The example key of Consul's gossip encryption documentation.
const DOCS_KEY: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";

const NO_ENV: [(&str, &str); 0] = [];

/// Writes `files` into a fresh directory; returns the directory and the paths in order.
fn write(files: &[(&str, &str)]) -> (TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = files
        .iter()
        .map(|(name, text)| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    (dir, paths)
}

/// Options for the given files, with a data_dir flag so the required key is present.
fn options(paths: &[PathBuf], data_dir: &Path) -> LoadOptions {
    LoadOptions {
        paths: paths.iter().cloned().map(ConfigPath::File).collect(),
        flags: Flags { data_dir: Some(data_dir.display().to_string()), ..Flags::default() },
        ..LoadOptions::default()
    }
}

fn load_files(files: &[(&str, &str)]) -> (TempDir, Result<Loaded, LoadFailure>) {
    load_files_env(files, &NO_ENV)
}

fn load_files_env(
    files: &[(&str, &str)],
    env: &[(&str, &str)],
) -> (TempDir, Result<Loaded, LoadFailure>) {
    let (dir, paths) = write(files);
    let result = load(&options(&paths, dir.path()), env.iter().copied());
    (dir, result)
}

fn ok(files: &[(&str, &str)]) -> Loaded {
    let (_dir, result) = load_files(files);
    match result {
        Ok(loaded) => loaded,
        Err(failure) => panic!("expected success: {failure}"),
    }
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let (_dir, result) = load_files(files);
    match result {
        Ok(_) => panic!("expected errors"),
        Err(failure) => failure.errors.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(loaded: &Loaded) -> Vec<&str> {
    loaded.warnings.iter().map(|w| w.message.as_str()).collect()
}

fn assert_has(haystack: &[String], needle: &str) {
    assert!(
        haystack.iter().any(|m| m.contains(needle)),
        "no message contains {needle:?}: {haystack:#?}"
    );
}

mod keys_and_defaults {
    use super::*;

    #[test]
    fn defaults_are_consuls() {
        let loaded = ok(&[]);
        let agent = &loaded.config.agent;
        assert_eq!(agent.datacenter, "dc1");
        assert_eq!(agent.domain, "consul");
        assert_eq!(agent.ports.http, Some(8500));
        assert_eq!(agent.ports.https, None, "HTTPS is off by default");
        assert_eq!(agent.ports.serf_lan, 8301);
        assert_eq!(agent.ports.server, 8300);
        assert_eq!(agent.client_addr, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(agent.log_level, LogLevel::Info);
        assert!(!agent.server);
        assert!(!agent.node_name.is_empty(), "node name defaults to the host name");
        let gossip = &loaded.config.gossip;
        assert!(gossip.encrypt.is_none());
        assert!(gossip.encrypt_verify_incoming && gossip.encrypt_verify_outgoing);
        assert!(!gossip.disable_keyring_file);
        let rpc = &loaded.config.tls.internal_rpc;
        assert_eq!(rpc.tls_min_version, TlsVersion::Tls12);
        assert!(!rpc.verify_incoming && !rpc.verify_outgoing && !rpc.verify_server_hostname);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn every_key_is_read() {
        let loaded = ok(&[(
            "all.json",
            &format!(
                r#"{{
                "datacenter": "DC2", "domain": "example", "node_name": "n1",
                "server": true, "bootstrap_expect": 3,
                "bind_addr": "10.0.0.1", "advertise_addr": "10.0.0.2", "client_addr": "127.0.0.1 ::1",
                "ports": {{"http": 8600, "https": 8501, "serf_lan": 9301, "server": 9300, "dns": -1}},
                "retry_join": ["a", "b"], "start_join": ["c"], "log_level": "DEBUG",
                "encrypt": "{DOCS_KEY}", "encrypt_verify_incoming": false, "encrypt_verify_outgoing": false,
                "disable_keyring_file": true,
                "tls": {{
                  "defaults": {{"ca_file": "/ca.pem", "ca_path": "/cas", "cert_file": "/c.pem", "key_file": "/k.pem",
                               "verify_incoming": true, "verify_outgoing": true, "tls_min_version": "TLSv1_3"}},
                  "internal_rpc": {{"verify_server_hostname": true}},
                  "https": {{"verify_incoming": false, "tls_min_version": "TLSv1_2",
                            "tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}
                }}
            }}"#
            ),
        )]);
        let agent = &loaded.config.agent;
        assert_eq!(agent.datacenter, "dc2", "lower-cased");
        assert_eq!(agent.domain, "example");
        assert_eq!(agent.node_name, "n1");
        assert!(agent.server);
        assert_eq!(agent.bootstrap_expect, 3);
        assert_eq!(agent.bind_addr.to_string(), "10.0.0.1");
        assert_eq!(agent.advertise_addr.map(|a| a.to_string()).as_deref(), Some("10.0.0.2"));
        assert_eq!(agent.client_addr.len(), 2);
        assert_eq!(agent.ports.http, Some(8600));
        assert_eq!(agent.ports.https, Some(8501));
        assert_eq!(agent.ports.serf_lan, 9301);
        assert_eq!(agent.ports.server, 9300);
        assert_eq!(agent.ports.dns, None);
        assert_eq!(agent.retry_join, ["a", "b"]);
        assert_eq!(agent.start_join, ["c"]);
        assert_eq!(agent.log_level, LogLevel::Debug);
        let gossip = &loaded.config.gossip;
        assert_eq!(gossip.encrypt, Some(SecretKey::from_base64(DOCS_KEY).unwrap()));
        assert!(
            !gossip.encrypt_verify_incoming
                && !gossip.encrypt_verify_outgoing
                && gossip.disable_keyring_file
        );
        let rpc = &loaded.config.tls.internal_rpc;
        assert_eq!(rpc.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(rpc.ca_path.as_deref(), Some(Path::new("/cas")));
        assert_eq!(rpc.cert_file.as_deref(), Some(Path::new("/c.pem")));
        assert_eq!(rpc.key_file.as_deref(), Some(Path::new("/k.pem")));
        assert!(rpc.verify_incoming && rpc.verify_outgoing && rpc.verify_server_hostname);
        assert_eq!(rpc.tls_min_version, TlsVersion::Tls13);
        assert_eq!(rpc.datacenter, "dc2");
        assert_eq!(rpc.domain, "example");
        let https = &loaded.config.tls.https;
        assert!(!https.verify_incoming, "the https stanza overrides defaults");
        assert!(!https.verify_server_hostname, "never inherited");
        assert_eq!(https.tls_min_version, TlsVersion::Tls12);
        assert_eq!(https.tls_cipher_suites, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]);
        let grpc = &loaded.config.tls.grpc;
        assert!(!grpc.verify_outgoing, "gRPC never inherits verify_outgoing");
        assert!(grpc.verify_incoming);
    }

    #[test]
    fn encrypt_exactly_as_in_the_consul_docs() {
        let loaded = ok(&[("encrypt.json", &format!("{{\"encrypt\": \"{DOCS_KEY}\"}}"))]);
        let key = loaded.config.gossip.encrypt.as_ref().expect("key set");
        assert_eq!(key.size().len(), 32);
        assert_eq!(key.to_base64().as_str(), DOCS_KEY);
    }

    #[test]
    fn plaintext_out_but_not_in_is_warned_naming_where_false_was_set() {
        let (dir, result) = load_files(&[
            ("a.json", &format!("{{\"encrypt\": \"{DOCS_KEY}\"}}")),
            ("b.hcl", "encrypt_verify_outgoing = false\n"),
        ]);
        let loaded = result.expect("valid");
        let warning = loaded
            .warnings
            .iter()
            .find(|w| w.message.starts_with("encrypt_verify_outgoing = false with"))
            .expect("warned");
        assert_eq!(warning.origin, Some(Origin::File(dir.path().join("b.hcl"))));
        assert!(
            warning
                .to_string()
                .ends_with(&format!("(in file {})", dir.path().join("b.hcl").display()))
        );
        // Both off is the first step of the upshift procedure, not a mistake.
        let loaded = ok(&[(
            "c.json",
            &format!(
                "{{\"encrypt\": \"{DOCS_KEY}\", \"encrypt_verify_incoming\": false, \"encrypt_verify_outgoing\": false}}"
            ),
        )]);
        assert!(!warnings(&loaded).iter().any(|w| w.starts_with("encrypt_verify_outgoing")));
    }

    #[test]
    fn empty_encrypt_means_unset() {
        let loaded = ok(&[("e.json", r#"{"encrypt": ""}"#)]);
        assert!(loaded.config.gossip.encrypt.is_none());
    }
}

mod sources {
    use super::*;

    const JSON: &str = r#"{
      "datacenter": "east", "server": true, "retry_join": ["10.0.0.1", "10.0.0.2"],
      "ports": {"https": 8501}, "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
      "encrypt_verify_outgoing": false,
      "tls": {"defaults": {"ca_file": "/etc/ca.pem", "verify_outgoing": true},
              "internal_rpc": {"verify_server_hostname": true}, "https": {"verify_incoming": true}}
    }"#;

    const HCL: &str = r#"
      # the same settings in HCL
      datacenter = "east"
      server     = true
      retry_join = ["10.0.0.1", "10.0.0.2"]
      ports {
        https = 8501
      }
      encrypt = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
      encrypt_verify_outgoing = false
      tls {
        defaults {
          ca_file         = "/etc/ca.pem"
          verify_outgoing = true
        }
        internal_rpc { verify_server_hostname = true }
        https {
          verify_incoming = true
        }
      }
    "#;

    const ENV: &[(&str, &str)] = &[
        ("CONSUL_SEC_DATACENTER", "east"),
        ("CONSUL_SEC_SERVER", "true"),
        ("CONSUL_SEC_RETRY_JOIN", "10.0.0.1,10.0.0.2"),
        ("CONSUL_SEC_PORTS__HTTPS", "8501"),
        ("CONSUL_SEC_ENCRYPT", DOCS_KEY),
        ("CONSUL_SEC_ENCRYPT_VERIFY_OUTGOING", "false"),
        ("CONSUL_SEC_TLS__DEFAULTS__CA_FILE", "/etc/ca.pem"),
        ("CONSUL_SEC_TLS__DEFAULTS__VERIFY_OUTGOING", "true"),
        ("CONSUL_SEC_TLS__INTERNAL_RPC__VERIFY_SERVER_HOSTNAME", "true"),
        ("CONSUL_SEC_tls__https__verify_incoming", "true"),
        ("UNRELATED", "ignored"),
    ];

    #[test]
    fn json_hcl_and_env_give_equal_results() {
        let json = ok(&[("a.json", JSON)]);
        let hcl = ok(&[("a.hcl", HCL)]);
        let (_dir, env) = load_files_env(&[], ENV);
        let env = env.unwrap_or_else(|f| panic!("{f}"));
        // The environment-variable form has lower-case names too: show the
        // comparison is not vacuous.
        assert_eq!(json.config.agent.datacenter, "east");
        assert!(json.config.tls.https.verify_incoming);
        for other in [&hcl, &env] {
            let mut agent = other.config.agent.clone();
            // data_dir differs (a temp dir per load); everything else must match.
            agent.data_dir.clone_from(&json.config.agent.data_dir);
            assert_eq!(agent, json.config.agent);
            assert_eq!(other.config.gossip, json.config.gossip);
            assert_eq!(other.config.tls, json.config.tls);
        }
        // Lower-case names after the prefix are accepted; the prefix itself is case-sensitive.
        assert!(env.config.tls.https.verify_incoming);
    }

    #[test]
    fn files_in_order_then_env_then_flags() {
        let (dir, paths) = write(&[
            ("a.hcl", "datacenter = \"a\"\nlog_level = \"warn\""),
            ("b.json", r#"{"datacenter": "b"}"#),
        ]);
        let mut opts = options(&paths, dir.path());
        let loaded = load(&opts, NO_ENV).unwrap();
        assert_eq!(loaded.config.agent.datacenter, "b");
        assert_eq!(loaded.config.agent.log_level, LogLevel::Warn);

        let env = [("CONSUL_SEC_DATACENTER", "c")];
        assert_eq!(load(&opts, env).unwrap().config.agent.datacenter, "c");

        opts.flags.datacenter = Some("d".into());
        assert_eq!(load(&opts, env).unwrap().config.agent.datacenter, "d");
    }

    #[test]
    fn unset_flags_do_not_override() {
        let (dir, paths) = write(&[("a.json", r#"{"datacenter": "files", "server": true}"#)]);
        let opts = options(&paths, dir.path());
        assert!(opts.flags.server.is_none());
        let loaded = load(&opts, NO_ENV).unwrap();
        assert_eq!(loaded.config.agent.datacenter, "files");
        assert!(loaded.config.agent.server);
    }

    #[test]
    fn lists_concatenate_with_list_flags_first() {
        let (dir, paths) = write(&[
            ("a.json", r#"{"retry_join": ["a"]}"#),
            ("b.hcl", "retry_join = [\"b\"]\nstart_join = [\"s\"]"),
        ]);
        let mut opts = options(&paths, dir.path());
        opts.flags.retry_join = vec!["flag".into()];
        let loaded = load(&opts, [("CONSUL_SEC_RETRY_JOIN", "[env1, env2]")]).unwrap();
        // Consul merges list-valued flags before the files.
        assert_eq!(loaded.config.agent.retry_join, ["flag", "a", "b", "env1", "env2"]);
        assert_eq!(loaded.config.agent.start_join, ["s"]);
    }

    #[test]
    fn maps_follow_consuls_replace_rule() {
        let loaded = ok(&[
            ("a.json", r#"{"node_meta": {"rack": "r1", "zone": "z1"}}"#),
            ("b.json", r#"{"node_meta": {"rack": "r2"}}"#),
            ("c.json", r#"{"node_meta": {}}"#),
        ]);
        // figment alone would give {rack: r2, zone: z1}; Consul replaces the
        // whole map with the later non-empty one and ignores the empty one.
        let meta: Vec<(&str, &str)> =
            loaded.config.agent.node_meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(meta, [("rack", "r2")]);
    }

    #[test]
    fn directory_with_json_hcl_and_readme() {
        let (dir, _) = write(&[
            ("a.json", r#"{"datacenter": "from-a", "retry_join": ["a"], "log_level": "debug"}"#),
            ("b.hcl", "datacenter = \"from-b\"\nretry_join = [\"b\"]"),
            ("README.md", "# not configuration {"),
        ]);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x.json"), r#"{"datacenter": "from-sub"}"#).unwrap();
        let opts = LoadOptions {
            paths: vec![ConfigPath::Dir(dir.path().to_owned())],
            flags: Flags { data_dir: Some(dir.path().display().to_string()), ..Flags::default() },
            ..LoadOptions::default()
        };
        let loaded = load(&opts, NO_ENV).unwrap();
        assert_eq!(loaded.config.agent.datacenter, "from-b", "b.hcl is read after a.json");
        assert_eq!(loaded.config.agent.log_level, LogLevel::Debug);
        assert_eq!(loaded.config.agent.retry_join, ["a", "b"]);
        let readme = dir.path().join("README.md");
        assert_eq!(
            warnings(&loaded),
            [format!(
                "skipping file {}, extension must be .hcl or .json, or config format must be set",
                readme.display()
            )]
        );
    }

    #[test]
    fn explicit_file_needs_a_known_extension_or_format() {
        let (dir, paths) = write(&[("agent.conf", "datacenter = \"conf\"")]);
        let mut opts = options(&paths, dir.path());
        let failure = load(&opts, NO_ENV).unwrap_err();
        assert_eq!(
            failure.errors[0].to_string(),
            format!(
                "file {} has unknown extension; must be .hcl or .json, or config format must be set",
                paths[0].display()
            )
        );
        opts.format = Some(FileFormat::Hcl);
        assert_eq!(load(&opts, NO_ENV).unwrap().config.agent.datacenter, "conf");
        opts.format = Some(FileFormat::Json);
        let failure = load(&opts, NO_ENV).unwrap_err();
        assert!(matches!(failure.errors[0], Error::Parse { format: "JSON", .. }), "{failure}");
    }

    #[test]
    fn empty_files_are_skipped() {
        let loaded = ok(&[("empty.json", "  \n"), ("empty.hcl", "")]);
        assert_eq!(loaded.config.agent.datacenter, "dc1");
    }

    #[test]
    fn missing_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let failure =
            load(&options(std::slice::from_ref(&missing), dir.path()), NO_ENV).unwrap_err();
        let message = failure.errors[0].to_string();
        assert!(message.starts_with(&format!("{}: open failed", missing.display())), "{message}");
    }

    #[test]
    fn dev_mode_needs_no_data_dir() {
        let opts = LoadOptions { dev: true, ..LoadOptions::default() };
        let loaded = load(&opts, NO_ENV).unwrap();
        assert!(loaded.config.agent.data_dir.is_none());
        assert!(loaded.config.gossip.disable_keyring_file, "dev default");
    }
}

mod hcl {
    use super::*;

    #[test]
    fn consul_style_file_parses() {
        let loaded = ok(&[(
            "agent.hcl",
            r#"
            // comments of every style
            # hash
            /* block */
            datacenter = "dc1"
            node_meta = {
              "/path/like-key" = "kept"
              "instance-type"  = "t2.medium"
            }
            retry_join = [
              "10.0.0.1",
              "10.0.0.2",
            ]
            tls {
              defaults {
                verify_incoming = true
                ca_file         = "/etc/consul.d/ca.pem"
                cert_file       = "/etc/consul.d/c.pem"
                key_file        = "/etc/consul.d/k.pem"
              }
              internal_rpc {
                verify_server_hostname = true
              }
            }
            ports = { https = 8501, dns = 8600 }
            "#,
        )]);
        let agent = &loaded.config.agent;
        assert_eq!(agent.node_meta.get("/path/like-key").map(String::as_str), Some("kept"));
        assert_eq!(agent.node_meta.get("instance-type").map(String::as_str), Some("t2.medium"));
        assert_eq!(agent.retry_join, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(agent.ports.https, Some(8501));
        assert_eq!(agent.ports.dns, Some(8600));
        assert!(loaded.config.tls.internal_rpc.verify_server_hostname);
        assert!(loaded.config.tls.internal_rpc.verify_outgoing, "implied");
    }

    #[test]
    fn quoted_attribute_name_gets_a_rewrite_hint() {
        let messages =
            errors(&[("q.hcl", &format!("datacenter = \"x\"\n\"encrypt\" = \"{DOCS_KEY}\"\n"))]);
        assert_eq!(messages.len(), 1, "{messages:?}");
        let m = &messages[0];
        assert!(m.contains("q.hcl:2:"), "line is named: {m}");
        assert!(m.contains("failed to parse HCL"), "{m}");
        assert!(m.contains("write `encrypt = ...` without quotes"), "{m}");
        assert!(!m.contains(DOCS_KEY), "the key is not echoed: {m}");
    }

    #[test]
    fn one_line_block_gets_a_rewrite_hint() {
        let messages = errors(&[("p.hcl", "ports { https = 8501, dns = 8600 }\n")]);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("p.hcl:1:"), "{}", messages[0]);
        assert!(messages[0].contains("`ports = { https = 8501, dns = 8600 }`"), "{}", messages[0]);
    }

    #[test]
    fn two_tls_blocks_are_an_error() {
        let messages = errors(&[(
            "t.hcl",
            "tls {\n defaults { verify_incoming = true }\n}\ntls {\n https { verify_incoming = true }\n}\n",
        )]);
        assert_has(
            &messages,
            "tls: expected an object (block), found 2 blocks (only one is allowed)",
        );
    }

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let messages =
            errors(&[("bad.json", "{\n  \"datacenter\": \"a\",\n  \"retry_join\": [1,,]\n}")]);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("bad.json:3:"), "{}", messages[0]);
        assert!(messages[0].contains("failed to parse JSON"), "{}", messages[0]);
    }
}

mod errors {
    use super::*;

    #[test]
    fn unknown_keys_with_suggestions_are_all_reported() {
        let (_dir, result) = load_files(&[
            ("a.json", r#"{"datacenter": "a", "bogus_key": 1, "encrpyt": "x"}"#),
            (
                "b.hcl",
                "ports {\n  htps = 8501\n}\ntls {\n  defaults { verify_incomming = true }\n}\n",
            ),
        ]);
        let failure = result.unwrap_err();
        let messages: Vec<String> = failure.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert_has(&messages, "bogus_key: invalid config key (in file ");
        assert_has(&messages, "encrpyt: invalid config key");
        assert_has(&messages, "did you mean \"encrypt\"?");
        assert_has(&messages, "ports.htps: invalid config key (in file ");
        assert_has(&messages, "did you mean \"ports.https\"?");
        assert_has(&messages, "tls.defaults.verify_incomming: invalid config key");
        assert_has(&messages, "did you mean \"tls.defaults.verify_incoming\"?");
        assert!(
            messages.iter().any(|m| m.contains("bogus_key") && !m.contains("did you mean")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("a.json"))
                && messages.iter().any(|m| m.contains("b.hcl"))
        );
        assert!(
            matches!(&failure.errors[0], Error::UnknownKey { origin: Origin::File(p), .. } if p.ends_with("a.json")),
            "{:?}",
            failure.errors[0]
        );
    }

    #[test]
    fn wrong_types_name_file_key_and_expectation() {
        let messages =
            errors(&[("t.hcl", "server = \"yes\"\nports {\n  https = \"not-a-number\"\n}\n")]);
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_has(
            &messages,
            "server: expected a boolean (true or false), found string \"yes\" (in file ",
        );
        assert_has(
            &messages,
            "ports.https: expected a port number (0-65535, or -1 to disable), found string \"not-a-number\"",
        );
        assert!(messages.iter().all(|m| m.contains("t.hcl")), "{messages:?}");
        // The line and column of the key in the file.
        assert!(
            messages[0].contains("t.hcl:3:3)") || messages[1].contains("t.hcl:3:3)"),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.starts_with("server:") && m.contains("t.hcl:1:1)")),
            "{messages:?}"
        );
    }

    #[test]
    fn errors_about_mapped_flat_keys_point_at_the_flat_key() {
        let messages = errors(&[(
            "m.json",
            "{\n  \"data_dir\": \"/tmp\",\n  \"tls_min_version\": \"tls10\"\n}",
        )]);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].starts_with("tls.defaults.tls_min_version: "), "{}", messages[0]);
        assert!(messages[0].contains("m.json:3:4)"), "{}", messages[0]);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let (_dir, result) = load_files_env(
            &[],
            &[("CONSUL_SEC_PORTS__HTTPS", "high"), ("CONSUL_SEC_DATACENTRE", "x")],
        );
        let messages: Vec<String> =
            result.unwrap_err().errors.iter().map(ToString::to_string).collect();
        assert_has(
            &messages,
            "ports.https: expected a port number (0-65535, or -1 to disable), found string \"high\" (in environment variable CONSUL_SEC_PORTS__HTTPS)",
        );
        assert_has(
            &messages,
            "datacentre: invalid config key (in environment variable CONSUL_SEC_DATACENTRE); did you mean \"datacenter\"?",
        );
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LoadOptions {
            flags: Flags {
                data_dir: Some(dir.path().display().to_string()),
                https_port: Some(70000),
                log_level: Some("loud".into()),
                ..Flags::default()
            },
            ..LoadOptions::default()
        };
        let messages: Vec<String> =
            load(&opts, NO_ENV).unwrap_err().errors.iter().map(ToString::to_string).collect();
        assert_has(
            &messages,
            "ports.https: expected a port number (0-65535, or -1 to disable), found number 70000 (in flag -https-port)",
        );
        assert_has(&messages, "log_level: invalid log level \"loud\"");
        assert_has(&messages, "(in flag -log-level)");
    }

    #[test]
    fn encrypt_errors_are_specific_and_never_echo_the_key() {
        let bad = [
            ("this is not a valid key", "invalid base64 character at byte 4"),
            // 20 bytes.
            ("AAECAwQFBgcICQoLDA0ODxAREhM=", "decodes to 20 bytes"),
            // URL-safe alphabet.
            ("pUqJrVyVRj5jsiYEkM_tFQYfWyJIv4s3XkvDwy7Cu5s=", "URL-safe"),
            // base64 of the base64 text of a 16-byte key.
            ("RG5BamRjakRIdkR2d2RTTktXbUV2Zz09", "twice"),
        ];
        for (key, expected) in bad {
            let (_dir, result) = load_files(&[("k.json", &format!("{{\"encrypt\": \"{key}\"}}"))]);
            let failure = result.unwrap_err();
            let text = failure.to_string();
            let debug = format!("{failure:?}");
            assert!(text.contains("encrypt: invalid gossip encryption key (in file "), "{text}");
            assert!(
                text.to_lowercase().contains(&expected.to_lowercase()),
                "{key}: expected {expected:?} in {text}"
            );
            assert!(
                !text.contains(key) && !debug.contains(key),
                "key echoed for {key}: {text} / {debug}"
            );
        }
    }

    #[test]
    fn secrets_are_absent_from_debug_and_provenance() {
        let (dir, paths) = write(&[("k.json", &format!("{{\"encrypt\": \"{DOCS_KEY}\"}}"))]);
        let mut opts = options(&paths, dir.path());
        opts.flags.encrypt = Some(SecretString::from(DOCS_KEY));
        let loaded = load(&opts, NO_ENV).unwrap();
        let everything = format!("{loaded:?}\n{opts:?}\n{}", loaded.render_provenance());
        assert!(!everything.contains(DOCS_KEY), "{everything}");
        let shown = loaded.render_provenance();
        let line = shown.lines().find(|l| l.trim_start().starts_with("encrypt ")).unwrap();
        assert!(line.contains("<set, 32 bytes>") && line.ends_with("<- flag -encrypt"), "{line}");
    }

    #[test]
    fn datacenter_data_dir_and_bootstrap_rules() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let (_d, paths) = write(&[(
            "a.json",
            &format!(
                r#"{{"datacenter": "dc one", "data_dir": "{}", "bootstrap_expect": 3,
                     "advertise_addr": "0.0.0.0", "bind_addr": "{{{{ GetPrivateIP }}}}"}}"#,
                file.display()
            ),
        )]);
        // No -data-dir flag here: the file's data_dir must be the one checked.
        let opts = LoadOptions {
            paths: paths.into_iter().map(ConfigPath::File).collect(),
            ..LoadOptions::default()
        };
        let messages: Vec<String> =
            load(&opts, NO_ENV).unwrap_err().errors.iter().map(ToString::to_string).collect();
        assert_has(
            &messages,
            "datacenter: datacenter can only contain lowercase alphanumeric, - or _ characters. received: \"dc one\"",
        );
        assert_has(
            &messages,
            &format!("data_dir: data_dir \"{}\" is not a directory", file.display()),
        );
        assert_has(&messages, "bootstrap_expect: 'bootstrap_expect > 0' requires 'server = true'");
        assert_has(&messages, "advertise_addr: Advertise address cannot be 0.0.0.0");
        assert_has(&messages, "bind_addr: go-sockaddr templates are not supported");
        assert_eq!(messages.len(), 5, "every error is reported: {messages:#?}");

        let failure = load(&LoadOptions::default(), NO_ENV).unwrap_err();
        assert_eq!(failure.errors.len(), 1);
        assert!(failure.errors[0].to_string().starts_with("data_dir: data_dir cannot be empty"));
    }

    #[test]
    fn a_file_that_does_not_parse_is_not_also_blamed_for_a_missing_data_dir() {
        // data_dir is written in the broken file; only the syntax error is reported.
        let (dir, paths) = write(&[("a.json", r#"{"data_dir": "/tmp", "#)]);
        let options = LoadOptions {
            paths: paths.iter().cloned().map(ConfigPath::File).collect(),
            ..LoadOptions::default()
        };
        let failure = load(&options, NO_ENV).unwrap_err();
        let messages: Vec<String> = failure.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert!(messages[0].starts_with(&format!("{}:1:", dir.path().join("a.json").display())));
        // The same for a file that cannot be read at all.
        let options = LoadOptions {
            paths: vec![ConfigPath::File(dir.path().join("missing.json"))],
            ..LoadOptions::default()
        };
        let failure = load(&options, NO_ENV).unwrap_err();
        assert!(matches!(&failure.errors[..], [Error::Io { .. }]), "{:?}", failure.errors);
    }

    #[test]
    fn port_clash_is_an_error() {
        let messages = errors(&[("p.json", r#"{"ports": {"https": 8500}}"#)]);
        assert_has(&messages, "ports.https: port 8500 is already used by ports.http");
    }
}

mod tls {
    use super::*;

    #[test]
    fn flat_keys_map_into_the_stanza_with_warnings() {
        let loaded = ok(&[(
            "flat.json",
            r#"{"verify_incoming": true, "verify_outgoing": true, "ca_file": "/ca.pem",
                "cert_file": "/c.pem", "key_file": "/k.pem", "verify_incoming_https": false,
                "tls_min_version": "tls12", "tls_prefer_server_cipher_suites": true}"#,
        )]);
        let tls = &loaded.config.tls;
        assert!(tls.internal_rpc.verify_incoming && tls.internal_rpc.verify_outgoing);
        assert!(!tls.https.verify_incoming, "verify_incoming_https maps to tls.https");
        assert!(!tls.grpc.verify_incoming, "flat verify_incoming leaves gRPC off");
        assert_eq!(tls.internal_rpc.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        let w = warnings(&loaded);
        for expected in [
            "The 'verify_incoming' field is deprecated. Use the 'tls.defaults.verify_incoming' field instead.",
            "The 'verify_incoming_https' field is deprecated. Use the 'tls.https.verify_incoming' field instead.",
            "The 'ca_file' field is deprecated. Use the 'tls.defaults.ca_file' field instead.",
            "'tls_min_version' value 'tls12' is deprecated, please specify 'TLSv1_2' instead",
            "The 'tls_min_version' field is deprecated. Use the 'tls.defaults.tls_min_version' field instead.",
            "The 'tls_prefer_server_cipher_suites' field is deprecated and will be ignored.",
        ] {
            assert!(w.contains(&expected), "missing {expected:?} in {w:#?}");
        }
        assert!(
            loaded
                .warnings
                .iter()
                .all(|w| matches!(&w.origin, Some(Origin::File(p)) if p.ends_with("flat.json")))
        );
    }

    #[test]
    fn flat_key_and_stanza_in_one_file_stanza_wins() {
        let loaded = ok(&[(
            "both.hcl",
            "verify_incoming_rpc = false\nca_file = \"/flat.pem\"\ntls {\n  defaults { ca_file = \"/stanza.pem\" }\n  internal_rpc { verify_incoming = true }\n}\n",
        )]);
        let rpc = &loaded.config.tls.internal_rpc;
        assert_eq!(rpc.ca_file.as_deref(), Some(Path::new("/stanza.pem")));
        assert!(rpc.verify_incoming);
        let w = warnings(&loaded);
        assert!(
            w.contains(
                &"The 'ca_file' field is deprecated. Use the 'tls.defaults.ca_file' field instead."
            ),
            "{w:?}"
        );
        assert!(
            w.contains(&"The 'verify_incoming_rpc' field is deprecated. Use the 'tls.internal_rpc.verify_incoming' field instead."),
            "{w:?}"
        );
    }

    #[test]
    fn flat_key_in_a_later_file_overrides_an_earlier_stanza() {
        let loaded = ok(&[
            ("a.hcl", "tls {\n  defaults { ca_file = \"/stanza.pem\" }\n}\n"),
            ("b.json", r#"{"ca_file": "/flat.pem"}"#),
        ]);
        assert_eq!(loaded.config.tls.internal_rpc.ca_file.as_deref(), Some(Path::new("/flat.pem")));
        let rows = &loaded.provenance;
        let row = rows
            .iter()
            .find(|r| r.section.starts_with("Internal RPC") && r.key == "ca_file")
            .unwrap();
        assert_eq!(
            row.note.as_deref(),
            Some("inherited from tls.defaults.ca_file, written as deprecated 'ca_file'")
        );
        assert!(matches!(&row.origin, Origin::File(p) if p.ends_with("b.json")));
    }

    #[test]
    fn verify_server_hostname_implies_verify_outgoing() {
        let loaded = ok(&[(
            "v.hcl",
            "tls {\n  defaults { ca_file = \"/ca.pem\" }\n  internal_rpc { verify_server_hostname = true }\n}\n",
        )]);
        let rpc = &loaded.config.tls.internal_rpc;
        assert!(rpc.verify_server_hostname && rpc.verify_outgoing);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn explicit_verify_outgoing_false_with_hostname_check_is_never_plaintext() {
        let loaded = ok(&[(
            "v.json",
            r#"{"verify_outgoing": false, "verify_server_hostname": true, "ca_file": "/ca.pem"}"#,
        )]);
        let rpc = &loaded.config.tls.internal_rpc;
        assert!(rpc.verify_outgoing, "resolved to TLS on, never silently plaintext");
        let loud: Vec<&str> =
            warnings(&loaded).into_iter().filter(|w| w.contains("CVE-2018-19653")).collect();
        assert_eq!(loud.len(), 1, "{:?}", loaded.warnings);
        assert!(
            loud[0].starts_with("WARNING: tls.internal_rpc.verify_server_hostname is true"),
            "{}",
            loud[0]
        );
        assert!(loud[0].contains("as tls.defaults.verify_outgoing"), "{}", loud[0]);
    }

    #[test]
    fn stanza_legality_errors() {
        let messages = errors(&[(
            "s.hcl",
            "tls {\n defaults { verify_server_hostname = true }\n grpc { verify_outgoing = true }\n https { use_auto_cert = true }\n}\n",
        )]);
        assert_has(
            &messages,
            "tls.defaults.verify_server_hostname: verify_server_hostname is only valid in the tls.internal_rpc stanza (in file ",
        );
        assert_has(
            &messages,
            "tls.grpc.verify_outgoing: verify_outgoing is not valid in the tls.grpc stanza",
        );
        assert_has(
            &messages,
            "tls.https.use_auto_cert: use_auto_cert is only valid in the tls.grpc stanza",
        );
    }

    #[test]
    fn old_version_spelling_is_rejected_in_the_stanza() {
        let messages =
            errors(&[("v.hcl", "tls {\n defaults { tls_min_version = \"tls12\" }\n}\n")]);
        assert_has(
            &messages,
            "tls.defaults.tls_min_version: invalid TLS version: no matching TLS version found for tls12, please specify one of [TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3]",
        );
    }

    #[test]
    fn tls_1_0_is_refused_because_rustls_lacks_it() {
        let messages = errors(&[("v.hcl", "tls {\n https { tls_min_version = \"TLSv1_0\" }\n}\n")]);
        assert_has(&messages, "tls.https.tls_min_version: ");
        assert_has(&messages, "TLSv1_0");
    }

    #[test]
    fn cipher_suite_rules() {
        let messages = errors(&[(
            "c.hcl",
            "tls {\n defaults {\n  tls_min_version = \"TLSv1_3\"\n  tls_cipher_suites = \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"\n }\n https { tls_cipher_suites = \"TLS_RSA_WITH_AES_128_GCM_SHA256\" }\n}\n",
        )]);
        assert_has(
            &messages,
            "tls.defaults.tls_cipher_suites: TLS 1.3 cipher suites are not configurable",
        );
        assert_has(
            &messages,
            "tls.https.tls_cipher_suites: invalid TLS cipher suites: no matching Consul Agent TLS cipher suite found for TLS_RSA_WITH_AES_128_GCM_SHA256",
        );

        // Inherited suites are dropped silently for a TLS 1.3 protocol.
        let loaded = ok(&[(
            "c.hcl",
            "tls {\n defaults { tls_cipher_suites = \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\" }\n https { tls_min_version = \"TLSv1_3\" }\n}\n",
        )]);
        assert!(loaded.config.tls.https.tls_cipher_suites.is_empty());
        assert_eq!(
            loaded.config.tls.internal_rpc.tls_cipher_suites,
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
    }

    #[test]
    fn missing_ca_is_warned_before_the_agent_refuses_to_start() {
        let loaded = ok(&[("o.json", r#"{"tls": {"internal_rpc": {"verify_outgoing": true}}}"#)]);
        assert!(
            warnings(&loaded).iter().any(|w| w.starts_with(
                "tls.internal_rpc: verify_outgoing is on but neither ca_file nor ca_path is set"
            )),
            "{:?}",
            loaded.warnings
        );
    }
}

mod provenance {
    use super::*;

    #[test]
    fn each_value_names_its_source() {
        let (dir, paths) = write(&[(
            "a.json",
            r#"{"tls": {"defaults": {"ca_file": "/ca.pem", "verify_outgoing": true}}}"#,
        )]);
        let mut opts = options(&paths, dir.path());
        opts.flags.encrypt = Some(SecretString::from(DOCS_KEY));
        let loaded =
            load(&opts, [("CONSUL_SEC_TLS__INTERNAL_RPC__VERIFY_INCOMING", "false")]).unwrap();
        let find = |section: &str, key: &str| {
            loaded
                .provenance
                .iter()
                .find(|r| r.section.starts_with(section) && r.key == key)
                .unwrap()
                .clone()
        };
        let ca = find("Internal RPC", "ca_file");
        assert_eq!(ca.value, "/ca.pem");
        assert_eq!(ca.origin, Origin::File(paths[0].clone()));
        assert_eq!(ca.note.as_deref(), Some("inherited from tls.defaults.ca_file"));
        let vi = find("Internal RPC", "verify_incoming");
        assert_eq!(vi.origin, Origin::Env("CONSUL_SEC_TLS__INTERNAL_RPC__VERIFY_INCOMING".into()));
        assert_eq!(find("Internal RPC", "tls_min_version").origin, Origin::Default);
        let key = find("Gossip", "encrypt");
        assert_eq!(key.value, "<set, 32 bytes>");
        assert_eq!(key.origin, Origin::Flag("-encrypt".into()));
        assert_eq!(find("Gossip", "encrypt_verify_incoming").origin, Origin::Default);
    }
}

/// `limits`: Consul's defaults, then files (JSON and HCL), the environment,
/// and type errors naming the key.
#[test]
fn connection_limits() {
    let loaded = ok(&[]);
    let limits = loaded.config.agent.limits;
    assert_eq!((limits.http_max_conns_per_client, limits.rpc_max_conns_per_client), (200, 100));

    let loaded = ok(&[("a.hcl", "limits { rpc_max_conns_per_client = 7 }\n")]);
    let limits = loaded.config.agent.limits;
    assert_eq!((limits.http_max_conns_per_client, limits.rpc_max_conns_per_client), (200, 7));

    let (_dir, result) = load_files_env(
        &[("a.json", r#"{"limits": {"http_max_conns_per_client": 0}}"#)],
        &[("CONSUL_SEC_LIMITS__RPC_MAX_CONNS_PER_CLIENT", "3")],
    );
    let limits = result.unwrap().config.agent.limits;
    assert_eq!((limits.http_max_conns_per_client, limits.rpc_max_conns_per_client), (0, 3));

    let messages = errors(&[(
        "a.json",
        r#"{"limits": {"http_max_conns_per_client": -1, "rpc_max_conns": 1}}"#,
    )]);
    assert_has(
        &messages,
        "limits.http_max_conns_per_client: expected a non-negative integer, found",
    );
    assert_has(&messages, "limits.rpc_max_conns: invalid config key");
}
