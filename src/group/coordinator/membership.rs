//! Group membership: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.

use super::*;

impl GroupCoordinator {
    /// JoinGroup. The answer may be held until the rebalance completes.
    ///
    /// # Errors
    /// See [`GroupError`].
    pub async fn join(&self, group_id: &str, p: JoinParams) -> Result<JoinResult, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let wait = Duration::from_millis(
            u64::try_from(p.rebalance_timeout_ms.max(p.session_timeout_ms)).unwrap_or(0),
        ) + Duration::from_secs(5);
        let prefix = p
            .group_instance_id
            .clone()
            .unwrap_or_else(|| p.client_id.clone());
        let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        let held = {
            let mut st = self.lock();
            st.owner(pidx)?;
            if !st.groups.contains_key(group_id) {
                if !p.member_id.is_empty() {
                    return Err(GroupError::UnknownMemberId);
                }
                if st.groups.len() >= self.config.groups.groups_max {
                    return Err(GroupError::InvalidRequest(
                        "too many groups on this coordinator".into(),
                    ));
                }
                st.groups.insert(
                    group_id.to_owned(),
                    Group::new(group_id.to_owned(), now_ms()),
                );
            }
            let key_member = if p.member_id.is_empty() {
                new_id.clone()
            } else {
                p.member_id.clone()
            };
            let mut fx = Effects::default();
            let Some(group) = st.groups.get_mut(group_id) else {
                return Err(GroupError::CoordinatorNotAvailable);
            };
            let reply = group.join(p, new_id, now_ms(), &self.limits, &mut fx);
            let persist = fx.persist.then(|| group_record(group));
            match reply {
                Reply::Now(r) => {
                    let unused = group.is_unused();
                    st.deliver(group_id, fx);
                    if unused {
                        // A rejected first join leaves nothing behind.
                        st.groups.remove(group_id);
                    }
                    Err((r, persist))
                }
                Reply::Held => {
                    let (tx, rx) = oneshot::channel();
                    if let Some(old) = st.joins.insert((group_id.to_owned(), key_member), tx) {
                        let _ = old.send(Err(GroupError::RebalanceInProgress));
                    }
                    st.deliver(group_id, fx);
                    Ok((rx, persist))
                }
            }
        };
        let (rx, persist) = match held {
            Ok(x) => x,
            Err((r, persist)) => {
                // The answer is final once its metadata (a replaced static member) is stored.
                if let Some(rec) = persist {
                    self.append(pidx, vec![rec]).await?;
                }
                return r;
            }
        };
        if let Some(rec) = persist {
            self.persist_quietly(pidx, rec).await;
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(GroupError::NotCoordinator),
            Err(_) => Err(GroupError::RebalanceInProgress),
        }
    }

    pub(super) async fn persist_quietly(&self, pidx: i32, rec: Entry) {
        if let Err(e) = self.append(pidx, vec![rec]).await {
            warn!(partition = pidx, error = %e, "cannot store group metadata");
        }
    }

    /// SyncGroup. Members wait for the leader's assignment; it is stored before anyone is
    /// answered.
    ///
    /// # Errors
    /// See [`GroupError`].
    pub async fn sync(&self, group_id: &str, p: SyncParams) -> Result<SyncResult, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let member_id = p.member_id.clone();
        let (rx, persist, mut fx) = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let mut fx = Effects::default();
            let Some(group) = st.groups.get_mut(group_id) else {
                return Err(GroupError::UnknownMemberId);
            };
            let reply = group.sync(p, now_ms(), &mut fx);
            let persist = fx.persist.then(|| group_record(group));
            match reply {
                Reply::Now(r) => {
                    st.deliver(group_id, fx);
                    return r;
                }
                Reply::Held => {
                    let (tx, rx) = oneshot::channel();
                    if let Some(old) = st.syncs.insert((group_id.to_owned(), member_id), tx) {
                        let _ = old.send(Err(GroupError::RebalanceInProgress));
                    }
                    (rx, persist, fx)
                }
            }
        };
        if let Some(rec) = persist {
            if let Err(e) = self.append(pidx, vec![rec]).await {
                warn!(group = group_id, error = %e, "cannot store the group assignment");
                for s in &mut fx.syncs {
                    s.1 = Err(e.clone());
                }
            }
        }
        self.lock().deliver(group_id, fx);
        match tokio::time::timeout(self.config.groups.max_session_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(GroupError::NotCoordinator),
            Err(_) => Err(GroupError::RebalanceInProgress),
        }
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// See [`GroupError`].
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let mut st = self.lock();
        st.owner(pidx)?;
        let group = st
            .groups
            .get_mut(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        group.heartbeat(member_id, instance, generation_id, now_ms())
    }

    /// LeaveGroup for several members; one result per member.
    ///
    /// # Errors
    /// Group-level failures (not coordinator, unknown group).
    pub async fn leave(
        &self,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let (out, persist) = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let group = st
                .groups
                .get_mut(group_id)
                .ok_or(GroupError::UnknownMemberId)?;
            let mut fx = Effects::default();
            let now = now_ms();
            let out: Vec<_> = members
                .iter()
                .map(|(m, i)| group.leave(m, i.as_deref(), now, &self.limits, &mut fx))
                .collect();
            let persist = fx.persist.then(|| group_record(group));
            st.deliver(group_id, fx);
            (out, persist)
        };
        if let Some(rec) = persist {
            self.persist_quietly(pidx, rec).await;
        }
        Ok(out)
    }
}
