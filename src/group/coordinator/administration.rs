//! Group administration and views: ListGroups, DescribeGroups, DeleteGroups.

use super::*;

impl GroupCoordinator {
    /// ListGroups: the groups of every partition this node coordinates.
    ///
    /// # Errors
    /// A partition is still loading.
    pub fn list_groups(&self) -> Result<Vec<GroupListing>, GroupError> {
        let st = self.lock();
        if st
            .partitions
            .values()
            .any(|l| matches!(l, Load::Loading { .. }))
        {
            return Err(GroupError::CoordinatorLoadInProgress);
        }
        let mut out: Vec<GroupListing> = st
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// DescribeGroups for one group.
    ///
    /// # Errors
    /// Not the coordinator, loading, or `GroupIdNotFound`.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        let pidx = self.partition_of(group_id);
        let st = self.lock();
        st.owner(pidx)?;
        let g = st.live_group(group_id)?;
        let stable = g.state == GroupState::Stable;
        let proto = g.protocol_name.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&proto)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        Ok(GroupDescription {
            group_id: g.id.clone(),
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { proto } else { String::new() },
            members,
        })
    }

    /// DeleteGroups for one group: only empty groups; their offsets and metadata get tombstones.
    ///
    /// # Errors
    /// Not the coordinator, `GroupIdNotFound`, `NonEmptyGroup`, storage failures.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        validate_group_id(group_id, true)?;
        let pidx = self.partition_of(group_id);
        let tombstones = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let g = st.live_group_mut(group_id)?;
            if !g.is_empty() {
                return Err(GroupError::NonEmptyGroup);
            }
            let mut fx = Effects::default();
            g.mark_dead(now_ms(), &mut fx);
            let mut t: Vec<Entry> = g
                .offsets
                .keys()
                .map(|(topic, p)| (offset_key(group_id, topic, *p), None))
                .collect();
            t.push(group_record(g));
            st.groups.remove(group_id);
            st.deliver(group_id, fx);
            t
        };
        self.append(pidx, tombstones).await.map(|_| ())
    }
}
