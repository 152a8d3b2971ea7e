//! SQLite connections for the HTTP side (logins, sessions, reports). Each request borrows
//! a connection from a small pool on a blocking thread; SQLite's WAL mode lets these read
//! while the storage thread writes, and `busy_timeout` makes a short write (a new session)
//! wait for the storage thread's transaction instead of failing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::store::{self, StoreError};

/// Connections kept open for reuse; more may be opened under load and are closed after.
pub const POOLED_CONNECTIONS_MAX: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a database task failed: {0}")]
    Task(String),
}

#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Db {
    pub fn new(path: &Path) -> Self {
        Db {
            inner: Arc::new(Pool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Runs `work` with a connection on a blocking thread.
    pub async fn run<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let connection = match pool.idle.lock().ok().and_then(|mut idle| idle.pop()) {
                Some(connection) => connection,
                None => store::open_connection(&pool.path)?,
            };
            let result = work(&connection);
            if let Ok(mut idle) = pool.idle.lock()
                && idle.len() < POOLED_CONNECTIONS_MAX
            {
                idle.push(connection);
            }
            result.map_err(DbError::from)
        })
        .await
        .map_err(|error| DbError::Task(error.to_string()))?
    }
}
