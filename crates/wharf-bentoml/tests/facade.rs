//! `serving.backend = "bentoml"` through `Wharf::from_config`.

mod common;

use wharf::{ModelServerPort, Records, Wharf, WharfConfig, WharfError};

#[test]
fn missing_url_is_a_config_error_naming_the_key() {
    let config = WharfConfig::from_toml_str("[serving]\nbackend = \"bentoml\"\n").expect("config");
    match Wharf::from_config(config) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "serving.bentoml.url"),
        other => panic!("expected a Config error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn configured_bentoml_serves_through_the_facade() {
    let Some(url) = common::bentoml_url() else { return };
    let toml = format!(
        "[serving]\nbackend = \"bentoml\"\n[serving.bentoml]\nurl = \"{url}\"\npayload = \"matrix\"\nmax_batch = 50\n"
    );
    let ctx = Wharf::from_config(WharfConfig::from_toml_str(&toml).expect("config")).expect("wharf");
    let server = ctx.model_server();
    assert_eq!(server.name(), "bentoml");
    let model = common::iris_model();
    let records = Records::Rows(model.metadata().sample_input.clone());
    server.load(model).expect("load");
    assert!(server.ready());
    let predictions = server.predict(&records).expect("predict");
    assert_eq!(predictions.display(0), "setosa");
}

#[test]
fn every_bentoml_key_can_come_from_the_environment() {
    let env = [
        ("WHARF_SERVING__BENTOML__URL", "http://127.0.0.1:3000"),
        ("WHARF_SERVING__BENTOML__PAYLOAD", "records"),
        ("WHARF_SERVING__BENTOML__INPUT_FIELD", "records"),
        ("WHARF_SERVING__BENTOML__PROBA_API", ""),
        ("WHARF_SERVING__BENTOML__RETRIES", "0"),
        ("WHARF_SERVING__BENTOML__BREAKER_FAILURES", "3"),
        ("WHARF_SERVING__BENTOML__BREAKER_COOLDOWN_MS", "1500"),
        ("WHARF_SERVING__BENTOML__AUTH_HEADER", "Authorization: Bearer t0ken"),
    ];
    let dir = std::env::temp_dir().join(format!("wharf-bentoml-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = WharfConfig::load_from(&dir, env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("config");
    let b = &wharf::bentoml::BentoMlConfig::from_wharf(&config).expect("serving.bentoml");
    assert_eq!(b.payload, wharf::bentoml::BentoMlPayload::Records);
    assert_eq!((b.input_field.as_str(), b.proba_api.as_str()), ("records", ""));
    assert_eq!((b.retries, b.breaker_failures, b.breaker_cooldown_ms), (0, 3, 1500));
    assert_eq!(b.auth_header.as_deref(), Some("Authorization: Bearer t0ken"));
    assert!(!config.to_toml_masked().contains("t0ken"), "the auth header is masked in printed configuration");
}
