//! `onestock bench-search`: catalog keyword search at scale. Fills a throwaway database
//! with generated detail pages (titles of words drawn with Zipf-like frequencies, so a
//! few words are on many pages, as real catalogs go), then times keyword searches
//! through the same read the API's `GET /v1/catalog/search` makes, one at a time, and
//! prints their percentiles.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use onestock_core::clock::SystemClock;
use onestock_core::model::DetailPage;
use onestock_core::region::Region;
use onestock_core::types::{Asin, StoreCode};
use onestock_store::Database;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::percentile;
use crate::http::SEARCH_RESULTS_MAX;
use crate::service::Service;

#[derive(clap::Args, Debug, Clone)]
pub struct SearchBenchArgs {
    /// Database to fill and search. Default: a fresh SQLite file in a temporary folder.
    /// Pages are added to it: use a database made for the benchmark.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Detail pages to generate, spread over the region's stores.
    #[arg(long, default_value_t = 1_000_000)]
    pub pages: usize,
    /// Searches to time.
    #[arg(long, default_value_t = 2_000)]
    pub queries: usize,
}

/// Distinct words titles are made of.
const VOCABULARY: usize = 20_000;
/// Words in a generated title.
const TITLE_WORDS: usize = 6;
/// Pages written per transaction while filling: a bounded batch.
const FILL_BATCH: usize = 5_000;
/// The random seed: the same pages and queries in every run.
const SEED: u64 = 20_261_201;

/// Word `i` of the vocabulary: letters only, distinct for every `i`, pronounceable
/// enough for a stemmer to treat as a word.
fn word(i: usize) -> String {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "bra", "cle", "dro", "fen", "gal",
        "hor", "jun", "kes", "lim", "mor", "nat", "pol", "quin", "ser", "tav",
    ];
    let mut n = i;
    let mut out = String::new();
    loop {
        out.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
        n -= 1;
    }
    out.push('x');
    out
}

/// Draws vocabulary ranks with probability ∝ 1 / (rank + 1).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut sum = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                sum += 1.0 / (r as f64 + 1.0);
                sum
            })
            .collect();
        Zipf { cumulative }
    }

    fn draw(&self, rng: &mut StdRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.random::<f64>() * total;
        self.cumulative.partition_point(|&c| c < x)
    }
}

fn page(
    i: usize,
    stores: &[(StoreCode, String)],
    zipf: &Zipf,
    rng: &mut StdRng,
) -> anyhow::Result<DetailPage> {
    let (store, language) = &stores[i % stores.len()];
    let title: Vec<String> = (0..TITLE_WORDS).map(|_| word(zipf.draw(rng))).collect();
    let asin = Asin::parse(&format!("B0{:08}", i / stores.len())).map_err(|e| anyhow!("{e}"))?;
    Ok(DetailPage {
        asin,
        store: store.clone(),
        title: title.join(" "),
        brand: format!("Brand {}", i % 997),
        description: String::new(),
        language: language.clone(),
        product_type: "BENCH".into(),
        identifiers: Vec::new(),
    })
}

pub async fn run(args: SearchBenchArgs) -> anyhow::Result<()> {
    let named = args.database_url.clone();
    super::on_bench_database(named.as_deref(), "onestock-sbench", |url| async move {
        measure(&args, &url).await
    })
    .await
}

async fn measure(args: &SearchBenchArgs, url: &str) -> anyhow::Result<()> {
    println!(
        "onestock bench-search: {} pages, {} searches, database {url}",
        args.pages, args.queries
    );
    let u = url.to_owned();
    let db = tokio::task::spawn_blocking(move || Database::open(&u))
        .await?
        .with_context(|| format!("open {url}"))?;
    let result = fill_and_search(args, &db).await;
    // A PostgreSQL client blocks as it closes: the last handle goes on a blocking thread,
    // whether the run succeeded or not.
    let _ = tokio::task::spawn_blocking(move || drop(db)).await;
    result
}

async fn fill_and_search(args: &SearchBenchArgs, db: &Database) -> anyhow::Result<()> {
    let region = Arc::new(Region::north_america());
    let stores: Vec<(StoreCode, String)> = region
        .stores
        .iter()
        .map(|s| (s.code.clone(), s.languages[0].clone()))
        .collect();
    let zipf = Arc::new(Zipf::new(VOCABULARY));

    let started = Instant::now();
    let (db2, stores2, zipf2, pages) = (db.clone(), stores.clone(), zipf.clone(), args.pages);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut done = 0;
        while done < pages {
            let batch: Vec<DetailPage> = (done..(done + FILL_BATCH).min(pages))
                .map(|i| page(i, &stores2, &zipf2, &mut rng))
                .collect::<anyhow::Result<_>>()?;
            db2.write(|tx| {
                for p in &batch {
                    tx.insert_page(p)?;
                }
                Ok(())
            })?;
            done += batch.len();
            if done % 100_000 == 0 || done == pages {
                println!(
                    "  filled {done} pages in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    })
    .await??;
    // What autovacuum would do soon after such a fill: the search plan on PostgreSQL is
    // chosen from the words' statistics (store/src/postgres/search.rs).
    let analyzed = Instant::now();
    let d = db.clone();
    tokio::task::spawn_blocking(move || d.analyze()).await??;
    if db.kind() == "postgres" {
        println!("  analyzed in {:.1} s", analyzed.elapsed().as_secs_f64());
    }

    let service = Service::start(
        db.clone(),
        region.clone(),
        Arc::new(SystemClock),
        String::new(),
    );
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let mut times = Vec::with_capacity(args.queries);
    let mut found_total = 0usize;
    let mut empty = 0usize;
    for q in 0..args.queries {
        let words = if rng.random_range(0..10) < 6 { 1 } else { 2 };
        let text: Vec<String> = (0..words).map(|_| word(zipf.draw(&mut rng))).collect();
        let text = text.join(" ");
        let store = stores[q % stores.len()].0.clone();
        let t = Instant::now();
        let found = service
            .read(move |tx, _| tx.search_pages(&store, &text, SEARCH_RESULTS_MAX))
            .await
            .map_err(|e| anyhow!("search: {e}"))?;
        times.push(t.elapsed());
        found_total += found.len();
        empty += usize::from(found.is_empty());
    }
    times.sort();
    println!(
        "searches: {} ({} words of a {VOCABULARY}-word vocabulary, 60 % one word, 40 % two)",
        args.queries,
        if args.queries > 0 { "Zipf-drawn" } else { "no" }
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&times, 0.50),
        percentile(&times, 0.90),
        percentile(&times, 0.99),
        percentile(&times, 1.0)
    );
    println!(
        "answers: {:.1} pages on average (at most {SEARCH_RESULTS_MAX}), {empty} empty",
        found_total as f64 / args.queries.max(1) as f64
    );
    let _ = tokio::task::spawn_blocking(move || drop(service)).await;
    Ok(())
}
