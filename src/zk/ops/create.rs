//! create (1), create2 (15, with Stat) and createContainer (19, kept as persistent).
//! Flags: 0 persistent, 1 ephemeral, 2 sequential, 3 ephemeral sequential, 4 container;
//! TTL modes (5, 6) are UNIMPLEMENTED. Needs CREATE on the parent; the ACL is fixed up as
//! ZooKeeper does (`zk::acl::fixup`).

use super::{consumers_for, kafka, view, write_stat, OpCtx, Reply};
use crate::codec::jute::{opcode, Acl, ErrorCode, Writer};
use crate::metadata::{ZkOp, ZkOpResult};
use crate::zk::tree::{
    broker_owned, consumers_query, kafka_path, lookup, ConsumersQuery, KafkaPath,
};

/// Maps the flags to (ephemeral, sequential).
fn mode(flags: i32) -> Option<(bool, bool)> {
    match flags {
        0 | 4 => Some((false, false)),
        1 => Some((true, false)),
        2 => Some((false, true)),
        3 => Some((true, true)),
        _ => None,
    }
}

fn created(op: i32, path: &str, stat: &crate::metadata::ZnodeStat) -> Reply {
    let mut w = Writer::new();
    w.ustring(path);
    if op == opcode::CREATE2 {
        write_stat(&mut w, stat);
    }
    Reply::ok(w)
}

pub async fn handle(
    ctx: &mut OpCtx<'_>,
    op: i32,
    path: &str,
    data: Option<Vec<u8>>,
    acl: &[Acl],
    flags: i32,
) -> Reply {
    let Some((ephemeral, sequential)) = mode(flags) else {
        return Reply::err(ErrorCode::Unimplemented);
    };
    let shape = if sequential {
        format!("{path}0")
    } else {
        path.to_owned()
    };
    if let Err(r) = ctx.check_path(&shape) {
        return r;
    }
    // ZooKeeper's order: INVALIDACL, NONODE (parent), NOAUTH (CREATE on the parent). A
    // missing parent (or one only the `/consumers` projection shows) is answered below.
    let Some(acl) = crate::zk::acl::fixup(acl, ctx.auth) else {
        return Reply::err(ErrorCode::InvalidAcl);
    };
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let parent = crate::metadata::parent_of(path);
    if path != "/" && lookup(&v, parent).is_some() {
        if let Err(r) = ctx.may(&v, parent, crate::zk::acl::CREATE) {
            return r;
        }
    }
    if !sequential {
        match kafka_path(&v, path) {
            Some(KafkaPath::TopicAssignment(t)) if img.topic(&t).is_none() => {
                if let Err(r) = kafka::create_topic(ctx, path, &t, data.as_deref()).await {
                    return r;
                }
                let (img, ctl) = ctx.image();
                return match lookup(&view(&img, ctl), path) {
                    Some(n) => created(op, path, &n.stat),
                    None => Reply::err(ErrorCode::SystemError),
                };
            }
            Some(KafkaPath::TopicConfig(t)) if img.topic(&t).is_some() => {
                return Reply::err(ErrorCode::NodeExists)
            }
            Some(KafkaPath::BrokerConfig(e)) if !img.broker_configs.contains_key(&e) => {
                if let Err(r) = kafka::set_broker_configs(ctx, &e, data.as_deref()).await {
                    return r;
                }
                let (img, ctl) = ctx.image();
                return match lookup(&view(&img, ctl), path) {
                    Some(n) => created(op, path, &n.stat),
                    // Empty configs store nothing; the node reads as absent, like Kafka's
                    // entity with no overrides.
                    None => created(op, path, &crate::metadata::ZnodeStat::default()),
                };
            }
            Some(KafkaPath::Acl(p)) => {
                let expect = crate::metadata::AclExpect::Absent;
                if let Err(r) = kafka::set_acls(ctx, &p, data.as_deref(), expect).await {
                    return r;
                }
                let (img, ctl) = ctx.image();
                return match lookup(&view(&img, ctl), path) {
                    Some(n) => created(op, path, &n.stat),
                    None => Reply::err(ErrorCode::SystemError),
                };
            }
            Some(KafkaPath::QuotaConfig(e)) if !img.client_quotas.contains_key(&e) => {
                if let Err(r) = kafka::set_client_quotas(ctx, &e, data.as_deref()).await {
                    return r;
                }
                let (img, ctl) = ctx.image();
                return match lookup(&view(&img, ctl), path) {
                    Some(n) => created(op, path, &n.stat),
                    // No quotas store nothing (as an entity without overrides).
                    None => created(op, path, &crate::metadata::ZnodeStat::default()),
                };
            }
            Some(KafkaPath::UserConfig(u)) if lookup(&v, path).is_none() => {
                if let Err(r) = kafka::set_user_configs(ctx, &u, data.as_deref()).await {
                    return r;
                }
                let (img, ctl) = ctx.image();
                return match lookup(&view(&img, ctl), path) {
                    Some(n) => created(op, path, &n.stat),
                    None => Reply::err(ErrorCode::SystemError),
                };
            }
            _ => {}
        }
        if lookup(&v, path).is_some() {
            return Reply::err(ErrorCode::NodeExists);
        }
    }
    if broker_owned(&v, path) {
        return Reply::err(ErrorCode::NoAuth);
    }
    if let Err(r) = store_consumers_parent(ctx, path).await {
        return r;
    }
    let ops = vec![ZkOp::Create {
        path: path.to_owned(),
        data,
        ephemeral,
        sequential,
        acl,
    }];
    match ctx.broker.zk_multi(ctx.session_id, ops).await {
        Ok(mut r) => match r.pop() {
            Some(ZkOpResult::Created { path, stat }) => created(op, &path, &stat),
            Some(ZkOpResult::Error(e)) => Reply::op_err(e),
            _ => Reply::err(ErrorCode::SystemError),
        },
        Err(e) => Reply::broker_err(&e),
    }
}

/// A child of `/consumers/<g>` where that node exists only as the projection of the group's
/// committed offsets (what a client that checks before creating, as kazoo's `makepath` does,
/// takes as existing): the node is stored first, as a Kafka 2.2.1 cluster would have it.
async fn store_consumers_parent(ctx: &mut OpCtx<'_>, path: &str) -> Result<(), Reply> {
    let parent = crate::metadata::parent_of(path);
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let is_group_dir = matches!(consumers_query(&v, parent), Some(ConsumersQuery::Group(g))
        if crate::metadata::name_of(parent) == g);
    if !is_group_dir || img.zk.znodes.get(parent).is_some_and(|z| !z.implicit) {
        return Ok(());
    }
    let consumers = consumers_for(ctx.broker, &img, ctl, parent).await;
    if lookup(&v.with_consumers(consumers.as_ref()), parent).is_none() {
        return Ok(()); // the create then answers NONODE, as ZooKeeper does
    }
    let op = ZkOp::Create {
        path: parent.to_owned(),
        data: None,
        ephemeral: false,
        sequential: false,
        acl: crate::metadata::open_acls(),
    };
    match ctx.broker.zk_multi(ctx.session_id, vec![op]).await {
        Ok(mut r) => match r.pop() {
            Some(ZkOpResult::Created { .. })
            | Some(ZkOpResult::Error(crate::metadata::ZkOpError::NodeExists)) => Ok(()),
            Some(ZkOpResult::Error(e)) => Err(Reply::op_err(e)),
            _ => Err(Reply::err(ErrorCode::SystemError)),
        },
        Err(e) => Err(Reply::broker_err(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::{assert_err, created, open_session, ZkFixture};

    fn open() -> Vec<Acl> {
        vec![Acl::open()]
    }

    async fn create(z: &mut ZkFixture, op: i32, path: &str, data: &[u8], flags: i32) -> Reply {
        handle(&mut z.ctx(), op, path, Some(data.to_vec()), &open(), flags).await
    }

    fn stored(z: &ZkFixture, path: &str) -> Option<crate::metadata::ZnodeStat> {
        z.f.broker
            .metadata_view()
            .zk
            .znodes
            .get(path)
            .filter(|n| !n.implicit)
            .map(|n| n.stat())
    }

    #[tokio::test]
    async fn create_and_create2_answer_the_path_and_stat() {
        let mut z = ZkFixture::new().await;
        let r = create(&mut z, opcode::CREATE, "/a", b"x", 0).await;
        assert_eq!(created(&r, false), ("/a".into(), None));
        let r = create(&mut z, opcode::CREATE2, "/a/b", b"yy", 0).await;
        let (path, stat) = created(&r, true);
        assert_eq!(path, "/a/b");
        let stat = stat.expect("create2 has a stat");
        let index = i64::try_from(z.f.broker.metadata_view().applied_index).expect("index");
        assert_eq!(
            (
                stat.czxid,
                stat.mzxid,
                stat.version,
                stat.data_length,
                stat.ephemeral_owner
            ),
            (index, index, 0, 2, 0)
        );
        // createContainer answers like create; containers are kept as persistent nodes.
        let r = create(&mut z, opcode::CREATE_CONTAINER, "/c", b"", 4).await;
        assert_eq!(created(&r, false).0, "/c");
        assert_eq!(stored(&z, "/c").map(|s| s.ephemeral_owner), Some(0));
        let parent = stored(&z, "/a").expect("/a stored");
        assert_eq!((parent.num_children, parent.data_length), (1, 1));
        // Null data is kept as null.
        let r = handle(&mut z.ctx(), opcode::CREATE, "/null", None, &open(), 0).await;
        assert_eq!(r.err, 0);
        let image = z.f.broker.metadata_view();
        assert_eq!(
            image.zk.znodes.get("/null").map(|n| n.data.clone()),
            Some(None)
        );
    }

    #[tokio::test]
    async fn ephemeral_and_sequential_modes() {
        let mut z = ZkFixture::new().await;
        let sid = z.session_id;
        let r = create(&mut z, opcode::CREATE, "/e", b"", 1).await;
        assert_eq!(r.err, 0);
        assert_eq!(stored(&z, "/e").map(|s| s.ephemeral_owner), Some(sid));
        create(&mut z, opcode::CREATE, "/q", b"", 0).await;
        let mut got = Vec::new();
        for flags in [2, 3, 2] {
            let r = create(&mut z, opcode::CREATE, "/q/n-", b"", flags).await;
            got.push(created(&r, false).0);
        }
        assert_eq!(
            got,
            vec!["/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000002"]
        );
        assert_eq!(
            stored(&z, "/q/n-0000000001").map(|s| s.ephemeral_owner),
            Some(sid)
        );
        assert_eq!(
            stored(&z, "/q/n-0000000002").map(|s| s.ephemeral_owner),
            Some(0)
        );
        // A session that does not exist cannot own an ephemeral.
        let mut ctx = z.ctx();
        ctx.session_id = 0x0bad;
        let r = handle(&mut ctx, opcode::CREATE, "/e2", None, &open(), 1).await;
        assert_err(&r, ErrorCode::SessionExpired);
        // Another session's ephemerals are its own.
        let other = open_session(&z.f, 0x200).await;
        let mut ctx = z.ctx();
        ctx.session_id = other;
        let r = handle(&mut ctx, opcode::CREATE, "/e3", None, &open(), 1).await;
        assert_eq!(r.err, 0);
        assert_eq!(stored(&z, "/e3").map(|s| s.ephemeral_owner), Some(other));
    }

    #[tokio::test]
    async fn errors() {
        let mut z = ZkFixture::with(&[("jute.maxbuffer", "1024")]).await;
        create(&mut z, opcode::CREATE, "/a", b"", 0).await;
        create(&mut z, opcode::CREATE, "/eph", b"", 1).await;
        let long = format!("/{}", "x".repeat(5000));
        for (path, flags, want) in [
            ("/a", 0, ErrorCode::NodeExists),
            ("/", 0, ErrorCode::NodeExists),
            ("/missing/child", 0, ErrorCode::NoNode),
            ("/eph/child", 0, ErrorCode::NoChildrenForEphemerals),
            ("relative", 0, ErrorCode::BadArguments),
            ("/trailing/", 0, ErrorCode::BadArguments),
            ("/a//b", 0, ErrorCode::BadArguments),
            ("/a/./b", 0, ErrorCode::BadArguments),
            (long.as_str(), 0, ErrorCode::BadArguments),
            ("/ttl", 5, ErrorCode::Unimplemented),
            ("/ttl", 6, ErrorCode::Unimplemented),
        ] {
            let r = create(&mut z, opcode::CREATE, path, b"", flags).await;
            assert_err(&r, want);
        }
        let r = handle(&mut z.ctx(), opcode::CREATE, "/noacl", None, &[], 0).await;
        assert_err(&r, ErrorCode::InvalidAcl);
        // Data past jute.maxbuffer.
        let r = create(&mut z, opcode::CREATE, "/big", &[0u8; 1025], 0).await;
        assert_err(&r, ErrorCode::BadArguments);
        assert!(stored(&z, "/big").is_none());
        let r = create(&mut z, opcode::CREATE, "/fits", &[0u8; 1024], 0).await;
        assert_eq!(r.err, 0);
    }

    #[tokio::test]
    async fn the_stored_data_budget_is_a_quota() {
        let mut z = ZkFixture::with(&[("zk.data.total.max.bytes", "10")]).await;
        let r = create(&mut z, opcode::CREATE, "/a", b"0123456789", 0).await;
        assert_eq!(r.err, 0);
        let r = create(&mut z, opcode::CREATE, "/b", b"x", 0).await;
        assert_err(&r, ErrorCode::QuotaExceeded);
        assert!(stored(&z, "/b").is_none());
    }

    /// Kafka 2.x `kafka-configs.sh --zookeeper ... --entity-type brokers`: setData (NoNode at
    /// first), then create `/config/brokers/<id>` or `<default>`, then a change notification.
    #[tokio::test]
    async fn kafka_configs_tool_writes_dynamic_broker_configs() {
        let mut z = ZkFixture::new().await;
        async fn set(z: &mut ZkFixture, path: &str, data: &[u8]) -> Reply {
            crate::zk::ops::set_data::handle(&mut z.ctx(), path, Some(data.to_vec()), -1).await
        }
        let one = br#"{"version":1,"config":{"log.retention.ms":"5000"}}"#;
        assert_err(
            &set(&mut z, "/config/brokers/<default>", one).await,
            ErrorCode::NoNode,
        );
        let r = create(&mut z, opcode::CREATE, "/config/brokers/<default>", one, 0).await;
        assert_eq!(r.err, 0);
        let r = create(
            &mut z,
            opcode::CREATE,
            "/config/changes/config_change_",
            br#"{"version":2,"entity_path":"brokers/<default>"}"#,
            2,
        )
        .await;
        assert_eq!(r.err, 0);
        let two = br#"{"version":1,"config":{"message.max.bytes":"2000"}}"#;
        let r = create(&mut z, opcode::CREATE, "/config/brokers/1", two, 0).await;
        assert_eq!(r.err, 0);
        let image = z.f.broker.metadata_view();
        assert_eq!(
            image
                .broker_configs(None)
                .get("log.retention.ms")
                .map(String::as_str),
            Some("5000")
        );
        let dynamic = z.f.broker.config().dynamic.get();
        assert_eq!(
            dynamic.broker.get("message.max.bytes").map(String::as_str),
            Some("2000")
        );
        let v = view(&image, None);
        let dir = lookup(&v, "/config/brokers").expect("dir");
        assert_eq!(dir.children, vec!["1".to_owned(), "<default>".to_owned()]);
        let n = lookup(&v, "/config/brokers/1").expect("node");
        assert_eq!(n.data.as_deref(), Some(&two[..]));
        // setData on an existing entity replaces it; read-only keys are refused.
        let r = set(
            &mut z,
            "/config/brokers/1",
            br#"{"version":1,"config":{"log.retention.hours":"1"}}"#,
        )
        .await;
        assert_eq!(r.err, 0);
        assert_eq!(
            z.f.broker
                .config()
                .dynamic
                .get()
                .broker
                .keys()
                .collect::<Vec<_>>(),
            vec!["log.retention.hours"]
        );
        let r = set(
            &mut z,
            "/config/brokers/1",
            br#"{"version":1,"config":{"log.dirs":"/x"}}"#,
        )
        .await;
        assert_ne!(r.err, 0);
        assert_err(
            &create(&mut z, opcode::CREATE, "/config/brokers/1", one, 0).await,
            ErrorCode::NodeExists,
        );
    }

    #[tokio::test]
    async fn projected_kafka_paths() {
        let mut z = ZkFixture::new().await;
        z.f.topic("t", 1, &[]).await;
        for (path, want) in [
            ("/brokers/ids/1", ErrorCode::NodeExists),
            ("/brokers/ids/9", ErrorCode::NoAuth),
            ("/controller", ErrorCode::NodeExists),
            ("/cluster/other", ErrorCode::NoAuth),
            ("/brokers/topics/t", ErrorCode::NodeExists),
            ("/brokers/topics/t/partitions/5", ErrorCode::NoAuth),
            ("/config/topics/t", ErrorCode::NodeExists),
            ("/config", ErrorCode::NodeExists),
        ] {
            let r = create(&mut z, opcode::CREATE, path, b"{}", 0).await;
            assert_err(&r, want);
        }
        // A stored node under a skeleton directory is fine (how tools signal changes).
        let r = create(
            &mut z,
            opcode::CREATE,
            "/config/changes/config_change_",
            b"{}",
            2,
        )
        .await;
        assert_eq!(
            created(&r, false).0,
            "/config/changes/config_change_0000000000"
        );
    }

    /// A sequential create under `/brokers/topics` used to store a plain znode, which
    /// `getChildren /brokers/topics` then listed as a topic that does not exist.
    #[tokio::test]
    async fn only_topics_live_under_brokers_topics() {
        let mut z = ZkFixture::new().await;
        z.put("/kafka", b"").await;
        for path in ["/brokers/topics/s-", "/kafka/brokers/topics/s-"] {
            let r = create(&mut z, opcode::CREATE, path, b"{}", 2).await;
            assert_err(&r, ErrorCode::NoAuth);
        }
        let image = z.f.broker.metadata_view();
        let listed = crate::zk::tree::lookup(&view(&image, None), "/brokers/topics")
            .expect("/brokers/topics")
            .children;
        assert!(listed.is_empty(), "{listed:?}");
    }

    #[tokio::test]
    async fn creating_a_topic_assignment_creates_the_topic() {
        let mut z = ZkFixture::new().await;
        let assignment = br#"{"version":1,"partitions":{"1":[1],"0":[1]}}"#;
        let r = create(
            &mut z,
            opcode::CREATE2,
            "/brokers/topics/new",
            assignment,
            0,
        )
        .await;
        let (path, stat) = created(&r, true);
        assert_eq!(path, "/brokers/topics/new");
        let image = z.f.broker.metadata_view();
        let t = image.topic("new").expect("topic created");
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(stat.map(|s| s.czxid), i64::try_from(t.created_index).ok());
        // Not a stored znode: the projection shows the topic.
        assert!(stored(&z, "/brokers/topics/new").is_none());
        for (path, data, want) in [
            (
                "/brokers/topics/bad",
                &b"not json"[..],
                ErrorCode::BadArguments,
            ),
            (
                "/brokers/topics/gaps",
                br#"{"version":1,"partitions":{"0":[1],"2":[1]}}"#,
                ErrorCode::BadArguments,
            ),
            (
                "/brokers/topics/nobroker",
                br#"{"version":1,"partitions":{"0":[9]}}"#,
                ErrorCode::BadArguments,
            ),
            (
                "/brokers/topics/bad!name",
                br#"{"version":1,"partitions":{"0":[1]}}"#,
                ErrorCode::BadArguments,
            ),
        ] {
            let r = create(&mut z, opcode::CREATE, path, data, 0).await;
            assert_err(&r, want);
        }
        let image = z.f.broker.metadata_view();
        assert_eq!(image.topics.len(), 1, "only `new` exists");
    }

    /// Kafka 2.2.1's `kafka-acls.sh --authorizer-properties zookeeper.connect=...`: creates
    /// the store's directories (they exist), then per resource: getData (NONODE at first),
    /// create with the ACL JSON, a change notification; later a versioned setData, and a
    /// versioned delete when the last ACL goes.
    #[tokio::test]
    async fn kafka_acls_tool_writes_acl_znodes() {
        use crate::security::acl::{Operation, PatternType, Permission, ResourceType};
        let mut z = ZkFixture::new().await;
        for dir in [
            "/kafka-acl",
            "/kafka-acl/Topic",
            "/kafka-acl-changes",
            "/kafka-acl-extended/prefixed/Group",
        ] {
            assert_err(
                &create(&mut z, opcode::CREATE, dir, b"", 0).await,
                ErrorCode::NodeExists,
            );
        }
        let one = br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}"#;
        let r = create(&mut z, opcode::CREATE2, "/kafka-acl/Topic/t", one, 0).await;
        let (_, stat) = created(&r, true);
        assert_eq!(stat.map(|s| s.version), Some(0));
        assert_err(
            &create(&mut z, opcode::CREATE, "/kafka-acl/Topic/t", one, 0).await,
            ErrorCode::NodeExists,
        );
        let r = create(
            &mut z,
            opcode::CREATE,
            "/kafka-acl-changes/acl_changes_",
            b"Topic:t",
            2,
        )
        .await;
        assert_eq!(
            created(&r, false).0,
            "/kafka-acl-changes/acl_changes_0000000000"
        );
        let pre = br#"{"version":1,"acls":[{"principal":"User:*","permissionType":"Deny","operation":"All","host":"10.0.0.1"}]}"#;
        assert_eq!(
            create(
                &mut z,
                opcode::CREATE,
                "/kafka-acl-extended/prefixed/Group/app-",
                pre,
                0
            )
            .await
            .err,
            0
        );
        let acls: Vec<_> = z.f.broker.metadata_view().acls.bindings().collect();
        assert_eq!(acls.len(), 2);
        assert_eq!(
            (
                acls[0].resource_type,
                acls[0].pattern,
                acls[0].operation,
                acls[0].permission
            ),
            (
                ResourceType::Topic,
                PatternType::Literal,
                Operation::Read,
                Permission::Allow
            )
        );
        assert_eq!(
            (
                acls[1].resource_type,
                acls[1].pattern,
                acls[1].host.as_str()
            ),
            (ResourceType::Group, PatternType::Prefixed, "10.0.0.1")
        );
        // Listed and read back as Kafka wrote them.
        let img = z.f.broker.metadata_view();
        let v = view(&img, None);
        assert_eq!(
            lookup(&v, "/kafka-acl/Topic").map(|n| n.children),
            Some(vec!["t".to_owned()])
        );
        let root = lookup(&v, "/kafka-acl").expect("dir").children;
        assert_eq!(
            root,
            vec![
                "Cluster",
                "DelegationToken",
                "Group",
                "Topic",
                "TransactionalId"
            ]
        );
        let n = lookup(&v, "/kafka-acl/Topic/t").expect("node");
        let back = crate::zk::tree::parse_acls_json(n.data.as_deref().unwrap_or_default())
            .expect("parses");
        assert_eq!(back.len(), 1);
        // setData with the version read; a stale version is refused.
        let two = br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"},{"principal":"User:bob","permissionType":"Allow","operation":"Write","host":"*"}]}"#;
        async fn set(z: &mut ZkFixture, data: &[u8], version: i32) -> Reply {
            crate::zk::ops::set_data::handle(
                &mut z.ctx(),
                "/kafka-acl/Topic/t",
                Some(data.to_vec()),
                version,
            )
            .await
        }
        assert_err(&set(&mut z, two, 3).await, ErrorCode::BadVersion);
        assert_eq!(set(&mut z, two, 0).await.err, 0);
        assert_eq!(z.f.broker.metadata_view().acls.len(), 3);
        assert_err(&set(&mut z, b"garbage", 1).await, ErrorCode::BadArguments);
        // A versioned delete removes the pattern's ACLs.
        async fn del(z: &mut ZkFixture, version: i32) -> Reply {
            crate::zk::ops::delete::handle(&mut z.ctx(), "/kafka-acl/Topic/t", version).await
        }
        assert_err(&del(&mut z, 0).await, ErrorCode::BadVersion);
        assert_eq!(del(&mut z, 1).await, Reply::empty());
        assert_err(&del(&mut z, -1).await, ErrorCode::NoNode);
        assert_eq!(z.f.broker.metadata_view().acls.len(), 1);
        // Bad data, unknown types and deeper paths are refused.
        assert_err(
            &create(&mut z, opcode::CREATE, "/kafka-acl/Topic/u", b"{}", 0).await,
            ErrorCode::BadArguments,
        );
        assert_err(
            &create(&mut z, opcode::CREATE, "/kafka-acl/Topic/u", br#"{"version":1,"acls":[{"principal":"alice","permissionType":"Allow","operation":"Read","host":"*"}]}"#, 0).await,
            ErrorCode::BadArguments,
        );
        assert_err(
            &create(&mut z, opcode::CREATE, "/kafka-acl/Nope/u", one, 0).await,
            ErrorCode::NoNode,
        );
        assert_err(
            &create(&mut z, opcode::CREATE, "/kafka-acl/Topic/u/deeper", one, 0).await,
            ErrorCode::NoAuth,
        );
    }
}
