//! Feeding batches produced on a plain thread (file readers block) into the
//! query engine as a stream, so a load never sits in memory whole.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::datafusion::catalog::streaming::StreamingTable;
use deltalake::datafusion::datasource::provider_as_source;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::TaskContext;
use deltalake::datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::streaming::PartitionStream;
use deltalake::datafusion::physical_plan::SendableRecordBatchStream;
use tokio::sync::mpsc;

use crate::error::{Error, Failure, Result};

type Received = std::result::Result<RecordBatch, DataFusionError>;

/// A stream that can be executed once.
#[derive(Debug)]
struct OneShot {
    schema: SchemaRef,
    rx: Mutex<Option<mpsc::Receiver<Received>>>,
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let stream = futures::stream::unfold(rx, |rx| async move {
            match rx {
                None => Some((
                    Err(DataFusionError::Internal(
                        "the load's input was already consumed".into(),
                    )),
                    None,
                )),
                Some(mut rx) => rx.recv().await.map(|b| (b, Some(rx))),
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// A logical plan scanning the batches `produce` sends, run on its own
/// thread. `produce` gets a sink; it returns when the sink refuses (the
/// consumer stopped) or when it is done. An error it returns is kept in
/// `failure` and ends the stream with an engine error standing for it.
pub(crate) fn streaming_plan(
    schema: SchemaRef,
    failure: Failure,
    produce: impl FnOnce(&mut Sink) -> Result<()> + Send + 'static,
) -> Result<LogicalPlan> {
    let (tx, rx) = mpsc::channel::<Received>(4);
    let source = Arc::new(OneShot {
        schema: schema.clone(),
        rx: Mutex::new(Some(rx)),
    });
    std::thread::Builder::new()
        .name("tessera-load".into())
        .spawn(move || {
            let mut sink = Sink { tx };
            if let Err(e) = produce(&mut sink) {
                failure.set(e);
                let _ = sink.tx.blocking_send(Err(failure.as_engine_error()));
            }
        })
        .map_err(|e| Error::internal(format!("cannot start a reader thread: {e}")))?;
    let table =
        StreamingTable::try_new(schema, vec![source]).map_err(|e| Error::query("(load)", e))?;
    LogicalPlanBuilder::scan("load", provider_as_source(Arc::new(table)), None)
        .and_then(|b| b.build())
        .map_err(|e| Error::query("(load)", e))
}

/// Where a producer sends batches.
pub(crate) struct Sink {
    tx: mpsc::Sender<Received>,
}

impl Sink {
    /// Send one batch; `false` when the consumer has gone away.
    pub(crate) fn send(&mut self, batch: RecordBatch) -> bool {
        self.tx.blocking_send(Ok(batch)).is_ok()
    }
}
