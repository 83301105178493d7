//! Before and around a session: `/` (setup, login or dashboard), the
//! login page with the login and failure messages, first-use Create
//! Account with the setup code, logout. The session's own password page is
//! [`super::own_password`].

use std::net::IpAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use ttyward_core::service::{Caller, Interface, ServiceError, Source};

use super::super::{OwnOrigin, PageError, Visitor, render};
use super::form::CsrfForm;
use crate::api::{AppState, SESSION_COOKIE};

/// `/`: the dashboard, the login page, or first-use setup.
pub async fn root(State(state): State<AppState>) -> Result<Redirect, PageError> {
    if !state.service.has_administrator().await? {
        return Ok(Redirect::to("/setup"));
    }
    Ok(Redirect::to("/dashboard"))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    login_message: String,
    failure: Option<String>,
    name: String,
}

/// The login page with the login message.
pub async fn login_page(State(state): State<AppState>) -> Result<Response, PageError> {
    if !state.service.has_administrator().await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    Ok(render(&LoginPage {
        login_message: state.service.config().security.login.message.clone(),
        failure: None,
        name: String::new(),
    }))
}

/// Login form fields.
#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
}

fn peer(connect: &ConnectInfo<std::net::SocketAddr>) -> IpAddr {
    connect.0.ip().to_canonical()
}

/// Log in: set the session cookie and go to the dashboard, or show the
/// failure message.
pub async fn login_submit(
    State(state): State<AppState>,
    connect: ConnectInfo<std::net::SocketAddr>,
    _: OwnOrigin,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    match state
        .service
        .login(
            &form.name,
            &form.password,
            Source::Net(peer(&connect)),
            Interface::Web,
        )
        .await
    {
        Ok(ok) => {
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
                ok.token.expose()
            );
            let mut r = Redirect::to("/dashboard").into_response();
            let value = HeaderValue::from_str(&cookie).map_err(|_| PageError::Internal)?;
            r.headers_mut().insert(header::SET_COOKIE, value);
            Ok(r)
        }
        Err(e @ (ServiceError::LoginFailed { .. } | ServiceError::SessionLimit(_))) => {
            let page = LoginPage {
                login_message: state.service.config().security.login.message.clone(),
                failure: Some(e.to_string()),
                name: form.name.chars().take(64).collect(),
            };
            Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
        }
        Err(e) => Err(PageError::from(e)),
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    problem: Option<String>,
    name: String,
}

/// First use: the "Create Account" page (only while no account exists).
pub async fn setup_page(State(state): State<AppState>) -> Result<Response, PageError> {
    if state.service.has_administrator().await? {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(render(&SetupPage {
        problem: None,
        name: String::new(),
    }))
}

/// Setup form fields.
#[derive(Deserialize)]
pub struct SetupForm {
    setup_code: String,
    name: String,
    password: String,
    password2: String,
}

/// Create the first Administrator with the setup code, then log in.
pub async fn setup_submit(
    State(state): State<AppState>,
    connect: ConnectInfo<std::net::SocketAddr>,
    _: OwnOrigin,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    let again = |problem: String| {
        let page = SetupPage {
            problem: Some(problem),
            name: form.name.chars().take(32).collect(),
        };
        (StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response()
    };
    if form.password != form.password2 {
        return Ok(again("The two passwords differ.".into()));
    }
    let caller = Caller {
        principal: None,
        source: Source::Net(peer(&connect)),
        interface: Interface::Web,
    };
    match state
        .service
        .create_first_admin(&caller, &form.name, &form.password, Some(&form.setup_code))
        .await
    {
        Ok(()) => Ok(Redirect::to("/login").into_response()),
        Err(ServiceError::Store(e)) => Err(PageError::from(ServiceError::Store(e))),
        Err(e) => Ok(again(e.to_string())),
    }
}

/// End the session and clear the cookie.
pub async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    visitor.check_csrf(&form.csrf)?;
    state.service.logout(&visitor.caller).await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(crate::api::CLEAR_SESSION_COOKIE),
    );
    Ok(r)
}
