//! A verified forward walk over one column family that survives corrupt blocks: every block
//! is read with its checksum verified; when a read fails with corruption, the walk reports
//! the unreadable key range and resumes at the first readable key after it.
//!
//! RocksDB cannot say which keys a corrupt block held, so the walk finds where readable data
//! resumes by probing: `seek(t)` fails while the first key at or after `t` lies in the bad
//! block, so it tries targets `after + 2^i` (keys read as big-endian integers of `after`'s
//! width) until a seek succeeds, then bisects back to the smallest target that succeeds. Every
//! key between the last good key and the resume key is in the unreadable range. A few hundred
//! seeks at most (two per key bit), each re-reading one bad block.
//!
//! Used by the scrubber, `raftka check` and the partition-log rebuild.

use rocksdb::{ColumnFamily, DBRawIteratorWithThreadMode, ReadOptions, DB};

/// One thing the walk met.
#[derive(Debug)]
pub enum WalkEvent<'a> {
    Entry(&'a [u8], &'a [u8]),
    /// Keys in `(after, resume_at)` could not be read (`None`: the start / the end of the
    /// walked range).
    Unreadable {
        after: Option<Vec<u8>>,
        resume_at: Option<Vec<u8>>,
        error: String,
    },
}

/// Totals of a walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub entries: u64,
    pub bytes: u64,
    pub unreadable_ranges: u64,
}

fn read_options(to: Option<&[u8]>) -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_verify_checksums(true);
    // A scan of everything must not evict the working set.
    ro.fill_cache(false);
    ro.set_readahead_size(2 << 20);
    if let Some(to) = to {
        ro.set_iterate_upper_bound(to.to_vec());
    }
    ro
}

/// Walks `[from, to)` of `cf` (`to = None`: to the end). `visit` returns false to stop.
///
/// # Errors
/// A read error other than corruption (I/O), or a corruption the probing cannot get past.
pub fn walk(
    db: &DB,
    cf: &ColumnFamily,
    from: &[u8],
    to: Option<&[u8]>,
    mut visit: impl FnMut(WalkEvent<'_>) -> bool,
) -> Result<WalkStats, rocksdb::Error> {
    let mut stats = WalkStats::default();
    let mut it = db.raw_iterator_cf_opt(cf, read_options(to));
    it.seek(from);
    let mut last: Option<Vec<u8>> = None;
    loop {
        if it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            stats.entries += 1;
            stats.bytes += (k.len() + v.len()) as u64;
            if !visit(WalkEvent::Entry(k, v)) {
                return Ok(stats);
            }
            match &mut last {
                Some(l) => {
                    l.clear();
                    l.extend_from_slice(k);
                }
                None => last = Some(k.to_vec()),
            }
            it.next();
            continue;
        }
        let err = match it.status() {
            Ok(()) => return Ok(stats),
            Err(e) if e.kind() == rocksdb::ErrorKind::Corruption => e,
            Err(e) => return Err(e),
        };
        stats.unreadable_ranges += 1;
        let base = last.clone().unwrap_or_else(|| from.to_vec());
        let resume = find_resume(db, cf, to, &base, last.is_none())?;
        let go_on = visit(WalkEvent::Unreadable {
            after: last.clone(),
            resume_at: resume.clone(),
            error: err.to_string(),
        });
        match resume {
            Some(k) if go_on => {
                // A fresh iterator: one that has failed may keep its error.
                it = db.raw_iterator_cf_opt(cf, read_options(to));
                it.seek(&k);
                // The resume key itself was readable a moment ago.
                last = None;
                if !it.valid() && it.status().is_err() {
                    // Still failing at the resume point: give up rather than loop.
                    return Err(err);
                }
            }
            _ => return Ok(stats),
        }
    }
    Ok(stats)
}

/// Whether `seek(t)` reads without error; `Some(key)` found (or `None` = no key at or after
/// `t` in range). A fresh iterator per probe: a failed one may keep its error.
fn probe(db: &DB, cf: &ColumnFamily, to: Option<&[u8]>, t: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    let mut it: DBRawIteratorWithThreadMode<'_, DB> = db.raw_iterator_cf_opt(cf, read_options(to));
    it.seek(t);
    if it.valid() {
        Ok(it.key().map(<[u8]>::to_vec))
    } else if it.status().is_ok() {
        Ok(None)
    } else {
        Err(())
    }
}

/// The first readable key after the corrupt region that follows `base` (exclusive, unless
/// `inclusive`: the walk failed at its very first seek).
fn find_resume(
    db: &DB,
    cf: &ColumnFamily,
    to: Option<&[u8]>,
    base: &[u8],
    inclusive: bool,
) -> Result<Option<Vec<u8>>, rocksdb::Error> {
    // The immediate successor first (`base` + 0x00), or `base` itself at the start.
    let first: Vec<u8> = if inclusive {
        base.to_vec()
    } else {
        let mut s = base.to_vec();
        s.push(0);
        s
    };
    if let Ok(found) = probe(db, cf, to, &first) {
        return Ok(found);
    }
    if base.is_empty() {
        return Ok(None);
    }
    // Exponential probing on `base` as a big-endian integer of its width.
    let bits = base.len() * 8;
    let mut lo = base.to_vec(); // a target known to fail (or below the failure)
    let mut hi: Option<Vec<u8>> = None;
    for i in 0..bits {
        let Some(t) = add_pow2(base, i) else { break };
        if probe(db, cf, to, &t).is_ok() {
            hi = Some(t);
            break;
        }
        lo = t;
    }
    let Some(mut hi) = hi else {
        // Nothing readable up to the largest key of this width: the rest is lost.
        return Ok(None);
    };
    // Bisect (lo fails, hi succeeds) down to adjacent targets.
    while let Some(mid) = midpoint(&lo, &hi) {
        if probe(db, cf, to, &mid).is_ok() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(probe(db, cf, to, &hi).unwrap_or(None))
}

/// `k + 2^bit` as a big-endian integer of `k`'s width; `None` on overflow.
pub(super) fn add_pow2(k: &[u8], bit: usize) -> Option<Vec<u8>> {
    let mut out = k.to_vec();
    let mut idx = k.len().checked_sub(1 + bit / 8)?;
    let mut carry = 1u16 << (bit % 8);
    loop {
        let sum = u16::from(out[idx]) + carry;
        out[idx] = (sum & 0xff) as u8;
        carry = sum >> 8;
        if carry == 0 {
            return Some(out);
        }
        idx = idx.checked_sub(1)?;
    }
}

/// `(a + b) / 2` for equal-width big-endian integers with `a < b`; `None` when they are
/// adjacent (no integer strictly between).
fn midpoint(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    // sum = a + b, n + 1 bytes.
    let mut sum = vec![0u8; n + 1];
    let mut carry = 0u16;
    for i in (0..n).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        sum[i + 1] = (s & 0xff) as u8;
        carry = s >> 8;
    }
    sum[0] = carry as u8;
    // Halve.
    let mut mid = vec![0u8; n + 1];
    let mut rem = 0u16;
    for i in 0..=n {
        let cur = (rem << 8) | u16::from(sum[i]);
        mid[i] = (cur / 2) as u8;
        rem = cur % 2;
    }
    let mid = mid[1..].to_vec();
    (mid.as_slice() > a && mid.as_slice() < b).then_some(mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_arithmetic() {
        assert_eq!(add_pow2(&[0, 0xff], 0), Some(vec![1, 0]));
        assert_eq!(add_pow2(&[0, 1], 8), Some(vec![1, 1]));
        assert_eq!(add_pow2(&[0xff, 0xff], 0), None);
        assert_eq!(add_pow2(&[0x00, 0x00], 15), Some(vec![0x80, 0]));
        assert_eq!(add_pow2(&[1], 8), None);
        assert_eq!(midpoint(&[0, 0], &[0, 4]), Some(vec![0, 2]));
        assert_eq!(midpoint(&[0, 0xff], &[1, 1]), Some(vec![1, 0]));
        assert_eq!(midpoint(&[0, 1], &[0, 2]), None);
        assert_eq!(midpoint(&[0xff, 0xfe], &[0xff, 0xff]), None);
    }

    fn db_with(dir: &std::path::Path) -> DB {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        let mut c = rocksdb::Options::default();
        c.set_compression_type(rocksdb::DBCompressionType::None);
        DB::open_cf_descriptors(&o, dir, vec![rocksdb::ColumnFamilyDescriptor::new("t", c)])
            .expect("open")
    }

    fn key(p: u32, off: u64) -> Vec<u8> {
        let mut k = p.to_be_bytes().to_vec();
        k.extend_from_slice(&off.to_be_bytes());
        k
    }

    /// Flips a byte in a value in the middle of partition 1 in the only SST.
    fn corrupt_partition_1(dir: &std::path::Path) {
        let sst = std::fs::read_dir(dir)
            .expect("ls")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "sst"))
            .expect("an sst");
        let mut data = std::fs::read(&sst).expect("read");
        let needle = [b'B'; 64];
        let first = data
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("value bytes in the sst");
        // Around the 100th record of the partition.
        let at = first + 100 * 1010;
        data[at + 32] ^= 0xff;
        std::fs::write(&sst, data).expect("write");
    }

    #[test]
    fn a_walk_skips_a_corrupt_block_and_reports_its_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = db_with(dir.path());
            let cf = db.cf_handle("t").expect("cf");
            for p in 0..3u32 {
                for off in 0..200u64 {
                    db.put_cf(cf, key(p, off), vec![b'A' + p as u8; 1000])
                        .expect("put");
                }
            }
            db.flush_cf(cf).expect("flush");
        }
        corrupt_partition_1(dir.path());
        let db = db_with(dir.path());
        let cf = db.cf_handle("t").expect("cf");
        let mut seen = Vec::new();
        let mut holes = Vec::new();
        let stats = walk(&db, cf, &[], None, |e| {
            match e {
                WalkEvent::Entry(k, _) => seen.push(k.to_vec()),
                WalkEvent::Unreadable {
                    after, resume_at, ..
                } => holes.push((after, resume_at)),
            }
            true
        })
        .expect("walk");
        assert_eq!(holes.len(), 1, "{holes:?}");
        let (after, resume) = holes[0].clone();
        let (after, resume) = (after.expect("after"), resume.expect("resume"));
        assert_eq!(after[..4], 1u32.to_be_bytes(), "hole inside partition 1");
        assert!(resume > after);
        // Everything outside the hole was read, in order, once.
        let lost: Vec<Vec<u8>> = (0..3u32)
            .flat_map(|p| (0..200u64).map(move |o| key(p, o)))
            .filter(|k| *k > after && *k < resume)
            .collect();
        assert!(
            !lost.is_empty() && lost.len() < 10,
            "one block lost: {}",
            lost.len()
        );
        assert_eq!(seen.len() + lost.len(), 600);
        assert_eq!(stats.unreadable_ranges, 1);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        // A walk bounded to partition 2 never touches the bad block.
        let mut n = 0;
        let s = walk(&db, cf, &key(2, 0), Some(&key(3, 0)), |_| {
            n += 1;
            true
        })
        .expect("walk");
        assert_eq!((n, s.unreadable_ranges), (200, 0));
    }
}
