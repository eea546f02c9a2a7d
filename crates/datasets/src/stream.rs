//! Feeding batches produced on a plain thread (file readers block) to the
//! writer through a short channel, so a load never sits in memory whole.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// The batches `produce` sends, run on its own thread. `produce` gets a
/// sink; it returns when the sink refuses (the receiver was dropped) or
/// when it is done. Its error (or a panic) ends the channel with that
/// error; the channel ends with `Ok(None)` from [`Batches::next`] only
/// after `produce` returned `Ok`.
pub(crate) fn batch_channel(
    produce: impl FnOnce(&mut Sink) -> Result<()> + Send + 'static,
) -> Result<Batches> {
    let (tx, rx) = mpsc::channel::<Result<RecordBatch>>(4);
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    std::thread::Builder::new()
        .name("tessera-load".into())
        .spawn(move || {
            let mut sink = Sink { tx };
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| produce(&mut sink)))
                    .unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        Err(Error::internal(format!(
                            "the load's reader panicked: {what}"
                        )))
                    });
            match outcome {
                Ok(()) => finished.store(true, Ordering::Release),
                Err(e) => {
                    let _ = sink.tx.blocking_send(Err(e));
                }
            }
        })
        .map_err(|e| Error::internal(format!("cannot start a reader thread: {e}")))?;
    Ok(Batches { rx, done })
}

/// The receiving end of [`batch_channel`].
pub(crate) struct Batches {
    rx: mpsc::Receiver<Result<RecordBatch>>,
    done: Arc<AtomicBool>,
}

impl Batches {
    /// The next batch; `Ok(None)` once the producer has sent all of its
    /// input. Its own error comes back whole.
    pub(crate) async fn next(&mut self) -> Result<Option<RecordBatch>> {
        match self.rx.recv().await {
            Some(b) => b.map(Some),
            None if self.done.load(Ordering::Acquire) => Ok(None),
            None => Err(Error::internal(
                "the load's reader stopped before the end of its input",
            )),
        }
    }
}

/// Where a producer sends batches.
pub(crate) struct Sink {
    tx: mpsc::Sender<Result<RecordBatch>>,
}

impl Sink {
    /// Send one batch; `false` when the consumer has gone away.
    pub(crate) fn send(&mut self, batch: RecordBatch) -> bool {
        self.tx.blocking_send(Ok(batch)).is_ok()
    }
}
