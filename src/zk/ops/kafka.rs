//! The writes Kafka 2.x tools use to administer topics, mapped to broker verbs:
//! create `/brokers/topics/<t>` → create the topic (configs from the pending
//! `/config/topics/<t>` the tool wrote first), setData on it → add partitions, setData
//! `/config/topics/<t>` → replace the overrides, create or setData `/config/brokers/<id>` →
//! replace dynamic broker configs, create or setData `/config/users/<u>` → replace a user's
//! SCRAM credentials, quotas and configs, create or setData `/config/clients/<c>` or
//! `/config/users/<u>/clients/<c>` → replace that entity's client quotas. Delete markers are stored znodes that the
//! janitor (`zk::janitor`) turns into topic deletions.

use super::{view, OpCtx, Reply};
use crate::codec::jute::ErrorCode;
use crate::metadata::ZkOp;
use crate::zk::tree::lookup;
use std::collections::BTreeMap;

/// `{"version":1,"partitions":{"0":[1,2],...}}` → (partition, replicas).
pub(crate) fn parse_assignment(data: Option<&[u8]>) -> Option<Vec<(i32, Vec<i32>)>> {
    let v: serde_json::Value = serde_json::from_slice(data?).ok()?;
    let parts = v.get("partitions")?.as_object()?;
    let mut out = Vec::with_capacity(parts.len());
    for (p, replicas) in parts {
        let replicas = replicas
            .as_array()?
            .iter()
            .map(|r| r.as_i64().and_then(|r| i32::try_from(r).ok()))
            .collect::<Option<Vec<_>>>()?;
        out.push((p.parse().ok()?, replicas));
    }
    out.sort_by_key(|(p, _)| *p);
    Some(out)
}

/// `{"version":1,"config":{"k":"v"}}` → overrides (non-string values are taken verbatim).
pub(crate) fn parse_configs(data: Option<&[u8]>) -> Option<BTreeMap<String, String>> {
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        return Some(BTreeMap::new());
    };
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let Some(cfg) = v.get("config") else {
        return Some(BTreeMap::new());
    };
    let cfg = cfg.as_object()?;
    Some(
        cfg.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect(),
    )
}

/// `<chroot>/config/topics/<t>` for a `<chroot>/brokers/topics/<t>` path.
fn config_path_for(path: &str, topic: &str) -> Option<String> {
    let chroot = path.strip_suffix(&format!("/brokers/topics/{topic}"))?;
    Some(format!("{chroot}/config/topics/{topic}"))
}

/// create `/brokers/topics/<t>`.
pub(crate) async fn create_topic(
    ctx: &mut OpCtx<'_>,
    path: &str,
    topic: &str,
    data: Option<&[u8]>,
) -> Result<(), Reply> {
    let Some(assignment) = parse_assignment(data) else {
        return Err(Reply::err(ErrorCode::BadArguments));
    };
    let (img, ctl) = ctx.image();
    let config_path = config_path_for(path, topic);
    let pending = config_path
        .as_deref()
        .and_then(|p| lookup(&view(&img, ctl), p))
        .filter(|n| !n.projected);
    let configs = match &pending {
        Some(n) => {
            parse_configs(n.data.as_deref()).ok_or_else(|| Reply::err(ErrorCode::BadArguments))?
        }
        None => BTreeMap::new(),
    };
    ctx.broker
        .zk_create_topic(topic, assignment, configs)
        .await
        .map_err(|e| Reply::broker_err(&e))?;
    if let (Some(p), Some(_)) = (config_path, pending) {
        // The topic now carries the configs; the projection replaces the pending node.
        if let Err(e) = ctx
            .broker
            .zk_multi(
                ctx.session_id,
                vec![ZkOp::Delete {
                    path: p,
                    version: -1,
                }],
            )
            .await
        {
            tracing::debug!(error = %e, "could not remove the pending topic config znode");
        }
    }
    Ok(())
}

/// setData `/brokers/topics/<t>` on an existing topic.
pub(crate) async fn set_assignment(
    ctx: &mut OpCtx<'_>,
    topic: &str,
    data: Option<&[u8]>,
) -> Result<(), Reply> {
    let Some(assignment) = parse_assignment(data) else {
        return Err(Reply::err(ErrorCode::BadArguments));
    };
    ctx.broker
        .zk_set_assignment(topic, assignment)
        .await
        .map_err(|e| Reply::broker_err(&e))
}

/// setData `/config/topics/<t>` on an existing topic.
pub(crate) async fn set_configs(
    ctx: &mut OpCtx<'_>,
    topic: &str,
    data: Option<&[u8]>,
) -> Result<(), Reply> {
    let Some(configs) = parse_configs(data) else {
        return Err(Reply::err(ErrorCode::BadArguments));
    };
    ctx.broker
        .replace_topic_configs(topic, configs, false)
        .await
        .map_err(|e| Reply::broker_err(&e))
}

/// create or setData `/config/brokers/<id>` / `/config/brokers/<default>` (what
/// `kafka-configs.sh --zookeeper ... --entity-type brokers` writes, before its change
/// notification under `/config/changes`): replaces that entity's dynamic broker configs.
pub(crate) async fn set_broker_configs(
    ctx: &mut OpCtx<'_>,
    entity: &str,
    data: Option<&[u8]>,
) -> Result<(), Reply> {
    let broker = if entity == crate::metadata::CLUSTER_DEFAULT_ENTITY {
        None
    } else {
        let id = entity
            .parse::<i32>()
            .map_err(|_| Reply::err(ErrorCode::BadArguments))?;
        Some(crate::types::NodeId(id))
    };
    let Some(configs) = parse_configs(data) else {
        return Err(Reply::err(ErrorCode::BadArguments));
    };
    ctx.broker
        .zk_replace_broker_configs(broker, configs)
        .await
        .map_err(|e| Reply::broker_err(&e))
}

/// create or setData `/config/users/<user>` (what `kafka-configs.sh --zookeeper ...
/// --entity-type users` writes, e.g. `{"version":1,"config":{"SCRAM-SHA-256":"salt=...,
/// stored_key=...,server_key=...,iterations=8192"}}`): replaces that user's SCRAM credentials
/// and other configs.
pub(crate) async fn set_user_configs(
    ctx: &mut OpCtx<'_>,
    user: &str,
    data: Option<&[u8]>,
) -> Result<(), Reply> {
    let Some(configs) = parse_configs(data) else {
        return Err(Reply::err(ErrorCode::BadArguments));
    };
    ctx.broker
        .zk_replace_user_configs(user, configs)
        .await
        .map_err(|e| Reply::broker_err(&e))
}

/// create or setData `/config/clients/<c>` or `/config/users/<u>/clients/<c>` (what
/// `kafka-configs.sh --zookeeper ... --entity-type clients [--entity-type users]` writes, e.g.
/// `{"version":1,"config":{"producer_byte_rate":"1024"}}`): replaces that entity's quotas.
pub(crate) async fn set_client_quotas(
    ctx: &mut OpCtx<'_>,
    entity: &crate::metadata::quotas::QuotaEntity,
    data: Option<&[u8]>,
) -> Result<(), Reply> {
    let Some(configs) = parse_configs(data) else {
        return Err(Reply::err(ErrorCode::BadArguments));
    };
    ctx.broker
        .zk_replace_client_quotas(entity.clone(), configs)
        .await
        .map_err(|e| Reply::broker_err(&e))
}

/// A write of one ACL znode (`kafka-acls.sh --authorizer-properties zookeeper.connect=...`
/// of Kafka 2.x: create, versioned setData, versioned delete): replaces the pattern's ACLs
/// (`None` data from a delete removes them) if the version is as `expect` says. A ZooKeeper
/// error (NODEEXISTS, NONODE, BADVERSION, QUOTAEXCEEDED) is the reply.
pub(crate) async fn set_acls(
    ctx: &mut OpCtx<'_>,
    pattern: &crate::security::acl::ResourcePattern,
    data: Option<&[u8]>,
    expect: crate::metadata::AclExpect,
) -> Result<(), Reply> {
    let entries = match data {
        None => std::collections::BTreeSet::new(),
        Some(d) => match crate::zk::tree::parse_acls_json(d) {
            Ok(e) if !e.is_empty() => e,
            _ => return Err(Reply::err(ErrorCode::BadArguments)),
        },
    };
    if pattern.name.is_empty() || pattern.name.len() > crate::security::acl::ACL_STRING_MAX_BYTES {
        return Err(Reply::err(ErrorCode::BadArguments));
    }
    match ctx
        .broker
        .zk_set_resource_acls(pattern.clone(), entries, expect)
        .await
    {
        Ok(crate::metadata::ZkOpResult::Error(e)) => Err(Reply::op_err(e)),
        Ok(_) => Ok(()),
        Err(e) => Err(Reply::broker_err(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_json() {
        let a = parse_assignment(Some(br#"{"version":1,"partitions":{"1":[2,1],"0":[1,2]}}"#))
            .expect("parses");
        assert_eq!(a, vec![(0, vec![1, 2]), (1, vec![2, 1])]);
        let c = parse_configs(Some(
            br#"{"version":1,"config":{"retention.ms":"1000","x":5}}"#,
        ))
        .expect("parses");
        assert_eq!(c.get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(c.get("x").map(String::as_str), Some("5"));
        assert!(parse_assignment(Some(b"nope")).is_none());
        assert_eq!(parse_configs(None), Some(BTreeMap::new()));
        assert_eq!(
            config_path_for("/kafka/brokers/topics/t", "t").as_deref(),
            Some("/kafka/config/topics/t")
        );
    }
}

#[cfg(test)]
mod tool_tests {
    use super::*;
    use crate::zk::testing::ZkFixture;

    #[tokio::test]
    async fn a_pending_config_node_becomes_the_topics_configs() {
        let mut z = ZkFixture::new().await;
        // kafka-topics.sh writes /config/topics/<t> first, then the assignment.
        z.put(
            "/config/topics/p",
            br#"{"version":1,"config":{"retention.ms":"1000"}}"#,
        )
        .await;
        create_topic(
            &mut z.ctx(),
            "/brokers/topics/p",
            "p",
            Some(br#"{"version":1,"partitions":{"0":[1]}}"#),
        )
        .await
        .expect("created");
        let image = z.f.broker.metadata_view();
        let t = image.topic("p").expect("topic");
        assert_eq!(
            t.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert!(
            image
                .zk
                .znodes
                .get("/config/topics/p")
                .is_none_or(|n| n.implicit),
            "the pending node is replaced by the projection"
        );
    }

    #[tokio::test]
    async fn under_a_chroot() {
        let mut z = ZkFixture::new().await;
        z.put("/kafka", b"").await;
        z.put(
            "/kafka/config/topics/c",
            br#"{"version":1,"config":{"cleanup.policy":"compact"}}"#,
        )
        .await;
        create_topic(
            &mut z.ctx(),
            "/kafka/brokers/topics/c",
            "c",
            Some(br#"{"version":1,"partitions":{"0":[1],"1":[1]}}"#),
        )
        .await
        .expect("created");
        let image = z.f.broker.metadata_view();
        let t = image.topic("c").expect("topic");
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(
            t.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
    }

    #[tokio::test]
    async fn bad_pending_configs_and_assignments_are_bad_arguments() {
        let mut z = ZkFixture::new().await;
        z.put("/config/topics/b", b"not json").await;
        let one = Some(&br#"{"version":1,"partitions":{"0":[1]}}"#[..]);
        let r = create_topic(&mut z.ctx(), "/brokers/topics/b", "b", one).await;
        assert_eq!(r, Err(Reply::err(ErrorCode::BadArguments)));
        let r = create_topic(&mut z.ctx(), "/brokers/topics/n", "n", None).await;
        assert_eq!(r, Err(Reply::err(ErrorCode::BadArguments)));
        let r = set_assignment(&mut z.ctx(), "missing", one).await;
        assert_eq!(r, Err(Reply::err(ErrorCode::NoNode)));
        let r = set_configs(&mut z.ctx(), "missing", None).await;
        assert_eq!(r, Err(Reply::err(ErrorCode::NoNode)));
        assert!(z.f.broker.metadata_view().topics.is_empty());
    }
}
