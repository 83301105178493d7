//! Security > Allowlist (seed §3.5): which source addresses may reach which
//! services.
//!
//! An entry is an address and a netmask, as on the NPort (192.168.1.0 +
//! 255.255.255.0 allows the subnet, a 255.255.255.255 netmask one host),
//! for IPv4 and IPv6 alike, and names the services it opens (none named:
//! all). A switched-off allowlist lets everyone in. The seed's warning
//! ("ensure the address of the PC you use is in the allowlist") is a rule
//! here: [`Allowlist::check_self_lockout`] refuses a change that would shut
//! out the address making it, unless the change is forced.
//!
//! This module decides and validates; it does not refuse connections (the
//! engine's Gate does, on every listener) and it does not resolve host
//! names: the seed mentions domains, but an allowlist that depends on DNS
//! answers can be widened by whoever controls those answers.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::walk::{Obj, Walk, ip, kind};

/// Most entries an allowlist holds. The NPort 6000-G2 has 16; a Linux host
/// may front more networks, and 64 entries are still checked in well under
/// a microsecond per connection.
pub const MAX_ALLOWLIST_ENTRIES: usize = 64;

/// A service an allowlist entry opens. Serialised in kebab-case; kinds such
/// as `ssh`, `telnet` or `snmp` join as those services arrive, and existing
/// entries keep their meaning (an entry without services opens every kind,
/// including new ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// The web console and REST API.
    Management,
    /// Every data-plane listener: TCP Server, RFC 2217, UDP (and Real COM
    /// when it lands).
    Serial,
}

impl ServiceKind {
    /// Every kind, in document order.
    pub const ALL: [ServiceKind; 2] = [ServiceKind::Management, ServiceKind::Serial];

    /// The name used in configuration documents.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Management => "management",
            ServiceKind::Serial => "serial",
        }
    }

    /// The kind with this document name.
    pub fn from_name(name: &str) -> Option<ServiceKind> {
        ServiceKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Security > Allowlist.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Allowlist {
    /// Off (the default): every address may connect to every service.
    pub enabled: bool,
    /// The addresses allowed while enabled; at most
    /// [`MAX_ALLOWLIST_ENTRIES`].
    pub entries: Vec<AllowEntry>,
}

/// One allowlist row: an address range and the services it opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllowEntry {
    /// The network address (host bits cleared when read).
    pub address: IpAddr,
    /// A contiguous netmask of the same family as `address`.
    pub netmask: IpAddr,
    /// The services this entry opens; empty = all services.
    pub services: Vec<ServiceKind>,
}

/// Why an address and netmask do not make an allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllowEntryError {
    /// IPv4 address with an IPv6 netmask or the other way round.
    #[error(
        "netmask {netmask} is not of the same family as address {address}; give an IPv4 address a netmask such as 255.255.255.0 and an IPv6 address one such as ffff:ffff:ffff:ffff::"
    )]
    FamilyMismatch {
        /// The address given.
        address: IpAddr,
        /// The netmask given.
        netmask: IpAddr,
    },
    /// A netmask with a zero bit before a one bit.
    #[error(
        "netmask {netmask} is not contiguous; use one bits followed by zero bits only, such as 255.255.255.128 or ffff:ffff:ffff:ffff::"
    )]
    NonContiguousMask {
        /// The netmask given.
        netmask: IpAddr,
    },
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). Peers arriving that
    /// way are matched as IPv4, so such an entry could never match.
    #[error(
        "{address} is an IPv4 address written as IPv6; write it as IPv4 (a.b.c.d) with an IPv4 netmask"
    )]
    MappedAddress {
        /// The address given.
        address: IpAddr,
    },
}

impl AllowEntryError {
    /// The entry field the problem is reported on.
    pub fn field(&self) -> &'static str {
        match self {
            AllowEntryError::MappedAddress { .. } => "address",
            AllowEntryError::FamilyMismatch { .. } | AllowEntryError::NonContiguousMask { .. } => {
                "netmask"
            }
        }
    }
}

/// A change to the allowlist would shut out the address making it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "this change would lock out your own address {caller} from the {service} service; add an entry that covers it, or force the change"
)]
pub struct SelfLockout {
    /// The address the change is made from (IPv4-mapped addresses shown as
    /// IPv4).
    pub caller: IpAddr,
    /// The service the change is made through.
    pub service: ServiceKind,
}

impl AllowEntry {
    /// An entry from an address and a netmask. Host bits set in `address`
    /// are cleared, as the NPort does: "192.168.1.7 / 255.255.255.0" means
    /// the subnet, and storing it as 192.168.1.0 shows what is enforced.
    pub fn new(
        address: IpAddr,
        netmask: IpAddr,
        services: Vec<ServiceKind>,
    ) -> Result<AllowEntry, AllowEntryError> {
        let network = match (address, netmask) {
            (IpAddr::V6(a), _) if a.to_ipv4_mapped().is_some() => {
                return Err(AllowEntryError::MappedAddress { address });
            }
            (IpAddr::V4(a), IpAddr::V4(m)) => {
                let m = u32::from(m);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(AllowEntryError::NonContiguousMask { netmask });
                }
                IpAddr::from((u32::from(a) & m).to_be_bytes())
            }
            (IpAddr::V6(a), IpAddr::V6(m)) => {
                let m = u128::from(m);
                if m.leading_ones() + m.trailing_zeros() != 128 {
                    return Err(AllowEntryError::NonContiguousMask { netmask });
                }
                IpAddr::from((u128::from(a) & m).to_be_bytes())
            }
            _ => return Err(AllowEntryError::FamilyMismatch { address, netmask }),
        };
        Ok(AllowEntry {
            address: network,
            netmask,
            services,
        })
    }

    /// Whether `ip` lies in this entry's range. IPv4-mapped IPv6 peers
    /// (`::ffff:a.b.c.d`, what a dual-stack socket reports) match as IPv4.
    /// An entry built by hand with mismatched families matches nothing.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (ip.to_canonical(), self.address, self.netmask) {
            (IpAddr::V4(ip), IpAddr::V4(a), IpAddr::V4(m)) => {
                let m = u32::from(m);
                u32::from(ip) & m == u32::from(a) & m
            }
            (IpAddr::V6(ip), IpAddr::V6(a), IpAddr::V6(m)) => {
                let m = u128::from(m);
                u128::from(ip) & m == u128::from(a) & m
            }
            _ => false,
        }
    }

    /// Whether this entry opens `service`.
    pub fn opens(&self, service: ServiceKind) -> bool {
        self.services.is_empty() || self.services.contains(&service)
    }
}

impl Allowlist {
    /// Whether a connection from `ip` to `service` is let in.
    pub fn allows(&self, ip: IpAddr, service: ServiceKind) -> bool {
        !self.enabled
            || self
                .entries
                .iter()
                .any(|e| e.opens(service) && e.contains(ip))
    }

    /// Whether this allowlist would refuse `caller` using `service`: the
    /// seed's warning about one's own PC.
    pub fn locks_out(&self, caller: IpAddr, service: ServiceKind) -> bool {
        !self.allows(caller, service)
    }

    /// The check to run on a proposed allowlist before saving it: refused
    /// when it would shut out `caller` (the address the change comes from,
    /// over `service`), unless `force` is set.
    pub fn check_self_lockout(
        &self,
        caller: IpAddr,
        service: ServiceKind,
        force: bool,
    ) -> Result<(), SelfLockout> {
        if force || self.allows(caller, service) {
            Ok(())
        } else {
            Err(SelfLockout {
                caller: caller.to_canonical(),
                service,
            })
        }
    }
}

/// Read the `security.allowlist` section.
pub(crate) fn read_allowlist(w: &mut Walk, path: String, value: Option<&Value>) -> Allowlist {
    let mut o = Obj::new(w, path, value);
    let enabled = o.bool(w, "enabled", false);
    let epath = o.at("entries");
    let mut entries = Vec::new();
    let mut given = 0;
    match o.get("entries") {
        None => {}
        Some(Value::Array(items)) => {
            given = items.len();
            if given > MAX_ALLOWLIST_ENTRIES {
                w.err(
                    &epath,
                    format!(
                        "{given} entries, at most {MAX_ALLOWLIST_ENTRIES} are allowed; merge neighbouring addresses into subnet entries"
                    ),
                );
            }
            for (i, item) in items.iter().enumerate() {
                entries.extend(read_entry(w, format!("{epath}[{i}]"), item));
            }
        }
        Some(other) => w.err(
            &epath,
            format!(
                "expected a list of {{ address, netmask, services }} entries, found {}",
                kind(other)
            ),
        ),
    }
    if enabled && given == 0 {
        w.err(
            &o.at("enabled"),
            "the allowlist is enabled but has no entries, so it would refuse every connection; add an entry or set enabled = false",
        );
    }
    o.finish(w);
    Allowlist { enabled, entries }
}

fn read_entry(w: &mut Walk, path: String, value: &Value) -> Option<AllowEntry> {
    let mut o = Obj::new(w, path, Some(value));
    let address = match o.get("address") {
        Some(v) => ip(w, &o.at("address"), v),
        None if o.map.is_some() => {
            w.err(
                &o.at("address"),
                "missing: give the address to allow, e.g. \"192.168.1.0\"",
            );
            None
        }
        None => None,
    };
    let netmask = match o.get("netmask") {
        Some(v) => {
            let mask = v.as_str().and_then(|s| s.parse::<IpAddr>().ok());
            if mask.is_none() {
                w.err(
                    &o.at("netmask"),
                    "expected a netmask such as \"255.255.255.0\" or \"ffff:ffff:ffff:ffff::\"",
                );
            }
            mask
        }
        None if o.map.is_some() => {
            w.err(
                &o.at("netmask"),
                "missing: give a netmask, \"255.255.255.255\" for one IPv4 host",
            );
            None
        }
        None => None,
    };
    let services = read_services(w, &mut o);
    let (Some(address), Some(netmask)) = (address, netmask) else {
        o.finish(w);
        return None;
    };
    let entry = AllowEntry::new(address, netmask, services);
    if let Err(e) = &entry {
        w.err(&o.at(e.field()), e.to_string());
    }
    o.finish(w);
    entry.ok()
}

fn read_services(w: &mut Walk, o: &mut Obj<'_>) -> Vec<ServiceKind> {
    let path = o.at("services");
    let Some(v) = o.get("services") else {
        return Vec::new();
    };
    let names: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
    let Some(items) = v.as_array() else {
        w.err(
            &path,
            format!(
                "expected a list of services (empty = all): {}",
                names.join(", ")
            ),
        );
        return Vec::new();
    };
    let mut services = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = format!("{path}[{i}]");
        match item.as_str().map(|s| (s, ServiceKind::from_name(s))) {
            Some((_, Some(k))) if services.contains(&k) => {
                w.err(&here, format!("{k} is listed twice"));
            }
            Some((_, Some(k))) => services.push(k),
            Some((s, None)) => w.err(
                &here,
                format!(
                    "unknown service \"{s}\"; expected one of: {}",
                    names.join(", ")
                ),
            ),
            None => w.err(
                &here,
                format!(
                    "expected a service name ({}), found {}",
                    names.join(", "),
                    kind(item)
                ),
            ),
        }
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: &Value) -> (Allowlist, Vec<String>) {
        let mut w = Walk::default();
        let a = read_allowlist(&mut w, "security.allowlist".into(), Some(v));
        (a, w.errors.iter().map(|e| e.to_string()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn entry(address: &str, netmask: &str, services: &[ServiceKind]) -> AllowEntry {
        AllowEntry::new(ip(address), ip(netmask), services.to_vec()).unwrap()
    }

    fn list(entries: Vec<AllowEntry>) -> Allowlist {
        Allowlist {
            enabled: true,
            entries,
        }
    }

    #[test]
    fn disabled_allowlist_lets_everyone_in() {
        let a = Allowlist::default();
        assert!(a.allows(ip("203.0.113.9"), ServiceKind::Management));
        assert!(a.allows(ip("2001:db8::1"), ServiceKind::Serial));
        let off = Allowlist {
            enabled: false,
            entries: vec![entry("10.0.0.1", "255.255.255.255", &[])],
        };
        assert!(off.allows(ip("192.0.2.1"), ServiceKind::Serial));
    }

    /// The seed's table of examples, row by row.
    #[test]
    fn ipv4_ranges_follow_the_seed_table() {
        let host = list(vec![entry("192.168.1.120", "255.255.255.255", &[])]);
        assert!(host.allows(ip("192.168.1.120"), ServiceKind::Serial));
        assert!(!host.allows(ip("192.168.1.121"), ServiceKind::Serial));

        let low = list(vec![entry("192.168.1.0", "255.255.255.128", &[])]);
        assert!(low.allows(ip("192.168.1.1"), ServiceKind::Serial));
        assert!(low.allows(ip("192.168.1.126"), ServiceKind::Serial));
        assert!(!low.allows(ip("192.168.1.129"), ServiceKind::Serial));

        let high = list(vec![entry("192.168.1.128", "255.255.255.128", &[])]);
        assert!(high.allows(ip("192.168.1.254"), ServiceKind::Serial));
        assert!(!high.allows(ip("192.168.1.1"), ServiceKind::Serial));

        let wide = list(vec![entry("192.168.0.0", "255.255.0.0", &[])]);
        assert!(wide.allows(ip("192.168.255.254"), ServiceKind::Serial));
        assert!(!wide.allows(ip("192.169.0.1"), ServiceKind::Serial));
    }

    #[test]
    fn ipv6_entries_match_by_prefix() {
        let a = list(vec![entry("2001:db8:1:2::", "ffff:ffff:ffff:ffff::", &[])]);
        assert!(a.allows(ip("2001:db8:1:2::abcd"), ServiceKind::Serial));
        assert!(!a.allows(ip("2001:db8:1:3::1"), ServiceKind::Serial));
        // An IPv6 entry never matches an IPv4 peer, and the other way round.
        assert!(!a.allows(ip("32.1.13.184"), ServiceKind::Serial));
        let v4 = list(vec![entry("0.0.0.0", "0.0.0.0", &[])]);
        assert!(!v4.allows(ip("2001:db8::1"), ServiceKind::Serial));
    }

    #[test]
    fn ipv4_mapped_peers_match_as_ipv4() {
        let a = list(vec![entry("127.0.0.1", "255.255.255.255", &[])]);
        assert!(a.allows(ip("::ffff:127.0.0.1"), ServiceKind::Serial));
        assert!(!a.allows(ip("::ffff:127.0.0.2"), ServiceKind::Serial));
    }

    #[test]
    fn services_restrict_what_an_entry_opens() {
        let a = list(vec![
            entry("10.0.0.0", "255.0.0.0", &[ServiceKind::Serial]),
            entry("10.1.1.1", "255.255.255.255", &[ServiceKind::Management]),
        ]);
        assert!(a.allows(ip("10.2.3.4"), ServiceKind::Serial));
        assert!(!a.allows(ip("10.2.3.4"), ServiceKind::Management));
        assert!(a.allows(ip("10.1.1.1"), ServiceKind::Management));
        assert!(a.allows(ip("10.1.1.1"), ServiceKind::Serial));
    }

    #[test]
    fn host_bits_in_the_address_are_masked() {
        let e = entry("192.168.1.77", "255.255.255.0", &[]);
        assert_eq!(e.address, ip("192.168.1.0"));
        let e6 = entry("2001:db8::77", "ffff:ffff:ffff:ffff::", &[]);
        assert_eq!(e6.address, ip("2001:db8::"));
        let (a, errors) = read(&json!({
            "enabled": true,
            "entries": [{"address": "192.168.1.77", "netmask": "255.255.255.0"}],
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(a.entries[0].address, ip("192.168.1.0"));
    }

    #[test]
    fn masks_must_be_contiguous_and_of_the_address_family() {
        use AllowEntryError::*;
        let e = |a: &str, m: &str| AllowEntry::new(ip(a), ip(m), Vec::new());
        assert!(matches!(
            e("10.0.0.0", "255.0.255.0"),
            Err(NonContiguousMask { .. })
        ));
        assert!(matches!(
            e("2001:db8::", "ffff::ffff"),
            Err(NonContiguousMask { .. })
        ));
        assert!(matches!(
            e("10.0.0.0", "ffff::"),
            Err(FamilyMismatch { .. })
        ));
        assert!(matches!(
            e("2001:db8::", "255.255.0.0"),
            Err(FamilyMismatch { .. })
        ));
        assert!(matches!(
            e("::ffff:10.0.0.1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            Err(MappedAddress { .. })
        ));
        assert!(e("0.0.0.0", "0.0.0.0").is_ok());
        assert!(e("::", "::").is_ok());
        assert!(e("10.0.0.1", "255.255.255.255").is_ok());
    }

    #[test]
    fn reader_reports_every_bad_field_with_its_path() {
        let (_, errors) = read(&json!({
            "enabled": "yes",
            "entries": [
                {"address": "10.0.0.0", "netmask": "ffff::"},
                {"address": "10.0.0.0", "netmask": "255.0.255.0"},
                {"address": "10.0.0.300", "netmask": "255.0.0.0"},
                {"address": "2001:db8::", "netmask": "ffff:0:ffff::"},
                {"address": "10.0.0.0", "netmask": 24},
                {"address": "10.0.0.0", "netmask": "255.0.0.0", "services": ["serial", "ftp", "serial", 3]},
                {"netmask": "255.0.0.0", "colour": "red"},
                "10.0.0.0/8",
            ],
            "extra": 1,
        }));
        let expect = [
            "security.allowlist.enabled:",
            "security.allowlist.entries[0].netmask: netmask ffff:: is not of the same family",
            "security.allowlist.entries[1].netmask: netmask 255.0.255.0 is not contiguous",
            "security.allowlist.entries[2].address:",
            "security.allowlist.entries[3].netmask: netmask ffff:0:ffff:: is not contiguous",
            "security.allowlist.entries[4].netmask: expected a netmask",
            "security.allowlist.entries[5].services[1]: unknown service \"ftp\"",
            "security.allowlist.entries[5].services[2]: serial is listed twice",
            "security.allowlist.entries[5].services[3]: expected a service name",
            "security.allowlist.entries[6].address: missing",
            "security.allowlist.entries[6].colour: unknown field",
            "security.allowlist.entries[7]: expected a table",
            "security.allowlist.extra: unknown field",
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for (got, want) in errors.iter().zip(expect) {
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
    }

    #[test]
    fn too_many_entries_are_refused_and_the_maximum_is_accepted() {
        let rows = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"address": format!("10.0.{i}.0"), "netmask": "255.255.255.0"}))
                .collect()
        };
        let (a, errors) = read(&json!({"enabled": true, "entries": rows(MAX_ALLOWLIST_ENTRIES)}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(a.entries.len(), MAX_ALLOWLIST_ENTRIES);
        let (_, errors) =
            read(&json!({"enabled": true, "entries": rows(MAX_ALLOWLIST_ENTRIES + 1)}));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("security.allowlist.entries: 65 entries, at most 64"));
    }

    #[test]
    fn enabled_without_entries_is_refused() {
        let (_, errors) = read(&json!({"enabled": true}));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(
            "security.allowlist.enabled: the allowlist is enabled but has no entries"
        ));
        let (a, errors) = read(&json!({"enabled": false, "entries": []}));
        assert!(errors.is_empty() && a == Allowlist::default(), "{errors:?}");
    }

    #[test]
    fn round_trips_through_the_document() {
        let a = Allowlist {
            enabled: true,
            entries: vec![
                entry("192.168.1.0", "255.255.255.128", &[]),
                entry(
                    "2001:db8::",
                    "ffff:ffff:ffff:ffff::",
                    &[ServiceKind::Serial],
                ),
                entry(
                    "10.9.8.7",
                    "255.255.255.255",
                    &[ServiceKind::Management, ServiceKind::Serial],
                ),
            ],
        };
        let doc = serde_json::to_value(&a).unwrap();
        assert_eq!(doc["entries"][1]["services"], json!(["serial"]));
        let (back, errors) = read(&doc);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back, a);
        let (back, errors) = read(&serde_json::to_value(Allowlist::default()).unwrap());
        assert!(
            errors.is_empty() && back == Allowlist::default(),
            "{errors:?}"
        );
    }

    #[test]
    fn service_names_match_their_serde_names() {
        for k in ServiceKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.name()));
            assert_eq!(ServiceKind::from_name(k.name()), Some(k));
        }
    }

    #[test]
    fn a_change_that_shuts_out_the_caller_is_refused_unless_forced() {
        let a = list(vec![entry("10.0.0.0", "255.0.0.0", &[ServiceKind::Serial])]);
        assert!(a.locks_out(ip("10.1.2.3"), ServiceKind::Management));
        assert!(!a.locks_out(ip("10.1.2.3"), ServiceKind::Serial));
        let err = a
            .check_self_lockout(ip("::ffff:10.1.2.3"), ServiceKind::Management, false)
            .unwrap_err();
        assert_eq!(
            err,
            SelfLockout {
                caller: ip("10.1.2.3"),
                service: ServiceKind::Management
            }
        );
        assert!(
            err.to_string()
                .contains("lock out your own address 10.1.2.3")
        );
        assert!(
            a.check_self_lockout(ip("10.1.2.3"), ServiceKind::Management, true)
                .is_ok()
        );
        assert!(
            a.check_self_lockout(ip("10.1.2.3"), ServiceKind::Serial, false)
                .is_ok()
        );
    }
}
