//! The one command: auth, two replicas each of user, task and appointment,
//! and gwanmun in-process in front of them with `examples/msa/gwanmun.yaml`.
//!
//! Order matters. Every service socket is bound first (with std, before the
//! runtime starts, so the ports the kernel picked for port 0 can be put in
//! the environment while the process has one thread: the config reads them
//! as `${MSA_*_PORT}`). Then the services serve, then the gateway binds,
//! and the tour is printed only once the gateway has loaded auth's JWKS.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::store::{Db, Storage};
use crate::Kind;

/// The config the demo runs, compiled into the binary so it runs from anywhere.
pub const CONFIG: &str = include_str!("../../examples/msa/gwanmun.yaml");
pub const CONFIG_NAME: &str = "examples/msa/gwanmun.yaml";

/// Requested ports on 127.0.0.1 (0: any free port).
#[derive(Debug, Clone)]
pub struct Ports {
    pub gateway: u16,
    pub auth: u16,
    pub user: [u16; 2],
    pub task: [u16; 2],
    pub appointment: [u16; 2],
}

/// The service sockets, bound.
#[derive(Debug)]
pub struct Bound {
    /// (kind, replica name, socket), auth first.
    pub services: Vec<(Kind, String, StdListener)>,
}

/// Binds every service socket and returns the `MSA_*` variables the config
/// expects, which the caller sets before loading it.
pub fn bind(ports: &Ports) -> anyhow::Result<(Bound, Vec<(String, String)>)> {
    let mut services = Vec::new();
    let mut env = vec![("MSA_GATEWAY_PORT".to_owned(), ports.gateway.to_string())];
    let mut add = |kind: Kind, replica: String, port: u16, var: String| -> anyhow::Result<()> {
        let l = StdListener::bind(("127.0.0.1", port))
            .map_err(|e| anyhow::anyhow!("{replica} on 127.0.0.1:{port}: {e}"))?;
        env.push((var, l.local_addr()?.port().to_string()));
        services.push((kind, replica, l));
        Ok(())
    };
    add(
        Kind::Auth,
        "auth-1".into(),
        ports.auth,
        "MSA_AUTH_PORT".into(),
    )?;
    for (kind, list) in [
        (Kind::User, ports.user),
        (Kind::Task, ports.task),
        (Kind::Appointment, ports.appointment),
    ] {
        for (i, port) in list.into_iter().enumerate() {
            let n = i + 1;
            let name = kind.name();
            let var = format!("MSA_{}_{n}_PORT", name.to_ascii_uppercase());
            add(kind, format!("{name}-{n}"), port, var)?;
        }
    }
    Ok((Bound { services }, env))
}

/// What the running system needs besides its sockets.
#[derive(Debug, Clone)]
pub struct Settings {
    pub storage: Storage,
    pub admin_email: String,
    pub admin_password: String,
}

/// Runs everything until Ctrl-C or SIGTERM, then drains the gateway and
/// stops the services.
pub async fn run(
    bound: Bound,
    snapshot: gwanmun::config::Snapshot,
    settings: Settings,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut services = JoinSet::new();
    let mut memory_dbs: Vec<(Kind, Db)> = Vec::new();
    let mut addrs: Vec<(String, SocketAddr)> = Vec::new();
    for (kind, replica, listener) in bound.services {
        // In memory, the replicas of a service share one database.
        let shared = memory_dbs.iter().find(|(k, _)| *k == kind).map(|(_, d)| d);
        let db = match (&settings.storage, shared) {
            (Storage::Memory, Some(db)) => db.clone(),
            _ => Db::open(&settings.storage, kind.name(), kind.schema())?,
        };
        if matches!(settings.storage, Storage::Memory) && shared.is_none() {
            memory_dbs.push((kind, db.clone()));
        }
        let service = kind.service(db)?;
        if let crate::Service::Auth(auth) = &service {
            auth.seed_admin(&settings.admin_email, &settings.admin_password)
                .await?;
        }
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        addrs.push((replica.clone(), listener.local_addr()?));
        let replica: Arc<str> = replica.into();
        services.spawn(crate::http::serve(
            listener,
            service,
            replica,
            stop_rx.clone(),
        ));
    }

    // Handlers first: a signal during start-up is a clean stop, not a kill.
    let shutdown = gwanmun::cli::shutdown_signal();
    let gateway = gwanmun::server::Gateway::new(snapshot);
    let server = gwanmun::server::Server::bind(gateway.clone()).await?;
    let addr = *server
        .local_addrs()
        .first()
        .ok_or_else(|| anyhow::anyhow!("the config has no listener"))?;
    wait_for_keys(&gateway).await;
    print_tour(addr, &addrs, &settings);

    let drained = server.run(shutdown).await;
    let _ = stop_tx.send(true);
    while services.join_next().await.is_some() {}
    println!(
        "stopped{}",
        if drained {
            ""
        } else {
            " (some requests were cut at the drain timeout)"
        }
    );
    Ok(())
}

/// The gateway fetches the JWKS at start (retrying for up to 30 s); auth is
/// already serving, so this is one round trip. Bounded: after 30 s the tour
/// is printed anyway and protected routes answer 503 until keys arrive.
async fn wait_for_keys(gateway: &gwanmun::server::Gateway) {
    for _ in 0..300 {
        if gateway.active().auth.ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(
        "the gateway has not loaded auth's JWKS yet; protected routes answer 503 until it does"
    );
}

fn print_tour(addr: SocketAddr, services: &[(String, SocketAddr)], s: &Settings) {
    let list: Vec<String> = services
        .iter()
        .map(|(name, a)| format!("{name} :{}", a.port()))
        .collect();
    let storage = match &s.storage {
        Storage::Memory => "in memory".to_owned(),
        Storage::Dir(d) => format!("in {}", d.display()),
    };
    let (email, password) = (&s.admin_email, &s.admin_password);
    println!(
        "
gwanmun is listening on http://{addr}
services: {}
data: {storage}
admin account: {email} / {password}

Try (jq-free; python3 extracts the token):
  GW=http://{addr}
  curl -s -X POST $GW/auth/signup -H 'Content-Type: application/json' -d '{{\"email\":\"me@example.com\",\"password\":\"secret-pass\",\"name\":\"Me\"}}'
  TOKEN=$(curl -s -X POST $GW/auth/login -H 'Content-Type: application/json' -d '{{\"email\":\"me@example.com\",\"password\":\"secret-pass\"}}' | python3 -c 'import sys, json; print(json.load(sys.stdin)[\"access_token\"])')
  curl -s -X POST $GW/api/tasks -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"title\":\"Try gwanmun\"}}'
  curl -si $GW/api/tasks -H \"Authorization: Bearer $TOKEN\"     # run twice: X-Replica task-1, task-2
  curl -s $GW/api/users/me -H \"Authorization: Bearer $TOKEN\"
  curl -si $GW/api/tasks                                        # 401: no token
  curl -si $GW/api/users -H \"Authorization: Bearer $TOKEN\"      # 403: admins only (log in as the admin above)
The full walk-through is in demo/WALKTHROUGH.md. Ctrl-C stops everything.
",
        list.join(", ")
    );
}

/// Runs one service alone (for containers): `gwanmun-demo service task`.
pub async fn run_service(
    kind: Kind,
    listen: SocketAddr,
    storage: Storage,
    replica: String,
    admin: Option<(String, String)>,
) -> anyhow::Result<()> {
    let db = Db::open(&storage, kind.name(), kind.schema())?;
    let service = kind.service(db)?;
    if let (crate::Service::Auth(auth), Some((email, password))) = (&service, &admin) {
        auth.seed_admin(email, password).await?;
    }
    let shutdown = gwanmun::cli::shutdown_signal();
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("{} on {listen}: {e}", kind.name()))?;
    tracing::info!(service = kind.name(), %replica, addr = %listen, "serving");
    let (stop_tx, stop_rx) = watch::channel(false);
    let serving = tokio::spawn(crate::http::serve(
        listener,
        service,
        replica.into(),
        stop_rx,
    ));
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = serving.await;
    Ok(())
}
