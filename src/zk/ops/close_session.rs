//! closeSession (-11): ends the session (its ephemerals go) and answers with the header only;
//! the session then closes the connection.

use super::{OpCtx, Reply};

pub async fn handle(ctx: &mut OpCtx<'_>) -> Reply {
    if let Err(e) = ctx.broker.zk_expire_sessions(vec![ctx.session_id]).await {
        return Reply::broker_err(&e);
    }
    Reply::empty()
}
