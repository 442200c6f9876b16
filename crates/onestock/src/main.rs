//! The `onestock` command line: `serve` and `migrate` open a database; every other
//! subcommand that acts on data reaches a running server through its API (`--url`,
//! `--token`, or `ONESTOCK_URL`, `ONESTOCK_TOKEN`), never a database file behind its back.

/// mimalloc instead of glibc's malloc: allocation and freeing were a seventh of the
/// order path's CPU (many small, short-lived allocations across threads), and glibc's
/// `malloc_consolidate` showed on its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use onestock::client::Remote;
use onestock::server::{ConnectionLimits, ServerConfig, build, serve_with};
use onestock_core::clock::SystemClock;
use onestock_core::region::Region;

/// onestock: one quantity for the same item in several country stores.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the HTTP API (applies database migrations first).
    Serve {
        /// `sqlite:PATH` or `postgres://USER@HOST/DB`. Default: `sqlite:onestock.db` in
        /// the working folder.
        #[arg(long, env = "ONESTOCK_DATABASE_URL")]
        database_url: Option<String>,
        /// Address to listen on.
        #[arg(long, env = "ONESTOCK_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// A region file (TOML, described in docs/rules.md, "Stores and regions"). Default: North America (US, CA, MX).
        #[arg(long)]
        region: Option<PathBuf>,
        /// Fill an empty database with a demo seller and listings, and print how to
        /// reach them.
        #[arg(long)]
        demo: bool,
        /// Where received upload files wait to be processed.
        #[arg(long, env = "ONESTOCK_UPLOAD_DIR", default_value = "onestock-uploads")]
        upload_dir: PathBuf,
        /// The operator's bearer token. When unset, one is generated on the first start,
        /// stored hashed and printed once.
        #[arg(
            long = "operator-token",
            env = "ONESTOCK_OPERATOR_TOKEN",
            hide_env_values = true
        )]
        operator_token: Option<String>,
        /// Requests per second for each seller token before answering 429 RATE_LIMITED
        /// with Retry-After (0: no limit). Seller tokens only: the operator's token, which
        /// carries every storefront's orders, is never limited.
        #[arg(long, env = "ONESTOCK_RATE_LIMIT", default_value_t = onestock::server::RATE_LIMIT_DEFAULT)]
        rate_limit: u32,
        /// Connections served at once; more are refused with 503. Default: 10,000, or
        /// less where the open-file limit (`ulimit -n`) is lower.
        #[arg(long, env = "ONESTOCK_MAX_CONNECTIONS")]
        max_connections: Option<usize>,
        /// The address SP-API feed document URLs name (upload and download), such as
        /// https://onestock.example.com. Default: the listen address.
        #[arg(long, env = "ONESTOCK_PUBLIC_URL")]
        public_url: Option<String>,
        /// How log lines are written to standard error: `text` for a person (colours
        /// only at a terminal), `json` for a log collector (one JSON object per line,
        /// with the request's `request_id`, `method` and `route` as span fields).
        #[arg(long, env = "ONESTOCK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Apply the database migrations and exit (serve also applies them).
    Migrate {
        #[arg(long, env = "ONESTOCK_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Seller accounts, through a running server (the operator's token).
    Seller {
        #[command(subcommand)]
        command: SellerCmd,
    },
    /// Send an upload file to a running server, show progress, save the report beside
    /// the file as FILE.UPLOAD_ID.report.txt.
    ///
    /// Exit status: 0 when every row was applied; 1 when the server refused the file,
    /// the file could not be read (FATAL) or any row failed (the report says which).
    Upload {
        /// The store the file is for (US, CA, MX, ...).
        #[arg(long)]
        store: String,
        /// The file: tab- or comma-separated text, or .xlsx.
        file: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Past uploads of the seller, through a running server.
    Uploads {
        #[command(subcommand)]
        command: UploadsCmd,
    },
    /// The seller's store listings, through a running server.
    Listings {
        #[command(subcommand)]
        command: ListingsCmd,
    },
    /// Every change of a SKU's quantities (the ledger), through a running server.
    Ledger {
        /// The SKU, as you wrote it (case-sensitive).
        sku: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Write an empty inventory-loader template to FILE (`.xlsx`: a workbook; any other
    /// name: tab-separated text), or to standard output.
    Template { file: Option<PathBuf> },
    /// Measure order throughput: group commit against one transaction per order; after
    /// each run, check no oversell and that the ledger sums hold.
    Bench(onestock::bench::BenchArgs),
    /// Measure upload processing: a generated file, from upload to DONE, and the
    /// server's peak memory; then check the rows applied and the ledger sums.
    BenchUpload(onestock::bench::UploadBenchArgs),
    /// Measure catalog keyword search: fill a throwaway database with generated pages,
    /// then time searches one at a time and print their percentiles.
    BenchSearch(onestock::bench::search::SearchBenchArgs),
}

/// A running server and the token to call it with.
#[derive(Args)]
struct RemoteArgs {
    /// The server's address.
    #[arg(long, env = "ONESTOCK_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The bearer token: the seller's for listings, uploads and the ledger; the operator's for `seller create` and `seller list`.
    #[arg(long, env = "ONESTOCK_TOKEN", hide_env_values = true)]
    token: String,
}

impl RemoteArgs {
    fn remote(&self) -> anyhow::Result<Remote> {
        Remote::new(&self.url, &self.token)
    }
}

#[derive(Subcommand)]
enum SellerCmd {
    /// Create a seller (`POST /v1/sellers`, operator token) and print its id and token
    /// (the token is shown once).
    Create {
        /// The seller's name.
        #[arg(value_name = "NAME", required_unless_present = "name_flag")]
        name: Option<String>,
        /// The seller's name (the same as NAME).
        #[arg(long = "name", value_name = "NAME", conflicts_with = "name")]
        name_flag: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List the sellers (`GET /v1/sellers`, operator token), in id order
    /// (tab-separated: id, name, created).
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Subcommand)]
enum UploadsCmd {
    /// List the seller's uploads, newest first (tab-separated: id, store, status, counts).
    List {
        /// Only this store's uploads.
        #[arg(long)]
        store: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Print an upload's processing report (tab-separated, the marketplace's layout).
    Report {
        /// The upload id, as `upload` and `uploads list` print it.
        upload_id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Subcommand)]
enum ListingsCmd {
    /// List the seller's store listings in SKU order (tab-separated).
    List {
        /// Only this store's listings.
        #[arg(long)]
        store: Option<String>,
        /// Only `active` or `inactive` listings.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Write one store's listings as an inventory-loader file (tab-separated UTF-8) to
    /// standard output: `onestock listings export --store CA > ca.txt`. Uploading the
    /// file back to the same store changes nothing.
    Export {
        /// The store to export.
        #[arg(long)]
        store: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// A database that cannot be opened, with what to do about it: PostgreSQL's own answer
/// ("db error") says neither that the database must exist nor how to make it.
fn open_failed(url: &str, e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The storage error already says what failed and what to do (create the
        // database, start the server, fix the user), without the URL's password.
        e.context(format!("cannot open {}", onestock::server::shown_url(url)))
    } else if text.contains("unable to open")
        || text.contains("readonly")
        || text.contains("permission")
    {
        e.context(format!(
            "cannot open {url}: check that its folder exists and is writable"
        ))
    } else {
        e.context(format!("cannot open {url}"))
    }
}

/// `serve` and `migrate` only: the database they open.
fn database_url(given: Option<String>) -> String {
    given.unwrap_or_else(|| "sqlite:onestock.db".to_owned())
}

fn load_region(path: Option<&Path>) -> anyhow::Result<Region> {
    match path {
        None => Ok(Region::north_america()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("read region file {}", p.display()))?;
            Region::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("region file {}: {e}", p.display()))
        }
    }
}

/// After HTTP has stopped, how long the writer may take to finish the commands queued:
/// with `onestock::server::SHUTDOWN_DEADLINE` (8 s) this keeps a stop under 10 s.
const WRITER_DRAIN_MAX: Duration = Duration::from_millis(1500);

/// Connections the kernel completes and holds until they are accepted. The standard
/// library's 128 fills in a burst of connections (or while accepts pause on EMFILE),
/// after which clients wait seconds in SYN retries; the kernel caps it at `somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Completes on SIGTERM (what `kill`, systemd and container runtimes send) or SIGINT
/// (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The log line formats of `serve --log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Log lines to standard error, at INFO for onestock unless `RUST_LOG` says otherwise.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "onestock=info,tower_http=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour codes only for a person at a terminal, never into a log file.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Cmd::Serve { log_format, .. } => *log_format,
        _ => LogFormat::Text,
    };
    init_logging(log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A JSON log stays one JSON object per line, the last one included.
        Err(e) if log_format == LogFormat::Json => {
            tracing::error!(error = %format!("{e:#}"), "onestock stopped with an error");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Serve {
            database_url: url,
            listen,
            region,
            demo,
            upload_dir,
            operator_token,
            rate_limit,
            max_connections,
            public_url,
            log_format: _,
        } => {
            let region = load_region(region.as_deref())?;
            let url = database_url(url);
            let given_operator_token = operator_token.clone().filter(|t| !t.trim().is_empty());
            let app = build(ServerConfig {
                database_url: url.clone(),
                region,
                clock: Arc::new(SystemClock),
                operator_token,
                upload_dir,
                rate_limit_per_second: rate_limit,
            })
            .await
            .map_err(|e| open_failed(&url, e))?;
            if let Some(u) = public_url {
                let _ = app.state.public_url.set(u.trim_end_matches('/').to_owned());
            }
            if let Some(token) = &app.generated_operator_token {
                println!("Operator token (shown once, stored hashed): {token}");
            }
            let listener = bind(listen).with_context(|| format!("listen on {listen}"))?;
            let base = format!("http://{}", listener.local_addr()?);
            if demo {
                let operator = app
                    .generated_operator_token
                    .clone()
                    .or(given_operator_token);
                onestock::demo::seed(&app.state.service, &base, operator.as_deref()).await?;
            }
            println!(
                "onestock serving on {base} (database {})",
                onestock::server::shown_url(&url)
            );
            let service = app.state.service.clone();
            let stop_asked = Arc::new(std::sync::OnceLock::new());
            let asked = stop_asked.clone();
            let shutdown = async move {
                stop_signal().await;
                let _ = asked.set(std::time::Instant::now());
            };
            let mut limits = ConnectionLimits::default();
            if let Some(n) = max_connections {
                limits.max_connections = n.max(1);
            }
            serve_with(listener, app.state, shutdown, limits).await?;
            // Every connection is closed: the commands they queued are in the writer.
            if !service.drain_writer(WRITER_DRAIN_MAX).await {
                tracing::warn!("the writer had not caught up when the stop deadline came");
            }
            let elapsed = stop_asked
                .get()
                .map(|t| t.elapsed().as_millis())
                .unwrap_or(0);
            println!("onestock stopped in {elapsed} ms");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            // Exit now rather than wait for the upload worker's blocking task to finish
            // its file: its current chunk commits or rolls back whole, and the next start
            // resumes after the checkpoint.
            std::process::exit(0)
        }
        Cmd::Migrate { database_url: url } => {
            let url = database_url(url);
            let u = url.clone();
            // Opened and closed on a blocking thread: a PostgreSQL client blocks as it
            // closes, which panics on a runtime thread (migrate exited 101 after
            // migrating).
            tokio::task::spawn_blocking(move || onestock_store::Database::open(&u).map(drop))
                .await?
                .map_err(|e| open_failed(&url, e.into()))?;
            println!(
                "database {} is up to date",
                onestock::server::shown_url(&url)
            );
            Ok(())
        }
        Cmd::Seller {
            command:
                SellerCmd::Create {
                    name,
                    name_flag,
                    remote,
                },
        } => {
            let Some(name) = name.or(name_flag) else {
                bail!("give the seller's name: onestock seller create NAME");
            };
            let (seller_id, token) =
                onestock::client::seller_create(&remote.remote()?, &name).await?;
            println!("seller_id: {seller_id}");
            println!("token:     {token}");
            Ok(())
        }
        Cmd::Seller {
            command: SellerCmd::List { remote },
        } => onestock::client::seller_list(&remote.remote()?, &mut std::io::stdout().lock()).await,
        Cmd::Upload {
            store,
            file,
            remote,
        } => {
            let outcome = onestock::client::upload(
                &remote.url,
                &remote.token,
                &store,
                &file,
                Duration::from_millis(250),
            )
            .await?;
            match outcome.status.as_str() {
                "FATAL" => bail!("the file could not be processed; nothing was applied"),
                _ if !outcome.succeeded() => bail!(
                    "{} row(s) failed; see {}",
                    outcome.records_failed,
                    outcome.report_path.display()
                ),
                _ => Ok(()),
            }
        }
        Cmd::Uploads { command } => {
            let mut out = std::io::stdout().lock();
            match command {
                UploadsCmd::List { store, remote } => {
                    onestock::client::uploads_list(&remote.remote()?, store.as_deref(), &mut out)
                        .await
                }
                UploadsCmd::Report { upload_id, remote } => {
                    let text =
                        onestock::client::uploads_report(&remote.remote()?, &upload_id).await?;
                    use std::io::Write;
                    out.write_all(text.as_bytes())?;
                    Ok(())
                }
            }
        }
        Cmd::Listings { command } => {
            let mut out = std::io::stdout().lock();
            match command {
                ListingsCmd::List {
                    store,
                    status,
                    remote,
                } => {
                    onestock::client::listings_list(
                        &remote.remote()?,
                        store.as_deref(),
                        status.as_deref(),
                        &mut out,
                    )
                    .await
                }
                ListingsCmd::Export { store, remote } => {
                    let n = onestock::client::listings_export(&remote.remote()?, &store, &mut out)
                        .await?;
                    eprintln!("exported {n} listing(s) of store {store}");
                    Ok(())
                }
            }
        }
        Cmd::Ledger { sku, remote } => {
            let mut out = std::io::stdout().lock();
            onestock::client::ledger(&remote.remote()?, &sku, &mut out).await
        }
        Cmd::Template { file } => {
            let text = onestock::upload::report::template();
            match file {
                Some(p) => {
                    if p.exists() {
                        bail!("{} exists; not overwriting it", p.display());
                    }
                    let ext = p
                        .extension()
                        .map(|e| e.to_string_lossy().to_ascii_lowercase())
                        .unwrap_or_default();
                    match ext.as_str() {
                        "xlsx" => onestock::client::template_xlsx(&p)?,
                        "xls" | "xlsm" | "ods" | "numbers" => bail!(
                            "{}: onestock writes templates as .xlsx workbooks or as text (.txt, .tsv); not .{ext}",
                            p.display()
                        ),
                        _ => std::fs::write(&p, text)
                            .with_context(|| format!("write {}", p.display()))?,
                    }
                    println!("wrote {}", p.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        Cmd::Bench(args) => onestock::bench::run(args).await,
        Cmd::BenchUpload(args) => onestock::bench::run_upload(args).await,
        Cmd::BenchSearch(args) => onestock::bench::search::run(args).await,
    }
}
