//! Reads one size-prefixed request frame under the connection deadlines and the node's request
//! byte budget ([`RequestBudget`]).
//!
//! - Waiting for the first byte of a frame is bounded by the caller's `wait_until` (the idle
//!   timeout, or the first-request deadline of a new connection).
//! - Once that byte arrived, the rest of the frame (size prefix included) must arrive within
//!   `read_timeout` (and by `complete_by`, the first-request deadline). Time spent waiting for
//!   budget is added back: it is the node's doing, not the client's.
//! - The body is read in chunks of at most [`CHUNK`] bytes, each charged to the budget just
//!   before a non-blocking read and the unused part returned at once, so a connection holds
//!   budget only for bytes it actually sent. The buffer grows with what arrived; the declared
//!   size never sizes an allocation up front.
//! - While it waits for the client holding bytes, the request can be evicted by one that waits
//!   for budget ([`Charge::client_wait`]).

use super::request_budget::{Charge, Evicted, RequestBudget};
use crate::codec::kafka::frame::{self, FrameError};
use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Largest piece charged and read at once.
const CHUNK: usize = 128 * 1024;

/// Why no frame was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameReadError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// No byte of a new frame arrived by `wait_until`.
    #[error("no request started in time")]
    Idle,
    /// A started frame did not complete in time.
    #[error("request not received in time")]
    Incomplete,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Evicted(#[from] Evicted),
}

/// A complete request frame and the budget it holds until the request is handled.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) bytes: Bytes,
    pub(crate) charge: Charge,
}

/// Deadlines of one frame read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameDeadlines {
    /// The first byte must arrive by then.
    pub(crate) wait_until: Instant,
    /// The whole frame must have arrived by then (before time spent waiting for budget).
    pub(crate) complete_by: Option<Instant>,
    /// The whole frame must arrive within this of its first byte.
    pub(crate) read_timeout: Duration,
}

/// Reads one frame; `Ok(None)` when the peer closed cleanly between frames.
///
/// # Errors
/// I/O errors (an end of stream inside a frame included), a missed deadline, or a size prefix
/// that is negative, too small or above `max_frame`.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    budget: &RequestBudget,
    max_frame: usize,
    deadlines: FrameDeadlines,
) -> Result<Option<Frame>, FrameReadError> {
    let mut prefix = [0u8; 4];
    let n = match tokio::time::timeout_at(deadlines.wait_until, rd.read(&mut prefix)).await {
        Err(_) => return Err(FrameReadError::Idle),
        Ok(Ok(0)) => return Ok(None),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
        Ok(r) => r?,
    };
    let mut deadline = Instant::now() + deadlines.read_timeout;
    if let Some(by) = deadlines.complete_by {
        deadline = deadline.min(by);
    }
    if n < prefix.len() {
        tokio::time::timeout_at(deadline, rd.read_exact(&mut prefix[n..]))
            .await
            .map_err(|_| FrameReadError::Incomplete)??;
    }
    let size = frame::check_size(i32::from_be_bytes(prefix), max_frame)?;
    let mut buf = BytesMut::new();
    let mut charge = budget.charge(size);
    // A byte read while waiting for data, not yet charged (at most one per connection).
    let mut carried: Option<u8> = None;
    while buf.len() < size {
        let want = CHUNK.min(size - buf.len());
        let asked = Instant::now();
        // `want` <= CHUNK, so it fits a u32.
        if charge.grow(u32::try_from(want).unwrap_or(u32::MAX)).await {
            deadline += asked.elapsed();
        }
        buf.reserve(want);
        let mut used = 0;
        if let Some(b) = carried.take() {
            buf.put_u8(b);
            used = 1;
        }
        if want > used {
            let mut room = (&mut buf).limit(want - used);
            match rd.read_buf(&mut room).now_or_never() {
                None => {} // nothing buffered now
                Some(Ok(0)) => return Err(eof_in_frame()),
                Some(Ok(got)) => used += got,
                Some(Err(e)) => return Err(e.into()),
            }
        }
        charge.shrink(want - used);
        if used == 0 {
            // Wait (holding no budget for it) until the client sends more.
            let mut one = [0u8; 1];
            let wait = tokio::time::timeout_at(deadline, rd.read(&mut one));
            match charge.client_wait(wait).await? {
                Err(_) => return Err(FrameReadError::Incomplete),
                Ok(Ok(0)) => return Err(eof_in_frame()),
                Ok(Ok(_)) => carried = Some(one[0]),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }
    debug_assert_eq!(buf.len(), size);
    debug_assert_eq!(charge.bytes(), size);
    Ok(Some(Frame {
        bytes: buf.freeze(),
        charge,
    }))
}

fn eof_in_frame() -> FrameReadError {
    FrameReadError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "connection closed inside a request",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const STALL: Duration = Duration::from_secs(3600);

    /// Free bytes of the shared and small pools.
    fn free(b: &RequestBudget) -> usize {
        let (shared, small) = b.available_for_tests();
        shared + small
    }

    fn deadlines(wait: Duration, read: Duration) -> FrameDeadlines {
        FrameDeadlines {
            wait_until: Instant::now() + wait,
            complete_by: None,
            read_timeout: read,
        }
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[tokio::test]
    async fn reads_whole_frames_back_to_back() {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let a = vec![7u8; 300_000]; // several chunks
        let b = vec![9u8; 12];
        client.write_all(&framed(&a)).await.expect("write");
        client.write_all(&framed(&b)).await.expect("write");
        drop(client);
        let budget = RequestBudget::new(10 << 20, 1 << 20, STALL);
        let d = deadlines(Duration::from_secs(5), Duration::from_secs(5));
        let f = read_frame(&mut server, &budget, 1 << 20, d)
            .await
            .expect("read")
            .expect("frame");
        assert_eq!(&f.bytes[..], &a[..]);
        assert_eq!(f.charge.bytes(), a.len());
        let f2 = read_frame(&mut server, &budget, 1 << 20, d)
            .await
            .expect("read")
            .expect("frame");
        assert_eq!(&f2.bytes[..], &b[..]);
        assert!(read_frame(&mut server, &budget, 1 << 20, d)
            .await
            .expect("clean end")
            .is_none());
    }

    /// A client that declares a large frame and trickles holds only what it sent.
    #[tokio::test]
    async fn a_trickling_client_holds_only_what_it_sent() {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let budget = RequestBudget::new(4 << 20, 1 << 20, STALL);
        let reader = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let d = deadlines(Duration::from_secs(60), Duration::from_millis(500));
                read_frame(&mut server, &budget, 1 << 20, d).await
            })
        };
        let mut sent = (1_000_000i32).to_be_bytes().to_vec();
        sent.extend_from_slice(&[1u8; 1000]);
        client.write_all(&sent).await.expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let held = (3 << 20) - free(&budget);
        assert!(
            (999..=1000).contains(&held),
            "holds {held} bytes for 1000 sent"
        );
        // The rest never comes: the read deadline closes it and the budget is whole again.
        let r = reader.await.expect("task");
        assert!(matches!(r, Err(FrameReadError::Incomplete)), "{r:?}");
        assert_eq!(free(&budget), 3 << 20);
    }

    /// Two bytes of a size prefix do not hold a connection for the idle timeout.
    #[tokio::test]
    async fn partial_size_prefix_times_out_with_the_read_deadline() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(&[0, 0]).await.expect("write");
        let budget = RequestBudget::new(4 << 20, 1 << 20, STALL);
        let started = Instant::now();
        let d = deadlines(Duration::from_secs(600), Duration::from_millis(300));
        let r = read_frame(&mut server, &budget, 1 << 20, d).await;
        assert!(matches!(r, Err(FrameReadError::Incomplete)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Silence before any byte is the idle case.
        let (_client2, mut server2) = tokio::io::duplex(1024);
        let d = deadlines(Duration::from_millis(200), Duration::from_secs(30));
        let r = read_frame(&mut server2, &budget, 1 << 20, d).await;
        assert!(matches!(r, Err(FrameReadError::Idle)), "{r:?}");
        drop(client);
    }

    #[tokio::test]
    async fn the_first_request_deadline_caps_a_started_frame() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let budget = RequestBudget::new(4 << 20, 1 << 20, STALL);
        let d = FrameDeadlines {
            wait_until: Instant::now() + Duration::from_millis(300),
            complete_by: Some(Instant::now() + Duration::from_millis(300)),
            read_timeout: Duration::from_secs(30),
        };
        let started = Instant::now();
        client
            .write_all(&framed(&[1; 100])[..50])
            .await
            .expect("write");
        let r = read_frame(&mut server, &budget, 1 << 20, d).await;
        assert!(matches!(r, Err(FrameReadError::Incomplete)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn bad_sizes_and_truncation_are_errors() {
        let budget = RequestBudget::new(4 << 20, 1 << 20, STALL);
        let d = deadlines(Duration::from_secs(5), Duration::from_secs(5));
        for prefix in [-1i32, 0, 3, (1 << 20) + 1] {
            let (mut client, mut server) = tokio::io::duplex(1024);
            client
                .write_all(&prefix.to_be_bytes())
                .await
                .expect("write");
            let r = read_frame(&mut server, &budget, 1 << 20, d).await;
            assert!(
                matches!(r, Err(FrameReadError::Frame(_))),
                "{prefix}: {r:?}"
            );
        }
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(&framed(&[1; 100])[..60])
            .await
            .expect("write");
        drop(client);
        let r = read_frame(&mut server, &budget, 1 << 20, d).await;
        assert!(matches!(r, Err(FrameReadError::Io(_))), "{r:?}");
        assert_eq!(free(&budget), 3 << 20);
    }

    /// While the budget is exhausted by a silent client's partial request, another request
    /// evicts it (after the stall time) instead of waiting for its read deadline (60 s here).
    #[tokio::test]
    async fn a_silent_partial_request_is_evicted_for_a_waiting_one() {
        // Shared pool 1 MiB, lane reserve 1 MiB.
        let budget = RequestBudget::new(2 << 20, 1 << 20, Duration::from_millis(200));
        let d = deadlines(Duration::from_secs(60), Duration::from_secs(60));
        // The hog sends 1 MiB of a 1 MiB + 1 byte request, then nothing.
        let (mut hog_client, mut hog_server) = tokio::io::duplex(4 << 20);
        let mut sent = ((1 << 20) + 1i32).to_be_bytes().to_vec();
        sent.extend_from_slice(&vec![5u8; 1 << 20]);
        hog_client.write_all(&sent).await.expect("write");
        let hog = {
            let budget = budget.clone();
            tokio::spawn(async move { read_frame(&mut hog_server, &budget, 2 << 20, d).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The hog holds the whole shared pool and (having waited for its last byte's budget)
        // the lane. A request too large for the small pool has to wait, then evicts the
        // silent hog.
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let body = vec![7u8; 300 * 1024];
        client.write_all(&framed(&body)).await.expect("write");
        let started = Instant::now();
        let f = tokio::time::timeout(
            Duration::from_secs(5),
            read_frame(&mut server, &budget, 2 << 20, d),
        )
        .await
        .expect("not stuck behind a silent client")
        .expect("read")
        .expect("frame");
        assert_eq!(&f.bytes[..], &body[..]);
        assert!(started.elapsed() < Duration::from_secs(2));
        let hog = hog.await.expect("task");
        assert!(matches!(hog, Err(FrameReadError::Evicted(_))), "{hog:?}");
        drop(hog_client);
    }
}
