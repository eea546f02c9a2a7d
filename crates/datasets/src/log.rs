//! The Delta logs of datasets: which log store commits for each URL scheme.

use std::sync::{Arc, Once};

use deltalake::logstore::{
    default_logstore, logstore_factories, LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake::DeltaResult;
use url::Url;

/// Delta's commits go through the same object store tessera uses for every
/// scheme; deltalake itself only knows `file://` and `memory://` without
/// its cloud crates. Its default log store commits with create-if-absent
/// writes, which is safe wherever the store enforces them (checked by the
/// capability probe before any write).
#[derive(Debug, Default)]
struct SharedStoreLogs;

impl LogStoreFactory for SharedStoreLogs {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

pub(crate) fn register_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let reg = logstore_factories();
        for scheme in ["s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "adl"] {
            let url = Url::parse(&format!("{scheme}://")).expect("valid scheme URL");
            if !reg.contains_key(&url) {
                reg.insert(url, Arc::new(SharedStoreLogs));
            }
        }
    });
}
