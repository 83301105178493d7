//! `ttyward config show|export|import`: the configuration as TOML, on the
//! data directory directly (safe while the daemon runs; it applies an
//! import within a fraction of a second, restarting only the ports whose
//! settings changed).
//!
//! An import is validated completely before anything changes: every bad
//! field is reported with its path and the stored configuration stays as it
//! was. Accounts, passwords and keys are not configuration and are never
//! exported.

use std::io::Read;
use std::path::PathBuf;

use ttyward_core::service::{Caller, Service};

use crate::serve::Failure;

/// Largest configuration file accepted (a 32-port config is a few KiB).
const MAX_IMPORT_BYTES: u64 = 1024 * 1024;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print a summary of the ports and the security settings in force.
    Show,
    /// Write the configuration as TOML (to standard output, or a file).
    Export {
        /// File to write (0600); standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Replace the configuration with a TOML file ("-" for standard input).
    Import {
        /// The file.
        file: PathBuf,
        /// Save even if the allowlist would shut out the address the change
        /// comes from (irrelevant on the host's command line).
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(service: &Service, command: Command) -> Result<(), Failure> {
    let me = Caller::local();
    match command {
        Command::Show => {
            let c = service.config();
            let revision = service
                .stored_revision()
                .await
                .map_err(|e| Failure::Runtime(e.into()))?;
            println!("configuration revision {revision}");
            if c.ports.is_empty() {
                println!("no serial ports configured");
            }
            for p in &c.ports {
                let listen = p
                    .mode
                    .listen()
                    .map(|l| format!(" port {}", l.port))
                    .unwrap_or_default();
                println!(
                    "port {:>2}  {:<24} {:<11}{}  {}",
                    p.number,
                    p.device.to_string(),
                    p.mode.name(),
                    listen,
                    p.alias
                );
            }
            let s = &c.security;
            println!(
                "password policy: min length {}, lifetime {}",
                s.password_policy.min_length,
                s.password_policy
                    .lifetime_days
                    .map_or("off".to_string(), |d| format!("{d} days"))
            );
            println!(
                "login lockout: {} ({} failures, {} s)",
                if s.login.lockout.enabled { "on" } else { "off" },
                s.login.lockout.max_failures,
                s.login.lockout.lockout_s
            );
            println!(
                "allowlist: {} ({} entries); DoS defence: {}",
                if s.allowlist.enabled { "on" } else { "off" },
                s.allowlist.entries.len(),
                if s.dos.enabled { "on" } else { "off" }
            );
            if !service
                .has_administrator()
                .await
                .map_err(|e| Failure::Runtime(e.into()))?
            {
                println!(
                    "no Administrator exists: every serial port is off until `ttyward admin create` runs"
                );
            }
            Ok(())
        }
        Command::Export { output } => {
            let text = service
                .export_config(&me)
                .map_err(|e| Failure::Config(e.to_string()))?;
            match output {
                None => print!("{text}"),
                Some(path) => {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(|e| {
                            Failure::Config(format!("cannot write {}: {e}", path.display()))
                        })?;
                    f.write_all(text.as_bytes()).map_err(|e| {
                        Failure::Config(format!("cannot write {}: {e}", path.display()))
                    })?;
                }
            }
            Ok(())
        }
        Command::Import { file, force } => {
            let text = read_limited(&file)?;
            let change = service
                .import_config(&me, &text, force)
                .await
                .map_err(|e| Failure::Config(e.to_string()))?;
            if change.changed.is_empty() {
                println!("nothing changed (revision {})", change.revision);
            } else {
                println!(
                    "imported as revision {}: {}",
                    change.revision,
                    change.changed.join("; ")
                );
            }
            Ok(())
        }
    }
}

/// Read a text file of bounded size; binary or oversized input gets a
/// one-line error.
fn read_limited(file: &PathBuf) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    let name = file.display().to_string();
    let result = if name == "-" {
        std::io::stdin()
            .take(MAX_IMPORT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(MAX_IMPORT_BYTES + 1).read_to_end(&mut bytes))
    };
    result.map_err(|e| Failure::Config(format!("cannot read {name}: {e}")))?;
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        return Err(Failure::Config(format!(
            "{name} is larger than {} KiB; a configuration is a small TOML file",
            MAX_IMPORT_BYTES / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        Failure::Config(format!(
            "{name} is not UTF-8 text; a configuration is a TOML file"
        ))
    })
}
