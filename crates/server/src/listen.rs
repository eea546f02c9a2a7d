//! The listener loop: HTTP/1 and HTTP/2 connections served until a stop
//! signal, then drained.
//!
//! axum's own `serve` stops accepting the moment it is told to stop and
//! drops its listener, so connections the kernel had already accepted (the
//! listen backlog) are reset; and hyper's graceful shutdown closes at once
//! a connection that has not delivered its first request yet. Under load a
//! fresh connection waits a while before its request is read, so requests
//! written hundreds of milliseconds before SIGTERM were answered with a
//! reset. Here, when told to stop:
//!
//! 1. the connections waiting in the backlog are accepted and served;
//! 2. the listener is closed: new connections are refused;
//! 3. a connection that has not delivered a request yet gets up to
//!    [`FIRST_REQUEST_GRACE`] to do so; every connection then finishes the
//!    request it is serving and closes.
//!
//! The caller bounds the whole drain (the `shutdown_timeout` setting).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use futures::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// How long, once stopping, a connection that has not delivered its first
/// request is given to do so.
pub(crate) const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Serve `router` on `listener` until `stop` completes, then drain (see the
/// module docs). Returns when every connection has closed.
pub(crate) async fn serve(listener: TcpListener, router: Router, stop: impl Future<Output = ()>) {
    let (stopping, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` waits for them all.
    let (all_closed, open) = watch::channel(());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            // The stop signal first: a busy listener must not starve it.
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((io, _)) => connection(io, router.clone(), stop_rx.clone(), open.clone()),
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::debug!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    // The kernel has completed these connections' handshakes: serve them.
    let mut drained = 0;
    while let Some(Ok((io, _))) = listener.accept().now_or_never() {
        connection(io, router.clone(), stop_rx.clone(), open.clone());
        drained += 1;
    }
    drop(listener);
    tracing::info!(
        backlog = drained,
        "shutting down: new connections refused, finishing in-flight requests"
    );
    let _ = stopping.send(true);
    drop(open);
    all_closed.closed().await;
}

/// Serve one connection in its own task.
fn connection(
    io: TcpStream,
    router: Router,
    mut stop: watch::Receiver<bool>,
    open: watch::Receiver<()>,
) {
    tokio::spawn(async move {
        let seen = Arc::new(AtomicBool::new(false));
        let service = {
            let seen = seen.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                seen.store(true, Ordering::Relaxed);
                router.clone().oneshot(req.map(Body::new))
            })
        };
        let builder = Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let told = async {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            // Give a connection that has not delivered a request yet a
            // moment to: closing it now would reset a request the client
            // may already have sent.
            let since = Instant::now();
            while !seen.load(Ordering::Relaxed) && since.elapsed() < FIRST_REQUEST_GRACE {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::pin!(told);
        let mut shutting = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::trace!("connection ended: {e}");
                    }
                    break;
                }
                () = &mut told, if !shutting => {
                    shutting = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        drop(open);
    });
}
