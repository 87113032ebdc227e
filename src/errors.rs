//! The request-path error enum and its one mapping to a status code, a stable
//! snake_case code and a small JSON body.
//!
//! Variants are grouped by who is at fault: the client (4xx), the upstream
//! (502/503/504) or the gateway itself (500). The JSON body never carries a
//! header value, a token or a body: only the code, a fixed message, the
//! status and the request id.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::proxy::body::ProxyBody;

/// Everything that can end a request before (or instead of) a normal
/// upstream response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    // -- the client's fault --
    /// The request target or framing is malformed (bad path, bad escape,
    /// absolute-form target, conflicting framing headers, missing Host...).
    BadRequest(&'static str),
    /// No route matches the request.
    NoRoute,
    /// A route matches the path but not the method; carries the `Allow` value.
    MethodNotAllowed(HeaderValue),
    /// The body is larger than the route allows.
    PayloadTooLarge,
    /// The request headers exceed the configured limit.
    HeadersTooLarge,
    /// The client did not send its body within the body read deadline.
    RequestTimeout,
    /// A framing feature the gateway does not implement (e.g. a
    /// Transfer-Encoding other than chunked).
    NotImplemented(&'static str),
    /// The route needs a valid bearer token and this one is missing or bad.
    Unauthorized(crate::auth::Reason),
    /// The token is valid but lacks a required scope, role or claim.
    Forbidden,

    // -- the upstream's fault --
    /// The upstream refused, reset or closed the connection, or sent garbage.
    BadGateway,
    /// No endpoint of the upstream can take the request right now.
    ServiceUnavailable(&'static str),
    /// The upstream did not answer within the route's timeout.
    GatewayTimeout,

    // -- ours --
    /// A bug or resource failure inside the gateway.
    Internal,
    /// No usable signing key set could be loaded for the token's provider:
    /// our (or the key server's) fault, never blamed on the client's token.
    SigningKeysUnavailable,
    /// A `health: ready` probe while an auth provider has no key set yet.
    NotReady,
}

/// How a variant is logged: client faults are routine, upstream faults are
/// warnings, our own faults are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Debug,
    Warn,
    Error,
}

impl GatewayError {
    /// The one exhaustive mapping: status, stable code, fixed message, log level.
    pub fn describe(&self) -> (StatusCode, &'static str, &'static str, Severity) {
        use GatewayError::*;
        match self {
            BadRequest(why) => (StatusCode::BAD_REQUEST, "bad_request", why, Severity::Debug),
            NoRoute => (
                StatusCode::NOT_FOUND,
                "no_route",
                "no route matches this request",
                Severity::Debug,
            ),
            MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the route does not accept this method",
                Severity::Debug,
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body exceeds the route's limit",
                Severity::Debug,
            ),
            HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "request headers exceed the limit",
                Severity::Debug,
            ),
            RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "request body was not received in time",
                Severity::Debug,
            ),
            NotImplemented(why) => (
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                why,
                Severity::Debug,
            ),
            Unauthorized(reason) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                reason.description(),
                Severity::Debug,
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                crate::auth::Reason::InsufficientScope.description(),
                Severity::Debug,
            ),
            BadGateway => (
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the upstream refused or reset the connection",
                Severity::Warn,
            ),
            ServiceUnavailable(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                why,
                Severity::Warn,
            ),
            GatewayTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "gateway_timeout",
                "the upstream did not answer in time",
                Severity::Warn,
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal gateway error",
                Severity::Error,
            ),
            SigningKeysUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "signing_keys_unavailable",
                "signing keys unavailable: tokens can not be verified right now",
                Severity::Error,
            ),
            // Debug: probes repeat every few seconds and the JWKS fetcher
            // already warns about the cause.
            NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "not ready: an auth provider has no signing keys yet",
                Severity::Debug,
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.describe().0
    }

    pub fn code(&self) -> &'static str {
        self.describe().1
    }

    /// Builds the client-facing response: status, JSON body, and `Allow` on 405.
    pub fn to_response(&self, request_id: &str) -> Response<ProxyBody> {
        let (status, code, message, _) = self.describe();
        let body = json_body(code, message, status, request_id);
        let mut resp = Response::new(ProxyBody::full(body));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let GatewayError::MethodNotAllowed(allow) = self {
            resp.headers_mut().insert(ALLOW, allow.clone());
        }
        if let Some(challenge) = self.bearer_challenge() {
            resp.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        resp
    }

    /// RFC 6750 section 3: no error code when no token was sent, otherwise
    /// `invalid_token` (401) or `insufficient_scope` (403) with the fixed
    /// description (never anything from the token).
    fn bearer_challenge(&self) -> Option<HeaderValue> {
        let (error, description) = match self {
            GatewayError::Unauthorized(crate::auth::Reason::Missing) => {
                return Some(HeaderValue::from_static("Bearer realm=\"gwanmun\""))
            }
            GatewayError::Unauthorized(r) => ("invalid_token", r.description()),
            GatewayError::Forbidden => (
                "insufficient_scope",
                crate::auth::Reason::InsufficientScope.description(),
            ),
            _ => return None,
        };
        HeaderValue::from_str(&format!(
            "Bearer realm=\"gwanmun\", error=\"{error}\", error_description=\"{description}\""
        ))
        .ok()
    }
}

/// `{"error":"<code>","message":"...","status":N,"request_id":"..."}`.
///
/// Every string placed here is either a static message or a request id that
/// passed [`crate::proxy::request_id::is_sane`], so no escaping beyond what
/// serde_json does is needed; serde_json is still used so the body is valid
/// JSON whatever a future message contains.
pub fn json_body(code: &str, message: &str, status: StatusCode, request_id: &str) -> Bytes {
    let v = serde_json::json!({
        "error": code,
        "message": message,
        "status": status.as_u16(),
        "request_id": request_id,
    });
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<GatewayError> {
        vec![
            GatewayError::BadRequest("x"),
            GatewayError::NoRoute,
            GatewayError::MethodNotAllowed(HeaderValue::from_static("GET")),
            GatewayError::PayloadTooLarge,
            GatewayError::HeadersTooLarge,
            GatewayError::RequestTimeout,
            GatewayError::NotImplemented("x"),
            GatewayError::Unauthorized(crate::auth::Reason::Expired),
            GatewayError::Forbidden,
            GatewayError::BadGateway,
            GatewayError::ServiceUnavailable("x"),
            GatewayError::GatewayTimeout,
            GatewayError::Internal,
            GatewayError::SigningKeysUnavailable,
            GatewayError::NotReady,
        ]
    }

    #[test]
    fn every_variant_has_a_distinct_code_and_snake_case_code() {
        // Statuses may repeat (two kinds of 503); codes may not.
        let mut seen = std::collections::HashSet::new();
        for e in all() {
            let (_, code, _, _) = e.describe();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn auth_errors_carry_bearer_challenges() {
        use crate::auth::Reason;
        let r = GatewayError::Unauthorized(Reason::Expired).to_response("id");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let h = r.headers()[WWW_AUTHENTICATE].to_str().expect("ascii");
        assert!(h.starts_with("Bearer ") && h.contains("error=\"invalid_token\""));
        assert!(h.contains("error_description=\"the token has expired\""));
        let r = GatewayError::Unauthorized(Reason::Missing).to_response("id");
        assert!(!r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii")
            .contains("error="));
        let r = GatewayError::Forbidden.to_response("id");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope"));
        let r = GatewayError::SigningKeysUnavailable.to_response("id");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!r.headers().contains_key(WWW_AUTHENTICATE));
    }

    #[test]
    fn body_is_small_json_with_request_id() {
        let b = json_body("no_route", "no route", StatusCode::NOT_FOUND, "abc");
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["error"], "no_route");
        assert_eq!(v["status"], 404);
        assert_eq!(v["request_id"], "abc");
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let r =
            GatewayError::MethodNotAllowed(HeaderValue::from_static("GET, POST")).to_response("id");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET, POST");
    }
}
