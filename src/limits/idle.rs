//! A socket that gives up when nothing moves: an HTTP client that opens a connection
//! and sends nothing, stops sending in the middle of a request, or stops taking the
//! response, is closed after a deadline instead of holding its connection forever.
//! hyper's own header timeout covers HTTP/1 request heads; this covers the rest (the
//! HTTP/1-or-2 preface read, idle HTTP/2, stalled bodies in both directions). While a
//! request is being answered (an LL-HLS request may be held for seconds on purpose)
//! the deadline waits: the connection is busy, not idle.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct IdleDeadline<T> {
    inner: T,
    /// Until the first byte arrives.
    first_byte: Duration,
    /// Between any two moments of progress, in either direction, after that.
    idle: Duration,
    seen_bytes: bool,
    last_progress: Instant,
    timer: Pin<Box<Sleep>>,
    /// Requests of this connection being answered now (see [`InFlight`]).
    busy: Arc<AtomicUsize>,
}

/// Marks a request as being answered for as long as it lives.
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn enter(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(busy))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T> IdleDeadline<T> {
    pub fn new(inner: T, first_byte: Duration, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            first_byte,
            idle,
            seen_bytes: false,
            last_progress: now,
            timer: Box::pin(tokio::time::sleep_until(now + first_byte)),
            busy: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The counter the connection's requests mark themselves busy in.
    pub fn busy(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.busy)
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Ready with an error once the deadline has passed; arms the timer otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            // Idle time counts from when the last answer was done (or close to it: the
            // next poll after it).
            self.progressed();
            return Poll::Pending;
        }
        let limit = if self.seen_bytes {
            self.idle
        } else {
            self.first_byte
        };
        let deadline = self.last_progress + limit;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing moved on the connection for {limit:?}"),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> IdleDeadline<T> {
    /// A write's outcome: bytes taken are progress; a write that waits, waits under
    /// the deadline.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.expired(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.seen_bytes = true;
                    this.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.expired(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_and_one_that_talks_keeps_its_connection() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = IdleDeadline::new(near, Duration::from_secs(2), Duration::from_secs(5));
        let mut buf = [0u8; 8];
        // Bytes at 1.5 s, inside the first-byte deadline; then the idle deadline holds.
        let talker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            far.write_all(b"hi").await.unwrap();
            tokio::time::sleep(Duration::from_secs(4)).await;
            far.write_all(b"there").await.unwrap();
            far
        });
        assert_eq!(io.read(&mut buf).await.unwrap(), 2);
        assert_eq!(io.read(&mut buf).await.unwrap(), 5);
        let _far = talker.await.unwrap();
        let started = Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_sends_is_closed_at_the_first_byte_deadline() {
        let (near, _far) = tokio::io::duplex(64);
        let mut io = IdleDeadline::new(near, Duration::from_secs(2), Duration::from_secs(60));
        let started = Instant::now();
        let err = io.read(&mut [0u8; 4]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_waiting_for_its_answer_is_not_idle() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = IdleDeadline::new(near, Duration::from_secs(2), Duration::from_secs(3));
        far.write_all(b"GET").await.unwrap();
        assert_eq!(io.read(&mut [0u8; 8]).await.unwrap(), 3);
        let answering = InFlight::enter(&io.busy());
        let mut buf = [0u8; 8];
        assert!(
            tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf))
                .await
                .is_err()
        );
        drop(answering);
        let started = Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_taking_the_response_is_closed() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = IdleDeadline::new(near, Duration::from_secs(2), Duration::from_secs(3));
        let err = io.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
