//! Which serial ports this host has, for the daemon's first configuration.
//!
//! Read from sysfs, not by opening devices: `/sys/class/tty/ttyUSB*` and
//! `ttyACM*` are USB adapters and always count; `ttyS*` counts only when its
//! `type` attribute is not 0 (PORT_UNKNOWN), because the kernel creates
//! placeholder `ttyS` nodes for UARTs that do not exist.

use std::path::{Path, PathBuf};

/// Serial device paths under `/dev`, in a stable order (ttyS, then ttyUSB,
/// then ttyACM, each by number).
pub fn serial_ports() -> Vec<PathBuf> {
    serial_ports_in(Path::new("/sys/class/tty"))
}

fn serial_ports_in(sysfs: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(sysfs) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, u32, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (rank, prefix) = [(0, "ttyS"), (1, "ttyUSB"), (2, "ttyACM")]
                .into_iter()
                .find(|(_, p)| name.starts_with(p))?;
            let number: u32 = name.get(prefix.len()..)?.parse().ok()?;
            if rank == 0 {
                let kind = std::fs::read_to_string(e.path().join("type")).ok()?;
                if kind.trim() == "0" {
                    return None;
                }
            }
            Some((rank, number, name))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, _, name)| Path::new("/dev").join(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_placeholder_uarts_and_orders_by_kind_and_number() {
        let dir = std::env::temp_dir().join(format!("ttyward-discover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, kind) in [
            ("ttyS0", Some("4")),
            ("ttyS1", Some("0")),
            ("ttyS10", Some("4")),
            ("ttyUSB0", None),
            ("ttyACM3", None),
            ("tty1", None),
            ("console", None),
        ] {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).expect("mkdir");
            if let Some(k) = kind {
                std::fs::write(d.join("type"), format!("{k}\n")).expect("type");
            }
        }
        let got: Vec<String> = serial_ports_in(&dir)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            got,
            ["/dev/ttyS0", "/dev/ttyS10", "/dev/ttyUSB0", "/dev/ttyACM3"]
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
