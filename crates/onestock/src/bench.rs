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

fn summarize(mut latencies: Vec<Duration>, refused: u64, elapsed: Duration) -> RunResult {
    latencies.sort();
    RunResult {
        orders: latencies.len() as u64,
        refused,
        elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    }
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

/// Order numbers as storefronts hand them out: increasing across all clients (an index
/// keyed by order id then grows at its end, as it does in production).
static ORDER_NUMBER: AtomicU64 = AtomicU64::new(0);

fn order(f: &Fixture, run: &str, client: usize, i: u64) -> Command {
    let n = ORDER_NUMBER.fetch_add(1, Ordering::Relaxed);
    Command::PlaceOrder {
        store: f.stores[(client + i as usize) % f.stores.len()].clone(),
        order_id: format!("{run}-{n:012}"),
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
    summarize(all, refused.load(Ordering::Relaxed), started.elapsed())
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
    summarize(all, refused.load(Ordering::Relaxed), started.elapsed())
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

/// `onestock bench-upload`: a generated inventory file for one store, sent to a server
/// started for the run, timed from upload to `DONE`, with the server's peak memory.
#[derive(clap::Args, Debug, Clone)]
pub struct UploadBenchArgs {
    /// Database for the server. Default: a fresh SQLite file in a temporary folder.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Data rows in the file.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
}

/// A UPC-A with a correct check digit, from a number below 10^11.
fn upc(n: u64) -> String {
    let body = format!("{:011}", n % 100_000_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Products the file lists against.
const UPLOAD_BENCH_PRODUCTS: u64 = 200;
/// SKUs listed in US and CA on one shared pool before the upload; the file updates them.
const UPLOAD_BENCH_SHARED: usize = 2_000;

/// Writes the file: 70 % new listings, 25 % updates of shared listings, 5 % bad rows.
fn write_upload_file(path: &std::path::Path, rows: usize, salt: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "sku\tproduct-id\tproduct-id-type\tprice\titem-condition\tquantity\tadd-delete\tinventory-sharing"
    )?;
    for i in 0..rows {
        let product = upc(900_000_000 + salt as u64 * 1000 + (i as u64 % UPLOAD_BENCH_PRODUCTS));
        match i % 20 {
            // Bad rows: a wrong check digit, a bad price, a bad quantity.
            0 => {
                let last = product.as_bytes()[11] - b'0';
                writeln!(
                    w,
                    "BAD-{i}\t{}{}\t3\t1.00\t11\t1\ta\t",
                    &product[..11],
                    (last + 1) % 10
                )?
            }
            // Updates of shared listings: the pool takes the file's quantity.
            1..=5 => writeln!(
                w,
                "SHARED-{}\t\t\t12.50\t\t{}\ta\t",
                i % UPLOAD_BENCH_SHARED,
                i % 50
            )?,
            _ => writeln!(w, "NEW-{i}\t{product}\t3\t9.99\t11\t{}\ta\t", i % 7)?,
        }
    }
    w.flush()?;
    Ok(())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub async fn run_upload(args: UploadBenchArgs) -> anyhow::Result<()> {
    use serde_json::{Value, json};
    let tmp = std::env::temp_dir().join(format!("onestock-ubench-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&tmp)?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", tmp.join("bench.db").display()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let operator = new_token("op");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--database-url",
            &url,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--upload-dir")
        .arg(tmp.join("uploads"))
        .env("ONESTOCK_OPERATOR_TOKEN", &operator)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("start the server")?;
    let result = async {
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seller: Value = http
            .post(format!("{base}/v1/sellers"))
            .bearer_auth(&operator)
            .json(&json!({"name": "upload bench"}))
            .send()
            .await?
            .json()
            .await?;
        let token = seller["token"].as_str().unwrap_or_default().to_owned();
        let salt: u32 = rand::random::<u32>() % 1000;
        let mut first_asin = String::new();
        for p in 0..UPLOAD_BENCH_PRODUCTS {
            let id = upc(900_000_000 + salt as u64 * 1000 + p);
            let created: Value = http
                .post(format!("{base}/v1/catalog/items"))
                .bearer_auth(&token)
                .json(&json!({"store": "US", "product_type": "KITCHEN", "title": format!("Bench item {salt} {p}"),
                    "brand": format!("Bench {salt}"), "language": "en", "identifiers": [{"type": "UPC", "value": id}], "force_new": true}))
                .send()
                .await?
                .json()
                .await?;
            http.post(format!("{base}/v1/catalog/items"))
                .bearer_auth(&token)
                .json(&json!({"store": "CA", "product_type": "KITCHEN", "title": format!("Bench item {salt} {p}"),
                    "brand": format!("Bench {salt}"), "language": "en", "identifiers": [{"type": "UPC", "value": id}]}))
                .send()
                .await?;
            if p == 0 {
                first_asin = created["asin"].as_str().unwrap_or_default().to_owned();
            }
        }
        for i in 0..UPLOAD_BENCH_SHARED {
            for (store, currency) in [("US", "USD"), ("CA", "CAD")] {
                let body = if store == "US" {
                    json!({"asin": first_asin, "price": {"amount": "10.00", "currency": currency}, "quantity": 5})
                } else {
                    json!({"asin": first_asin, "price": {"amount": "13.00", "currency": currency}})
                };
                http.put(format!("{base}/v1/listings/SHARED-{i}/stores/{store}"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await?;
            }
        }
        let file = tmp.join("inventory.tsv");
        let (f2, rows) = (file.clone(), args.rows);
        tokio::task::spawn_blocking(move || write_upload_file(&f2, rows, salt)).await??;
        let size = std::fs::metadata(&file)?.len();
        println!(
            "onestock bench-upload: {} rows ({:.1} MiB) for store US, database {url}",
            args.rows,
            size as f64 / (1024.0 * 1024.0)
        );
        let bytes = tokio::fs::read(&file).await?;
        let started = Instant::now();
        let accepted: Value = http
            .post(format!("{base}/v1/uploads?store=US"))
            .bearer_auth(&token)
            .body(bytes)
            .send()
            .await?
            .json()
            .await?;
        let id = accepted["upload_id"].as_str().unwrap_or_default().to_owned();
        let received = started.elapsed();
        let state = loop {
            let state: Value = http
                .get(format!("{base}/v1/uploads/{id}"))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            match state["status"].as_str() {
                Some("DONE") | Some("FATAL") => break state,
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                None => return Err(anyhow!("unexpected answer {state}")),
            }
        };
        let elapsed = started.elapsed();
        println!("status {}: {} processed, {} successful, {} failed",
            state["status"], state["records_processed"], state["records_successful"], state["records_failed"]);
        println!("received in {:.2} s; upload to DONE in {:.2} s: {:.0} rows/s",
            received.as_secs_f64(), elapsed.as_secs_f64(), args.rows as f64 / elapsed.as_secs_f64());
        match peak_rss_kib(child.id()) {
            Some(kib) => println!("server peak memory (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
            None => println!("server peak memory: not readable"),
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
