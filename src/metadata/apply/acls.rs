//! ACLs: CreateAcls, DeleteAcls, and the facade's per-pattern writes. Deterministic: the
//! result depends only on the image and the command.

use super::{ApplyOutcome, MetadataError};
use crate::metadata::command::AclExpect;
use crate::metadata::image::MetadataImage;
use crate::metadata::znode::{ZkOpError, ZkOpResult};
use crate::security::acl::{AclBinding, AclEntry, AclFilter, ResourcePattern};
use std::collections::BTreeSet;

pub(super) fn create(
    next: &mut MetadataImage,
    bindings: &[AclBinding],
    max_total: u64,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    for b in bindings {
        next.acls.add(b, index);
    }
    let would = next.acls.len() as u64;
    if would > max_total {
        // The caller discards `next` on an error: nothing of the command is kept.
        return Err(MetadataError::AclLimit {
            would,
            max: max_total,
        });
    }
    Ok(ApplyOutcome::Done)
}

pub(super) fn delete(next: &mut MetadataImage, filters: &[AclFilter], index: u64) -> ApplyOutcome {
    let per_filter: Vec<Vec<AclBinding>> = filters
        .iter()
        .map(|f| next.acls.bindings().filter(|b| f.matches(b)).collect())
        .collect();
    for b in per_filter.iter().flatten() {
        next.acls.remove(b, index);
    }
    ApplyOutcome::AclsDeleted(per_filter)
}

pub(super) fn set_resource(
    next: &mut MetadataImage,
    pattern: &ResourcePattern,
    entries: &BTreeSet<AclEntry>,
    expect: AclExpect,
    max_total: u64,
    index: u64,
) -> ApplyOutcome {
    let current = next.acls.get(pattern).map(|a| (a.version, a.entries.len()));
    let refused = match (expect, current) {
        (AclExpect::Absent, Some(_)) => Some(ZkOpError::NodeExists),
        (AclExpect::Present(_), None) => Some(ZkOpError::NoNode),
        (AclExpect::Present(Some(v)), Some((have, _))) if v != have => Some(ZkOpError::BadVersion),
        _ => None,
    };
    if let Some(e) = refused {
        return ApplyOutcome::Zk(vec![ZkOpResult::Error(e)]);
    }
    let now = next.acls.len() as u64;
    let would = now - current.map_or(0, |(_, n)| n) as u64 + entries.len() as u64;
    // Past the limit only writes that do not grow the store are taken (it may have been
    // lowered since the ACLs were stored).
    if would > max_total && would > now {
        return ApplyOutcome::Zk(vec![ZkOpResult::Error(ZkOpError::QuotaExceeded)]);
    }
    next.acls.replace(pattern, entries.clone(), index);
    ApplyOutcome::Zk(vec![ZkOpResult::Deleted])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{Operation, PatternFilter, PatternType, Permission, ResourceType};

    fn b(name: &str, who: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern: PatternType::Literal,
            principal: who.into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn create_is_all_or_nothing_at_the_limit() {
        let mut img = MetadataImage::default();
        assert!(create(&mut img, &[b("a", "User:x"), b("a", "User:x")], 10, 1).is_ok());
        assert_eq!(img.acls.len(), 1, "duplicates collapse");
        let mut next = img.clone();
        assert!(matches!(
            create(&mut next, &[b("b", "User:x"), b("c", "User:x")], 2, 2),
            Err(MetadataError::AclLimit { would: 3, max: 2 })
        ));
    }

    #[test]
    fn delete_reports_per_filter_and_removes_once() {
        let mut img = MetadataImage::default();
        create(&mut img, &[b("a", "User:x"), b("b", "User:y")], 10, 1).expect("created");
        let any = AclFilter {
            pattern: PatternFilter::Any,
            ..AclFilter::default()
        };
        let only_x = AclFilter {
            principal: Some("User:x".into()),
            ..any.clone()
        };
        let ApplyOutcome::AclsDeleted(r) = delete(&mut img, &[only_x, any], 2) else {
            panic!("outcome");
        };
        assert_eq!((r[0].len(), r[1].len()), (1, 2));
        assert!(img.acls.is_empty());
        img.check_invariants();
    }

    #[test]
    fn facade_writes_are_conditional() {
        let mut img = MetadataImage::default();
        let (p, e) = b("t", "User:x").split();
        let one: BTreeSet<_> = [e.clone()].into();
        let err = |o: ApplyOutcome| match o {
            ApplyOutcome::Zk(mut r) => match r.pop() {
                Some(ZkOpResult::Error(e)) => Some(e),
                _ => None,
            },
            _ => panic!("outcome"),
        };
        assert_eq!(
            err(set_resource(
                &mut img,
                &p,
                &one,
                AclExpect::Present(None),
                10,
                1
            )),
            Some(ZkOpError::NoNode)
        );
        assert_eq!(
            err(set_resource(&mut img, &p, &one, AclExpect::Absent, 10, 2)),
            None
        );
        assert_eq!(
            err(set_resource(&mut img, &p, &one, AclExpect::Absent, 10, 3)),
            Some(ZkOpError::NodeExists)
        );
        let mut two = one.clone();
        two.insert(AclEntry {
            principal: "User:y".into(),
            ..e
        });
        assert_eq!(
            err(set_resource(
                &mut img,
                &p,
                &two,
                AclExpect::Present(Some(1)),
                10,
                4
            )),
            Some(ZkOpError::BadVersion)
        );
        assert_eq!(
            err(set_resource(
                &mut img,
                &p,
                &two,
                AclExpect::Present(Some(0)),
                10,
                5
            )),
            None
        );
        assert_eq!(img.acls.get(&p).map(|a| a.version), Some(1));
        assert_eq!(
            err(set_resource(
                &mut img,
                &p,
                &two,
                AclExpect::Present(Some(1)),
                1,
                6
            )),
            None,
            "unchanged count"
        );
        assert_eq!(
            err(set_resource(
                &mut img,
                &p,
                &BTreeSet::new(),
                AclExpect::Present(Some(1)),
                10,
                7
            )),
            None
        );
        assert!(img.acls.is_empty());
        img.check_invariants();
    }
}
