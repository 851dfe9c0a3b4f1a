//! Reading a whole partition record by record: how the coordinators rebuild their state from
//! `__consumer_offsets` and `__transaction_state` when they become leader.

use super::Partition;
use crate::codec::kafka::batch::{self, BatchHeader};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Bytes read per step.
const SCAN_READ_BYTES: usize = 1 << 20;

impl Partition {
    /// Calls `f(header, offset, key, value)` for every record from the log start to the log
    /// end as it is now, control records included (the header tells). Reads in bounded
    /// steps off the runtime; a batch whose records cannot be decoded (within
    /// `decompressed_bytes_max`) is reported with its offset and skipped, so one bad batch
    /// does not keep the rest from loading.
    ///
    /// Returns the offset the scan stopped at (the log end when it began): records from
    /// there on were not seen.
    ///
    /// # Errors
    /// Storage failures, an unreadable record set, no progress.
    pub async fn scan_records<F>(
        self: &Arc<Self>,
        decompressed_bytes_max: usize,
        mut f: F,
    ) -> Result<i64, String>
    where
        F: FnMut(&BatchHeader, i64, Option<&[u8]>, Option<&[u8]>) + Send,
    {
        let upper = self.log_end_offset();
        let mut offset = self.log_start_offset();
        while offset < upper {
            let p = self.clone();
            let data = tokio::task::spawn_blocking(move || p.read(offset, SCAN_READ_BYTES, upper))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if data.is_empty() {
                break;
            }
            let headers = batch::validate_record_set(&data).map_err(|e| e.to_string())?;
            let next = headers.last().map_or(upper, |h| h.last_offset() + 1);
            let mut pos = 0usize;
            for h in &headers {
                let raw = &data[pos..pos + h.total_len()];
                pos += h.total_len();
                let walked = crate::codec::kafka::records::walk_records(
                    raw,
                    decompressed_bytes_max,
                    |_, r| {
                        let at = h.base_offset + i64::from(r.offset_delta);
                        if at >= offset {
                            f(h, at, r.key, r.value);
                        }
                        ControlFlow::Continue(())
                    },
                );
                if let Err(e) = walked {
                    super::report_undecodable(&self.topic, self.partition, h.base_offset, &e);
                }
            }
            if next <= offset {
                return Err(format!("scan made no progress at offset {offset}"));
            }
            offset = next;
        }
        Ok(offset.min(upper))
    }
}
