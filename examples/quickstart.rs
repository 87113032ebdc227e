//! `cargo run --release --example quickstart`: starts three small echo
//! services and gwanmun in front of them with examples/quickstart.yaml,
//! prints a few curl commands to try, and stops cleanly on Ctrl-C.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

const ECHOES: [(&str, &str); 3] = [
    ("task-1", "127.0.0.1:9101"),
    ("task-2", "127.0.0.1:9102"),
    ("user-1", "127.0.0.1:9201"),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _log = gwanmun::observability::init(Some("info"), gwanmun::observability::LogFormat::Text);
    let shutdown = gwanmun::cli::shutdown_signal();
    for (name, addr) in ECHOES {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("echo service {name} on {addr}: {e}"))?;
        tokio::spawn(echo(name, listener));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.yaml");
    let snap = gwanmun::config::load_file(std::path::Path::new(path)).map_err(|e| e.to_string())?;
    let server = gwanmun::server::Server::bind(gwanmun::server::Gateway::new(snap)).await?;
    let addr = server.local_addrs()[0];
    print_tour(addr);
    server.run(shutdown).await;
    Ok(())
}

fn print_tour(addr: SocketAddr) {
    println!(
        "\ngwanmun is listening on http://{addr} in front of echo services on :9101, :9102 (task) and :9201 (user).
Try:
  curl -i http://{addr}/ping
  curl -s http://{addr}/api/tasks/7?x=1          # strip_prefix: the echo shows path /tasks/7
  curl -s http://{addr}/api/tasks/7              # again: round robin to the other replica
  curl -s -H 'X-Canary: true' http://{addr}/api/tasks/7   # canary route, prefix_path /canary
  curl -s http://{addr}/api/users/42             # regex rewrite to /users/42/profile
  curl -i http://{addr}/old/tasks                # 308 to /api/tasks
  curl -i -X POST http://{addr}/api/users/42     # 405 with Allow: GET
  curl -i http://{addr}/nope                     # 404 with a JSON error body
  curl -i --path-as-is 'http://{addr}/api/%2e%2e/api/tasks/1'  # normalized before routing
  curl -i 'http://{addr}/api/tasks/a%2Fb'        # encoded slash: 400
Ctrl-C stops everything.\n"
    );
}

async fn echo(name: &'static str, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| async move {
                let (parts, body) = req.into_parts();
                let size = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes().len())
                    .unwrap_or(0);
                let headers: serde_json::Map<String, serde_json::Value> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").into()))
                    .collect();
                let json = serde_json::json!({
                    "service": name,
                    "method": parts.method.as_str(),
                    "path": parts.uri.to_string(),
                    "body_bytes": size,
                    "headers": headers,
                });
                let resp = Response::builder()
                    .header("content-type", "application/json")
                    .header("x-replica", name)
                    .body(Full::new(Bytes::from(format!("{json:#}\n"))))
                    .unwrap_or_default();
                Ok::<_, Infallible>(resp)
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
