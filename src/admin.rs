//! `raftka quorum`: the client side of the quorum administration calls of `ControllerService`
//! (`DescribeQuorum`, `AddLearner`, `ChangeVoters`). Every call has a deadline; a node that is
//! not the leader answers FAILED_PRECONDITION with the leader's address, which is asked once;
//! the bootstrap nodes are tried in turn.
//!
//! Imports `cli`, `rpc`; nothing else of the node.

use crate::cli::{QuorumAction, QuorumArgs};
use crate::rpc::pb::controller::controller_service_client::ControllerServiceClient;
use crate::rpc::pb::controller::{
    AddLearnerRequest, ChangeVotersRequest, DescribeQuorumReply, DescribeQuorumRequest,
    RemoveNodeRequest,
};
use crate::rpc::{LEADER_ADDR_KEY, LEADER_ID_KEY, MESSAGE_BYTES_MAX};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

/// How long connecting to a node may take (within the call's deadline).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before asking again when no leader is known.
const NO_LEADER_PAUSE: Duration = Duration::from_millis(250);

/// Why a quorum command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid address {addr:?}: {reason}")]
    BadAddr { addr: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{addr}: no answer within {ms} ms")]
    Timeout { addr: String, ms: u128 },
    #[error(
        "{addr} is not the controller leader and knows no leader (election in progress?); retry"
    )]
    NoLeader { addr: String },
    #[error("{addr} is not the controller leader either (leader hint: {hint}); retry")]
    LeaderMoved { addr: String, hint: String },
    #[error("{addr}: {code:?}: {message}")]
    Rpc {
        addr: String,
        code: Code,
        message: String,
    },
    #[error("{0}")]
    Refused(String),
}

/// Talks to the quorum through its bootstrap nodes (tried in turn), following a leader hint
/// once per call.
#[derive(Debug, Clone)]
pub struct QuorumClient {
    bootstrap: Vec<String>,
    timeout: Duration,
    /// Mutual TLS to the nodes (`raft.ssl.*` on their side).
    tls: Option<ClientTlsConfig>,
}

impl QuorumClient {
    /// `bootstrap`: one address or a comma-separated list.
    pub fn new(bootstrap: &str, timeout: Duration) -> Self {
        Self {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            timeout,
            tls: None,
        }
    }

    /// The same client speaking mutual TLS (CA, certificate chain and key as PEM text).
    #[must_use]
    pub fn with_tls(mut self, ca: &[u8], cert: &[u8], key: &[u8]) -> Self {
        self.tls = Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert, key)),
        );
        self
    }

    /// The same client talking through other nodes.
    #[must_use]
    pub fn through(&self, bootstrap: Vec<String>) -> Self {
        Self {
            bootstrap,
            timeout: self.timeout,
            tls: self.tls.clone(),
        }
    }

    async fn connect(&self, addr: &str) -> Result<ControllerServiceClient<Channel>, AdminError> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let uri = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("{scheme}://{addr}")
        };
        let bad = |e: tonic::transport::Error| AdminError::BadAddr {
            addr: addr.to_owned(),
            reason: e.to_string(),
        };
        let mut endpoint = Endpoint::from_shared(uri).map_err(bad)?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(bad)?;
        }
        let channel = endpoint
            .connect_timeout(CONNECT_TIMEOUT.min(self.timeout))
            .timeout(self.timeout)
            .connect()
            .await
            .map_err(|e| AdminError::Connect {
                addr: addr.to_owned(),
                reason: std::error::Error::source(&e)
                    .map_or_else(|| e.to_string(), ToString::to_string),
            })?;
        Ok(ControllerServiceClient::new(channel)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX))
    }

    /// Runs `op` against a bootstrap node, and once more against the leader it names. A
    /// bootstrap node that cannot be reached or knows no leader passes the turn to the next
    /// one. While no node knows a leader (an election, e.g. right after the leader removed
    /// itself), asks again after a pause, within the call's deadline.
    async fn on_leader<T, F, Fut>(&self, op: F) -> Result<T, AdminError>
    where
        F: Fn(ControllerServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let Some(first) = self.bootstrap.first() else {
            return Err(AdminError::Refused("no bootstrap address given".into()));
        };
        loop {
            let mut err = AdminError::NoLeader {
                addr: first.clone(),
            };
            let mut election = false;
            for addr in &self.bootstrap {
                err = match self.attempt(addr, &op, deadline).await {
                    Ok(v) => return Ok(v),
                    Err(e @ (AdminError::NoLeader { .. } | AdminError::LeaderMoved { .. })) => {
                        election = true;
                        e
                    }
                    Err(e @ AdminError::Connect { .. }) => e,
                    Err(e) => return Err(e),
                };
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !election || left < NO_LEADER_PAUSE {
                return Err(err);
            }
            tokio::time::sleep(NO_LEADER_PAUSE).await;
        }
    }

    async fn attempt<T, F, Fut>(
        &self,
        bootstrap: &str,
        op: &F,
        deadline: tokio::time::Instant,
    ) -> Result<T, AdminError>
    where
        F: Fn(ControllerServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut addr = bootstrap.to_owned();
        for hop in 0..2 {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let timed_out = |addr: String| AdminError::Timeout {
                addr,
                ms: self.timeout.as_millis(),
            };
            if left.is_zero() {
                return Err(timed_out(addr));
            }
            let client = match tokio::time::timeout(left, self.connect(&addr)).await {
                Err(_) => return Err(timed_out(addr)),
                Ok(c) => c?,
            };
            let status = match tokio::time::timeout(left, op(client, left)).await {
                Err(_) => return Err(timed_out(addr)),
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(status)) => status,
            };
            if status.code() != Code::FailedPrecondition {
                return Err(rpc_error(addr, &status));
            }
            let hint = |key: &str| {
                status
                    .metadata()
                    .get(key)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            match (hop, hint(LEADER_ADDR_KEY)) {
                (0, Some(leader)) => addr = leader,
                (0, None) => return Err(AdminError::NoLeader { addr }),
                _ => {
                    return Err(AdminError::LeaderMoved {
                        addr,
                        hint: hint(LEADER_ID_KEY).unwrap_or_else(|| "none".into()),
                    })
                }
            }
        }
        unreachable!("the loop returns on its second hop")
    }

    /// The leader's view of the quorum.
    ///
    /// # Errors
    /// See [`AdminError`].
    pub async fn describe(&self) -> Result<DescribeQuorumReply, AdminError> {
        self.on_leader(|mut c, t| async move {
            let mut req = Request::new(DescribeQuorumRequest {});
            req.set_timeout(t);
            c.describe_quorum(req)
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }

    /// Adds `id` at `addr` as a learner and waits until it has caught up; returns the log
    /// index of the membership entry.
    ///
    /// # Errors
    /// See [`AdminError`].
    pub async fn add_learner(&self, id: u64, addr: &str) -> Result<u64, AdminError> {
        // The server gives up a little before the transport deadline, so its precise error
        // (not caught up in time) arrives rather than a bare timeout.
        let wait = self.timeout.saturating_sub(self.timeout / 10);
        let timeout_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX).max(1);
        self.on_leader(|mut c, t| async move {
            let mut req = Request::new(AddLearnerRequest {
                node_id: id,
                addr: addr.to_owned(),
                timeout_ms,
            });
            req.set_timeout(t);
            c.add_learner(req).await.map(|r| r.into_inner().log_index)
        })
        .await
    }

    /// Replaces the voter set; returns the voters of the new membership.
    ///
    /// # Errors
    /// See [`AdminError`].
    pub async fn change_voters(&self, voters: &BTreeSet<u64>) -> Result<Vec<u64>, AdminError> {
        let voters: Vec<u64> = voters.iter().copied().collect();
        self.on_leader(|mut c, t| {
            let voters = voters.clone();
            async move {
                let mut req = Request::new(ChangeVotersRequest { voters });
                req.set_timeout(t);
                c.change_voters(req).await.map(|r| r.into_inner().voters)
            }
        })
        .await
    }

    /// Takes a learner out of the membership; returns the log index of the change.
    ///
    /// # Errors
    /// See [`AdminError`].
    pub async fn remove_node(&self, id: u64) -> Result<u64, AdminError> {
        self.on_leader(|mut c, t| async move {
            let mut req = Request::new(RemoveNodeRequest { node_id: id });
            req.set_timeout(t);
            c.remove_node(req).await.map(|r| r.into_inner().log_index)
        })
        .await
    }
}

fn rpc_error(addr: String, status: &Status) -> AdminError {
    AdminError::Rpc {
        addr,
        code: status.code(),
        message: status.message().to_owned(),
    }
}

/// The voters of a describe answer.
pub fn voters(d: &DescribeQuorumReply) -> BTreeSet<u64> {
    d.members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.node_id)
        .collect()
}

/// A describe answer as JSON.
pub fn describe_json(d: &DescribeQuorumReply) -> serde_json::Value {
    let member = |m: &crate::rpc::pb::controller::QuorumMember| {
        serde_json::json!({
            "node_id": m.node_id,
            "addr": m.addr,
            "matched_index": m.matched_index,
        })
    };
    serde_json::json!({
        "leader_id": d.leader_id,
        "term": d.term,
        "commit_index": d.commit_index,
        "last_log_index": d.last_log_index,
        "voters": d.members.iter().filter(|m| m.voter).map(member).collect::<Vec<_>>(),
        "learners": d.members.iter().filter(|m| !m.voter).map(member).collect::<Vec<_>>(),
    })
}

/// A describe answer as a table.
pub fn describe_table(d: &DescribeQuorumReply) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut out = format!(
        "leader: {}  term: {}  commit index: {}  last log index: {}\n",
        d.leader_id,
        d.term,
        opt(d.commit_index),
        opt(d.last_log_index)
    );
    let rows: Vec<[String; 4]> = d
        .members
        .iter()
        .map(|m| {
            let role = if m.node_id == d.leader_id {
                "leader"
            } else if m.voter {
                "voter"
            } else {
                "learner"
            };
            [
                m.node_id.to_string(),
                role.to_owned(),
                m.addr.clone(),
                opt(m.matched_index),
            ]
        })
        .collect();
    let header = ["NODE", "ROLE", "ADDRESS", "MATCHED"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn list(ids: &BTreeSet<u64>) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs one `raftka quorum` command; returns what to print on success.
///
/// # Errors
/// See [`AdminError`].
pub async fn run_quorum(args: &QuorumArgs) -> Result<String, AdminError> {
    let mut client = QuorumClient::new(
        &args.bootstrap,
        Duration::from_millis(u64::from(args.timeout_ms)),
    );
    if let (Some(ca), Some(cert), Some(key)) = (&args.ssl_ca, &args.ssl_cert, &args.ssl_key) {
        let read = |p: &std::path::PathBuf| {
            std::fs::read(p).map_err(|e| AdminError::BadAddr {
                addr: p.display().to_string(),
                reason: format!("cannot read: {e}"),
            })
        };
        client = client.with_tls(&read(ca)?, &read(cert)?, &read(key)?);
    }
    match &args.action {
        QuorumAction::Describe => {
            let d = client.describe().await?;
            Ok(if args.json {
                format!("{}\n", describe_json(&d))
            } else {
                describe_table(&d)
            })
        }
        QuorumAction::AddVoter { id, addr } => {
            let id = u64::try_from(*id).map_err(|_| AdminError::Refused("bad node id".into()))?;
            let before = client.describe().await?;
            if let Some(m) = before.members.iter().find(|m| m.node_id == id) {
                if m.addr != *addr {
                    return Err(AdminError::Refused(format!(
                        "node {id} is already a member at {}; remove it first to change its address",
                        m.addr
                    )));
                }
            }
            let mut voters = voters(&before);
            let out = if voters.contains(&id) {
                format!("node {id} is already a voter; voters: {}", list(&voters))
            } else {
                client.add_learner(id, addr).await?;
                // Re-read: the voter set may have changed meanwhile.
                let mut voters2 = self::voters(&client.describe().await?);
                voters2.insert(id);
                let now: BTreeSet<u64> =
                    client.change_voters(&voters2).await?.into_iter().collect();
                if !now.contains(&id) {
                    return Err(AdminError::Refused(format!(
                        "node {id} is not among the voters after the change: {}",
                        list(&now)
                    )));
                }
                voters = now;
                format!("node {id} added as a voter; voters: {}", list(&voters))
            };
            Ok(if args.json {
                format!("{}\n", serde_json::json!({"node_id": id, "voters": voters}))
            } else {
                format!("{out}\n")
            })
        }
        QuorumAction::RemoveVoter { id } => {
            let id = u64::try_from(*id).map_err(|_| AdminError::Refused("bad node id".into()))?;
            let before = client.describe().await?;
            let addr = before
                .members
                .iter()
                .find(|m| m.node_id == id)
                .map(|m| m.addr.clone());
            let mut voters = voters(&before);
            if !voters.contains(&id) {
                return Err(AdminError::Refused(format!(
                    "node {id} is not a voter; voters: {}",
                    list(&voters)
                )));
            }
            if voters.len() == 1 {
                return Err(AdminError::Refused(format!(
                    "refusing to remove node {id}: it is the last voter"
                )));
            }
            voters.remove(&id);
            let now: BTreeSet<u64> = client.change_voters(&voters).await?.into_iter().collect();
            // A leader that removed itself left the membership (to step down): add it back as a
            // learner through its successor, so its broker keeps following the metadata log.
            // Asked through the remaining voters: the removed node may have been the only
            // bootstrap node, and outside the membership it hears of no new leader.
            let survivors = client.through(
                before
                    .members
                    .iter()
                    .filter(|m| now.contains(&m.node_id))
                    .map(|m| m.addr.clone())
                    .collect(),
            );
            let after = survivors.describe().await?;
            let learner = match (after.members.iter().any(|m| m.node_id == id), addr) {
                (true, _) => Ok(()),
                (false, Some(addr)) => survivors.add_learner(id, &addr).await.map(|_| ()),
                (false, None) => Err(AdminError::Refused("its address is unknown".into())),
            };
            let note = match &learner {
                Ok(()) => "it stays a learner and keeps following the metadata log; \
                           `remove-node` takes it out"
                    .to_owned(),
                Err(e) => {
                    format!("it is out of the membership: re-adding it as a learner failed: {e}")
                }
            };
            Ok(if args.json {
                format!(
                    "{}\n",
                    serde_json::json!({"removed": id, "voters": now, "learner": learner.is_ok()})
                )
            } else {
                format!(
                    "node {id} removed from the voters ({note}); voters: {}\n",
                    list(&now)
                )
            })
        }
        QuorumAction::RemoveNode { id } => {
            let id = u64::try_from(*id).map_err(|_| AdminError::Refused("bad node id".into()))?;
            let before = client.describe().await?;
            match before.members.iter().find(|m| m.node_id == id) {
                None => {
                    return Err(AdminError::Refused(format!("node {id} is not a member")));
                }
                Some(m) if m.voter => {
                    return Err(AdminError::Refused(format!(
                        "node {id} is a voter: remove-voter first"
                    )));
                }
                Some(_) => {}
            }
            client.remove_node(id).await?;
            Ok(if args.json {
                format!("{}\n", serde_json::json!({"removed_node": id}))
            } else {
                format!("node {id} removed from the membership\n")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::pb::controller::QuorumMember;

    fn sample() -> DescribeQuorumReply {
        DescribeQuorumReply {
            leader_id: 2,
            term: 5,
            commit_index: Some(42),
            last_log_index: Some(43),
            members: vec![
                QuorumMember {
                    node_id: 1,
                    addr: "10.0.0.1:9193".into(),
                    voter: true,
                    matched_index: Some(42),
                    ..Default::default()
                },
                QuorumMember {
                    node_id: 2,
                    addr: "10.0.0.2:9193".into(),
                    voter: true,
                    matched_index: Some(43),
                    ..Default::default()
                },
                QuorumMember {
                    node_id: 4,
                    addr: "10.0.0.4:9193".into(),
                    voter: false,
                    matched_index: None,
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn describe_renders_table_and_json() {
        let d = sample();
        assert_eq!(voters(&d), BTreeSet::from([1, 2]));
        let t = describe_table(&d);
        assert!(t.starts_with("leader: 2  term: 5  commit index: 42  last log index: 43\n"));
        assert!(t.contains("NODE  ROLE     ADDRESS        MATCHED"), "{t}");
        assert!(t.contains("2     leader   10.0.0.2:9193  43"), "{t}");
        assert!(t.contains("4     learner  10.0.0.4:9193  -"), "{t}");
        let j = describe_json(&d);
        assert_eq!(j["leader_id"], 2);
        assert_eq!(j["voters"].as_array().map(Vec::len), Some(2));
        assert_eq!(j["learners"][0]["node_id"], 4);
    }

    #[tokio::test]
    async fn unreachable_bootstrap_is_a_clear_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let c = QuorumClient::new(&format!("127.0.0.1:{port}"), Duration::from_secs(2));
        let e = c.describe().await.expect_err("nothing listens");
        assert!(matches!(e, AdminError::Connect { .. }), "{e}");
        // Every bootstrap node is tried; the error names the last one.
        let c = QuorumClient::new(
            &format!("127.0.0.1:{port}, ,localhost:{port}"),
            Duration::from_secs(2),
        );
        assert_eq!(
            c.bootstrap,
            [format!("127.0.0.1:{port}"), format!("localhost:{port}")]
        );
        let e = c.describe().await.expect_err("nothing listens");
        assert!(
            matches!(&e, AdminError::Connect { addr, .. } if addr.starts_with("localhost")),
            "{e}"
        );
        let none = QuorumClient::new(" , ", Duration::from_secs(2));
        assert!(matches!(none.describe().await, Err(AdminError::Refused(_))));
    }
}
