//! The small HTTP layer the four services share: the accept loop with a
//! graceful stop, the request as the handlers see it, JSON answers, the
//! identity the gateway forwards, and the replica header on every answer.
//!
//! The services sit behind gwanmun and trust only what it sets: the
//! identity headers it fills from a verified token (and strips from every
//! incoming request). They never look at the bearer token themselves.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Service;

/// The response header naming the replica that answered.
pub const REPLICA_HEADER: &str = "x-replica";
/// Identity headers set by the gateway (`forward_claims` in the config).
pub const USER_ID: &str = "x-user-id";
pub const USER_ROLES: &str = "x-user-roles";
pub const USER_EMAIL: &str = "x-user-email";
pub const USER_NAME: &str = "x-user-name";

/// Largest request body a service reads.
const MAX_BODY: usize = 64 * 1024;
/// How long open connections may take to finish after a stop.
const DRAIN: Duration = Duration::from_secs(5);

pub type Resp = Response<Full<Bytes>>;

/// A refusal: status, stable snake_case code and a message for people.
/// Answered as `{"error": code, "message": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
}

impl From<ApiError> for Resp {
    fn from(e: ApiError) -> Resp {
        json_response(e.status, &json!({ "error": e.code, "message": e.message }))
    }
}

/// A request with its body read.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    /// The path's segments without empty ones: `/tasks/7` -> `["tasks", "7"]`.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The body as JSON of type `T`, or a 422 answer.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                e.to_string(),
            )
        })
    }
}

/// The caller as the gateway vouched for it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub roles: Vec<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl Identity {
    /// Reads the identity headers; 401 when the gateway set none (the
    /// request did not come through an authenticated route).
    pub fn from_headers(headers: &HeaderMap) -> Result<Identity, ApiError> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let Some(user_id) = text(USER_ID) else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "no identity: call this service through the gateway with a token",
            ));
        };
        let roles = text(USER_ROLES)
            .map(|r| r.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default();
        Ok(Identity {
            user_id,
            roles,
            email: text(USER_EMAIL),
            name: text(USER_NAME),
        })
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// A JSON answer; the body ends with a newline so it reads well in a shell.
pub fn json_response(status: StatusCode, body: &Value) -> Resp {
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `{"error": code, "message": message}` with `status`.
pub fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<Cow<'static, str>>,
) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

/// 422 `invalid_input`.
pub fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
    error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
}

pub fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

pub fn method_not_allowed() -> ApiError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not accept the method",
    )
}

pub fn internal(what: &str, e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
}

pub fn no_content() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// Serves `service` on `listener` until `stop` turns true, then lets open
/// connections finish (at most a few seconds).
pub async fn serve(
    listener: TcpListener,
    service: Service,
    replica: Arc<str>,
    mut stop: watch::Receiver<bool>,
) {
    let service = Arc::new(service);
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let service = service.clone();
        let replica = replica.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let service = service.clone();
            let replica = replica.clone();
            async move { Ok::<_, Infallible>(answer(&service, &replica, req).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

async fn answer(service: &Service, replica: &str, req: Request<Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    let mut resp = match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => {
            let req = Req {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body: body.to_bytes(),
            };
            if req.path == "/health" {
                json_response(StatusCode::OK, &json!({ "status": "ok" }))
            } else {
                service.handle(req).await
            }
        }
        Err(_) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large or unreadable",
        )
        .into(),
    };
    if let Ok(v) = HeaderValue::from_str(replica) {
        resp.headers_mut().insert(REPLICA_HEADER, v);
    }
    resp
}
