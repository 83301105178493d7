//! `ttyward admin`: account work on the host, without the network — the
//! first Administrator, password resets, lifting lockouts. It opens the data
//! directory directly (safe while the daemon runs: SQLite serialises the
//! two, and the daemon picks the changes up). Whoever can run this can read
//! the data directory anyway, so it acts with every permission; each action
//! is still recorded in the event log as done by "(local)".

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use ttyward_core::service::{Caller, Service};

use crate::serve::Failure;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create an account (the first one must be an Administrator).
    Create {
        /// Account name: letters, digits, '.', '_', '-'.
        #[arg(long)]
        name: String,
        /// Group: Administrator, Operator or a custom group.
        #[arg(long, default_value = "Administrator")]
        group: String,
        /// Read the password from the first line of standard input instead
        /// of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password.
    Passwd {
        /// The account.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lift login lockouts of an account (from every address) or of a
    /// source address.
    Unlock {
        /// The account.
        #[arg(required_unless_present = "source")]
        name: Option<String>,
        /// A source address whose lockout to lift.
        #[arg(long)]
        source: Option<String>,
    },
    /// List accounts.
    List,
    /// Disable an account (its sessions end at once).
    Disable {
        /// The account.
        name: String,
    },
    /// Enable a disabled account.
    Enable {
        /// The account.
        name: String,
    },
    /// Delete an account (its sessions end at once).
    Delete {
        /// The account.
        name: String,
    },
    /// List the live login sessions of every account.
    Sessions,
    /// End a login session (its id from `sessions`).
    EndSession {
        /// The session id.
        id: i64,
    },
    /// SSH public keys an account may log in with on the reverse SSH
    /// consoles.
    #[command(subcommand)]
    SshKey(SshKeyCommand),
}

#[derive(clap::Subcommand, Debug)]
pub enum SshKeyCommand {
    /// Authorize the public key(s) of an OpenSSH .pub or authorized_keys
    /// file (one key a line; options such as from= are not supported).
    Add {
        /// The account.
        name: String,
        /// The file, or - for standard input.
        file: PathBuf,
    },
    /// List an account's keys.
    List {
        /// The account.
        name: String,
    },
    /// Remove a key (its id from `list`).
    Remove {
        /// The account.
        name: String,
        /// The key's id.
        id: i64,
    },
}

pub async fn run(service: &Service, command: Command) -> Result<(), Failure> {
    let me = Caller::local();
    let result = match command {
        Command::Create {
            name,
            group,
            password_stdin,
        } => {
            let password = read_password(password_stdin, true)?;
            if service.has_administrator().await.map_err(runtime)? {
                service
                    .create_account(&me, &name, &group, &password)
                    .await
                    .map(|a| println!("account '{}' created in group {}", a.name, a.group))
            } else if !group.eq_ignore_ascii_case(ttyward_core::permission::ADMINISTRATOR) {
                return Err(Failure::Config(
                    "no Administrator exists yet: the first account must be in the Administrator group".into(),
                ));
            } else {
                service
                    .create_first_admin(&me, &name, &password, None)
                    .await
                    .map(|()| {
                        println!("Administrator '{name}' created; serial ports can now be enabled")
                    })
            }
        }
        Command::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin, true)?;
            service
                .set_password(&me, &name, &password)
                .await
                .map(|()| println!("password of '{name}' changed; its other sessions were ended"))
        }
        Command::Unlock { name, source } => service
            .unlock(&me, name.as_deref(), source.as_deref())
            .await
            .map(|n| println!("{n} lockout record(s) removed")),
        Command::List => service.accounts(&me).await.map(|accounts| {
            println!("{:<32} {:<16} {:<9} created", "name", "group", "status");
            for a in accounts {
                println!(
                    "{:<32} {:<16} {:<9} {}",
                    a.name,
                    a.group,
                    if a.active { "active" } else { "disabled" },
                    ttyward_core::store::format_time(a.created_at)
                );
            }
        }),
        Command::Disable { name } => service
            .set_account_active(&me, &name, false)
            .await
            .map(|()| println!("account '{name}' disabled")),
        Command::Enable { name } => service
            .set_account_active(&me, &name, true)
            .await
            .map(|()| println!("account '{name}' enabled")),
        Command::Delete { name } => service
            .delete_account(&me, &name)
            .await
            .map(|()| println!("account '{name}' deleted")),
        Command::Sessions => service.sessions(&me).await.map(|sessions| {
            println!(
                "{:>6} {:<32} {:<9} {:<40} {:<20} last used",
                "id", "account", "via", "from", "since"
            );
            for s in sessions {
                println!(
                    "{:>6} {:<32} {:<9} {:<40} {:<20} {}",
                    s.id,
                    s.account,
                    s.interface,
                    s.source.as_deref().unwrap_or("-"),
                    ttyward_core::store::format_time(s.created_at),
                    ttyward_core::store::format_time(s.last_seen)
                );
            }
        }),
        Command::EndSession { id } => service
            .end_session(&me, id)
            .await
            .map(|()| println!("session {id} ended")),
        Command::SshKey(command) => return ssh_key(service, &me, command).await,
    };
    result.map_err(|e| Failure::Config(e.to_string()))
}

async fn ssh_key(service: &Service, me: &Caller, command: SshKeyCommand) -> Result<(), Failure> {
    let failed = |e: ttyward_core::service::ServiceError| Failure::Config(e.to_string());
    match command {
        SshKeyCommand::Add { name, file } => {
            let text = read_keys(&file)?;
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            if lines.is_empty() {
                return Err(Failure::Config(format!(
                    "{} holds no public key; give a .pub file such as ~/.ssh/id_ed25519.pub",
                    file.display()
                )));
            }
            for line in lines {
                let key = service.add_ssh_key(me, &name, line).await.map_err(failed)?;
                println!(
                    "key {} ({}{}) added to account '{}'",
                    key.id,
                    key.fingerprint,
                    if key.comment.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", key.comment)
                    },
                    key.account
                );
            }
        }
        SshKeyCommand::List { name } => {
            let keys = service.ssh_keys(me, &name).await.map_err(failed)?;
            println!("{:>6} {:<20} {:<51} comment", "id", "added", "fingerprint");
            for k in keys {
                println!(
                    "{:>6} {:<20} {:<51} {}",
                    k.id,
                    ttyward_core::store::format_time(k.created_at),
                    k.fingerprint,
                    k.comment
                );
            }
        }
        SshKeyCommand::Remove { name, id } => {
            service
                .remove_ssh_key(me, &name, id)
                .await
                .map_err(failed)?;
            println!("key {id} removed from account '{name}'");
        }
    }
    Ok(())
}

/// The text of a key file, or of standard input for `-`.
fn read_keys(file: &std::path::Path) -> Result<String, Failure> {
    let mut text = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().lock().read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::Config(format!("cannot read {}: {e}", file.display())))?;
    Ok(text)
}

fn runtime(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Runtime(e.into())
}

/// A password from stdin's first line, or from a prompt on the terminal
/// with echo off (asked twice when `confirm`).
pub fn read_password(from_stdin: bool, confirm: bool) -> Result<String, Failure> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Failure::Config(format!("cannot read the password from standard input: {e}"))
        })?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            return Err(Failure::Config("no password on standard input".into()));
        }
        return Ok(password.to_owned());
    }
    let first = prompt("New password: ")?;
    if confirm {
        let again = prompt("Repeat it: ")?;
        if again != first {
            return Err(Failure::Config(
                "the two passwords differ; nothing changed".into(),
            ));
        }
    }
    Ok(first)
}

/// Read one line from the terminal with echo off (CR 1.10: passwords are
/// never shown).
fn prompt(text: &str) -> Result<String, Failure> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| Failure::Runtime(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| Failure::Runtime(e.into()))?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    // Restore echo whatever happened.
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read.map_err(|e| Failure::Runtime(e.into()))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
