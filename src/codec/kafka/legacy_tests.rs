use super::*;
use crate::codec::kafka::batch::assign_offsets;

const BUDGET: usize = 1 << 20;

/// A message (log overhead included) as an old producer writes it.
fn msg(
    offset: i64,
    magic: i8,
    attrs: i8,
    ts: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    put_message(&mut out, offset, magic, attrs, ts, key, value).expect("message");
    out
}

/// A compressed wrapper holding `inner` (a message set), as old producers write it.
fn wrapper(magic: i8, codec: i16, last_offset: i64, ts: i64, inner: &[u8]) -> Vec<u8> {
    let compressed = compress(codec, inner).expect("compress");
    msg(last_offset, magic, codec as i8, ts, None, Some(&compressed))
}

/// (offset delta, timestamp, key, value) of every record of a v2 batch.
type Rec = (i32, i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn records_of(batch: &[u8]) -> Vec<Rec> {
    let h = BatchHeader::parse(batch).expect("header");
    let mut out = Vec::new();
    records::walk_records(batch, BUDGET, |_, r| {
        let ts = if h.base_timestamp == NO_TIMESTAMP && r.timestamp_delta == 0 {
            NO_TIMESTAMP
        } else {
            h.base_timestamp + r.timestamp_delta
        };
        out.push((
            r.offset_delta,
            ts,
            r.key.map(<[u8]>::to_vec),
            r.value.map(<[u8]>::to_vec),
        ));
        ControlFlow::Continue(())
    })
    .expect("walk");
    out
}

type Msg = (i64, i8, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// (offset, magic, timestamp, key, value) of every message, wrappers opened (magic-1 inner
/// offsets made absolute as clients do).
fn messages_of(set: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    walk_messages(set, |m| {
        if m.codec() == 0 {
            out.push((
                m.offset,
                m.magic,
                m.timestamp,
                m.key.map(<[u8]>::to_vec),
                m.value.map(<[u8]>::to_vec),
            ));
        } else {
            let inner = records::decompress_all(m.codec(), m.value.expect("value"), BUDGET)
                .expect("inflate");
            let mut ims = Vec::new();
            walk_messages(&inner, |im| {
                ims.push((
                    im.offset,
                    im.magic,
                    im.timestamp,
                    im.key.map(<[u8]>::to_vec),
                    im.value.map(<[u8]>::to_vec),
                ));
                Ok(())
            })
            .expect("inner");
            let last_rel = ims.last().map_or(0, |x| x.0);
            for mut im in ims {
                if m.magic == 1 {
                    im.0 += m.offset - last_rel;
                }
                out.push(im);
            }
        }
        Ok(())
    })
    .expect("messages");
    out
}

#[test]
fn plain_magic_0_and_1_sets_become_v2_batches() {
    let mut set = msg(0, 0, 0, 0, Some(b"k0"), Some(b"v0"));
    set.extend(msg(1, 0, 0, 0, None, Some(b"v1")));
    set.extend(msg(2, 0, 0, 0, Some(b"k2"), None));
    let up = up_convert(&set, BUDGET).expect("magic 0");
    assert_eq!((up.records, up.magic), (3, 0));
    let h = BatchHeader::parse(&up.batch).expect("header");
    assert_eq!(
        (
            h.magic,
            h.compression(),
            h.records_count,
            h.last_offset_delta
        ),
        (2, 0, 3, 2)
    );
    assert_eq!(
        (h.base_timestamp, h.max_timestamp, h.producer_id),
        (-1, -1, -1)
    );
    assert_eq!(
        records_of(&up.batch),
        vec![
            (0, -1, Some(b"k0".to_vec()), Some(b"v0".to_vec())),
            (1, -1, None, Some(b"v1".to_vec())),
            (2, -1, Some(b"k2".to_vec()), None),
        ]
    );
    crate::codec::kafka::batch::validate_record_set(&up.batch).expect("a valid v2 batch");

    let mut set = msg(0, 1, 0, 1_000, Some(b"a"), Some(b"1"));
    set.extend(msg(1, 1, 0, 900, Some(b"b"), Some(b"2")));
    let up = up_convert(&set, BUDGET).expect("magic 1");
    let h = BatchHeader::parse(&up.batch).expect("header");
    assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 1_000));
    let r = records_of(&up.batch);
    assert_eq!((r[0].1, r[1].1), (1_000, 900));
}

#[test]
fn compressed_wrappers_keep_their_codec_and_inner_records() {
    for magic in [0i8, 1] {
        for codec in [1i16, 2, 3] {
            let mut inner = Vec::new();
            for i in 0..5i64 {
                let v = format!("value-{i}");
                inner.extend(msg(
                    i,
                    magic,
                    0,
                    2_000 + i,
                    Some(b"key"),
                    Some(v.as_bytes()),
                ));
            }
            let set = wrapper(magic, codec, 4, 2_004, &inner);
            let up = up_convert(&set, BUDGET)
                .unwrap_or_else(|e| panic!("magic {magic} codec {codec}: {e}"));
            let h = BatchHeader::parse(&up.batch).expect("header");
            assert_eq!((h.compression(), h.records_count), (codec, 5));
            let r = records_of(&up.batch);
            assert_eq!(r.len(), 5);
            assert_eq!(r[3].3.as_deref(), Some(&b"value-3"[..]));
            let want_ts = if magic == 1 { 2_003 } else { -1 };
            assert_eq!(r[3].1, want_ts, "magic {magic} codec {codec}");
        }
    }
}

#[test]
fn log_append_time_wrappers_stamp_their_inner_records() {
    let mut inner = msg(0, 1, 0, 5, None, Some(b"x"));
    inner.extend(msg(1, 1, 0, 6, None, Some(b"y")));
    let compressed = compress(1, &inner).expect("gzip");
    let set = msg(1, 1, 1 | TIMESTAMP_TYPE_BIT, 777, None, Some(&compressed));
    let up = up_convert(&set, BUDGET).expect("up");
    let r = records_of(&up.batch);
    assert_eq!((r[0].1, r[1].1), (777, 777));
}

#[test]
fn bad_message_sets_are_refused() {
    let good = msg(0, 1, 0, 1, Some(b"k"), Some(b"v"));
    // Wrong CRC.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(up_convert(&bad, BUDGET), Err(RecordError::Corrupt(m)) if m.contains("crc")));
    // A size that runs past the set, and one shorter than the fields.
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&1_000i32.to_be_bytes());
    assert!(matches!(
        up_convert(&bad, BUDGET),
        Err(RecordError::Corrupt(_))
    ));
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        up_convert(&bad, BUDGET),
        Err(RecordError::Corrupt(_))
    ));
    // A value length that lies (CRC recomputed so only the length is wrong).
    let mut bad = good.clone();
    let vlen_at = bad.len() - 1 - 4;
    bad[vlen_at..vlen_at + 4].copy_from_slice(&9i32.to_be_bytes());
    let crc = crc32fast::hash(&bad[16..]);
    bad[12..16].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        up_convert(&bad, BUDGET),
        Err(RecordError::Corrupt(_))
    ));
    // Trailing bytes, an empty set, an unknown magic.
    let mut bad = good.clone();
    bad.extend_from_slice(&[0; 5]);
    assert!(up_convert(&bad, BUDGET).is_err());
    assert!(up_convert(&[], BUDGET).is_err());
    let mut bad = good.clone();
    bad[16] = 3;
    let crc = crc32fast::hash(&bad[16..]);
    bad[12..16].copy_from_slice(&crc.to_be_bytes());
    assert!(up_convert(&bad, BUDGET).is_err());
    // Nested compression.
    let inner_wrapper = wrapper(1, 1, 0, 1, &good);
    let set = wrapper(1, 1, 0, 1, &inner_wrapper);
    assert!(
        matches!(up_convert(&set, BUDGET), Err(RecordError::Corrupt(m)) if m.contains("compression"))
    );
    // Magic-1 inner offsets not consecutive from 0.
    let mut inner = msg(0, 1, 0, 1, None, Some(b"a"));
    inner.extend(msg(5, 1, 0, 1, None, Some(b"b")));
    assert!(
        matches!(up_convert(&wrapper(1, 2, 5, 1, &inner), BUDGET), Err(RecordError::Corrupt(m)) if m.contains("consecutive"))
    );
    // Inner magic differing from the wrapper's; magics mixed in one set.
    let inner = msg(0, 0, 0, 0, None, Some(b"a"));
    assert!(up_convert(&wrapper(1, 1, 0, 1, &inner), BUDGET).is_err());
    let mut mixed = msg(0, 0, 0, 0, None, Some(b"a"));
    mixed.extend(msg(1, 1, 0, 1, None, Some(b"b")));
    assert!(up_convert(&mixed, BUDGET).is_err());
    // zstd cannot be in an old message.
    let set = msg(0, 1, 4, 1, None, Some(&compress(4, &good).expect("zstd")));
    assert!(up_convert(&set, BUDGET).is_err());
    // A wrapper with a null value, and one with no inner messages.
    assert!(up_convert(&msg(0, 1, 1, 1, None, None), BUDGET).is_err());
    assert!(up_convert(&wrapper(1, 1, 0, 1, &[]), BUDGET).is_err());
}

#[test]
fn decompression_bombs_stop_at_the_budget() {
    // 8 MiB of one inner message's value compresses to a few KiB.
    let big = vec![0u8; 8 << 20];
    let inner = msg(0, 1, 0, 1, None, Some(&big));
    for codec in [1i16, 2, 3] {
        let set = wrapper(1, codec, 0, 1, &inner);
        assert!(set.len() < 1 << 20, "codec {codec}: {}", set.len());
        assert!(
            matches!(up_convert(&set, 1 << 20), Err(RecordError::TooLarge { .. })),
            "codec {codec}"
        );
    }
    // The budget spans all wrappers of a set.
    let small = msg(0, 1, 0, 1, None, Some(&[7u8; 600 << 10]));
    let mut set = wrapper(1, 1, 0, 1, &small);
    set.extend(wrapper(1, 1, 0, 1, &small));
    assert!(matches!(
        up_convert(&set, 1 << 20),
        Err(RecordError::TooLarge { .. })
    ));
}

/// A stored batch: up-converted from `set`, offsets assigned from `base`.
fn stored(set: &[u8], base: i64) -> Vec<u8> {
    let up = up_convert(set, BUDGET).expect("up");
    assign_offsets(&up.batch, base, 0).to_vec()
}

#[test]
fn stored_batches_down_convert_to_both_magics() {
    let mut set = msg(0, 1, 0, 10, Some(b"k0"), Some(b"v0"));
    set.extend(msg(1, 1, 0, 11, None, Some(b"v1")));
    let mut log = stored(&set, 100);
    let mut inner = Vec::new();
    for i in 0..3i64 {
        inner.extend(msg(
            i,
            1,
            0,
            20 + i,
            Some(b"c"),
            Some(format!("z{i}").as_bytes()),
        ));
    }
    log.extend(stored(&wrapper(1, 1, 2, 22, &inner), 102));
    for magic in [0i8, 1] {
        let d = down_convert(&log, magic, 100, usize::MAX, true, BUDGET).expect("down");
        assert_eq!(d.next_offset, Some(105));
        let ms = messages_of(&d.bytes);
        let offsets: Vec<i64> = ms.iter().map(|m| m.0).collect();
        assert_eq!(offsets, vec![100, 101, 102, 103, 104], "magic {magic}");
        assert!(ms.iter().all(|m| m.1 == magic));
        let ts: Vec<i64> = ms.iter().map(|m| m.2).collect();
        if magic == 1 {
            assert_eq!(ts, vec![10, 11, 20, 21, 22]);
        } else {
            assert!(ts.iter().all(|t| *t == NO_TIMESTAMP));
        }
        assert_eq!(ms[1].3, None);
        assert_eq!(ms[4].4.as_deref(), Some(&b"z2"[..]));
        // And back: what an old client reads converts to the same records again.
        let again = up_convert(&d.bytes, BUDGET).expect("converts back");
        let values: Vec<_> = records_of(&again.batch).into_iter().map(|r| r.3).collect();
        assert_eq!(values, ms.iter().map(|m| m.4.clone()).collect::<Vec<_>>());
    }
}

#[test]
fn down_conversion_respects_fetch_offset_and_max_bytes() {
    let mut set = Vec::new();
    for i in 0..4i64 {
        set.extend(msg(i, 1, 0, i, None, Some(&[i as u8; 50])));
    }
    let log = stored(&set, 0);
    // From the middle of an uncompressed batch.
    let d = down_convert(&log, 1, 2, usize::MAX, true, BUDGET).expect("down");
    assert_eq!(
        messages_of(&d.bytes)
            .iter()
            .map(|m| m.0)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    // One magic-1 message with a null key and 50 bytes of value takes 12 + 22 + 50 = 84 bytes.
    let d = down_convert(&log, 1, 0, 200, true, BUDGET).expect("down");
    assert_eq!((d.bytes.len(), d.next_offset), (168, Some(2)));
    // The first message always whole with min_one_message (Fetch v3+) ...
    let d = down_convert(&log, 1, 0, 10, true, BUDGET).expect("down");
    assert_eq!((d.bytes.len(), d.next_offset), (84, Some(1)));
    // ... and cut at max_bytes without it (Fetch v0-v2): a partial message.
    let d = down_convert(&log, 1, 0, 10, false, BUDGET).expect("down");
    assert_eq!((d.bytes.len(), d.next_offset), (10, None));
    // Batches wholly before the fetch offset are skipped; nothing left is an empty set.
    let d = down_convert(&log, 0, 4, usize::MAX, true, BUDGET).expect("down");
    assert!(d.bytes.is_empty() && d.next_offset.is_none());
}

#[test]
fn zstd_and_control_batches() {
    let set = msg(0, 1, 0, 1, None, Some(b"x"));
    let up = up_convert(&set, BUDGET).expect("up");
    // Re-encode the same records as a zstd v2 batch.
    let h = BatchHeader::parse(&up.batch).expect("header");
    let mut z = up.batch[..HEADER_LEN].to_vec();
    z.extend(compress(4, &up.batch[HEADER_LEN..]).expect("zstd"));
    z[21..23].copy_from_slice(&4i16.to_be_bytes());
    let len = (z.len() - LOG_OVERHEAD) as i32;
    z[8..12].copy_from_slice(&len.to_be_bytes());
    assert_eq!(h.records_count, 1);
    assert_eq!(
        down_convert(&z, 1, 0, usize::MAX, true, BUDGET),
        Err(DownConvertError::Zstd(1))
    );
    // A control batch (attribute bit 5) is left out.
    let mut c = up.batch.clone();
    c[21..23].copy_from_slice(&0x20i16.to_be_bytes());
    let d = down_convert(&c, 1, 0, usize::MAX, true, BUDGET).expect("down");
    assert!(d.bytes.is_empty());
}

proptest::proptest! {
    #[test]
    fn arbitrary_message_sets_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = up_convert(&data, BUDGET);
        let _ = down_convert(&data, 1, 0, 1000, false, BUDGET);
    }
}

#[test]
fn xxh32_matches_reference_values() {
    assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
    assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
    assert_eq!(
        xxh32(b"Nobody inspects the spammish repetition", 0),
        0xE229_3B2F
    );
}

/// The value of every compressed wrapper in `set`.
fn wrapper_values(set: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    walk_messages(set, |m| {
        if m.codec() != 0 {
            out.push(m.value.expect("value").to_vec());
        }
        Ok(())
    })
    .expect("messages");
    out
}

#[test]
fn lz4_at_magic_0_has_kafka_08s_header_checksum() {
    let mut inner = msg(0, 0, 0, NO_TIMESTAMP, None, Some(b"a"));
    inner.extend(msg(1, 0, 0, NO_TIMESTAMP, Some(b"k"), Some(b"b")));
    let standard = compress(3, &inner).expect("lz4");
    // The lz4 library's own frame carries the checksum computed here.
    let mut same = standard.clone();
    lz4_set_header_checksum(&mut same, false).expect("frame");
    assert_eq!(same, standard);
    let mut legacy = standard.clone();
    lz4_set_header_checksum(&mut legacy, true).expect("frame");
    assert_ne!(legacy, standard, "KAFKA-3160's checksum differs here");
    assert!(records::decompress_all(3, &legacy, BUDGET).is_err());
    assert!(lz4_set_header_checksum(&mut [0u8; 3], false).is_err());
    assert!(lz4_set_header_checksum(&mut b"\x04\x22\x4d\x18\x48\x40".to_vec(), false).is_err());

    // A magic-0 wrapper is read with either checksum (Kafka ignores it there) ...
    for frame in [&standard, &legacy] {
        let up = up_convert(&msg(1, 0, 3, NO_TIMESTAMP, None, Some(frame)), BUDGET)
            .expect("magic 0 lz4");
        let values: Vec<_> = records_of(&up.batch).into_iter().map(|r| r.3).collect();
        assert_eq!(values, vec![Some(b"a".to_vec()), Some(b"b".to_vec())]);
    }
    // ... a magic-1 wrapper only with the right one.
    let mut inner1 = msg(0, 1, 0, 5, None, Some(b"a"));
    inner1.extend(msg(1, 1, 0, 6, None, Some(b"b")));
    let mut legacy1 = compress(3, &inner1).expect("lz4");
    lz4_set_header_checksum(&mut legacy1, true).expect("frame");
    assert!(up_convert(&msg(1, 1, 3, 6, None, Some(&legacy1)), BUDGET).is_err());

    // Down-converted lz4 wrappers: Kafka 0.8's checksum at magic 0, the standard one at 1.
    let log = stored(&msg(1, 0, 3, NO_TIMESTAMP, None, Some(&standard)), 0);
    let d0 = down_convert(&log, 0, 0, usize::MAX, true, BUDGET).expect("magic 0");
    let [w0] = wrapper_values(&d0.bytes).try_into().expect("one wrapper");
    let mut expect = w0.clone();
    lz4_set_header_checksum(&mut expect, true).expect("frame");
    assert_eq!(w0, expect);
    assert!(records::decompress_all(3, &w0, BUDGET).is_err());
    let d1 = down_convert(&log, 1, 0, usize::MAX, true, BUDGET).expect("magic 1");
    let [w1] = wrapper_values(&d1.bytes).try_into().expect("one wrapper");
    assert!(records::decompress_all(3, &w1, BUDGET).is_ok());
}
