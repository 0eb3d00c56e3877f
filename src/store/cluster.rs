//! The cluster's tables (PostgreSQL only): nodes and their heartbeats, who is
//! connected on which node, and the join and leave announcements.
//!
//! Locks, always taken in this order so two transactions never wait on each
//! other in a cycle: a node's own row (its heartbeat), then the affected
//! users' advisory locks in ascending id order, then `presence_head`. A
//! user's join or leave is decided only under that user's lock, in the same
//! transaction that writes the announcement, so it is announced exactly once
//! however many nodes change the user's tabs at the same moment.

use std::{collections::HashMap, time::Duration};

use sqlx::{PgPool, Postgres, Transaction};

use super::StoreError;
use crate::notify::{self, Channel};

/// The key space of the per-user advisory locks (any constant of ours).
const USER_LOCKS: i32 = 0x4c6f_6262; // "Lobb"

/// A node's handle on the cluster's tables.
#[derive(Clone, Debug)]
pub struct ClusterStore {
    pool: PgPool,
    /// `NODE_TTL`: a node whose heartbeat is older is counted out.
    ttl: Duration,
}

/// A user whose tabs on this node changed, or who asks for more.
#[derive(Debug, Clone, Copy)]
pub struct TabChange {
    pub user_id: i64,
    /// Tabs admitted and still open here.
    pub held: usize,
    /// Tabs waiting to be admitted here.
    pub wanted: usize,
}

#[derive(Debug)]
pub enum Flushed {
    /// Written; how many of the wanted tabs each user was granted.
    Granted(HashMap<i64, usize>),
    /// This node's row is gone: another node counted it out.
    CountedOut,
}

/// A join or leave announcement, as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Announcement {
    pub seq: i64,
    pub user_id: i64,
    pub username: String,
    pub connected: bool,
    pub current_users: i32,
    pub online_users: i32,
}

/// The other nodes' share of the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Elsewhere {
    /// Connections on other live nodes.
    pub connections: usize,
}

impl ClusterStore {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }

    fn ttl_secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// Joins the cluster as a new node; returns its id.
    pub async fn register(&self, name: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("INSERT INTO nodes (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The heartbeat: writes this node's connection count and the tabs of
    /// the users in `changes`, grants what they ask for (up to `max_tabs`
    /// per user across live nodes), and announces the joins and leaves that
    /// follow. One transaction, however many users changed.
    #[tracing::instrument(skip_all, fields(node, users = changes.len()))]
    pub async fn flush(
        &self,
        node: i64,
        connections: usize,
        changes: &[TabChange],
        max_tabs: usize,
    ) -> Result<Flushed, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Our own row first (see the lock order above).
        let alive: Option<i64> = sqlx::query_scalar(
            "UPDATE nodes SET heartbeat_at = now(), connections = $2 WHERE id = $1 RETURNING id",
        )
        .bind(node)
        .bind(connections as i32)
        .fetch_optional(&mut *tx)
        .await?;
        if alive.is_none() {
            return Ok(Flushed::CountedOut);
        }
        if changes.is_empty() {
            tx.commit().await?;
            return Ok(Flushed::Granted(HashMap::new()));
        }
        let users = sorted_users(changes.iter().map(|c| c.user_id));
        lock_users(&mut tx, &users).await?;
        let elsewhere: HashMap<i64, i64> = sqlx::query_as(
            "SELECT p.user_id, sum(p.tabs)::bigint FROM presence p JOIN nodes n ON n.id = p.node_id
             WHERE p.user_id = ANY($1) AND p.node_id <> $2 AND n.heartbeat_at > now() - make_interval(secs => $3)
             GROUP BY p.user_id",
        )
        .bind(&users)
        .bind(node)
        .bind(self.ttl_secs())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();

        let mut granted = HashMap::new();
        let (mut keep_users, mut keep_tabs, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for change in changes {
            let others = elsewhere.get(&change.user_id).copied().unwrap_or(0).max(0) as usize;
            let room = max_tabs.saturating_sub(others + change.held);
            let grant = change.wanted.min(room);
            granted.insert(change.user_id, grant);
            match change.held + grant {
                0 => gone.push(change.user_id),
                tabs => {
                    keep_users.push(change.user_id);
                    keep_tabs.push(tabs as i32);
                }
            }
        }
        sqlx::query(
            "INSERT INTO presence (node_id, user_id, tabs) SELECT $1, * FROM unnest($2::bigint[], $3::int4[])
             ON CONFLICT (node_id, user_id) DO UPDATE SET tabs = excluded.tabs",
        )
        .bind(node)
        .bind(&keep_users)
        .bind(&keep_tabs)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM presence WHERE node_id = $1 AND user_id = ANY($2)")
            .bind(node)
            .bind(&gone)
            .execute(&mut *tx)
            .await?;
        // The granted seats count from now: announcements below carry them.
        let granted_total: usize = granted.values().sum();
        if granted_total > 0 {
            sqlx::query("UPDATE nodes SET connections = $2 WHERE id = $1")
                .bind(node)
                .bind((connections + granted_total) as i32)
                .execute(&mut *tx)
                .await?;
        }
        self.announce_changes(&mut tx, &users).await?;
        notify::send(&mut *tx, Channel::Presence, &node.to_string()).await?;
        tx.commit().await?;
        Ok(Flushed::Granted(granted))
    }

    /// Counts out every node whose heartbeat is older than the TTL by the
    /// database's clock, and announces the leave of each of their users who
    /// has no tab elsewhere. Not in the TTL after the database itself
    /// started: a restart stops every heartbeat at once, and the nodes need
    /// that long to come back. Returns how many nodes were counted out.
    pub async fn reap(&self, node: i64) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: a node that is writing its heartbeat right now is alive,
        // and another node may be reaping the same rows.
        let dead: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM nodes WHERE id <> $1
               AND heartbeat_at < now() - make_interval(secs => $2)
               AND pg_postmaster_start_time() < now() - make_interval(secs => $2)
             FOR UPDATE SKIP LOCKED",
        )
        .bind(node)
        .bind(self.ttl_secs())
        .fetch_all(&mut *tx)
        .await?;
        if dead.is_empty() {
            return Ok(0);
        }
        let users = self.remove_nodes(&mut tx, &dead).await?;
        tx.commit().await?;
        tracing::warn!(nodes = ?dead, users = users, "counted out nodes whose heartbeat stopped");
        Ok(dead.len())
    }

    /// Leaves the cluster (at shutdown): this node's tabs are gone, and its
    /// users with no tab elsewhere are announced as left.
    pub async fn deregister(&self, node: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        self.remove_nodes(&mut tx, &[node]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the nodes' rows and tabs and announces what follows; returns
    /// how many users were affected.
    async fn remove_nodes(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        nodes: &[i64],
    ) -> Result<usize, StoreError> {
        let users: Vec<i64> =
            sqlx::query_scalar("DELETE FROM presence WHERE node_id = ANY($1) RETURNING user_id")
                .bind(nodes)
                .fetch_all(&mut **tx)
                .await?;
        sqlx::query("DELETE FROM nodes WHERE id = ANY($1)").bind(nodes).execute(&mut **tx).await?;
        let users = sorted_users(users);
        lock_users(tx, &users).await?;
        self.announce_changes(tx, &users).await?;
        notify::send(&mut **tx, Channel::Presence, "0").await?;
        Ok(users.len())
    }

    /// For users whose locks are held: a user with tabs on a live node who
    /// is not announced as online joins; one announced who has none leaves.
    async fn announce_changes(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        users: &[i64],
    ) -> Result<(), StoreError> {
        let live: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT p.user_id FROM presence p JOIN nodes n ON n.id = p.node_id
             WHERE p.user_id = ANY($1) AND n.heartbeat_at > now() - make_interval(secs => $2)",
        )
        .bind(users)
        .bind(self.ttl_secs())
        .fetch_all(&mut **tx)
        .await?;
        let online: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM online_users WHERE user_id = ANY($1)")
            .bind(users)
            .fetch_all(&mut **tx)
            .await?;
        let joins: Vec<i64> = live.iter().copied().filter(|u| !online.contains(u)).collect();
        let leaves: Vec<i64> = online.iter().copied().filter(|u| !live.contains(u)).collect();
        if joins.is_empty() && leaves.is_empty() {
            return Ok(());
        }
        sqlx::query("INSERT INTO online_users (user_id) SELECT unnest($1::bigint[])")
            .bind(&joins)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM online_users WHERE user_id = ANY($1)")
            .bind(&leaves)
            .execute(&mut **tx)
            .await?;
        let (current, online_now): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(connections), 0) FROM nodes
                     WHERE heartbeat_at > now() - make_interval(secs => $1))::bigint,
                    (SELECT count(*) FROM online_users)",
        )
        .bind(self.ttl_secs())
        .fetch_one(&mut **tx)
        .await?;
        // Each announcement carries the online count as it was right after it.
        let changes: Vec<(i64, bool)> =
            joins.iter().map(|u| (*u, true)).chain(leaves.iter().map(|u| (*u, false))).collect();
        let mut online = online_now - joins.len() as i64 + leaves.len() as i64;
        let (mut seqs, mut who, mut connected, mut onlines) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let head: i64 = sqlx::query_scalar(
            "UPDATE presence_head SET position = position + $1 WHERE id = 1 RETURNING position",
        )
        .bind(changes.len() as i64)
        .fetch_one(&mut **tx)
        .await?;
        for (i, (user, joined)) in changes.iter().enumerate() {
            online += if *joined { 1 } else { -1 };
            seqs.push(head - changes.len() as i64 + 1 + i as i64);
            who.push(*user);
            connected.push(*joined);
            onlines.push(online as i32);
        }
        sqlx::query(
            "INSERT INTO presence_events (seq, user_id, connected, current_users, online_users)
             SELECT seq, user_id, connected, $5, online FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::int4[])
               AS t (seq, user_id, connected, online)",
        )
        .bind(&seqs)
        .bind(&who)
        .bind(&connected)
        .bind(&onlines)
        .bind(current as i32)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The announcements after `position`, in order.
    pub async fn announcements_after(
        &self,
        position: i64,
        limit: usize,
    ) -> Result<Vec<Announcement>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT e.seq, e.user_id, u.username, e.connected, e.current_users, e.online_users
             FROM presence_events e JOIN users u ON u.id = e.user_id
             WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
        )
        .bind(position)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The users announced as online and the position of the latest
    /// announcement, read together (one snapshot): a new node starts there.
    pub async fn online_snapshot(&self) -> Result<(i64, Vec<String>), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;
        let head: i64 =
            sqlx::query_scalar("SELECT position FROM presence_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let names: Vec<String> =
            sqlx::query_scalar("SELECT u.username FROM online_users o JOIN users u ON u.id = o.user_id")
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok((head, names))
    }

    /// The other live nodes' share of the counts.
    pub async fn elsewhere(&self, node: i64) -> Result<Elsewhere, StoreError> {
        let connections: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(connections), 0)::bigint FROM nodes
             WHERE id <> $1 AND heartbeat_at > now() - make_interval(secs => $2)",
        )
        .bind(node)
        .bind(self.ttl_secs())
        .fetch_one(&self.pool)
        .await?;
        Ok(Elsewhere { connections: connections.max(0) as usize })
    }

    /// Which of `users` have a socket open on a live node, by the presence
    /// table (what each node's heartbeat last wrote).
    pub async fn with_tabs(&self, users: &[i64]) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT p.user_id FROM presence p JOIN nodes n ON n.id = p.node_id
             WHERE p.user_id = ANY($1) AND n.heartbeat_at > now() - make_interval(secs => $2)",
        )
        .bind(users)
        .bind(self.ttl_secs())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets announcements older than `age`: a node away that long starts afresh.
    pub async fn prune_announcements(&self, age: Duration) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM presence_events WHERE at < now() - make_interval(secs => $1)")
            .bind(age.as_secs_f64())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sends notifications outside any other transaction.
    pub async fn notify(&self, channel: Channel, payloads: &[String]) -> Result<(), StoreError> {
        for payload in payloads {
            notify::send(&self.pool, channel, payload).await?;
        }
        Ok(())
    }
}

fn sorted_users(users: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut users: Vec<i64> = users.into_iter().collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// Takes the users' advisory locks (held to the end of the transaction), in
/// ascending order.
async fn lock_users(tx: &mut Transaction<'static, Postgres>, users: &[i64]) -> Result<(), sqlx::Error> {
    // The lock key is 32 bits; ids beyond that share a lock, which only
    // serializes more than needed.
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, (u % 2147483647)::int4)
         FROM (SELECT u FROM unnest($2::bigint[]) AS u ORDER BY u) AS ordered",
    )
    .bind(USER_LOCKS)
    .bind(users)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
