//! The RTMP listener: owns the sockets, one task per connection.
//!
//! Everything protocol-shaped happens in [`ServerHandshake`] and [`RtmpConnection`];
//! this file reads, writes, waits, authorizes and hands media to the [`StreamHub`].
//! Each connection ends with exactly one log line naming the peer, the stream slug
//! when known (never the key) and why it ended.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::connection::{ConnectionError, Event, RtmpConnection};
use super::handshake::{HandshakeError, HandshakeStep, ServerHandshake};
use crate::ingest::demux::DemuxStats;
use crate::limits::Limits;
use crate::streams::owner::{Protocol, PublishSession};
use crate::streams::registry::StreamRegistry;
use crate::streams::StreamDirectory;

/// One socket read. Also bounds what one [`RtmpConnection::feed`] call parses.
const READ_BUF: usize = 64 * 1024;

/// Settings of the RTMP listener.
#[derive(Clone, Debug)]
pub struct RtmpConfig {
    /// The RTMP application publishers connect to: `rtmp://HOST:PORT/<app>/<stream key>`.
    pub app: String,
    /// How long a peer has for the whole handshake (C0 to C2).
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed. Also bounds each write.
    pub idle_timeout: Duration,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            app: "live".to_owned(),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

struct Shared {
    directory: Arc<dyn StreamDirectory>,
    streams: Arc<StreamRegistry>,
    config: RtmpConfig,
    /// Connection caps (with the per-connection bounds of [`super::connection`] they
    /// bound what peers can make the server hold) and the failed-publish budget.
    limits: Arc<Limits>,
    shutdown: CancellationToken,
    /// RTMPS: the TLS handshake comes first, under the same deadline as RTMP's own.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Accepts RTMP publishers on `listener` until `shutdown` is cancelled, then closes
/// every connection and returns once their tasks have finished.
pub async fn serve(
    listener: TcpListener,
    directory: Arc<dyn StreamDirectory>,
    streams: Arc<StreamRegistry>,
    config: RtmpConfig,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    let shared = Shared {
        directory,
        streams,
        config,
        limits,
        shutdown,
        tls: None,
    };
    accept_loop(listener, shared).await;
}

/// [`serve`] for RTMPS: each connection is a TLS session first (under the RTMP
/// handshake deadline); the RTMP session over it is the same code.
pub async fn serve_tls(
    listener: TcpListener,
    directory: Arc<dyn StreamDirectory>,
    streams: Arc<StreamRegistry>,
    config: RtmpConfig,
    limits: Arc<Limits>,
    tls: tokio_rustls::TlsAcceptor,
    shutdown: CancellationToken,
) {
    let shared = Shared {
        directory,
        streams,
        config,
        limits,
        shutdown,
        tls: Some(tls),
    };
    accept_loop(listener, shared).await;
}

async fn accept_loop(listener: TcpListener, shared: Shared) {
    let shutdown = shared.shutdown.clone();
    let shared = Arc::new(shared);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined {
                    // Connection code catches library panics; this is a bug of ours.
                    tracing::error!(error = %e, "RTMP connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    // Refused connections are closed at once, unread; the gate and the
                    // budget count them and log a summary, not a line each.
                    if !shared.limits.publish_failures.allows(peer.ip(), Instant::now()) {
                        continue;
                    }
                    let Ok(admission) = shared.limits.rtmp.admit(peer.ip()) else {
                        continue;
                    };
                    let shared = Arc::clone(&shared);
                    tasks.spawn(async move {
                        serve_connection(socket, peer, &shared).await;
                        drop(admission);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "RTMP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    // Every connection watches the same token and closes at its next await point.
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "RTMP connection task failed");
        }
    }
}

/// Why a connection ended without anything going wrong.
#[derive(Debug)]
enum Closed {
    ByPeer,
    Unpublished,
    TakenOver,
    Shutdown,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Closed::ByPeer => "peer closed the connection",
            Closed::Unpublished => "publisher ended the stream",
            Closed::TakenOver => {
                "the server ended this publisher (taken over, key rotated, stream disabled or deleted)"
            }
            Closed::Shutdown => "server shutting down",
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("RTMP handshake not finished within {0:?} ({1} bytes received)")]
    HandshakeTimeout(Duration, usize),
    #[error("peer closed the connection during the RTMP handshake ({0} bytes received)")]
    HandshakeEof(usize),
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("TLS handshake not finished within {0:?}")]
    TlsHandshakeTimeout(Duration),
    #[error("no data for {0:?}")]
    Idle(Duration),
    #[error("peer did not take our bytes for {0:?}")]
    WriteTimeout(Duration),
    #[error("stream directory did not answer within {0:?}")]
    LookupTimeout(Duration),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Rtmp(#[from] ConnectionError),
}

/// What a connection task knows of itself, for its closing log line.
#[derive(Default)]
struct Context {
    slug: Option<String>,
    units: u64,
    stats: DemuxStats,
}

async fn serve_connection(socket: TcpStream, peer: SocketAddr, shared: &Shared) {
    // Small control replies must not wait for Nagle.
    let _ = socket.set_nodelay(true);
    let mut cx = Context::default();
    let started = Instant::now();
    let outcome = match &shared.tls {
        None => {
            let mut socket = socket;
            run(&mut socket, peer, shared, &mut cx).await
        }
        Some(acceptor) => match tls_handshake(acceptor, socket, shared).await {
            Ok(Some(mut stream)) => run(&mut stream, peer, shared, &mut cx).await,
            Ok(None) => Ok(Closed::Shutdown),
            Err(failure) => Err(failure),
        },
    };
    let stream = cx.slug.as_deref().unwrap_or("-");
    let secs = started.elapsed().as_secs_f64();
    match outcome {
        Ok(closed) => tracing::info!(
            %peer, stream, units = cx.units, duration_s = secs,
            before_config = cx.stats.before_config,
            clamped_timestamps = cx.stats.clamped_timestamps,
            "RTMP connection closed: {closed}"
        ),
        Err(failure) => tracing::warn!(
            %peer, stream, units = cx.units, duration_s = secs,
            before_config = cx.stats.before_config,
            clamped_timestamps = cx.stats.clamped_timestamps,
            "RTMP connection dropped: {failure}"
        ),
    }
}

/// The TLS handshake of an RTMPS connection, bounded by the RTMP handshake timeout;
/// `None` when the server shuts down first.
async fn tls_handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    socket: TcpStream,
    shared: &Shared,
) -> Result<Option<tokio_rustls::server::TlsStream<TcpStream>>, Failure> {
    let limit = shared.config.handshake_timeout;
    tokio::select! {
        _ = shared.shutdown.cancelled() => Ok(None),
        done = tokio::time::timeout(limit, acceptor.accept(socket)) => match done {
            Ok(Ok(stream)) => Ok(Some(stream)),
            Ok(Err(e)) => Err(Failure::Tls(e)),
            Err(_) => Err(Failure::TlsHandshakeTimeout(limit)),
        },
    }
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut S,
    peer: SocketAddr,
    shared: &Shared,
    cx: &mut Context,
) -> Result<Closed, Failure> {
    let config = &shared.config;
    let mut buf = vec![0u8; READ_BUF];

    let mut handshake = ServerHandshake::new();
    let leftover = tokio::select! {
        _ = shared.shutdown.cancelled() => return Ok(Closed::Shutdown),
        done = tokio::time::timeout(
            config.handshake_timeout,
            run_handshake(socket, &mut handshake, &mut buf),
        ) => match done {
            Ok(result) => result?,
            Err(_) => {
                return Err(Failure::HandshakeTimeout(
                    config.handshake_timeout,
                    handshake.bytes_fed(),
                ))
            }
        },
    };

    let mut session = Session {
        socket,
        peer,
        shared,
        cx,
        conn: RtmpConnection::new(&config.app),
        publish: None,
    };
    let result = session.run(&leftover, &mut buf).await;
    session.cx.stats = session.conn.stats();
    // Dropping `session.publish` here detaches the publisher from its stream.
    result
}

/// A connection past its handshake, over TCP or TLS.
struct Session<'a, S> {
    socket: &'a mut S,
    peer: SocketAddr,
    shared: &'a Shared,
    cx: &'a mut Context,
    conn: RtmpConnection,
    publish: Option<PublishSession>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    async fn run(&mut self, leftover: &[u8], buf: &mut [u8]) -> Result<Closed, Failure> {
        let idle = self.shared.config.idle_timeout;
        // The session's opening messages, and whatever followed C2 in the same read.
        if let Some(closed) = self.process(leftover, Instant::now()).await? {
            return Ok(closed);
        }
        loop {
            let read = tokio::select! {
                // At shutdown the stream also detaches its publisher; say why truly.
                biased;
                _ = self.shared.shutdown.cancelled() => return Ok(Closed::Shutdown),
                _ = superseded(&self.publish) => return Ok(Closed::TakenOver),
                read = tokio::time::timeout(idle, self.socket.read(buf)) => read,
            };
            let n = match read {
                Err(_) => return Err(Failure::Idle(idle)),
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(0)) => return Ok(Closed::ByPeer),
                Ok(Ok(n)) => n,
            };
            // The read just completed: the closest this code gets to "the last byte
            // arrived" for every unit these bytes complete.
            let received = Instant::now();
            if let Some(closed) = self.process(&buf[..n], received).await? {
                return Ok(closed);
            }
        }
    }

    /// Feeds bytes to the protocol, sends its replies, then acts on its events in order.
    async fn process(
        &mut self,
        bytes: &[u8],
        received: Instant,
    ) -> Result<Option<Closed>, Failure> {
        let mut bytes = bytes;
        loop {
            let events = match self.conn.feed(bytes, received) {
                Ok(events) => events,
                Err(e) => {
                    // A refusal (wrong app, play) has its reply queued; let it out.
                    let _ = self.flush().await;
                    return Err(e.into());
                }
            };
            self.flush().await?;
            // The connection stops reading at a publish request; once it is answered,
            // what the peer sent behind it is read.
            let mut answered = false;
            for event in events {
                answered |= matches!(event, Event::PublishRequested { .. });
                if let Some(closed) = self.on_event(event).await? {
                    return Ok(Some(closed));
                }
            }
            if !answered {
                return Ok(None);
            }
            bytes = &[];
        }
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        let out = self.conn.take_outbound();
        if out.is_empty() {
            return Ok(());
        }
        let limit = self.shared.config.idle_timeout;
        match tokio::time::timeout(limit, self.socket.write_all(&out)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Failure::WriteTimeout(limit)),
        }
    }

    /// Acts on one protocol event; `Some` ends the connection normally.
    async fn on_event(&mut self, event: Event) -> Result<Option<Closed>, Failure> {
        let peer = self.peer;
        match event {
            Event::PublishRequested {
                request_id,
                stream_key,
            } => {
                let limit = self.shared.config.idle_timeout;
                let lookup = self.shared.directory.by_publish_key(&stream_key);
                let found = tokio::time::timeout(limit, lookup)
                    .await
                    .map_err(|_| Failure::LookupTimeout(limit))?;
                let Some(stream) = found else {
                    self.shared
                        .limits
                        .publish_failures
                        .failed(peer.ip(), Instant::now());
                    self.conn.reject_publish(request_id)?;
                    let _ = self.flush().await;
                    return Err(ConnectionError::UnknownKey.into());
                };
                self.cx.slug = Some(stream.slug.clone());
                // Take the stream before answering, so media that follows the answer has
                // a session to go to.
                let attached = self
                    .shared
                    .streams
                    .publish(&stream, peer, Protocol::Rtmp)
                    .await;
                let publish = match attached {
                    Ok(publish) => publish,
                    Err(refused) => {
                        self.conn.reject_publish(request_id)?;
                        let _ = self.flush().await;
                        return Err(ConnectionError::Refused(refused.to_string()).into());
                    }
                };
                self.publish = Some(publish);
                self.conn.accept_publish(request_id)?;
                self.flush().await?;
                tracing::info!(%peer, stream = %stream.slug, "RTMP publish started");
            }
            Event::Media(media) => {
                if let Some(session) = self.publish.as_ref() {
                    if session.push(media).await.is_err() {
                        return Ok(Some(Closed::TakenOver));
                    }
                    self.cx.units += 1;
                }
            }
            Event::TrackDropped(reason) => {
                let stream = self.cx.slug.as_deref().unwrap_or("-");
                tracing::warn!(%peer, stream, "{reason}");
            }
            Event::Metadata {
                encoder,
                width,
                height,
                frame_rate,
            } => {
                let stream = self.cx.slug.as_deref().unwrap_or("-");
                tracing::info!(
                    %peer, stream,
                    encoder = encoder.as_deref().unwrap_or("-"),
                    width, height, frame_rate,
                    "RTMP stream metadata"
                );
            }
            Event::PublishFinished => return Ok(Some(Closed::Unpublished)),
        }
        Ok(None)
    }
}

async fn run_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut S,
    handshake: &mut ServerHandshake,
    buf: &mut [u8],
) -> Result<Vec<u8>, Failure> {
    loop {
        let n = socket.read(buf).await?;
        if n == 0 {
            return Err(Failure::HandshakeEof(handshake.bytes_fed()));
        }
        match handshake.feed(&buf[..n])? {
            HandshakeStep::InProgress { reply } => socket.write_all(&reply).await?,
            HandshakeStep::Done { reply, leftover } => {
                socket.write_all(&reply).await?;
                return Ok(leftover);
            }
        }
    }
}

/// Resolves when the stream this connection publishes was taken over; never without one.
async fn superseded(publish: &Option<PublishSession>) {
    match publish {
        Some(session) => session.superseded().await,
        None => std::future::pending().await,
    }
}
