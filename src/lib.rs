//! Lobby: a chat server where people log in through a web form and only a
//! logged-in session can open the live connection.
//!
//! A map of the modules, in the order a request meets them:
//!
//! - [`config`]: every setting, from flags, the environment or `.env`.
//! - [`store`]: the storage seam: every SQL statement, for SQLite and PostgreSQL.
//! - [`session_cache`]: a short-lived read-through copy of sessions in front of the database.
//! - [`accounts`]: users, argon2id hashing off the async workers, the axum-login backend.
//! - [`sso`]: sign-in through GitHub or an OpenID Connect provider: a callback in, an identity out.
//! - [`web`]: the router, pages (askama), forms, the cross-origin guard, the error type.
//! - [`realtime`]: the live half: presence, revocation, the chat log, one task per connection.
//! - [`websocket`]: the WebSocket protocol itself, kept lean for crowds of idle sockets.
//! - [`cluster`]: one node of many on PostgreSQL: timing and the notification listener.
//! - [`app`]: builds all of the above around a bound listener and runs it until shutdown.
//! - [`limits`]: the open-file limit and the connection ceiling it sets.
//! - [`metrics`]: Prometheus metrics on `METRICS_ADDR`.
//! - [`rate`]: the token bucket (chat messages per user, failed logins per name).
//! - [`telemetry`]: tracing set-up.
//! - [`token`]: random tokens (batch ids, session keys).

pub mod accounts;
pub mod app;
pub mod cluster;
pub mod config;
pub mod limits;
pub mod metrics;
pub mod rate;
pub mod realtime;
pub mod session_cache;
pub mod sso;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod web;
pub mod websocket;

pub use app::{Application, StartError};
pub use config::Config;
