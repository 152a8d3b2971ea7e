//! The command line (clap derive): `serve`, account and org-unit management.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use caresync_core::domain::{Account, OrgLevel, OrgUnit, OrgUnitCode, Role, SubjectId};
use clap::{Args, Parser, Subcommand};

use crate::auth::password::hash_password;
use crate::store;

/// caresync: the relay of the offline-first record and sync system.
#[derive(Debug, Parser)]
#[command(name = "caresync", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay: WebSocket sync at /sync, the JSON API at /api/v1/, the web app at /.
    Serve(ServeArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage org units (prefecture, districts, townships, villages).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Show the newest entries of the audit log (refused changes, denied reads, protocol
    /// violations), newest first.
    Audit {
        #[arg(long, default_value = "./caresync.db")]
        db: PathBuf,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Check the database file with SQLite's `PRAGMA integrity_check`: prints `ok`, or the
    /// problems found and exits with an error. Safe while the relay is running.
    CheckDb {
        #[arg(long, default_value = "./caresync.db")]
        db: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "./caresync.db")]
    pub db: PathBuf,

    /// Address to listen on (use port 0 to let the system pick a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Fill an empty database with a demo prefecture and demo accounts.
    #[arg(long)]
    pub demo: bool,

    /// Directory of the web app served at `/`.
    #[arg(long, default_value = "web-demo")]
    pub web_dir: PathBuf,

    /// Lifetime of a login session, in seconds (default 30 days: phones stay offline long).
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    pub session_ttl_secs: u64,

    /// A sync connection that sends nothing for this many seconds is closed.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Bytes of frames from all connections that may wait for the engine thread before
    /// connections stop reading (at least one frame always fits).
    #[arg(long, default_value_t = crate::relay::limits::ENGINE_QUEUE_BYTES_MAX)]
    pub engine_queue_bytes_max: usize,

    /// Another origin allowed to open /sync from a browser (repeatable).
    #[arg(long)]
    pub allow_origin: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account; the password is read from the first line of stdin.
    Add {
        #[arg(long, default_value = "./caresync.db")]
        db: PathBuf,
        #[arg(long)]
        username: String,
        /// village-child-director, care-worker, township-reviewer or bureau-admin.
        #[arg(long)]
        role: String,
        /// The account's org unit (repeatable).
        #[arg(long = "org-unit", required = true)]
        org_units: Vec<String>,
        /// Care workers: an elder (document id) assigned to them (repeatable).
        #[arg(long = "assign-elder")]
        assigned_elders: Vec<String>,
    },
    /// Disable an account: its sessions end and its devices are refused.
    Disable {
        #[arg(long, default_value = "./caresync.db")]
        db: PathBuf,
        #[arg(long)]
        username: String,
    },
    /// List accounts.
    List {
        #[arg(long, default_value = "./caresync.db")]
        db: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add one org unit.
    Add {
        #[arg(long, default_value = "./caresync.db")]
        db: PathBuf,
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// prefecture, district, township or village.
        #[arg(long)]
        level: String,
        /// The parent unit's code (all but the prefecture have one).
        #[arg(long)]
        parent: Option<String>,
    },
    /// Import org units from a CSV file with the header `code,name,level,parent`.
    Import {
        #[arg(long, default_value = "./caresync.db")]
        db: PathBuf,
        #[arg(long)]
        csv: PathBuf,
    },
}

/// Runs one subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::run(args),
        Command::User(command) => user(command),
        Command::Org(command) => org(command),
        Command::Audit { db, limit } => {
            let connection = store::open_connection(&db)?;
            for entry in store::recent_audit(&connection, limit.into())? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    entry.at_ms,
                    entry.event,
                    entry.account.as_deref().unwrap_or("-"),
                    entry.document.as_deref().unwrap_or("-"),
                    entry.detail
                );
            }
            Ok(())
        }
        Command::CheckDb { db } => {
            let problems = store::integrity_check(&db)
                .with_context(|| format!("cannot check {}", db.display()))?;
            if problems.is_empty() {
                println!("ok");
                return Ok(());
            }
            for problem in &problems {
                println!("{problem}");
            }
            bail!(
                "{} failed the integrity check ({} problems)",
                db.display(),
                problems.len()
            )
        }
    }
}

fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            db,
            username,
            role,
            org_units,
            assigned_elders,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}: use village-child-director, care-worker, township-reviewer or bureau-admin")
            })?;
            let connection = store::open_connection(&db)?;
            let tree = store::load_org_tree(&connection)?;
            for unit in &org_units {
                if tree.get(&OrgUnitCode::new(unit.as_str())).is_none() {
                    bail!("no org unit {unit:?}; add it first with `caresync org add`");
                }
            }
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let hash = hash_password(password)?;
            let account = Account::new(format!("acct-{username}"), username.clone(), role)
                .with_org_units(org_units.iter().map(|u| OrgUnitCode::new(u.as_str())))
                .with_assigned_elders(assigned_elders.iter().map(|e| SubjectId::new(e.as_str())));
            let now = i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX);
            store::insert_account(&connection, &account, &hash, now)?;
            println!("added {username} ({})", role.as_str());
            Ok(())
        }
        UserCommand::Disable { db, username } => {
            let connection = store::open_connection(&db)?;
            if !store::set_disabled(&connection, &username, true)? {
                bail!("no account {username:?}");
            }
            if let Some((account, _)) = store::account_by_username(&connection, &username)? {
                store::revoke_sessions_of(&connection, &account.id)?;
            }
            println!("disabled {username}; its sessions are revoked");
            Ok(())
        }
        UserCommand::List { db } => {
            let connection = store::open_connection(&db)?;
            for account in store::list_accounts(&connection)? {
                println!(
                    "{:<20} {:<24} {:<30} {}",
                    account.username,
                    account.role.as_str(),
                    account
                        .org_units
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    if account.disabled { "disabled" } else { "" }
                );
            }
            Ok(())
        }
    }
}

fn org(command: OrgCommand) -> anyhow::Result<()> {
    match command {
        OrgCommand::Add {
            db,
            code,
            name,
            level,
            parent,
        } => {
            let level = OrgLevel::parse(&level).with_context(|| {
                format!("unknown level {level:?}: use prefecture, district, township or village")
            })?;
            let connection = store::open_connection(&db)?;
            let unit = OrgUnit {
                code: OrgUnitCode::new(code.as_str()),
                name,
                level,
                parent: parent.map(|p| OrgUnitCode::new(p.as_str())),
            };
            store::insert_org_unit(&connection, &unit)?;
            println!("added {code}");
            Ok(())
        }
        OrgCommand::Import { db, csv } => {
            let file = std::fs::File::open(&csv)
                .with_context(|| format!("cannot open {}", csv.display()))?;
            let connection = store::open_connection(&db)?;
            let count = store::import_org_units_csv(&connection, file)?;
            println!("imported {count} org units");
            Ok(())
        }
    }
}
