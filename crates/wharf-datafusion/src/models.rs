//! The models a session's SQL names, loaded from the registry once per reference, each on a
//! model server of its own.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use wharf_core::{ModelRef, ModelServerPort, ModelServers, RegistryExt, RegistryPort, Result, WharfError};

/// Registered models by reference, loaded on first use onto a server from the factory, and
/// then kept.
///
/// Keeping them is what makes a query consistent: the model a query was planned with (its
/// output type, its classes) is the model every batch of it is scored with, even if an alias
/// moves while the query runs. The key is the parsed reference, so `lead` and `lead@latest`
/// share one entry, while `lead@champion` and `lead@3` are resolved separately.
pub(crate) struct ModelCache {
    registry: Arc<dyn RegistryPort>,
    servers: ModelServers,
    loaded: Mutex<HashMap<ModelRef, Arc<dyn ModelServerPort>>>,
}

impl ModelCache {
    pub(crate) fn new(registry: Arc<dyn RegistryPort>, servers: ModelServers) -> Self {
        ModelCache { registry, servers, loaded: Mutex::new(HashMap::new()) }
    }

    /// The server holding the model `reference` names, from the cache or else loaded from
    /// the registry onto a new server.
    pub(crate) fn get(&self, reference: &ModelRef) -> Result<Arc<dyn ModelServerPort>> {
        // Held during the load, so concurrent partitions asking for the same model wait for
        // one load instead of each reading the artifact.
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(model) = loaded.get(reference) {
            return Ok(Arc::clone(model));
        }
        let server = load_outside_runtime(self.registry.as_ref(), &self.servers, reference)?;
        loaded.insert(reference.clone(), Arc::clone(&server));
        Ok(server)
    }

    /// Forgets every loaded model, so the next use of a reference asks the registry again.
    pub(crate) fn clear(&self) {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// The references loaded so far, sorted as text.
    pub(crate) fn references(&self) -> Vec<ModelRef> {
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let mut refs: Vec<ModelRef> = loaded.keys().cloned().collect();
        refs.sort_by_key(|r| r.to_string());
        refs
    }
}

impl fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelCache")
            .field("registry", &self.registry.name())
            .field("servers", &self.servers.backend())
            .field("loaded", &self.references().iter().map(ToString::to_string).collect::<Vec<_>>())
            .finish()
    }
}

/// Loads on a plain thread of its own. DataFusion plans and executes inside a tokio runtime,
/// and registry and model-server ports are synchronous: a network adapter's blocking HTTP
/// client refuses to run on a runtime thread. This happens once per reference and session,
/// so the thread costs nothing that matters.
fn load_outside_runtime(
    registry: &dyn RegistryPort,
    servers: &ModelServers,
    reference: &ModelRef,
) -> Result<Arc<dyn ModelServerPort>> {
    outside_runtime(registry.name(), || servers.serve(registry.load_ref(reference)?))
}

/// Runs `work` on a plain thread of its own (see [`load_outside_runtime`]); a panic there is
/// an error naming `who`.
pub(crate) fn outside_runtime<T: Send>(who: &str, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| scope.spawn(work).join())
        .unwrap_or_else(|_| Err(WharfError::backend(who, "panicked while serving a SQL function", None)))
}
