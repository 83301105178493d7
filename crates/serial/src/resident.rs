//! Giving back the executable's startup pages once the ports are up.
//!
//! Linux maps the page cache around every page fault on a file mapping in
//! 64 KiB windows (fault-around), so the resident part of the executable is
//! every window the process ever touched. Most of what `ttyward` touches
//! runs once, at start: argument parsing, configuration validation, TLS and
//! logging set-up. In a 20 MB binary that left 3.5–4 MiB of text mapped for
//! a bridge whose data path needs a few hundred KiB of it.
//!
//! [`release_executable_pages`] unmaps the clean pages of the executable's
//! read-only mappings from this process (`MADV_DONTNEED`). The pages stay in
//! the page cache; the code that still runs faults its windows back in. The
//! writable mappings, and any read-only one that holds a page written before
//! it became read-only (relocations), are left alone: only pages identical
//! to the file are given back.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::sys;

/// One mapping of `/proc/self/smaps`, as far as this module needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub start: usize,
    pub end: usize,
    pub writable: bool,
    pub private: bool,
    pub path: Vec<u8>,
    /// Pages copied on write (or otherwise anonymous), in KiB.
    pub anonymous_kb: u64,
    pub rss_kb: u64,
}

impl Mapping {
    /// Read-only, private, file-backed, and every resident page still the
    /// file's own.
    pub(crate) fn is_clean_file(&self) -> bool {
        !self.writable && self.private && !self.path.is_empty() && self.anonymous_kb == 0
    }
}

/// Unmaps the clean pages of this executable's read-only mappings; returns
/// how many KiB were resident in them.
pub fn release_executable_pages() -> io::Result<u64> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read("/proc/self/smaps")?;
    let mut released = 0;
    for mapping in parse_smaps(&smaps) {
        if OsStr::from_bytes(&mapping.path) == exe.as_os_str() && mapping.is_clean_file() {
            sys::release_clean_file_pages(&mapping)?;
            released += mapping.rss_kb;
        }
    }
    Ok(released)
}

/// The mappings of an smaps text. A line it cannot read ends the mapping it
/// belongs to as "not clean" (no `Anonymous:` count), so it is never
/// released.
pub(crate) fn parse_smaps(text: &[u8]) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if let Some(mapping) = parse_header(line) {
            mappings.push(mapping);
        } else if let Some(last) = mappings.last_mut() {
            if let Some(kb) = field_kb(line, b"Anonymous:") {
                last.anonymous_kb = kb;
            } else if let Some(kb) = field_kb(line, b"Rss:") {
                last.rss_kb = kb;
            }
        }
    }
    mappings
}

/// `start-end perms offset dev inode [path]`; `None` for a field line.
fn parse_header(line: &[u8]) -> Option<Mapping> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let (start, end) = std::str::from_utf8(range).ok()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    if perms.len() != 4 || end <= start {
        return None;
    }
    // offset, dev, inode, then the path after the padding.
    let (_offset, _dev, _inode) = (fields.next()?, fields.next()?, fields.next()?);
    let path = fields
        .next()
        .unwrap_or_default()
        .trim_ascii_start()
        .to_vec();
    Some(Mapping {
        start,
        end,
        writable: perms.get(1) == Some(&b'w'),
        private: perms.get(3) == Some(&b'p'),
        path,
        // Unknown until the Anonymous: line: not clean.
        anonymous_kb: u64::MAX,
        rss_kb: 0,
    })
}

/// `Name:   123 kB`.
fn field_kb(line: &[u8], name: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(name)?;
    let digits = rest.trim_ascii().strip_suffix(b"kB")?.trim_ascii();
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &[u8] = b"\
5600a0000000-5600a0200000 r--p 00000000 08:01 4242                       /opt/ttyward bin
Size:               2048 kB
Rss:                 800 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw
5600a0200000-5600a0e00000 r-xp 00200000 08:01 4242                       /opt/ttyward bin
Rss:                3700 kB
Anonymous:             0 kB
5600a0e00000-5600a0f00000 r--p 00e00000 08:01 4242                       /opt/ttyward bin
Rss:                 420 kB
Anonymous:           420 kB
5600a0f00000-5600a0f10000 rw-p 00f00000 08:01 4242                       /opt/ttyward bin
Rss:                  44 kB
Anonymous:            40 kB
5600a1000000-5600a1200000 rw-p 00000000 00:00 0                          [heap]
Rss:                1172 kB
Anonymous:          1172 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0 
Rss:                   4 kB
Anonymous:             0 kB
7f0000002000-7f0000003000 r-xp 00000000 08:01 99                         /lib/x.so
Rss:                   4 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_qualify() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 7);
        let clean: Vec<(&[u8], u64)> = maps
            .iter()
            .filter(|m| m.is_clean_file())
            .map(|m| (m.path.as_slice(), m.rss_kb))
            .collect();
        // rodata and text; not the relocated RELRO pages, not .data, not
        // the heap, not an anonymous read-only page, and not a mapping
        // whose Anonymous: line is missing.
        assert_eq!(
            clean,
            vec![
                (&b"/opt/ttyward bin"[..], 800),
                (&b"/opt/ttyward bin"[..], 3700)
            ]
        );
        assert_eq!(maps[1].start, 0x5600a0200000);
        assert_eq!(maps[1].end, 0x5600a0e00000);
    }

    #[test]
    fn garbage_yields_nothing_clean() {
        for text in [
            &b""[..],
            b"\n\n",
            b"zz-yy r-xp 0 0 0 /x\nAnonymous: 0 kB\n",
            b"1-2 r-xp\n",
        ] {
            assert!(parse_smaps(text).iter().all(|m| !m.is_clean_file()));
        }
    }

    #[test]
    fn releasing_our_own_pages_keeps_the_process_running() {
        // Whatever this test binary's layout, the call must leave it able to
        // run code and read constants that lived in the released pages.
        let released = release_executable_pages().unwrap();
        assert!(released > 0, "the test binary has resident text");
        let text: String = ["still", "running"].join(" ");
        assert_eq!(text, "still running");
        assert!(parse_smaps(&std::fs::read("/proc/self/smaps").unwrap()).len() > 3);
    }
}
