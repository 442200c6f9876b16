//! Putting the service together: open the database, settle the operator's token, start
//! the writer and the upload worker, and serve HTTP on a bound listener (so tests can
//! run the real server on port 0).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use onestock_core::clock::Clock;
use onestock_core::region::Region;
use onestock_store::Database;

use crate::http::limit::RateLimiter;
use crate::service::{Service, new_token, token_digest};
use crate::upload::Uploads;

/// The setting that keeps the digest of a generated operator token.
const OPERATOR_TOKEN_SETTING: &str = "operator_token_sha256";

pub struct ServerConfig {
    /// `sqlite:PATH` or `postgres://...`.
    pub database_url: String,
    pub region: Region,
    pub clock: Arc<dyn Clock>,
    /// `ONESTOCK_OPERATOR_TOKEN`; None generates one on first start.
    pub operator_token: Option<String>,
    /// Where upload files are kept until processed.
    pub upload_dir: PathBuf,
    /// Requests per second and token before `RATE_LIMITED`; 0 turns the limit off.
    pub rate_limit_per_second: u32,
}

/// Requests per second and token by default: far above what one storefront or seller
/// tool sends, low enough that a runaway loop cannot take the server for itself.
pub const RATE_LIMIT_DEFAULT: u32 = 5_000;

/// Everything the HTTP handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub uploads: Arc<Uploads>,
    pub limiter: Arc<RateLimiter>,
}

pub struct App {
    pub state: AppState,
    /// A token generated at this start, to be shown once.
    pub generated_operator_token: Option<String>,
}

/// Opens the database (applying migrations) and starts the background workers.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    let url = config.database_url.clone();
    let db = tokio::task::spawn_blocking(move || Database::open(&url))
        .await?
        .with_context(|| format!("open database {}", config.database_url))?;
    let (digest, generated) = match &config.operator_token {
        Some(t) if !t.trim().is_empty() => (token_digest(t.trim()), None),
        _ => {
            let db2 = db.clone();
            tokio::task::spawn_blocking(move || {
                db2.write(|tx| {
                    if let Some(d) = tx.setting(OPERATOR_TOKEN_SETTING)? {
                        return Ok((d, None));
                    }
                    let token = new_token("op");
                    let d = token_digest(&token);
                    tx.set_setting(OPERATOR_TOKEN_SETTING, &d)?;
                    Ok((d, Some(token)))
                })
            })
            .await?
            .context("store the operator token")?
        }
    };
    let service = Service::start(db, Arc::new(config.region), config.clock, digest);
    let uploads = Uploads::start(service.clone(), config.upload_dir)
        .await
        .context("start the upload worker")?;
    Ok(App {
        state: AppState {
            service,
            uploads,
            limiter: Arc::new(RateLimiter::new(config.rate_limit_per_second)),
        },
        generated_operator_token: generated,
    })
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = crate::http::router(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serve HTTP")
}
