//! Record sets as Produce carries them and as the log stores them: header and CRC checks,
//! the bounded record walker (with a 1 MiB decompression budget), produce validation, the
//! compaction rewrite, and the vendored decoder raftka keeps as a reference. Seeds are the
//! cases of issue 14 (2^31-1 headers, lying counts and lengths, random compressed payloads,
//! small decompression bombs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftka::codec::kafka::{batch, control, records};
use raftka::replication::compaction;
use std::ops::ControlFlow;

const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // The walker reads what the header points at even when the CRC is wrong (a fuzzer rarely
    // fixes a CRC), so run it on the raw bytes too.
    let _ = records::walk_records(data, CAP, |_, r| {
        let _ = r.headers().count();
        ControlFlow::Continue(())
    });
    let Ok(headers) = batch::validate_record_set(data) else {
        return;
    };
    let mut pos = 0;
    for h in headers {
        let raw = &data[pos..pos + h.total_len()];
        pos += h.total_len();
        let _ = batch::check_produced_header(&h);
        // A follower decodes the transaction marker of every control batch it replicates.
        let _ = control::parse(&h, raw);
        let policy = records::ProducePolicy {
            compacted: true,
            now_ms: 1_700_000_000_000,
            timestamp_before_max_ms: 3_600_000,
            timestamp_after_max_ms: 3_600_000,
            log_append_time: false,
            decompressed_bytes_max: CAP,
        };
        let _ = records::validate_produced(raw, &policy);
        let mut map = compaction::OffsetMap::new();
        if map.add_batch(raw, CAP).is_ok() {
            let _ = compaction::rewrite_batch(raw, |_, _, o, _| o % 2 == 0, CAP);
        }
        let mut b = bytes::Bytes::copy_from_slice(raw);
        let _ = kafka_protocol::records::RecordBatchDecoder::decode(&mut b);
    }
});
