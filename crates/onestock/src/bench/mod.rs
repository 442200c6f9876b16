//! `onestock bench`: single-unit orders on one shared pool listed in three stores, from
//! many concurrent clients, through the same service the API uses, with durable
//! commits; then the same orders the naive way (one transaction per order) for a ratio
//! measured in the same run. Prints figures, and after every run checks what the run
//! left in the database (`check_orders`): no pool below zero, ledger deltas that add up
//! to each pool's quantity, a pool that fell by exactly the orders answered as accepted,
//! each of them once in the ledger. A failed check ends the benchmark with an error.

pub mod search;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use onestock_core::clock::SystemClock;
use onestock_core::model::{LedgerEntry, LedgerReason, OrderLine, SkuState};
use onestock_core::region::Region;
use onestock_core::rules::{
    self, Command, Ctx, ListingInput, NewProduct, Outcome, PriceInput, Source,
};
use onestock_core::storage::{StoreError, StoreResult, Tx};
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
    asin: Asin,
    stores: Vec<StoreCode>,
}

/// The quantity each run's pool starts with: more than any run can sell.
const POOL_START: i64 = 1_000_000_000;

struct RunResult {
    /// Order numbers (see [`ORDER_NUMBER`]) answered as accepted, in no order.
    accepted: Vec<u64>,
    orders: u64,
    refused: u64,
    elapsed: Duration,
    p50_ms: f64,
    p99_ms: f64,
}

fn summarize(
    mut latencies: Vec<Duration>,
    accepted: Vec<u64>,
    refused: u64,
    elapsed: Duration,
) -> RunResult {
    latencies.sort();
    RunResult {
        accepted,
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
    match seller_and_product(&service, &region).await {
        Ok((seller, asin)) => Ok(Fixture {
            stores: region.stores.iter().map(|s| s.code.clone()).collect(),
            service,
            db,
            region,
            seller,
            asin,
        }),
        Err(e) => {
            // A PostgreSQL client blocks as its connection closes: never on a runtime
            // thread, or the error would end in a panic instead of being reported.
            let _ = tokio::task::spawn_blocking(move || drop((service, db))).await;
            Err(e)
        }
    }
}

/// The benchmark's seller and the product it lists, with a page in every store.
async fn seller_and_product(
    service: &Arc<Service>,
    region: &Region,
) -> anyhow::Result<(SellerId, Asin)> {
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
    Ok((seller, asin))
}

/// A new SKU listed in every store on one shared pool of [`POOL_START`]: each run sells
/// from its own, so its checks read its own ledger only.
async fn new_pool(f: &Fixture, run: &str) -> anyhow::Result<Sku> {
    let sku =
        Sku::parse(&format!("BENCH-{}-{run}", &f.seller.0[4..12])).map_err(|e| anyhow!("{e}"))?;
    for (i, store) in f.region.stores.iter().enumerate() {
        f.service
            .execute(Command::PutListing {
                seller: f.seller.clone(),
                sku: sku.clone(),
                store: store.code.clone(),
                input: ListingInput {
                    asin: Some(f.asin.clone()),
                    price: Some(PriceInput {
                        amount: rust_decimal::Decimal::new(999, 2),
                        currency: store.currency.clone(),
                    }),
                    quantity: (i == 0).then_some(POOL_START),
                    ..ListingInput::default()
                },
                source: Source::Api,
                if_match: None,
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(sku)
}

/// Order numbers as storefronts hand them out: increasing across all clients (an index
/// keyed by order id then grows at its end, as it does in production).
static ORDER_NUMBER: AtomicU64 = AtomicU64::new(0);

/// One order of one unit, and its number.
fn order(f: &Fixture, sku: &Sku, run: &str, client: usize, i: u64) -> (u64, Command) {
    let n = ORDER_NUMBER.fetch_add(1, Ordering::Relaxed);
    let cmd = Command::PlaceOrder {
        store: f.stores[(client + i as usize) % f.stores.len()].clone(),
        order_id: format!("{run}-{n:012}"),
        lines: vec![OrderLine {
            seller_id: f.seller.clone(),
            sku: sku.clone(),
            quantity: 1,
        }],
    };
    (n, cmd)
}

/// Whether an answer is a newly placed order (not a replay, R19).
fn placed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Order { replay: false, .. })
}

/// One client's accepted orders and their latencies.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    accepted: Vec<u64>,
}

impl Tally {
    /// Order `n`, sent at `sent`: accepted (`placed`) or counted in `refused`.
    fn note(&mut self, n: u64, sent: Instant, placed: bool, refused: &AtomicU64) {
        if placed {
            self.latencies.push(sent.elapsed());
            self.accepted.push(n);
        } else {
            refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The run's result from its clients' tallies.
fn finish(tallies: Vec<Tally>, refused: &AtomicU64, started: Instant) -> RunResult {
    let (mut all, mut accepted) = (Vec::new(), Vec::new());
    for t in tallies {
        all.extend(t.latencies);
        accepted.extend(t.accepted);
    }
    summarize(
        all,
        accepted,
        refused.load(Ordering::Relaxed),
        started.elapsed(),
    )
}

async fn run_grouped(
    f: &Arc<Fixture>,
    sku: &Sku,
    run: &str,
    clients: usize,
    seconds: f64,
) -> RunResult {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let refused = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (f, run, sku, refused) = (f.clone(), run.to_owned(), sku.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let (n, cmd) = order(&f, &sku, &run, c, i);
                let sent = Instant::now();
                let placed = matches!(f.service.execute(cmd).await, Ok(o) if placed(&o));
                tally.note(n, sent, placed, &refused);
                i += 1;
            }
            tally
        }));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        if let Ok(tally) = t.await {
            tallies.push(tally);
        }
    }
    finish(tallies, &refused, started)
}

fn run_naive(f: &Arc<Fixture>, sku: &Sku, run: &str, clients: usize, seconds: f64) -> RunResult {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (f, run, sku, refused) = (f.clone(), run.to_owned(), sku.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let (n, cmd) = order(&f, &sku, &run, c, i);
                    let sent = Instant::now();
                    let ctx = Ctx {
                        region: &f.region,
                        now: time::OffsetDateTime::now_utc(),
                    };
                    let placed = matches!(
                        f.db.write(|tx| rules::execute(tx, ctx, &cmd)),
                        Ok(Ok(o)) if placed(&o)
                    );
                    tally.note(n, sent, placed, &refused);
                    i += 1;
                }
                tally
            })
        })
        .collect();
    let tallies = threads.into_iter().filter_map(|t| t.join().ok()).collect();
    finish(tallies, &refused, started)
}

/// Checks one SKU's stored pools against its ledger: every entry's `quantity_after` is
/// the running sum of its pool's deltas and never below zero, and each pool's deltas add
/// up to its quantity, which is not below zero. The first problem found, if any.
fn check_ledger(state: &SkuState, ledger: &[LedgerEntry]) -> Result<(), String> {
    let sku = state.sku.as_str();
    let mut running: HashMap<i64, i64> = HashMap::new();
    let mut last_seq = i64::MIN;
    for e in ledger {
        if e.seq <= last_seq {
            return Err(format!(
                "{sku}: ledger entry {} after {last_seq} (not oldest first)",
                e.seq
            ));
        }
        last_seq = e.seq;
        let sum = running.entry(e.pool_id).or_insert(0);
        *sum += e.delta;
        if e.quantity_after != *sum {
            return Err(format!(
                "{sku}: ledger entry {} of pool {}: quantity_after {} is not the running sum {}",
                e.seq, e.pool_id, e.quantity_after, sum
            ));
        }
        if *sum < 0 {
            return Err(format!(
                "{sku}: pool {} went below zero ({sum}) at ledger entry {}",
                e.pool_id, e.seq
            ));
        }
    }
    for pool in &state.pools {
        if pool.quantity < 0 {
            return Err(format!(
                "{sku}: pool {} is below zero: {}",
                pool.pool_id, pool.quantity
            ));
        }
        let sum = running.get(&pool.pool_id).copied().unwrap_or(0);
        if sum != pool.quantity {
            return Err(format!(
                "{sku}: pool {} holds {}, its ledger deltas sum to {sum}",
                pool.pool_id, pool.quantity
            ));
        }
    }
    Ok(())
}

/// After a run: reads the run's SKU and its ledger and checks them against the orders
/// the run counted as accepted. Returns the line to print, or the failure.
async fn check_orders(
    f: &Fixture,
    sku: &Sku,
    run: &str,
    mut accepted: Vec<u64>,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let (seller, s) = (f.seller.clone(), sku.clone());
    let (state, ledger) = f
        .service
        .read(move |tx, _| Ok((tx.load_sku(&seller, &s)?, tx.ledger(&seller, &s)?)))
        .await
        .map_err(|e| anyhow!("read the run's pool and ledger: {e}"))?;
    let fail = |why: String| anyhow!("invariants FAILED after run {run}: {why}");
    check_ledger(&state, &ledger).map_err(fail)?;
    let pool = match state.pools.as_slice() {
        [p] if p.shared && state.listings.len() == f.stores.len() => p,
        _ => {
            return Err(fail(format!(
                "expected one shared pool under {} listings, found {} pools under {} listings",
                f.stores.len(),
                state.pools.len(),
                state.listings.len()
            )));
        }
    };
    let fell = POOL_START - pool.quantity;
    if fell != accepted.len() as i64 {
        return Err(fail(format!(
            "the pool fell by {fell} ({POOL_START} to {}), the run counted {} accepted orders: {}",
            pool.quantity,
            accepted.len(),
            if fell > accepted.len() as i64 {
                "oversold"
            } else {
                "accepted orders lost"
            }
        )));
    }
    // Each accepted order once in the ledger, and no other order.
    let prefix = format!("{run}-");
    let mut in_ledger = Vec::with_capacity(accepted.len());
    for e in ledger.iter().filter(|e| e.reason == LedgerReason::Order) {
        let n = e
            .reference
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                fail(format!(
                    "ledger entry {} names order {:?}, not one of this run",
                    e.seq, e.reference
                ))
            })?;
        if e.delta != -1 {
            return Err(fail(format!(
                "order {} took {} units, not 1",
                e.reference, -e.delta
            )));
        }
        in_ledger.push(n);
    }
    accepted.sort_unstable();
    in_ledger.sort_unstable();
    if let Some(n) = in_ledger.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]) {
        return Err(fail(format!(
            "order {prefix}{n:012} appears more than once in the ledger"
        )));
    }
    if accepted != in_ledger {
        let missing = accepted
            .iter()
            .find(|n| in_ledger.binary_search(n).is_err());
        let extra = in_ledger
            .iter()
            .find(|n| accepted.binary_search(n).is_err());
        return Err(fail(format!(
            "{} accepted orders, {} order entries in the ledger; first accepted but absent: {missing:?}, first present but not accepted: {extra:?}",
            accepted.len(),
            in_ledger.len()
        )));
    }
    Ok(format!(
        "invariants: ok (pool fell by {fell} = {} accepted orders; ledger sums match; no pool below zero; checked {} ledger entries in {:.0} ms)",
        accepted.len(),
        ledger.len(),
        started.elapsed().as_secs_f64() * 1000.0
    ))
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

/// Runs `measure` on the database named, or on a fresh SQLite file in a temporary
/// folder (`prefix`-…) removed after the run.
pub(crate) async fn on_bench_database<F, Fut>(
    named: Option<&str>,
    prefix: &str,
    measure: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    if let Some(url) = named {
        return measure(url.to_owned()).await;
    }
    let tmp = std::env::temp_dir().join(format!("{prefix}-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&tmp)?;
    let result = measure(format!("sqlite:{}", tmp.join("bench.db").display())).await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let named = args.database_url.clone();
    on_bench_database(named.as_deref(), "onestock-bench", |url| async move {
        measure(&args, &url).await
    })
    .await
}

async fn measure(args: &BenchArgs, url: &str) -> anyhow::Result<()> {
    println!("onestock bench: database {url}, {} s per run", args.seconds);
    let f = Arc::new(setup(url).await?);
    let result = measure_runs(args, &f).await;
    // A PostgreSQL client blocks as its connection closes: never on a runtime thread.
    let _ = tokio::task::spawn_blocking(move || drop(f)).await;
    result
}

async fn measure_runs(args: &BenchArgs, f: &Arc<Fixture>) -> anyhow::Result<()> {
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
    // A run whose check fails ends the benchmark with its error (`?`), so every run
    // counted here passed.
    let mut checked = 0;
    for &clients in &args.clients {
        let run = format!("g{clients}-{:08x}", rand::random::<u32>());
        let sku = new_pool(f, &run).await?;
        let before = f.service.writer_stats();
        let r = run_grouped(f, &sku, &run, clients, args.seconds).await;
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
        let line = check_orders(f, &sku, &run, r.accepted).await?;
        println!("         {line}");
        checked += 1;
    }
    println!();
    println!("naive (one transaction per order, same rules, same database):");
    println!(
        "{:>8} {:>12} {:>9} {:>9} {:>10}",
        "clients", "orders/s", "p50 ms", "p99 ms", "ratio"
    );
    for &clients in &args.naive_clients {
        let run = format!("n{clients}-{:08x}", rand::random::<u32>());
        let sku = new_pool(f, &run).await?;
        let (f2, sku2, run2) = (f.clone(), sku.clone(), run.clone());
        let seconds = args.seconds;
        let r = tokio::task::spawn_blocking(move || run_naive(&f2, &sku2, &run2, clients, seconds))
            .await?;
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
        let line = check_orders(f, &sku, &run, r.accepted).await?;
        println!("         {line}");
        checked += 1;
    }
    println!();
    println!("every run checked ({checked} runs): zero oversell and ledger sums intact");
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
    onestock_core::catalog::with_gs1_check_digit(&body).unwrap_or(body)
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

/// New-listing rows whose SKU the upload check reads, at most (evenly spread).
const UPLOAD_CHECK_NEW_SAMPLE: usize = 1_000;
/// Bad rows whose SKU the upload check reads (none must exist), at most.
const UPLOAD_CHECK_BAD_SAMPLE: usize = 100;

/// What `write_upload_file` put in the file: rows that must fail, the quantity each
/// shared SKU must end with (the last row naming it wins; 5, as set before, when none).
struct UploadExpectation {
    bad: i64,
    shared: Vec<i64>,
}

fn upload_expectation(rows: usize) -> UploadExpectation {
    let mut shared = vec![5; UPLOAD_BENCH_SHARED];
    let mut bad = 0;
    for i in 0..rows {
        match i % 20 {
            0 => bad += 1,
            1..=5 => shared[i % UPLOAD_BENCH_SHARED] = (i % 50) as i64,
            _ => {}
        }
    }
    UploadExpectation { bad, shared }
}

/// After `DONE`: reads the upload and a bounded set of SKUs straight from the database
/// and checks them against the file: every row counted, the bad ones failed, every
/// shared SKU (and a sample of the new ones) at the file's quantity with ledger sums
/// intact and no pool below zero, no listing for a sampled bad row. The line to print.
async fn check_upload(
    url: &str,
    seller: SellerId,
    upload_id: String,
    rows: usize,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let want = upload_expectation(rows);
    let u = url.to_owned();
    let db = tokio::task::spawn_blocking(move || Database::open(&u))
        .await?
        .with_context(|| format!("open {url} to check the upload"))?;
    let rows_i = rows as i64;
    let checked = tokio::task::spawn_blocking(move || {
        db.read(|tx| {
            let mut problems: Vec<String> = Vec::new();
            let Some(up) = tx.upload(&upload_id)? else {
                return Ok(Err(format!("upload {upload_id} is not in the database")));
            };
            if up.records_processed != rows_i
                || up.records_successful + up.records_failed != rows_i
                || up.records_failed != want.bad
                || up.checkpoint != rows_i
            {
                problems.push(format!(
                    "the file has {rows_i} rows ({} bad): the upload says {} processed, {} successful, {} failed, checkpoint {}",
                    want.bad, up.records_processed, up.records_successful, up.records_failed, up.checkpoint
                ));
            }
            let sku = |raw: String| Sku::parse(&raw).map_err(|e| StoreError::Other(e.to_string()));
            let mut skus = 0usize;
            let mut check = |tx: &mut dyn Tx, sku: Sku, quantity: i64, listings: usize| -> StoreResult<()> {
                skus += 1;
                let state = tx.load_sku(&seller, &sku)?;
                let ledger = tx.ledger(&seller, &sku)?;
                if let Err(e) = check_ledger(&state, &ledger) {
                    problems.push(e);
                }
                let held: Vec<i64> = state.pools.iter().map(|p| p.quantity).collect();
                if state.listings.len() != listings || held != [quantity] {
                    problems.push(format!(
                        "{}: {} listings on pools holding {held:?}; the file says {listings} listings holding {quantity}",
                        sku.as_str(),
                        state.listings.len()
                    ));
                }
                Ok(())
            };
            for (k, q) in want.shared.iter().enumerate() {
                check(tx, sku(format!("SHARED-{k}"))?, *q, 2)?;
            }
            // Evenly spread, each moved to the next new-listing row (i % 20 >= 6).
            let new_rows: std::collections::BTreeSet<usize> = (0..UPLOAD_CHECK_NEW_SAMPLE)
                .map(|j| j * rows / UPLOAD_CHECK_NEW_SAMPLE)
                .map(|i| i + 6usize.saturating_sub(i % 20))
                .filter(|i| *i < rows)
                .collect();
            for i in new_rows {
                check(tx, sku(format!("NEW-{i}"))?, (i % 7) as i64, 1)?;
            }
            let mut bad_checked = 0;
            for i in (0..rows).step_by(20).take(UPLOAD_CHECK_BAD_SAMPLE) {
                bad_checked += 1;
                let state = tx.load_sku(&seller, &sku(format!("BAD-{i}"))?)?;
                if !state.listings.is_empty() || !state.pools.is_empty() {
                    problems.push(format!("BAD-{i} is a bad row, yet it is listed: {state:?}"));
                }
            }
            problems.truncate(10);
            Ok(if problems.is_empty() {
                Ok((up.records_successful, up.records_failed, skus, bad_checked))
            } else {
                Err(problems.join("; "))
            })
        })
    })
    .await?
    .map_err(|e| anyhow!("read the upload's results: {e}"))?;
    let (applied, failed, skus, bad_checked) =
        checked.map_err(|why| anyhow!("invariants FAILED after the upload: {why}"))?;
    Ok(format!(
        "invariants: ok ({applied} rows applied + {failed} refused = {rows} rows in the file; \
         {skus} SKUs at the file's quantities with ledger sums matching and no pool below zero; \
         {bad_checked} bad rows not listed; checked in {:.0} ms)",
        started.elapsed().as_secs_f64() * 1000.0
    ))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// How long the benchmark waits for its server to listen: migrations of a fresh
/// database take well under a second.
const SERVER_START_WAIT: Duration = Duration::from_secs(60);

/// The address in the line `onestock serve` prints once it listens. The server binds a
/// port the system picks (`--listen 127.0.0.1:0`): a port chosen free beforehand could be
/// taken by another program before the server binds it. The rest of the output is read
/// (and dropped) on, so that the server never blocks on a full pipe. The sender is
/// dropped, unanswered, when the output ends first.
fn server_base_url(stdout: std::process::ChildStdout) -> tokio::sync::oneshot::Receiver<String> {
    let (found, base) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("onestock serving on ") {
                let _ = found.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
                break;
            }
        }
        lines.for_each(drop);
    });
    base
}

pub async fn run_upload(args: UploadBenchArgs) -> anyhow::Result<()> {
    use serde_json::{Value, json};
    let tmp = std::env::temp_dir().join(format!("onestock-ubench-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&tmp)?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", tmp.join("bench.db").display()));
    let operator = new_token("op");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--database-url", &url, "--listen", "127.0.0.1:0"])
        .arg("--upload-dir")
        .arg(tmp.join("uploads"))
        .env("ONESTOCK_OPERATOR_TOKEN", &operator)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("start the server")?;
    let listening = child.stdout.take().map(server_base_url);
    let result = async {
        let listening = listening.ok_or_else(|| anyhow!("the server's output could not be read"))?;
        let base = match tokio::time::timeout(SERVER_START_WAIT, listening).await {
            Ok(Ok(base)) => base,
            Ok(Err(_)) => {
                return Err(anyhow!("the server stopped before it listened; its messages are above"));
            }
            Err(_) => {
                return Err(anyhow!(
                    "the server did not start listening within {} s; its messages, if any, are above",
                    SERVER_START_WAIT.as_secs()
                ));
            }
        };
        let http = reqwest::Client::new();
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
        if state["status"] != "DONE" {
            return Err(anyhow!("the upload ended {}, not DONE: {state}", state["status"]));
        }
        let seller_id = SellerId(seller["seller_id"].as_str().unwrap_or_default().to_owned());
        println!("{}", check_upload(&url, seller_id, id, args.rows).await?);
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use onestock_core::model::Pool;
    use onestock_core::types::Condition;

    fn entry(seq: i64, delta: i64, quantity_after: i64) -> LedgerEntry {
        LedgerEntry {
            seq,
            at: time::OffsetDateTime::UNIX_EPOCH,
            seller_id: SellerId("s".into()),
            sku: Sku::parse("A").expect("sku"),
            pool_id: 7,
            delta,
            quantity_after,
            reason: LedgerReason::Order,
            store: StoreCode::parse("US").expect("store"),
            reference: String::new(),
        }
    }

    fn state(quantity: i64) -> SkuState {
        let mut s = SkuState::empty(SellerId("s".into()), Sku::parse("A").expect("sku"));
        s.pools.push(Pool {
            pool_id: 7,
            shared: true,
            quantity,
            condition: Condition::New,
            version: 1,
        });
        s
    }

    #[test]
    fn the_ledger_check_finds_each_break() {
        let good = [entry(1, 5, 5), entry(2, -1, 4)];
        assert!(check_ledger(&state(4), &good).is_ok());
        let e = check_ledger(&state(3), &good).expect_err("sum");
        assert!(e.contains("sum to 4"), "{e}");
        let e = check_ledger(&state(4), &[entry(1, 5, 5), entry(2, -1, 5)]).expect_err("after");
        assert!(e.contains("running sum"), "{e}");
        let e = check_ledger(&state(-1), &[entry(1, -1, -1)]).expect_err("below zero");
        assert!(e.contains("below zero"), "{e}");
    }

    /// A tiny benchmark on SQLite passes its checks, and the check refuses a run whose
    /// accepted orders do not match the ledger.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_short_bench_checks_its_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("b.db").display());
        let args = BenchArgs {
            database_url: Some(url.clone()),
            clients: vec![4],
            naive_clients: vec![2],
            seconds: 0.2,
        };
        measure(&args, &url).await.expect("the checks pass");

        let f = Arc::new(setup(&url).await.expect("setup"));
        let sku = new_pool(&f, "t1").await.expect("pool");
        let r = run_grouped(&f, &sku, "t1", 2, 0.1).await;
        assert!(!r.accepted.is_empty());
        let mut wrong = r.accepted.clone();
        wrong.push(u64::MAX);
        let e = check_orders(&f, &sku, "t1", wrong)
            .await
            .expect_err("an extra order");
        assert!(e.to_string().contains("invariants FAILED"), "{e}");
        let mut fewer = r.accepted.clone();
        fewer.pop();
        let e = check_orders(&f, &sku, "t1", fewer)
            .await
            .expect_err("a lost order");
        assert!(e.to_string().contains("oversold"), "{e}");
        let line = check_orders(&f, &sku, "t1", r.accepted).await.expect("ok");
        assert!(line.starts_with("invariants: ok"), "{line}");
    }
}
