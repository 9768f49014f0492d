//! The model-server conformance suite against the real BentoML test service.

mod common;

use std::sync::Arc;

use wharf_core::conformance;
use wharf_core::ModelServerPort;

#[test]
fn bentoml_proxy_conforms() {
    let Some(url) = common::bentoml_url() else { return };
    let config = common::config(&url);
    conformance::run_model_server_suite(|| Arc::new(common::server(&config)) as Arc<dyn ModelServerPort>);
}
