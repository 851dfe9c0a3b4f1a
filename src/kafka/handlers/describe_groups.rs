//! DescribeGroups (key 15), v0–v6. An unknown group is reported as Dead (v6: with
//! GROUP_ID_NOT_FOUND, as Kafka 4 does).

use super::sb;
use crate::broker::GroupError;
use crate::broker::{BrokerError, GroupState};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};

/// The versions of DescribeGroups this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 6);

/// Answers one DescribeGroups request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeGroupsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let mut r = DescribeGroupsResponse::default();
    for id in req.groups {
        let mut dg = DescribedGroup::default();
        dg.group_id = GroupId(id.0.clone());
        let res = ctx.broker.describe_group(&id.0);
        match res {
            Ok(d) => {
                dg.group_state = sb(d.state.as_str());
                dg.protocol_type = sb(&d.protocol_type);
                dg.protocol_data = sb(&d.protocol_name);
                for m in d.members {
                    let mut dm = DescribedGroupMember::default();
                    dm.member_id = sb(&m.member_id);
                    if v >= 4 {
                        dm.group_instance_id = m.group_instance_id.as_deref().map(sb);
                    }
                    dm.client_id = sb(&m.client_id);
                    dm.client_host = sb(&m.client_host);
                    dm.member_metadata = m.metadata;
                    dm.member_assignment = m.assignment;
                    dg.members.push(dm);
                }
            }
            Err(BrokerError::Group(GroupError::GroupIdNotFound)) => {
                dg.group_state = sb(GroupState::Dead.as_str());
                if v >= 6 {
                    dg.error_code = code(&BrokerError::Group(GroupError::GroupIdNotFound));
                    dg.error_message = Some(sb(&format!("Group {} not found.", &*id.0)));
                }
            }
            Err(e) => {
                dg.error_code = code(&e);
                dg.group_state = sb(GroupState::Dead.as_str());
                if v >= 6 {
                    dg.error_message = Some(sb(&e.to_string()));
                }
            }
        }
        r.groups.push(dg);
    }
    r
}
