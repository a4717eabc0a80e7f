//! From a captured frame to its TCP segment: link layer, IP, TCP headers.
//!
//! Link layers: Ethernet II with any number of 802.1Q / 802.1ad / QinQ tags, Linux cooked
//! captures v1 (SLL) and v2 (SLL2), raw IP. Network: IPv4 (options skipped; fragments are not
//! reassembled but reported as [`Skip::Fragment`], since market-data TCP never relies on IP
//! fragmentation) and IPv6 (hop-by-hop, routing, destination-options and AH extension headers
//! skipped; a fragment header is [`Skip::Fragment`]). The IP total/payload length trims the
//! link layer's padding; a length of zero (TSO/GRO captures) means "the rest of the frame".
//!
//! Everything is bounds-checked: a short or inconsistent header is [`Skip::Malformed`], never a
//! panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::file::LinkType;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const PROTO_TCP: u8 = 6;

/// TCP header flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// The acknowledgement field is significant.
    pub const ACK: u8 = 0x10;

    /// Whether all bits of `flag` are set.
    pub const fn has(self, flag: u8) -> bool {
        self.0 & flag == flag
    }
}

/// A TCP segment found in a frame. Borrows the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN itself when SYN is set).
    pub seq: u32,
    /// Acknowledgement number (meaningful when `ACK` is set).
    pub ack: u32,
    /// Header flags.
    pub flags: TcpFlags,
    /// The segment's payload.
    pub payload: &'a [u8],
}

/// Why a frame yields no TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type this reader does not decode.
    UnsupportedLink,
    /// Not IPv4 or IPv6 (ARP, LLDP, …).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, …).
    NotTcp,
    /// An IP fragment: not reassembled.
    Fragment,
    /// A header is shorter than it says or inconsistent.
    Malformed,
    /// The capture kept fewer bytes than the IP packet holds (snap length): its TCP payload is
    /// incomplete, so it must not be used.
    Truncated,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// The TCP segment in a captured frame of the given link type.
pub fn tcp_segment(link: LinkType, frame: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    let (ethertype, ip) = match link {
        LinkType::ETHERNET => ethernet(frame)?,
        LinkType::LINUX_SLL => (
            be16(frame, 14).ok_or(Skip::Malformed)?,
            frame.get(16..).ok_or(Skip::Malformed)?,
        ),
        LinkType::LINUX_SLL2 => (
            be16(frame, 0).ok_or(Skip::Malformed)?,
            frame.get(20..).ok_or(Skip::Malformed)?,
        ),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => match frame.first().map(|b| b >> 4) {
            Some(4) => (ETHERTYPE_IPV4, frame),
            Some(6) => (ETHERTYPE_IPV6, frame),
            _ => return Err(Skip::NotIp),
        },
        _ => return Err(Skip::UnsupportedLink),
    };
    let (src, dst, tcp) = match ethertype {
        ETHERTYPE_IPV4 => ipv4(ip)?,
        ETHERTYPE_IPV6 => ipv6(ip)?,
        _ => return Err(Skip::NotIp),
    };
    let src_port = be16(tcp, 0).ok_or(Skip::Malformed)?;
    let dst_port = be16(tcp, 2).ok_or(Skip::Malformed)?;
    let seq = be32(tcp, 4).ok_or(Skip::Malformed)?;
    let ack = be32(tcp, 8).ok_or(Skip::Malformed)?;
    let offset = usize::from(*tcp.get(12).ok_or(Skip::Malformed)? >> 4) * 4;
    let flags = TcpFlags(*tcp.get(13).ok_or(Skip::Malformed)?);
    if offset < 20 {
        return Err(Skip::Malformed);
    }
    let payload = tcp.get(offset..).ok_or(Skip::Malformed)?;
    Ok(TcpSegment {
        src: SocketAddr::new(src, src_port),
        dst: SocketAddr::new(dst, dst_port),
        seq,
        ack,
        flags,
        payload,
    })
}

/// The ethertype after any VLAN tags, and the bytes after the Ethernet header.
fn ethernet(frame: &[u8]) -> Result<(u16, &[u8]), Skip> {
    let mut at = 12;
    loop {
        let ethertype = be16(frame, at).ok_or(Skip::Malformed)?;
        at += 2;
        match ethertype {
            // A tag is TCI (2 bytes) followed by the next ethertype.
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => at += 2,
            _ => return Ok((ethertype, frame.get(at..).ok_or(Skip::Malformed)?)),
        }
    }
}

/// Source, destination and the transport bytes of an IPv4 packet carrying TCP.
fn ipv4(ip: &[u8]) -> Result<(IpAddr, IpAddr, &[u8]), Skip> {
    let first = *ip.first().ok_or(Skip::Malformed)?;
    if first >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let header = usize::from(first & 0x0f) * 4;
    let total = usize::from(be16(ip, 2).ok_or(Skip::Malformed)?);
    if header < 20 || ip.len() < header {
        return Err(Skip::Malformed);
    }
    let end = match total {
        0 => ip.len(),
        t if t < header => return Err(Skip::Malformed),
        t if t > ip.len() => return Err(Skip::Truncated),
        t => t,
    };
    let fragment = be16(ip, 6).ok_or(Skip::Malformed)?;
    // More-fragments flag or a non-zero offset.
    if fragment & 0x3fff != 0 {
        return Err(Skip::Fragment);
    }
    if ip[9] != PROTO_TCP {
        return Err(Skip::NotTcp);
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    Ok((IpAddr::V4(src), IpAddr::V4(dst), &ip[header..end]))
}

/// Source, destination and the transport bytes of an IPv6 packet carrying TCP.
fn ipv6(ip: &[u8]) -> Result<(IpAddr, IpAddr, &[u8]), Skip> {
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let payload = usize::from(be16(ip, 4).ok_or(Skip::Malformed)?);
    let end = match payload {
        0 => ip.len(),
        p if 40 + p > ip.len() => return Err(Skip::Truncated),
        p => 40 + p,
    };
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    dst.copy_from_slice(&ip[24..40]);
    let mut next = ip[6];
    let mut at = 40;
    loop {
        match next {
            PROTO_TCP => break,
            // Hop-by-hop, routing, destination options: length in 8-byte units after the first 8.
            0 | 43 | 60 => {
                let len = usize::from(*ip.get(at + 1).ok_or(Skip::Malformed)?);
                next = ip[at];
                at += (len + 1) * 8;
            }
            // Authentication header: length in 4-byte units after the first 8.
            51 => {
                let len = usize::from(*ip.get(at + 1).ok_or(Skip::Malformed)?);
                next = ip[at];
                at += (len + 2) * 4;
            }
            44 => return Err(Skip::Fragment),
            _ => return Err(Skip::NotTcp),
        }
        if at > end {
            return Err(Skip::Malformed);
        }
    }
    Ok((
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
        ip.get(at..end).ok_or(Skip::Malformed)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(flags_frag: u16, proto: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 1];
        p.extend_from_slice(&flags_frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(&[
            0x01, 0xbb, 0xc0, 0x00, 0, 0, 0, 5, 0, 0, 0, 9, 0x50, 0x18, 0, 0, 0, 0, 0, 0,
        ]);
        p
    }

    #[test]
    fn raw_ipv4_tcp_decodes() {
        let packet = ipv4_tcp(0x4000, 6);
        let seg = tcp_segment(LinkType::RAW, &packet).expect("tcp");
        assert_eq!(seg.src, "10.0.0.1:443".parse().expect("addr"));
        assert_eq!(seg.dst, "10.0.0.2:49152".parse().expect("addr"));
        assert_eq!(
            (seg.seq, seg.ack, seg.flags.0, seg.payload.len()),
            (5, 9, 0x18, 0)
        );
    }

    #[test]
    fn fragments_udp_and_short_frames_are_skipped() {
        assert_eq!(
            tcp_segment(LinkType::RAW, &ipv4_tcp(0x2000, 6)),
            Err(Skip::Fragment)
        );
        assert_eq!(
            tcp_segment(LinkType::RAW, &ipv4_tcp(0x0010, 6)),
            Err(Skip::Fragment)
        );
        assert_eq!(
            tcp_segment(LinkType::RAW, &ipv4_tcp(0, 17)),
            Err(Skip::NotTcp)
        );
        assert_eq!(
            tcp_segment(LinkType::ETHERNET, &[0u8; 10]),
            Err(Skip::Malformed)
        );
        assert_eq!(
            tcp_segment(LinkType::RAW, &ipv4_tcp(0, 6)[..30]),
            Err(Skip::Truncated)
        );
        assert_eq!(
            tcp_segment(LinkType(147), &[0u8; 60]),
            Err(Skip::UnsupportedLink)
        );
    }
}
