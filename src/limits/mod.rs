//! Who may hold the server's sockets, and for how long: connection caps per address and
//! in total on each port, a budget of failed publish attempts per address, and idle
//! deadlines on HTTP connections. One peer (or one address's worth of peers) must never
//! be able to keep broadcasters or viewers out.

pub mod address;
pub mod connections;
pub mod failures;
pub mod held;
pub mod idle;

use std::sync::Arc;
use std::time::Duration;

pub use connections::{Admission, ConnectionGate, Refusal};
pub use failures::FailureBudget;
pub use held::HeldRequests;

/// The configured limits, as the listeners and `/metrics` share them.
pub struct Limits {
    pub http: Arc<ConnectionGate>,
    pub rtmp: Arc<ConnectionGate>,
    /// Publish attempts with keys that match no stream, per address.
    pub publish_failures: FailureBudget,
    /// LL-HLS requests held open until their part or playlist exists.
    pub held_requests: HeldRequests,
    /// How long an HTTP client has for its request line and headers, and for its first
    /// byte on a new connection.
    pub http_header_timeout: Duration,
    /// An HTTP connection on which nothing moves for this long is closed.
    pub http_idle_timeout: Duration,
}

impl Limits {
    pub fn new(config: &crate::config::LimitsConfig) -> Self {
        Self {
            http: Arc::new(ConnectionGate::new(
                "http",
                config.http_connections,
                config.http_connections_per_address,
            )),
            rtmp: Arc::new(ConnectionGate::new(
                "rtmp",
                config.rtmp_connections,
                config.rtmp_connections_per_address,
            )),
            publish_failures: FailureBudget::new(
                config.publish_failures_per_address,
                Duration::from_secs(config.publish_failure_window_s),
                Duration::from_secs(config.publish_block_s),
            ),
            held_requests: HeldRequests::new(config.max_held_requests),
            http_header_timeout: Duration::from_millis(config.http_header_timeout_ms),
            http_idle_timeout: Duration::from_millis(config.http_idle_timeout_ms),
        }
    }
}
