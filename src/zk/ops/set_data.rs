//! setData (5), versioned. On `/brokers/topics/<t>` it adds partitions, on `/config/topics/<t>`
//! it replaces the topic's overrides, on `/config/brokers/<id>` a broker's dynamic configs, on
//! `/config/users/<u>` a user's configs, on `/config/clients/<c>` (and under a user) quotas;
//! other projected nodes are refused. Needs WRITE on the node.

use super::{kafka, view, write_stat, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Writer};
use crate::metadata::ZkOp;
use crate::zk::tree::{consumers_owned, kafka_path, lookup, KafkaPath};

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, data: Option<Vec<u8>>, version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    if consumers_owned(&v, path) {
        return Reply::err(ErrorCode::NoAuth);
    }
    let Some(node) = lookup(&v, path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if let Err(r) = ctx.may(&v, path, crate::zk::acl::WRITE) {
        return r;
    }
    if node.projected {
        if version != -1 && version != node.stat.version {
            return Reply::err(ErrorCode::BadVersion);
        }
        let done = match kafka_path(&v, path) {
            Some(KafkaPath::TopicAssignment(t)) => {
                kafka::set_assignment(ctx, &t, data.as_deref()).await
            }
            Some(KafkaPath::TopicConfig(t)) => kafka::set_configs(ctx, &t, data.as_deref()).await,
            Some(KafkaPath::BrokerConfig(e)) => {
                kafka::set_broker_configs(ctx, &e, data.as_deref()).await
            }
            Some(KafkaPath::UserConfig(u)) => {
                kafka::set_user_configs(ctx, &u, data.as_deref()).await
            }
            Some(KafkaPath::QuotaConfig(e)) => {
                kafka::set_client_quotas(ctx, &e, data.as_deref()).await
            }
            Some(KafkaPath::Acl(p)) => {
                // The version is checked again where the write is applied (the check above
                // only answers early).
                let expect =
                    crate::metadata::AclExpect::Present((version != -1).then_some(version));
                kafka::set_acls(ctx, &p, Some(data.as_deref().unwrap_or_default()), expect).await
            }
            _ => Err(Reply::err(ErrorCode::NoAuth)),
        };
        if let Err(r) = done {
            return r;
        }
        let (img, ctl) = ctx.image();
        let stat = match lookup(&view(&img, ctl), path) {
            Some(n) => n.stat,
            // Quotas emptied by the tool (`--delete-config`): the entity is gone, as a
            // KRaft cluster forgets it; the write itself succeeded.
            None if matches!(kafka_path(&v, path), Some(KafkaPath::QuotaConfig(_))) => {
                crate::metadata::ZnodeStat::default()
            }
            None => return Reply::err(ErrorCode::NoNode),
        };
        let mut w = Writer::new();
        write_stat(&mut w, &stat);
        return Reply::ok(w);
    }
    let result = ctx
        .broker
        .zk_multi(
            ctx.session_id,
            vec![ZkOp::SetData {
                path: path.to_owned(),
                data,
                version,
            }],
        )
        .await;
    super::stat_reply(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::{assert_err, stat, ZkFixture};

    async fn set(z: &mut ZkFixture, path: &str, data: &[u8], version: i32) -> Reply {
        handle(&mut z.ctx(), path, Some(data.to_vec()), version).await
    }

    #[tokio::test]
    async fn stored_nodes_any_or_exact_version() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"1").await;
        let s = stat(&set(&mut z, "/a", b"22", -1).await);
        let index = i64::try_from(z.f.broker.metadata_view().applied_index).expect("index");
        assert_eq!((s.version, s.data_length, s.mzxid), (1, 2, index));
        assert!(s.czxid < s.mzxid);
        let s = stat(&set(&mut z, "/a", b"333", 1).await);
        assert_eq!((s.version, s.data_length), (2, 3));
        assert_err(&set(&mut z, "/a", b"x", 1).await, ErrorCode::BadVersion);
        let image = z.f.broker.metadata_view();
        assert_eq!(image.zk.znodes["/a"].data.as_deref(), Some(&b"333"[..]));
        // Null data.
        let s = stat(&handle(&mut z.ctx(), "/a", None, -1).await);
        assert_eq!((s.version, s.data_length), (3, 0));
    }

    #[tokio::test]
    async fn errors() {
        let mut z = ZkFixture::with(&[
            ("jute.maxbuffer", "1024"),
            ("zk.data.total.max.bytes", "2000"),
        ])
        .await;
        z.put("/a", b"").await;
        for (path, version, want) in [
            ("/missing", -1, ErrorCode::NoNode),
            ("a", -1, ErrorCode::BadArguments),
            ("/brokers/ids/1", -1, ErrorCode::NoAuth),
            ("/brokers/ids/1", 4, ErrorCode::BadVersion),
            ("/controller", -1, ErrorCode::NoAuth),
            ("/config", -1, ErrorCode::NoAuth),
        ] {
            assert_err(&set(&mut z, path, b"{}", version).await, want);
        }
        assert_err(
            &set(&mut z, "/a", &[0u8; 1025], -1).await,
            ErrorCode::BadArguments,
        );
        z.put("/b", &[0u8; 1000]).await;
        assert_err(
            &set(&mut z, "/a", &[0u8; 1001], -1).await,
            ErrorCode::QuotaExceeded,
        );
        // Shrinking is always allowed.
        assert_eq!(set(&mut z, "/b", b"", -1).await.err, 0);
        assert_eq!(set(&mut z, "/a", &[0u8; 1001], -1).await.err, 0);
    }

    #[tokio::test]
    async fn kafka_tools_add_partitions_and_replace_configs() {
        let mut z = ZkFixture::new().await;
        z.f.topic("t", 1, &[("retention.ms", "1000")]).await;
        let grown = br#"{"version":1,"partitions":{"0":[1],"1":[1],"2":[1]}}"#;
        let r = set(&mut z, "/brokers/topics/t", grown, -1).await;
        assert_eq!(r.err, 0);
        assert_eq!(
            z.f.broker
                .metadata_view()
                .topic("t")
                .map(|t| t.partitions.len()),
            Some(3)
        );
        let r = set(
            &mut z,
            "/config/topics/t",
            br#"{"version":1,"config":{"cleanup.policy":"compact"}}"#,
            -1,
        )
        .await;
        let s = stat(&r);
        assert_eq!(s.version, 1, "the projected config node's version moved");
        let image = z.f.broker.metadata_view();
        let configs: Vec<(&str, &str)> = image
            .topic("t")
            .expect("t")
            .configs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(configs, vec![("cleanup.policy", "compact")]);
        for (path, data, want) in [
            (
                "/brokers/topics/t",
                &b"garbage"[..],
                ErrorCode::BadArguments,
            ),
            (
                "/brokers/topics/t",
                br#"{"version":1,"partitions":{"0":[2],"1":[1],"2":[1]}}"#,
                ErrorCode::BadArguments,
            ),
            (
                "/brokers/topics/t",
                br#"{"version":1,"partitions":{"0":[1],"1":[1],"2":[1],"3":[9]}}"#,
                ErrorCode::BadArguments,
            ),
            ("/config/topics/t", &b"garbage"[..], ErrorCode::BadArguments),
            (
                "/config/topics/t",
                br#"{"version":1,"config":{"retention.ms":"soon"}}"#,
                ErrorCode::BadArguments,
            ),
        ] {
            assert_err(&set(&mut z, path, data, -1).await, want);
        }
        let image = z.f.broker.metadata_view();
        assert_eq!(image.topic("t").map(|t| t.partitions.len()), Some(3));
        assert_eq!(image.topic("t").map(|t| t.configs.len()), Some(1));
    }
}
