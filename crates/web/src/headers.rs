//! Security headers on every response (issue 4, security.md): HSTS, a CSP
//! that allows no inline script and no framing, no MIME sniffing, no
//! referrer leaking, and no caching of API answers (they may carry
//! settings and tokens).

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::Next;
use axum::response::Response;

/// The content security policy: scripts and styles only from the device
/// itself, no plugins, no `<base>` rewriting, no framing (clickjacking).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Add the security headers to a response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, STRICT_TRANSPORT_SECURITY, "max-age=63072000");
    set(h, CONTENT_SECURITY_POLICY, CSP);
    set(h, X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, X_FRAME_OPTIONS, "DENY");
    // same-origin, not no-referrer: under no-referrer browsers send
    // `Origin: null` on form posts, and the CSRF check needs the real one.
    // Nothing leaves the device either way.
    set(h, REFERRER_POLICY, "same-origin");
    if !h.contains_key(CACHE_CONTROL) {
        set(h, CACHE_CONTROL, "no-store");
    }
    response
}
