//! PostgreSQL backend: the production database, shared by several onestock processes.
//!
//! A write transaction runs in READ COMMITTED and takes row locks: `load_sku` locks the
//! SKU's pool and listing rows (`FOR UPDATE`), `append_event` the seller row. Writes are
//! buffered in the transaction (`tx::PgTx`) and sent at commit in one statement per
//! table, so a batch of 64 orders on one SKU costs one `UPDATE pool`, not 64. Lost
//! races (serialization failure, deadlock, unique violation) come back as
//! `StoreError::Retry` and `Database::write` runs the transaction again.
//!
//! The schema is `migrations/postgres/*.sql`, applied once at `open` under an advisory
//! lock so two processes starting together do not both migrate.

mod codec;
mod search;
mod tx;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use onestock_core::storage::{StoreError, StoreResult, Tx};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

/// Connections kept open between transactions. More may be open at once (one per
/// concurrent transaction); those beyond this are closed when their transaction ends.
const IDLE_CONNECTIONS_MAX: usize = 8;

/// The advisory lock key held while migrating ("onestock" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6f6e_6573_746f_636b;

/// A step of a migration that SQL cannot make alone, run after its SQL in the same
/// transaction.
type MigrationStep = fn(&mut postgres::Transaction<'_>) -> StoreResult<()>;

/// Migrations by version, applied in order, each in its own transaction.
const MIGRATIONS: &[(i32, &str, Option<MigrationStep>)] = &[
    (
        1,
        include_str!("../migrations/postgres/0001_init.sql"),
        None,
    ),
    (
        2,
        include_str!("../migrations/postgres/0002_report_and_uploads.sql"),
        None,
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_byte_order_keys.sql"),
        None,
    ),
    (
        4,
        include_str!("../migrations/postgres/0004_title_key.sql"),
        Some(fill_title_keys),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_title_key_index.sql"),
        None,
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_search_by_store.sql"),
        None,
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_search_index_short_pending_list.sql"),
        None,
    ),
];

/// Pages whose title keys are computed per statement while migrating: a bound on the
/// memory a large catalog's migration holds at once.
const TITLE_KEYS_PER_BATCH: i64 = 10_000;

/// Run once on every new connection.
const SESSION_SETTINGS: &str = "SET jit = off";

/// An open PostgreSQL database: a URL and a small pool of connections.
pub struct PgDb {
    url: String,
    /// A std mutex, not an async one: it is held only to push or pop a connection, never
    /// across a query, and the storage is called from plain threads.
    idle: Mutex<Vec<Conn>>,
}

/// The app shares one `PgDb` between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<PgDb>();
};

impl PgDb {
    /// Connects, applies the migrations and keeps the connection for later use.
    pub fn open(url: &str) -> StoreResult<PgDb> {
        let db = PgDb {
            url: url.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        let mut conn = db.connect()?;
        migrate(&mut conn.client)?;
        db.give_back(conn);
        Ok(db)
    }

    /// Runs `f` in one write transaction, sends the buffered writes and commits.
    pub fn write_once(&self, f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        self.run(false, f)
    }

    /// Brings the planner's statistics up to date now, as autovacuum does some time
    /// after a large change: for a benchmark that measures right after filling.
    pub fn analyze(&self) -> StoreResult<()> {
        let mut conn = self.take()?;
        let result = conn.client.batch_execute("ANALYZE").map_err(db_error);
        self.give_back(conn);
        result
    }

    /// Runs `f` in a read-only transaction.
    pub fn read_once(&self, f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        self.run(true, f)
    }

    fn run(
        &self,
        read_only: bool,
        f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let begin = if read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN"
        };
        let mut conn = self.take()?;
        if let Err(e) = conn.client.batch_execute(begin) {
            if e.as_db_error().is_some() {
                self.give_back(conn);
                return Err(db_error(e));
            }
            // A kept connection the server has closed meanwhile (a restart, an idle
            // timeout): open a new one.
            tracing::info!(error = %e, "reconnecting to PostgreSQL");
            conn = self.connect()?;
            conn.client.batch_execute(begin).map_err(db_error)?;
        }
        let result = run_tx(&mut conn, read_only, f);
        self.give_back(conn);
        result
    }

    fn connect(&self) -> StoreResult<Conn> {
        let mut client =
            Client::connect(&self.url, NoTls).map_err(|e| connect_error(&self.url, &e))?;
        // No JIT compilation: it starts once a plan's estimated cost passes
        // `jit_above_cost`, as an upload chunk's 8,000-key statements do, and it cost about
        // 10 ms a statement (measured) to speed up expressions evaluated a few thousand
        // times.
        client.batch_execute(SESSION_SETTINGS).map_err(db_error)?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
            pool_ids: Vec::new(),
            term_stats: HashMap::new(),
            search_partitions: HashSet::new(),
            failure: None,
            broken: false,
        })
    }

    fn take(&self) -> StoreResult<Conn> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    /// Keeps the connection for the next transaction unless it broke or enough are kept.
    fn give_back(&self, conn: Conn) {
        if conn.broken || conn.client.is_closed() {
            tracing::warn!("dropping a closed PostgreSQL connection");
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_CONNECTIONS_MAX {
            idle.push(conn);
        }
    }
}

/// A failed connection, said so that whoever runs onestock knows what to do: start the
/// server, create the database, or fix the user. The URL itself is not repeated (it may
/// hold a password); its host, port, user and database are.
fn connect_error(url: &str, e: &postgres::Error) -> StoreError {
    let config: Option<postgres::Config> = url.parse().ok();
    let host = config
        .as_ref()
        .and_then(|c| c.get_hosts().first().cloned())
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name,
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config
        .as_ref()
        .and_then(|c| c.get_ports().first().copied())
        .unwrap_or(5432);
    let user = config
        .as_ref()
        .and_then(|c| c.get_user().map(str::to_owned))
        .unwrap_or_else(|| "postgres".to_owned());
    let database = config
        .as_ref()
        .and_then(|c| c.get_dbname().map(str::to_owned))
        .unwrap_or_else(|| user.clone());
    let at = format!("{host}:{port}");
    let message = if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_CATALOG_NAME {
            format!(
                "database \"{database}\" does not exist on the PostgreSQL server at {at}. onestock creates its tables, not the database: create it with `createdb -h {host} -p {port} -U {user} {database}` (or, in psql, `CREATE DATABASE \"{database}\";`), then run this again"
            )
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            format!(
                "the PostgreSQL server at {at} refused user \"{user}\": {}. Check the user and password in the database URL (postgres://USER:PASSWORD@{at}/{database}), that the role exists, and that pg_hba.conf lets it connect",
                db.message()
            )
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            format!(
                "the PostgreSQL server at {at} has no connection left ({}): raise its max_connections or run fewer clients",
                db.message()
            )
        } else {
            format!("the PostgreSQL server at {at} refused the connection: {e}")
        }
    } else {
        match io_error_kind(e) {
            Some(std::io::ErrorKind::ConnectionRefused) => format!(
                "the PostgreSQL server is not reachable at {at} (connection refused): start it (for example `pg_ctlcluster <version> main start` or `systemctl start postgresql`), or correct the host and port in the database URL"
            ),
            Some(std::io::ErrorKind::TimedOut) => format!(
                "the PostgreSQL server at {at} did not answer in time: check that it runs, that the host and port are right, and that no firewall is in the way"
            ),
            Some(std::io::ErrorKind::NotFound) => format!(
                "there is no PostgreSQL server at {at} (no such socket or host): start it, or correct the host in the database URL"
            ),
            _ => format!("cannot reach the PostgreSQL server at {at}: {e}"),
        }
    };
    StoreError::Other(format!("connect to PostgreSQL: {message}"))
}

/// The I/O failure behind a client error, if it is one.
fn io_error_kind(e: &postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// After BEGIN: `f`, flush, COMMIT; ROLLBACK on any error. A connection whose ROLLBACK
/// fails is marked so `give_back` drops it.
fn run_tx(
    conn: &mut Conn,
    read_only: bool,
    f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
) -> StoreResult<()> {
    conn.failure = None;
    let outcome = {
        let mut tx = tx::PgTx::new(conn, read_only);
        match f(&mut tx) {
            Ok(()) => tx.flush(),
            Err(e) => Err(e),
        }
    };
    // A statement that failed aborts the transaction even when `f` went on: PostgreSQL
    // would then answer COMMIT with a silent ROLLBACK, so report the first failure.
    let outcome = match (outcome, conn.failure.take()) {
        (Ok(()), Some(failure)) => Err(failure.into_error()),
        (outcome, _) => outcome,
    };
    match outcome {
        Ok(()) => conn.client.batch_execute("COMMIT").map_err(db_error),
        Err(e) => {
            if let Err(rollback) = conn.client.batch_execute("ROLLBACK") {
                tracing::warn!(%rollback, "ROLLBACK failed; closing the connection");
                close(conn);
            }
            Err(e)
        }
    }
}

/// Marks the connection so the pool drops it: its session state is unknown.
fn close(conn: &mut Conn) {
    conn.broken = true;
}

/// Applies the pending migrations, holding an advisory lock so that two processes
/// starting at once migrate one after the other.
fn migrate(client: &mut Client) -> StoreResult<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .map_err(db_error)?;
    let result = apply_migrations(client);
    // The lock is the session's: release it even when a migration failed.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .map_err(db_error);
    result.and(unlock.map(|_| ()))
}

fn apply_migrations(client: &mut Client) -> StoreResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                version    integer PRIMARY KEY,
                applied_at bigint NOT NULL
            )",
        )
        .map_err(db_error)?;
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .map_err(db_error)?;
    let current: i32 = codec::col(&row, 0)?;
    for (version, sql, step) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        let mut t = client.transaction().map_err(db_error)?;
        t.batch_execute(sql).map_err(db_error)?;
        if let Some(step) = step {
            step(&mut t)?;
        }
        let now = codec::micros(time::OffsetDateTime::now_utc());
        t.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
            &[version, &now],
        )
        .map_err(db_error)?;
        t.commit().map_err(db_error)?;
        tracing::info!(version, "applied PostgreSQL migration");
    }
    Ok(())
}

/// Migration 4's step: gives every page written before it its normalised title
/// (`onestock_core::catalog::normalize_title`), which SQL cannot compute, in batches of
/// `TITLE_KEYS_PER_BATCH` pages in key order.
fn fill_title_keys(t: &mut postgres::Transaction<'_>) -> StoreResult<()> {
    let mut after: (String, String) = (String::new(), String::new());
    let mut filled: u64 = 0;
    loop {
        let rows = t
            .query(
                "SELECT asin, store, title FROM catalog_page WHERE (asin, store) > ($1, $2)
                 ORDER BY asin, store LIMIT $3",
                &[&after.0, &after.1, &TITLE_KEYS_PER_BATCH],
            )
            .map_err(db_error)?;
        if rows.is_empty() {
            break;
        }
        let mut asins: Vec<String> = Vec::with_capacity(rows.len());
        let mut stores: Vec<String> = Vec::with_capacity(rows.len());
        let mut keys: Vec<String> = Vec::with_capacity(rows.len());
        for row in &rows {
            asins.push(codec::col(row, 0)?);
            stores.push(codec::col(row, 1)?);
            let title: String = codec::col(row, 2)?;
            keys.push(onestock_core::catalog::normalize_title(&title));
        }
        t.execute(
            "UPDATE catalog_page p SET title_key = k.title_key
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS k(asin, store, title_key)
             WHERE p.asin = k.asin AND p.store = k.store",
            &[&asins, &stores, &keys],
        )
        .map_err(db_error)?;
        filled += rows.len() as u64;
        tracing::info!(pages = filled, "filled catalog title keys");
        if let (Some(asin), Some(store)) = (asins.pop(), stores.pop()) {
            after = (asin, store);
        }
    }
    Ok(())
}

/// A first failure kept on the connection (see `run_tx`).
struct Failure {
    retry: bool,
    text: String,
}

impl Failure {
    fn into_error(self) -> StoreError {
        if self.retry {
            StoreError::Retry(self.text)
        } else {
            StoreError::Other(self.text)
        }
    }
}

/// A connection and its prepared statements: a statement is prepared once and then
/// reused, so a query is one round trip, and prepared again after [`Prepared::replan_at`]
/// executions so that its plan follows the tables' growth.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<&'static str, Prepared>,
    failure: Option<Failure>,
    /// Set when the session's state is unknown (a failed ROLLBACK): never reused.
    broken: bool,
    /// Pool ids taken from the sequence ahead, a block at a time: a sequence never
    /// hands a number out twice, even when the transaction that took it rolls back.
    pub(crate) pool_ids: Vec<i64>,
    /// The catalog words' shares of pages, for the search plan (`search.rs`).
    pub(crate) term_stats: HashMap<String, search::TermStats>,
    /// Stores whose `catalog_search` partition this connection saw committed.
    pub(crate) search_partitions: HashSet<String>,
}

/// A prepared statement and how often it ran.
///
/// PostgreSQL plans a prepared statement's sixth execution once for all (a generic plan)
/// from the table sizes of that moment. A statement prepared on a new database keeps the
/// plan of its near-empty tables: the batch's order look-up stayed a hash join over a
/// scan of every order, and a benchmark on a fresh database ran at half the speed of the
/// same benchmark on an analysed one (9,100 against 17,900 orders/s at 64 clients).
/// Preparing it again at growing intervals lets the plan follow the data, for one
/// `PREPARE` in thousands of executions.
struct Prepared {
    statement: Statement,
    uses: u64,
    replan_at: u64,
}

/// Executions before a statement is first prepared again.
const REPLAN_EXECUTIONS_FIRST: u64 = 64;
/// Each interval is this many times the one before ...
const REPLAN_GROWTH: u64 = 4;
/// ... up to this: a plan is at most this many executions old.
const REPLAN_EXECUTIONS_MAX: u64 = 100_000;

impl Conn {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        let replan_at = match self.statements.get_mut(sql) {
            Some(p) if p.uses < p.replan_at => {
                p.uses += 1;
                return Ok(p.statement.clone());
            }
            Some(p) => (p.replan_at * REPLAN_GROWTH).min(REPLAN_EXECUTIONS_MAX),
            None => REPLAN_EXECUTIONS_FIRST,
        };
        let statement = self.client.prepare(sql)?;
        self.statements.insert(
            sql,
            Prepared {
                statement: statement.clone(),
                uses: 1,
                replan_at,
            },
        );
        Ok(statement)
    }

    fn note(&mut self, e: postgres::Error) -> StoreError {
        let stale_plan = e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED)
            && e.as_db_error().is_some_and(|d| {
                d.message()
                    .contains("cached plan must not change result type")
            });
        let err = if stale_plan {
            // A migration another process applied changed a column these statements
            // return (0003's collations): prepare them afresh and run the transaction
            // again.
            self.statements.clear();
            match db_error(e) {
                StoreError::Retry(t) | StoreError::Other(t) => StoreError::Retry(t),
            }
        } else {
            db_error(e)
        };
        if self.failure.is_none() {
            self.failure = Some(match &err {
                StoreError::Retry(t) => Failure {
                    retry: true,
                    text: t.clone(),
                },
                StoreError::Other(t) => Failure {
                    retry: false,
                    text: t.clone(),
                },
            });
        }
        err
    }

    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<Row>> {
        let result = match self.statement(sql) {
            Ok(s) => self.client.query(&s, params),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.note(e))
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Option<Row>> {
        let result = match self.statement(sql) {
            Ok(s) => self.client.query_opt(&s, params),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.note(e))
    }

    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<u64> {
        let result = match self.statement(sql) {
            Ok(s) => self.client.execute(&s, params),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.note(e))
    }
}

/// Serialization failures, deadlocks and unique violations (a lost race: two processes
/// inserting the same order or starting the same SKU) are worth running again.
fn db_error(e: postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{}: {} ({detail})", d.code().code(), d.message()),
            None => format!("{}: {}", d.code().code(), d.message()),
        },
        None => e.to_string(),
    };
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::UNIQUE_VIOLATION =>
        {
            StoreError::Retry(text)
        }
        _ => StoreError::Other(text),
    }
}

/// Creates a fresh, empty database `onestock_t_<random hex>` on the server of
/// `admin_url` and returns its URL. For tests.
pub fn create_test_database(admin_url: &str) -> StoreResult<String> {
    let mut admin = Client::connect(admin_url, NoTls).map_err(|e| connect_error(admin_url, &e))?;
    let row = admin
        .query_one(
            "SELECT substr(md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text), 1, 16)",
            &[],
        )
        .map_err(db_error)?;
    let hex: String = codec::col(&row, 0)?;
    let name = format!("onestock_t_{hex}");
    // The name is ours (hex digits), safe to put in the statement.
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .map_err(db_error)?;
    Ok(url_with_database(admin_url, &name))
}

/// Drops a database made by `create_test_database`, ending its connections first.
pub fn drop_database(admin_url: &str, url: &str) -> StoreResult<()> {
    let name = database_of(url);
    if !name.starts_with("onestock_t_")
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(StoreError::Other(format!(
            "refusing to drop {name:?}: not a test database"
        )));
    }
    let mut admin = Client::connect(admin_url, NoTls)
        .map_err(|e| StoreError::Other(format!("connect to {admin_url}: {e}")))?;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .map_err(db_error)?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .map_err(db_error)?;
    Ok(())
}

/// `postgres://user@host:5432/test?x=y` with the database replaced by `name`.
fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[start..]
        .find('/')
        .map(|i| start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The database name of a URL (empty when none).
fn database_of(url: &str) -> String {
    let base = url.split_once('?').map(|(b, _)| b).unwrap_or(url);
    let start = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[start..].find('/') {
        Some(i) => base[start + i + 1..].to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            url_with_database("postgresql://h?sslmode=disable", "x"),
            "postgresql://h/x?sslmode=disable"
        );
        assert_eq!(
            database_of("postgres://h:1/onestock_t_ab?a=b"),
            "onestock_t_ab"
        );
    }

    #[test]
    fn a_refused_connection_says_where_and_to_start_the_server() {
        // Port 1 on the loopback: nothing listens there, so the kernel refuses at once.
        let url = "postgres://postgres:secret@127.0.0.1:1/onestock";
        let Err(e) = PgDb::open(url) else {
            panic!("something answered on port 1");
        };
        let text = e.to_string();
        assert!(text.contains("not reachable at 127.0.0.1:1"), "{text}");
        assert!(text.contains("start it"), "{text}");
        assert!(!text.contains("secret"), "the password was shown: {text}");
    }

    #[test]
    fn a_missing_database_says_how_to_create_it() {
        let Ok(admin) = std::env::var("ONESTOCK_TEST_POSTGRES_URL") else {
            println!("skipped: ONESTOCK_TEST_POSTGRES_URL is not set");
            return;
        };
        let name = format!("onestock_never_created_{}", std::process::id());
        let Err(e) = PgDb::open(&url_with_database(&admin, &name)) else {
            panic!("{name} exists");
        };
        let text = e.to_string();
        assert!(
            text.contains(&format!("database \"{name}\" does not exist")),
            "{text}"
        );
        assert!(text.contains("createdb -h "), "{text}");
        assert!(
            text.contains(&format!("CREATE DATABASE \"{name}\"")),
            "{text}"
        );
    }
}
