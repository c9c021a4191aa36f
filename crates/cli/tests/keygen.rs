//! `consul-sec keygen` end to end: the binary as a user runs it.

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

fn keygen(args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("consul-sec").expect("binary built").arg("keygen").args(args).assert()
}

/// Decodes the single output line and returns the key length in bytes.
fn decoded_len(stdout: &[u8]) -> usize {
    let text = std::str::from_utf8(stdout).expect("utf-8 output");
    assert!(text.ends_with('\n'), "output ends with a newline like consul keygen: {text:?}");
    assert_eq!(text.lines().count(), 1, "exactly one line: {text:?}");
    STANDARD.decode(text.trim_end()).expect("standard base64 with padding").len()
}

#[test]
fn default_is_32_bytes_like_current_consul() {
    let out = keygen(&[]).success().get_output().stdout.clone();
    assert_eq!(out.len(), 44 + 1, "44 base64 characters and a newline");
    assert_eq!(decoded_len(&out), 32);
}

#[test]
fn bytes_flag_in_both_styles() {
    for (args, len) in [
        (&["-bytes=16"][..], 16),
        (&["-bytes", "24"][..], 24),
        (&["--bytes", "16"][..], 16),
        (&["--bytes=32"][..], 32),
    ] {
        let out = keygen(args).success().get_output().stdout.clone();
        assert_eq!(decoded_len(&out), len, "args {args:?}");
    }
}

#[test]
fn keys_are_fresh_each_time() {
    let a = keygen(&[]).success().get_output().stdout.clone();
    let b = keygen(&[]).success().get_output().stdout.clone();
    assert_ne!(a, b);
}

#[test]
fn bad_size_is_a_usage_error() {
    keygen(&["-bytes=20"]).code(2).stdout("").stderr(predicates::str::contains("use 16, 24 or 32"));
    keygen(&["-bytes=abc"]).code(2).stdout("");
}

#[test]
fn stray_argument_is_a_usage_error() {
    keygen(&["extra"]).code(2).stdout("");
    keygen(&["-unknown-flag"]).code(2).stdout("");
}

#[test]
fn help_marks_the_consul_sec_addition() {
    let out = keygen(&["-help"]).success().get_output().stdout.clone();
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("Generates a new encryption key"), "{text}");
    assert!(text.contains("consul-sec addition"), "{text}");
}

#[test]
fn no_subcommand_is_a_usage_error() {
    Command::cargo_bin("consul-sec").expect("binary built").assert().code(2);
}
