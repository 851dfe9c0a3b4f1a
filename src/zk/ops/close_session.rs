//! closeSession (-11): ends the session (its ephemerals go) and answers with the header only;
//! the session then closes the connection.

use super::{OpCtx, Reply};

pub async fn handle(ctx: &mut OpCtx<'_>) -> Reply {
    if let Err(e) = ctx.broker.zk_expire_sessions(vec![ctx.session_id]).await {
        return Reply::broker_err(&e);
    }
    Reply::empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ZkOp;
    use crate::zk::testing::ZkFixture;

    #[tokio::test]
    async fn ends_the_session_and_removes_its_ephemerals() {
        let mut z = ZkFixture::new().await;
        let other = crate::zk::testing::open_session(&z.f, 0x200).await;
        for (session, path, ephemeral) in [
            (z.session_id, "/mine", true),
            (z.session_id, "/kept", false),
            (other, "/theirs", true),
        ] {
            z.f.broker
                .zk_multi(
                    session,
                    vec![ZkOp::Create {
                        path: path.into(),
                        data: None,
                        ephemeral,
                        sequential: false,
                        acl: crate::metadata::open_acls(),
                    }],
                )
                .await
                .expect("create");
        }
        let r = handle(&mut z.ctx()).await;
        assert_eq!(r, Reply::empty());
        let image = z.f.broker.metadata_view();
        assert!(!image.zk.sessions.contains_key(&z.session_id));
        assert!(image.zk.sessions.contains_key(&other));
        let zn = &image.zk.znodes;
        assert_eq!(
            (
                zn.contains_key("/mine"),
                zn.contains_key("/kept"),
                zn.contains_key("/theirs")
            ),
            (false, true, true)
        );
    }
}
