//! A line console, sans IO, for reverse-terminal demos: what a router or PLC
//! console looks like on the other end of a serial cable.
//!
//! It prints a banner and the prompt `ttyward-sim> ` when created, echoes
//! what is typed (like a device console with echo on), handles backspace
//! (BS or DEL), Ctrl-C (drops the line) and skips ANSI escape sequences
//! (arrow keys). CR, LF or CR LF end a line; an empty line prints the prompt
//! again. Commands: `help`, `version`, `uptime`, `echo TEXT`, `status`
//! (serial settings and modem lines), `reset`; anything else answers
//! `unknown command: X`. Output lines end with CR LF. Only printable ASCII
//! is accepted into a line, at most [`MAX_LINE`] characters (BEL beyond).

use std::time::Instant;

use crate::modem::ModemStatus;
use crate::settings::SerialSettings;

/// The prompt.
pub const PROMPT: &str = "ttyward-sim> ";
/// Longest command line.
pub const MAX_LINE: usize = 256;

/// What the `status` command shows.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleStatus<'a> {
    /// The settings last applied to the device.
    pub settings: &'a SerialSettings,
    /// The modem lines as the device sees them.
    pub modem: ModemStatus,
    /// Whether a break is being received.
    pub break_on: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// After ESC [ : parameters until a final byte 0x40..=0x7E.
    Csi,
    /// After ESC O : one more byte.
    Ss3,
}

/// The console's line editor and command interpreter.
#[derive(Clone, Debug)]
pub struct Console {
    line: String,
    started: Instant,
    after_cr: bool,
    escape: Escape,
}

impl Console {
    /// A console that booted at `now`; [`Console::banner`] gives its first
    /// output.
    pub fn new(now: Instant) -> Console {
        Console {
            line: String::new(),
            started: now,
            after_cr: false,
            escape: Escape::None,
        }
    }

    /// The banner and the first prompt.
    pub fn banner(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\nttyward simulated console ");
        out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
        out.extend_from_slice(b"\r\nType 'help' for a list of commands.\r\n");
        out.extend_from_slice(PROMPT.as_bytes());
    }

    /// Feeds typed bytes; appends the echo and command output to `out`.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        status: &ConsoleStatus<'_>,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match self.escape {
                Escape::None => {}
                Escape::Start => {
                    self.escape = match byte {
                        b'[' => Escape::Csi,
                        b'O' => Escape::Ss3,
                        _ => Escape::None,
                    };
                    continue;
                }
                Escape::Csi => {
                    if (0x40..=0x7E).contains(&byte) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::Ss3 => {
                    self.escape = Escape::None;
                    continue;
                }
            }
            match byte {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(status, now, out);
                }
                // The LF of CR LF; a lone LF ends a line too. Telnet sends
                // CR NUL, hence the NUL.
                b'\n' | 0 if after_cr => {}
                b'\n' => self.end_line(status, now, out),
                0x08 | 0x7F if self.line.pop().is_some() => out.extend_from_slice(b"\x08 \x08"),
                0x08 | 0x7F => {}
                0x03 => {
                    self.line.clear();
                    out.extend_from_slice(b"^C\r\n");
                    out.extend_from_slice(PROMPT.as_bytes());
                }
                0x1B => self.escape = Escape::Start,
                0x20..=0x7E if self.line.len() < MAX_LINE => {
                    self.line.push(char::from(byte));
                    out.push(byte);
                }
                0x20..=0x7E => out.push(0x07),
                _ => {}
            }
        }
    }

    fn end_line(&mut self, status: &ConsoleStatus<'_>, now: Instant, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        let line = std::mem::take(&mut self.line);
        let line = line.trim();
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut say = |text: &str| {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        match command {
            "" => {}
            "help" => {
                say("commands:");
                say("  help       this list");
                say("  version    software version");
                say("  uptime     seconds since start or reset");
                say("  echo TEXT  print TEXT");
                say("  status     serial settings and modem lines");
                say("  reset      restart the console");
            }
            "version" => say(&format!("ttyward-sim {}", env!("CARGO_PKG_VERSION"))),
            "uptime" => say(&format!(
                "up {} s",
                now.saturating_duration_since(self.started).as_secs()
            )),
            "echo" => say(rest.trim_start()),
            "status" => {
                let on_off = |on: bool| if on { "on" } else { "off" };
                let m = status.modem;
                say(&format!("serial: {}", status.settings));
                say(&format!(
                    "lines: DTR {} RTS {} CTS {} DSR {} DCD {} RI {}",
                    on_off(m.dtr),
                    on_off(m.rts),
                    on_off(m.cts),
                    on_off(m.dsr),
                    on_off(m.dcd),
                    on_off(m.ri)
                ));
                say(&format!("break: {}", on_off(status.break_on)));
            }
            "reset" => {
                say("resetting...");
                self.started = now;
                self.banner(out);
                return;
            }
            other => say(&format!("unknown command: {other}")),
        }
        out.extend_from_slice(PROMPT.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(console: &mut Console, input: &[u8]) -> String {
        let settings = SerialSettings::default();
        let status = ConsoleStatus {
            settings: &settings,
            modem: ModemStatus {
                dtr: true,
                rts: true,
                cts: true,
                ..Default::default()
            },
            break_on: false,
        };
        let mut out = Vec::new();
        console.receive(input, &status, Instant::now(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn banner_ends_with_prompt() {
        let mut out = Vec::new();
        Console::new(Instant::now()).banner(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("ttyward simulated console"));
        assert!(text.ends_with(PROMPT));
    }

    #[test]
    fn echoes_typing_and_runs_echo() {
        let mut c = Console::new(Instant::now());
        assert_eq!(
            run(&mut c, b"echo hi there\r"),
            format!("echo hi there\r\nhi there\r\n{PROMPT}")
        );
    }

    #[test]
    fn crlf_is_one_line_and_empty_line_prompts() {
        let mut c = Console::new(Instant::now());
        assert_eq!(run(&mut c, b"\r\n"), format!("\r\n{PROMPT}"));
        assert_eq!(run(&mut c, b"\n"), format!("\r\n{PROMPT}"));
        // telnet CR NUL
        assert_eq!(run(&mut c, b"\r\0"), format!("\r\n{PROMPT}"));
    }

    #[test]
    fn backspace_edits_the_line() {
        let mut c = Console::new(Instant::now());
        let out = run(&mut c, b"versiox\x7fn\r");
        assert!(out.starts_with("versiox\x08 \x08n\r\n"), "{out:?}");
        assert!(out.contains("ttyward-sim "), "{out:?}");
        // backspace on an empty line prints nothing
        assert_eq!(run(&mut c, b"\x08"), "");
    }

    #[test]
    fn unknown_command_is_named() {
        let mut c = Console::new(Instant::now());
        let out = run(&mut c, b"frobnicate now\r");
        assert!(out.contains("unknown command: frobnicate\r\n"), "{out:?}");
    }

    #[test]
    fn status_shows_settings_and_lines() {
        let mut c = Console::new(Instant::now());
        let out = run(&mut c, b"status\r");
        assert!(
            out.contains("serial: 115200 8N1, flow none, rs232\r\n"),
            "{out:?}"
        );
        assert!(
            out.contains("lines: DTR on RTS on CTS on DSR off DCD off RI off\r\n"),
            "{out:?}"
        );
    }

    #[test]
    fn help_uptime_and_reset() {
        let mut c = Console::new(Instant::now());
        assert!(run(&mut c, b"help\r").contains("status"));
        assert!(run(&mut c, b"uptime\r").contains("up 0 s"));
        let reset = run(&mut c, b"reset\r");
        assert!(
            reset.contains("resetting...\r\n") && reset.ends_with(PROMPT),
            "{reset:?}"
        );
    }

    #[test]
    fn skips_escape_sequences_and_ctrl_c() {
        let mut c = Console::new(Instant::now());
        assert_eq!(run(&mut c, b"\x1b[A\x1bOB"), "");
        assert_eq!(run(&mut c, b"abc\x03"), format!("abc^C\r\n{PROMPT}"));
        assert!(run(&mut c, b"version\r").contains("ttyward-sim"));
    }

    #[test]
    fn long_lines_ring_the_bell() {
        let mut c = Console::new(Instant::now());
        let out = run(&mut c, &[b'x'; MAX_LINE + 2]);
        assert!(out.ends_with("\x07\x07"));
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_output(
            input in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(0x7F_u8), Just(0x1B_u8), Just(b'['), 0x20u8..0x7F, any::<u8>()],
                0..200,
            ),
            cut in 0usize..200,
        ) {
            let settings = SerialSettings::default();
            let status = ConsoleStatus { settings: &settings, modem: ModemStatus::default(), break_on: false };
            let now = Instant::now();
            let mut whole = Vec::new();
            Console::new(now).receive(&input, &status, now, &mut whole);
            let (a, b) = input.split_at(cut.min(input.len()));
            let mut console = Console::new(now);
            let mut split = Vec::new();
            console.receive(a, &status, now, &mut split);
            console.receive(b, &status, now, &mut split);
            prop_assert_eq!(split, whole);
        }
    }
}
