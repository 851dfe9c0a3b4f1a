//! sync (9): a read barrier, so the next read on this session is linearizable.

use super::{OpCtx, Reply};
use crate::codec::jute::Writer;

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str) -> Reply {
    if let Err(e) = ctx.broker.zk_sync().await {
        return Reply::broker_err(&e);
    }
    let mut w = Writer::new();
    w.ustring(path);
    Reply::ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::Reader;
    use crate::zk::testing::ZkFixture;

    #[tokio::test]
    async fn answers_the_path_after_the_read_barrier() {
        let mut z = ZkFixture::new().await;
        for path in ["/", "/anything/even/missing"] {
            let r = handle(&mut z.ctx(), path).await;
            assert_eq!(r.err, 0);
            let mut rd = Reader::new(&r.body);
            assert_eq!(rd.ustring().expect("path"), path);
            assert_eq!(rd.remaining(), 0);
        }
    }
}
