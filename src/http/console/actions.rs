//! The console's changes (`console.write.enable`, off by default): create and delete a topic,
//! set or remove a topic config, reset a group's offsets. Each is a `POST` of a form to
//! `/console/action/<what>`, refused unless writes are enabled, refused when a browser says
//! it comes from another site (`Origin` other than this host, `Sec-Fetch-Site` other than
//! `same-origin`), and — with an authorizer configured — only for a principal that
//! authenticates with HTTP Basic against its SCRAM credentials and holds the ACL Kafka asks
//! for the same change (CREATE on the cluster or topic, DELETE / ALTER_CONFIGS on the topic,
//! READ on the group and topic).

use super::{error_page, esc, layout, url, Query};
use crate::broker::{CreateTopicSpec, IncrementalOp, OffsetCommitEntry};
use crate::http::{header, OpsState};
use crate::security::acl::{Operation, ResourceType};
use base64::Engine as _;
use std::collections::BTreeMap;

/// Who asks, as the authorizer names principals.
pub(super) struct Caller {
    principal: String,
    host: String,
}

/// Answers one console `POST`.
pub(in crate::http) async fn post(
    path: &str,
    head: &[u8],
    form: &[u8],
    peer: &str,
    state: &OpsState,
) -> (u16, String) {
    if !state.broker.config().limits.console_write_enable {
        return error_page(
            state,
            403,
            "Read-only console",
            "This console is read-only: set console.write.enable=true to allow changes.",
        );
    }
    if let Some(why) = cross_site(head) {
        return error_page(state, 403, "Refused", &why);
    }
    let caller = match authenticate(state, head, peer).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let f = Query::parse(std::str::from_utf8(form).unwrap_or(""));
    match path {
        "/console/action/create-topic" => create_topic(state, &caller, &f).await,
        "/console/action/delete-topic" => delete_topic(state, &caller, &f).await,
        "/console/action/topic-config" => topic_config(state, &caller, &f).await,
        "/console/action/reset-offsets" => reset_offsets(state, &caller, &f).await,
        _ => error_page(
            state,
            404,
            "Not found",
            &format!("No console action {path}."),
        ),
    }
}

/// Why a request is refused as cross-site, if it is.
fn cross_site(head: &[u8]) -> Option<String> {
    let host = header(head, "host").unwrap_or("");
    if let Some(origin) = header(head, "origin") {
        if origin != format!("http://{host}") && origin != format!("https://{host}") {
            return Some(format!("A change from another site ({origin}) is refused."));
        }
    }
    match header(head, "sec-fetch-site") {
        Some("same-origin" | "none") | None => None,
        Some(other) => Some(format!("A change from another site ({other}) is refused.")),
    }
}

/// Without an authorizer, anyone (`User:ANONYMOUS`); with one, the HTTP Basic user whose
/// password matches one of its SCRAM credentials (401 otherwise, after Kafka's failed
/// authentication delay).
pub(super) async fn authenticate(
    state: &OpsState,
    head: &[u8],
    peer: &str,
) -> Result<Caller, (u16, String)> {
    if state.broker.authorizer().is_none() {
        return Ok(Caller {
            principal: "User:ANONYMOUS".into(),
            host: peer.to_owned(),
        });
    }
    let basic = header(head, "authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    if let Some((user, password)) = basic.as_deref().and_then(|b| b.split_once(':')) {
        let image = state.broker.metadata_view();
        let ok = image.users.get(user).is_some_and(|u| {
            u.scram
                .iter()
                .any(|(mech, cred)| cred.verify_password(*mech, password))
        });
        if ok {
            return Ok(Caller {
                principal: format!("User:{user}"),
                host: peer.to_owned(),
            });
        }
        tokio::time::sleep(state.broker.config().auth.failed_delay).await;
    }
    Err(error_page(
        state,
        401,
        "Sign in",
        "This needs a user with SCRAM credentials (HTTP Basic authentication).",
    ))
}

pub(super) fn allowed(
    state: &OpsState,
    c: &Caller,
    op: Operation,
    rt: ResourceType,
    name: &str,
) -> bool {
    state.broker.authorize(&c.principal, &c.host, op, rt, name)
}

pub(super) fn denied(state: &OpsState, c: &Caller, what: &str) -> (u16, String) {
    error_page(
        state,
        403,
        "Not authorized",
        &format!("{} may not {what}.", c.principal),
    )
}

fn done(state: &OpsState, title: &str, what: &str, back: &str) -> (u16, String) {
    (
        200,
        layout(
            state,
            title,
            &format!(
                "<p id=\"done\">{}</p><p><a href=\"{back}\">Back</a></p>",
                esc(what)
            ),
        ),
    )
}

fn required<'a>(f: &'a Query, key: &str) -> Result<&'a str, String> {
    f.get(key).ok_or_else(|| format!("{key} is required"))
}

async fn create_topic(state: &OpsState, c: &Caller, f: &Query) -> (u16, String) {
    let title = "Create topic";
    let (name, partitions, rf) = match (|| {
        let name = required(f, "name")?;
        let partitions = f.number("partitions")?.unwrap_or(1);
        let rf = f.number("replication_factor")?.unwrap_or(1);
        Ok::<_, String>((name.to_owned(), partitions, rf))
    })() {
        Ok(x) => x,
        Err(e) => return error_page(state, 400, title, &e),
    };
    if !allowed(
        state,
        c,
        Operation::Create,
        ResourceType::Cluster,
        "kafka-cluster",
    ) && !allowed(state, c, Operation::Create, ResourceType::Topic, &name)
    {
        return denied(state, c, &format!("create topic {name:?}"));
    }
    let spec = CreateTopicSpec {
        name: name.clone(),
        num_partitions: i32::try_from(partitions).unwrap_or(i32::MAX),
        replication_factor: i16::try_from(rf).unwrap_or(i16::MAX),
        assignment: Vec::new(),
        configs: BTreeMap::new(),
    };
    match state.broker.create_topics(vec![spec], false).await.pop() {
        Some(Ok(_)) => done(
            state,
            title,
            &format!("Created topic {name} ({partitions} partitions, replication factor {rf})."),
            &format!("/console/topic?name={}", url(&name)),
        ),
        Some(Err(e)) => error_page(
            state,
            400,
            title,
            &format!("Topic {name:?} not created: {e}."),
        ),
        None => error_page(state, 500, title, "no result"),
    }
}

async fn delete_topic(state: &OpsState, c: &Caller, f: &Query) -> (u16, String) {
    let title = "Delete topic";
    let name = match required(f, "name") {
        Ok(n) => n,
        Err(e) => return error_page(state, 400, title, &e),
    };
    if f.get("confirm") != Some(name) {
        return error_page(
            state,
            400,
            title,
            "Type the topic's name into confirm to delete it.",
        );
    }
    if !allowed(state, c, Operation::Delete, ResourceType::Topic, name) {
        return denied(state, c, &format!("delete topic {name:?}"));
    }
    match state.broker.delete_topic(name).await {
        Ok(_) => done(
            state,
            title,
            &format!("Deleted topic {name}."),
            "/console/topics",
        ),
        Err(e) => error_page(
            state,
            400,
            title,
            &format!("Topic {name:?} not deleted: {e}."),
        ),
    }
}

async fn topic_config(state: &OpsState, c: &Caller, f: &Query) -> (u16, String) {
    let title = "Topic config";
    let (name, key) = match (required(f, "name"), required(f, "key")) {
        (Ok(n), Ok(k)) => (n, k),
        (Err(e), _) | (_, Err(e)) => return error_page(state, 400, title, &e),
    };
    if !allowed(state, c, Operation::AlterConfigs, ResourceType::Topic, name) {
        return denied(state, c, &format!("alter the configs of topic {name:?}"));
    }
    let (op, what) = match f.get("value") {
        Some(v) => (
            IncrementalOp::Set(key.to_owned(), v.to_owned()),
            format!("Set {key}={v} on {name}."),
        ),
        None => (
            IncrementalOp::Delete(key.to_owned()),
            format!("Removed {key} from {name}."),
        ),
    };
    match state
        .broker
        .incremental_alter_topic_configs(name, vec![op], false)
        .await
    {
        Ok(()) => done(
            state,
            title,
            &what,
            &format!("/console/topic?name={}", url(name)),
        ),
        Err(e) => error_page(state, 400, title, &format!("Not changed: {e}.")),
    }
}

async fn reset_offsets(state: &OpsState, c: &Caller, f: &Query) -> (u16, String) {
    let title = "Reset offsets";
    let (group, topic, to) = match (
        required(f, "group"),
        required(f, "topic"),
        required(f, "to"),
    ) {
        (Ok(g), Ok(t), Ok(to)) => (g, t, to),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return error_page(state, 400, title, &e)
        }
    };
    let target = match to {
        "earliest" | "latest" => None,
        n => match n.parse::<i64>() {
            Ok(o) if o >= 0 => Some(o),
            _ => return error_page(state, 400, title, "to is earliest, latest or an offset ≥ 0"),
        },
    };
    if !allowed(state, c, Operation::Read, ResourceType::Group, group)
        || !allowed(state, c, Operation::Read, ResourceType::Topic, topic)
    {
        return denied(
            state,
            c,
            &format!("reset the offsets of group {group:?} on {topic:?}"),
        );
    }
    let image = state.broker.metadata_view();
    let Some(t) = image.topic(topic) else {
        return error_page(state, 404, title, &format!("Unknown topic {topic:?}."));
    };
    let me = state.broker.node_id();
    match state.broker.groups().cluster_describe(group).await {
        Ok((coordinator, _)) if coordinator != me => {
            return error_page(
                state,
                409,
                title,
                &format!("Node {} coordinates group {group:?}; reset it from that node's console.", coordinator.0),
            )
        }
        Ok((_, d)) if !d.members.is_empty() => {
            return error_page(
                state,
                409,
                title,
                &format!("Group {group:?} has active members ({}): stop them first, as Kafka's tool requires.", d.state.as_str()),
            )
        }
        Ok(_) => {}
        Err(e) => return error_page(state, 503, title, &format!("Group {group:?}: {e}.")),
    }
    let parts: Vec<i32> = (0..t.partitions.len())
        .filter_map(|i| i32::try_from(i).ok())
        .collect();
    let bounds = state
        .broker
        .log_bounds(parts.iter().map(|p| (topic, *p)))
        .await;
    let mut entries = Vec::with_capacity(parts.len());
    for p in &parts {
        let Some(&(start, end)) = bounds.get(&(topic.to_owned(), *p)) else {
            return error_page(
                state,
                503,
                title,
                &format!("{topic}-{p}: its leader did not answer."),
            );
        };
        let offset = match (to, target) {
            ("earliest", _) => start,
            ("latest", _) => end,
            (_, Some(o)) => o.clamp(start, end),
            _ => end,
        };
        entries.push(OffsetCommitEntry {
            topic: topic.to_owned(),
            partition: *p,
            offset,
            leader_epoch: -1,
            metadata: None,
        });
    }
    let n = entries.len();
    match state
        .broker
        .commit_offsets(group, "", None, -1, entries)
        .await
    {
        Ok(r) if r.iter().all(Result::is_ok) => done(
            state,
            title,
            &format!("Reset group {group} on {topic} ({n} partitions) to {to}."),
            &format!("/console/group?id={}", url(group)),
        ),
        Ok(r) => {
            let e = r
                .into_iter()
                .find_map(Result::err)
                .map(|e| e.to_string())
                .unwrap_or_default();
            error_page(state, 400, title, &format!("Not reset: {e}."))
        }
        Err(e) => error_page(state, 400, title, &format!("Not reset: {e}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_posts_are_refused() {
        let same = b"POST /console/action/x HTTP/1.1\r\nHost: a:9644\r\nOrigin: http://a:9644\r\nSec-Fetch-Site: same-origin\r\n\r\n";
        assert_eq!(cross_site(same), None);
        assert_eq!(cross_site(b"POST / HTTP/1.1\r\nHost: a:9644\r\n\r\n"), None);
        assert!(
            cross_site(b"POST / HTTP/1.1\r\nHost: a:9644\r\nOrigin: http://evil\r\n\r\n").is_some()
        );
        assert!(cross_site(
            b"POST / HTTP/1.1\r\nHost: a:9644\r\nSec-Fetch-Site: cross-site\r\n\r\n"
        )
        .is_some());
    }
}
