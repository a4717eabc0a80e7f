//! The capture containers: classic pcap and pcapng, read packet by packet.
//!
//! [`CaptureReader`] detects the container from the file's first four bytes and yields
//! [`Packet`]s that borrow one reused buffer, so reading allocates nothing once the buffer has
//! grown to the largest block.
//!
//! - pcap: both byte orders, microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) magic. The
//!   link type is the header's `network` field (lower 16 bits; the upper bits carry FCS flags).
//! - pcapng: sections (SHB) in either byte order, one after another; interfaces (IDB) with their
//!   own link type, `if_tsresol` and `if_tsoffset`; packets from Enhanced (EPB), Simple (SPB) and
//!   the obsolete Packet Block. Other blocks are skipped. A Simple Packet Block carries no
//!   timestamp: it gets the last timestamp seen in its section.
//!
//! Invariants: a block or record whose length field would exceed [`MAX_BLOCK`] is a
//! [`SourceError::Format`] (protection against a corrupt length asking for gigabytes); input that
//! ends inside a record is [`SourceError::Truncated`]; input that ends exactly between records is
//! the end of the capture.

use std::io::{self, Read};

use crate::error::SourceError;

/// The largest pcap record or pcapng block accepted (a TSO/GRO capture may carry 64 KiB+ frames;
/// nothing legitimate comes near this).
pub const MAX_BLOCK: usize = 16 << 20;

const PCAP: &str = "pcap";
const PCAPNG: &str = "pcapng";

const PCAP_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_NANOS: u32 = 0xa1b2_3c4d;
const NG_SHB: u32 = 0x0a0d_0d0a;
const NG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
const NG_IDB: u32 = 1;
const NG_PB: u32 = 2;
const NG_SPB: u32 = 3;
const NG_EPB: u32 = 6;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// A link-layer header type, as numbered by the tcpdump `LINKTYPE_` registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    /// Ethernet II (with optional 802.1Q/802.1ad tags).
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP: the packet starts with an IPv4 or IPv6 header.
    pub const RAW: LinkType = LinkType(101);
    /// Linux cooked capture v1 (`any` device, 16-byte header).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (20-byte header).
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured packet. Borrows the reader's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time, ns since the Unix epoch.
    pub t_ns: u64,
    /// The link layer of `data`.
    pub link: LinkType,
    /// The captured bytes (possibly fewer than were on the wire, see `orig_len`).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
}

/// Timestamp resolution of a pcapng interface (`if_tsresol`).
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units_per_sec: u128,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_s: i64,
}

#[derive(Debug)]
enum Container {
    Pcap {
        big_endian: bool,
        nanos: bool,
        link: LinkType,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
        last_ns: u64,
    },
}

/// Reads packets from a pcap or pcapng stream.
#[derive(Debug)]
pub struct CaptureReader<R> {
    input: R,
    /// Byte offset of the next unread byte, for error positions.
    position: u64,
    container: Container,
    buf: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if big {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

fn format_error(format: &'static str, position: u64, what: impl Into<String>) -> SourceError {
    SourceError::Format {
        format,
        position,
        what: what.into(),
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (pcap) or first section header (pcapng).
    pub fn new(mut input: R) -> Result<Self, SourceError> {
        let mut head = [0u8; 24];
        let n = read_full(&mut input, &mut head[..4])?;
        if n < 4 {
            return Err(SourceError::Truncated {
                format: PCAP,
                position: 0,
            });
        }
        let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let magic_be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if magic_le == NG_SHB {
            let mut reader = CaptureReader {
                input,
                position: 4,
                container: Container::PcapNg {
                    big_endian: false,
                    interfaces: Vec::new(),
                    last_ns: 0,
                },
                buf: Vec::with_capacity(64 << 10),
            };
            reader.read_section_header(0)?;
            return Ok(reader);
        }
        let (big_endian, nanos) = match (magic_le, magic_be) {
            (PCAP_MICROS, _) => (false, false),
            (PCAP_NANOS, _) => (false, true),
            (_, PCAP_MICROS) => (true, false),
            (_, PCAP_NANOS) => (true, true),
            _ => {
                return Err(format_error(
                    PCAP,
                    0,
                    format!("unknown magic {magic_le:#010x}"),
                ));
            }
        };
        if read_full(&mut input, &mut head[4..24])? < 20 {
            return Err(SourceError::Truncated {
                format: PCAP,
                position: 0,
            });
        }
        let major = u16_at(&head, 4, big_endian);
        if major != 2 {
            return Err(format_error(
                PCAP,
                4,
                format!("unsupported version {major}"),
            ));
        }
        let link = LinkType((u32_at(&head, 20, big_endian) & 0xffff) as u16);
        Ok(CaptureReader {
            input,
            position: 24,
            container: Container::Pcap {
                big_endian,
                nanos,
                link,
            },
            buf: Vec::with_capacity(64 << 10),
        })
    }

    /// The next packet, `Ok(None)` at the end of the capture.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, SourceError> {
        match self.container {
            Container::Pcap {
                big_endian,
                nanos,
                link,
            } => self.next_pcap(big_endian, nanos, link),
            Container::PcapNg { .. } => self.next_pcapng(),
        }
    }

    /// Reads exactly `len` bytes into `self.buf` (replacing it); `false` if the input ended
    /// before the first byte, an error if it ended inside.
    fn fill(
        &mut self,
        len: usize,
        format: &'static str,
        record_start: u64,
    ) -> Result<bool, SourceError> {
        self.buf.clear();
        self.buf.resize(len, 0);
        let n = read_full(&mut self.input, &mut self.buf)?;
        self.position += n as u64;
        if n == len {
            Ok(true)
        } else if n == 0 {
            Ok(false)
        } else {
            Err(SourceError::Truncated {
                format,
                position: record_start,
            })
        }
    }

    fn next_pcap(
        &mut self,
        big: bool,
        nanos: bool,
        link: LinkType,
    ) -> Result<Option<Packet<'_>>, SourceError> {
        let start = self.position;
        let mut head = [0u8; 16];
        let n = read_full(&mut self.input, &mut head)?;
        self.position += n as u64;
        if n == 0 {
            return Ok(None);
        }
        if n < 16 {
            return Err(SourceError::Truncated {
                format: PCAP,
                position: start,
            });
        }
        let sec = u64::from(u32_at(&head, 0, big));
        let frac = u64::from(u32_at(&head, 4, big));
        let incl = u32_at(&head, 8, big) as usize;
        let orig_len = u32_at(&head, 12, big);
        if incl > MAX_BLOCK {
            return Err(format_error(
                PCAP,
                start,
                format!("record length {incl} too large"),
            ));
        }
        if !self.fill(incl, PCAP, start)? && incl > 0 {
            return Err(SourceError::Truncated {
                format: PCAP,
                position: start,
            });
        }
        let t_ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1_000 };
        Ok(Some(Packet {
            t_ns,
            link,
            data: &self.buf,
            orig_len,
        }))
    }

    /// Reads a section header block whose type field (4 bytes at `start`) was already read.
    fn read_section_header(&mut self, start: u64) -> Result<(), SourceError> {
        let mut head = [0u8; 8];
        if read_full(&mut self.input, &mut head)? < 8 {
            return Err(SourceError::Truncated {
                format: PCAPNG,
                position: start,
            });
        }
        self.position += 8;
        let big = match u32::from_le_bytes([head[4], head[5], head[6], head[7]]) {
            NG_BYTE_ORDER => false,
            v if v.swap_bytes() == NG_BYTE_ORDER => true,
            v => {
                return Err(format_error(
                    PCAPNG,
                    start,
                    format!("bad byte-order magic {v:#010x}"),
                ));
            }
        };
        let total = u32_at(&head, 0, big) as usize;
        if !(28..=MAX_BLOCK).contains(&total) || !total.is_multiple_of(4) {
            return Err(format_error(
                PCAPNG,
                start,
                format!("bad section header length {total}"),
            ));
        }
        // Rest of the block after type, length and byte-order magic.
        if !self.fill(total - 12, PCAPNG, start)? {
            return Err(SourceError::Truncated {
                format: PCAPNG,
                position: start,
            });
        }
        let major = u16_at(&self.buf, 0, big);
        if major != 1 {
            return Err(format_error(
                PCAPNG,
                start,
                format!("unsupported version {major}"),
            ));
        }
        if u32_at(&self.buf, total - 16, big) as usize != total {
            return Err(format_error(PCAPNG, start, "trailing block length differs"));
        }
        // A new section starts afresh: its interfaces are numbered from 0 again.
        if let Container::PcapNg {
            big_endian,
            interfaces,
            last_ns,
        } = &mut self.container
        {
            *big_endian = big;
            interfaces.clear();
            *last_ns = 0;
        }
        Ok(())
    }

    fn next_pcapng(&mut self) -> Result<Option<Packet<'_>>, SourceError> {
        loop {
            let start = self.position;
            let mut head = [0u8; 8];
            let n = read_full(&mut self.input, &mut head[..4])?;
            self.position += n as u64;
            if n == 0 {
                return Ok(None);
            }
            if n < 4 {
                return Err(SourceError::Truncated {
                    format: PCAPNG,
                    position: start,
                });
            }
            if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == NG_SHB {
                self.read_section_header(start)?;
                continue;
            }
            let Container::PcapNg {
                big_endian: big, ..
            } = self.container
            else {
                return Ok(None);
            };
            if read_full(&mut self.input, &mut head[4..8])? < 4 {
                return Err(SourceError::Truncated {
                    format: PCAPNG,
                    position: start,
                });
            }
            self.position += 4;
            let kind = u32_at(&head, 0, big);
            let total = u32_at(&head, 4, big) as usize;
            if !(12..=MAX_BLOCK).contains(&total) || !total.is_multiple_of(4) {
                return Err(format_error(
                    PCAPNG,
                    start,
                    format!("bad block length {total}"),
                ));
            }
            if !self.fill(total - 8, PCAPNG, start)? {
                return Err(SourceError::Truncated {
                    format: PCAPNG,
                    position: start,
                });
            }
            let body_len = total - 12;
            if u32_at(&self.buf, body_len, big) as usize != total {
                return Err(format_error(PCAPNG, start, "trailing block length differs"));
            }
            match kind {
                NG_IDB => self.read_interface(big, body_len, start)?,
                NG_EPB | NG_PB | NG_SPB => {
                    if let Some((iface, t_ns, from, len, orig_len)) =
                        self.packet_block(kind, big, body_len, start)?
                    {
                        return Ok(Some(Packet {
                            t_ns,
                            link: iface.link,
                            data: &self.buf[from..from + len],
                            orig_len,
                        }));
                    }
                }
                _ => {}
            }
        }
    }

    fn read_interface(
        &mut self,
        big: bool,
        body_len: usize,
        start: u64,
    ) -> Result<(), SourceError> {
        if body_len < 8 {
            return Err(format_error(PCAPNG, start, "interface block too short"));
        }
        let mut iface = Interface {
            link: LinkType(u16_at(&self.buf, 0, big)),
            units_per_sec: 1_000_000,
            offset_s: 0,
        };
        let mut at = 8;
        while at + 4 <= body_len {
            let code = u16_at(&self.buf, at, big);
            let len = usize::from(u16_at(&self.buf, at + 2, big));
            let value = at + 4;
            if code == OPT_END || value + len > body_len {
                break;
            }
            match (code, len) {
                (OPT_IF_TSRESOL, 1) => {
                    let v = self.buf[value];
                    let exp = u32::from(v & 0x7f);
                    iface.units_per_sec = if v & 0x80 == 0 {
                        10u128.checked_pow(exp).filter(|_| exp <= 19)
                    } else {
                        1u128.checked_shl(exp).filter(|_| exp <= 64)
                    }
                    .ok_or_else(|| {
                        format_error(PCAPNG, start, format!("bad if_tsresol {v:#04x}"))
                    })?;
                }
                (OPT_IF_TSOFFSET, 8) => {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(&self.buf[value..value + 8]);
                    iface.offset_s = if big {
                        i64::from_be_bytes(raw)
                    } else {
                        i64::from_le_bytes(raw)
                    };
                }
                _ => {}
            }
            at = value + len.div_ceil(4) * 4;
        }
        if let Container::PcapNg { interfaces, .. } = &mut self.container {
            interfaces.push(iface);
        }
        Ok(())
    }

    /// The interface, time, data range and original length of a packet block, or `None` for a
    /// packet of an interface that was never described (skipped: its link type is unknown).
    #[allow(clippy::type_complexity)]
    fn packet_block(
        &mut self,
        kind: u32,
        big: bool,
        body_len: usize,
        start: u64,
    ) -> Result<Option<(Interface, u64, usize, usize, u32)>, SourceError> {
        let Container::PcapNg {
            interfaces,
            last_ns,
            ..
        } = &mut self.container
        else {
            return Ok(None);
        };
        let b = &self.buf;
        let (iface_id, ts, from, cap, orig) = match kind {
            NG_SPB => {
                if body_len < 4 {
                    return Err(format_error(PCAPNG, start, "simple packet block too short"));
                }
                let orig = u32_at(b, 0, big);
                let cap = (orig as usize).min(body_len - 4);
                (0usize, None, 4usize, cap, orig)
            }
            _ => {
                if body_len < 20 {
                    return Err(format_error(PCAPNG, start, "packet block too short"));
                }
                let iface = if kind == NG_EPB {
                    u32_at(b, 0, big) as usize
                } else {
                    usize::from(u16_at(b, 0, big))
                };
                let ts = (u64::from(u32_at(b, 4, big)) << 32) | u64::from(u32_at(b, 8, big));
                let cap = u32_at(b, 12, big) as usize;
                if cap > body_len - 20 {
                    return Err(format_error(
                        PCAPNG,
                        start,
                        format!("captured length {cap} exceeds block"),
                    ));
                }
                (iface, Some(ts), 20usize, cap, u32_at(b, 16, big))
            }
        };
        let Some(&iface) = interfaces.get(iface_id) else {
            return Err(format_error(
                PCAPNG,
                start,
                format!("packet of undescribed interface {iface_id}"),
            ));
        };
        let t_ns = match ts {
            Some(ts) => {
                let ns = u128::from(ts) * 1_000_000_000 / iface.units_per_sec;
                let ns = ns as i128 + i128::from(iface.offset_s) * 1_000_000_000;
                let ns = ns.clamp(0, i128::from(u64::MAX)) as u64;
                *last_ns = ns;
                ns
            }
            None => *last_ns,
        };
        Ok(Some((iface, t_ns, from, cap, orig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_magic_and_short_input() {
        assert!(matches!(
            CaptureReader::new(&b"\x00\x01\x02\x03rest-of-header-000000000"[..]),
            Err(SourceError::Format { .. })
        ));
        assert!(matches!(
            CaptureReader::new(&b"\xd4\xc3"[..]),
            Err(SourceError::Truncated { .. })
        ));
    }

    #[test]
    fn truncated_pcap_record_is_reported() {
        let mut file = Vec::new();
        file.extend_from_slice(&PCAP_MICROS.to_le_bytes());
        file.extend_from_slice(&2u16.to_le_bytes());
        file.extend_from_slice(&4u16.to_le_bytes());
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&65535u32.to_le_bytes());
        file.extend_from_slice(&1u32.to_le_bytes());
        for v in [7u32, 500, 10, 10] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(&[1, 2, 3]);
        let mut reader = CaptureReader::new(&file[..]).expect("header");
        assert!(matches!(
            reader.next_packet(),
            Err(SourceError::Truncated { position: 24, .. })
        ));
    }
}
