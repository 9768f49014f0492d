//! Artifact loading keeps the promises of the guide's Security page: the file's size is
//! checked before it is read (a sparse 3 GiB file is refused at once), the decoder's byte
//! limit follows the payload length the header announces (a 77-byte file cannot make the
//! loader reserve a gigabyte, even with memory capped by `ulimit -v`), and duplicate-name
//! checks are linear (a 100k-feature artifact loads fast).

use std::process::Command;
use std::time::{Duration, Instant};

use sha2::Digest;
use wharf_core::artifact::{decode, encode, HEADER_LEN};
use wharf_core::{ArtifactError, FileRegistry, Model, RegistryPort, Selector, WharfError};
use wharf_ml::{datasets, Trainer};

/// The variable that makes [`load_in_child`] load something instead of returning at once.
const CHILD: &str = "WHARF_TEST_ARTIFACT_CHILD";
/// The address space the child gets: enough for the test binary, far below the gigabyte a
/// fixed decoder limit would reserve and the 3 GiB file a read-then-check would hold.
const CHILD_MEMORY_KIB: u64 = 768 * 1024;

/// A valid header (from a real artifact) announcing `payload`, followed by it.
fn artifact_with_payload(payload: &[u8]) -> Vec<u8> {
    let model = Trainer::logistic_regression().fit(&datasets::iris()).expect("fit");
    let mut bytes = encode(&model).expect("encode")[..HEADER_LEN].to_vec();
    bytes[28..36].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let digest = sha2::Sha256::digest(payload);
    bytes[36..68].copy_from_slice(&digest);
    bytes.extend_from_slice(payload);
    bytes
}

/// Runs [`load_in_child`] in this test binary under `ulimit -v`, and returns its report
/// line. The child aborting (what an allocation the limit refuses does) fails the test.
fn load_under_memory_limit(what: &str) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let script =
        format!("ulimit -v {CHILD_MEMORY_KIB} && exec \"$0\" load_in_child --exact --nocapture --test-threads=1");
    let out = Command::new("sh").arg("-c").arg(script).arg(exe).env(CHILD, what).output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child loading {what} under ulimit -v died ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.find("CHILD-RESULT").map(|at| l[at..].to_string()))
        .unwrap_or_else(|| panic!("no report: {stdout}"))
}

/// Not a test of its own: the child process of [`load_under_memory_limit`]. Loads the file
/// (or `registry:<root>|<name>`) named by [`CHILD`] and prints what came back.
#[test]
fn load_in_child() {
    let Ok(what) = std::env::var(CHILD) else { return };
    wharf_ml::register();
    let result = match what.strip_prefix("registry:").and_then(|r| r.split_once('|')) {
        Some((root, name)) => FileRegistry::new(root).load_selected(name, &Selector::Latest),
        None => Model::load(&what),
    };
    match result {
        Err(WharfError::Artifact { kind, .. }) => println!("CHILD-RESULT typed {kind:?}"),
        other => println!("CHILD-RESULT other {:?}", other.map(|m| m.kind_id().to_string())),
    }
}

#[test]
fn the_77_byte_bomb_is_a_typed_error_under_a_memory_limit() {
    // One feature whose name announces a 1 GiB string, in a 9-byte payload: a decoder whose
    // limit is a fixed gigabyte reserves it before reading.
    let mut payload = vec![1u8, 0xFC];
    payload.extend_from_slice(&((1u32 << 30) - 1024).to_le_bytes());
    payload.extend_from_slice(b"abc");
    let bytes = artifact_with_payload(&payload);
    assert_eq!(bytes.len(), 77);
    assert!(matches!(decode(&bytes), Err(ArtifactError::Decode(_))), "{:?}", decode(&bytes).map(|_| ()));

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bomb.wharf");
    std::fs::write(&path, &bytes).expect("write");
    let report = load_under_memory_limit(path.to_str().expect("utf-8 path"));
    assert!(report.starts_with("CHILD-RESULT typed Decode"), "{report}");
}

#[test]
fn a_sparse_3_gib_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = FileRegistry::new(dir.path().join("registry"));
    let model = Trainer::logistic_regression().fit(&datasets::iris()).expect("fit");
    registry.register(&model, "big").expect("register");
    let file = dir.path().join("registry/big/versions/1/model.wharf");
    let sparse = std::fs::OpenOptions::new().write(true).open(&file).expect("open");
    sparse.set_len(3 << 30).expect("grow, sparsely");
    drop(sparse);

    let started = Instant::now();
    for what in [format!("registry:{}|big", dir.path().join("registry").display()), file.display().to_string()] {
        let report = load_under_memory_limit(&what);
        assert!(report.starts_with("CHILD-RESULT typed Oversized"), "{what}: {report}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "refused at once: {:?}", started.elapsed());
}

#[test]
fn a_100k_feature_artifact_loads_in_linear_time() {
    let n = 100_000;
    let names: Vec<String> = (0..n).map(|i| format!("feature_{i}")).collect();
    let json = serde_json::json!({
        "coef": vec![0.001; n],
        "intercept": 0.0,
        "classes": [0, 1],
        "feature_names": names,
    });
    let started = Instant::now();
    let model = wharf_ml::import::sklearn_logistic_json(&json.to_string()).expect("import");
    let bytes = encode(&model).expect("encode");
    let loaded = decode(&bytes).expect("decode");
    assert_eq!(loaded.signature().features.len(), n);
    // Quadratic checks took half a minute here; linear ones take well under a second in a
    // release build. The bound leaves room for a debug build on a busy machine.
    assert!(started.elapsed() < Duration::from_secs(15), "import + save + load took {:?}", started.elapsed());

    // A duplicate name is still found, and named.
    let mut dup = names_with_duplicate(n);
    dup.truncate(n);
    let json = serde_json::json!({"coef": vec![0.0; n], "intercept": 0.0, "classes": [0, 1], "feature_names": dup});
    let err = wharf_ml::import::sklearn_logistic_json(&json.to_string()).expect_err("duplicate");
    assert!(err.to_string().contains(&format!("feature_names[{}]", n - 1)), "{err}");
}

fn names_with_duplicate(n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("feature_{i}")).collect();
    names[n - 1] = "feature_7".to_string();
    names
}
