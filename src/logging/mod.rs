//! The process's log: `tracing` events as text or JSON lines on stdout, every line
//! passed through [`redact::redact`] on its way out.
//!
//! The code that logs keeps secrets out (see `api::trace` for requests); the redacting
//! writer is the last line of defence for what a dependency or a future log statement
//! lets through, at any level (`RUST_LOG=trace` included). Records of the `log` crate
//! (retina, among others) arrive through `tracing-log` and take the same way.

pub mod redact;

use std::io::{self, IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Filter when `RUST_LOG` is unset or invalid.
const DEFAULT_FILTER: &str = "info,tower_http=warn";

/// Installs the global subscriber: `RUST_LOG` filtering, text (coloured only on a
/// terminal) or JSON lines, written through [`Redacting`] to stdout.
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stdout().is_terminal())
        .with_writer(Redacting(io::stdout));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A [`MakeWriter`] whose writers mask secrets in each event before it reaches the
/// inner writer.
///
/// The formatter hands over one event at a time, usually in a single `write` ending in
/// a newline; that is redacted in place without a copy. Anything written in pieces is
/// gathered until its newline (or until the writer is dropped, at the end of the
/// event), so a secret split across writes is still seen whole.
#[derive(Clone, Copy, Debug)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.0.make_writer(),
            pending: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter {
            inner: self.0.make_writer_for(meta),
            pending: Vec::new(),
        }
    }
}

/// One event's writer; see [`Redacting`].
pub struct RedactingWriter<W: Write> {
    inner: W,
    /// Bytes of an event written in pieces, waiting for its newline.
    pending: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(bytes);
        self.inner.write_all(redact::redact(&text).as_bytes())
    }

    fn emit_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.emit(&pending)
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let complete = buf.ends_with(b"\n");
        if self.pending.is_empty() && complete {
            self.emit(buf)?;
        } else {
            self.pending.extend_from_slice(buf);
            if complete {
                self.emit_pending()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit_pending()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        // Nowhere to report a failed log write.
        let _ = self.emit_pending();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Everything written, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        }
    }

    const JWT: &str = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXNpZw";

    #[test]
    fn a_secret_written_in_pieces_is_still_masked() {
        let out = Captured::default();
        let sink = out.clone();
        let make = Redacting(move || sink.clone());
        {
            let mut w = make.make_writer();
            w.write_all(b"a Bearer eyJ0eXAiOiJKV1Qi").expect("write");
            w.write_all(b"fQ.eyJzdWIiOiJ1In0.c2lnbmF0dXJl\nnext")
                .expect("write");
            // The rest arrives at the end of the event, when the writer goes.
        }
        assert_eq!(out.text(), "a Bearer ***\nnext");
    }

    #[test]
    fn text_and_json_events_are_masked() {
        for json in [false, true] {
            let out = Captured::default();
            let sink = out.clone();
            let builder = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .with_writer(Redacting(move || sink.clone()));
            let log = || {
                let span =
                    tracing::debug_span!("request", uri = %format!("/hls/s/v.m3u8?token={JWT}"));
                let _entered = span.enter();
                tracing::trace!(
                    password = "pw-1234",
                    url = "rtsp://u:pw-1234@cam/x",
                    "connecting"
                );
                tracing::info!(header = %format!("Bearer {JWT}"), "ok");
            };
            if json {
                tracing::subscriber::with_default(builder.json().finish(), log);
            } else {
                tracing::subscriber::with_default(builder.finish(), log);
            }
            let text = out.text();
            assert_eq!(text.lines().count(), 2, "{text}");
            assert!(
                text.contains("connecting") && text.contains("/hls/s/v.m3u8"),
                "{text}"
            );
            assert!(
                !text.contains("pw-1234") && !text.contains("c2lnbmF0dXJl"),
                "{text}"
            );
        }
    }
}
