//! Shared helpers: the shared folder, vector files, the Go tool.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use consul_sec_gossip_crypto::SecretKey;

/// `../shared` beside the repository, or `CONSUL_SEC_SHARED`.
pub(crate) fn shared_dir() -> PathBuf {
    match std::env::var_os("CONSUL_SEC_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

pub(crate) fn read_vectors(name: &str) -> serde_json::Value {
    let path = shared_dir().join("vectors").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

pub(crate) fn key(b64: &str) -> SecretKey {
    SecretKey::from_base64(b64).unwrap_or_else(|err| panic!("vector key: {err}"))
}

pub(crate) fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|err| panic!("bad hex in vector: {err}"))
}

fn interop_required() -> bool {
    std::env::var("CONSUL_SEC_INTEROP").is_ok_and(|v| v == "1")
}

/// `true` if a real peer tool can be used; prints why not otherwise, and
/// fails instead when `CONSUL_SEC_INTEROP=1`.
pub(crate) fn require_tool(name: &str, available: bool, why: &str) -> bool {
    if available {
        return true;
    }
    assert!(!interop_required(), "CONSUL_SEC_INTEROP=1 but {name} is unavailable: {why}");
    // Written straight to stderr: the test harness captures `eprintln!`,
    // and the reason should show in CI logs even when the test passes.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipping: {name} is unavailable: {why}");
    false
}

/// The Go `memberlist-crypto` tool: `CONSUL_SEC_MEMBERLIST_CRYPTO`, or built
/// once per test binary with its `build.sh` into a temporary directory.
/// `Err` says why it is not available.
pub(crate) fn memberlist_crypto() -> Result<PathBuf, String> {
    static TOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        if let Some(path) = std::env::var_os("CONSUL_SEC_MEMBERLIST_CRYPTO") {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!("CONSUL_SEC_MEMBERLIST_CRYPTO={} is not a file", path.display()))
            };
        }
        let go = Command::new("go").arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !go.is_ok_and(|s| s.success()) {
            return Err("`go` is not installed (apt-get install golang-go golang-github-hashicorp-memberlist-dev)".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("memberlist-crypto-")
            .tempdir()
            .map_err(|err| format!("temp dir: {err}"))?
            // Kept for the life of the test binary; it is in the temp folder.
            .keep();
        let out = dir.join("memberlist-crypto");
        let script = shared_dir().join("tools/memberlist-crypto/build.sh");
        let built = Command::new("sh")
            .arg(&script)
            .arg(&out)
            .output()
            .map_err(|err| format!("{}: {err}", script.display()))?;
        if !built.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&built.stderr).trim()
            ));
        }
        Ok(out)
    })
    .clone()
}

/// Runs the Go tool with `args`, hex `input` on stdin; returns the trimmed
/// stdout on success or stderr on failure.
pub(crate) fn run_tool(
    tool: &std::path::Path,
    args: &[&str],
    input: &[u8],
) -> Result<String, String> {
    use std::io::Write as _;
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{}: {err}", tool.display()));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(hex::encode(input).as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
