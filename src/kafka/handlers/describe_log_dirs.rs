//! DescribeLogDirs (key 35), v0–v4 (v0 = v1; its codec is patched back in, see vendor/README.md): this node's log directory (one: its RocksDB data dir) with
//! the size of every replica it holds; v3 adds the top-level error code, v4 the directory's
//! total and usable bytes. `kafka-log-dirs.sh`, kafka-ui and AKHQ use it to show disk usage.
//!
//! Authorization (Kafka's): DESCRIBE on the cluster, else no directories (v3+: with
//! CLUSTER_AUTHORIZATION_FAILED).

use super::{sb, topic_name};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

/// The versions of DescribeLogDirs this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// Its size for the per-request limits (checked by the route table before `handle`).
impl RequestShape for DescribeLogDirsRequest {
    fn shape(&self) -> Shape {
        let topics = self.topics.as_deref().unwrap_or_default();
        Shape {
            entries: topics.len(),
            partitions: topics.iter().map(|t| t.partitions.len()).sum(),
        }
    }
}

/// Answers one DescribeLogDirs request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeLogDirsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let v = ctx.api_version;
    let filter = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let mut r = DescribeLogDirsResponse::default();
    if !Authz::new(ctx).cluster(Operation::Describe) {
        if v >= 3 {
            r.error_code = code(&crate::broker::BrokerError::ClusterAuthorizationFailed);
        }
        return r;
    }
    let mut dir = DescribeLogDirsResult::default();
    match ctx.broker.describe_log_dirs(filter).await {
        Ok(view) => {
            dir.log_dir = sb(&view.path);
            if v >= 4 {
                dir.total_bytes = i64::try_from(view.total_bytes).unwrap_or(i64::MAX);
                dir.usable_bytes = i64::try_from(view.usable_bytes).unwrap_or(i64::MAX);
            }
            for rep in view.replicas {
                let mut p = DescribeLogDirsPartition::default();
                p.partition_index = rep.partition;
                p.partition_size = i64::try_from(rep.size_bytes).unwrap_or(i64::MAX);
                // The current replica is never behind itself; only a future replica (a move
                // between directories, which one directory cannot have) would lag.
                p.offset_lag = 0;
                match dir.topics.last_mut() {
                    Some(t) if t.name.0.as_str() == rep.topic => t.partitions.push(p),
                    _ => {
                        let mut t = DescribeLogDirsTopic::default();
                        t.name = topic_name(&rep.topic);
                        t.partitions.push(p);
                        dir.topics.push(t);
                    }
                }
            }
        }
        Err(e) => {
            // Kafka reports an unreadable directory as KAFKA_STORAGE_ERROR on that directory.
            dir.error_code = code(&e);
            dir.log_dir = sb(&ctx.broker.config().data_dir.display().to_string());
            if v >= 4 {
                dir.total_bytes = -1;
                dir.usable_bytes = -1;
            }
        }
    }
    r.results.push(dir);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, batch_at, ctx, produce};
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::protocol::Message;

    fn only(topic: &str, partitions: &[i32]) -> DescribeLogDirsRequest {
        let mut t = DescribableLogDirTopic::default();
        t.topic = topic_name(topic);
        t.partitions = partitions.to_vec();
        let mut r = DescribeLogDirsRequest::default();
        r.topics = Some(vec![t]);
        r
    }

    #[test]
    fn versions_are_within_the_codec() {
        let codec = DescribeLogDirsRequest::VERSIONS;
        assert!(VERSIONS.min >= codec.min && VERSIONS.max <= codec.max);
    }

    #[tokio::test]
    async fn reports_each_replica_with_its_real_size() {
        let f = Fixture::new().await;
        f.topic("a", 2, &[]).await;
        f.topic("b", 1, &[]).await;
        let b1 = batch_at(3, 1_000);
        let b2 = batch_at(2, 2_000);
        let expected = (b1.len() + b2.len()) as i64;
        produce(&f, "a", 1, b1).await;
        produce(&f, "a", 1, b2).await;
        for v in VERSIONS.min..=VERSIONS.max {
            // Null topics: every replica.
            let mut all = DescribeLogDirsRequest::default();
            all.topics = None;
            let r = respond(&ctx(&f, v), all).await;
            assert_encodes(&r, v);
            assert_eq!(r.results.len(), 1);
            let dir = &r.results[0];
            assert_eq!(dir.error_code, 0);
            assert!(!dir.log_dir.is_empty());
            let sizes: Vec<(String, i32, i64)> = dir
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.0.to_string(), p.partition_index, p.partition_size))
                })
                .filter(|(t, _, _)| t == "a" || t == "b")
                .collect();
            assert_eq!(
                sizes,
                vec![
                    ("a".into(), 0, 0),
                    ("a".into(), 1, expected),
                    ("b".into(), 0, 0)
                ],
                "v{v}"
            );
            if v >= 4 {
                assert!(dir.total_bytes > 0 && dir.usable_bytes > 0);
                assert!(dir.usable_bytes <= dir.total_bytes);
            } else {
                assert_eq!((dir.total_bytes, dir.usable_bytes), (-1, -1));
            }
        }
    }

    #[tokio::test]
    async fn a_topic_filter_limits_the_answer() {
        let f = Fixture::new().await;
        f.topic("a", 2, &[]).await;
        f.topic("b", 1, &[]).await;
        let r = respond(&ctx(&f, 2), only("a", &[1])).await;
        let dir = &r.results[0];
        assert_eq!(dir.topics.len(), 1);
        assert_eq!(dir.topics[0].name.0.as_str(), "a");
        let parts: Vec<i32> = dir.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(parts, vec![1]);
        // Unknown topics and partitions are simply absent, as in Kafka.
        let r = respond(&ctx(&f, 2), only("nope", &[0])).await;
        assert!(r.results[0].topics.is_empty());
        let r = respond(&ctx(&f, 2), only("a", &[])).await;
        assert!(r.results[0].topics.is_empty());
    }
}
