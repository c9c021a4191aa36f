//! The keyring file (issue 2, point 5).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use consul_sec_gossip_crypto::{
    Error, KeySize, Keyring, SecretKey, load_keyring_file, save_keyring_file,
};

const K1: &str = "fMP6tyHHM+k+nfIar+v3n1WWQR1Cc/0l6L4shMK/O7Y=";
const K2: &str = "cotiusTxprTzCd66c8eIaqe/GjgFd7w7RPum09ef9+M=";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn loads_serf_format_primary_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "local.keyring", &format!("[\n  \"{K1}\",\n  \"{K2}\"\n]"));
    let ring = load_keyring_file(&path).unwrap();
    let keys: Vec<String> = ring.keys().iter().map(|k| k.to_base64().as_str().to_owned()).collect();
    assert_eq!(keys, [K1, K2]);
    // Consul's compact form loads too.
    let path = write(&dir, "compact", &format!("[\"{K2}\"]"));
    assert_eq!(
        load_keyring_file(&path).unwrap().primary_key(),
        Some(SecretKey::from_base64(K2).unwrap())
    );
}

#[test]
fn saves_like_serf_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.keyring");
    let ring = Keyring::new(
        [SecretKey::from_base64(K2).unwrap()],
        Some(SecretKey::from_base64(K1).unwrap()),
    )
    .unwrap();
    save_keyring_file(&path, &ring).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("[\n  \"{K1}\",\n  \"{K2}\"\n]"));
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o600);
    assert_eq!(load_keyring_file(&path).unwrap().keys(), ring.keys());
    // Replacing a 0644 file also leaves 0600, and no temporary file behind.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    ring.use_key(&SecretKey::from_base64(K2).unwrap()).unwrap();
    save_keyring_file(&path, &ring).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        load_keyring_file(&path).unwrap().primary_key(),
        Some(SecretKey::from_base64(K2).unwrap())
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn mode_is_0600_whatever_the_umask() {
    // The umask is per process: save from a child run of this test binary
    // (`save_from_child_process` below) started under each umask.
    for umask in ["0000", "0022", "0277"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("umask.keyring");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask} && exec \"$0\" --exact file::save_from_child_process --quiet"
            ))
            .arg(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "child under umask {umask}: {status}");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "umask {umask}");
        assert_eq!(load_keyring_file(&path).unwrap().len(), 1);
    }
}

const CHILD_ENV: &str = "CONSUL_SEC_TEST_SAVE_KEYRING_TO";

/// Only does something when started by `mode_is_0600_whatever_the_umask`.
#[test]
fn save_from_child_process() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let ring = Keyring::new([], Some(SecretKey::generate(KeySize::Aes256).unwrap())).unwrap();
    save_keyring_file(path, &ring).unwrap();
}

fn load_err(text: &str) -> (std::path::PathBuf, Error) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.keyring", text);
    let err = load_keyring_file(&path).unwrap_err();
    // The file is never touched by a failed load.
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    (path, err)
}

#[test]
fn bad_files_name_the_path_and_the_problem() {
    let (path, err) = load_err("[\"abc");
    assert!(matches!(err, Error::KeyringFileJson { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
    assert!(err.to_string().contains("not valid JSON"), "{err}");

    let (_, err) = load_err(&format!("{{\"keys\": [\"{K1}\"]}}"));
    assert!(
        matches!(&err, Error::KeyringFileShape { found, .. } if found == "found an object"),
        "{err:?}"
    );

    let (_, err) = load_err(&format!("[\"{K1}\", 7]"));
    assert!(
        matches!(&err, Error::KeyringFileShape { found, .. } if found == "entry 1 is a number"),
        "{err:?}"
    );

    let (path, err) = load_err(&format!("[\"{K1}\", \"{K2}\", \"QCDsDFq6Qtwx0DJlnwA+Yonh0nU=\"]"));
    match &err {
        Error::KeyringFileKey { index: 2, source, path: p } => {
            assert_eq!(p, &path);
            assert!(matches!(**source, Error::KeySize { len: 20 }), "{source:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("{}: keyring file entry 2 is not a valid key", path.display())
    );
    assert!(!format!("{err:?}").contains("QCDsDFq6"), "{err:?}");

    let (path, err) = load_err("[]");
    assert!(matches!(err, Error::KeyringFileEmpty { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{}: no keys present in keyring", path.display()));

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.keyring");
    let err = load_keyring_file(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::KeyringFileRead { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(err.to_string().contains("missing.keyring"), "{err}");
}

#[test]
fn a_failed_save_leaves_the_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "local.keyring", &format!("[\"{K1}\"]"));
    let before = fs::read(&path).unwrap();

    // An empty ring is refused before anything is written.
    let err = save_keyring_file(&path, &Keyring::empty()).unwrap_err();
    assert!(matches!(err, Error::EmptyKeyring), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), before);

    // The rename fails (the target is a non-empty directory): no temporary
    // file is left behind and nothing else in the directory changes.
    let target = dir.path().join("is-a-dir");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("inside"), b"x").unwrap();
    let ring = Keyring::new([], Some(SecretKey::from_base64(K2).unwrap())).unwrap();
    let err = save_keyring_file(&target, &ring).unwrap_err();
    assert!(matches!(err, Error::KeyringFileWrite { step: "rename", .. }), "{err:?}");
    let mut names: Vec<_> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["is-a-dir", "local.keyring"]);
    assert_eq!(fs::read(&path).unwrap(), before);

    // The directory cannot hold the temporary file (its parent is a file).
    let err = save_keyring_file(path.join("sub.keyring"), &ring).unwrap_err();
    assert!(
        matches!(err, Error::KeyringFileWrite { step: "create temporary file", .. }),
        "{err:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), before);
}
