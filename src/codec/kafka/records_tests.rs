use super::*;
use crate::codec::kafka::batch::{validate_record_set, LOG_OVERHEAD};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

const CAP: usize = 1 << 20;

fn record(offset: i64, key: Option<&[u8]>, value: &[u8], ts: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // Consecutive sequences keep the encoder to one batch.
        sequence: offset as i32,
        timestamp: ts,
        key: key.map(Bytes::copy_from_slice),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

/// A batch encoded by the kafka-protocol crate (an independent encoder).
fn encoded(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    out.to_vec()
}

/// A v2 batch around `records_payload` (already encoded, maybe compressed), CRC fixed.
fn raw_batch(records_payload: &[u8], count: i32, last_delta: i32, compression: i16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&compression.to_be_bytes());
    b.extend_from_slice(&last_delta.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(records_payload);
    fix(&mut b);
    b
}

fn fix(b: &mut [u8]) {
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// One encoded record: attributes 0, the given deltas, key, value and raw headers.
fn raw_record(
    offset_delta: i32,
    key: Option<&[u8]>,
    value: &[u8],
    headers: &[u8],
    hc: i32,
) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varint(&mut body, 0); // timestamp delta
    put_varint(&mut body, offset_delta);
    match key {
        None => put_varint(&mut body, -1),
        Some(k) => {
            put_varint(&mut body, k.len() as i32);
            body.extend_from_slice(k);
        }
    }
    put_varint(&mut body, value.len() as i32);
    body.extend_from_slice(value);
    put_varint(&mut body, hc);
    body.extend_from_slice(headers);
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

fn count(batch: &[u8]) -> Result<usize, RecordError> {
    let mut n = 0;
    walk_records(batch, CAP, |_, _| {
        n += 1;
        ControlFlow::Continue(())
    })?;
    Ok(n)
}

fn policy() -> ProducePolicy {
    ProducePolicy {
        compacted: false,
        now_ms: 10_000,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        log_append_time: false,
        decompressed_bytes_max: CAP,
    }
}

#[test]
fn every_codec_round_trips_through_the_walker() {
    let recs: Vec<Record> = (0..50)
        .map(|i| record(i, Some(format!("k{i}").as_bytes()), &[b'v'; 300], 1_000 + i))
        .collect();
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = encoded(&recs, c);
        validate_record_set(&b).expect("valid header");
        let mut keys = Vec::new();
        walk_records(&b, CAP, |i, r| {
            assert_eq!(r.offset_delta as usize, i);
            assert_eq!(r.value.map(<[u8]>::len), Some(300));
            keys.push(r.key.map(<[u8]>::to_vec));
            ControlFlow::Continue(())
        })
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(keys.len(), 50, "{c:?}");
        assert_eq!(keys[7].as_deref(), Some(&b"k7"[..]));
        let v = validate_produced(&b, &policy()).expect("valid");
        assert_eq!(v.max_timestamp, 1_049, "{c:?}");
    }
}

#[test]
fn huge_header_count_is_refused_without_allocating() {
    // The 69-byte poison of issue 14: one record claiming 2^31-1 headers.
    let rec = raw_record(0, Some(b"k"), b"v", &[], i32::MAX);
    let b = raw_batch(&rec, 1, 0, 0);
    assert!(matches!(count(&b), Err(RecordError::Corrupt(_))));
    // The vendored decoder no longer reserves from the count either.
    let mut buf = Bytes::from(b.clone());
    assert!(kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).is_err());
}

#[test]
fn declared_counts_must_match_the_records() {
    let rec = raw_record(0, Some(b"k"), b"v", &[], 0);
    // records_count 2^31-1 with one real record.
    let b = raw_batch(&rec, i32::MAX, i32::MAX - 1, 0);
    assert!(matches!(count(&b), Err(RecordError::Corrupt(_))));
    // Two declared, one present.
    let b = raw_batch(&rec, 2, 1, 0);
    assert!(count(&b).is_err());
    // One declared, two present.
    let mut two = rec.clone();
    two.extend(raw_record(1, Some(b"k"), b"v", &[], 0));
    assert!(count(&raw_batch(&two, 1, 0, 0)).is_err());
    assert_eq!(count(&raw_batch(&two, 2, 1, 0)), Ok(2));
}

#[test]
fn a_lying_record_length_is_refused() {
    let mut rec = raw_record(0, Some(b"k"), b"value", &[], 0);
    rec[0] = 100; // zigzag 50: more than the record holds
    assert!(count(&raw_batch(&rec, 1, 0, 0)).is_err());
    let mut rec = raw_record(0, Some(b"k"), b"value", &[], 0);
    rec[0] -= 2; // one byte shorter than the body
    assert!(count(&raw_batch(&rec, 1, 0, 0)).is_err());
    // A key length past the record's end.
    let rec = raw_record(0, Some(&[b'k'; 3]), b"v", &[], 0);
    let mut r2 = rec.clone();
    r2[4] = 40; // key length 20
    assert!(count(&raw_batch(&r2, 1, 0, 0)).is_err());
    // Negative lengths other than -1.
    let mut r3 = rec;
    r3[4] = 3; // zigzag -2
    assert!(count(&raw_batch(&r3, 1, 0, 0)).is_err());
}

#[test]
fn headers_are_checked_and_iterated() {
    let mut hdrs = Vec::new();
    put_varint(&mut hdrs, 2);
    hdrs.extend_from_slice(b"h1");
    put_varint(&mut hdrs, -1);
    put_varint(&mut hdrs, 1);
    hdrs.extend_from_slice(b"x");
    put_varint(&mut hdrs, 2);
    hdrs.extend_from_slice(b"ab");
    let rec = raw_record(0, None, b"v", &hdrs, 2);
    let b = raw_batch(&rec, 1, 0, 0);
    walk_records(&b, CAP, |_, r| {
        let h: Vec<_> = r.headers().collect();
        assert_eq!(h, vec![(&b"h1"[..], None), (&b"x"[..], Some(&b"ab"[..]))]);
        ControlFlow::Continue(())
    })
    .expect("valid");
    // A null header key is corrupt.
    let mut bad = Vec::new();
    put_varint(&mut bad, -1);
    put_varint(&mut bad, -1);
    assert!(count(&raw_batch(&raw_record(0, None, b"v", &bad, 1), 1, 0, 0)).is_err());
}

#[test]
fn random_compressed_payload_is_refused() {
    for codec in 1..=4i16 {
        let payload: Vec<u8> = (0..500u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let b = raw_batch(&payload, 1, 0, codec);
        assert!(count(&b).is_err(), "codec {codec}");
    }
    // Unknown codec.
    let b = raw_batch(&raw_record(0, None, b"v", &[], 0), 1, 0, 5);
    assert!(count(&b).is_err());
}

#[test]
fn decompression_bombs_stop_at_the_budget() {
    // 8 MiB of one record's zeros compresses to a few KB in every codec; a 1 MiB budget stops
    // each of them after about 1 MiB of output.
    let big = vec![0u8; 8 << 20];
    let recs = [record(0, Some(b"k"), &big, 1_000)];
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = encoded(&recs, c);
        assert!(b.len() < 1 << 20, "{c:?} compresses: {}", b.len());
        assert_eq!(
            count(&b),
            Err(RecordError::TooLarge { limit: CAP }),
            "{c:?}"
        );
        assert_eq!(
            walk_records(&b, 16 << 20, |_, _| ControlFlow::Continue(())),
            Ok(())
        );
    }
}

#[test]
fn many_tiny_records_cannot_exceed_the_budget_either() {
    let recs: Vec<Record> = (0..20_000).map(|i| record(i, None, b"", 0)).collect();
    let b = encoded(&recs, Compression::Zstd);
    assert!(walk_records(&b, 64 << 10, |_, _| ControlFlow::Continue(())).is_err());
    assert_eq!(count(&b), Ok(20_000));
}

#[test]
fn produce_policy_reports_every_bad_record() {
    let recs: Vec<Record> = (0..10)
        .map(|i| record(i, (i % 3 != 0).then_some(&b"k"[..]), b"v", 1_000 + i))
        .collect();
    let b = encoded(&recs, Compression::Lz4);
    let p = ProducePolicy {
        compacted: true,
        timestamp_before_max_ms: 9_000 - 5,
        ..policy()
    };
    let v = validate_produced(&b, &p).expect("structurally valid");
    let keyless: Vec<i32> = v.keyless.iter().map(|r| r.index).collect();
    assert_eq!(keyless, vec![0, 3, 6, 9]);
    // now 10 000, before.max 8 995: timestamps below 1 005 are too old.
    let old: Vec<i32> = v.bad_timestamps.iter().map(|r| r.index).collect();
    assert_eq!(old, vec![0, 1, 2, 3, 4]);
}

#[test]
fn offset_deltas_must_be_consecutive() {
    let mut two = raw_record(0, None, b"v", &[], 0);
    two.extend(raw_record(5, None, b"v", &[], 0));
    let b = raw_batch(&two, 2, 1, 0);
    assert_eq!(
        count(&b),
        Ok(2),
        "the walker accepts gaps (compacted batches have them)"
    );
    assert!(validate_produced(&b, &policy()).is_err());
}

proptest! {
    #[test]
    fn arbitrary_payloads_never_panic(
        payload in prop::collection::vec(any::<u8>(), 0..400),
        count in any::<i32>(),
        codec in 0i16..6,
    ) {
        let b = raw_batch(&payload, count, count.wrapping_sub(1), codec);
        let _ = walk_records(&b, 1 << 16, |_, _| ControlFlow::Continue(()));
        let _ = validate_produced(&b, &policy());
    }

    #[test]
    fn mutated_compressed_batches_never_panic(pos in 61usize..400, byte in any::<u8>(), codec in 1usize..5) {
        let recs: Vec<Record> = (0..20).map(|i| record(i, Some(b"key"), &[b'x'; 40], i)).collect();
        let c = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][codec];
        let mut b = encoded(&recs, c);
        let p = pos % b.len();
        b[p] = byte;
        fix(&mut b);
        let _ = walk_records(&b, 1 << 16, |_, _| ControlFlow::Continue(()));
    }
}

/// Throughput of produce validation next to the CRC-32C check every batch already pays, on
/// batches shaped like the benchmarks' (100 B and 1 KiB values, 16 KiB–1 MiB batches; none, lz4,
/// zstd). A measurement, not a test: `cargo test --release --lib -- --ignored
/// validate_throughput --nocapture` (docs/benchmarks.md keeps the figures).
#[test]
#[ignore = "a measurement: run by hand"]
fn validate_throughput() {
    use std::time::Instant;
    let policy = ProducePolicy {
        compacted: false,
        now_ms: 1_000,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        log_append_time: false,
        decompressed_bytes_max: 64 << 20,
    };
    for (value_len, count) in [
        (100usize, 160usize),
        (100, 10_000),
        (1024, 16),
        (1024, 1000),
    ] {
        let value = vec![b'x'; value_len];
        let recs: Vec<Record> = (0..count as i64)
            .map(|i| record(i, None, &value, 1_000))
            .collect();
        for (name, c) in [
            ("none", Compression::None),
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd),
        ] {
            let b = encoded(&recs, c);
            let raw = (value_len + 8) * count;
            let rounds = (256 << 20) / raw.max(1) + 1;
            let t = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(validate_produced(std::hint::black_box(&b), &policy))
                    .expect("valid");
            }
            let v = t.elapsed();
            let t = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(crc32c::crc32c(std::hint::black_box(&b[21..])));
            }
            let c = t.elapsed();
            let mb = |bytes: usize, d: std::time::Duration| {
                (bytes * rounds) as f64 / d.as_secs_f64() / 1e6
            };
            // Validation in MB/s of record payload (what the producer sent before compression);
            // the CRC in MB/s of the batch bytes it covers, and in ns per record.
            println!(
                "{value_len:>5} B x {count:>5} {name:>4} ({:>8} B batch): validate {:>6.0} MB/s \
                 {:>5.0} ns/record | crc32c {:>6.0} MB/s {:>5.1} ns/record",
                b.len(),
                mb(raw, v),
                v.as_nanos() as f64 / (count * rounds) as f64,
                mb(b.len(), c),
                c.as_nanos() as f64 / (count * rounds) as f64,
            );
        }
    }
}
