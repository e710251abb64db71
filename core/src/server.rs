//! Serving HTTP/1.1 connections (with WebSocket upgrades) for the engine: the
//! accept loop, adopted connections, and tracking so that stop can wait for
//! every socket to close.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::{Buf, Bytes};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower::ServiceExt;

use crate::limits::{IpCounter, IpSlot};
use crate::peer::PeerAddr;
use crate::stats::Counters;

/// What bounds the connections the engine serves itself: how many per address
/// and in all (`limits.max_sockets_per_ip`, `limits.max_sockets`), and how long
/// one may wait before sending a request's headers (`transport.header_timeout_ms`).
pub(crate) struct AcceptLimits {
    pub sockets: Arc<IpCounter>,
    pub counters: Arc<Counters>,
    pub header_timeout: Duration,
}

/// Tells connections when to wind down, and counts those still open.
#[derive(Clone)]
pub(crate) struct Connections {
    app: Router,
    /// `true` once idle keep-alive connections should close.
    closing: watch::Receiver<bool>,
    open: Arc<OpenCount>,
    /// Cancelled when stop gives up waiting: every connection then reads end of
    /// stream, so the Engine.IO sessions on it close themselves.
    cut: CancellationToken,
    limits: Arc<AcceptLimits>,
}

pub(crate) struct ConnectionsControl {
    closing: watch::Sender<bool>,
    open: Arc<OpenCount>,
    cut: CancellationToken,
}

/// Connections open now, WebSocket connections included after their upgrade
/// (the count follows the socket itself, not the HTTP exchange).
#[derive(Default)]
struct OpenCount {
    count: AtomicUsize,
    changed: Notify,
}

impl Connections {
    pub(crate) fn new(app: Router, limits: AcceptLimits) -> (Self, ConnectionsControl) {
        let (closing_tx, closing) = watch::channel(false);
        let open = Arc::new(OpenCount::default());
        let cut = CancellationToken::new();
        (
            Self {
                app,
                closing,
                open: open.clone(),
                cut: cut.clone(),
                limits: Arc::new(limits),
            },
            ConnectionsControl {
                closing: closing_tx,
                open,
                cut,
            },
        )
    }

    /// Whether connections are still taken (false once stop closed the doors).
    pub(crate) fn accepting(&self) -> bool {
        !*self.closing.borrow()
    }

    pub(crate) fn app(&self) -> &Router {
        &self.app
    }

    /// Serves one connection on the current runtime, or closes it at once when
    /// its address, or the server, has its most connections open.
    pub(crate) fn serve<I>(&self, io: I, peer: Option<SocketAddr>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // `::ffff:1.2.3.4` (a dual-stack listener) is the client 1.2.3.4, whatever
        // path its connection took, so that per-address limits count it once.
        let peer = peer.map(|peer| SocketAddr::new(peer.ip().to_canonical(), peer.port()));
        // Closing at once frees the file descriptor: an idle flood from one address
        // cannot use up the process's descriptors and starve everyone else.
        let slot = match peer.map(|peer| self.limits.sockets.acquire(peer.ip())) {
            Some(Err(refusal)) => {
                Counters::add(&self.limits.counters.sockets_refused, 1);
                tracing::debug!("connection closed at accept: {}", refusal.message);
                return;
            }
            Some(Ok(slot)) => Some(slot),
            None => None,
        };
        let io = Tracked::new(io, self.open.clone(), &self.cut, slot);
        let header_timeout = self.limits.header_timeout;
        let app = self.app.clone();
        let mut closing = self.closing.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    if let Some(peer) = peer {
                        request.extensions_mut().insert(PeerAddr(peer));
                    }
                    app.clone().oneshot(request.map(Body::new))
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => log_connection_end(result),
                _ = stopped(&mut closing) => {
                    connection.as_mut().graceful_shutdown();
                    log_connection_end(connection.await);
                }
            }
        });
    }

    /// Accepts connections until told to stop accepting.
    pub(crate) async fn accept_loop(self, listener: TcpListener, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        self.serve(stream, Some(peer));
                    }
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stopped(&mut stop) => return,
            }
        }
    }
}

impl ConnectionsControl {
    pub(crate) fn open(&self) -> usize {
        self.open.count.load(Ordering::Acquire)
    }

    /// Waits until no connection is open.
    pub(crate) async fn all_closed(&self) {
        loop {
            let changed = self.open.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            changed.await;
        }
    }

    /// Waits until no connection has been open for `quiet` in a row.
    pub(crate) async fn quiet(&self, quiet: Duration) {
        loop {
            self.all_closed().await;
            let changed = self.open.changed.notified();
            if tokio::time::timeout(quiet, changed).await.is_err() && self.open() == 0 {
                return;
            }
        }
    }

    /// Ends every connection still open: reads see end of stream, writes fail.
    pub(crate) fn cut_all(&self) {
        self.cut.cancel();
    }

    /// Asks idle keep-alive connections to close (and busy ones once their
    /// current request is answered).
    pub(crate) fn close_idle(&self) {
        let _ = self.closing.send(true);
    }
}

/// Resolves once the flag turns true (or its sender is gone).
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!("connection ended: {e}");
    }
}

/// An IO that keeps a connection counted for as long as it exists, and that stop
/// can cut.
struct Tracked<I> {
    inner: I,
    open: Arc<OpenCount>,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Its place in the per-address count, given back with the connection.
    _slot: Option<IpSlot>,
}

impl<I> Tracked<I> {
    fn new(inner: I, open: Arc<OpenCount>, cut: &CancellationToken, slot: Option<IpSlot>) -> Self {
        open.count.fetch_add(1, Ordering::AcqRel);
        Self {
            inner,
            open,
            cut: Box::pin(cut.clone().cancelled_owned()),
            _slot: slot,
        }
    }

    fn is_cut(&mut self, cx: &mut Context<'_>) -> bool {
        self.cut.as_mut().poll(cx).is_ready()
    }
}

impl<I> Drop for Tracked<I> {
    fn drop(&mut self) {
        self.open.count.fetch_sub(1, Ordering::AcqRel);
        self.open.changed.notify_waiters();
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_cut(cx) {
            // End of stream.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection whose first bytes were already read by someone else (the host that
/// accepted it): those bytes are read again first, then the socket itself.
pub(crate) struct Rewind<I> {
    already_read: Bytes,
    inner: I,
}

impl<I> Rewind<I> {
    pub(crate) fn new(already_read: Bytes, inner: I) -> Self {
        Self {
            already_read,
            inner,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.already_read.has_remaining() {
            let n = self.already_read.len().min(buf.remaining());
            buf.put_slice(&self.already_read[..n]);
            self.already_read.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn rewind_reads_prefix_then_inner() {
        let inner: &[u8] = b" world";
        let mut io = Rewind::new(Bytes::from_static(b"hello"), inner);
        let mut out = String::new();
        io.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
