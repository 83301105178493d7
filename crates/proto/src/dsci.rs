//! Moxa "DSCI" probes on UDP port 4800, server side (spec §9.2, §13.5):
//! the answers a Real COM server owes the Linux driver, which otherwise
//! tears down and reconnects idle ports every minute (§9.1).
//!
//! [`answer`] takes one request datagram and returns the reply datagram:
//!
//! * `0x01` search → `0x81`: our device id and IPv4 address (24 bytes);
//! * `0x16` kernel info → `0x96`: 36 bytes, DSCI version 0 at offset 34, so
//!   the driver uses the simple netstat request;
//! * `0x14` netstat and `0x1D` paged netstat → `0x94` / `0x9D`: no entries
//!   (n = 0), the request's id echoed. No entries means "nothing to
//!   complain about": the driver refreshes its liveness timer, and our
//!   real TCP state decides everything else.
//!
//! Header fields are big-endian: opcode, status, total length (u16),
//! transaction id (u32, echoed). Requests other than search carry a
//! 12-byte device id that must be ours.
//!
//! What it does **not** do: no sockets (the caller must reply from port
//! 4800 and from the address the host targeted), no IPv6 variant (opcode
//! 0x79), none of the configuration opcodes Moxa's Windows tools use, no
//! legacy UDP 1029 polling (§9.3). Anything it does not answer, including
//! every reply (opcode bit 7 set, so two servers never answer each other),
//! gets `None`.

use std::net::Ipv4Addr;

/// The UDP port the driver probes.
pub const PORT: u16 = 4800;

/// Request opcodes; a reply sets [`opcode::REPLY`].
pub mod opcode {
    /// Search: who is there?
    pub const SEARCH: u8 = 0x01;
    /// Netstat, for DSCI version 0.
    pub const NETSTAT: u8 = 0x14;
    /// Kernel info: the DSCI version.
    pub const KERNEL_INFO: u8 = 0x16;
    /// Paged netstat, for DSCI versions other than 0.
    pub const NETSTAT_PAGED: u8 = 0x1D;
    /// The bit that marks a reply.
    pub const REPLY: u8 = 0x80;
}

const HEADER_LEN: usize = 8;
const DEVICE_ID_LEN: usize = 12;
/// Header + device id + IPv4.
const SEARCH_REPLY_LEN: u16 = 24;
/// Header + device id + 16 bytes, the DSCI version in the last two.
const KERNEL_INFO_REPLY_LEN: u16 = 36;
/// Header + device id + n (u16) + next item (u16), no entries.
const NETSTAT_REPLY_LEN: u16 = 24;
/// Request lengths the driver sends (§9.2): header + device id, plus
/// (max entries, 0) for netstat and (0, 0xFF, start, 0) for paged netstat.
const KERNEL_INFO_REQUEST_LEN: usize = HEADER_LEN + DEVICE_ID_LEN;
const NETSTAT_REQUEST_LEN: usize = HEADER_LEN + DEVICE_ID_LEN + 2;
const NETSTAT_PAGED_REQUEST_LEN: usize = HEADER_LEN + DEVICE_ID_LEN + 4;

/// Who we are to Moxa's tools and drivers: 12 bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceId {
    /// Product id; must be non-zero, or the driver keeps searching.
    /// Big-endian on the wire (nport-toys reads `00 55 55 55` as
    /// 0x00555555).
    pub apid: u32,
    /// Hardware id / model. Little-endian on the wire, as Moxa numbers it
    /// (an NPort 5110A's 0x511A is sent as `1A 51`).
    pub hwid: u16,
    /// Ethernet MAC address.
    pub mac: [u8; 6],
}

impl DeviceId {
    /// The 12 wire bytes: APID, HWID, MAC. The driver echoes them
    /// unchanged, so only consistency matters to it.
    pub fn encode(&self) -> [u8; DEVICE_ID_LEN] {
        let mut out = [0; DEVICE_ID_LEN];
        let (apid, rest) = out.split_at_mut(4);
        let (hwid, mac) = rest.split_at_mut(2);
        apid.copy_from_slice(&self.apid.to_be_bytes());
        hwid.copy_from_slice(&self.hwid.to_le_bytes());
        mac.copy_from_slice(&self.mac);
        out
    }

    /// From the 12 wire bytes.
    pub fn decode(bytes: &[u8; DEVICE_ID_LEN]) -> Self {
        let [a0, a1, a2, a3, h0, h1, m0, m1, m2, m3, m4, m5] = *bytes;
        Self {
            apid: u32::from_be_bytes([a0, a1, a2, a3]),
            hwid: u16::from_le_bytes([h0, h1]),
            mac: [m0, m1, m2, m3, m4, m5],
        }
    }
}

/// The device id plus the address the search reply reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Our device id.
    pub id: DeviceId,
    /// The IPv4 address the host reached us on.
    pub ipv4: Ipv4Addr,
}

/// The reply to one DSCI request datagram, or None (not a request we answer / malformed).
/// Answers 0x01 search, 0x16 kernel info (DSCI version 0 at offset 34), 0x14 and 0x1D netstat
/// (no entries, id echoed). A request whose device id is not ours gets no answer.
///
/// The declared length must fit in the datagram and cover what the opcode
/// needs; bytes after the declared length are ignored.
pub fn answer(request: &[u8], me: &Identity) -> Option<Vec<u8>> {
    let &[op, _status, len_hi, len_lo, id0, id1, id2, id3] = request.first_chunk::<HEADER_LEN>()?;
    let transaction = [id0, id1, id2, id3];
    let declared = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    let request = request.get(..declared)?;
    let ours = me.id.encode();
    let addressed_to_us = |min_len: usize| {
        request.len() >= min_len
            && request.get(HEADER_LEN..HEADER_LEN + DEVICE_ID_LEN) == Some(&ours[..])
    };
    let (length, payload): (u16, &[u8]) = match op {
        opcode::SEARCH if request.len() >= HEADER_LEN => (SEARCH_REPLY_LEN, &me.ipv4.octets()),
        opcode::KERNEL_INFO if addressed_to_us(KERNEL_INFO_REQUEST_LEN) => {
            // Firmware version, serial number and the rest are unknown to
            // the driver; the DSCI version at offset 34 must be 0.
            (KERNEL_INFO_REPLY_LEN, &[0; 16])
        }
        opcode::NETSTAT if addressed_to_us(NETSTAT_REQUEST_LEN) => (NETSTAT_REPLY_LEN, &[0; 4]),
        opcode::NETSTAT_PAGED if addressed_to_us(NETSTAT_PAGED_REQUEST_LEN) => {
            (NETSTAT_REPLY_LEN, &[0; 4])
        }
        _ => return None,
    };
    let [hi, lo] = length.to_be_bytes();
    let mut reply = Vec::with_capacity(usize::from(length));
    reply.extend_from_slice(&[op | opcode::REPLY, 0x00, hi, lo]);
    reply.extend_from_slice(&transaction);
    reply.extend_from_slice(&ours);
    reply.extend_from_slice(payload);
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    const ME: Identity = Identity {
        id: DeviceId {
            apid: 0x8000_6650,
            hwid: 0x6650,
            mac: [0x00, 0x90, 0xE8, 0x12, 0x34, 0x56],
        },
        ipv4: Ipv4Addr::new(192, 168, 127, 254),
    };

    /// ME's device id as the wire has it.
    const ME_WIRE: [u8; 12] = [
        0x80, 0x00, 0x66, 0x50, 0x50, 0x66, 0x00, 0x90, 0xE8, 0x12, 0x34, 0x56,
    ];

    fn with_id(head: &[u8], tail: &[u8]) -> Vec<u8> {
        [head, &ME_WIRE[..], tail].concat()
    }

    #[test]
    fn device_id_wire_layout() {
        assert_eq!(ME.id.encode(), ME_WIRE);
        assert_eq!(DeviceId::decode(&ME_WIRE), ME.id);
        // nport-toys' NPort 5110A: APID 0x00555555, model 0x511A.
        let np5110a = [
            0x00, 0x55, 0x55, 0x55, 0x1A, 0x51, 0x00, 0x90, 0xE8, 0xAA, 0xAA, 0xAA,
        ];
        let id = DeviceId::decode(&np5110a);
        assert_eq!((id.apid, id.hwid), (0x0055_5555, 0x511A));
    }

    #[test]
    fn answers_search() {
        let reply = answer(&[0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00], &ME);
        let expected = with_id(
            &[0x81, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x00],
            &[192, 168, 127, 254],
        );
        assert_eq!(reply, Some(expected));
    }

    #[test]
    fn answers_kernel_info_with_dsci_version_0() {
        let request = with_id(&[0x16, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00], &[]);
        let reply = answer(&request, &ME);
        let expected = with_id(&[0x96, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00], &[0; 16]);
        assert_eq!(reply.as_deref(), Some(&expected[..]));
        assert_eq!(expected.len(), 36);
        assert_eq!(expected.get(34..36), Some(&[0x00, 0x00][..]));
    }

    #[test]
    fn answers_netstat_with_no_entries_and_the_id_echoed() {
        let request = with_id(
            &[0x14, 0x00, 0x00, 0x16, 0x00, 0x01, 0xE2, 0x40],
            &[0x80, 0x00],
        );
        let expected = with_id(&[0x94, 0x00, 0x00, 0x18, 0x00, 0x01, 0xE2, 0x40], &[0; 4]);
        assert_eq!(answer(&request, &ME), Some(expected));
    }

    #[test]
    fn answers_paged_netstat_with_no_entries_and_the_id_echoed() {
        let request = with_id(
            &[0x1D, 0x00, 0x00, 0x18, 0x00, 0x01, 0xE2, 0x40],
            &[0x00, 0xFF, 0x00, 0x00],
        );
        let expected = with_id(&[0x9D, 0x00, 0x00, 0x18, 0x00, 0x01, 0xE2, 0x40], &[0; 4]);
        assert_eq!(answer(&request, &ME), Some(expected));
    }

    #[test]
    fn ignores_requests_for_another_device() {
        let mut other = ME_WIRE;
        if let Some(last) = other.last_mut() {
            *last ^= 0x01;
        }
        for head in [
            [0x16, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00].as_slice(),
            &[0x14, 0x00, 0x00, 0x16, 0x00, 0x01, 0xE2, 0x40],
        ] {
            let request = [head, &other[..], &[0x80, 0x00]].concat();
            let len = usize::from(head.get(3).copied().unwrap_or(0));
            assert_eq!(answer(request.get(..len).unwrap_or_default(), &ME), None);
        }
    }

    #[test]
    fn ignores_truncated_and_garbage_datagrams() {
        let netstat = with_id(
            &[0x14, 0x00, 0x00, 0x16, 0x00, 0x01, 0xE2, 0x40],
            &[0x80, 0x00],
        );
        for len in 0..netstat.len() {
            let truncated = netstat.get(..len).unwrap_or_default();
            assert_eq!(answer(truncated, &ME), None, "len {len}");
        }
        let cases: [&[u8]; 7] = [
            &[],
            &[0x01],
            &[0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00],
            // Declared length longer than the datagram, or shorter than a header.
            &[0x01, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00],
            &[0x01, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00],
            // A reply (bit 7) and an unknown opcode.
            &[0x81, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00],
            &[0x10, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00],
        ];
        for case in cases {
            assert_eq!(answer(case, &ME), None, "{case:02X?}");
        }
        // A declared length that cuts the device id off.
        let mut short = netstat.clone();
        if let Some(len) = short.get_mut(3) {
            *len = 0x0C;
        }
        assert_eq!(answer(&short, &ME), None);
    }

    #[test]
    fn ignores_bytes_after_the_declared_length() {
        let reply = answer(&[0x01, 0x00, 0x00, 0x08, 0, 0, 0, 7, 0xEE, 0xEE], &ME);
        assert_eq!(reply.as_ref().map(Vec::len), Some(24));
        assert_eq!(reply.as_ref().and_then(|r| r.get(7)), Some(&7));
    }

    proptest! {
        #[test]
        fn random_datagrams_never_panic_and_replies_are_well_formed(
            data in vec(any::<u8>(), 0..64),
        ) {
            if let Some(reply) = answer(&data, &ME) {
                let declared = match reply.get(2..4) { Some(&[hi, lo]) => Some(usize::from(u16::from_be_bytes([hi, lo]))), _ => None };
                prop_assert_eq!(declared, Some(reply.len()));
                prop_assert_eq!(reply.get(4..8), data.get(4..8));
            }
        }
    }
}
