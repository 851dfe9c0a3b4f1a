//! The pure cluster model: `MetadataCommand` (the Raft log's payload), the immutable
//! `MetadataImage`, and the deterministic `apply`. No I/O; imports only `types`.

mod apply;
mod bytes_b64;
mod command;
mod image;
pub mod quotas;
mod znode;

pub use apply::{apply, ApplyOutcome, MetadataError};
pub use command::{AclExpect, ConfigOp, MetadataCommand, MetadataRequest, COMMAND_FORMAT_VERSION};
pub use image::{
    broker_config_entity, BrokerConfigsImage, BrokerRegistration, Endpoint, MetadataImage,
    PartitionImage, PreferredElection, TopicImage, CLUSTER_DEFAULT_ENTITY,
};
pub use znode::{
    name_of, open_acls, parent_of, valid_path, ZkOp, ZkOpError, ZkOpResult, ZkSession, ZkState,
    Znode, ZnodeAcl, ZnodeStat, ZK_SKELETON,
};
