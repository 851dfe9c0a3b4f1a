//! `raftka groups`: consumer group administration over the Kafka protocol, what
//! `kafka-consumer-groups.sh --bootstrap-server` offers: `list` (ListGroups on every node),
//! `describe` (the group's state and members from its coordinator, committed offsets,
//! the partitions' log end offsets from their leaders, and the lag), `reset-offsets` (Kafka's
//! strategies; a dry run unless `--execute`; only for a group without active members, as
//! Kafka's tool), and `delete`. Connects like `raftka users` (SASL when the listener needs it);
//! every request has a deadline.
//!
//! Sits beside `admin` and `users`; imports `cli` and `client`, nothing of the node.

use crate::cli::{GroupsAction, GroupsArgs, ResetStrategy};
use crate::client::{ClientAuth, Conn};
use crate::types::now_ms;
use bytes::Buf;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

const CLIENT_ID: &str = "raftka-groups";

/// The cluster as Metadata shows it: brokers and each topic's partition leaders.
struct Cluster {
    brokers: BTreeMap<i32, String>,
    /// topic -> partition -> leader
    topics: BTreeMap<String, BTreeMap<i32, i32>>,
}

struct Session {
    auth: ClientAuth,
    deadline: Duration,
    bootstrap: Conn,
    cluster: Cluster,
}

fn err_name(code: i16) -> String {
    ResponseError::try_from_code(code).map_or_else(|| format!("error {code}"), |e| format!("{e:?}"))
}

/// A per-partition error code as the command's failure.
fn partition_ok(topic: &str, partition: i32, code: i16) -> Result<(), String> {
    if code == 0 {
        Ok(())
    } else {
        Err(format!("{topic}-{partition}: {}", err_name(code)))
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Runs one `raftka groups` command; the text to print, or why it failed.
///
/// # Errors
/// Connection, authentication or protocol failures, and errors the nodes answer.
pub async fn run_groups(args: &GroupsArgs) -> Result<String, String> {
    let auth = ClientAuth::from_args(&args.connect);
    let deadline = Duration::from_millis(args.connect.timeout_ms);
    let mut bootstrap = auth
        .connect(&args.connect.bootstrap_server, deadline, CLIENT_ID)
        .await?;
    let cluster = metadata(&mut bootstrap).await?;
    let mut s = Session {
        auth,
        deadline,
        bootstrap,
        cluster,
    };
    match &args.action {
        GroupsAction::List => s.list().await,
        GroupsAction::Describe { group, all_groups } => {
            let groups = if *all_groups {
                s.group_ids().await?
            } else if group.is_empty() {
                return Err("name a --group or give --all-groups".into());
            } else {
                group.clone()
            };
            let mut out = String::new();
            for g in groups {
                out.push_str(&s.describe(&g).await?);
                out.push('\n');
            }
            Ok(out)
        }
        GroupsAction::ResetOffsets {
            group,
            topic,
            all_topics,
            strategy,
            execute,
        } => {
            let strategy = strategy.resolve(now_ms())?;
            s.reset(group, topic, *all_topics, &strategy, *execute)
                .await
        }
        GroupsAction::Delete { group } => s.delete(group).await,
    }
}

async fn metadata(conn: &mut Conn) -> Result<Cluster, String> {
    let mut req = MetadataRequest::default();
    req.topics = None; // v4: null = every topic
    let r: MetadataResponse = conn.call(ApiKey::Metadata, 4, &req).await?;
    let brokers = r
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let mut topics = BTreeMap::new();
    for t in &r.topics {
        let Some(name) = &t.name else { continue };
        let parts = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        topics.insert(name.0.to_string(), parts);
    }
    Ok(Cluster { brokers, topics })
}

/// One member of a group.
struct Member {
    id: String,
    client_id: String,
    host: String,
    assigned: Vec<(String, i32)>,
}

/// What a group's coordinator knows of it.
struct GroupView {
    state: String,
    members: Vec<Member>,
    committed: BTreeMap<(String, i32), i64>,
}

/// The partitions of a consumer protocol assignment (version, [topic [partition]], user data).
pub(crate) fn assignment(mut b: &[u8]) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let mut go = || -> Option<()> {
        if b.remaining() < 6 {
            return None;
        }
        let _version = b.get_i16();
        let topics = b.get_i32();
        for _ in 0..topics.clamp(0, 100_000) {
            if b.remaining() < 2 {
                return None;
            }
            let n = usize::try_from(b.get_i16()).ok()?;
            if b.remaining() < n + 4 {
                return None;
            }
            let name = String::from_utf8_lossy(&b[..n]).into_owned();
            b.advance(n);
            let parts = b.get_i32();
            for _ in 0..parts.clamp(0, 1_000_000) {
                if b.remaining() < 4 {
                    return None;
                }
                out.push((name.clone(), b.get_i32()));
            }
        }
        Some(())
    };
    let _ = go();
    out
}

impl Session {
    async fn connect(&self, node: i32) -> Result<Conn, String> {
        let addr = self
            .cluster
            .brokers
            .get(&node)
            .ok_or_else(|| format!("node {node} is not in the metadata"))?;
        self.auth.connect(addr, self.deadline, CLIENT_ID).await
    }

    async fn coordinator(&mut self, group: &str) -> Result<Conn, String> {
        let mut req = FindCoordinatorRequest::default();
        req.key = sb(group);
        let r: FindCoordinatorResponse = self
            .bootstrap
            .call(ApiKey::FindCoordinator, 1, &req)
            .await?;
        if r.error_code != 0 {
            return Err(format!(
                "{group}: no coordinator: {}",
                err_name(r.error_code)
            ));
        }
        let addr = format!("{}:{}", r.host, r.port);
        self.auth.connect(&addr, self.deadline, CLIENT_ID).await
    }

    /// Every group of every node.
    async fn group_ids(&mut self) -> Result<Vec<String>, String> {
        let mut all = std::collections::BTreeSet::new();
        let nodes: Vec<i32> = self.cluster.brokers.keys().copied().collect();
        for n in nodes {
            let mut c = self.connect(n).await?;
            let r: ListGroupsResponse = c
                .call(ApiKey::ListGroups, 3, &ListGroupsRequest::default())
                .await?;
            if r.error_code != 0 {
                return Err(format!("node {n}: {}", err_name(r.error_code)));
            }
            all.extend(r.groups.iter().map(|g| g.group_id.0.to_string()));
        }
        Ok(all.into_iter().collect())
    }

    async fn list(&mut self) -> Result<String, String> {
        Ok(self
            .group_ids()
            .await?
            .into_iter()
            .map(|g| g + "\n")
            .collect())
    }

    async fn view(&mut self, group: &str) -> Result<GroupView, String> {
        let mut c = self.coordinator(group).await?;
        let mut req = DescribeGroupsRequest::default();
        req.groups = vec![GroupId(sb(group))];
        let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 3, &req).await?;
        let g = r.groups.first().ok_or("empty DescribeGroups answer")?;
        if g.error_code != 0 {
            return Err(format!("{group}: {}", err_name(g.error_code)));
        }
        let members = g
            .members
            .iter()
            .map(|m| Member {
                id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assigned: assignment(&m.member_assignment),
            })
            .collect();
        let mut req = OffsetFetchRequest::default();
        req.group_id = GroupId(sb(group));
        req.topics = None;
        let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 5, &req).await?;
        if r.error_code != 0 {
            return Err(format!("{group}: {}", err_name(r.error_code)));
        }
        let mut committed = BTreeMap::new();
        for t in &r.topics {
            for p in &t.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    committed.insert(
                        (t.name.0.to_string(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        Ok(GroupView {
            state: g.group_state.to_string(),
            members,
            committed,
        })
    }

    /// ListOffsets at `timestamp` (-1 latest, -2 earliest) for `parts`, from their leaders.
    async fn offsets(
        &mut self,
        parts: &[(String, i32)],
        timestamp: i64,
    ) -> Result<BTreeMap<(String, i32), i64>, String> {
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for (t, p) in parts {
            let leader = self
                .cluster
                .topics
                .get(t)
                .and_then(|ps| ps.get(p))
                .copied()
                .filter(|l| *l >= 0)
                .ok_or_else(|| format!("{t}-{p}: unknown partition or no leader"))?;
            by_leader.entry(leader).or_default().push((t.clone(), *p));
        }
        let mut out = BTreeMap::new();
        for (leader, ps) in by_leader {
            let mut req = ListOffsetsRequest::default();
            req.replica_id = BrokerId(-1);
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in &ps {
                topics.entry(t.as_str()).or_default().push(*p);
            }
            for (t, ps) in topics {
                let mut lt = ListOffsetsTopic::default();
                lt.name = TopicName(sb(t));
                for p in ps {
                    let mut lp = ListOffsetsPartition::default();
                    lp.partition_index = p;
                    lp.timestamp = timestamp;
                    lt.partitions.push(lp);
                }
                req.topics.push(lt);
            }
            let mut c = self.connect(leader).await?;
            let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 1, &req).await?;
            for t in &r.topics {
                for p in &t.partitions {
                    partition_ok(&t.name.0, p.partition_index, p.error_code)?;
                    out.insert((t.name.0.to_string(), p.partition_index), p.offset);
                }
            }
        }
        Ok(out)
    }

    async fn describe(&mut self, group: &str) -> Result<String, String> {
        let v = self.view(group).await?;
        if v.state == "Dead" && v.committed.is_empty() {
            return Err(format!("Consumer group '{group}' does not exist."));
        }
        let mut owner: BTreeMap<(String, i32), usize> = BTreeMap::new();
        for (i, m) in v.members.iter().enumerate() {
            for tp in &m.assigned {
                owner.insert(tp.clone(), i);
            }
        }
        let mut parts: Vec<(String, i32)> = v.committed.keys().cloned().collect();
        parts.extend(owner.keys().cloned());
        parts.sort();
        parts.dedup();
        let ends = self.offsets(&parts, -1).await?;
        let mut out = String::new();
        if v.members.is_empty() {
            let _ = writeln!(out, "Consumer group '{group}' has no active members.");
        }
        let _ = writeln!(out, "GROUP {group} STATE {}", v.state);
        let _ = writeln!(
            out,
            "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID"
        );
        for tp in &parts {
            let cur = v.committed.get(tp).copied();
            let end = ends.get(tp).copied();
            let lag = match (cur, end) {
                (Some(c), Some(e)) => (e - c).max(0).to_string(),
                _ => "-".into(),
            };
            let (member, host, client) = owner
                .get(tp)
                .map(|i| &v.members[*i])
                .map_or(("-", "-", "-"), |m| {
                    (m.id.as_str(), m.host.as_str(), m.client_id.as_str())
                });
            let show = |x: Option<i64>| x.map_or("-".to_owned(), |n| n.to_string());
            let _ = writeln!(
                out,
                "{group} {} {} {} {} {lag} {member} {host} {client}",
                tp.0,
                tp.1,
                show(cur),
                show(end)
            );
        }
        Ok(out)
    }

    async fn reset(
        &mut self,
        group: &str,
        topics: &[String],
        all_topics: bool,
        strategy: &ResetStrategy,
        execute: bool,
    ) -> Result<String, String> {
        let v = self.view(group).await?;
        if !matches!(v.state.as_str(), "Empty" | "Dead") {
            return Err(format!(
                "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
                v.state
            ));
        }
        // The partitions: --all-topics = those with committed offsets; `t` = every partition
        // of t; `t:0,2` = those.
        let mut parts: Vec<(String, i32)> = Vec::new();
        if all_topics {
            parts.extend(v.committed.keys().cloned());
        }
        for spec in topics {
            let (t, list) = match spec.split_once(':') {
                Some((t, l)) => (t, Some(l)),
                None => (spec.as_str(), None),
            };
            let known = self
                .cluster
                .topics
                .get(t)
                .ok_or_else(|| format!("topic {t} does not exist"))?;
            match list {
                None => parts.extend(known.keys().map(|p| (t.to_owned(), *p))),
                Some(l) => {
                    for p in l.split(',') {
                        let p: i32 = p
                            .trim()
                            .parse()
                            .map_err(|_| format!("bad partition {p:?} in {spec}"))?;
                        if !known.contains_key(&p) {
                            return Err(format!("{t}-{p} does not exist"));
                        }
                        parts.push((t.to_owned(), p));
                    }
                }
            }
        }
        parts.sort();
        parts.dedup();
        if parts.is_empty() {
            return Err("no partitions to reset: name --topic or give --all-topics".into());
        }
        let earliest = self.offsets(&parts, -2).await?;
        let latest = self.offsets(&parts, -1).await?;
        let clamp = |tp: &(String, i32), o: i64| {
            let lo = earliest.get(tp).copied().unwrap_or(0);
            let hi = latest.get(tp).copied().unwrap_or(lo);
            o.clamp(lo, hi.max(lo))
        };
        let at_time = match strategy {
            ResetStrategy::ToDatetime(ts) | ResetStrategy::ByDuration(ts) => {
                Some(self.offsets(&parts, *ts).await?)
            }
            _ => None,
        };
        let mut new = BTreeMap::new();
        for tp in &parts {
            let o = match strategy {
                ResetStrategy::ToEarliest => earliest.get(tp).copied().unwrap_or(0),
                ResetStrategy::ToLatest => latest.get(tp).copied().unwrap_or(0),
                ResetStrategy::ToOffset(n) => clamp(tp, *n),
                ResetStrategy::ShiftBy(n) => {
                    let cur = v.committed.get(tp).copied().ok_or_else(|| {
                        format!("{}-{}: no committed offset to shift", tp.0, tp.1)
                    })?;
                    clamp(tp, cur.saturating_add(*n))
                }
                ResetStrategy::ToDatetime(_) | ResetStrategy::ByDuration(_) => {
                    // No record at or after the time: the log end.
                    match at_time.as_ref().and_then(|m| m.get(tp)).copied() {
                        Some(o) if o >= 0 => o,
                        _ => latest.get(tp).copied().unwrap_or(0),
                    }
                }
            };
            new.insert(tp.clone(), o);
        }
        if execute {
            let mut req = OffsetCommitRequest::default();
            req.group_id = GroupId(sb(group));
            req.generation_id_or_member_epoch = -1;
            req.member_id = sb("");
            req.retention_time_ms = -1;
            let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
            for ((t, p), o) in &new {
                by_topic.entry(t.as_str()).or_default().push((*p, *o));
            }
            for (t, ps) in by_topic {
                let mut ct = OffsetCommitRequestTopic::default();
                ct.name = TopicName(sb(t));
                for (p, o) in ps {
                    let mut cp = OffsetCommitRequestPartition::default();
                    cp.partition_index = p;
                    cp.committed_offset = o;
                    cp.committed_metadata = Some(sb(""));
                    ct.partitions.push(cp);
                }
                req.topics.push(ct);
            }
            let mut c = self.coordinator(group).await?;
            let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 2, &req).await?;
            for t in &r.topics {
                for p in &t.partitions {
                    partition_ok(&t.name.0, p.partition_index, p.error_code)?;
                }
            }
        }
        let mut out = String::from("GROUP TOPIC PARTITION NEW-OFFSET\n");
        for ((t, p), o) in &new {
            let _ = writeln!(out, "{group} {t} {p} {o}");
        }
        if !execute {
            out.push_str("(dry run: add --execute to commit these offsets)\n");
        }
        Ok(out)
    }

    async fn delete(&mut self, groups: &[String]) -> Result<String, String> {
        if groups.is_empty() {
            return Err("name the groups with --group".into());
        }
        let mut failed = Vec::new();
        for g in groups {
            let mut c = self.coordinator(g).await?;
            let mut req = DeleteGroupsRequest::default();
            req.groups_names = vec![GroupId(sb(g))];
            let r: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 1, &req).await?;
            for res in &r.results {
                if res.error_code != 0 {
                    failed.push(format!("{}: {}", res.group_id.0, err_name(res.error_code)));
                }
            }
        }
        if failed.is_empty() {
            Ok(format!(
                "Deletion of requested consumer groups ('{}') was successful.\n",
                groups.join("', '")
            ))
        } else {
            Err(format!("Deletion failed: {}", failed.join("; ")))
        }
    }
}

/// Milliseconds since the epoch of an ISO-8601 date-time, `YYYY-MM-DDTHH:MM:SS[.sss]` with an
/// optional `Z` or `±HH:MM` (UTC when absent), as `--to-datetime` takes it.
///
/// # Errors
/// Anything else.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("bad date-time {s:?} (YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM])");
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [y, mo, day] = d[..] else {
        return Err(bad());
    };
    let (time, offset_min) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':').ok_or_else(bad)?;
        let h: i64 = h.parse().map_err(|_| bad())?;
        let m: i64 = m.parse().map_err(|_| bad())?;
        (t, sign * (h * 60 + m))
    } else {
        (rest, 0)
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [h, mi, sec] = t[..] else {
        return Err(bad());
    };
    let ms: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((((days * 24 + h) * 60 + mi) * 60 + sec) * 1000 + ms - offset_min * 60_000)
}

/// Milliseconds of an ISO-8601 duration `PnDTnHnMnS` (Java's `Duration.parse`), as
/// `--by-duration` takes it.
///
/// # Errors
/// Anything else.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("bad duration {s:?} (PnDTnHnMnS, e.g. PT1H30M)");
    let body = s.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = body.split_once('T').unwrap_or((body, ""));
    let mut ms: i64 = 0;
    if !days.is_empty() {
        let n: i64 = days
            .strip_suffix('D')
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        ms += n * 86_400_000;
    }
    let mut num = String::new();
    for c in time.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'H' | 'M' | 'S' => {
                let v: f64 = num.parse().map_err(|_| bad())?;
                let unit = match c {
                    'H' => 3_600_000.0,
                    'M' => 60_000.0,
                    _ => 1000.0,
                };
                ms += (v * unit) as i64;
                num.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !num.is_empty() || (days.is_empty() && time.is_empty()) {
        return Err(bad());
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations_as_kafkas_tool_takes_them() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00"), Ok(0));
        assert_eq!(
            parse_datetime("2026-12-06T05:30:00.250Z"),
            Ok(1_796_535_000_250)
        );
        assert_eq!(
            parse_datetime("2026-12-06T06:30:00+01:00"),
            parse_datetime("2026-12-06T05:30:00Z")
        );
        assert!(parse_datetime("2026-13-01T00:00:00").is_err());
        assert!(parse_datetime("yesterday").is_err());
        assert_eq!(parse_duration("PT1H30M"), Ok(5_400_000));
        assert_eq!(parse_duration("P1DT0.5S"), Ok(86_400_500));
        assert!(parse_duration("P").is_err());
        assert!(parse_duration("PT5").is_err());
    }

    #[test]
    fn consumer_assignments_decode_and_garbage_is_bounded() {
        let mut b = vec![
            0u8, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 5,
        ];
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(assignment(&b), vec![("t".into(), 3), ("t".into(), 5)]);
        assert!(assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_empty());
        assert!(assignment(&[]).is_empty());
    }
}
