//! A running `ttyward run` whose web console listens on 127.0.0.1, for the
//! tests that talk to the console and the REST API (web, rate_limit,
//! system_settings).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;

use super::https::Client;
use super::{TempDir, Ttyward, create_admin, import_config};

/// The web console on loopback, on a port the OS picks (the default is
/// 0.0.0.0:443).
pub const WEB_ONLY: &str = "[services.web]\nbind = [\"127.0.0.1\"]\nhttps_port = 0\n";

/// A daemon with its data directory; dropping it stops the daemon, then
/// removes the directory.
pub struct WebDevice {
    /// The daemon; dropped (stopped) before the directory below.
    pub daemon: Ttyward,
    _tmp: TempDir,
    /// The data directory.
    pub dir: PathBuf,
    /// A client of the web console (its `addr` is the base address).
    pub web: Client,
}

/// The first web console address of a ready/applied line.
pub fn web_addr(line: &Value) -> SocketAddr {
    line["web"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no web address in {line}"))
        .parse()
        .expect("web address")
}

impl WebDevice {
    /// Import [`WEB_ONLY`] + `extra_toml` into a new data directory, create
    /// the Administrator `admin` (account, password) from the host unless
    /// `None` (first use), start `ttyward run` and wait for its ready line.
    pub fn start(tag: &str, extra_toml: &str, admin: Option<(&str, &str)>) -> WebDevice {
        let tmp = TempDir::new(tag);
        let dir = tmp.path().join("data");
        let out = import_config(&dir, &format!("{WEB_ONLY}{extra_toml}"));
        assert!(
            out.status.success(),
            "config import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some((name, password)) = admin {
            create_admin(&dir, name, password);
        }
        let daemon = Ttyward::run(&dir);
        assert_eq!(
            daemon.ready["setup_required"],
            admin.is_none(),
            "{}",
            daemon.ready
        );
        let web = Client::new(web_addr(&daemon.ready), &dir);
        WebDevice {
            daemon,
            _tmp: tmp,
            dir,
            web,
        }
    }

    /// Stop the daemon (it must exit 0) and start it again on the same
    /// data directory.
    pub fn restart(self) -> WebDevice {
        let WebDevice {
            daemon, _tmp, dir, ..
        } = self;
        assert_eq!(daemon.stop(), Some(0), "the daemon stops cleanly");
        let daemon = Ttyward::run(&dir);
        let web = Client::new(web_addr(&daemon.ready), &dir);
        WebDevice {
            daemon,
            _tmp,
            dir,
            web,
        }
    }
}
