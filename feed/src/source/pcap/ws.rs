//! WebSocket frames (RFC 6455) of one direction, with `permessage-deflate` (RFC 7692).
//!
//! [`FrameDecoder::decode`] reads one step from the front of the reassembled byte stream: a
//! complete frame (7-, 16- or 64-bit length, masked or not), or the bytes of a frame that is
//! being thrown away. Fragmented messages are joined (control frames may come between their
//! fragments); a message with RSV1 on its first frame is inflated as raw deflate with the
//! `00 00 ff ff` tail restored, the inflater's window kept across messages unless the peer
//! resets its context (`*_no_context_takeover`).
//!
//! Protection against a hostile or corrupt stream: a message larger than the configured maximum
//! (compressed or inflated) is dropped and counted, and its bytes are skipped without being
//! buffered. Frames are unmasked whenever their MASK bit is set, whichever side sent them (the
//! bit, not the direction, says how the bytes were sent).
//!
//! Errors that leave the framing intact ([`WsError`] via [`Step::Error`]) drop the message and
//! decoding goes on; errors that leave later bytes undecodable ([`Step::Fatal`]: a 64-bit length
//! with its top bit set, a broken deflate context) end the direction.

use flate2::{Decompress, FlushDecompress, Status};

/// The four bytes a sender strips from the end of each compressed message (RFC 7692 §7.2.1).
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Control frames carry at most this many payload bytes.
const MAX_CONTROL: usize = 125;

/// A control frame's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Ping (opcode 9).
    Ping,
    /// Pong (opcode 10).
    Pong,
    /// Close (opcode 8): nothing follows it in this direction.
    Close,
}

impl Control {
    /// The kind's name, used as the `meta` of control records.
    pub const fn name(self) -> &'static str {
        match self {
            Control::Ping => "ping",
            Control::Pong => "pong",
            Control::Close => "close",
        }
    }
}

/// A problem with a frame or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// RSV2/RSV3 set, or RSV1 without negotiated compression or on a continuation.
    ReservedBits,
    /// Opcode 3–7 or 11–15.
    UnknownOpcode(u8),
    /// A control frame longer than 125 bytes or fragmented.
    BadControl,
    /// A continuation frame with no message to continue.
    UnexpectedContinuation,
    /// A new text/binary frame while a fragmented message was still open (both dropped).
    MessageInterrupted,
    /// The message exceeds the configured maximum.
    MessageTooLarge,
    /// The compressed message does not inflate.
    Inflate,
    /// A 64-bit length with its most significant bit set.
    BadLength,
}

/// One decoding step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The input holds no complete frame yet.
    NeedMore,
    /// Bytes were consumed (a fragment joined, skipped bytes); call again.
    Progress,
    /// A complete text or binary message; read it with [`FrameDecoder::payload`].
    Message {
        /// Opcode 2 rather than 1.
        binary: bool,
    },
    /// A control frame; its payload is in [`FrameDecoder::payload`].
    Control(Control),
    /// A frame or message was dropped; decoding can go on.
    Error(WsError),
    /// Nothing after this point can be decoded.
    Fatal(WsError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Nothing,
    Message,
    Inflated,
    Control,
}

#[derive(Debug, Clone, Copy)]
struct Partial {
    binary: bool,
    compressed: bool,
}

/// The inflater of one direction.
#[derive(Debug)]
struct Inflater {
    z: Decompress,
    /// The sender resets its compressor per message, so the receiver must too.
    reset_each_message: bool,
}

/// Decodes the frames of one direction. Buffers grow to the largest message and are reused.
#[derive(Debug)]
pub struct FrameDecoder {
    inflater: Option<Inflater>,
    message: Vec<u8>,
    inflated: Vec<u8>,
    control: [u8; MAX_CONTROL],
    control_len: usize,
    held: Held,
    partial: Option<Partial>,
    /// Dropping continuation frames of a message already given up on, until its last fragment.
    discarding: bool,
    /// Payload bytes of the current frame still to be skipped.
    skip: u64,
    max_message: usize,
}

impl FrameDecoder {
    /// A decoder for one direction; `inflate` is `Some(reset_each_message)` when
    /// `permessage-deflate` was negotiated.
    pub fn new(inflate: Option<bool>, max_message: usize) -> Self {
        FrameDecoder {
            inflater: inflate.map(|reset_each_message| Inflater {
                z: Decompress::new(false),
                reset_each_message,
            }),
            message: Vec::new(),
            inflated: Vec::new(),
            control: [0; MAX_CONTROL],
            control_len: 0,
            held: Held::Nothing,
            partial: None,
            discarding: false,
            skip: 0,
            max_message,
        }
    }

    /// The payload of the last [`Step::Message`] or [`Step::Control`].
    pub fn payload(&self) -> &[u8] {
        match self.held {
            Held::Nothing => &[],
            Held::Message => &self.message,
            Held::Inflated => &self.inflated,
            Held::Control => &self.control[..self.control_len],
        }
    }

    /// Whether a frame or fragmented message is partly read.
    pub fn mid_message(&self) -> bool {
        self.partial.is_some() || self.skip > 0
    }

    /// Frees the buffers of a direction that will decode nothing more.
    pub fn release(&mut self) {
        self.message = Vec::new();
        self.inflated = Vec::new();
        self.held = Held::Nothing;
    }

    /// Decodes one step from the front of `input`; returns the bytes consumed and the step.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Step) {
        if self.held == Held::Message || self.held == Held::Inflated {
            self.message.clear();
        }
        self.held = Held::Nothing;
        if self.skip > 0 {
            let n = (input.len() as u64).min(self.skip);
            self.skip -= n;
            let step = if n == 0 {
                Step::NeedMore
            } else {
                Step::Progress
            };
            return (n as usize, step);
        }
        let Some(header) = FrameHeader::read(input) else {
            return (0, Step::NeedMore);
        };
        let header = match header {
            Ok(h) => h,
            Err(e) => return (0, Step::Fatal(e)),
        };
        match self.check(&header) {
            Ok(()) => {}
            Err(e) => return self.drop_frame(input, &header, e),
        }
        let total = header.len + header.payload_len as usize;
        if input.len() < total {
            return (0, Step::NeedMore);
        }
        let payload = &input[header.len..total];
        if header.opcode >= 8 {
            self.control_len = payload.len();
            self.control[..payload.len()].copy_from_slice(payload);
            unmask(&mut self.control[..payload.len()], header.mask);
            self.held = Held::Control;
            let control = match header.opcode {
                8 => Control::Close,
                9 => Control::Ping,
                _ => Control::Pong,
            };
            return (total, Step::Control(control));
        }
        let start = self.message.len();
        self.message.extend_from_slice(payload);
        unmask(&mut self.message[start..], header.mask);
        if header.opcode != 0 {
            self.partial = Some(Partial {
                binary: header.opcode == 2,
                compressed: header.rsv & 4 != 0,
            });
        }
        if !header.fin {
            return (total, Step::Progress);
        }
        let Some(done) = self.partial.take() else {
            return (total, Step::Progress);
        };
        if !done.compressed {
            self.held = Held::Message;
            return (
                total,
                Step::Message {
                    binary: done.binary,
                },
            );
        }
        match self.inflate() {
            Ok(()) => {
                self.held = Held::Inflated;
                (
                    total,
                    Step::Message {
                        binary: done.binary,
                    },
                )
            }
            Err(e) => {
                self.message.clear();
                // Without a context reset the next messages refer to bytes never inflated.
                let resets = self.inflater.as_ref().is_some_and(|i| i.reset_each_message);
                (
                    total,
                    if resets {
                        Step::Error(e)
                    } else {
                        Step::Fatal(e)
                    },
                )
            }
        }
    }

    /// Checks a frame against the protocol and the size limit before its payload is read.
    /// `Err(None)`: a later fragment of a message already dropped, skipped without counting.
    fn check(&mut self, h: &FrameHeader) -> Result<(), Option<WsError>> {
        if self.discarding && h.opcode == 0 {
            return Err(None);
        }
        if matches!(h.opcode, 1 | 2) {
            self.discarding = false;
        }
        let compressed_ok = self.inflater.is_some() && matches!(h.opcode, 1 | 2);
        if h.rsv & 0b011 != 0 || (h.rsv & 0b100 != 0 && !compressed_ok) {
            return Err(Some(WsError::ReservedBits));
        }
        let error = match h.opcode {
            0 if self.partial.is_none() => Err(WsError::UnexpectedContinuation),
            1 | 2 if self.partial.is_some() => Err(WsError::MessageInterrupted),
            8..=10 if !h.fin || h.payload_len > MAX_CONTROL as u64 => Err(WsError::BadControl),
            3..=7 | 11..=15 => Err(WsError::UnknownOpcode(h.opcode)),
            0..=2 if self.message.len() as u64 + h.payload_len > self.max_message as u64 => {
                Err(WsError::MessageTooLarge)
            }
            _ => Ok(()),
        };
        error.map_err(Some)
    }

    /// Throws a frame away (and with it any message it belongs to), skipping its bytes even when
    /// they have not all arrived yet.
    fn drop_frame(
        &mut self,
        input: &[u8],
        h: &FrameHeader,
        error: Option<WsError>,
    ) -> (usize, Step) {
        let in_message = matches!(h.opcode, 0..=2);
        if in_message {
            // A dropped fragment takes its message with it; later fragments are skipped too.
            self.partial = None;
            self.message.clear();
            self.discarding = !h.fin;
        }
        let total = h.len as u64 + h.payload_len;
        let available = (input.len() as u64).min(total);
        self.skip = total - available;
        let reported = match error {
            Some(e) => Step::Error(e),
            None => Step::Progress,
        };
        (available as usize, reported)
    }

    /// Inflates `message` into `inflated`.
    fn inflate(&mut self) -> Result<(), WsError> {
        let Some(inflater) = self.inflater.as_mut() else {
            return Err(WsError::ReservedBits);
        };
        self.inflated.clear();
        let result = inflate_into(
            &mut inflater.z,
            &self.message,
            &mut self.inflated,
            self.max_message,
        );
        if inflater.reset_each_message || result.is_err() {
            inflater.z.reset(false);
        }
        result
    }
}

/// Inflates one message (its tail restored) into `out`, at most `max` bytes.
fn inflate_into(
    z: &mut Decompress,
    message: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), WsError> {
    for input in [message, &DEFLATE_TAIL[..]] {
        let mut used = 0usize;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= max {
                    return Err(WsError::MessageTooLarge);
                }
                out.reserve((out.len().max(4096)).min(max - out.len()));
            }
            let (in_before, out_before) = (z.total_in(), out.len());
            let status = z
                .decompress_vec(&input[used..], out, FlushDecompress::Sync)
                .map_err(|_| WsError::Inflate)?;
            used += (z.total_in() - in_before) as usize;
            if status == Status::StreamEnd {
                // A final block: the sender's stream ended; nothing more to read from it.
                return Ok(());
            }
            let room_left = out.len() < out.capacity();
            if used == input.len() && room_left {
                break;
            }
            if used < input.len()
                && room_left
                && out.len() == out_before
                && z.total_in() == in_before
            {
                return Err(WsError::Inflate);
            }
        }
    }
    if out.len() > max {
        Err(WsError::MessageTooLarge)
    } else {
        Ok(())
    }
}

/// XORs a payload with its masking key (a no-op without one).
fn unmask(payload: &mut [u8], key: Option<[u8; 4]>) {
    let Some(key) = key else { return };
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        for (b, k) in chunk.iter_mut().zip(key) {
            *b ^= k;
        }
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// A frame's header fields.
#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload_len: u64,
    /// Header length in bytes (2 to 14).
    len: usize,
}

impl FrameHeader {
    /// The header at the front of `input`, `None` while incomplete.
    fn read(input: &[u8]) -> Option<Result<FrameHeader, WsError>> {
        let (&b0, rest) = input.split_first()?;
        let &b1 = rest.first()?;
        let (payload_len, mut len) = match b1 & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes([*input.get(2)?, *input.get(3)?])),
                4,
            ),
            127 => {
                let bytes: [u8; 8] = input.get(2..10)?.try_into().ok()?;
                let n = u64::from_be_bytes(bytes);
                if n >> 63 != 0 {
                    return Some(Err(WsError::BadLength));
                }
                (n, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if b1 & 0x80 != 0 {
            let key: [u8; 4] = input.get(len..len + 4)?.try_into().ok()?;
            len += 4;
            Some(key)
        } else {
            None
        };
        Some(Ok(FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0f,
            mask,
            payload_len,
            len,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(decoder: &mut FrameDecoder, mut input: &[u8]) -> Vec<(Step, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let (n, step) = decoder.decode(input);
            input = &input[n..];
            match step {
                Step::NeedMore => return out,
                Step::Progress => {}
                other => out.push((other, decoder.payload().to_vec())),
            }
        }
    }

    #[test]
    fn masked_fragments_with_an_interleaved_ping() {
        let mut d = FrameDecoder::new(None, 1 << 20);
        let key = [1, 2, 3, 4];
        let mut masked = *b"Hel";
        unmask(&mut masked, Some(key));
        let mut input = vec![0x01, 0x83, 1, 2, 3, 4];
        input.extend_from_slice(&masked);
        input.extend_from_slice(&[0x89, 0x01, b'p', 0x80, 0x02, b'l', b'o']);
        let steps = run(&mut d, &input);
        assert_eq!(
            steps,
            vec![
                (Step::Control(Control::Ping), b"p".to_vec()),
                (Step::Message { binary: false }, b"Hello".to_vec()),
            ]
        );
    }

    #[test]
    fn oversize_messages_are_skipped_and_counted_once() {
        let mut d = FrameDecoder::new(None, 4);
        let mut input = vec![0x02, 0x03, 1, 2, 3, 0x00, 0x03, 4, 5, 6, 0x80, 0x01, 7];
        input.extend_from_slice(&[0x82, 0x02, 8, 9]);
        let steps = run(&mut d, &input);
        assert_eq!(
            steps,
            vec![
                (Step::Error(WsError::MessageTooLarge), vec![]),
                (Step::Message { binary: true }, vec![8, 9]),
            ]
        );
        assert!(!d.mid_message());
    }

    #[test]
    fn protocol_errors_drop_the_frame_and_go_on() {
        let mut d = FrameDecoder::new(None, 1 << 20);
        let input = [
            0x83, 0x01, 0, 0x80, 0x01, 0, 0xc1, 0x01, b'x', 0x81, 0x01, b'y',
        ];
        let steps = run(&mut d, &input);
        assert_eq!(
            steps,
            vec![
                (Step::Error(WsError::UnknownOpcode(3)), vec![]),
                (Step::Error(WsError::UnexpectedContinuation), vec![]),
                (Step::Error(WsError::ReservedBits), vec![]),
                (Step::Message { binary: false }, b"y".to_vec()),
            ]
        );
        let bad_len = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(d.decode(&bad_len), (0, Step::Fatal(WsError::BadLength)));
    }
}
