//! getChildren2 (12): getChildren plus the parent's Stat (what Kafka tools use).

use super::{get_children, OpCtx, Reply};

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, watch: bool) -> Reply {
    get_children::handle(ctx, path, watch, true).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::ErrorCode;
    use crate::zk::testing::{assert_err, children, ZkFixture};

    #[tokio::test]
    async fn children_with_the_parents_stat() {
        let mut z = ZkFixture::new().await;
        z.put("/p", b"xy").await;
        z.put("/p/a", b"").await;
        z.put("/p/b", b"").await;
        let (names, stat) = children(&handle(&mut z.ctx(), "/p", false).await, true);
        assert_eq!(names, vec!["a", "b"]);
        let stat = stat.expect("stat");
        let index = i64::try_from(z.f.broker.metadata_view().applied_index).expect("index");
        assert_eq!(
            (
                stat.num_children,
                stat.data_length,
                stat.cversion,
                stat.pzxid
            ),
            (2, 2, 2, index)
        );
        // Kafka tools list topics this way.
        z.f.topic("t", 1, &[]).await;
        let (names, stat) = children(&handle(&mut z.ctx(), "/brokers/topics", false).await, true);
        assert_eq!(
            (names, stat.map(|s| s.num_children)),
            (vec!["t".to_owned()], Some(1))
        );
        assert_err(
            &handle(&mut z.ctx(), "/nope", false).await,
            ErrorCode::NoNode,
        );
    }
}
