//! SQLite storage: one database per service, a file under the data
//! directory (`auth.sqlite3`, ...) or in memory.
//!
//! Replicas of a service open their own connection to the same file, as
//! separate processes would (WAL mode and a busy timeout let them share
//! it). In memory there is nothing to share a file through, so the
//! replicas of a service are handed one connection.
//!
//! Statements are short and local, so handlers run them inline under the
//! connection's mutex instead of hopping to a blocking thread.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::http::{internal, ApiError};

/// Where the services keep their data.
#[derive(Debug, Clone)]
pub enum Storage {
    Memory,
    Dir(PathBuf),
}

/// A shared connection to one service's database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating when needed) the database of `service` and applies
    /// its schema, which is written to be run on every start.
    pub fn open(storage: &Storage, service: &str, schema: &str) -> anyhow::Result<Db> {
        let conn = match storage {
            Storage::Memory => Connection::open_in_memory()?,
            Storage::Dir(dir) => {
                std::fs::create_dir_all(dir)?;
                let conn = Connection::open(dir.join(format!("{service}.sqlite3")))?;
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn
            }
        };
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(schema)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection; a database error becomes a 500.
    pub fn run<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ApiError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|e| internal("database error", &e))
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::from_unix_timestamp(now_unix())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An RFC 3339 time (`2030-02-01T10:00:00Z`, any offset).
pub fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// A calendar date (`2030-01-31`) or an RFC 3339 time.
pub fn is_date_or_time(text: &str) -> bool {
    if parse_time(text).is_some() {
        return true;
    }
    // A date is an RFC 3339 full-date: check it as the start of that day.
    text.len() == 10 && parse_time(&format!("{text}T00:00:00Z")).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert!(is_date_or_time("2030-01-31"));
        assert!(is_date_or_time("2030-02-01T10:00:00+09:00"));
        assert!(!is_date_or_time("2030-02-30"));
        assert!(!is_date_or_time("tomorrow"));
        let a = parse_time("2030-02-01T10:00:00+09:00").unwrap();
        let b = parse_time("2030-02-01T02:00:00Z").unwrap();
        assert!(a < b);
    }
}
