//! The console's menu: the seed's sections and page names, each page with
//! the permission needed to view it. A caller's menu holds only the pages
//! its group may view.

use ttyward_core::permission::Permission;
use ttyward_core::service::Caller;

/// A page: (name, path, permission to view it).
pub type MenuPage = (&'static str, &'static str, Permission);

/// Every section and its pages.
pub const MENU: &[(&str, &[MenuPage])] = &[
    (
        "Dashboard",
        &[("Dashboard", "/dashboard", Permission::SystemView)],
    ),
    (
        "System Settings",
        &[
            ("General", "/system/general", Permission::SystemView),
            (
                "Notification",
                "/system/notification",
                Permission::SystemView,
            ),
        ],
    ),
    (
        "Network Settings",
        &[("IP Address", "/network/ip", Permission::NetworkView)],
    ),
    (
        "Serial Port Settings",
        &[
            ("Operation Modes", "/serial/modes", Permission::SerialView),
            (
                "Serial Parameters",
                "/serial/parameters",
                Permission::SerialView,
            ),
            (
                "Secure Connection",
                "/serial/secure",
                Permission::SerialView,
            ),
        ],
    ),
    (
        "Security",
        &[
            ("Services", "/security/services", Permission::SecurityView),
            ("Allowlist", "/security/allowlist", Permission::SecurityView),
            (
                "Certificate",
                "/security/certificate",
                Permission::SecurityView,
            ),
            (
                "Login Settings",
                "/security/login",
                Permission::SecurityView,
            ),
        ],
    ),
    (
        "Account Management",
        &[
            ("Accounts", "/accounts", Permission::AccountsView),
            ("Groups", "/accounts/groups", Permission::AccountsView),
            (
                "Password Policy",
                "/accounts/password-policy",
                Permission::AccountsView,
            ),
            (
                "Authentication Server",
                "/accounts/auth-server",
                Permission::AccountsView,
            ),
        ],
    ),
    (
        "Diagnostics",
        &[("System Log", "/log", Permission::LogView)],
    ),
    (
        "Maintenance",
        &[
            (
                "Configuration",
                "/maintenance/config",
                Permission::MaintenanceConfig,
            ),
            (
                "Factory Reset",
                "/maintenance/reset",
                Permission::MaintenanceSystem,
            ),
        ],
    ),
];

/// One menu entry.
#[derive(Clone, Debug)]
pub struct NavPage {
    /// Page name.
    pub title: &'static str,
    /// Its path.
    pub href: &'static str,
}

/// One menu section.
#[derive(Clone, Debug)]
pub struct NavSection {
    /// Section name.
    pub title: &'static str,
    /// Pages the caller may view.
    pub pages: Vec<NavPage>,
}

/// A caller's menu and name.
#[derive(Clone, Debug)]
pub struct Nav {
    /// Sections with at least one page the caller may view.
    pub sections: Vec<NavSection>,
    /// The account name.
    pub user: String,
    /// Its group.
    pub group: String,
}

impl Nav {
    /// The menu for `caller`.
    pub fn for_caller(caller: &Caller) -> Nav {
        let sections = MENU
            .iter()
            .map(|(title, pages)| NavSection {
                title,
                pages: pages
                    .iter()
                    .filter(|(_, _, p)| caller.may(*p))
                    .map(|(title, href, _)| NavPage { title, href })
                    .collect(),
            })
            .filter(|s| !s.pages.is_empty())
            .collect();
        let (user, group) = caller
            .principal
            .as_ref()
            .map(|p| (p.name.clone(), p.group.clone()))
            .unwrap_or_default();
        Nav {
            sections,
            user,
            group,
        }
    }

    /// The permission needed to view the page at `href`.
    pub fn permission_of(href: &str) -> Option<Permission> {
        MENU.iter()
            .flat_map(|(_, pages)| pages.iter())
            .find(|(_, h, _)| *h == href)
            .map(|(_, _, p)| *p)
    }
}
