//! The records of `__consumer_offsets`, in Kafka's own schemas so the log reads like Kafka's
//! (`OffsetCommitKey`/`OffsetCommitValue`, `GroupMetadataKey`/`GroupMetadataValue` from
//! `clients/src/main/resources/common/message/`). Keys: version 0/1 = offset commit
//! (group, topic, partition), version 2 = group metadata (group). Values are written at
//! OffsetCommitValue v3 and GroupMetadataValue v3 (the last non-flexible versions), except
//! that a group without static members is written at GroupMetadataValue v2, exactly as Kafka
//! 2.2.1 wrote it (v3 only adds `group_instance_id`), for tools of that era that read the log.
//! v0–v3 are read. A null value is a tombstone. Sans-io.

pub use crate::codec::kafka::schema::RecordError;
use crate::codec::kafka::schema::{put_bytes, put_nullable_str, put_str, Reader};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::GroupMetadata { group } => group,
        }
    }
}

/// OffsetCommitValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// GroupMetadataValue's member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// GroupMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberRecord>,
}

// ---- keys and values -------------------------------------------------------------------------

pub fn encode_key(k: &RecordKey) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    match k {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            b.put_i16(1);
            put_str(&mut b, group);
            put_str(&mut b, topic);
            b.put_i32(*partition);
        }
        RecordKey::GroupMetadata { group } => {
            b.put_i16(2);
            put_str(&mut b, group);
        }
    }
    b.freeze()
}

/// # Errors
/// Truncated or unknown key.
pub fn decode_key(raw: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader(raw);
    match r.i16("key version")? {
        0 | 1 => Ok(RecordKey::Offset {
            group: r.str("group")?,
            topic: r.str("topic")?,
            partition: r.i32("partition")?,
        }),
        2 => Ok(RecordKey::GroupMetadata {
            group: r.str("group")?,
        }),
        version => Err(RecordError::Version {
            what: "key",
            version,
        }),
    }
}

pub fn encode_offset_value(v: &OffsetValue) -> Bytes {
    let mut b = BytesMut::with_capacity(32 + v.metadata.len());
    b.put_i16(3);
    b.put_i64(v.offset);
    b.put_i32(v.leader_epoch);
    put_str(&mut b, &v.metadata);
    b.put_i64(v.commit_timestamp_ms);
    b.freeze()
}

/// # Errors
/// Truncated value or a version newer than 3.
pub fn decode_offset_value(raw: &[u8]) -> Result<OffsetValue, RecordError> {
    let mut r = Reader(raw);
    let version = r.i16("offset value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::Version {
            what: "offset value",
            version,
        });
    }
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader epoch")?
    } else {
        -1
    };
    let metadata = r.nullable_str("metadata")?.unwrap_or_default();
    let commit_timestamp_ms = r.i64("commit timestamp")?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

pub fn encode_group_value(v: &GroupMetadataValue) -> Bytes {
    let mut b = BytesMut::with_capacity(128);
    let version: i16 = if v.members.iter().any(|m| m.group_instance_id.is_some()) {
        3
    } else {
        2
    };
    b.put_i16(version);
    put_str(&mut b, &v.protocol_type);
    b.put_i32(v.generation);
    put_nullable_str(&mut b, v.protocol.as_deref());
    put_nullable_str(&mut b, v.leader.as_deref());
    b.put_i64(v.current_state_timestamp_ms);
    b.put_i32(i32::try_from(v.members.len()).unwrap_or(i32::MAX));
    for m in &v.members {
        put_str(&mut b, &m.member_id);
        if version >= 3 {
            put_nullable_str(&mut b, m.group_instance_id.as_deref());
        }
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// # Errors
/// Truncated value or a version newer than 3.
pub fn decode_group_value(raw: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader(raw);
    let version = r.i16("group value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::Version {
            what: "group value",
            version,
        });
    }
    let protocol_type = r.str("protocol type")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_str("protocol")?;
    let leader = r.nullable_str("leader")?;
    let current_state_timestamp_ms = if version >= 2 {
        r.i64("state timestamp")?
    } else {
        -1
    };
    let count = r.i32("members")?;
    // Each member takes at least 24 bytes: bound the count by what is left.
    let count = usize::try_from(count).unwrap_or(0);
    if count > r.0.len() / 24 + 1 {
        return Err(RecordError::Invalid("member count"));
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member_id = r.str("member id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_str("instance id")?
        } else {
            None
        };
        let client_id = r.str("client id")?;
        let client_host = r.str("client host")?;
        let session_or_rebalance = r.i32("timeout")?;
        let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
            (session_or_rebalance, r.i32("session timeout")?)
        } else {
            (session_or_rebalance, session_or_rebalance)
        };
        let subscription = r.bytes("subscription")?;
        let assignment = r.bytes("assignment")?;
        members.push(MemberRecord {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// The topics of a consumer-protocol subscription (ConsumerProtocolSubscription v0–v3).
pub fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(metadata);
    let version = r.i16("subscription version").ok()?;
    if version < 0 {
        return None;
    }
    let n = usize::try_from(r.i32("topics").ok()?).ok()?;
    if n > metadata.len() / 2 {
        return None;
    }
    (0..n).map(|_| r.str("topic").ok()).collect()
}

/// One uncompressed v2 batch of keyed records (what the coordinators write).
///
/// # Errors
/// The encoder's.
pub fn build_batch(entries: &[(Bytes, Option<Bytes>)], now_ms: i64) -> Result<Bytes, RecordError> {
    build_batch_as(entries, now_ms, None)
}

/// [`build_batch`], as a transactional batch of `producer` (id, epoch) when given: Kafka's
/// TxnOffsetCommit records (base sequence 0; the coordinator's append checks only the epoch).
///
/// # Errors
/// The encoder's.
pub fn build_batch_as(
    entries: &[(Bytes, Option<Bytes>)],
    now_ms: i64,
    producer: Option<(i64, i16)>,
) -> Result<Bytes, RecordError> {
    let (producer_id, producer_epoch, first_seq) = match producer {
        Some((id, epoch)) => (id, epoch, 0),
        // The first sequence is -1 (no producer), as Kafka writes non-idempotent batches.
        None => (-1, -1, -1),
    };
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant.
            sequence: i as i32 + first_seq,
            timestamp: now_ms,
            key: Some(k.clone()),
            value: v.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|_| RecordError::Invalid("record batch"))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch;

    #[test]
    fn keys_and_values_round_trip() {
        let k = RecordKey::Offset {
            group: "my-group".into(),
            topic: "numtest".into(),
            partition: 3,
        };
        let raw = encode_key(&k);
        // Kafka's layout: version 1, then two strings and the partition.
        assert_eq!(&raw[..4], &[0, 1, 0, 8]);
        assert_eq!(decode_key(&raw), Ok(k));
        let g = RecordKey::GroupMetadata { group: "g".into() };
        assert_eq!(decode_key(&encode_key(&g)), Ok(g));
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        let raw = encode_offset_value(&v);
        assert_eq!(raw.len(), 2 + 8 + 4 + 2 + 4 + 8);
        assert_eq!(decode_offset_value(&raw), Ok(v));
        let gv = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 99,
            members: vec![MemberRecord {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let raw = encode_group_value(&gv);
        assert_eq!(&raw[..2], &[0, 3], "static members need v3");
        assert_eq!(decode_group_value(&raw), Ok(gv.clone()));
        // Without static members: v2, as Kafka 2.2.1 wrote it.
        let mut dynamic = gv;
        dynamic.members[0].group_instance_id = None;
        let raw = encode_group_value(&dynamic);
        assert_eq!(&raw[..2], &[0, 2]);
        assert_eq!(decode_group_value(&raw), Ok(dynamic));
    }

    #[test]
    fn old_versions_and_garbage() {
        // OffsetCommitValue v1: offset, metadata, commit ts, expire ts.
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(10);
        put_str(&mut b, "");
        b.put_i64(5);
        b.put_i64(-1);
        let v = decode_offset_value(&b).expect("v1");
        assert_eq!(
            (v.offset, v.leader_epoch, v.commit_timestamp_ms),
            (10, -1, 5)
        );
        assert!(decode_offset_value(&[0, 9, 1]).is_err());
        assert!(decode_key(&[0, 7]).is_err());
        assert!(decode_key(&[0, 1, 0x7f, 0xff]).is_err());
        let mut huge = BytesMut::new();
        huge.put_i16(3);
        put_str(&mut huge, "consumer");
        huge.put_i32(1);
        huge.put_i16(-1);
        huge.put_i16(-1);
        huge.put_i64(0);
        huge.put_i32(i32::MAX);
        assert!(decode_group_value(&huge).is_err());
    }

    #[test]
    fn subscription_topics_parse() {
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i32(2);
        put_str(&mut b, "a");
        put_str(&mut b, "bb");
        b.put_i32(-1);
        assert_eq!(
            subscription_topics(&b),
            Some(vec!["a".to_owned(), "bb".to_owned()])
        );
        assert_eq!(subscription_topics(&[0, 1, 0x7f]), None);
    }

    #[test]
    fn batches_validate_and_decode() {
        let k = encode_key(&RecordKey::GroupMetadata { group: "g".into() });
        let raw = build_batch(
            &[
                (k.clone(), None),
                (k.clone(), Some(Bytes::from_static(b"v"))),
            ],
            1000,
        )
        .expect("batch");
        let hs = batch::validate_record_set(&raw).expect("valid v2 batch");
        assert_eq!(
            (
                hs.len(),
                hs[0].records_count,
                hs[0].producer_id,
                hs[0].base_sequence
            ),
            (1, 2, -1, -1)
        );
        let mut buf = raw.clone();
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).expect("decode");
        assert_eq!(set.records[0].value, None);
        assert_eq!(set.records[1].key.as_ref(), Some(&k));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_values_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = decode_key(&data);
            let _ = decode_offset_value(&data);
            let _ = decode_group_value(&data);
            let _ = subscription_topics(&data);
        }
    }
}
