//! Group administration and views: ListGroups, DescribeGroups, DeleteGroups.

use super::*;

impl GroupCoordinator {
    /// ListGroups: the groups of every partition this node coordinates.
    ///
    /// # Errors
    /// A partition is still loading.
    pub fn list_groups(&self) -> Result<Vec<GroupListing>, GroupError> {
        let st = self.lock();
        st.none_loading()?;
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
        let (outcome, persist) = {
            let mut st = self.lock();
            st.owner(pidx)?;
            // Deadlines that passed apply first, as Kafka's timers would already have fired:
            // a member whose session ended a moment before this request is gone even if the
            // periodic tick has not run yet (static members never send LeaveGroup, so their
            // groups empty only this way).
            let now = now_ms();
            let mut fx = Effects::default();
            let mut persist = None;
            if let Some(g) = st.groups.get_mut(group_id) {
                g.tick(now, &self.limits, &mut fx);
                persist = fx.persist.then(|| group_record(g));
            }
            st.deliver(group_id, fx);
            let outcome = match st.live_group_mut(group_id) {
                Err(e) => Err(e),
                Ok(g) if !g.is_empty() => Err(GroupError::NonEmptyGroup),
                Ok(g) => {
                    let mut fx = Effects::default();
                    g.mark_dead(now, &mut fx);
                    let mut t: Vec<Entry> = g
                        .offsets
                        .keys()
                        .map(|(topic, p)| (offset_key(group_id, topic, *p), None))
                        .collect();
                    t.push(group_record(g));
                    st.groups.remove(group_id);
                    st.deliver(group_id, fx);
                    Ok(t)
                }
            };
            (outcome, persist)
        };
        match outcome {
            Ok(tombstones) => self.append(pidx, tombstones).await.map(|_| ()),
            Err(e) => {
                if let Some(rec) = persist {
                    self.persist_quietly(pidx, rec).await;
                }
                Err(e)
            }
        }
    }
}
