//! The wire codec of Petrel's one request-response protocol, [`PROTOCOL_NAME`].
//!
//! Every message is length-delimited: a `u32` big-endian length, then that many bytes. The length
//! is checked against a limit before anything is allocated, and the buffer then grows as bytes
//! arrive (at most 64 KiB up front), so a peer that announces a large frame and sends little
//! costs only what it sent.
//!
//! - Request: length, then `type_id: u16` big-endian, then the payload. At most
//!   [`MAX_REQUEST_FRAME`] bytes after the length; the request type's own limit is enforced by the
//!   event loop when it dispatches (an oversized request is answered `Malformed`). A length below 2
//!   or over the limit is read as an undecodable request (nothing more is read), which the event
//!   loop penalises and leaves unanswered: libp2p only logs a codec error on the inbound side.
//! - Response: length, then one status byte ([`petrel_network_api::ResponseStatus`]), then the
//!   payload. The reader accepts at most the `max_response` the requester asked for (plus the
//!   status byte), and never more than [`MAX_RESPONSE_FRAME`].
//!
//! A response frame (status byte and payload) is one buffer from the handler that builds it to
//! the requester that decodes it: the writer sends the handler's buffer as is and the reader
//! reads the frame into one buffer that grows to the announced (checked) length as bytes arrive,
//! so the payload is not copied by Petrel on its way apart from the buffer's growth past 64 KiB
//! (about once its size in all).
//!
//! The request-response handler uses one codec value per stream: it writes the request and then
//! reads the response with the same value, which is how the per-request response limit reaches
//! [`Codec::read_response`].

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

/// The request-response protocol name.
pub const PROTOCOL_NAME: &str = "/petrel/req/1";
/// Largest request frame (type id and payload) a node reads.
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;
/// Largest response frame (status and payload) a node ever reads, whatever the request type.
pub const MAX_RESPONSE_FRAME: usize = petrel_primitives::codec::HARD_LIMIT + 1;

/// Frames up to this size are written with a single write (one Yamux frame). Larger ones are
/// written as the length prefix together with the first bytes of the frame (up to this size in
/// all, so the prefix does not cost a Yamux frame of its own), then the rest of the frame
/// straight from its buffer.
const COALESCE_LIMIT: usize = 16 * 1024;

/// An outbound or inbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireRequest {
    /// The request type.
    pub(crate) type_id: u16,
    /// The encoded request.
    pub(crate) payload: Vec<u8>,
    /// Local only (never sent): the largest response payload the requester accepts.
    pub(crate) max_response: usize,
    /// Local only: read from a frame that cannot be a request (no type id, or over
    /// [`MAX_REQUEST_FRAME`]). It reaches the event loop like a request (libp2p only logs a codec
    /// error on the inbound side), which penalises its sender and drops it unanswered.
    pub(crate) undecodable: bool,
}

impl WireRequest {
    /// A request to send.
    pub(crate) fn new(type_id: u16, payload: Vec<u8>, max_response: usize) -> Self {
        Self { type_id, payload, max_response, undecodable: false }
    }

    fn undecodable() -> Self {
        Self { type_id: 0, payload: Vec::new(), max_response: 0, undecodable: true }
    }
}

/// A response frame, as written by the server or as read by the requester: the status byte,
/// then the payload, in one buffer (never empty when read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireResponse(pub(crate) Vec<u8>);

/// A length prefix over the reader's limit; carried inside the `io::Error` so that the event
/// loop can tell it from transport failures.
#[derive(Debug, thiserror::Error)]
#[error("frame of {len} bytes is over the limit of {limit} bytes")]
pub(crate) struct FrameTooLarge {
    /// The announced payload length.
    pub(crate) len: usize,
    /// The limit.
    pub(crate) limit: usize,
}

impl FrameTooLarge {
    /// Finds this error inside an I/O error.
    pub(crate) fn find(e: &io::Error) -> Option<&FrameTooLarge> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<FrameTooLarge>())
    }
}

/// The codec; see the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) struct WireCodec {
    /// Response payload limit of the request this codec value wrote.
    max_response: usize,
}

async fn read_len<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<usize> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    Ok(u32::from_be_bytes(len) as usize)
}

/// What a frame's buffer starts with: a peer that announces a large frame and sends little costs
/// only what it sent (the buffer grows as bytes arrive, up to the checked length).
const INITIAL_READ: usize = 64 * 1024;

/// Reads exactly `len` bytes into a buffer that grows as they arrive; `UnexpectedEof` if the
/// stream ends first.
async fn read_growing<T: AsyncRead + Unpin + Send>(io: &mut T, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len.min(INITIAL_READ));
    (&mut *io).take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the frame ends before its announced length"));
    }
    Ok(buf)
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn too_large(len: usize, limit: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, FrameTooLarge { len, limit })
}

fn frame_len(len: usize) -> io::Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))
}

/// Writes a length-prefixed frame given as a head and a body: the prefix, the head and the start
/// of the body in one write of at most [`COALESCE_LIMIT`] bytes (the whole frame when it fits),
/// then the rest of the body without copying it.
async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, head: &[u8], body: &[u8]) -> io::Result<()> {
    let len = frame_len(head.len() + body.len())?;
    let first_body = body.len().min(COALESCE_LIMIT.saturating_sub(4 + head.len()));
    let (start, rest) = body.split_at(first_body);
    let mut first = Vec::with_capacity(4 + head.len() + start.len());
    first.extend_from_slice(&len);
    first.extend_from_slice(head);
    first.extend_from_slice(start);
    io.write_all(&first).await?;
    if !rest.is_empty() {
        io.write_all(rest).await?;
    }
    Ok(())
}

impl Codec for WireCodec {
    type Protocol = StreamProtocol;
    type Request = WireRequest;
    type Response = WireResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_len(io).await?;
        // Undecodable frames are refused from the prefix alone: nothing more is read.
        if !(2..=MAX_REQUEST_FRAME).contains(&len) {
            return Ok(WireRequest::undecodable());
        }
        let mut type_id = [0u8; 2];
        io.read_exact(&mut type_id).await?;
        let payload = read_growing(io, len - 2).await?;
        Ok(WireRequest::new(u16::from_be_bytes(type_id), payload, 0))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_len(io).await?;
        if len == 0 {
            return Err(invalid("response frame without a status"));
        }
        let limit = self.max_response.min(MAX_RESPONSE_FRAME - 1);
        if len - 1 > limit {
            return Err(too_large(len - 1, limit));
        }
        // Status byte and payload in one buffer: the payload stays where it was read.
        Ok(WireResponse(read_growing(io, len).await?))
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: WireRequest) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.max_response = req.max_response;
        if req.payload.len() + 2 > MAX_REQUEST_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "request over the frame limit"));
        }
        write_frame(io, &req.type_id.to_be_bytes(), &req.payload).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: WireResponse) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &[], &res.0).await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;

    use super::*;

    fn protocol() -> StreamProtocol {
        StreamProtocol::new(PROTOCOL_NAME)
    }

    #[test]
    fn request_round_trip() {
        block_on(async {
            let mut codec = WireCodec::default();
            let req = WireRequest::new(0x1234, vec![7; 100], 99);
            let mut buf = Cursor::new(Vec::new());
            codec.write_request(&protocol(), &mut buf, req.clone()).await.unwrap();
            assert_eq!(&buf.get_ref()[..6], &[0, 0, 0, 102, 0x12, 0x34]);
            buf.set_position(0);
            let read = WireCodec::default().read_request(&protocol(), &mut buf).await.unwrap();
            assert_eq!(read, WireRequest { max_response: 0, ..req });
        });
    }

    #[test]
    fn response_round_trip_large_and_small() {
        block_on(async {
            for size in [0usize, 10, COALESCE_LIMIT - 5, COALESCE_LIMIT - 4, COALESCE_LIMIT, 1 << 20] {
                let mut frame = vec![0u8];
                frame.extend((0..size).map(|i| (i % 251) as u8));
                let mut buf = Cursor::new(Vec::new());
                let written = WireResponse(frame.clone());
                WireCodec::default().write_response(&protocol(), &mut buf, written).await.unwrap();
                assert_eq!(&buf.get_ref()[..4], &((size + 1) as u32).to_be_bytes());
                assert_eq!(buf.get_ref().len(), 4 + size + 1);
                buf.set_position(0);
                let mut codec = WireCodec { max_response: size };
                let read = codec.read_response(&protocol(), &mut buf).await.unwrap();
                assert_eq!(read, WireResponse(frame));
            }
        });
    }

    /// Records the size of every write.
    #[derive(Default)]
    struct Writes(Vec<usize>);

    impl AsyncWrite for Writes {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.0.push(buf.len());
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn the_length_prefix_never_travels_alone() {
        block_on(async {
            let mut small = Writes::default();
            write_frame(&mut small, &[], &[1; 100]).await.unwrap();
            assert_eq!(small.0, vec![104]);
            let mut exact = Writes::default();
            write_frame(&mut exact, &[1, 2], &vec![1; COALESCE_LIMIT - 6]).await.unwrap();
            assert_eq!(exact.0, vec![COALESCE_LIMIT]);
            let mut large = Writes::default();
            write_frame(&mut large, &[], &vec![1; 1 << 20]).await.unwrap();
            assert_eq!(large.0, vec![COALESCE_LIMIT, (1 << 20) + 4 - COALESCE_LIMIT]);
        });
    }

    #[test]
    fn oversized_lengths_are_refused_before_reading_the_body() {
        block_on(async {
            // A request announcing 1 GiB: undecodable from the prefix alone (the body is unread).
            let mut bytes = (1u32 << 30).to_be_bytes().to_vec();
            bytes.extend([1, 2, 3]);
            let mut buf = Cursor::new(bytes);
            let read = WireCodec::default().read_request(&protocol(), &mut buf).await.unwrap();
            assert!(read.undecodable);
            assert_eq!(buf.position(), 4);

            // A response over the requester's limit.
            let mut bytes = 11u32.to_be_bytes().to_vec();
            bytes.extend([0u8; 11]);
            let mut codec = WireCodec { max_response: 9 };
            let err = codec.read_response(&protocol(), &mut Cursor::new(bytes)).await.unwrap_err();
            let e = FrameTooLarge::find(&err).unwrap();
            assert_eq!((e.len, e.limit), (10, 9));
        });
    }

    #[test]
    fn truncated_and_empty_frames_are_errors() {
        block_on(async {
            // No room for a type id: undecodable (handed on to be penalised), not a stream error.
            let mut short = Cursor::new(vec![0, 0, 0, 1, 5]);
            assert!(WireCodec::default().read_request(&protocol(), &mut short).await.unwrap().undecodable);
            let mut truncated = Cursor::new(vec![0, 0, 0, 10, 0, 1, 2]);
            assert!(WireCodec::default().read_request(&protocol(), &mut truncated).await.is_err());
            let mut empty = Cursor::new(vec![0, 0, 0, 0]);
            assert!(WireCodec { max_response: 10 }.read_response(&protocol(), &mut empty).await.is_err());
        });
    }

    #[test]
    fn a_frame_that_ends_before_its_announced_length_is_refused_without_its_length_allocated() {
        block_on(async {
            // 8 MiB announced (within a response limit of 10 MiB), 3 bytes sent.
            let announced = 8u32 << 20;
            let mut bytes = announced.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0, 1, 2]);
            let err = WireCodec { max_response: 10 << 20 }
                .read_response(&protocol(), &mut Cursor::new(bytes))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            // The reader's buffer started at 64 KiB and held what arrived.
            let partial = read_growing(&mut Cursor::new(vec![7u8; 100]), 1 << 20).await.unwrap_err();
            assert_eq!(partial.kind(), io::ErrorKind::UnexpectedEof);
            let exact = read_growing(&mut Cursor::new(vec![7u8; 100_000]), 100_000).await.unwrap();
            assert_eq!(exact.len(), 100_000);
            assert_eq!(
                read_growing(&mut Cursor::new(vec![7u8; 10]), 4).await.unwrap(),
                vec![7u8; 4],
                "no more than asked"
            );
        });
    }
}
