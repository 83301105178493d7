//! Completes the generated OpenAPI document with the error answers every
//! operation of a kind gives, so that the document says what the server
//! does (schemathesis checks it) without each handler repeating them:
//! a JSON body can be malformed (400), of the wrong type (415), of the
//! wrong shape (422) or too large (413); a path or query parameter can
//! fail to parse (400); a protected operation answers 401 without a
//! session; any request may meet the source's request rate (429, from the
//! server before routing).

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

/// Operations reachable without a session.
const PUBLIC: [&str; 3] = ["/login", "/setup", "/openapi.json"];

fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

fn complete(path: &str, op: &mut Operation) {
    let responses = &mut op.responses.responses;
    let mut add = |code: &str, description: &str| {
        responses
            .entry(code.to_owned())
            .or_insert_with(|| error(description));
    };
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    if json_body {
        add("400", "The body is not valid JSON");
        add("413", "The body is larger than 1 MiB");
        add("415", "The body is not sent as application/json");
        add("422", "The JSON does not have the expected shape or values");
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        add("400", "A path or query parameter could not be read");
    }
    if !PUBLIC.contains(&path) {
        add("401", "Not logged in, or the session has ended");
    }
    add(
        "429",
        "Too many requests from this address (DoS defence); wait as Retry-After says",
    );
}

/// Add the common error answers to every operation of `doc`.
pub fn complete_errors(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            complete(path, op);
        }
    }
}
