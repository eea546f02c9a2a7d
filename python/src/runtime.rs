//! One tokio runtime per process, and running library futures from Python
//! with the GIL released and Ctrl-C honoured.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors::{Class, Raised};

/// The process's runtime and the process it was made in.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// Set in a forked child once it made its own runtime.
static FORKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How often a waiting call looks for a pending signal (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The runtime of this process: made on first use, and made again in a
/// child after `fork` (the parent's worker threads do not exist there).
pub fn runtime() -> PyResult<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    if let Some((_, inherited)) = slot.take() {
        // A forked child's copy of the parent's runtime: its threads are
        // gone, so dropping it could wait for them forever. Leak it.
        std::mem::forget(inherited);
        FORKED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tessera")
        .build()
        .map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "cannot start tessera's runtime: {e}"
            ))
        })?;
    let rt = Arc::new(rt);
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}

/// A panic as `tessera.InternalError` (never a `PanicException`).
fn panicked(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    Raised::new(
        Class::Internal,
        "Panic",
        format!("internal error: tessera panicked: {what}"),
    )
    .into()
}

/// Run `fut` to completion on the runtime with the GIL released. A signal
/// handler that raises (Ctrl-C's `KeyboardInterrupt`) cancels the future
/// and its exception is returned; a panic becomes `InternalError`.
pub fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    let rt = runtime()?;
    // Signal handlers run only on the main thread: elsewhere (a Dask or
    // thread-pool worker) looking for them would only take the GIL from
    // the threads that need it.
    let main = on_main_thread(py)?;
    if FORKED.load(std::sync::atomic::Ordering::Relaxed) {
        // In a forked child, the calling thread's thread-local runtime state
        // (its parker, its runtime context) is a copy of the parent's, made
        // at an arbitrary moment; a fetch waiting on it was seen to hang.
        // Drive the future from a fresh thread, whose state is its own.
        return py.detach(|| {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        rt.block_on(async move {
                            AssertUnwindSafe(fut)
                                .catch_unwind()
                                .await
                                .unwrap_or_else(|p| Err(panicked(p)))
                        })
                    })
                    .join()
                    .unwrap_or_else(|p| Err(panicked(p)))
            })
        });
    }
    py.detach(|| {
        rt.block_on(async move {
            let fut = AssertUnwindSafe(fut).catch_unwind();
            let mut fut = std::pin::pin!(fut);
            if !main {
                return fut.await.unwrap_or_else(|p| Err(panicked(p)));
            }
            let mut tick = tokio::time::interval(SIGNAL_POLL);
            tick.tick().await;
            loop {
                tokio::select! {
                    out = &mut fut => return out.unwrap_or_else(|p| Err(panicked(p))),
                    _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                }
            }
        })
    })
}

/// Whether the calling thread is Python's main thread.
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let main = threading.call_method0("main_thread")?.getattr("ident")?;
    let me = threading.call_method0("get_ident")?;
    main.eq(me)
}

/// Run blocking work (CPU or synchronous I/O) with the GIL released; a
/// panic becomes `InternalError`.
pub fn detached<F, T>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> PyResult<T> + Send,
    T: Send,
{
    py.detach(|| {
        std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|p| Err(panicked(p)))
    })
}
