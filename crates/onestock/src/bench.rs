//! `onestock bench`: single-unit orders on one shared pool listed in three stores, from
//! many concurrent clients, through the same service the API uses, with durable
//! commits; then the same orders the naive way (one transaction per order) for a ratio
//! measured in the same run. Prints figures; asserts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use onestock_core::clock::SystemClock;
use onestock_core::model::OrderLine;
use onestock_core::region::Region;
use onestock_core::rules::{
    self, Command, Ctx, ListingInput, NewProduct, Outcome, PriceInput, Source,
};
use onestock_core::types::{Asin, SellerId, Sku, StoreCode};
use onestock_store::Database;

use crate::service::{Service, new_token, token_digest};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Database to measure. Default: a fresh SQLite file in a temporary folder.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Concurrent clients for the group-commit runs.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,512")]
    pub clients: Vec<usize>,
    /// Concurrent clients for the naive runs (one transaction per order).
    #[arg(long, value_delimiter = ',', default_value = "8,64")]
    pub naive_clients: Vec<usize>,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
}

struct Fixture {
    service: Arc<Service>,
    db: Database,
    region: Arc<Region>,
    seller: SellerId,
    sku: Sku,
    stores: Vec<StoreCode>,
}

struct RunResult {
    orders: u64,
    refused: u64,
    elapsed: Duration,
    p50_ms: f64,
    p99_ms: f64,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.orders as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn setup(url: &str) -> anyhow::Result<Fixture> {
    let u = url.to_owned();
    let db = tokio::task::spawn_blocking(move || Database::open(&u))
        .await?
        .with_context(|| format!("open {url}"))?;
    let region = Arc::new(Region::north_america());
    let service = Service::start(
        db.clone(),
        region.clone(),
        Arc::new(SystemClock),
        String::new(),
    );
    let err = |e: onestock_core::DomainError| anyhow!("{e}");
    let seller = match service
        .execute(Command::CreateSeller {
            name: "bench".into(),
            token_sha256: token_digest(&new_token("sk")),
        })
        .await
        .map_err(|e| anyhow!("{e}"))?
    {
        Outcome::Seller(s) => s.seller_id,
        _ => return Err(anyhow!("unexpected outcome")),
    };
    let sku = Sku::parse(&format!("BENCH-{}", &seller.0[4..12])).map_err(err)?;
    let stores: Vec<StoreCode> = region.stores.iter().map(|s| s.code.clone()).collect();
    // One ASIN with a page in every store: the first store creates it, the others
    // match it by identifier (R3).
    let identifier = "036000291452";
    let mut shared_asin: Option<Asin> = None;
    for store in &region.stores {
        let out = service
            .execute(Command::CreateProduct(NewProduct {
                store: store.code.to_string(),
                product_type: "BENCH".into(),
                title: format!("Benchmark mug {}", seller.0),
                brand: format!("Bench {}", seller.0),
                description: String::new(),
                language: store.languages[0].clone(),
                identifiers: vec![("UPC".into(), identifier.into())],
                force_new: true,
            }))
            .await;
        match out {
            Ok(Outcome::Product { asin, .. }) => {
                shared_asin.get_or_insert(asin);
            }
            // A reused database already has the page: list against it.
            Err(crate::service::AppError::Domain(e)) if !e.matches.is_empty() => {
                let a = Asin::parse(&e.matches[0].asin).map_err(err)?;
                shared_asin.get_or_insert(a);
            }
            Ok(_) => return Err(anyhow!("unexpected outcome")),
            Err(e) => return Err(anyhow!("{e}")),
        }
    }
    let asin = shared_asin.ok_or_else(|| anyhow!("no product"))?;
    for (i, store) in region.stores.iter().enumerate() {
        service
            .execute(Command::PutListing {
                seller: seller.clone(),
                sku: sku.clone(),
                store: store.code.clone(),
                input: ListingInput {
                    asin: Some(asin.clone()),
                    price: Some(PriceInput {
                        amount: rust_decimal::Decimal::new(999, 2),
                        currency: store.currency.clone(),
                    }),
                    quantity: (i == 0).then_some(1_000_000_000),
                    ..ListingInput::default()
                },
                source: Source::Api,
                if_match: None,
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(Fixture {
        service,
        db,
        region,
        seller,
        sku,
        stores,
    })
}

fn order(f: &Fixture, run: &str, client: usize, i: u64) -> Command {
    Command::PlaceOrder {
        store: f.stores[(client + i as usize) % f.stores.len()].clone(),
        order_id: format!("{run}-{client}-{i}"),
        lines: vec![OrderLine {
            seller_id: f.seller.clone(),
            sku: f.sku.clone(),
            quantity: 1,
        }],
    }
}

async fn run_grouped(f: &Arc<Fixture>, clients: usize, seconds: f64) -> RunResult {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let refused = Arc::new(AtomicU64::new(0));
    let run = format!("g{clients}-{}", rand::random::<u32>());
    let mut tasks = Vec::new();
    for c in 0..clients {
        let f = f.clone();
        let run = run.clone();
        let refused = refused.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                match f.service.execute(order(&f, &run, c, i)).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let elapsed = started.elapsed();
    all.sort();
    RunResult {
        orders: all.len() as u64,
        refused: refused.load(Ordering::Relaxed),
        elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

fn run_naive(f: &Arc<Fixture>, clients: usize, seconds: f64) -> RunResult {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let run = format!("n{clients}-{}", rand::random::<u32>());
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let f = f.clone();
            let run = run.clone();
            let refused = refused.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let cmd = order(&f, &run, c, i);
                    let t = Instant::now();
                    let ctx = Ctx {
                        region: &f.region,
                        now: time::OffsetDateTime::now_utc(),
                    };
                    match f.db.write(|tx| rules::execute(tx, ctx, &cmd)) {
                        Ok(Ok(_)) => latencies.push(t.elapsed()),
                        _ => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        if let Ok(l) = t.join() {
            all.extend(l);
        }
    }
    let elapsed = started.elapsed();
    all.sort();
    RunResult {
        orders: all.len() as u64,
        refused: refused.load(Ordering::Relaxed),
        elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

/// The time of one durable commit that writes one row, measured on this database now.
fn commit_time(db: &Database) -> anyhow::Result<Duration> {
    const SAMPLES: u32 = 50;
    let started = Instant::now();
    for i in 0..SAMPLES {
        db.write(|tx| tx.set_setting("bench_commit_probe", &i.to_string()))?;
    }
    Ok(started.elapsed() / SAMPLES)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let tmp = std::env::temp_dir().join(format!("onestock-bench-{}", rand::random::<u32>()));
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => {
            std::fs::create_dir_all(&tmp)?;
            format!("sqlite:{}", tmp.join("bench.db").display())
        }
    };
    println!("onestock bench: database {url}, {} s per run", args.seconds);
    let f = Arc::new(setup(&url).await?);
    let db = f.db.clone();
    let commit = tokio::task::spawn_blocking(move || commit_time(&db)).await??;
    let commit_ms = commit.as_secs_f64() * 1000.0;
    println!("measured durable commit: {commit_ms:.3} ms");
    println!();
    println!("group commit (orders batched into shared transactions):");
    println!(
        "{:>8} {:>12} {:>9} {:>9} {:>10} {:>14}",
        "clients", "orders/s", "p50 ms", "p99 ms", "batch avg", "bound orders/s"
    );
    let mut grouped_at = std::collections::HashMap::new();
    for &clients in &args.clients {
        let before = f.service.writer_stats();
        let r = run_grouped(&f, clients, args.seconds).await;
        let after = f.service.writer_stats();
        let batches = (after.batches - before.batches).max(1);
        let batch_avg = (after.commands - before.commands) as f64 / batches as f64;
        // Without batching every order pays a commit: clients / commit time is the most
        // one commit per order could reach with all clients waiting in line.
        let bound = clients as f64 / commit.as_secs_f64();
        println!(
            "{:>8} {:>12.0} {:>9.3} {:>9.3} {:>10.1} {:>14.0}{}",
            clients,
            r.rate(),
            r.p50_ms,
            r.p99_ms,
            batch_avg,
            bound,
            if r.refused > 0 {
                format!("  ({} refused)", r.refused)
            } else {
                String::new()
            }
        );
        grouped_at.insert(clients, r.rate());
    }
    println!();
    println!("naive (one transaction per order, same rules, same database):");
    println!(
        "{:>8} {:>12} {:>9} {:>9} {:>10}",
        "clients", "orders/s", "p50 ms", "p99 ms", "ratio"
    );
    for &clients in &args.naive_clients {
        let f2 = f.clone();
        let seconds = args.seconds;
        let r = tokio::task::spawn_blocking(move || run_naive(&f2, clients, seconds)).await?;
        let ratio = grouped_at
            .get(&clients)
            .map(|g| format!("{:.1}x", g / r.rate().max(1e-9)))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>8} {:>12.0} {:>9.3} {:>9.3} {:>10}",
            clients,
            r.rate(),
            r.p50_ms,
            r.p99_ms,
            ratio
        );
    }
    let sku = f.sku.clone();
    let seller = f.seller.clone();
    let left = f
        .service
        .read(move |tx, _| tx.load_sku(&seller, &sku))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let q = left.pools.first().map(|p| p.quantity).unwrap_or(-1);
    println!();
    println!("pool quantity after the runs: {q}");
    if args.database_url.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}
