//! The Delta logs of datasets: which log store commits for each URL scheme,
//! and the log store of a load that creates a dataset.

use std::sync::{Arc, Once};

use async_trait::async_trait;
use bytes::Bytes;
use deltalake::kernel::transaction::TransactionError;
use deltalake::kernel::Version;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::logstore::{
    default_logstore, logstore_factories, CommitOrBytes, LogStore, LogStoreConfig, LogStoreFactory,
    LogStoreRef, ObjectStoreRef, StorageConfig,
};
use deltalake::{DeltaResult, ObjectStore};
use url::Url;
use uuid::Uuid;

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

/// The log store of a load that creates a dataset: `inner`, except that
/// the table's first commit gets `configuration` in its metadata.
///
/// deltalake's writer creates a table in the same commit as its first data
/// (so version 0 holds the first load), but lets only Delta's own `delta.*`
/// properties into that commit's metadata. tessera's `tessera.*` entries
/// are added to the commit as it is written; every other call goes to
/// `inner` unchanged.
pub(crate) fn creating_with(
    inner: LogStoreRef,
    configuration: Vec<(String, String)>,
) -> LogStoreRef {
    Arc::new(CreateWithConfiguration {
        inner,
        configuration,
    })
}

struct CreateWithConfiguration {
    inner: LogStoreRef,
    configuration: Vec<(String, String)>,
}

impl CreateWithConfiguration {
    /// The commit `bytes` (one JSON action per line) with the configuration
    /// added to the metadata action.
    fn stamp(&self, bytes: &[u8]) -> Result<Bytes, TransactionError> {
        let mut out = Vec::with_capacity(bytes.len() + 256);
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let mut action: serde_json::Value = match line.starts_with(br#"{"metaData""#) {
                true => serde_json::from_slice(line)
                    .map_err(|json_err| TransactionError::SerializeLogJson { json_err })?,
                false => {
                    out.extend_from_slice(line);
                    continue;
                }
            };
            let meta = &mut action["metaData"];
            if !meta["configuration"].is_object() {
                meta["configuration"] = serde_json::json!({});
            }
            if let Some(conf) = meta["configuration"].as_object_mut() {
                for (k, v) in &self.configuration {
                    conf.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
            }
            serde_json::to_writer(&mut out, &action)
                .map_err(|json_err| TransactionError::SerializeLogJson { json_err })?;
        }
        Ok(Bytes::from(out))
    }
}

#[async_trait]
impl LogStore for CreateWithConfiguration {
    fn name(&self) -> String {
        // The commit protocol deltalake picks depends on the name.
        self.inner.name()
    }

    async fn refresh(&self) -> DeltaResult<()> {
        self.inner.refresh().await
    }

    async fn read_commit_entry(&self, version: Version) -> DeltaResult<Option<Bytes>> {
        self.inner.read_commit_entry(version).await
    }

    async fn write_commit_entry(
        &self,
        version: Version,
        commit_or_bytes: CommitOrBytes,
        operation_id: Uuid,
    ) -> Result<(), TransactionError> {
        let commit = match commit_or_bytes {
            CommitOrBytes::LogBytes(bytes) if version == 0 => {
                CommitOrBytes::LogBytes(self.stamp(&bytes)?)
            }
            CommitOrBytes::TmpCommit(path) if version == 0 => {
                // Stores without conditional puts commit a temporary file.
                let store = self.inner.object_store(Some(operation_id));
                let bytes = store.get(&path).await?.bytes().await?;
                store.put(&path, self.stamp(&bytes)?.into()).await?;
                CommitOrBytes::TmpCommit(path)
            }
            other => other,
        };
        self.inner
            .write_commit_entry(version, commit, operation_id)
            .await
    }

    async fn abort_commit_entry(
        &self,
        version: Version,
        commit_or_bytes: CommitOrBytes,
        operation_id: Uuid,
    ) -> Result<(), TransactionError> {
        self.inner
            .abort_commit_entry(version, commit_or_bytes, operation_id)
            .await
    }

    async fn get_latest_version(&self, start_version: Version) -> DeltaResult<Version> {
        self.inner.get_latest_version(start_version).await
    }

    fn object_store(&self, operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
        self.inner.object_store(operation_id)
    }

    fn root_object_store(&self, operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
        self.inner.root_object_store(operation_id)
    }

    fn config(&self) -> &LogStoreConfig {
        self.inner.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_goes_into_the_metadata_action_only() {
        let store = CreateWithConfiguration {
            inner: deltalake::DeltaTable::new_in_memory().log_store(),
            configuration: vec![("tessera.x".into(), "a b: \"c\"".into())],
        };
        let stamped = store
            .stamp(
                br#"{"commitInfo":{"a":1}}
{"metaData":{"id":"t","configuration":{"delta.x":"1"}}}
{"add":{"path":"p"}}"#,
            )
            .unwrap();
        let lines: Vec<&str> = std::str::from_utf8(&stamped).unwrap().lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], r#"{"commitInfo":{"a":1}}"#);
        assert_eq!(lines[2], r#"{"add":{"path":"p"}}"#);
        let meta: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(meta["metaData"]["configuration"]["delta.x"], "1");
        assert_eq!(meta["metaData"]["configuration"]["tessera.x"], "a b: \"c\"");
        assert_eq!(meta["metaData"]["id"], "t");
    }
}
