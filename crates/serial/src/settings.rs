//! Serial communication parameters: baud rate, character format, flow
//! control and the electrical interface (RS-232/422/485).
//!
//! These are the per-port parameters of the NPort 6000 (see
//! `spec/nport-operation-modes.md` §6). The types are typed values, parsed
//! once: a [`BaudRate`] is always in range, a [`DataBits`] is always 5..=8.
//! They do not know NPort factory defaults: `Default` here is the plain
//! "115200 8N1, no flow control, RS-232"; the configuration layer picks the
//! NPort defaults (which use RTS/CTS).
//!
//! Serde names (TOML / JSON):
//!
//! | type | wire form |
//! |---|---|
//! | [`BaudRate`] | integer, `9600` |
//! | [`DataBits`] | integer `5`..`8` |
//! | [`Parity`] | `"none"`, `"odd"`, `"even"`, `"mark"`, `"space"` |
//! | [`StopBits`] | number `1`, `1.5`, `2` (strings `"1"`, `"1.5"`, `"2"` are accepted too) |
//! | [`FlowControl`] | `"none"`, `"rts-cts"`, `"xon-xoff"`, `"dtr-dsr"` |
//! | [`Interface`] | `"rs232"`, `"rs422"`, `"rs485-2wire"`, `"rs485-4wire"` |
//!
//! Whether a driver accepts a value (a custom baud rate, mark parity, DTR/DSR
//! flow) is only known when the settings are applied to a device.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SerialError;

/// A baud rate in bits per second, 50..=16 000 000.
///
/// Any integer in range is accepted ("custom" or "manual" baud rates, which
/// Linux sets with `BOTHER`); whether the UART can produce it is checked when
/// the settings are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct BaudRate(u32);

impl BaudRate {
    /// The lowest accepted rate.
    pub const MIN: u32 = 50;
    /// The highest accepted rate (fast USB and PCIe UARTs reach 12-16 Mbit/s).
    pub const MAX: u32 = 16_000_000;
    /// The NPort 6000 list of standard rates.
    pub const STANDARD: &'static [u32] = &[
        50, 75, 110, 134, 150, 300, 600, 1200, 1800, 2400, 4800, 7200, 9600, 19200, 38400, 57600,
        115_200, 230_400, 460_800, 921_600,
    ];

    /// A rate in range 50..=16 000 000.
    pub fn new(bits_per_second: u32) -> Result<BaudRate, SerialError> {
        if (Self::MIN..=Self::MAX).contains(&bits_per_second) {
            Ok(BaudRate(bits_per_second))
        } else {
            Err(SerialError::InvalidSetting {
                field: "baud",
                reason: format!(
                    "{bits_per_second} is out of range; use a rate from {} to {}",
                    Self::MIN,
                    Self::MAX
                ),
            })
        }
    }

    /// The rate in bits per second.
    pub fn get(self) -> u32 {
        self.0
    }

    /// True for the rates in [`BaudRate::STANDARD`].
    pub fn is_standard(self) -> bool {
        Self::STANDARD.contains(&self.0)
    }
}

impl Default for BaudRate {
    fn default() -> Self {
        BaudRate(115_200)
    }
}

impl TryFrom<u32> for BaudRate {
    type Error = SerialError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        BaudRate::new(value)
    }
}

impl From<BaudRate> for u32 {
    fn from(value: BaudRate) -> u32 {
        value.0
    }
}

impl fmt::Display for BaudRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Bits per character, without start, parity and stop bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum DataBits {
    /// 5 bits (Baudot-era devices; allows 1.5 stop bits).
    Five,
    /// 6 bits.
    Six,
    /// 7 bits (often with even parity: "7E1").
    Seven,
    /// 8 bits.
    #[default]
    Eight,
}

impl DataBits {
    /// The number of bits, 5..=8.
    pub fn bits(self) -> u8 {
        match self {
            DataBits::Five => 5,
            DataBits::Six => 6,
            DataBits::Seven => 7,
            DataBits::Eight => 8,
        }
    }
}

impl TryFrom<u8> for DataBits {
    type Error = SerialError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            5 => Ok(DataBits::Five),
            6 => Ok(DataBits::Six),
            7 => Ok(DataBits::Seven),
            8 => Ok(DataBits::Eight),
            other => Err(SerialError::InvalidSetting {
                field: "data_bits",
                reason: format!("{other} is not a character size; use 5, 6, 7 or 8"),
            }),
        }
    }
}

impl From<DataBits> for u8 {
    fn from(value: DataBits) -> u8 {
        value.bits()
    }
}

impl fmt::Display for DataBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.bits())
    }
}

/// Parity bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
    /// Parity bit always 1 (Linux `CMSPAR|PARODD`).
    Mark,
    /// Parity bit always 0 (Linux `CMSPAR`).
    Space,
}

impl Parity {
    /// The serde / configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Parity::None => "none",
            Parity::Odd => "odd",
            Parity::Even => "even",
            Parity::Mark => "mark",
            Parity::Space => "space",
        }
    }

    /// The letter of the "8N1" notation.
    pub fn letter(self) -> char {
        match self {
            Parity::None => 'N',
            Parity::Odd => 'O',
            Parity::Even => 'E',
            Parity::Mark => 'M',
            Parity::Space => 'S',
        }
    }
}

impl FromStr for Parity {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Parity::None,
            Parity::Odd,
            Parity::Even,
            Parity::Mark,
            Parity::Space,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| SerialError::InvalidSetting {
            field: "parity",
            reason: format!("{s:?} is not a parity; use none, odd, even, mark or space"),
        })
    }
}

impl fmt::Display for Parity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stop bits.
///
/// Serialized as a number (`1`, `1.5`, `2`); strings `"1"`, `"1.5"`, `"2"`
/// are accepted when reading. Linux has a single `CSTOPB` flag: a 16550-type
/// UART sends 1.5 stop bits when it is set with 5 data bits and 2 otherwise.
/// So [`StopBits::OnePointFive`] and [`StopBits::Two`] both set `CSTOPB`, and
/// 1.5 is only what is sent with [`DataBits::Five`]
/// ([`SerialSettings::validate`] insists on that combination; `apply` on a
/// device does not, because RFC 2217 and Real COM hosts set data size and
/// stop size one at a time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StopBits {
    /// One stop bit.
    #[default]
    One,
    /// One and a half stop bits (5 data bits only).
    OnePointFive,
    /// Two stop bits.
    Two,
}

impl StopBits {
    /// `"1"`, `"1.5"` or `"2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopBits::One => "1",
            StopBits::OnePointFive => "1.5",
            StopBits::Two => "2",
        }
    }

    fn invalid(what: impl fmt::Display) -> SerialError {
        SerialError::InvalidSetting {
            field: "stop_bits",
            reason: format!("{what} is not a number of stop bits; use 1, 1.5 or 2"),
        }
    }
}

impl FromStr for StopBits {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1" => Ok(StopBits::One),
            "1.5" => Ok(StopBits::OnePointFive),
            "2" => Ok(StopBits::Two),
            other => Err(StopBits::invalid(format_args!("{other:?}"))),
        }
    }
}

impl fmt::Display for StopBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StopBits {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StopBits::One => serializer.serialize_u8(1),
            StopBits::OnePointFive => serializer.serialize_f64(1.5),
            StopBits::Two => serializer.serialize_u8(2),
        }
    }
}

impl<'de> Deserialize<'de> for StopBits {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = StopBits;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("1, 1.5 or 2")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StopBits, E> {
                match v {
                    1 => Ok(StopBits::One),
                    2 => Ok(StopBits::Two),
                    other => Err(E::custom(StopBits::invalid(other))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StopBits, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(StopBits::invalid(v))),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StopBits, E> {
                if v == 1.0 {
                    Ok(StopBits::One)
                } else if v == 1.5 {
                    Ok(StopBits::OnePointFive)
                } else if v == 2.0 {
                    Ok(StopBits::Two)
                } else {
                    Err(E::custom(StopBits::invalid(v)))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StopBits, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Flow control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowControl {
    /// No flow control.
    #[default]
    None,
    /// Hardware flow control on RTS/CTS (Linux `CRTSCTS`).
    RtsCts,
    /// Software flow control with XON/XOFF characters (Linux `IXON|IXOFF`).
    XonXoff,
    /// Hardware flow control on DTR/DSR. Linux termios has no such mode, so
    /// a real tty refuses it with [`SerialError::Unsupported`]; simulated and
    /// fake devices record it.
    DtrDsr,
}

impl FlowControl {
    /// The serde / configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowControl::None => "none",
            FlowControl::RtsCts => "rts-cts",
            FlowControl::XonXoff => "xon-xoff",
            FlowControl::DtrDsr => "dtr-dsr",
        }
    }
}

impl FromStr for FlowControl {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            FlowControl::None,
            FlowControl::RtsCts,
            FlowControl::XonXoff,
            FlowControl::DtrDsr,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| SerialError::InvalidSetting {
            field: "flow",
            reason: format!("{s:?} is not a flow control; use none, rts-cts, xon-xoff or dtr-dsr"),
        })
    }
}

impl fmt::Display for FlowControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The electrical interface of the port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interface {
    /// RS-232.
    #[default]
    #[serde(rename = "rs232")]
    Rs232,
    /// RS-422 (full duplex, point to point).
    #[serde(rename = "rs422")]
    Rs422,
    /// RS-485 half duplex on one pair; the transmitter is enabled only while
    /// sending and the port does not hear its own transmission.
    #[serde(rename = "rs485-2wire")]
    Rs485TwoWire,
    /// RS-485 full duplex on two pairs.
    #[serde(rename = "rs485-4wire")]
    Rs485FourWire,
}

impl Interface {
    /// The serde / configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Rs232 => "rs232",
            Interface::Rs422 => "rs422",
            Interface::Rs485TwoWire => "rs485-2wire",
            Interface::Rs485FourWire => "rs485-4wire",
        }
    }
}

impl FromStr for Interface {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Interface::Rs232,
            Interface::Rs422,
            Interface::Rs485TwoWire,
            Interface::Rs485FourWire,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| SerialError::InvalidSetting {
            field: "interface",
            reason: format!(
                "{s:?} is not an interface; use rs232, rs422, rs485-2wire or rs485-4wire"
            ),
        })
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the driver handles RTS around a transmission in RS-422/485 modes
/// (Linux `struct serial_rs485`). Ignored on RS-232.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rs485Settings {
    /// RTS level while sending (`SER_RS485_RTS_ON_SEND`).
    pub rts_on_send: bool,
    /// RTS level after sending (`SER_RS485_RTS_AFTER_SEND`).
    pub rts_after_send: bool,
    /// Milliseconds between raising RTS and the first bit, 0..=100.
    pub delay_rts_before_send_ms: u32,
    /// Milliseconds between the last bit and dropping RTS, 0..=100.
    pub delay_rts_after_send_ms: u32,
}

impl Rs485Settings {
    /// The largest delay Linux accepts (`RS485_MAX_RTS_DELAY`); the kernel
    /// silently clamps larger values, ttyward refuses them instead.
    pub const MAX_DELAY_MS: u32 = 100;

    fn check_delays(&self) -> Result<(), SerialError> {
        for (field, value) in [
            (
                "rs485.delay_rts_before_send_ms",
                self.delay_rts_before_send_ms,
            ),
            (
                "rs485.delay_rts_after_send_ms",
                self.delay_rts_after_send_ms,
            ),
        ] {
            if value > Self::MAX_DELAY_MS {
                return Err(SerialError::InvalidSetting {
                    field,
                    reason: format!(
                        "{value} ms is longer than Linux allows; use 0 to {} ms",
                        Self::MAX_DELAY_MS
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Default for Rs485Settings {
    fn default() -> Self {
        Rs485Settings {
            rts_on_send: true,
            rts_after_send: false,
            delay_rts_before_send_ms: 0,
            delay_rts_after_send_ms: 0,
        }
    }
}

/// Everything that [`crate::SerialDevice::apply`] sets on a port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SerialSettings {
    /// Baud rate.
    pub baud: BaudRate,
    /// Character size.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Flow control.
    pub flow: FlowControl,
    /// Electrical interface.
    pub interface: Interface,
    /// RTS handling for RS-422/485.
    pub rs485: Rs485Settings,
}

impl SerialSettings {
    /// Checks combinations a configuration file should not contain:
    ///
    /// * 1.5 stop bits need 5 data bits (a UART sends 2 otherwise);
    /// * RS-422/485 allow only no flow control or XON/XOFF, as on the NPort
    ///   (RTS is the transmitter enable there);
    /// * RS-485 RTS delays are at most 100 ms.
    ///
    /// Devices check only the last two when applying, see [`StopBits`].
    pub fn validate(&self) -> Result<(), SerialError> {
        if self.stop_bits == StopBits::OnePointFive && self.data_bits != DataBits::Five {
            return Err(SerialError::InvalidSetting {
                field: "stop_bits",
                reason: format!(
                    "1.5 stop bits exist only with 5 data bits, not {}; use 1 or 2 stop bits",
                    self.data_bits
                ),
            });
        }
        self.check_for_apply()
    }

    /// The checks every device makes in `apply`.
    pub(crate) fn check_for_apply(&self) -> Result<(), SerialError> {
        if self.interface != Interface::Rs232
            && matches!(self.flow, FlowControl::RtsCts | FlowControl::DtrDsr)
        {
            return Err(SerialError::InvalidSetting {
                field: "flow",
                reason: format!(
                    "{} flow control is not possible on {}; use none or xon-xoff",
                    self.flow, self.interface
                ),
            });
        }
        self.rs485.check_delays()
    }
}

/// "115200 8N1, flow none, rs232".
impl fmt::Display for SerialSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}{}{}, flow {}, {}",
            self.baud,
            self.data_bits,
            self.parity.letter(),
            self.stop_bits,
            self.flow,
            self.interface
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::Error as ValueError;

    fn from_u64<'de, T: Deserialize<'de>>(v: u64) -> Result<T, ValueError> {
        T::deserialize(v.into_deserializer())
    }
    fn from_f64<'de, T: Deserialize<'de>>(v: f64) -> Result<T, ValueError> {
        T::deserialize(v.into_deserializer())
    }
    fn from_str<'de, T: Deserialize<'de>>(v: &'de str) -> Result<T, ValueError> {
        T::deserialize(v.into_deserializer())
    }

    #[test]
    fn baud_rate_accepts_the_range() {
        assert_eq!(BaudRate::new(50).unwrap().get(), 50);
        assert_eq!(BaudRate::new(250_000).unwrap().get(), 250_000);
        assert_eq!(BaudRate::new(16_000_000).unwrap().get(), 16_000_000);
        assert_eq!(BaudRate::default().get(), 115_200);
    }

    #[test]
    fn baud_rate_rejects_out_of_range() {
        for bad in [0, 1, 49, 16_000_001, u32::MAX] {
            let err = BaudRate::new(bad).unwrap_err();
            assert!(
                matches!(err, SerialError::InvalidSetting { field: "baud", .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn standard_rates_are_valid_and_sorted() {
        assert!(BaudRate::STANDARD.windows(2).all(|w| w[0] < w[1]));
        for &rate in BaudRate::STANDARD {
            assert!(BaudRate::new(rate).unwrap().is_standard());
        }
        assert!(!BaudRate::new(250_000).unwrap().is_standard());
    }

    #[test]
    fn baud_rate_deserializes_with_validation() {
        assert_eq!(
            from_u64::<BaudRate>(9600).unwrap(),
            BaudRate::new(9600).unwrap()
        );
        let err = from_u64::<BaudRate>(10).unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn data_bits_convert_both_ways() {
        for bits in 5..=8u8 {
            assert_eq!(DataBits::try_from(bits).unwrap().bits(), bits);
            assert_eq!(from_u64::<DataBits>(bits.into()).unwrap().bits(), bits);
        }
        assert!(DataBits::try_from(4).is_err());
        assert!(DataBits::try_from(9).is_err());
        assert!(from_u64::<DataBits>(9).is_err());
    }

    #[test]
    fn enums_use_documented_names() {
        assert_eq!(from_str::<Parity>("mark").unwrap(), Parity::Mark);
        assert_eq!(
            from_str::<FlowControl>("rts-cts").unwrap(),
            FlowControl::RtsCts
        );
        assert_eq!(
            from_str::<FlowControl>("xon-xoff").unwrap(),
            FlowControl::XonXoff
        );
        assert_eq!(
            from_str::<FlowControl>("dtr-dsr").unwrap(),
            FlowControl::DtrDsr
        );
        assert_eq!(
            from_str::<Interface>("rs485-2wire").unwrap(),
            Interface::Rs485TwoWire
        );
        assert_eq!(
            from_str::<Interface>("rs485-4wire").unwrap(),
            Interface::Rs485FourWire
        );
        assert_eq!(from_str::<Interface>("rs422").unwrap(), Interface::Rs422);
        assert!(from_str::<Parity>("Odd").is_err());
        // as_str / FromStr agree with serde
        for p in [
            Parity::None,
            Parity::Odd,
            Parity::Even,
            Parity::Mark,
            Parity::Space,
        ] {
            assert_eq!(from_str::<Parity>(p.as_str()).unwrap(), p);
            assert_eq!(p.as_str().parse::<Parity>().unwrap(), p);
        }
        for i in [
            Interface::Rs232,
            Interface::Rs422,
            Interface::Rs485TwoWire,
            Interface::Rs485FourWire,
        ] {
            assert_eq!(from_str::<Interface>(i.as_str()).unwrap(), i);
            assert_eq!(i.as_str().parse::<Interface>().unwrap(), i);
        }
        for v in [
            FlowControl::None,
            FlowControl::RtsCts,
            FlowControl::XonXoff,
            FlowControl::DtrDsr,
        ] {
            assert_eq!(v.as_str().parse::<FlowControl>().unwrap(), v);
        }
    }

    #[test]
    fn stop_bits_accept_numbers_and_strings() {
        assert_eq!(from_u64::<StopBits>(1).unwrap(), StopBits::One);
        assert_eq!(from_u64::<StopBits>(2).unwrap(), StopBits::Two);
        assert_eq!(from_f64::<StopBits>(1.5).unwrap(), StopBits::OnePointFive);
        assert_eq!(from_f64::<StopBits>(2.0).unwrap(), StopBits::Two);
        assert_eq!(from_str::<StopBits>("1.5").unwrap(), StopBits::OnePointFive);
        assert!(from_u64::<StopBits>(3).is_err());
        assert!(from_f64::<StopBits>(1.25).is_err());
        assert!(from_str::<StopBits>("one").is_err());
    }

    #[test]
    fn default_is_115200_8n1_rs232() {
        let s = SerialSettings::default();
        assert_eq!(s.to_string(), "115200 8N1, flow none, rs232");
        assert!(s.rs485.rts_on_send && !s.rs485.rts_after_send);
        s.validate().unwrap();
    }

    #[test]
    fn one_and_a_half_stop_bits_need_five_data_bits() {
        let mut s = SerialSettings {
            stop_bits: StopBits::OnePointFive,
            ..Default::default()
        };
        assert!(s.validate().is_err());
        assert!(s.check_for_apply().is_ok());
        s.data_bits = DataBits::Five;
        s.validate().unwrap();
    }

    #[test]
    fn rs485_refuses_hardware_flow_and_long_delays() {
        let mut s = SerialSettings {
            interface: Interface::Rs485TwoWire,
            flow: FlowControl::RtsCts,
            ..Default::default()
        };
        assert!(s.check_for_apply().is_err());
        s.flow = FlowControl::XonXoff;
        s.check_for_apply().unwrap();
        s.rs485.delay_rts_after_send_ms = 101;
        assert!(s.check_for_apply().is_err());
    }
}
