//! `wharf lineage replay`: spooled OpenLineage events are sent, the spool empties.

use std::process::{Command, Output};

fn wharf(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("WHARF_") || key_text.starts_with("OPENLINEAGE_") {
            cmd.env_remove(key);
        }
    }
    cmd.output().expect("run wharf")
}

#[cfg(feature = "openlineage")]
#[test]
fn replay_sends_spooled_events_through_the_configured_transport() {
    use wharf::openlineage::OpenLineageEmitter;
    use wharf::{LineageEvent, LineagePort};

    let dir = tempfile::tempdir().expect("tempdir");
    // Spool one event: a receiver where nothing listens, lenient policy.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    drop(listener);
    let mut config = wharf::openlineage::OpenLineageConfig::default();
    config.url = Some(dead);
    config.retries = 0;
    config.spool_path = dir.path().join("spool.jsonl");
    OpenLineageEmitter::from_config(&config).expect("emitter").emit(&LineageEvent::new("train-x")).expect("spooled");
    config.url = None;
    assert!(dir.path().join("spool.jsonl").is_file());

    // Replay through the file transport the configuration names.
    std::fs::write(
        dir.path().join("wharf.toml"),
        "[lineage.openlineage]\ntransport = \"file\"\npath = \"events.jsonl\"\nspool_path = \"spool.jsonl\"\n",
    )
    .expect("write");
    let out = wharf(dir.path(), &["--json", "lineage", "replay"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((report["sent"].as_u64(), report["remaining"].as_u64()), (Some(1), Some(0)));
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).expect("events");
    assert!(events.contains("\"name\":\"train-x\""), "{events}");
}

#[cfg(not(feature = "openlineage"))]
#[test]
fn replay_without_the_feature_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = wharf(dir.path(), &["lineage", "replay"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("openlineage"));
}
