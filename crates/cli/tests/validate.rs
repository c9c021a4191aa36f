//! `consul-sec validate` end to end: files and directories given on the
//! command line, run in a temporary working directory with a clean
//! environment (no stray `CONSUL_SEC_*` variables).

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

/// The example key of Consul's gossip encryption documentation.
const DOCS_KEY: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";

fn validate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("consul-sec")
        .expect("binary built")
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .arg("validate")
        .args(args)
        .assert()
}

fn setup(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("data")).expect("data dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("parent");
        }
        fs::write(path, text).expect("write");
    }
    dir
}

fn output(assert: &assert_cmd::assert::Assert) -> (String, String) {
    let out = assert.get_output();
    (
        String::from_utf8(out.stdout.clone()).expect("utf-8"),
        String::from_utf8(out.stderr.clone()).expect("utf-8"),
    )
}

#[test]
fn valid_directory_with_json_hcl_and_readme() {
    let dir = setup(&[
        ("conf/a.json", r#"{"data_dir": "data", "datacenter": "a"}"#),
        ("conf/b.hcl", "datacenter = \"b\"\n"),
        ("conf/README.md", "# notes\n"),
    ]);
    let assert = validate(dir.path(), &["conf"], &[]).success();
    let (stdout, stderr) = output(&assert);
    assert_eq!(stdout, "Configuration is valid!\n");
    assert_eq!(
        stderr,
        "warning: skipping file conf/README.md, extension must be .hcl or .json, or config format must be set\n"
    );
}

#[test]
fn quiet_prints_nothing_on_success() {
    let dir = setup(&[("a.json", r#"{"data_dir": "data"}"#)]);
    validate(dir.path(), &["-quiet", "a.json"], &[]).success().stdout("").stderr("");
}

#[test]
fn no_paths_is_an_error() {
    let dir = setup(&[]);
    validate(dir.path(), &[], &[])
        .code(1)
        .stdout("")
        .stderr("Error: Must specify at least one config file or directory\n");
}

#[test]
fn every_error_is_printed() {
    let dir = setup(&[
        ("a.json", r#"{"bogus_key": 1, "encrpyt": "x", "ports": {"https": "high"}}"#),
        ("b.hcl", "tls {\n  defaults { verify_server_hostname = true }\n}\n"),
    ]);
    let assert = validate(dir.path(), &["a.json", "b.hcl"], &[]).code(1).stdout("");
    let (_, stderr) = output(&assert);
    assert!(stderr.contains("Error: Config validation failed: 5 errors occurred:"), "{stderr}");
    for expected in [
        "\t* bogus_key: invalid config key (in file a.json:1:3)\n",
        "\t* encrpyt: invalid config key (in file a.json:1:19); did you mean \"encrypt\"?\n",
        "\t* ports.https: expected a port number (0-65535, or -1 to disable), found string \"high\" (in file a.json:1:45)\n",
        // validate has no -data-dir flag; the message must not suggest one.
        "\t* data_dir: data_dir cannot be empty: set it in a file, with CONSUL_SEC_DATA_DIR or with the agent's -data-dir flag\n",
        "\t* tls.defaults.verify_server_hostname: verify_server_hostname is only valid in the tls.internal_rpc stanza (in file b.hcl:2:14)",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn config_format_forces_the_parser() {
    let dir = setup(&[("agent.conf", "data_dir = \"data\"\n")]);
    validate(dir.path(), &["agent.conf"], &[]).code(1).stderr(contains(
        "file agent.conf has unknown extension; must be .hcl or .json, or config format must be set",
    ));
    validate(dir.path(), &["-config-format=hcl", "agent.conf"], &[])
        .success()
        .stdout("Configuration is valid!\n");
    validate(dir.path(), &["-config-format", "yaml", "agent.conf"], &[])
        .code(1)
        .stderr(contains("-config-format must be either 'hcl' or 'json'"));
}

#[test]
fn environment_is_applied_as_the_agent_would() {
    let dir = setup(&[("a.hcl", "server = true\n")]);
    validate(dir.path(), &["a.hcl"], &[]).code(1).stderr(contains("data_dir cannot be empty"));
    validate(dir.path(), &["a.hcl"], &[("CONSUL_SEC_DATA_DIR", "data")]).success();
}

#[test]
fn bad_key_is_explained_without_echoing_it() {
    let url_safe = DOCS_KEY.replace('/', "_");
    let dir = setup(&[("k.json", &format!(r#"{{"data_dir": "data", "encrypt": "{url_safe}"}}"#))]);
    let assert = validate(dir.path(), &["k.json"], &[]).code(1);
    let (stdout, stderr) = output(&assert);
    assert!(
        stderr.contains("encrypt: invalid gossip encryption key (in file k.json:1:23): "),
        "{stderr}"
    );
    assert!(stderr.contains("URL-safe"), "{stderr}");
    assert!(!stdout.contains(&url_safe) && !stderr.contains(&url_safe), "key echoed: {stderr}");
}

#[test]
fn show_prints_settings_with_their_sources() {
    let dir = setup(&[
        (
            "conf/a.json",
            &format!(
                r#"{{"data_dir": "data", "encrypt": "{DOCS_KEY}", "verify_outgoing": true, "ca_file": "/etc/consul/ca.pem"}}"#
            ),
        ),
        (
            "conf/b.hcl",
            "encrypt_verify_incoming = false\ntls {\n  internal_rpc {\n    verify_server_hostname = true\n  }\n  https { tls_min_version = \"TLSv1_3\" }\n}\n",
        ),
    ]);
    let assert = validate(
        dir.path(),
        &["-show", "conf"],
        &[("CONSUL_SEC_TLS__INTERNAL_RPC__VERIFY_INCOMING", "false")],
    )
    .success();
    let (stdout, stderr) = output(&assert);
    assert!(!stdout.contains(DOCS_KEY) && !stderr.contains(DOCS_KEY));
    assert!(stdout.ends_with("Configuration is valid!\n"));
    assert!(stderr.contains(
        "The 'ca_file' field is deprecated. Use the 'tls.defaults.ca_file' field instead."
    ));
    insta::assert_snapshot!(stdout);
}

#[test]
fn hcl1_forms_get_a_rewrite_hint() {
    let dir = setup(&[("old.hcl", "data_dir = \"data\"\nports { https = 8501, dns = 8600 }\n")]);
    validate(dir.path(), &["old.hcl"], &[]).code(1).stdout("").stderr(
        contains("old.hcl:2:")
            .and(contains("failed to parse HCL"))
            .and(contains("or use an object value: `ports = { https = 8501, dns = 8600 }`")),
    );
}

#[test]
fn help_marks_the_consul_sec_addition() {
    let dir = setup(&[]);
    validate(dir.path(), &["--help"], &[]).success().stdout(
        contains("-show").and(contains("[consul-sec addition]")).and(contains("FILE_OR_DIRECTORY")),
    );
}
