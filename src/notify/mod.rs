//! Notifications off the media path (issue 12): the durable [`outbox`] that every
//! domain event worth telling anyone about is written to, the [`bus_writer`] that
//! records the media path's events there (and [`asset_writer`] the asset bus's), and [`webhooks`], [`mail`] and [`in_app`] that deliver it ([`audience`] decides who
//! is told on which channel).
//!
//! Nothing here is called by the media path: the live path publishes on the lifecycle
//! bus (which never waits), and the one bus writer turns what it hears into outbox
//! rows. Catalog and account writes insert their message in their own transaction.

pub mod asset_writer;
pub mod audience;
pub mod bus_writer;
pub mod in_app;
pub mod mail;
pub mod outbox;
pub mod payloads;
pub mod webhooks;
