//! Reading a request body under a size limit, and refusing a larger one without a reset.
//!
//! A body over the limit is refused, but how it is refused matters to the sender. The host
//! forwards a client's upload and writes all of it before it reads our answer; if we answer 413
//! and close with part of the body unread, the kernel resets the connection (a socket closed
//! with unread bytes sends RST), the host's next write fails with a broken pipe, and the client
//! gets the host's 500 instead of our problem. So a refused body is read to its end and thrown
//! away — up to [`DRAIN_BYTES`], as Go's net/http does with 256 KiB — before the answer goes.
//! A body declared larger than that, or one whose sender waits for `100 Continue`, is refused
//! at once: reading gigabytes to be polite is the abuse the limit is there to stop. And the
//! politeness has a deadline, [`DRAIN_TIME`]: a sender that stalls in the middle of a refused
//! body is answered anyway, rather than keeping a task and hyper's read buffer forever.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use warp::http::{HeaderMap, header};

use crate::invocation::MAX_BODY_BYTES;
use crate::problem::Problem;

/// How much of a refused body is still read (and dropped). The host is on loopback, where
/// 4 MiB takes about a millisecond; it covers an envelope carrying a body of several hundred
/// kilobytes JSON-escaped.
const DRAIN_BYTES: u64 = 4 * 1024 * 1024;

/// How long a refused body is waited for. Its sender is sending (the host relays what the client
/// uploads); one that has not finished by then is answered, and may see the reset.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Reads a body of at most `limit` bytes; a larger one is refused as soon as it is seen, after
/// what is left of it (up to [`DRAIN_BYTES`] in all) has been read.
pub async fn read<S, B>(headers: &HeaderMap, mut body: S, limit: usize) -> Result<Bytes, Problem>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let too_large = Problem::BodyTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > limit as u64) {
        if length <= DRAIN_BYTES && !awaits_continue(headers) {
            drain(body, 0).await;
        }
        return Err(too_large);
    }
    let mut bytes = BytesMut::with_capacity(declared.map_or(0, |l| l as usize));
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| Problem::InvalidBody {
            detail: "The request body could not be read.".to_string(),
        })?;
        let seen = bytes.len() + chunk.remaining();
        if seen > limit {
            drop((bytes, chunk));
            drain(body, seen).await;
            return Err(too_large);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(bytes.freeze())
}

/// Reads and drops the body of a request refused before its function ran (a path no function
/// serves), bounded as a refused body is, so its sender is not reset in the middle of it.
pub async fn discard<S, B>(headers: &HeaderMap, body: S)
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    // A sender waiting for `100 Continue` has sent nothing: reading would ask it for the body.
    if awaits_continue(headers) {
        return;
    }
    // Any body is over a limit of 0: read drains it and refuses it.
    let _ = read(headers, body, 0).await;
}

/// `Expect: 100-continue`: the sender waits for a go-ahead, which hyper sends when the body is
/// first read, before it sends the body.
fn awaits_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads and drops the rest of a body of which `seen` bytes have been read, until it ends, fails,
/// passes [`DRAIN_BYTES`] or takes longer than [`DRAIN_TIME`].
async fn drain<S, B>(mut body: S, mut seen: usize)
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let read_on = async {
        while (seen as u64) <= DRAIN_BYTES {
            match body.next().await {
                Some(Ok(chunk)) => seen += chunk.remaining(),
                Some(Err(_)) | None => return,
            }
        }
    };
    // Past the deadline the rest is left unread: the answer goes, and the connection closes.
    let _ = tokio::time::timeout(DRAIN_TIME, read_on).await;
}
