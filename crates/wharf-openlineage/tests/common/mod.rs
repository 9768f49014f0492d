//! A validating OpenLineage receiver on 127.0.0.1:0, in-process (tiny_http in a thread).
//!
//! It behaves like a real backend: `POST /api/v1/lineage` → 201 when the event validates
//! against the official 2-0-2 schema (with format checking) and every facet whose
//! `_schemaURL` it knows (the spec's facet files and Wharf's `wharf_model` schema); 400 with
//! the errors when not; 401 on a wrong bearer token; 415 on a non-JSON content type; it
//! gunzips `Content-Encoding: gzip`. It records accepted events and request headers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// Where the official schemas are: `WHARF_TEST_OPENLINEAGE_SPEC_DIR`, else
/// `shared/openlineage-spec` beside the repository's directory.
///
/// The schemas are OpenLineage's, not this repository's, so a fresh clone does not have them:
/// then these tests skip, with one `skipped:` line for the whole test binary (not one per
/// test), and return `None`. Under `CI=true` the spec must be there, and its absence fails the
/// test instead. (`WHARF_TEST_REQUIRE_BACKENDS=1`, which `cargo xtask test` sets, does not
/// require it: the xtask can start backends, but it cannot conjure files from outside.)
pub fn spec_dir_or_skip(test: &str) -> Option<PathBuf> {
    static SKIP_SAID: std::sync::Once = std::sync::Once::new();
    let dir = std::env::var_os("WHARF_TEST_OPENLINEAGE_SPEC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/openlineage-spec"));
    if dir.join("OpenLineage.json").is_file() {
        return Some(dir);
    }
    let where_ = format!(
        "the official OpenLineage JSON schemas are not at {} (set WHARF_TEST_OPENLINEAGE_SPEC_DIR to a \
         directory holding OpenLineage.json and facets/, from the spec/ folder of the OpenLineage repository)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {where_}; they are required when CI=true");
    }
    SKIP_SAID.call_once(|| println!("skipped: the OpenLineage schema tests: {where_}"));
    None
}

/// The official core schema, facet schemas and Wharf's own facet schema, compiled.
pub struct Schemas {
    registry: jsonschema::Registry<'static>,
    core_id: String,
    /// Facet schema `$id` → its file's JSON (for the spec's example documents).
    pub facets: HashMap<String, Value>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn id_of(schema: &Value) -> String {
    schema["$id"].as_str().expect("schema $id").trim_end_matches('#').to_string()
}

impl Schemas {
    pub fn load(dir: &std::path::Path) -> Schemas {
        let core = read_json(&dir.join("OpenLineage.json"));
        let core_id = id_of(&core);
        let mut resources = vec![(core_id.clone(), core)];
        let mut facets = HashMap::new();
        let mut paths: Vec<_> = std::fs::read_dir(dir.join("facets"))
            .expect("facets dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let wharf: Value =
            serde_json::from_str(wharf_openlineage::facets::WHARF_MODEL_FACET_SCHEMA).expect("wharf schema");
        for schema in paths.iter().map(|p| read_json(p)).chain([wharf]) {
            let id = id_of(&schema);
            facets.insert(id.clone(), schema.clone());
            resources.push((id, schema));
        }
        let mut builder = jsonschema::Registry::new();
        for (id, schema) in resources {
            builder = builder.add(id, schema).expect("add schema");
        }
        let registry = builder.prepare().expect("registry");
        Schemas { registry, core_id, facets, validators: Mutex::new(HashMap::new()) }
    }

    /// A validator (format checking on) for `{"$ref": reference}`, cached.
    pub fn validator(&self, reference: &str) -> Arc<jsonschema::Validator> {
        let mut cache = self.validators.lock().expect("lock");
        if let Some(v) = cache.get(reference) {
            return v.clone();
        }
        let v = Arc::new(
            jsonschema::options()
                .should_validate_formats(true)
                .with_registry(&self.registry)
                .build(&json!({ "$ref": reference }))
                .unwrap_or_else(|e| panic!("validator for {reference}: {e}")),
        );
        cache.insert(reference.to_string(), v.clone());
        v
    }

    fn errors(&self, reference: &str, instance: &Value, at: &str) -> Vec<String> {
        self.validator(reference).iter_errors(instance).map(|e| format!("{at}{}: {e}", e.instance_path())).collect()
    }

    /// Every error of `event` as a RunEvent: the core schema (root `oneOf`, re-checked
    /// against `RunEvent` for readable messages), then each known facet against its schema.
    pub fn run_event_errors(&self, event: &Value) -> Vec<String> {
        if self.validator(&self.core_id).is_valid(event) {
            let mut errors = Vec::new();
            let mut check = |facets: &Value, at: String| {
                for (name, facet) in facets.as_object().into_iter().flatten() {
                    let url = facet["_schemaURL"].as_str().unwrap_or_default();
                    let base = url.split('#').next().unwrap_or_default();
                    if self.facets.contains_key(base) {
                        errors.extend(self.errors(url, facet, &format!("{at}.{name}")));
                    }
                }
            };
            check(&event["run"]["facets"], "run.facets".into());
            check(&event["job"]["facets"], "job.facets".into());
            for kind in ["inputs", "outputs"] {
                for (i, ds) in event[kind].as_array().into_iter().flatten().enumerate() {
                    for key in ["facets", "inputFacets", "outputFacets"] {
                        check(&ds[key], format!("{kind}[{i}].{key}"));
                    }
                }
            }
            errors
        } else {
            let errors = self.errors(&format!("{}#/$defs/RunEvent", self.core_id), event, "");
            if errors.is_empty() {
                vec!["does not match oneOf(RunEvent, DatasetEvent, JobEvent)".into()]
            } else {
                errors
            }
        }
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub status: u16,
    pub authorization: Option<String>,
    pub content_encoding: Option<String>,
}

/// The running receiver. Dropping it stops the server thread.
pub struct Receiver {
    pub url: String,
    pub events: Arc<Mutex<Vec<Value>>>,
    pub requests: Arc<Mutex<Vec<Seen>>>,
    /// Answer this many next POSTs with 503 (to test retries).
    pub fail_next: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Receiver {
    /// Starts a receiver requiring `Authorization: Bearer <token>` when `token` is set.
    pub fn start(schemas: Arc<Schemas>, token: Option<&str>) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("ip address").port();
        let events = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail_next = Arc::new(AtomicUsize::new(0));
        let token = token.map(|t| format!("Bearer {t}"));
        let thread = {
            let (server, events, requests, fail_next) =
                (server.clone(), events.clone(), requests.clone(), fail_next.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let header = |name: &str| {
                        request
                            .headers()
                            .iter()
                            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                            .map(|h| h.value.as_str().to_string())
                    };
                    let seen = Seen {
                        status: 0,
                        authorization: header("Authorization"),
                        content_encoding: header("Content-Encoding"),
                    };
                    let content_type = header("Content-Type").unwrap_or_default();
                    let parts = request_parts(request, &token, &content_type, &seen, &fail_next);
                    handle(&schemas, parts, &events, &requests, seen);
                }
            })
        };
        Receiver { url: format!("http://127.0.0.1:{port}"), events, requests, fail_next, server, thread: Some(thread) }
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().expect("lock").clone()
    }

    pub fn statuses(&self) -> Vec<u16> {
        self.requests.lock().expect("lock").iter().map(|s| s.status).collect()
    }
}

/// What a request asks, decided before validation: an early answer or the JSON body.
enum Parts {
    Answer(tiny_http::Request, u16, Value),
    Body(tiny_http::Request, Vec<u8>),
}

fn request_parts(
    mut request: tiny_http::Request,
    token: &Option<String>,
    content_type: &str,
    seen: &Seen,
    fail_next: &AtomicUsize,
) -> Parts {
    if *request.method() != tiny_http::Method::Post || request.url().trim_end_matches('/') != "/api/v1/lineage" {
        return Parts::Answer(request, 404, json!({"error": "not found"}));
    }
    if token.is_some() && seen.authorization != *token {
        return Parts::Answer(request, 401, json!({"error": "unauthorized"}));
    }
    if !content_type.starts_with("application/json") {
        return Parts::Answer(request, 415, json!({"error": "Content-Type must be application/json"}));
    }
    if fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return Parts::Answer(request, 503, json!({"error": "try again"}));
    }
    let mut raw = Vec::new();
    if request.as_reader().read_to_end(&mut raw).is_err() {
        return Parts::Answer(request, 400, json!({"errors": ["unreadable body"]}));
    }
    if seen.content_encoding.as_deref() == Some("gzip") {
        let mut plain = Vec::new();
        if flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut plain).is_err() {
            return Parts::Answer(request, 400, json!({"errors": ["bad gzip body"]}));
        }
        raw = plain;
    }
    Parts::Body(request, raw)
}

/// Validates and records, then answers: the record is in place before the client hears back.
fn handle(schemas: &Schemas, parts: Parts, events: &Mutex<Vec<Value>>, requests: &Mutex<Vec<Seen>>, seen: Seen) {
    let (request, status, body) = match parts {
        Parts::Answer(request, status, body) => (request, status, body),
        Parts::Body(request, raw) => match serde_json::from_slice::<Value>(&raw) {
            Err(e) => (request, 400, json!({"errors": [format!("invalid JSON: {e}")]})),
            Ok(event) => {
                let errors = schemas.run_event_errors(&event);
                if errors.is_empty() {
                    events.lock().expect("lock").push(event);
                    (request, 201, Value::Null)
                } else {
                    (request, 400, json!({ "errors": errors }))
                }
            }
        },
    };
    requests.lock().expect("lock").push(Seen { status, ..seen });
    let text = if body.is_null() { String::new() } else { body.to_string() };
    let response = tiny_http::Response::from_string(text)
        .with_status_code(status)
        .with_header(tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).expect("header"));
    let _ = request.respond(response);
}
