//! `gwanmun-demo`: the whole sample system in one command, or one service
//! alone (`gwanmun-demo service task`) for containers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gwanmun_demo::store::Storage;
use gwanmun_demo::system::{self, Ports, Settings};
use gwanmun_demo::Kind;

#[derive(Parser, Debug)]
#[command(
    name = "gwanmun-demo",
    version,
    about = "auth, user, task and appointment services behind gwanmun, in one command",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    all: AllArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one service alone (as in a container); the gateway runs elsewhere.
    Service(ServiceArgs),
}

#[derive(Args, Debug)]
struct AllArgs {
    /// gwanmun's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The auth service's port.
    #[arg(long, default_value_t = 9000)]
    auth_port: u16,
    /// The two user replicas' ports.
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "9101,9102")]
    user_ports: Vec<u16>,
    /// The two task replicas' ports.
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "9201,9202")]
    task_ports: Vec<u16>,
    /// The two appointment replicas' ports.
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "9301,9302")]
    appointment_ports: Vec<u16>,
    #[command(flatten)]
    storage: StorageArgs,
    /// Email of the seeded admin account.
    #[arg(long, default_value = "admin@example.com")]
    admin_email: String,
    /// Its password (default: a new random one, printed at start).
    #[arg(long, env = "GWANMUN_DEMO_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// A gateway config to use instead of the built-in examples/msa/gwanmun.yaml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log filter (e.g. info, warn, gwanmun=debug).
    #[arg(long, default_value = "info")]
    log: String,
}

#[derive(Args, Debug)]
struct StorageArgs {
    /// Directory of the services' SQLite files.
    #[arg(long, default_value = "gwanmun-demo-data")]
    data_dir: PathBuf,
    /// Keep all data in memory (lost on exit).
    #[arg(long)]
    memory: bool,
}

impl StorageArgs {
    fn storage(&self) -> Storage {
        if self.memory {
            Storage::Memory
        } else {
            Storage::Dir(self.data_dir.clone())
        }
    }
}

#[derive(Args, Debug)]
struct ServiceArgs {
    /// Which service.
    #[arg(value_enum)]
    kind: Kind,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    /// Name in the X-Replica header (default: $HOSTNAME, else the service name).
    #[arg(long, env = "HOSTNAME")]
    replica: Option<String>,
    /// auth only: seed this admin account...
    #[arg(long)]
    admin_email: Option<String>,
    /// ...with this password.
    #[arg(long, env = "GWANMUN_DEMO_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Log filter.
    #[arg(long, default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Service(args)) => service(args),
        None => all(cli.all),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gwanmun-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn all(args: AllArgs) -> anyhow::Result<()> {
    let _log =
        gwanmun::observability::init(Some(&args.log), gwanmun::observability::LogFormat::Text);
    let pair = |name: &str, v: &[u16]| -> anyhow::Result<[u16; 2]> {
        <[u16; 2]>::try_from(v)
            .map_err(|_| anyhow::anyhow!("--{name}-ports takes two ports, e.g. 9201,9202"))
    };
    let ports = Ports {
        gateway: args.port,
        auth: args.auth_port,
        user: pair("user", &args.user_ports)?,
        task: pair("task", &args.task_ports)?,
        appointment: pair("appointment", &args.appointment_ports)?,
    };
    let (bound, env) = system::bind(&ports)?;
    // Still single-threaded here: setting the environment is safe.
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let snapshot = match &args.config {
        Some(path) => gwanmun::config::load_file(path),
        None => gwanmun::config::load_str(system::CONFIG, system::CONFIG_NAME),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = Settings {
        storage: args.storage.storage(),
        admin_email: args.admin_email,
        admin_password: match args.admin_password {
            Some(p) => p,
            None => gwanmun_demo::auth::random_password()?,
        },
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(system::run(bound, snapshot, settings))
}

fn service(args: ServiceArgs) -> anyhow::Result<()> {
    let _log =
        gwanmun::observability::init(Some(&args.log), gwanmun::observability::LogFormat::Auto);
    let replica = args.replica.unwrap_or_else(|| args.kind.name().to_owned());
    let admin = args.admin_email.zip(args.admin_password);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(system::run_service(
            args.kind,
            args.listen,
            args.storage.storage(),
            replica,
            admin,
        ))
}
