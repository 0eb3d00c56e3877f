//! Lobby: a chat server where people log in through a web form and only a
//! logged-in session can open the live connection.
//!
//! The modules, from the bottom layer up. Each imports only from layers
//! below it (`docs/design.md` has the picture):
//!
//! - [`domain`]: what Lobby is about (usernames, roles, chat text, endings), as plain types.
//! - [`config`]: every setting, from flags, the environment or `.env`.
//! - [`rate`], [`token`], [`telemetry`], [`process`], [`tasks`]: small tools
//!   (token buckets, random tokens, logging, the process's limits, owned background work).
//! - [`sso`]: sign-in through GitHub or an OpenID Connect provider: a callback in, an identity out.
//! - [`websocket`]: the WebSocket protocol itself, kept lean for crowds of idle sockets.
//! - [`notify`]: notifications between nodes: channels, payloads, sending.
//! - [`store`]: the storage seam: every SQL statement, for SQLite and PostgreSQL.
//! - [`search_indexer`]: SQLite's search indexes brought up to the log after each commit.
//! - [`files`]: files shared in rooms: the storage (a directory or S3), uploads, thumbnails, the sweep.
//! - [`sessions`]: how long sessions live, where they are kept, how they end.
//! - [`accounts`]: users, argon2id hashing off the async workers, the axum-login backend.
//! - [`cluster`]: this node's membership of a cluster on PostgreSQL: the listener, the heartbeat.
//! - [`realtime`]: the live half: presence, revocation, the chat log, one task per connection.
//! - [`push`]: Web Push for users with no tab open: subscriptions, the queue, the sender.
//! - [`web`]: the router, pages (askama), forms, the cross-origin guard, the error type.
//! - [`metrics`]: Prometheus metrics on `METRICS_ADDR`.
//! - [`app`]: builds all of the above around a bound listener and runs it until shutdown.

pub mod domain;

pub mod config;
pub mod process;
pub mod rate;
pub mod tasks;
pub mod telemetry;
pub mod token;

pub mod sso;
pub mod websocket;

pub mod notify;
pub mod store;

pub mod search_indexer;

pub mod files;

pub mod accounts;
pub mod sessions;

pub mod cluster;
pub mod realtime;

pub mod push;

pub mod web;

pub mod app;
pub mod metrics;

pub use app::{Application, StartError};
pub use config::Config;
