//! The sample system behind gwanmun: four small services and the one
//! command that starts them with the gateway in front.
//!
//! - [`auth`]: sign-up, login, rotating refresh tokens, ES256 access tokens, JWKS
//! - [`users`], [`tasks`], [`appointments`]: the domain services, which
//!   trust only the identity headers the gateway sets
//! - [`http`]: the accept loop, JSON answers, the identity, the replica header
//! - [`store`]: one SQLite database per service, on disk or in memory
//! - [`system`]: the one command (every service, two replicas each, and
//!   gwanmun in-process) and the tour it prints

pub mod appointments;
pub mod auth;
pub mod http;
pub mod store;
pub mod system;
pub mod tasks;
pub mod users;

use std::sync::Arc;

/// A service a listener serves: a closed set, dispatched by `match`.
#[derive(Debug, Clone)]
pub enum Service {
    Auth(Arc<auth::AuthService>),
    User(Arc<users::UserService>),
    Task(Arc<tasks::TaskService>),
    Appointment(Arc<appointments::AppointmentService>),
}

impl Service {
    pub async fn handle(&self, req: http::Req) -> http::Resp {
        match self {
            Service::Auth(s) => s.handle(req).await,
            Service::User(s) => s.handle(req),
            Service::Task(s) => s.handle(req),
            Service::Appointment(s) => s.handle(req),
        }
    }
}

/// The four kinds of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Auth,
    User,
    Task,
    Appointment,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Auth => "auth",
            Kind::User => "user",
            Kind::Task => "task",
            Kind::Appointment => "appointment",
        }
    }

    /// Builds the service over an opened database (see [`Kind::schema`]).
    pub fn service(self, db: store::Db) -> anyhow::Result<Service> {
        Ok(match self {
            Kind::Auth => Service::Auth(Arc::new(auth::AuthService::new(db)?)),
            Kind::User => Service::User(Arc::new(users::UserService::new(db))),
            Kind::Task => Service::Task(Arc::new(tasks::TaskService::new(db))),
            Kind::Appointment => {
                Service::Appointment(Arc::new(appointments::AppointmentService::new(db)))
            }
        })
    }

    pub fn schema(self) -> &'static str {
        match self {
            Kind::Auth => auth::SCHEMA,
            Kind::User => users::SCHEMA,
            Kind::Task => tasks::SCHEMA,
            Kind::Appointment => appointments::SCHEMA,
        }
    }
}
