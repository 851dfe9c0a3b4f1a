//! How many names and partitions a request carries, so that the route table checks
//! `topics_per_request_max` and `partitions_per_request_max` once, for every API, before any
//! handler runs. Every routed request type must implement [`RequestShape`] (the route table
//! calls it, so a missing impl is a compile error); types without collections use the default.
//! The impls of the first APIs are here; a newer handler may implement it in its own file.

use kafka_protocol::messages::*;

/// The size of a request in the units the limits count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Top-level entries: topics, groups, config resources or coordinator keys.
    pub(crate) entries: usize,
    /// Partitions (or per-topic entries) summed over the entries.
    pub(crate) partitions: usize,
}

pub(crate) trait RequestShape {
    fn shape(&self) -> Shape {
        Shape::default()
    }
}

fn nested<T>(outer: &[T], inner: impl Fn(&T) -> usize) -> Shape {
    Shape {
        entries: outer.len(),
        partitions: outer.iter().map(inner).fold(0usize, usize::saturating_add),
    }
}

fn flat(n: usize) -> Shape {
    Shape {
        entries: n,
        partitions: 0,
    }
}

impl RequestShape for ApiVersionsRequest {}
impl RequestShape for DescribeClusterRequest {}
impl RequestShape for InitProducerIdRequest {}
impl RequestShape for HeartbeatRequest {}
impl RequestShape for SyncGroupRequest {}
impl RequestShape for ListGroupsRequest {}

impl RequestShape for ProduceRequest {
    fn shape(&self) -> Shape {
        nested(&self.topic_data, |t| t.partition_data.len())
    }
}
impl RequestShape for FetchRequest {
    fn shape(&self) -> Shape {
        let mut s = nested(&self.topics, |t| t.partitions.len());
        let forgotten = nested(&self.forgotten_topics_data, |t| t.partitions.len());
        s.entries = s.entries.saturating_add(forgotten.entries);
        s.partitions = s.partitions.saturating_add(forgotten.partitions);
        s
    }
}
impl RequestShape for ListOffsetsRequest {
    fn shape(&self) -> Shape {
        nested(&self.topics, |t| t.partitions.len())
    }
}
impl RequestShape for MetadataRequest {
    fn shape(&self) -> Shape {
        flat(self.topics.as_ref().map_or(0, Vec::len))
    }
}
impl RequestShape for CreateTopicsRequest {
    fn shape(&self) -> Shape {
        nested(&self.topics, |t| t.assignments.len())
    }
}
impl RequestShape for DeleteTopicsRequest {
    fn shape(&self) -> Shape {
        flat(self.topics.len().saturating_add(self.topic_names.len()))
    }
}
impl RequestShape for OffsetForLeaderEpochRequest {
    fn shape(&self) -> Shape {
        nested(&self.topics, |t| t.partitions.len())
    }
}
impl RequestShape for DescribeConfigsRequest {
    fn shape(&self) -> Shape {
        flat(self.resources.len())
    }
}
impl RequestShape for AlterConfigsRequest {
    fn shape(&self) -> Shape {
        flat(self.resources.len())
    }
}
impl RequestShape for IncrementalAlterConfigsRequest {
    fn shape(&self) -> Shape {
        flat(self.resources.len())
    }
}
impl RequestShape for CreatePartitionsRequest {
    fn shape(&self) -> Shape {
        nested(&self.topics, |t| t.assignments.as_ref().map_or(0, Vec::len))
    }
}
impl RequestShape for FindCoordinatorRequest {
    fn shape(&self) -> Shape {
        flat(self.coordinator_keys.len())
    }
}
impl RequestShape for JoinGroupRequest {
    fn shape(&self) -> Shape {
        flat(self.protocols.len())
    }
}
impl RequestShape for LeaveGroupRequest {
    fn shape(&self) -> Shape {
        flat(self.members.len())
    }
}
impl RequestShape for OffsetCommitRequest {
    fn shape(&self) -> Shape {
        nested(&self.topics, |t| t.partitions.len())
    }
}
impl RequestShape for OffsetFetchRequest {
    fn shape(&self) -> Shape {
        let mut s = nested(self.topics.as_deref().unwrap_or_default(), |t| {
            t.partition_indexes.len()
        });
        for g in &self.groups {
            let t = nested(g.topics.as_deref().unwrap_or_default(), |t| {
                t.partition_indexes.len()
            });
            s.entries = s.entries.saturating_add(1).saturating_add(t.entries);
            s.partitions = s.partitions.saturating_add(t.partitions);
        }
        s
    }
}
impl RequestShape for DescribeGroupsRequest {
    fn shape(&self) -> Shape {
        flat(self.groups.len())
    }
}
impl RequestShape for DeleteGroupsRequest {
    fn shape(&self) -> Shape {
        flat(self.groups_names.len())
    }
}
impl RequestShape for OffsetDeleteRequest {
    fn shape(&self) -> Shape {
        nested(&self.topics, |t| t.partitions.len())
    }
}
impl RequestShape for DeleteRecordsRequest {
    fn shape(&self) -> Shape {
        nested(&self.topics, |t| t.partitions.len())
    }
}
