//! One PostgreSQL transaction: the `Tx` methods, a cache of the SKUs it loaded and
//! buffers of its writes, sent by `flush` at commit.
//!
//! Why buffers: the app batches many orders into one transaction, and each round trip
//! costs about 50 µs. Within a transaction a SKU is read (and locked) once; saving it
//! only updates the cache, and `flush` writes the difference from what was read
//! (typically one `UPDATE pool`). Ledger entries, events and orders are inserted with
//! one multi-row `INSERT ... SELECT FROM UNNEST(...)` each. Reads that could see
//! buffered rows flush the buffer first or look in it.

use std::collections::HashMap;

use onestock_core::catalog::normalize_title;
use onestock_core::model::{
    DetailPage, Event, EventBody, LedgerEntry, OrderRecord, ReportLine, Seller, SkuState, Upload,
};
use onestock_core::storage::{StoreError, StoreResult, Tx};
use onestock_core::types::{Asin, PoolId, SellerId, Sku, StoreCode};
use postgres::Row;
use time::OffsetDateTime;

use super::codec::{self, col};
use super::{Conn, search};
use crate::page_cache::{PageCache, PageQuery};

/// A SKU as read at `load_sku` (what the tables hold) and as the transaction left it.
struct CachedSku {
    stored: SkuState,
    current: SkuState,
    dirty: bool,
}

/// A seller's event counter: `stored` is in the seller row, `last` was handed out.
struct EventSeq {
    stored: i64,
    last: i64,
}

struct PendingEvent {
    seller_id: SellerId,
    seq: i64,
    at: OffsetDateTime,
    body: EventBody,
}

struct PendingOrder {
    record: OrderRecord,
    /// The row exists already: update `cancelled`; otherwise insert, and a unique
    /// violation means another process inserted it first (retry).
    exists: bool,
}

type OrderKey = (StoreCode, String);

pub(super) struct PgTx<'c> {
    conn: &'c mut Conn,
    read_only: bool,
    skus: HashMap<(SellerId, Sku), CachedSku>,
    ledger: Vec<LedgerEntry>,
    events: Vec<PendingEvent>,
    seqs: HashMap<SellerId, EventSeq>,
    orders: HashMap<OrderKey, PendingOrder>,
    /// Whether an order row exists, as read by `order()` in this transaction.
    orders_seen: HashMap<OrderKey, bool>,
    /// Answers of `prefetch_orders`, each given once by `order()` (then read afresh).
    prefetched_orders: HashMap<OrderKey, Option<OrderRecord>>,
    /// Catalog look-ups made in this transaction: a chunk of upload rows asks for the
    /// same few pages again and again. `insert_page` forgets the answers it may change.
    page_cache: PageCache,
}

// --- SQL ---

/// Locks and reads a SKU's pools and listings in one round trip. Columns: kind ('p' or
/// 'l'), then the pool columns (1..=5) or the listing columns (6..=12). Pools by id and
/// listings by store, the order `LOCK_POOLS_OF` and `LOCK_LISTINGS_OF` lock a SKU's rows
/// in: a single SKU's load and an upload chunk's prefetch cannot deadlock on one SKU.
const LOAD_SKU_LOCK: &str = r#"
WITH p AS (
    SELECT pool_id, shared, quantity, condition, version FROM pool
    WHERE seller_id = $1 AND sku = $2 ORDER BY pool_id FOR UPDATE
), l AS (
    SELECT store, asin, pool_id, price, fulfillment, start_selling_at, closed FROM store_listing
    WHERE seller_id = $1 AND sku = $2 ORDER BY store FOR UPDATE
)
SELECT 'p'::text, pool_id, shared, quantity, condition, version,
       NULL::text, NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::bigint, NULL::boolean
FROM p
UNION ALL
SELECT 'l', NULL, NULL, NULL, NULL, NULL,
       store, asin, pool_id, price, fulfillment, start_selling_at, closed
FROM l"#;

const LOAD_SKU: &str = r#"
SELECT 'p'::text, pool_id, shared, quantity, condition, version,
       NULL::text, NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::bigint, NULL::boolean
FROM pool WHERE seller_id = $1 AND sku = $2
UNION ALL
SELECT 'l', NULL, NULL, NULL, NULL, NULL,
       store, asin, pool_id, price, fulfillment, start_selling_at, closed
FROM store_listing WHERE seller_id = $1 AND sku = $2"#;

// The many-SKU reads and locks below probe the key index once per SKU asked (a LATERAL
// subquery, which the planner keeps as a nested loop: `OFFSET 0` or the row lock stops it
// from being flattened into a plain join). As a plain join with the key array, the
// planner chose a merge join for an upload chunk's 8,000 keys: a scan and an on-disk
// sort of the whole table, 400 to 600 ms a statement at 700,000 listings instead of
// 20 to 30 ms, and growing with the table.

/// Pools of many SKUs: seller_id, sku, then the pool columns.
const POOLS_OF: &str = r#"
SELECT k.seller_id, k.sku, p.pool_id, p.shared, p.quantity, p.condition, p.version
FROM UNNEST($1::text[], $2::text[]) AS k(seller_id, sku)
CROSS JOIN LATERAL (
    SELECT pool_id, shared, quantity, condition, version FROM pool p
    WHERE p.seller_id = k.seller_id AND p.sku = k.sku OFFSET 0
) p"#;

/// Listings of many SKUs: seller_id, sku, then the listing columns.
const LISTINGS_OF: &str = r#"
SELECT k.seller_id, k.sku, l.store, l.asin, l.pool_id, l.price, l.fulfillment,
       l.start_selling_at, l.closed
FROM UNNEST($1::text[], $2::text[]) AS k(seller_id, sku)
CROSS JOIN LATERAL (
    SELECT store, asin, pool_id, price, fulfillment, start_selling_at, closed
    FROM store_listing l
    WHERE l.seller_id = k.seller_id AND l.sku = k.sku OFFSET 0
) l"#;

/// Locks the pools of many SKUs, in the order of the keys given (sorted by the caller),
/// a SKU's pools by pool id.
const LOCK_POOLS_OF: &str = r#"
SELECT 1 FROM UNNEST($1::text[], $2::text[]) AS k(seller_id, sku)
CROSS JOIN LATERAL (
    SELECT 1 FROM pool p WHERE p.seller_id = k.seller_id AND p.sku = k.sku
    ORDER BY p.pool_id FOR UPDATE
) p"#;

/// Locks the listings of many SKUs, in the order of the keys given (sorted by the
/// caller), a SKU's listings by store.
const LOCK_LISTINGS_OF: &str = r#"
SELECT 1 FROM UNNEST($1::text[], $2::text[]) AS k(seller_id, sku)
CROSS JOIN LATERAL (
    SELECT 1 FROM store_listing l WHERE l.seller_id = k.seller_id AND l.sku = k.sku
    ORDER BY l.store FOR UPDATE
) l"#;

const DELETE_LISTINGS: &str = r#"
DELETE FROM store_listing l
USING UNNEST($1::text[], $2::text[], $3::text[]) AS d(seller_id, sku, store)
WHERE l.seller_id = d.seller_id AND l.sku = d.sku AND l.store = d.store"#;

const DELETE_POOLS: &str = r#"
DELETE FROM pool p USING UNNEST($1::text[], $2::bigint[]) AS d(seller_id, pool_id)
WHERE p.seller_id = d.seller_id AND p.pool_id = d.pool_id"#;

const INSERT_POOLS: &str = r#"
INSERT INTO pool (seller_id, pool_id, sku, shared, quantity, condition, version)
SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::boolean[], $5::bigint[],
                     $6::text[], $7::bigint[])"#;

const UPDATE_POOLS: &str = r#"
UPDATE pool p
SET shared = d.shared, quantity = d.quantity, condition = d.condition, version = d.version
FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::boolean[], $5::bigint[],
            $6::text[], $7::bigint[])
     AS d(seller_id, pool_id, sku, shared, quantity, condition, version)
WHERE p.seller_id = d.seller_id AND p.pool_id = d.pool_id"#;

const INSERT_LISTINGS: &str = r#"
INSERT INTO store_listing
    (seller_id, sku, store, asin, pool_id, price, fulfillment, start_selling_at, closed)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                     $6::text[], $7::text[], $8::bigint[], $9::boolean[])"#;

const UPDATE_LISTINGS: &str = r#"
UPDATE store_listing l
SET asin = d.asin, pool_id = d.pool_id, price = d.price, fulfillment = d.fulfillment,
    start_selling_at = d.start_selling_at, closed = d.closed
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
            $6::text[], $7::text[], $8::bigint[], $9::boolean[])
     AS d(seller_id, sku, store, asin, pool_id, price, fulfillment, start_selling_at, closed)
WHERE l.seller_id = d.seller_id AND l.sku = d.sku AND l.store = d.store"#;

const INSERT_LEDGER: &str = r#"
INSERT INTO ledger_entry
    (seller_id, sku, pool_id, at, delta, quantity_after, reason, store, reference)
SELECT seller_id, sku, pool_id, at, delta, quantity_after, reason, store, reference
FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
            $7::text[], $8::text[], $9::text[]) WITH ORDINALITY
     AS d(seller_id, sku, pool_id, at, delta, quantity_after, reason, store, reference, n)
ORDER BY n"#;

/// Inserts the events and stores the sellers' final counters in one statement (a
/// data-modifying WITH runs to completion whether or not the main query reads it).
const INSERT_EVENTS: &str = r#"
WITH ins AS (
    INSERT INTO event
        (seller_id, seq, at, kind, sku, pool_id, stores, quantity, delta, reason, status)
    SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                         $6::bigint[], $7::text[], $8::bigint[], $9::bigint[], $10::text[],
                         $11::text[])
)
UPDATE seller s SET event_seq = c.seq
FROM UNNEST($12::text[], $13::bigint[]) AS c(seller_id, seq)
WHERE s.seller_id = c.seller_id"#;

const NEXT_EVENT_SEQ: &str =
    "UPDATE seller SET event_seq = event_seq + 1 WHERE seller_id = $1 RETURNING event_seq";

const INSERT_ORDERS: &str = r#"
INSERT INTO customer_order (store, order_id, lines, results, cancelled, at)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[],
                     $6::bigint[])"#;

const UPDATE_ORDERS: &str = r#"
UPDATE customer_order o SET cancelled = d.cancelled
FROM UNNEST($1::text[], $2::text[], $3::boolean[]) AS d(store, order_id, cancelled)
WHERE o.store = d.store AND o.order_id = d.order_id"#;

const ORDER_LOCK: &str = "SELECT lines, results, cancelled, at FROM customer_order
     WHERE store = $1 AND order_id = $2 FOR UPDATE";
const ORDER: &str = "SELECT lines, results, cancelled, at FROM customer_order
     WHERE store = $1 AND order_id = $2";
/// Many orders at once, without locks (`prefetch_orders`).
/// One index probe per order asked, as the many-SKU reads above.
const ORDERS_OF: &str = "SELECT k.store, k.order_id, o.lines, o.results, o.cancelled, o.at
     FROM UNNEST($1::text[], $2::text[]) AS k(store, order_id)
     CROSS JOIN LATERAL (
         SELECT lines, results, cancelled, at FROM customer_order o
         WHERE o.store = k.store AND o.order_id = k.order_id OFFSET 0
     ) o";

/// The columns `codec::page_of` reads, identifiers in the order they were given.
macro_rules! page_select {
    () => {
        "SELECT p.asin, p.store, p.title, p.brand, p.description, p.language, p.product_type,
           ARRAY(SELECT i.kind FROM catalog_identifier i
                 WHERE i.asin = p.asin AND i.store = p.store ORDER BY i.position),
           ARRAY(SELECT i.value FROM catalog_identifier i
                 WHERE i.asin = p.asin AND i.store = p.store ORDER BY i.position)
         FROM catalog_page p "
    };
}

/// The query text as a tsquery in each configuration a page may use. Each is a
/// scalar subquery, so that it is parsed once per search (an InitPlan): a plan that
/// PostgreSQL keeps for a prepared statement knows no `$2`, and would otherwise parse
/// the query again for every row it tests.
macro_rules! tsq {
    ($cfg:literal) => {
        concat!("(SELECT websearch_to_tsquery('", $cfg, "', $2))")
    };
}
macro_rules! tsq_of_page {
    () => {
        concat!(
            "(CASE s.language WHEN 'en' THEN ",
            tsq!("english"),
            " WHEN 'fr' THEN ",
            tsq!("french"),
            " WHEN 'es' THEN ",
            tsq!("spanish"),
            " ELSE ",
            tsq!("simple"),
            " END)"
        )
    };
}

/// Ranks the store's first `$4` ([`SEARCH_CANDIDATES_MAX`]) matches in its partition of
/// `catalog_search` (`$1`, the store, prunes the others), then reads the best `$3`
/// pages, identifiers and all. `$where` chooses the matches.
///
/// Bounded work whatever the catalog's size (docs/decisions.md, "Search with a common
/// word"): every word of the query must be on a page here, so one rare word bounds the
/// matches by itself, and a query of common words alone ranks the first 1,000 matches
/// instead of all of them.
macro_rules! search_sql {
    ($where:expr) => {
        concat!(
            page_select!(),
            "JOIN (SELECT c.asin, c.store, c.r FROM (
             SELECT s.asin, s.store, ts_rank(s.search, ",
            tsq_of_page!(),
            ") AS r
               FROM catalog_search s
              WHERE s.store = $1 AND ",
            $where,
            " LIMIT $4) c
           ORDER BY c.r DESC, c.asin LIMIT $3) best
      ON p.asin = best.asin AND p.store = best.store
    ORDER BY best.r DESC, p.asin"
        )
    };
}
/// Through the partition's GIN index: the first `@@` is on one tsquery (every
/// configuration OR-ed), which the index can answer; the second keeps only matches in
/// the page's own language.
const SEARCH: &str = search_sql!(concat!(
    "s.search @@ (",
    tsq!("english"),
    " || ",
    tsq!("french"),
    " || ",
    tsq!("spanish"),
    " || ",
    tsq!("simple"),
    ") AND s.search @@ ",
    tsq_of_page!()
));
/// A scan of the partition (`postgres/search.rs`), planned under its own settings and
/// cached apart from the index plan. It tests each row in its own language only: the
/// OR of every configuration is there for the index, and testing it too made each row
/// cost three times as much.
const SEARCH_SCAN: &str = concat!(
    "/* partition scan */ ",
    search_sql!(concat!("s.search @@ ", tsq_of_page!()))
);
/// Saves the planner settings the scan changes, and changes them for this transaction:
/// parallel workers would each bring matches from their part of the partition, so the
/// 1,000 ranked would change from run to run.
const PLAN_SCAN: &str = "SELECT s.bitmap, s.workers,
        set_config('enable_bitmapscan', 'off', true),
        set_config('max_parallel_workers_per_gather', '0', true)
   FROM (SELECT current_setting('enable_bitmapscan') AS bitmap,
                current_setting('max_parallel_workers_per_gather') AS workers
         OFFSET 0) s";
/// Puts back what `PLAN_SCAN` saved, for the transaction's later statements.
const PLAN_RESTORE: &str = "SELECT set_config('enable_bitmapscan', $1, true),
        set_config('max_parallel_workers_per_gather', $2, true)";

/// Matches of a query ranked at most (see [`SEARCH`]); the same bound as SQLite's
/// common-word candidates.
pub(super) const SEARCH_CANDIDATES_MAX: i64 = 1_000;

impl<'c> PgTx<'c> {
    pub(super) fn new(conn: &'c mut Conn, read_only: bool) -> PgTx<'c> {
        PgTx {
            conn,
            read_only,
            skus: HashMap::new(),
            ledger: Vec::new(),
            events: Vec::new(),
            seqs: HashMap::new(),
            orders: HashMap::new(),
            orders_seen: HashMap::new(),
            prefetched_orders: HashMap::new(),
            page_cache: PageCache::default(),
        }
    }

    /// Whether a search for `query` in `store` should scan the store's partition
    /// (`postgres/search.rs`), with the partition's statistics read at most every
    /// `TERM_STATS_TTL` per connection.
    fn scan_pays(&mut self, store: &StoreCode, query: &str) -> StoreResult<bool> {
        let fresh = self
            .conn
            .term_stats
            .get(store.as_str())
            .is_some_and(|t| t.loaded.elapsed() < search::TERM_STATS_TTL);
        if !fresh {
            let part = search::partition_of(store.as_str());
            let pages = match self.conn.query(search::PARTITION_PAGES, &[&part])?.first() {
                Some(row) => codec::col::<f64>(row, 0)?,
                None => 0.0,
            };
            let mut share = HashMap::new();
            for row in self.conn.query(search::TERM_STATS, &[&part])? {
                share.insert(codec::col::<String>(&row, 0)?, codec::col::<f64>(&row, 1)?);
            }
            self.conn.term_stats.insert(
                store.as_str().to_owned(),
                search::TermStats {
                    loaded: std::time::Instant::now(),
                    pages,
                    share,
                },
            );
        }
        Ok(self
            .conn
            .term_stats
            .get(store.as_str())
            .is_some_and(|t| search::scan_pays(query, t)))
    }

    /// Makes sure `store` has its partition of `catalog_search` before a page of it is
    /// written (migration 6). Once the connection has seen it committed, no statement.
    fn search_partition(&mut self, store: &StoreCode) -> StoreResult<()> {
        if self.conn.search_partitions.contains(store.as_str()) {
            return Ok(());
        }
        let rows = self
            .conn
            .query("SELECT catalog_search_partition($1)", &[&store.as_str()])?;
        // Made by this transaction, it is not known to be there until the commit.
        if let Some(row) = rows.first()
            && codec::col::<bool>(row, 0)?
        {
            self.conn
                .search_partitions
                .insert(store.as_str().to_owned());
        }
        Ok(())
    }

    /// Sends every buffered write.
    pub(super) fn flush(&mut self) -> StoreResult<()> {
        self.flush_skus()?;
        self.flush_ledger()?;
        self.flush_events()?;
        self.flush_orders()
    }

    fn read_sku(
        &mut self,
        sql: &'static str,
        seller: &SellerId,
        sku: &Sku,
    ) -> StoreResult<SkuState> {
        let rows = self.conn.query(sql, &[&seller.0, &sku.as_str()])?;
        let mut state = SkuState::empty(seller.clone(), sku.clone());
        for row in &rows {
            let kind: &str = col(row, 0)?;
            if kind == "p" {
                state.pools.push(codec::pool_at(row, 1)?);
            } else {
                state.listings.push(codec::listing_at(row, 6)?);
            }
        }
        Ok(codec::normalized(state))
    }

    /// Full states of many SKUs, in the order asked, in two queries.
    fn read_skus(&mut self, keys: &[(SellerId, Sku)]) -> StoreResult<Vec<SkuState>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sellers: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let skus: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let mut states: HashMap<(String, String), SkuState> = keys
            .iter()
            .map(|(s, k)| {
                (
                    (s.0.clone(), k.as_str().to_owned()),
                    SkuState::empty(s.clone(), k.clone()),
                )
            })
            .collect();
        for row in self.conn.query(POOLS_OF, &[&sellers, &skus])? {
            let key: (String, String) = (col(&row, 0)?, col(&row, 1)?);
            if let Some(state) = states.get_mut(&key) {
                state.pools.push(codec::pool_at(&row, 2)?);
            }
        }
        for row in self.conn.query(LISTINGS_OF, &[&sellers, &skus])? {
            let key: (String, String) = (col(&row, 0)?, col(&row, 1)?);
            if let Some(state) = states.get_mut(&key) {
                state.listings.push(codec::listing_at(&row, 2)?);
            }
        }
        Ok(keys
            .iter()
            .filter_map(|(s, k)| states.remove(&(s.0.clone(), k.as_str().to_owned())))
            .map(codec::normalized)
            .collect())
    }

    /// Writes the difference between what each saved SKU held and what it holds now.
    fn flush_skus(&mut self) -> StoreResult<()> {
        let mut del_listings = ListingKeys::default();
        let mut del_pools: (Vec<String>, Vec<i64>) = Default::default();
        let mut ins_pools = PoolRows::default();
        let mut upd_pools = PoolRows::default();
        let mut ins_listings = ListingRows::default();
        let mut upd_listings = ListingRows::default();
        let mut dirty: Vec<&mut CachedSku> = self.skus.values_mut().filter(|c| c.dirty).collect();
        if dirty.is_empty() {
            return Ok(());
        }
        // The same order in every process, so row locks are taken in one order.
        dirty.sort_by(|a, b| {
            (&a.current.seller_id, &a.current.sku).cmp(&(&b.current.seller_id, &b.current.sku))
        });
        for c in &dirty {
            let (old, new) = (&c.stored, &c.current);
            for l in &old.listings {
                if new.listing(&l.store).is_none() {
                    del_listings.push(new, l.store.as_str());
                }
            }
            for p in &old.pools {
                if new.pool(p.pool_id).is_none() {
                    del_pools.0.push(new.seller_id.0.clone());
                    del_pools.1.push(p.pool_id);
                }
            }
            for p in &new.pools {
                match old.pool(p.pool_id) {
                    None => ins_pools.push(new, p),
                    Some(o) if o != p => upd_pools.push(new, p),
                    Some(_) => {}
                }
            }
            for l in &new.listings {
                match old.listing(&l.store) {
                    None => ins_listings.push(new, l),
                    Some(o) if o != l => upd_listings.push(new, l),
                    Some(_) => {}
                }
            }
        }
        if !del_listings.seller.is_empty() {
            let d = &del_listings;
            self.conn
                .execute(DELETE_LISTINGS, &[&d.seller, &d.sku, &d.store])?;
        }
        if !del_pools.0.is_empty() {
            self.conn
                .execute(DELETE_POOLS, &[&del_pools.0, &del_pools.1])?;
        }
        for (sql, rows) in [(INSERT_POOLS, &ins_pools), (UPDATE_POOLS, &upd_pools)] {
            if rows.seller.is_empty() {
                continue;
            }
            let r = rows;
            let n = self.conn.execute(
                sql,
                &[
                    &r.seller,
                    &r.pool_id,
                    &r.sku,
                    &r.shared,
                    &r.quantity,
                    &r.condition,
                    &r.version,
                ],
            )?;
            if n != r.seller.len() as u64 {
                // Locked rows cannot vanish; if they did, start over.
                return Err(StoreError::Retry(format!(
                    "pool rows changed under the transaction ({n} of {})",
                    r.seller.len()
                )));
            }
        }
        for (sql, rows) in [
            (INSERT_LISTINGS, &ins_listings),
            (UPDATE_LISTINGS, &upd_listings),
        ] {
            if rows.seller.is_empty() {
                continue;
            }
            let r = rows;
            let n = self.conn.execute(
                sql,
                &[
                    &r.seller,
                    &r.sku,
                    &r.store,
                    &r.asin,
                    &r.pool_id,
                    &r.price,
                    &r.fulfillment,
                    &r.start,
                    &r.closed,
                ],
            )?;
            if n != r.seller.len() as u64 {
                return Err(StoreError::Retry(format!(
                    "listing rows changed under the transaction ({n} of {})",
                    r.seller.len()
                )));
            }
        }
        for c in self.skus.values_mut().filter(|c| c.dirty) {
            c.stored = c.current.clone();
            c.dirty = false;
        }
        Ok(())
    }

    fn flush_ledger(&mut self) -> StoreResult<()> {
        if self.ledger.is_empty() {
            return Ok(());
        }
        let e = &self.ledger;
        let seller: Vec<&str> = e.iter().map(|x| x.seller_id.as_str()).collect();
        let sku: Vec<&str> = e.iter().map(|x| x.sku.as_str()).collect();
        let pool: Vec<i64> = e.iter().map(|x| x.pool_id).collect();
        let at: Vec<i64> = e.iter().map(|x| codec::micros(x.at)).collect();
        let delta: Vec<i64> = e.iter().map(|x| x.delta).collect();
        let after: Vec<i64> = e.iter().map(|x| x.quantity_after).collect();
        let reason: Vec<&str> = e.iter().map(|x| x.reason.as_str()).collect();
        let store: Vec<&str> = e.iter().map(|x| x.store.as_str()).collect();
        let reference: Vec<&str> = e.iter().map(|x| x.reference.as_str()).collect();
        self.conn.execute(
            INSERT_LEDGER,
            &[
                &seller, &sku, &pool, &at, &delta, &after, &reason, &store, &reference,
            ],
        )?;
        self.ledger.clear();
        Ok(())
    }

    fn flush_events(&mut self) -> StoreResult<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let mut seller = Vec::new();
        let mut seq = Vec::new();
        let mut at = Vec::new();
        let mut kind = Vec::new();
        let mut sku = Vec::new();
        let mut pool: Vec<Option<i64>> = Vec::new();
        let mut stores = Vec::new();
        let mut quantity: Vec<Option<i64>> = Vec::new();
        let mut delta: Vec<Option<i64>> = Vec::new();
        let mut reason: Vec<Option<&str>> = Vec::new();
        let mut status: Vec<Option<&str>> = Vec::new();
        for e in &self.events {
            seller.push(e.seller_id.as_str());
            seq.push(e.seq);
            at.push(codec::micros(e.at));
            kind.push(e.body.kind());
            match &e.body {
                EventBody::QuantityChanged {
                    sku: s,
                    pool_id,
                    stores: st,
                    quantity: q,
                    delta: d,
                    reason: r,
                } => {
                    sku.push(s.as_str());
                    pool.push(Some(*pool_id));
                    stores.push(codec::stores_text(st));
                    quantity.push(Some(*q));
                    delta.push(Some(*d));
                    reason.push(Some(r.as_str()));
                    status.push(None);
                }
                EventBody::ListingChanged {
                    sku: s,
                    stores: st,
                    status: x,
                } => {
                    sku.push(s.as_str());
                    pool.push(None);
                    stores.push(codec::stores_text(st));
                    quantity.push(None);
                    delta.push(None);
                    reason.push(None);
                    status.push(Some(x.as_str()));
                }
                EventBody::ListingDeleted { sku: s, stores: st } => {
                    sku.push(s.as_str());
                    pool.push(None);
                    stores.push(codec::stores_text(st));
                    quantity.push(None);
                    delta.push(None);
                    reason.push(None);
                    status.push(None);
                }
            }
        }
        // Counters handed out beyond the seller row's value (the row itself was locked
        // and bumped by the first event of each seller).
        let mut counter_seller: Vec<&str> = Vec::new();
        let mut counter_value: Vec<i64> = Vec::new();
        for (s, c) in &self.seqs {
            if c.last > c.stored {
                counter_seller.push(s.as_str());
                counter_value.push(c.last);
            }
        }
        self.conn.execute(
            INSERT_EVENTS,
            &[
                &seller,
                &seq,
                &at,
                &kind,
                &sku,
                &pool,
                &stores,
                &quantity,
                &delta,
                &reason,
                &status,
                &counter_seller,
                &counter_value,
            ],
        )?;
        self.events.clear();
        for c in self.seqs.values_mut() {
            c.stored = c.last;
        }
        Ok(())
    }

    fn flush_orders(&mut self) -> StoreResult<()> {
        if self.orders.is_empty() {
            return Ok(());
        }
        let mut pending: Vec<&PendingOrder> = self.orders.values().collect();
        pending.sort_by(|a, b| {
            (&a.record.store, &a.record.order_id).cmp(&(&b.record.store, &b.record.order_id))
        });
        let (mut i_store, mut i_id, mut i_lines, mut i_results, mut i_cancelled, mut i_at) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut u_store, mut u_id, mut u_cancelled) = (vec![], vec![], vec![]);
        for p in pending {
            let o = &p.record;
            if p.exists {
                u_store.push(o.store.as_str());
                u_id.push(o.order_id.as_str());
                u_cancelled.push(o.cancelled);
            } else {
                i_store.push(o.store.as_str());
                i_id.push(o.order_id.as_str());
                i_lines.push(codec::lines_text(&o.lines));
                i_results.push(codec::results_text(&o.results));
                i_cancelled.push(o.cancelled);
                i_at.push(codec::micros(o.at));
            }
        }
        if !i_store.is_empty() {
            self.conn.execute(
                INSERT_ORDERS,
                &[&i_store, &i_id, &i_lines, &i_results, &i_cancelled, &i_at],
            )?;
        }
        if !u_store.is_empty() {
            self.conn
                .execute(UPDATE_ORDERS, &[&u_store, &u_id, &u_cancelled])?;
        }
        for (key, _) in self.orders.drain() {
            self.orders_seen.insert(key, true);
        }
        Ok(())
    }

    fn pages(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<DetailPage>> {
        self.conn
            .query(sql, params)?
            .iter()
            .map(codec::page_of)
            .collect()
    }
}

#[derive(Default)]
struct ListingKeys {
    seller: Vec<String>,
    sku: Vec<String>,
    store: Vec<String>,
}

impl ListingKeys {
    fn push(&mut self, state: &SkuState, store: &str) {
        self.seller.push(state.seller_id.0.clone());
        self.sku.push(state.sku.as_str().to_owned());
        self.store.push(store.to_owned());
    }
}

#[derive(Default)]
struct PoolRows {
    seller: Vec<String>,
    pool_id: Vec<i64>,
    sku: Vec<String>,
    shared: Vec<bool>,
    quantity: Vec<i64>,
    condition: Vec<&'static str>,
    version: Vec<i64>,
}

impl PoolRows {
    fn push(&mut self, state: &SkuState, p: &onestock_core::model::Pool) {
        self.seller.push(state.seller_id.0.clone());
        self.pool_id.push(p.pool_id);
        self.sku.push(state.sku.as_str().to_owned());
        self.shared.push(p.shared);
        self.quantity.push(p.quantity);
        self.condition.push(p.condition.as_str());
        self.version.push(p.version);
    }
}

#[derive(Default)]
struct ListingRows {
    seller: Vec<String>,
    sku: Vec<String>,
    store: Vec<String>,
    asin: Vec<String>,
    pool_id: Vec<i64>,
    price: Vec<String>,
    fulfillment: Vec<&'static str>,
    start: Vec<Option<i64>>,
    closed: Vec<bool>,
}

impl ListingRows {
    fn push(&mut self, state: &SkuState, l: &onestock_core::model::StoreListing) {
        self.seller.push(state.seller_id.0.clone());
        self.sku.push(state.sku.as_str().to_owned());
        self.store.push(l.store.as_str().to_owned());
        self.asin.push(l.asin.as_str().to_owned());
        self.pool_id.push(l.pool_id);
        self.price.push(l.price.to_string());
        self.fulfillment.push(l.fulfillment.as_str());
        self.start.push(l.start_selling_at.map(codec::micros));
        self.closed.push(l.closed);
    }
}

fn seller_of(row: &Row) -> StoreResult<Seller> {
    Ok(Seller {
        seller_id: SellerId(col(row, 0)?),
        name: col(row, 1)?,
        token_sha256: col(row, 2)?,
        created_at: codec::time_of(col(row, 3)?)?,
    })
}

fn upload_of(row: &Row) -> StoreResult<Upload> {
    Ok(Upload {
        upload_id: col(row, 0)?,
        seller_id: SellerId(col(row, 1)?),
        store: codec::store(col(row, 2)?)?,
        status: codec::upload_status(col(row, 3)?)?,
        path: col(row, 4)?,
        records_processed: col(row, 5)?,
        records_successful: col(row, 6)?,
        records_failed: col(row, 7)?,
        checkpoint: col(row, 8)?,
        error: col(row, 9)?,
        created_at: codec::time_of(col(row, 10)?)?,
    })
}

/// The columns `upload_of` reads.
macro_rules! upload_select {
    () => {
        "SELECT upload_id, seller_id, store, status, path, records_processed, \
         records_successful, records_failed, checkpoint, error, created_at FROM upload "
    };
}

fn event_of(row: &Row) -> StoreResult<Event> {
    let seller_id = SellerId(col(row, 0)?);
    let kind: &str = col(row, 3)?;
    let sku = codec::sku(col(row, 4)?)?;
    let stores = codec::stores_of(col(row, 6)?)?;
    let body = match kind {
        "quantity_changed" => {
            let pool: Option<i64> = col(row, 5)?;
            let quantity: Option<i64> = col(row, 7)?;
            let delta: Option<i64> = col(row, 8)?;
            let reason: Option<&str> = col(row, 9)?;
            match (pool, quantity, delta, reason) {
                (Some(pool_id), Some(quantity), Some(delta), Some(reason)) => {
                    EventBody::QuantityChanged {
                        sku,
                        pool_id,
                        stores,
                        quantity,
                        delta,
                        reason: codec::reason(reason)?,
                    }
                }
                _ => return Err(codec::bad("quantity_changed event")),
            }
        }
        "listing_changed" => {
            let status: Option<String> = col(row, 10)?;
            EventBody::ListingChanged {
                sku,
                stores,
                status: status.ok_or_else(|| codec::bad("listing_changed event"))?,
            }
        }
        "listing_deleted" => EventBody::ListingDeleted { sku, stores },
        other => return Err(codec::bad(format!("event kind {other:?}"))),
    };
    Ok(Event {
        seller_id,
        seq: col(row, 1)?,
        at: codec::time_of(col(row, 2)?)?,
        body,
    })
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Tx for PgTx<'_> {
    fn insert_seller(&mut self, seller: &Seller) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO seller (seller_id, name, token_sha256, created_at, event_seq)
             VALUES ($1, $2, $3, $4, 0)",
            &[
                &seller.seller_id.0,
                &seller.name,
                &seller.token_sha256,
                &codec::micros(seller.created_at),
            ],
        )?;
        Ok(())
    }

    fn seller_by_token(&mut self, token_sha256: &str) -> StoreResult<Option<Seller>> {
        self.conn
            .query_opt(
                "SELECT seller_id, name, token_sha256, created_at FROM seller
                 WHERE token_sha256 = $1",
                &[&token_sha256],
            )?
            .as_ref()
            .map(seller_of)
            .transpose()
    }

    fn sellers(&mut self, after: Option<&SellerId>, limit: usize) -> StoreResult<Vec<Seller>> {
        // COLLATE "C": byte order, the same as SQLite's, whatever the database's locale.
        let after = after.map(|s| s.as_str());
        self.conn
            .query(
                r#"SELECT seller_id, name, token_sha256, created_at FROM seller
                   WHERE $1::text IS NULL OR seller_id COLLATE "C" > $1
                   ORDER BY seller_id COLLATE "C" LIMIT $2"#,
                &[&after, &(limit as i64)],
            )?
            .iter()
            .map(seller_of)
            .collect()
    }

    fn setting(&mut self, key: &str) -> StoreResult<Option<String>> {
        match self
            .conn
            .query_opt("SELECT value FROM setting WHERE key = $1", &[&key])?
        {
            Some(row) => Ok(Some(col(&row, 0)?)),
            None => Ok(None),
        }
    }

    fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO setting (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn insert_page(&mut self, page: &DetailPage) -> StoreResult<()> {
        self.page_cache.forget(page);
        self.search_partition(&page.store)?;
        let config = codec::text_search_config(&page.language);
        // The page and its words in one statement (one round trip).
        self.conn.execute(
            "WITH page AS (
                 INSERT INTO catalog_page
                     (asin, store, title, brand, brand_lower, description, language,
                      product_type, title_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10)
                 ON CONFLICT (asin, store) DO UPDATE SET
                     title = EXCLUDED.title, brand = EXCLUDED.brand,
                     brand_lower = EXCLUDED.brand_lower, description = EXCLUDED.description,
                     language = EXCLUDED.language, product_type = EXCLUDED.product_type,
                     title_key = EXCLUDED.title_key
                 RETURNING asin, store)
             INSERT INTO catalog_search (asin, store, language, search)
             SELECT page.asin, page.store, $7,
                    setweight(to_tsvector($9::text::regconfig, $3), 'A')
                    || setweight(to_tsvector($9::text::regconfig, $4), 'B')
               FROM page
             ON CONFLICT (asin, store) DO UPDATE SET
                 language = EXCLUDED.language, search = EXCLUDED.search",
            &[
                &page.asin.as_str(),
                &page.store.as_str(),
                &page.title,
                &page.brand,
                &page.brand.to_lowercase(),
                &page.description,
                &page.language,
                &page.product_type,
                &config,
                &normalize_title(&page.title),
            ],
        )?;
        self.conn.execute(
            "DELETE FROM catalog_identifier WHERE asin = $1 AND store = $2",
            &[&page.asin.as_str(), &page.store.as_str()],
        )?;
        if !page.identifiers.is_empty() {
            let kinds: Vec<&str> = page.identifiers.iter().map(|i| i.kind.as_str()).collect();
            let values: Vec<&str> = page.identifiers.iter().map(|i| i.value.as_str()).collect();
            self.conn.execute(
                "INSERT INTO catalog_identifier (asin, store, position, kind, value)
                 SELECT $1, $2, n, kind, value
                 FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS d(kind, value, n)",
                &[&page.asin.as_str(), &page.store.as_str(), &kinds, &values],
            )?;
        }
        Ok(())
    }

    fn page(&mut self, asin: &Asin, store: &StoreCode) -> StoreResult<Option<DetailPage>> {
        let key = PageQuery::Page(asin.clone(), store.clone());
        if let Some(hit) = self.page_cache.get(&key) {
            return Ok(hit.into_iter().next());
        }
        let pages = self.pages(
            concat!(page_select!(), "WHERE p.asin = $1 AND p.store = $2"),
            &[&asin.as_str(), &store.as_str()],
        )?;
        Ok(self.page_cache.put(key, pages).into_iter().next())
    }

    fn pages_of_asin(&mut self, asin: &Asin) -> StoreResult<Vec<DetailPage>> {
        let key = PageQuery::OfAsin(asin.clone());
        if let Some(hit) = self.page_cache.get(&key) {
            return Ok(hit);
        }
        let pages = self.pages(
            concat!(page_select!(), "WHERE p.asin = $1 ORDER BY p.store"),
            &[&asin.as_str()],
        )?;
        Ok(self.page_cache.put(key, pages))
    }

    fn pages_by_identifier(&mut self, value: &str) -> StoreResult<Vec<DetailPage>> {
        let key = PageQuery::ByIdentifier(value.to_owned());
        if let Some(hit) = self.page_cache.get(&key) {
            return Ok(hit);
        }
        // One value is a chunk of one: the same statement and the same grouping.
        self.prefetch_pages_by_identifier(&[value.to_owned()])?;
        self.page_cache
            .get(&key)
            .ok_or_else(|| StoreError::Other("the page cache lost an identifier's pages".into()))
    }

    fn prefetch_pages_by_identifier(&mut self, values: &[String]) -> StoreResult<()> {
        let wanted: Vec<&str> = values
            .iter()
            .filter(|v| {
                !self
                    .page_cache
                    .contains(&PageQuery::ByIdentifier((*v).clone()))
            })
            .map(String::as_str)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        // One index probe per value (see `POOLS_OF` on why LATERAL).
        let pages = self.pages(
            concat!(
                page_select!(),
                "WHERE (p.asin, p.store) IN
                   (SELECT i.asin, i.store FROM UNNEST($1::text[]) AS k(value)
                    CROSS JOIN LATERAL (
                        SELECT asin, store FROM catalog_identifier i
                        WHERE i.value = k.value OFFSET 0
                    ) i)
                 ORDER BY p.asin, p.store"
            ),
            &[&wanted],
        )?;
        // Each value's pages in (asin, store) order, as `pages_by_identifier` gives them.
        let mut of_value: HashMap<&str, Vec<DetailPage>> =
            wanted.iter().map(|v| (*v, Vec::new())).collect();
        for page in &pages {
            for id in &page.identifiers {
                if let Some(list) = of_value.get_mut(id.value.as_str()) {
                    let repeat = list
                        .last()
                        .is_some_and(|p| p.asin == page.asin && p.store == page.store);
                    if !repeat {
                        list.push(page.clone());
                    }
                }
            }
        }
        for (value, list) in of_value {
            self.page_cache
                .put(PageQuery::ByIdentifier(value.to_owned()), list);
        }
        for page in pages {
            self.page_cache.put(
                PageQuery::Page(page.asin.clone(), page.store.clone()),
                vec![page],
            );
        }
        Ok(())
    }

    fn pages_by_brand_and_title(
        &mut self,
        store: &StoreCode,
        brand: &str,
        title_key: &str,
    ) -> StoreResult<Vec<DetailPage>> {
        self.pages(
            concat!(
                page_select!(),
                "WHERE p.store = $1 AND p.brand_lower = $2 AND p.title_key = $3 ORDER BY p.asin"
            ),
            &[&store.as_str(), &brand.to_lowercase(), &title_key],
        )
    }

    fn search_pages(
        &mut self,
        store: &StoreCode,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<DetailPage>> {
        // websearch_to_tsquery accepts any text; only NUL (refused by PostgreSQL) and
        // other control characters are taken out.
        let query: String = query
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let query = query.trim();
        if query.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = count(limit);
        let params: [&(dyn postgres::types::ToSql + Sync); 4] =
            [&store.as_str(), &query, &limit, &SEARCH_CANDIDATES_MAX];
        if !self.scan_pays(store, query)? {
            return self.pages(SEARCH, &params);
        }
        let saved = self.conn.query(PLAN_SCAN, &[])?;
        let (bitmap, workers): (String, String) = match saved.first() {
            Some(row) => (codec::col(row, 0)?, codec::col(row, 1)?),
            None => return Err(StoreError::Other("planner settings not read".into())),
        };
        let pages = self.pages(SEARCH_SCAN, &params)?;
        self.conn.query(PLAN_RESTORE, &[&bitmap, &workers])?;
        Ok(pages)
    }

    fn load_sku(&mut self, seller: &SellerId, sku: &Sku) -> StoreResult<SkuState> {
        let key = (seller.clone(), sku.clone());
        if let Some(c) = self.skus.get(&key) {
            return Ok(c.current.clone());
        }
        let state = if self.read_only {
            self.read_sku(LOAD_SKU, seller, sku)?
        } else {
            // In READ COMMITTED a locking read that waited sees the rows it locked as
            // the other transaction left them, but not the rows that transaction
            // inserted (a new listing). Now that the locks are ours, read again: every
            // writer of this SKU locks its rows first, so nothing changes after this.
            let first = self.read_sku(LOAD_SKU_LOCK, seller, sku)?;
            if first.listings.is_empty() && first.pools.is_empty() {
                first
            } else {
                self.read_sku(LOAD_SKU_LOCK, seller, sku)?
            }
        };
        self.skus.insert(
            key,
            CachedSku {
                stored: state.clone(),
                current: state.clone(),
                dirty: false,
            },
        );
        Ok(state)
    }

    fn prefetch_skus(&mut self, keys: &[(SellerId, Sku)]) -> StoreResult<()> {
        let mut wanted: Vec<(SellerId, Sku)> = keys
            .iter()
            .filter(|k| !self.skus.contains_key(*k))
            .cloned()
            .collect();
        // Sorted and without repeats: every prefetch locks in the same order, so two of
        // them never deadlock on each other.
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        if !self.read_only {
            let sellers: Vec<&str> = wanted.iter().map(|k| k.0.as_str()).collect();
            let skus: Vec<&str> = wanted.iter().map(|k| k.1.as_str()).collect();
            self.conn.query(LOCK_POOLS_OF, &[&sellers, &skus])?;
            self.conn.query(LOCK_LISTINGS_OF, &[&sellers, &skus])?;
        }
        // Read after the locks are held, as `load_sku` does: a lock that waited returns
        // the row as the other transaction left it, but not the rows it inserted (a new
        // listing), which this read sees. Unlike `load_sku`, rows inserted that way are
        // read without being locked; the SKU's listings were locked from a fresh
        // snapshot, so the worst that follows is a deadlock, which is retried.
        for state in self.read_skus(&wanted)? {
            let key = (state.seller_id.clone(), state.sku.clone());
            self.skus.insert(
                key,
                CachedSku {
                    stored: state.clone(),
                    current: state,
                    dirty: false,
                },
            );
        }
        Ok(())
    }

    fn save_sku(&mut self, state: &SkuState) -> StoreResult<()> {
        let key = (state.seller_id.clone(), state.sku.clone());
        if !self.skus.contains_key(&key) {
            self.load_sku(&state.seller_id, &state.sku)?;
        }
        let cached = self
            .skus
            .get_mut(&key)
            .ok_or_else(|| StoreError::Other("SKU cache lost an entry".into()))?;
        let mut next = codec::normalized(state.clone());
        // The version is the pool's ETag: it grows with every change, whether or not
        // the caller bumped it.
        for p in &mut next.pools {
            if let Some(old) = cached.current.pool(p.pool_id) {
                let changed = old.quantity != p.quantity
                    || old.condition != p.condition
                    || old.shared != p.shared;
                if changed && p.version <= old.version {
                    p.version = old.version + 1;
                }
            }
        }
        cached.current = next;
        cached.dirty = true;
        Ok(())
    }

    fn new_pool_id(&mut self) -> StoreResult<PoolId> {
        /// Ids fetched per round trip: an upload creates pools by the thousand.
        const POOL_IDS_PER_FETCH: i64 = 256;
        if self.conn.pool_ids.is_empty() {
            let rows = self.conn.query(
                "SELECT nextval('pool_id_seq') FROM generate_series(1, $1::bigint)",
                &[&POOL_IDS_PER_FETCH],
            )?;
            let mut ids = rows
                .iter()
                .map(|row| col::<i64>(row, 0))
                .collect::<StoreResult<Vec<i64>>>()?;
            // Handed out from the end: smallest first.
            ids.sort_unstable_by(|a, b| b.cmp(a));
            self.conn.pool_ids = ids;
        }
        self.conn
            .pool_ids
            .pop()
            .ok_or_else(|| StoreError::Other("nextval returned no row".into()))
    }

    fn skus_from(
        &mut self,
        seller: &SellerId,
        from: Option<&Sku>,
        limit: usize,
    ) -> StoreResult<Vec<SkuState>> {
        self.flush_skus()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = from.map(Sku::as_str).unwrap_or("");
        let rows = self.conn.query(
            r#"SELECT DISTINCT sku COLLATE "C" FROM store_listing
               WHERE seller_id = $1 AND sku COLLATE "C" >= $2
               ORDER BY sku COLLATE "C" LIMIT $3"#,
            &[&seller.0, &from, &count(limit)],
        )?;
        let keys = rows
            .iter()
            .map(|r| Ok((seller.clone(), codec::sku(col(r, 0)?)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.read_skus(&keys)
    }

    fn skus_on_asin(&mut self, store: &StoreCode, asin: &Asin) -> StoreResult<Vec<SkuState>> {
        self.flush_skus()?;
        let rows = self.conn.query(
            r#"SELECT DISTINCT seller_id, sku COLLATE "C" FROM store_listing
               WHERE store = $1 AND asin = $2 ORDER BY 1, 2"#,
            &[&store.as_str(), &asin.as_str()],
        )?;
        let keys = rows
            .iter()
            .map(|r| Ok((SellerId(col(r, 0)?), codec::sku(col(r, 1)?)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.read_skus(&keys)
    }

    fn append_ledger(&mut self, entry: &LedgerEntry) -> StoreResult<()> {
        let mut entry = entry.clone();
        entry.at = codec::truncated(entry.at);
        self.ledger.push(entry);
        Ok(())
    }

    fn ledger_entries(
        &mut self,
        seller: &SellerId,
        sku: &Sku,
        after: i64,
        limit: usize,
        newest: bool,
    ) -> StoreResult<Vec<LedgerEntry>> {
        self.flush_ledger()?;
        let sql = if newest {
            "SELECT seq, at, pool_id, delta, quantity_after, reason, store, reference
             FROM ledger_entry WHERE seller_id = $1 AND sku = $2 AND seq > $3
             ORDER BY seq DESC LIMIT $4"
        } else {
            "SELECT seq, at, pool_id, delta, quantity_after, reason, store, reference
             FROM ledger_entry WHERE seller_id = $1 AND sku = $2 AND seq > $3
             ORDER BY seq LIMIT $4"
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .conn
            .query(sql, &[&seller.0, &sku.as_str(), &after, &limit])?;
        rows.iter()
            .map(|r| {
                Ok(LedgerEntry {
                    seq: col(r, 0)?,
                    at: codec::time_of(col(r, 1)?)?,
                    seller_id: seller.clone(),
                    sku: sku.clone(),
                    pool_id: col(r, 2)?,
                    delta: col(r, 3)?,
                    quantity_after: col(r, 4)?,
                    reason: codec::reason(col(r, 5)?)?,
                    store: codec::store(col(r, 6)?)?,
                    reference: col(r, 7)?,
                })
            })
            .collect()
    }

    fn append_event(
        &mut self,
        seller: &SellerId,
        at: OffsetDateTime,
        body: &EventBody,
    ) -> StoreResult<i64> {
        let seq = match self.seqs.get_mut(seller) {
            Some(c) => {
                c.last += 1;
                c.last
            }
            None => {
                // Locks the seller row until commit: a seller's writers take turns, so
                // seqs have no gaps across processes.
                let row = self
                    .conn
                    .query_opt(NEXT_EVENT_SEQ, &[&seller.0])?
                    .ok_or_else(|| StoreError::Other(format!("no seller {seller}")))?;
                let seq: i64 = col(&row, 0)?;
                self.seqs.insert(
                    seller.clone(),
                    EventSeq {
                        stored: seq,
                        last: seq,
                    },
                );
                seq
            }
        };
        self.events.push(PendingEvent {
            seller_id: seller.clone(),
            seq,
            at: codec::truncated(at),
            body: body.clone(),
        });
        Ok(seq)
    }

    fn events_after(
        &mut self,
        seller: &SellerId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<Event>> {
        self.flush_events()?;
        let rows = self.conn.query(
            "SELECT seller_id, seq, at, kind, sku, pool_id, stores, quantity, delta, reason,
                    status
             FROM event WHERE seller_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&seller.0, &after, &count(limit)],
        )?;
        rows.iter().map(event_of).collect()
    }

    fn last_event_seq(&mut self, seller: &SellerId) -> StoreResult<i64> {
        if let Some(c) = self.seqs.get(seller) {
            return Ok(c.last);
        }
        match self.conn.query_opt(
            "SELECT event_seq FROM seller WHERE seller_id = $1",
            &[&seller.0],
        )? {
            Some(row) => col(&row, 0),
            None => Ok(0),
        }
    }

    fn order(&mut self, store: &StoreCode, order_id: &str) -> StoreResult<Option<OrderRecord>> {
        let key = (store.clone(), order_id.to_owned());
        if let Some(p) = self.orders.get(&key) {
            return Ok(Some(p.record.clone()));
        }
        if let Some(prefetched) = self.prefetched_orders.remove(&key) {
            return Ok(prefetched);
        }
        // Locked in a write transaction so two cancels of one order take turns and the
        // second sees `cancelled`.
        let sql = if self.read_only { ORDER } else { ORDER_LOCK };
        let row = self.conn.query_opt(sql, &[&store.as_str(), &order_id])?;
        self.orders_seen.insert(key, row.is_some());
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(OrderRecord {
            store: store.clone(),
            order_id: order_id.to_owned(),
            lines: codec::lines_of(col(&row, 0)?)?,
            results: codec::results_of(col(&row, 1)?)?,
            cancelled: col(&row, 2)?,
            at: codec::time_of(col(&row, 3)?)?,
        }))
    }

    fn prefetch_orders(&mut self, keys: &[(StoreCode, String)]) -> StoreResult<()> {
        let wanted: Vec<&(StoreCode, String)> = keys
            .iter()
            .filter(|k| !self.orders.contains_key(*k) && !self.orders_seen.contains_key(*k))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let stores: Vec<&str> = wanted.iter().map(|k| k.0.as_str()).collect();
        let ids: Vec<&str> = wanted.iter().map(|k| k.1.as_str()).collect();
        for k in &wanted {
            self.prefetched_orders.insert((*k).clone(), None);
            // Absent as far as this look-up knows: `save_order` inserts it, and a
            // concurrent insert of the same id makes that a retried unique violation.
            self.orders_seen.insert((*k).clone(), false);
        }
        for row in self.conn.query(ORDERS_OF, &[&stores, &ids])? {
            let store_raw: String = col(&row, 0)?;
            let order_id: String = col(&row, 1)?;
            let Some(store) = StoreCode::parse(&store_raw) else {
                continue;
            };
            let record = OrderRecord {
                store: store.clone(),
                order_id: order_id.clone(),
                lines: codec::lines_of(col(&row, 2)?)?,
                results: codec::results_of(col(&row, 3)?)?,
                cancelled: col(&row, 4)?,
                at: codec::time_of(col(&row, 5)?)?,
            };
            let key = (store, order_id);
            self.orders_seen.insert(key.clone(), true);
            self.prefetched_orders.insert(key, Some(record));
        }
        Ok(())
    }

    fn save_order(&mut self, order: &OrderRecord) -> StoreResult<()> {
        let key = (order.store.clone(), order.order_id.clone());
        let exists = match (self.orders.get(&key), self.orders_seen.get(&key)) {
            (Some(p), _) => p.exists,
            (None, Some(seen)) => *seen,
            (None, None) => {
                let row = self
                    .conn
                    .query_opt(ORDER_LOCK, &[&order.store.as_str(), &order.order_id])?;
                row.is_some()
            }
        };
        let mut record = order.clone();
        record.at = codec::truncated(record.at);
        self.orders.insert(key, PendingOrder { record, exists });
        Ok(())
    }

    fn insert_upload(&mut self, upload: &Upload) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO upload (upload_id, seller_id, store, status, path, records_processed,
                 records_successful, records_failed, checkpoint, error, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &upload.upload_id,
                &upload.seller_id.0,
                &upload.store.as_str(),
                &upload.status.as_str(),
                &upload.path,
                &upload.records_processed,
                &upload.records_successful,
                &upload.records_failed,
                &upload.checkpoint,
                &upload.error,
                &codec::micros(upload.created_at),
            ],
        )?;
        Ok(())
    }

    fn update_upload(&mut self, upload: &Upload) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE upload SET status = $2, records_processed = $3, records_successful = $4,
                 records_failed = $5, checkpoint = $6, error = $7
             WHERE upload_id = $1",
            &[
                &upload.upload_id,
                &upload.status.as_str(),
                &upload.records_processed,
                &upload.records_successful,
                &upload.records_failed,
                &upload.checkpoint,
                &upload.error,
            ],
        )?;
        Ok(())
    }

    fn upload(&mut self, upload_id: &str) -> StoreResult<Option<Upload>> {
        const SQL: &str = concat!(upload_select!(), "WHERE upload_id = $1");
        // Locked in a write transaction: two processes that both work on one upload take
        // turns, and the second sees the checkpoint the first moved.
        const SQL_LOCK: &str = concat!(upload_select!(), "WHERE upload_id = $1 FOR UPDATE");
        let sql = if self.read_only { SQL } else { SQL_LOCK };
        self.conn
            .query_opt(sql, &[&upload_id])?
            .as_ref()
            .map(upload_of)
            .transpose()
    }

    fn uploads_of_seller(
        &mut self,
        seller: &SellerId,
        store: Option<&StoreCode>,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Upload>> {
        const SQL: &str = concat!(
            upload_select!(),
            "WHERE seller_id = $1 AND ($2::text IS NULL OR store = $2) AND ($3::text IS NULL OR upload_id < $3)
             ORDER BY upload_id DESC LIMIT $4"
        );
        let store = store.map(|s| s.as_str());
        self.conn
            .query(SQL, &[&seller.0, &store, &before, &(limit as i64)])?
            .iter()
            .map(upload_of)
            .collect()
    }

    fn unfinished_uploads(&mut self) -> StoreResult<Vec<Upload>> {
        const SQL: &str = concat!(
            upload_select!(),
            "WHERE status IN ('IN_QUEUE', 'IN_PROGRESS') ORDER BY created_at, upload_id"
        );
        self.conn.query(SQL, &[])?.iter().map(upload_of).collect()
    }

    fn append_report(&mut self, upload_id: &str, lines: &[ReportLine]) -> StoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let record: Vec<i64> = lines.iter().map(|l| l.record).collect();
        let sku: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
        let code: Vec<&str> = lines.iter().map(|l| l.code.as_str()).collect();
        let kind: Vec<&str> = lines
            .iter()
            .map(|l| codec::report_kind_text(l.kind))
            .collect();
        let message: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        self.conn.execute(
            "INSERT INTO upload_report (upload_id, record, sku, code, kind, message)
             SELECT $1, record, sku, code, kind, message
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
                  WITH ORDINALITY AS d(record, sku, code, kind, message, n)
             ORDER BY n",
            &[&upload_id, &record, &sku, &code, &kind, &message],
        )?;
        Ok(())
    }

    fn report(&mut self, upload_id: &str) -> StoreResult<Vec<ReportLine>> {
        let rows = self.conn.query(
            "SELECT record, sku, code, kind, message FROM upload_report
             WHERE upload_id = $1 ORDER BY record, n",
            &[&upload_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ReportLine {
                    record: col(r, 0)?,
                    sku: col(r, 1)?,
                    code: col(r, 2)?,
                    kind: codec::report_kind(col(r, 3)?)?,
                    message: col(r, 4)?,
                })
            })
            .collect()
    }

    fn report_page(
        &mut self,
        upload_id: &str,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> StoreResult<Vec<((i64, i64), ReportLine)>> {
        let (record, n) = after.unwrap_or((i64::MIN, i64::MIN));
        let rows = self.conn.query(
            "SELECT record, n, sku, code, kind, message FROM upload_report
             WHERE upload_id = $1 AND (record, n) > ($2, $3)
             ORDER BY record, n LIMIT $4",
            &[&upload_id, &record, &n, &(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                let record: i64 = col(r, 0)?;
                Ok((
                    (record, col(r, 1)?),
                    ReportLine {
                        record,
                        sku: col(r, 2)?,
                        code: col(r, 3)?,
                        kind: codec::report_kind(col(r, 4)?)?,
                        message: col(r, 5)?,
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::{PgDb, create_test_database, drop_database};
    use onestock_core::model::DetailPage;

    /// What the scan changes, as the session sees it.
    fn planner_settings(conn: &mut Conn) -> (String, String) {
        let row = conn
            .client
            .query_one(
                "SELECT current_setting('enable_bitmapscan'),
                        current_setting('max_parallel_workers_per_gather')",
                &[],
            )
            .expect("settings");
        (row.get(0), row.get(1))
    }

    /// Once the statistics make a query's words common, its search scans the store's
    /// partition, and the transaction's later statements run with the planner settings
    /// it had.
    #[test]
    fn a_common_word_search_scans_and_puts_the_planner_settings_back() {
        let Some(test) = TestPg::new() else { return };
        let db = test.db();
        db.write_once(&mut |tx| {
            for i in 0..300 {
                tx.insert_page(&english_page(i, "US", &format!("steel mug number{i}")))?;
            }
            Ok(())
        })
        .expect("pages");
        db.analyze().expect("analyze");
        let mut conn = db.take().expect("connection");
        conn.client.batch_execute("BEGIN READ ONLY").expect("begin");
        let before = planner_settings(&mut conn);
        {
            let mut tx = PgTx::new(&mut conn, true);
            let us = StoreCode::parse("US").expect("store");
            assert!(tx.scan_pays(&us, "steel mug").expect("stats"));
            assert!(!tx.scan_pays(&us, "number7").expect("stats"));
            assert_eq!(
                tx.search_pages(&us, "steel mug", 10).expect("search").len(),
                10
            );
        }
        assert_eq!(planner_settings(&mut conn), before);
        assert_eq!(before.0, "on");
        conn.client.batch_execute("COMMIT").expect("commit");
    }

    /// Every store's GIN index keeps a short pending list (migration 7), which each
    /// search reads whole, in a partition made by a page written after the migration.
    #[test]
    fn every_store_partitions_search_index_keeps_a_short_pending_list() {
        let Some(test) = TestPg::new() else { return };
        let db = test.db();
        db.write_once(&mut |tx| {
            for (i, code) in ["US", "MX"].iter().enumerate() {
                tx.insert_page(&english_page(i, code, "steel mug"))?;
            }
            Ok(())
        })
        .expect("pages");
        let mut conn = db.take().expect("connection");
        let indexes = search_index_options(&mut conn);
        db.give_back(conn);
        assert_eq!(indexes.len(), 2, "{indexes:?}");
        for (partition, options) in &indexes {
            assert_eq!(options.as_deref(), Some(SHORT_PENDING_LIST), "{partition}");
        }
        db.read_once(&mut |tx| {
            assert_eq!(tx.search_pages(&store("MX"), "steel", 5)?.len(), 1);
            Ok(())
        })
        .expect("search");
    }

    /// An upload-sized chunk's reads and locks probe the key index once per key, on a
    /// session without JIT, and read what `load_sku` reads one SKU at a time.
    #[test]
    fn a_chunk_of_keys_is_read_and_locked_by_key_probes() {
        use onestock_core::model::{Pool, StoreListing};
        use onestock_core::types::{Condition, Fulfillment};
        let Some(test) = TestPg::new() else { return };
        let db = test.db();
        let seller = SellerId("sel_probe".into());
        let state = |i: usize| SkuState {
            seller_id: seller.clone(),
            sku: Sku::parse(&format!("SKU-{i:05}")).expect("sku"),
            listings: ["CA", "US"]
                .iter()
                .map(|st| StoreListing {
                    store: StoreCode::parse(st).expect("store"),
                    asin: Asin::parse("B0PROBE001").expect("asin"),
                    pool_id: i as i64 + 1,
                    price: "9.99".parse().expect("price"),
                    fulfillment: Fulfillment::Merchant,
                    start_selling_at: None,
                    closed: false,
                })
                .collect(),
            pools: vec![Pool {
                pool_id: i as i64 + 1,
                shared: true,
                quantity: i as i64,
                condition: Condition::New,
                version: 1,
            }],
        };
        let stored = 3_000;
        db.write_once(&mut |tx| (0..stored).try_for_each(|i| tx.save_sku(&state(i))))
            .expect("fill");
        db.analyze().expect("analyze");

        // Every fifth key of the chunk exists, as in a catalog file of new listings.
        let keys: Vec<(SellerId, Sku)> = (0..8_000)
            .map(|i| {
                let n = if i % 5 == 0 { i / 5 } else { 10_000 + i };
                (
                    seller.clone(),
                    Sku::parse(&format!("SKU-{n:05}")).expect("sku"),
                )
            })
            .collect();
        let sellers: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let skus: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let mut conn = db.take().expect("connection");
        let jit: String = conn.client.query_one("SHOW jit", &[]).expect("jit").get(0);
        assert_eq!(jit, "off");
        conn.client.batch_execute("BEGIN").expect("begin");
        for sql in [
            POOLS_OF,
            LISTINGS_OF,
            LOCK_POOLS_OF,
            LOCK_LISTINGS_OF,
            ORDERS_OF,
        ] {
            let plan: Vec<String> = conn
                .client
                .query(&format!("EXPLAIN {sql}"), &[&sellers, &skus])
                .expect("explain")
                .iter()
                .map(|r| r.get(0))
                .collect();
            let plan = plan.join("\n");
            assert!(plan.contains("Nested Loop"), "{sql}\n{plan}");
            // (An empty table, as customer_order is here, is scanned within the loop.)
            for join in [
                "Merge Join",
                "Hash Join",
                "Seq Scan on pool",
                "Seq Scan on store_listing",
            ] {
                assert!(!plan.contains(join), "{sql}\n{plan}");
            }
        }
        {
            let mut tx = PgTx::new(&mut conn, false);
            tx.prefetch_skus(&keys).expect("prefetch");
            // Every key is answered by the prefetch, found or not.
            assert!(keys.iter().all(|k| tx.skus.contains_key(k)));
            for (i, key) in keys.iter().enumerate().step_by(97) {
                let got = tx.load_sku(&key.0, &key.1).expect("load");
                let n: usize = key.1.as_str()[4..].parse().expect("number");
                if n < stored {
                    assert_eq!(got, state(n), "key {i}");
                } else {
                    assert!(got.listings.is_empty() && got.pools.is_empty(), "key {i}");
                }
            }
        }
        conn.client.batch_execute("ROLLBACK").expect("rollback");
    }

    /// A chunk's identifier look-ups are read in one statement and then answered from
    /// the cache: each value's pages in every store in (asin, store) order, a page with
    /// two of the values under each, nothing for a value no page has; the same as one
    /// value at a time.
    #[test]
    fn identifier_lookups_prefetched_answer_as_one_by_one() {
        use crate::page_cache::test_page as page;
        let Some(test) = TestPg::new() else { return };
        let db = test.db();
        db.write_once(&mut |tx| {
            tx.insert_page(&page("B0MUG00002", "US", &["012345678905"]))?;
            tx.insert_page(&page("B0MUG00002", "CA", &["012345678905"]))?;
            tx.insert_page(&page("B0MUG00001", "US", &["012345678905", "036000291452"]))?;
            tx.insert_page(&page("B0MUG00003", "MX", &["036000291452"]))
        })
        .expect("pages");
        let values: Vec<String> = ["012345678905", "036000291452", "999999999993"]
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
        // Each value's pages, in (asin, store) order, in every store.
        let want = [
            vec![
                page("B0MUG00001", "US", &["012345678905", "036000291452"]),
                page("B0MUG00002", "CA", &["012345678905"]),
                page("B0MUG00002", "US", &["012345678905"]),
            ],
            vec![
                page("B0MUG00001", "US", &["012345678905", "036000291452"]),
                page("B0MUG00003", "MX", &["036000291452"]),
            ],
            Vec::new(),
        ];
        let mut conn = db.take().expect("connection");
        conn.client.batch_execute("BEGIN READ ONLY").expect("begin");
        {
            let mut tx = PgTx::new(&mut conn, true);
            tx.prefetch_pages_by_identifier(&values).expect("prefetch");
            // Answered by the prefetch: every value and every page it found is cached.
            for v in &values {
                assert!(
                    tx.page_cache.contains(&PageQuery::ByIdentifier(v.clone())),
                    "{v}"
                );
            }
            for p in want.iter().flatten() {
                let key = PageQuery::Page(p.asin.clone(), p.store.clone());
                assert!(tx.page_cache.contains(&key), "{:?}", p.asin);
            }
            for (v, want) in values.iter().zip(&want) {
                assert_eq!(&tx.pages_by_identifier(v).expect("pages"), want, "{v}");
            }
            let first = &want[0][0];
            assert_eq!(
                tx.page(&first.asin, &first.store).expect("page").as_ref(),
                Some(first)
            );
        }
        conn.client.batch_execute("COMMIT").expect("commit");
        drop(conn);
        // One value at a time (a fresh transaction, nothing cached) answers the same.
        db.read_once(&mut |tx| {
            for (v, want) in values.iter().zip(&want) {
                assert_eq!(&tx.pages_by_identifier(v)?, want, "{v}");
            }
            Ok(())
        })
        .expect("one by one");
    }

    /// Pages written before migration 4 (no title key) get their keys when the database
    /// is opened, across more than one batch, and are then found by brand and title.
    #[test]
    fn pages_written_before_migration_4_are_found_by_title_after_it() {
        let Some(mut test) = TestPg::unopened() else {
            return;
        };
        let pages = super::super::TITLE_KEYS_PER_BATCH + 5;
        {
            let mut old = postgres::Client::connect(&test.url, postgres::NoTls).expect("connect");
            old.batch_execute(
                "CREATE TABLE schema_version (version integer PRIMARY KEY,
                 applied_at bigint NOT NULL)",
            )
            .expect("schema_version");
            for (version, sql, _) in &super::super::MIGRATIONS[..3] {
                old.batch_execute(sql).expect("old migration");
                old.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES ($1, 0)",
                    &[version],
                )
                .expect("version");
            }
            old.execute(
                "INSERT INTO catalog_page (asin, store, title, brand, brand_lower, description,
                     language, product_type, search)
                 SELECT 'B' || lpad(n::text, 9, '0'), 'US', 'Mug ' || n || ' Café 350 ml',
                        'Acme', 'acme', '', 'en', 'MUG', to_tsvector('english', 'mug')
                 FROM generate_series(1, $1::bigint) AS n",
                &[&pages],
            )
            .expect("old pages");
        }
        test.db = Some(PgDb::open(&test.url).expect("open and migrate"));
        let db = test.db();
        db.read_once(&mut |tx| {
            let found = tx.pages_by_brand_and_title(&store("US"), "ACME", "mug10003cafe350ml")?;
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].asin.as_str(), "B000010003");
            assert_eq!(found[0].title, "Mug 10003 Café 350 ml");
            let last = format!("mug{pages}cafe350ml");
            assert_eq!(
                tx.pages_by_brand_and_title(&store("US"), "acme", &last)?
                    .len(),
                1
            );
            assert!(
                tx.pages_by_brand_and_title(&store("CA"), "acme", &last)?
                    .is_empty()
            );
            // Migration 6 moved the pages' words to the store's partition.
            assert_eq!(tx.search_pages(&store("US"), "mug", 5)?.len(), 5);
            assert!(tx.search_pages(&store("CA"), "mug", 5)?.is_empty());
            Ok(())
        })
        .expect("read");
        let mut conn = db.take().expect("connection");
        let missing: i64 = conn
            .client
            .query_one(
                "SELECT count(*) FROM catalog_page WHERE title_key IS NULL",
                &[],
            )
            .expect("count")
            .get(0);
        // Migration 7 built the US partition's index (made by migration 6) again, with
        // a short pending list.
        let indexes = search_index_options(&mut conn);
        // A page written as an older server writes it is refused: without a key
        // (before migration 4), or with its words in catalog_page (before migration 6).
        let without_key = conn.client.execute(
            "INSERT INTO catalog_page (asin, store, title, brand, brand_lower, description,
                 language, product_type)
             VALUES ('B0OLDSERVER', 'US', 'Mug', 'Acme', 'acme', '', 'en', 'MUG')",
            &[],
        );
        let with_words = conn.client.execute(
            "INSERT INTO catalog_page (asin, store, title, brand, brand_lower, description,
                 language, product_type, search, title_key)
             VALUES ('B0OLDSERVER', 'US', 'Mug', 'Acme', 'acme', '', 'en', 'MUG', '', 'mug')",
            &[],
        );
        db.give_back(conn);
        assert_eq!(missing, 0);
        assert_eq!(
            indexes,
            [(
                "catalog_search_us".to_owned(),
                Some(SHORT_PENDING_LIST.to_owned())
            )]
        );
        for (insert, code) in [(without_key, "23502"), (with_words, "42703")] {
            let e = insert.expect_err("an old server's page was written");
            assert!(
                e.as_db_error().map(|d| d.code().code()) == Some(code),
                "not {code}: {e}"
            );
        }
    }

    fn store(code: &str) -> StoreCode {
        StoreCode::parse(code).expect("store")
    }

    /// The storage options migration 7 gives every store's GIN index.
    const SHORT_PENDING_LIST: &str = "{gin_pending_list_limit=256}";

    /// Each `catalog_search` partition with its GIN index's storage options, by name.
    fn search_index_options(conn: &mut Conn) -> Vec<(String, Option<String>)> {
        conn.client
            .query(
                "SELECT p.relname::text, c.reloptions::text FROM pg_inherits h
                   JOIN pg_class p ON p.oid = h.inhrelid
                   JOIN pg_index i ON i.indrelid = p.oid
                   JOIN pg_class c ON c.oid = i.indexrelid
                   JOIN pg_am a ON a.oid = c.relam AND a.amname = 'gin'
                  WHERE h.inhparent = 'catalog_search'::regclass
                  ORDER BY 1",
                &[],
            )
            .expect("the partitions' indexes")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// Page `n` (ASIN B0 and `n` in 8 digits) of store `code`, in English, brand Acme.
    fn english_page(n: usize, code: &str, title: &str) -> DetailPage {
        DetailPage {
            asin: Asin::parse(&format!("B0{n:08}")).expect("asin"),
            store: store(code),
            title: title.into(),
            brand: "Acme".into(),
            description: String::new(),
            language: "en".into(),
            product_type: "DRINKWARE".into(),
            identifiers: Vec::new(),
        }
    }

    /// A fresh database for one test, dropped when the test ends, failed or not.
    struct TestPg {
        db: Option<PgDb>,
        admin: String,
        url: String,
    }

    impl TestPg {
        /// None (and the test is skipped) when no server is named.
        fn new() -> Option<TestPg> {
            // The guard first, so that a failed open (its migrations) drops it too.
            let mut test = TestPg::unopened()?;
            test.db = Some(PgDb::open(&test.url).expect("open"));
            Some(test)
        }

        /// An empty database, not yet opened (no migrations): the test opens it.
        fn unopened() -> Option<TestPg> {
            let Ok(admin) = std::env::var("ONESTOCK_TEST_POSTGRES_URL") else {
                println!("skipped: ONESTOCK_TEST_POSTGRES_URL is not set");
                return None;
            };
            let url = create_test_database(&admin).expect("database");
            Some(TestPg {
                db: None,
                admin,
                url,
            })
        }

        fn db(&self) -> &PgDb {
            self.db.as_ref().expect("open database")
        }
    }

    impl Drop for TestPg {
        fn drop(&mut self) {
            // Its connections first: a database in use cannot be dropped.
            drop(self.db.take());
            if let Err(e) = drop_database(&self.admin, &self.url) {
                eprintln!("could not drop {}: {e}", self.url);
            }
        }
    }
}
