//! Account Management > Groups: the built-in Administrator and Operator
//! groups (shown, fixed) and custom groups made of named permissions —
//! create, change, delete (the service refuses a group that still has
//! members, and any change to a built-in one).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ttyward_core::permission::{Permission, Permissions};
use ttyward_core::service::ServiceError;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use crate::api::AppState;

/// What each permission allows, in a few words (docs/security.md).
fn meaning(p: Permission) -> &'static str {
    match p {
        Permission::SystemView => "Dashboard, system information and status",
        Permission::SystemChange => "change System Settings",
        Permission::NetworkView => "Network Settings",
        Permission::NetworkChange => "change Network Settings",
        Permission::SerialView => "Serial Port Settings, port state and counters",
        Permission::SerialChange => "change operation modes and serial parameters",
        Permission::SecurityView => "Security pages: services, allowlist, certificate, login",
        Permission::SecurityChange => "change Security settings",
        Permission::AccountsView => "Account Management: accounts, groups, password policy",
        Permission::AccountsChange => "create, change and delete accounts and groups",
        Permission::LogView => "read the event log (all but Security events)",
        Permission::LogSecurity => "read Security events too",
        Permission::LogSettings => "change what the event log records and keeps",
        Permission::MaintenanceConfig => "export and import the configuration",
        Permission::MaintenanceSystem => "factory reset, updates",
    }
}

/// One permission's checkbox.
struct PermissionBox {
    name: &'static str,
    meaning: &'static str,
    checked: bool,
}

fn boxes(granted: &Permissions) -> Vec<PermissionBox> {
    Permission::ALL
        .iter()
        .map(|p| PermissionBox {
            name: p.name(),
            meaning: meaning(*p),
            checked: granted.contains(p),
        })
        .collect()
}

struct GroupRow {
    name: String,
    builtin: bool,
    /// Built-in groups: the permission names; custom: the checkboxes.
    summary: String,
    boxes: Vec<PermissionBox>,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    chrome: Chrome,
    groups: Vec<GroupRow>,
    can_change: bool,
    /// The create form after a refusal.
    new_name: String,
    new_boxes: Vec<PermissionBox>,
}

async fn show(state: &AppState, v: &Visitor, chrome: Chrome) -> Result<GroupsPage, PageError> {
    let groups = state
        .service
        .groups(&v.caller)
        .await?
        .into_iter()
        .map(|g| GroupRow {
            summary: if g.permissions.len() == Permission::ALL.len() {
                "every permission".into()
            } else {
                g.permissions
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            boxes: boxes(&g.permissions),
            name: g.name,
            builtin: g.builtin,
        })
        .collect();
    Ok(GroupsPage {
        groups,
        can_change: v.caller.may(Permission::AccountsChange),
        new_name: String::new(),
        new_boxes: boxes(&Permissions::new()),
        chrome,
    })
}

/// The groups and their forms.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::AccountsView)?;
    let page = show(&state, &v, Chrome::new(&v, "/accounts/groups")).await?;
    Ok(render(&page))
}

/// The fields of a group form: `csrf`, `action` (create, save, delete),
/// `name` and one `permission` per ticked box — repeated keys, hence
/// pairs rather than a struct.
struct GroupForm {
    csrf: String,
    action: String,
    name: String,
    permissions: Vec<String>,
}

impl GroupForm {
    fn of(pairs: Vec<(String, String)>) -> GroupForm {
        let mut f = GroupForm {
            csrf: String::new(),
            action: String::new(),
            name: String::new(),
            permissions: Vec::new(),
        };
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "action" => f.action = v,
                "name" => f.name = v,
                "permission" => f.permissions.push(v),
                _ => {}
            }
        }
        f
    }

    /// The ticked permissions, or a problem naming unknown ones (only a
    /// hand-made request can send those).
    fn permissions(&self) -> Result<Permissions, ServiceError> {
        let mut out = Permissions::new();
        for name in &self.permissions {
            match Permission::from_name(name) {
                Some(p) => {
                    out.insert(p);
                }
                None => {
                    return Err(ServiceError::Invalid(format!(
                        "Unknown permission '{}'; reload the page and use its checkboxes.",
                        name.chars().take(64).collect::<String>()
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Create, change or delete a custom group.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = GroupForm::of(pairs);
    v.check_csrf(&form.csrf)?;
    v.require(Permission::AccountsChange)?;
    let s = &state.service;
    let name = form.name.trim();
    let result: Result<String, ServiceError> = match form.action.as_str() {
        "create" | "save" => match form.permissions() {
            Err(e) => Err(e),
            Ok(permissions) => {
                let exists = s
                    .groups(&v.caller)
                    .await?
                    .iter()
                    .any(|g| g.name.eq_ignore_ascii_case(name));
                if form.action == "create" && exists {
                    Err(ServiceError::Conflict(format!(
                        "A group named '{name}' exists already; change its permissions below, or choose another name."
                    )))
                } else {
                    let n = permissions.len();
                    s.put_group(&v.caller, name, permissions)
                        .await
                        .map(|()| {
                            format!("Group '{name}' saved with {n} permission(s); its members have exactly these from their next request on.")
                        })
                }
            }
        },
        "delete" => s
            .delete_group(&v.caller, name)
            .await
            .map(|()| format!("Group '{name}' deleted.")),
        other => Err(ServiceError::Invalid(format!(
            "Unknown group action '{}'; reload the page and use its forms.",
            other.chars().take(32).collect::<String>()
        ))),
    };
    let mut chrome = Chrome::new(&v, "/accounts/groups");
    let status = chrome.outcome(result, Clone::clone)?;
    let mut page = show(&state, &v, chrome).await?;
    if status != StatusCode::OK && form.action == "create" {
        page.new_name = name.chars().take(32).collect();
        page.new_boxes = boxes(&form.permissions().unwrap_or_default());
    }
    Ok((status, render(&page)).into_response())
}
