//! The web console (issue 21), served by every node on the operations listener under
//! `/console`: server-rendered HTML (works without JavaScript; assets are embedded in the
//! binary, nothing is downloaded at build or run time), read-only by default.
//!
//! - `/console` — overview: nodes and their liveness, the controller leader, Raft term and
//!   commit index, topic / partition / under-replicated / offline counts, and live produce and
//!   fetch rates drawn from this node's counters (`/console/api/rates`, polled by `app.js`).
//! - `/console/topics?q=&page=` — topics, [`TOPICS_PER_PAGE`] a page.
//! - `/console/topic?name=&page=` — a topic's configs and partitions (leader, replicas, ISR,
//!   ongoing reassignment, this node's size and offsets), [`PARTITIONS_PER_PAGE`] a page.
//! - `/console/groups`, `/console/group?id=` — every coordinator's consumer groups (asked of
//!   the other nodes through `GroupService`): state, members, assignments, lag per partition.
//! - `/console/messages?topic=&partition=&n=&offset=|ts=` — the latest `n` records (at most
//!   [`BROWSE_MAX`]) or those from an offset or a timestamp, keys and values as text or pretty
//!   JSON; read from the partition's leader (another node's console serves its own). With an
//!   authorizer, only for an HTTP Basic (SCRAM) user with READ on the topic.
//!
//! Changes (create / delete a topic, set a topic config, reset a group's offsets) only with
//! `console.write.enable`, as forms that `POST` to `/console/action/*` ([`actions`]).
//!
//! Every input is bounded: pages and counts are clamped, names are looked up (never used to
//! size anything), a bad offset or unknown topic is a 400/404 page that says why.

use super::OpsState;
use crate::broker::{FetchParams, FetchPartitionRequest, OffsetSpec};
use crate::codec::kafka::batch::BatchHeader;
use crate::codec::kafka::records::walk_records;
use crate::metadata::TopicImage;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::time::Duration;

/// Topics listed per page.
pub(super) const TOPICS_PER_PAGE: usize = 100;
/// Partitions listed per page of a topic.
pub(super) const PARTITIONS_PER_PAGE: usize = 200;
/// Groups listed on the groups page.
const GROUPS_SHOWN_MAX: usize = 1000;
/// Most records one message-browser page shows.
pub(super) const BROWSE_MAX: usize = 100;
/// Most bytes one message-browser page reads.
const BROWSE_BYTES: i32 = 4 << 20;
/// Characters of a key or value shown (the rest is cut, with a note).
const SHOWN_CHARS_MAX: usize = 4096;
/// Deadline for the Raft metrics on the overview.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

mod actions;

const STYLE: &str = include_str!("console/style.css");
const SCRIPT: &str = include_str!("console/app.js");

/// A console response: (status, content type, body), or `None` for a path not under it.
pub(super) async fn route(
    path: &str,
    query: &str,
    head: &[u8],
    peer: &str,
    state: &OpsState,
) -> Option<(u16, &'static str, String)> {
    let q = Query::parse(query);
    let html = |(status, body): (u16, String)| Some((status, "text/html; charset=utf-8", body));
    match path {
        "/console" | "/console/" => html(overview(state).await),
        "/console/topics" => html(topics(state, &q)),
        "/console/topic" => html(topic(state, &q).await),
        "/console/groups" => html(groups(state).await),
        "/console/group" => html(group(state, &q).await),
        "/console/messages" => html(messages(state, &q, head, peer).await),
        "/console/api/rates" => Some((200, "application/json", rates())),
        "/console/app.js" => Some((200, "application/javascript", SCRIPT.to_owned())),
        "/console/style.css" => Some((200, "text/css", STYLE.to_owned())),
        p if p.starts_with("/console/") => html((
            404,
            layout(
                state,
                "Not found",
                &format!("<p class=\"error\">No console page {}.</p>", esc(p)),
            ),
        )),
        _ => None,
    }
}

/// Answers a console `POST` (the changes `console.write.enable` allows; `actions`).
pub(super) async fn post(
    path: &str,
    head: &[u8],
    form: &[u8],
    peer: &str,
    state: &OpsState,
) -> (u16, &'static str, String) {
    let (status, body) = actions::post(path, head, form, peer, state).await;
    (status, "text/html; charset=utf-8", body)
}

/// Whether the pages offer the change forms.
fn writable(state: &OpsState) -> bool {
    state.broker.config().limits.console_write_enable
}

/// The query string's parameters (percent-decoded; `+` is a space). Bounded by the request
/// head's size.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Self {
        Self(
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    Some((
                        crate::metadata::quotas::desanitize(k)?,
                        crate::metadata::quotas::desanitize(v)?,
                    ))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A non-negative number parameter; `Err` names it when it is not one.
    fn number(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| format!("{key} must be a non-negative whole number, not {v:?}"))
            })
            .transpose()
    }

    /// The 1-based page number (bad or missing: 1).
    fn page(&self) -> usize {
        self.get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
fn url(s: &str) -> String {
    crate::metadata::quotas::sanitize(s)
}

fn ids(l: &[crate::types::NodeId]) -> String {
    l.iter()
        .map(|n| n.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn layout(state: &OpsState, title: &str, body: &str) -> String {
    let me = state.broker.node_id().0;
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t} — raftka node {me}</title><link rel=\"stylesheet\" href=\"/console/style.css\">\
         </head><body><nav><b>raftka</b> node {me} · <a href=\"/console\">Overview</a> \
         <a href=\"/console/topics\">Topics</a> <a href=\"/console/groups\">Consumer groups</a> \
         <a href=\"/metrics\">Metrics</a></nav><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    )
}

fn error_page(state: &OpsState, status: u16, title: &str, why: &str) -> (u16, String) {
    (
        status,
        layout(
            state,
            title,
            &format!("<p class=\"error\" id=\"error\">{}</p>", esc(why)),
        ),
    )
}

/// Links to the pages around `page` of `pages` (`base` ends with `?` or `&`).
fn pager(base: &str, page: usize, pages: usize) -> String {
    let mut s = format!("<p class=\"pager\">Page {page} of {pages}");
    if page > 1 {
        let _ = write!(
            s,
            " · <a href=\"{base}page={}\" rel=\"prev\">previous</a>",
            page - 1
        );
    }
    if page < pages {
        let _ = write!(
            s,
            " · <a href=\"{base}page={}\" rel=\"next\">next</a>",
            page + 1
        );
    }
    s.push_str("</p>");
    s
}

/// (partitions, under-replicated, offline) of a topic.
fn health_counts(t: &TopicImage) -> (usize, usize, usize) {
    let under = t
        .partitions
        .iter()
        .filter(|p| p.leader.is_some() && p.isr.len() < p.replicas.len())
        .count();
    let offline = t.partitions.iter().filter(|p| p.leader.is_none()).count();
    (t.partitions.len(), under, offline)
}

async fn overview(state: &OpsState) -> (u16, String) {
    let image = state.broker.metadata_view();
    let raft = tokio::time::timeout(PROBE_DEADLINE, state.controller.metrics())
        .await
        .ok();
    let controller = state.broker.controller_id();
    let mut b = String::new();
    let _ = write!(
        b,
        "<p>Cluster <code>{}</code>.</p>",
        esc(image.cluster_id.as_deref().unwrap_or("(not initialised)"))
    );
    b.push_str("<h2>Controller quorum</h2><table id=\"raft\"><tr><th>leader</th><th>term</th><th>commit index</th><th>applied index (here)</th><th>voters</th></tr>");
    match &raft {
        Some(m) => {
            let idx = |v: Option<u64>| v.map_or("—".to_owned(), |i| i.to_string());
            let _ = write!(
                b,
                "<tr><td id=\"controller\">{}</td><td id=\"term\">{}</td><td id=\"commit\">{}</td><td>{}</td><td>{}</td></tr>",
                m.leader.map_or("none".to_owned(), |l| l.0.to_string()),
                m.term,
                idx(m.committed_index),
                idx(m.last_applied_index),
                m.voters.iter().map(|v| v.0.to_string()).collect::<Vec<_>>().join(",")
            );
        }
        None => b.push_str("<tr><td colspan=\"5\">Raft metrics not available (timeout)</td></tr>"),
    }
    b.push_str("</table><h2>Nodes</h2><table id=\"nodes\"><tr><th>node</th><th>state</th><th>endpoints</th><th>rack</th><th>leads</th><th></th></tr>");
    let mut leads = std::collections::BTreeMap::new();
    let (mut parts, mut under, mut offline) = (0, 0, 0);
    for t in image.topics.values() {
        let (n, u, o) = health_counts(t);
        parts += n;
        under += u;
        offline += o;
        for p in &t.partitions {
            if let Some(l) = p.leader {
                *leads.entry(l).or_insert(0usize) += 1;
            }
        }
    }
    for (id, reg) in &image.brokers {
        let eps: Vec<String> = reg
            .endpoints
            .iter()
            .map(|e| format!("{} {}:{}", esc(&e.listener), esc(&e.host), e.port))
            .collect();
        let mut notes = Vec::new();
        if controller == Some(*id) {
            notes.push("controller leader");
        }
        if *id == state.broker.node_id() {
            notes.push("this node");
        }
        let _ = write!(
            b,
            "<tr data-node=\"{n}\"><td>{n}</td><td class=\"{s}\">{s}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            eps.join("<br>"),
            esc(reg.rack.as_deref().unwrap_or("")),
            leads.get(id).copied().unwrap_or(0),
            notes.join(", "),
            n = id.0,
            s = if reg.fenced { "fenced" } else { "live" },
        );
    }
    let _ = write!(
        b,
        "</table><h2>Partitions</h2><table id=\"counts\"><tr><th>topics</th><th>partitions</th><th>under-replicated</th><th>offline</th></tr>\
         <tr><td id=\"topics\">{}</td><td id=\"partitions\">{parts}</td><td id=\"under-replicated\" class=\"{}\">{under}</td><td id=\"offline\" class=\"{}\">{offline}</td></tr></table>",
        image.topics.len(),
        if under > 0 { "warn" } else { "" },
        if offline > 0 { "error" } else { "" },
    );
    b.push_str(
        "<h2>Traffic on this node</h2><p>Produce and fetch bytes per second, from this node's \
         counters, sampled every 2 s.</p><canvas id=\"rates\" width=\"800\" height=\"220\"></canvas>\
         <p id=\"rates-now\"></p><script src=\"/console/app.js\"></script>",
    );
    (200, layout(state, "Overview", &b))
}

/// This node's counters for the rate chart.
fn rates() -> String {
    let m = crate::metrics::global();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        "{{\"ts_ms\":{},\"bytes_in\":{},\"bytes_out\":{},\"produce_requests\":{},\"fetch_requests\":{}}}",
        crate::types::now_ms(),
        load(&m.kafka_bytes_in),
        load(&m.kafka_bytes_out),
        m.api(0).count(),
        m.api(1).count()
    )
}

fn topics(state: &OpsState, q: &Query) -> (u16, String) {
    let image = state.broker.metadata_view();
    let filter = q.get("q").unwrap_or("");
    let names: Vec<&std::sync::Arc<TopicImage>> = image
        .topics
        .values()
        .filter(|t| filter.is_empty() || t.name.as_str().contains(filter))
        .collect();
    let pages = names.len().div_ceil(TOPICS_PER_PAGE).max(1);
    let page = q.page().min(pages);
    let mut b = format!(
        "<form><input name=\"q\" value=\"{}\" placeholder=\"name contains\"> <button>Filter</button></form>\
         <p>{} topics.</p><table id=\"topic-list\"><tr><th>topic</th><th>partitions</th><th>replication factor</th><th>under-replicated</th><th>offline</th></tr>",
        esc(filter),
        names.len()
    );
    for t in names
        .iter()
        .skip((page - 1) * TOPICS_PER_PAGE)
        .take(TOPICS_PER_PAGE)
    {
        let (n, u, o) = health_counts(t);
        let _ = write!(
            b,
            "<tr><td><a href=\"/console/topic?name={}\">{}</a></td><td>{n}</td><td>{}</td><td>{u}</td><td>{o}</td></tr>",
            url(t.name.as_str()),
            esc(t.name.as_str()),
            t.partitions.first().map_or(0, |p| p.replicas.len()),
        );
    }
    b.push_str("</table>");
    b.push_str(&pager(
        &format!("/console/topics?q={}&", url(filter)),
        page,
        pages,
    ));
    if writable(state) {
        b.push_str(
            "<h2>Create a topic</h2><form method=\"post\" action=\"/console/action/create-topic\" id=\"create-topic\">\
             name <input name=\"name\" required> partitions <input name=\"partitions\" size=\"5\" value=\"1\"> \
             replication factor <input name=\"replication_factor\" size=\"3\" value=\"1\"> <button>Create</button></form>",
        );
    }
    (200, layout(state, "Topics", &b))
}

async fn topic(state: &OpsState, q: &Query) -> (u16, String) {
    let image = state.broker.metadata_view();
    let Some(name) = q.get("name") else {
        return error_page(
            state,
            400,
            "Topic",
            "name a topic: /console/topic?name=<topic>",
        );
    };
    let Some(t) = image.topic(name).cloned() else {
        return error_page(state, 404, "Topic", &format!("Unknown topic {name:?}."));
    };
    let pages = t.partitions.len().div_ceil(PARTITIONS_PER_PAGE).max(1);
    let page = q.page().min(pages);
    let first = (page - 1) * PARTITIONS_PER_PAGE;
    let shown: Vec<i32> = (first..t.partitions.len())
        .take(PARTITIONS_PER_PAGE)
        .filter_map(|i| i32::try_from(i).ok())
        .collect();
    let sizes: std::collections::HashMap<i32, u64> = state
        .broker
        .describe_log_dirs(Some(vec![(name.to_owned(), shown.clone())]))
        .await
        .map(|d| {
            d.replicas
                .into_iter()
                .map(|r| (r.partition, r.size_bytes))
                .collect()
        })
        .unwrap_or_default();
    let local: std::collections::HashMap<i32, _> = state
        .replicas
        .all()
        .into_iter()
        .filter(|p| p.topic.as_str() == name)
        .map(|p| (p.partition, p))
        .collect();
    let (n, under, offline) = health_counts(&t);
    let mut b = format!(
        "<p>Topic id <code>{}</code>; {n} partitions, {under} under-replicated, {offline} offline.</p><h2>Configs</h2>",
        t.id.0
    );
    if t.configs.is_empty() {
        b.push_str("<p>No overrides: the broker defaults apply.</p>");
    } else {
        b.push_str("<table id=\"configs\"><tr><th>key</th><th>value</th></tr>");
        for (k, v) in &t.configs {
            let _ = write!(b, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
        }
        b.push_str("</table>");
    }
    let me = state.broker.node_id();
    let _ = write!(
        b,
        "<h2>Partitions</h2><table id=\"partitions\"><tr><th>partition</th><th>leader</th><th>replicas</th><th>ISR</th><th>reassignment</th>\
         <th>size on node {m}</th><th>log start (node {m})</th><th>log end (node {m})</th><th>high watermark (node {m})</th><th></th></tr>",
        m = me.0
    );
    for p in shown {
        let Some(pi) = usize::try_from(p).ok().and_then(|i| t.partitions.get(i)) else {
            continue;
        };
        let moving = if pi.adding.is_empty() && pi.removing.is_empty() {
            String::new()
        } else {
            format!("adding {} removing {}", ids(&pi.adding), ids(&pi.removing))
        };
        let lp = local.get(&p);
        let num = |v: Option<i64>| v.map_or("—".to_owned(), |x| x.to_string());
        let _ = write!(
            b,
            "<tr data-partition=\"{p}\"><td>{p}</td><td class=\"leader\">{}</td><td class=\"replicas\">{}</td><td class=\"isr\">{}</td><td>{moving}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/console/messages?topic={}&amp;partition={p}\">browse</a></td></tr>",
            pi.leader.map_or("none".to_owned(), |l| l.0.to_string()),
            ids(&pi.replicas),
            ids(&pi.isr),
            sizes.get(&p).map_or("—".to_owned(), |s| s.to_string()),
            num(lp.map(|x| x.log_start_offset())),
            num(lp.map(|x| x.log_end_offset())),
            num(lp.map(|x| x.high_watermark())),
            url(name),
        );
    }
    b.push_str("</table>");
    b.push_str(&pager(
        &format!("/console/topic?name={}&", url(name)),
        page,
        pages,
    ));
    if writable(state) {
        let _ = write!(
            b,
            "<h2>Change</h2><form method=\"post\" action=\"/console/action/topic-config\" id=\"topic-config\">\
             <input type=\"hidden\" name=\"name\" value=\"{n}\">config <input name=\"key\" required> = \
             <input name=\"value\" placeholder=\"empty: remove the override\"> <button>Set</button></form>\
             <form method=\"post\" action=\"/console/action/delete-topic\" id=\"delete-topic\">\
             <input type=\"hidden\" name=\"name\" value=\"{n}\">type the topic's name to delete it: \
             <input name=\"confirm\"> <button>Delete topic</button></form>",
            n = esc(name)
        );
    }
    (200, layout(state, &format!("Topic {name}"), &b))
}

async fn groups(state: &OpsState) -> (u16, String) {
    let (listing, missing) = state.broker.groups().cluster_groups().await;
    let mut b = String::from(
        "<p>Every coordinator's groups (a group lives on the leader of its \
         <code>__consumer_offsets</code> partition).</p>",
    );
    if !missing.is_empty() {
        let _ = write!(
            b,
            "<p class=\"warn\" id=\"missing\">Not answering (their groups are missing): nodes {}.</p>",
            ids(&missing)
        );
    }
    let _ = write!(
        b,
        "<p>{} groups.</p><table id=\"group-list\"><tr><th>group</th><th>state</th><th>protocol type</th><th>members</th><th>coordinator</th></tr>",
        listing.len()
    );
    for g in listing.iter().take(GROUPS_SHOWN_MAX) {
        let _ = write!(
            b,
            "<tr data-group=\"{}\"><td><a href=\"/console/group?id={}\">{}</a></td><td class=\"state\">{}</td><td>{}</td><td class=\"members\">{}</td><td>{}</td></tr>",
            esc(&g.group_id),
            url(&g.group_id),
            esc(&g.group_id),
            g.state.as_str(),
            esc(&g.protocol_type),
            g.members,
            g.coordinator.0,
        );
    }
    b.push_str("</table>");
    if listing.len() > GROUPS_SHOWN_MAX {
        let _ = write!(b, "<p>The first {GROUPS_SHOWN_MAX} are shown.</p>");
    }
    (200, layout(state, "Consumer groups", &b))
}

async fn group(state: &OpsState, q: &Query) -> (u16, String) {
    let Some(id) = q.get("id") else {
        return error_page(
            state,
            400,
            "Consumer group",
            "name a group: /console/group?id=<group>",
        );
    };
    let title = format!("Consumer group {id}");
    let (coordinator, d) = match state.broker.groups().cluster_describe(id).await {
        Ok(x) => x,
        Err(e) => return error_page(state, 503, &title, &format!("Group {id:?}: {e}.")),
    };
    let lag = state.broker.group_lag(id).await;
    if d.state == crate::broker::GroupState::Dead && lag.is_empty() {
        return error_page(state, 404, &title, &format!("Unknown group {id:?}."));
    }
    let total: Option<i64> = lag.iter().map(crate::broker::PartitionLag::lag).sum();
    let mut b = format!(
        "<p>State <b id=\"state\">{}</b>, protocol type {}, protocol {}; coordinator node {}; \
         total lag <b id=\"total-lag\">{}</b>.</p><h2>Members</h2>\
         <table id=\"members\"><tr><th>member</th><th>client id</th><th>host</th><th>assigned partitions</th></tr>",
        d.state.as_str(),
        esc(&d.protocol_type),
        esc(&d.protocol_name),
        coordinator.0,
        total.map_or("—".to_owned(), |t| t.to_string()),
    );
    for m in &d.members {
        let assigned: Vec<String> = crate::consumer_groups::assignment(&m.assignment)
            .into_iter()
            .take(1000)
            .map(|(t, p)| format!("{}-{p}", esc(&t)))
            .collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.member_id),
            esc(&m.client_id),
            esc(&m.client_host),
            assigned.join(", ")
        );
    }
    b.push_str("</table><h2>Lag</h2><table id=\"lag\"><tr><th>topic</th><th>partition</th><th>committed offset</th><th>log end (high watermark)</th><th>lag</th></tr>");
    for l in &lag {
        let _ = write!(
            b,
            "<tr data-partition=\"{}-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"lag\">{}</td></tr>",
            esc(&l.topic),
            l.partition,
            esc(&l.topic),
            l.partition,
            l.committed,
            l.end.map_or("—".to_owned(), |e| e.to_string()),
            l.lag().map_or("—".to_owned(), |x| x.to_string()),
        );
    }
    // Assigned partitions without a committed offset: shown, lag unknown (as Kafka's tool).
    let mut assigned: Vec<(String, i32)> = d
        .members
        .iter()
        .flat_map(|m| crate::consumer_groups::assignment(&m.assignment))
        .filter(|(t, p)| !lag.iter().any(|l| l.topic == *t && l.partition == *p))
        .collect();
    assigned.sort();
    assigned.dedup();
    for (t, p) in assigned.iter().take(10_000) {
        let _ = write!(
            b,
            "<tr data-partition=\"{}-{p}\"><td>{}</td><td>{p}</td><td>—</td><td>—</td><td class=\"lag\">—</td></tr>",
            esc(t),
            esc(t)
        );
    }
    b.push_str("</table>");
    if writable(state) {
        let _ = write!(
            b,
            "<h2>Reset offsets</h2><p>Only while the group has no members, on its coordinator.</p>\
             <form method=\"post\" action=\"/console/action/reset-offsets\" id=\"reset-offsets\">\
             <input type=\"hidden\" name=\"group\" value=\"{}\">topic <input name=\"topic\" required> \
             to <input name=\"to\" value=\"earliest\" placeholder=\"earliest, latest or an offset\"> \
             <button>Reset</button></form>",
            esc(id)
        );
    }
    (200, layout(state, &title, &b))
}

/// A key or value for display: pretty JSON when it parses as an object or array, else text
/// (UTF-8, lossy), cut at [`SHOWN_CHARS_MAX`].
fn show(bytes: Option<&[u8]>) -> String {
    let Some(b) = bytes else {
        return "<i>null</i>".to_owned();
    };
    if matches!(b.first(), Some(b'{' | b'[')) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            if let Ok(pretty) = serde_json::to_string_pretty(&v) {
                return format!("<pre class=\"json\">{}</pre>", esc(&cut(&pretty)));
            }
        }
    }
    let text = String::from_utf8_lossy(b);
    let note = if std::str::from_utf8(b).is_err() {
        format!(" <i>(binary, {} bytes)</i>", b.len())
    } else {
        String::new()
    };
    format!("<span class=\"text\">{}</span>{note}", esc(&cut(&text)))
}

/// `ms` since the epoch as `2026-12-06T05:30:00.123Z` (proleptic Gregorian, UTC).
fn iso_utc(ms: i64) -> String {
    if ms < 0 {
        return "—".to_owned();
    }
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS_MAX) {
        Some((i, _)) => format!("{}… ({} more bytes)", &s[..i], s.len() - i),
        None => s.to_owned(),
    }
}

/// One record as the browser shows it.
struct Shown {
    offset: i64,
    timestamp: i64,
    key: String,
    value: String,
    headers: usize,
}

async fn messages(state: &OpsState, q: &Query, head: &[u8], peer: &str) -> (u16, String) {
    let title = "Messages";
    let Some(topic) = q.get("topic") else {
        return error_page(
            state,
            400,
            title,
            "name a topic: /console/messages?topic=<t>&partition=<p>",
        );
    };
    // Record data is what the ACLs protect: with an authorizer, the browser reads only for an
    // authenticated principal with READ on the topic, as a Kafka consumer would.
    if state.broker.authorizer().is_some() {
        let caller = match actions::authenticate(state, head, peer).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        if !actions::allowed(
            state,
            &caller,
            crate::security::acl::Operation::Read,
            crate::security::acl::ResourceType::Topic,
            topic,
        ) {
            return actions::denied(state, &caller, &format!("read topic {topic:?}"));
        }
    }
    let partition = match q.number("partition") {
        Ok(p) => p.unwrap_or(0),
        Err(e) => return error_page(state, 400, title, &e),
    };
    let image = state.broker.metadata_view();
    let Some(t) = image.topic(topic) else {
        return error_page(state, 404, title, &format!("Unknown topic {topic:?}."));
    };
    let Some(pi) = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
    else {
        return error_page(
            state,
            404,
            title,
            &format!(
                "Topic {topic:?} has no partition {partition} (it has {}).",
                t.partitions.len()
            ),
        );
    };
    let Ok(partition) = i32::try_from(partition) else {
        return error_page(state, 404, title, "no such partition");
    };
    let title = format!("Messages of {topic}-{partition}");
    let n = match q.number("n") {
        Ok(n) => usize::try_from(n.unwrap_or(20))
            .unwrap_or(BROWSE_MAX)
            .clamp(1, BROWSE_MAX),
        Err(e) => return error_page(state, 400, &title, &e),
    };
    if pi.leader != Some(state.broker.node_id()) {
        let why = match pi.leader {
            Some(l) => format!(
                "Node {} leads {topic}-{partition}; its console browses the partition (this node reads only what it leads).",
                l.0
            ),
            None => format!("{topic}-{partition} has no leader now (offline)."),
        };
        return error_page(state, 409, &title, &why);
    }
    let b = &state.broker;
    let bounds = async {
        let start = b
            .list_offset(topic, partition, OffsetSpec::Earliest, -1, false)
            .await?
            .0;
        let end = b
            .list_offset(topic, partition, OffsetSpec::Latest, -1, false)
            .await?
            .0;
        Ok::<_, crate::broker::BrokerError>((start, end))
    };
    let (log_start, hw) = match bounds.await {
        Ok(x) => x,
        Err(e) => {
            return error_page(
                state,
                503,
                &title,
                &format!("Cannot read the partition: {e}."),
            )
        }
    };
    let offset = match (q.number("offset"), q.get("ts")) {
        (Err(e), _) => return error_page(state, 400, &title, &e),
        (Ok(Some(o)), _) => {
            if o < log_start || o > hw {
                return error_page(
                    state,
                    400,
                    &title,
                    &format!("Offset {o} is out of range: the partition holds offsets {log_start} to {} (high watermark {hw}).", hw - 1),
                );
            }
            o
        }
        (Ok(None), Some(ts)) => {
            let ms = match ts.parse::<i64>() {
                Ok(ms) if ms >= 0 => ms,
                _ => match crate::consumer_groups::parse_datetime(ts) {
                    Ok(ms) => ms,
                    Err(e) => return error_page(state, 400, &title, &format!("ts: {e}")),
                },
            };
            match b
                .list_offset(topic, partition, OffsetSpec::Timestamp(ms), -1, false)
                .await
            {
                Ok((o, _, _)) if o >= 0 => o,
                Ok(_) => hw,
                Err(e) => {
                    return error_page(state, 503, &title, &format!("Cannot search by time: {e}."))
                }
            }
        }
        (Ok(None), None) => (hw - n as i64).max(log_start),
    };
    let shown = match read(state, topic, partition, offset, hw, n).await {
        Ok(s) => s,
        Err(e) => return error_page(state, 503, &title, &format!("Cannot read records: {e}")),
    };
    let mut body = format!(
        "<p>Offsets {log_start} to {} (high watermark <span id=\"hw\">{hw}</span>); showing up to {n} from offset {offset}.</p>\
         <form><input type=\"hidden\" name=\"topic\" value=\"{}\"><input type=\"hidden\" name=\"partition\" value=\"{partition}\">\
         offset <input name=\"offset\" size=\"10\"> or time <input name=\"ts\" size=\"22\" placeholder=\"ms or 2026-12-06T05:30:00Z\"> \
         count <input name=\"n\" size=\"4\" value=\"{n}\"> <button>Show</button></form>\
         <table id=\"records\"><tr><th>offset</th><th>timestamp</th><th>key</th><th>value</th><th>headers</th></tr>",
        hw - 1,
        esc(topic)
    );
    for r in &shown {
        let _ = write!(
            body,
            "<tr data-offset=\"{}\"><td>{}</td><td title=\"{}\">{}</td><td class=\"key\">{}</td><td class=\"value\">{}</td><td>{}</td></tr>",
            r.offset, r.offset, r.timestamp, iso_utc(r.timestamp), r.key, r.value, r.headers
        );
    }
    body.push_str("</table>");
    let base = format!(
        "/console/messages?topic={}&amp;partition={partition}&amp;n={n}",
        url(topic)
    );
    let _ = write!(body, "<p class=\"pager\">");
    if offset > log_start {
        let _ = write!(
            body,
            "<a href=\"{base}&amp;offset={}\" rel=\"prev\">older</a> ",
            (offset - n as i64).max(log_start)
        );
    }
    if let Some(last) = shown.last() {
        if last.offset + 1 < hw {
            let _ = write!(
                body,
                "<a href=\"{base}&amp;offset={}\" rel=\"next\">newer</a> ",
                last.offset + 1
            );
        }
    }
    let _ = write!(body, "<a href=\"{base}\">latest</a></p>");
    (200, layout(state, &title, &body))
}

/// Up to `n` records from `offset` (below `hw`), control batches skipped.
async fn read(
    state: &OpsState,
    topic: &str,
    partition: i32,
    offset: i64,
    hw: i64,
    n: usize,
) -> Result<Vec<Shown>, String> {
    let mut out = Vec::new();
    let mut next = offset;
    let cap = state.broker.config().limits.decompressed_batch_bytes_max;
    // A few reads at most: each returns at least one whole batch.
    for _ in 0..8 {
        if out.len() >= n || next >= hw {
            break;
        }
        let req = FetchPartitionRequest {
            topic: topic.to_owned(),
            partition,
            fetch_offset: next,
            partition_max_bytes: BROWSE_BYTES,
            current_leader_epoch: -1,
        };
        let params = FetchParams {
            max_wait: Duration::ZERO,
            min_bytes: 0,
            max_bytes: BROWSE_BYTES,
            read_committed: false,
        };
        let r = state
            .broker
            .fetch(vec![req], params)
            .await
            .pop()
            .ok_or("no fetch result")?;
        if let Some(e) = r.error {
            return Err(e.to_string());
        }
        if r.records.is_empty() {
            break;
        }
        let mut rest: &[u8] = &r.records;
        while !rest.is_empty() && out.len() < n {
            let h = BatchHeader::parse(rest).map_err(|e| e.to_string())?;
            let len = h.total_len().min(rest.len());
            let (batch, tail) = rest.split_at(len);
            rest = tail;
            next = h.last_offset() + 1;
            if h.is_control() || len < h.total_len() {
                continue;
            }
            walk_records(batch, cap, |_, rec| {
                let o = h.base_offset + i64::from(rec.offset_delta);
                if o >= offset && o < hw && out.len() < n {
                    out.push(Shown {
                        offset: o,
                        timestamp: if h.is_log_append_time() {
                            h.max_timestamp
                        } else {
                            h.base_timestamp + rec.timestamp_delta
                        },
                        key: show(rec.key),
                        value: show(rec.value),
                        headers: rec.header_count,
                    });
                }
                if out.len() >= n {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_bounded() {
        let q = Query::parse("topic=a%20b&n=5&offset=-3&page=x&&q=");
        assert_eq!(q.get("topic"), Some("a b"));
        assert_eq!(q.number("n"), Ok(Some(5)));
        assert!(q.number("offset").is_err());
        assert_eq!(q.page(), 1);
        assert_eq!(q.get("q"), None);
        assert!(Query::parse("n=99999999999999999999").number("n").is_err());
    }

    #[test]
    fn timestamps_are_iso_utc() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_utc(1_796_544_507_482), "2026-12-06T08:08:27.482Z");
        assert_eq!(iso_utc(-1), "—");
    }

    #[test]
    fn values_are_escaped_and_json_is_pretty() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(show(Some(br#"{"a":[1,2]}"#)).contains("<pre class=\"json\">{\n  &quot;a&quot;"));
        assert_eq!(show(Some(b"<b>")), "<span class=\"text\">&lt;b&gt;</span>");
        assert!(show(Some(&[0xff, 0x00])).contains("binary, 2 bytes"));
        assert_eq!(show(None), "<i>null</i>");
        let long = "x".repeat(SHOWN_CHARS_MAX + 10);
        assert!(show(Some(long.as_bytes())).contains("… (10 more bytes)"));
        assert_eq!(
            pager("/console/topics?", 2, 3),
            "<p class=\"pager\">Page 2 of 3 · <a href=\"/console/topics?page=1\" rel=\"prev\">previous</a> · <a href=\"/console/topics?page=3\" rel=\"next\">next</a></p>"
        );
    }
}
