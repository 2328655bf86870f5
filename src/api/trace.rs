//! The HTTP request log: one `request` span per request (at debug level, like
//! tower-http's default) holding what may be logged of it, and nothing else.
//!
//! A request carries secrets in two places: the `Authorization` header (access and
//! playback tokens) and the query (`?token=`, the playback token players put in every
//! URL). The span records the method, the path, the HTTP version and the query with
//! the value of every parameter not known to be harmless replaced by `***`; it never
//! records a header. tower-http's default span records the whole URI, token included.

use std::borrow::Cow;
use std::fmt;

use axum::http::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, TraceLayer};
use tracing::Span;

/// Query parameters whose values are logged as they are: the LL-HLS delivery
/// directives, paging and the player bundle's version. Every other value is masked,
/// so a parameter added later is secret until it is listed here.
const PLAIN_PARAMETERS: &[&str] = &["_HLS_msn", "_HLS_part", "_HLS_skip", "limit", "cursor", "v"];

/// The trace layer of [`super::app`]: tower-http's request/response events inside a
/// [`RequestSpan`].
pub fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan> {
    TraceLayer::new_for_http().make_span_with(RequestSpan)
}

/// Makes the `request` span: method, path, masked query, version; no headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            query = tracing::field::Empty,
            version = ?request.version(),
        );
        if let Some(query) = request.uri().query() {
            span.record("query", tracing::field::display(MaskedQuery(query)));
        }
        span
    }
}

/// A raw query string (`a=1&b=2`) that displays as [`mask_query`] renders it.
struct MaskedQuery<'a>(&'a str);

impl fmt::Display for MaskedQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_query(self.0))
    }
}

/// `query` with the value of every parameter outside [`PLAIN_PARAMETERS`] replaced by
/// `***`; names, order and empty values are kept (`token=` stays `token=`, so a log
/// still shows that a client sent an empty token).
pub fn mask_query(query: &str) -> Cow<'_, str> {
    let secret = |pair: &str| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        !value.is_empty() && !PLAIN_PARAMETERS.contains(&name)
    };
    if !query.split('&').any(secret) {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        if secret(pair) {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            out.push_str(name);
            out.push_str("=***");
        } else {
            out.push_str(pair);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_directives_stay_and_tokens_go() {
        assert_eq!(
            mask_query("_HLS_msn=12&_HLS_part=3&token=eyJhbGciOi.x.y"),
            "_HLS_msn=12&_HLS_part=3&token=***"
        );
        assert_eq!(
            mask_query("token=abc&_HLS_skip=YES"),
            "token=***&_HLS_skip=YES"
        );
        assert_eq!(mask_query("limit=5&cursor=st_1"), "limit=5&cursor=st_1");
    }

    #[test]
    fn unknown_parameters_are_secret_until_listed() {
        assert_eq!(
            mask_query("access_token=a&key=b&whatever=c"),
            "access_token=***&key=***&whatever=***"
        );
        // Names are compared exactly: a look-alike is masked.
        assert_eq!(mask_query("_hls_msn=1&V=2"), "_hls_msn=***&V=***");
    }

    #[test]
    fn odd_queries_keep_their_shape() {
        assert_eq!(mask_query(""), "");
        assert_eq!(mask_query("token="), "token=");
        assert_eq!(mask_query("flag&&token=x=y"), "flag&&token=***");
        assert!(matches!(mask_query("_HLS_msn=1"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_span_never_holds_the_token_or_a_header() {
        use std::sync::{Arc, Mutex};
        use tracing::field::{Field, Visit};
        use tracing::span::{Attributes, Id, Record};

        /// Collects every span field as `name=value`.
        #[derive(Clone, Default)]
        struct Fields(Arc<Mutex<Vec<String>>>);
        impl Visit for Fields {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
                all.push(format!("{}={value:?}", field.name()));
            }
        }
        impl tracing::Subscriber for Fields {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, span: &Attributes<'_>) -> Id {
                span.record(&mut self.clone());
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, values: &Record<'_>) {
                values.record(&mut self.clone());
            }
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }

        let fields = Fields::default();
        let request =
            Request::get("http://example.test/hls/s/video.m3u8?_HLS_msn=4&token=eyJ0.eyJz.c2ln")
                .header("authorization", "Bearer eyJ0.eyJz.c2ln")
                .body(())
                .expect("request");
        tracing::subscriber::with_default(fields.clone(), || {
            let _span = RequestSpan.make_span(&request);
        });
        let all = fields.0.lock().unwrap_or_else(|p| p.into_inner()).join(" ");
        assert!(all.contains("path=/hls/s/video.m3u8"), "{all}");
        assert!(all.contains("query=_HLS_msn=4&token=***"), "{all}");
        assert!(
            !all.contains("eyJ") && !all.contains("example.test"),
            "{all}"
        );
    }
}
