//! Serial Port Settings > Serial Parameters: baud rate, data bits,
//! parity, stop bits and flow control per port; saving restarts only the
//! changed port.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use ttyward_core::config::Config;
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use super::form::{ConfigEdit, number_or_text};
use crate::api::AppState;

struct SerialRow {
    number: u16,
    alias: String,
    device: String,
    baud: String,
    data_bits: String,
    parity: String,
    stop_bits: String,
    flow: String,
}

#[derive(Template)]
#[template(path = "parameters.html")]
struct ParametersPage {
    chrome: Chrome,
    ports: Vec<SerialRow>,
    can_change: bool,
}

fn serial_rows(config: &Config) -> Vec<SerialRow> {
    config
        .ports
        .iter()
        .map(|p| SerialRow {
            number: p.number,
            alias: p.alias.clone(),
            device: p.device.to_string(),
            baud: p.serial.baud.to_string(),
            data_bits: p.serial.data_bits.to_string(),
            parity: p.serial.parity.to_string(),
            stop_bits: p.serial.stop_bits.to_string(),
            flow: p.serial.flow.to_string(),
        })
        .collect()
}

/// The form of every port.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SerialView)?;
    let config = state.service.config();
    Ok(render(&ParametersPage {
        can_change: v.caller.may(Permission::SerialChange),
        ports: serial_rows(&config),
        chrome: Chrome::new(&v, "/serial/parameters"),
    }))
}

/// Serial Parameters form fields.
#[derive(Deserialize)]
pub struct SerialForm {
    csrf: String,
    baud: String,
    data_bits: String,
    parity: String,
    stop_bits: String,
    flow: String,
}

/// Save one port's serial parameters (the port restarts with them).
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Path(number): Path<u16>,
    Form(form): Form<SerialForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SerialChange)?;
    let config = state.service.config();
    let index = super::form::port_index(&config, number)?;
    let mut edit = ConfigEdit::of(&config);
    if let Some(serial) = edit.get_mut(&format!("/ports/{index}/serial")) {
        serial.insert("baud".into(), number_or_text(&form.baud));
        serial.insert("data_bits".into(), number_or_text(&form.data_bits));
        serial.insert("parity".into(), json!(form.parity));
        serial.insert("stop_bits".into(), json!(form.stop_bits));
        serial.insert("flow".into(), json!(form.flow));
    }
    let mut chrome = Chrome::new(&v, "/serial/parameters");
    let result = edit.save(&state, &v.caller, false).await;
    let status = chrome.outcome(result, |_| {
        format!("Port {number} saved; the port restarted with the new settings.")
    })?;
    let page = ParametersPage {
        can_change: true,
        ports: serial_rows(&state.service.config()),
        chrome,
    };
    Ok((status, render(&page)).into_response())
}
