//! The HTTP accept loop: each connection is admitted by the port's [`ConnectionGate`]
//! (per address and in total), read under deadlines ([`IdleDeadline`], hyper's header
//! timeout), and served as HTTP/1.1 or h2c by hyper — or, on the HTTPS port, first
//! through a TLS handshake bounded by the header timeout, then as HTTP/2 or HTTP/1.1 by
//! ALPN. axum::serve has no place for any of it, which is why this is ours.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::limits::idle::{IdleDeadline, InFlight};
use crate::limits::Limits;
use crate::tls::redirect;

/// What runs under HTTP on a port.
#[derive(Clone)]
pub enum Transport {
    /// Plain TCP; with `redirect_to` (the HTTPS port, when TLS is on) clients that are
    /// not on this machine are sent there (see [`redirect`]).
    Plain { redirect_to: Option<u16> },
    /// TLS first.
    Tls(tokio_rustls::TlsAcceptor),
}

/// How long open connections get to finish their requests at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// What a refused client is told before the connection closes; HTTP/1 only (an h2c
/// client sees the connection close). Browsers retry after `Retry-After`.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\n\
retry-after: 5\r\n\
connection: close\r\n\
content-length: 97\r\n\r\n\
{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"too many connections\"}";

/// Serves `app` on `listener` until `shutdown`, then lets open connections finish for
/// up to [`DRAIN`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Arc<Limits>,
    transport: Transport,
    shutdown: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.http_header_timeout);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let gate = Arc::clone(&limits.http);
                    let Ok(admission) = gate.admit(peer.ip()) else {
                        // A TLS client could not read a plaintext answer: it is closed.
                        if let Transport::Plain { .. } = transport {
                            connections.spawn(refuse(socket));
                        }
                        continue;
                    };
                    let app = app.clone();
                    let builder = Arc::clone(&builder);
                    let limits = Arc::clone(&limits);
                    let shutdown = shutdown.clone();
                    let transport = transport.clone();
                    connections.spawn(async move {
                        let http = Http { peer, app, builder: &builder, limits: &limits };
                        http.serve_socket(socket, &transport, shutdown).await;
                        drop(admission);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// The TLS handshake under the header timeout: a client that opens a connection and
/// never finishes the handshake (or sends garbage) holds it no longer than one that never
/// sends its request head.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    socket: TcpStream,
    peer: SocketAddr,
    limits: &Limits,
    shutdown: &CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let accepted = tokio::select! {
        accepted = tokio::time::timeout(limits.http_header_timeout, acceptor.accept(socket)) => accepted,
        _ = shutdown.cancelled() => return None,
    };
    match accepted {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// One connection's HTTP, over whatever stream it arrived on.
struct Http<'a> {
    peer: SocketAddr,
    app: Router,
    builder: &'a auto::Builder<TokioExecutor>,
    limits: &'a Limits,
}

impl Http<'_> {
    /// Serves an accepted socket as `transport` says: directly, or after a TLS
    /// handshake.
    async fn serve_socket(
        self,
        socket: TcpStream,
        transport: &Transport,
        shutdown: CancellationToken,
    ) {
        let _ = socket.set_nodelay(true);
        match transport {
            Transport::Plain { redirect_to } => self.serve(socket, *redirect_to, shutdown).await,
            Transport::Tls(acceptor) => {
                let handshake = handshake(acceptor, socket, self.peer, self.limits, &shutdown);
                if let Some(stream) = handshake.await {
                    self.serve(stream, None, shutdown).await;
                }
            }
        }
    }

    async fn serve<S>(self, stream: S, redirect_to: Option<u16>, shutdown: CancellationToken)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Http {
            peer,
            app,
            builder,
            limits,
        } = self;
        let io = IdleDeadline::new(stream, limits.http_header_timeout, limits.http_idle_timeout);
        let busy = io.busy();
        // Handlers read the peer address (login rate limits) from ConnectInfo, as with
        // axum::serve's connect info.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let elsewhere = redirect_to.and_then(|port| {
                redirect::target(
                    peer.ip(),
                    redirect::request_host(&request),
                    request.uri(),
                    port,
                )
            });
            request.extensions_mut().insert(ConnectInfo(peer));
            let answering = InFlight::enter(&busy);
            let app = app.clone();
            async move {
                if let Some(location) = elsewhere {
                    return Ok(redirect::response(&location));
                }
                let response = app.oneshot(request.map(axum::body::Body::new)).await;
                drop(answering);
                response
            }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                match tokio::time::timeout(DRAIN, connection.as_mut()).await {
                    Ok(result) => result,
                    Err(_) => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            // Timeouts and resets are what clients do; nothing here is the server's fault.
            tracing::debug!(%peer, error = %e, "HTTP connection ended");
        }
    }
}

/// Tells a refused client why (best effort, bounded) and closes.
async fn refuse(mut socket: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(REFUSED)).await;
    let _ = socket.shutdown().await;
}
