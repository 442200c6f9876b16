//! `Tx` on one SQLite connection inside an open transaction.
//!
//! SKU states are cached for the whole transaction: `load_sku` reads the database once
//! per (seller, SKU), `save_sku` only replaces the cached state, and `flush` (at commit,
//! or before a query that reads listings in bulk) writes the difference between each
//! saved state and the state as stored. Event counters are cached the same way. Every
//! other write goes to the database at once, so reads of the same transaction see it.

use std::collections::{BTreeMap, HashMap};

use onestock_core::catalog::{normalize_title, stem_terms};
use onestock_core::model::{
    DetailPage, Event, EventBody, Identifier, LedgerEntry, LedgerReason, OrderRecord, Pool,
    ReportLine, Seller, SkuState, StoreListing, Upload, UploadStatus,
};
use onestock_core::storage::{StoreError, StoreResult, Tx};
use onestock_core::types::{Asin, PoolId, SellerId, Sku, StoreCode};
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::codec::{self, db_err, from_micros, micros};
use crate::page_cache::{PageCache, PageQuery};

/// Distinct search terms kept from one query: enough for any real query, and a bound on
/// the FTS expression built from user text.
const SEARCH_TERMS_MAX: usize = 32;
/// Query stemming: the query's language is unknown, so its words are stemmed for each
/// language pages are stemmed in, and unstemmed (`""`) for pages of other languages.
const SEARCH_LANGUAGES: [&str; 4] = ["en", "fr", "es", ""];

/// A SKU as this transaction sees it, and as stored when the two differ. A state read
/// and not changed (most of a chunk's reads are of SKUs it then creates or changes once)
/// is held once, not twice: a copy of every state read and every state written was a
/// measurable share of an upload's writer time.
struct CachedSku {
    current: SkuState,
    /// The state as stored, once `save_sku` has changed `current` since the last flush.
    stored: Option<SkuState>,
}

impl CachedSku {
    fn clean(state: SkuState) -> CachedSku {
        CachedSku {
            current: state,
            stored: None,
        }
    }
}

/// A seller's last event seq as known in this transaction.
struct EventCounter {
    seq: i64,
    dirty: bool,
}

/// The statements a transaction runs once per row or order, kept prepared for the
/// whole transaction. Taken from the connection's cache at every use, each one hashed
/// its SQL text and moved in and out of the cache twice: 7 to 10 % of the writer's time
/// in an upload. Keyed by the address of the SQL text, a literal of this file, so the
/// set is bounded by the code; back in the connection's cache when the transaction ends.
#[derive(Default)]
struct Held<'c> {
    statements: Vec<(usize, CachedStatement<'c>)>,
}

impl<'c> Held<'c> {
    fn get(
        &mut self,
        conn: &'c Connection,
        sql: &'static str,
    ) -> StoreResult<&mut CachedStatement<'c>> {
        let key = sql.as_ptr() as usize;
        let at = match self.statements.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let st = conn.prepare_cached(sql).map_err(db_err)?;
                self.statements.push((key, st));
                self.statements.len() - 1
            }
        };
        Ok(&mut self.statements[at].1)
    }
}

pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
    held: Held<'c>,
    writable: bool,
    skus: HashMap<(SellerId, Sku), CachedSku>,
    event_seqs: HashMap<SellerId, EventCounter>,
    /// Catalog look-ups made in this transaction: a chunk of upload rows asks for the
    /// same few pages again and again. `insert_page` forgets the answers it may change.
    pages: PageCache,
    /// (dirty, last pool id handed out) once `new_pool_id` has been called.
    pool_counter: Option<(bool, PoolId)>,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(conn: &'c Connection, writable: bool) -> SqliteTx<'c> {
        SqliteTx {
            conn,
            held: Held::default(),
            writable,
            skus: HashMap::new(),
            event_seqs: HashMap::new(),
            pages: PageCache::default(),
            pool_counter: None,
        }
    }

    /// Writes everything buffered: changed SKU states and event counters.
    pub(crate) fn flush(&mut self) -> StoreResult<()> {
        self.flush_skus()?;
        let conn = self.conn;
        if let Some((true, last)) = self.pool_counter {
            conn.prepare_cached("UPDATE counter SET value = ?1 WHERE name = 'pool'")
                .and_then(|mut st| st.execute([last]))
                .map_err(db_err)?;
            self.pool_counter = Some((false, last));
        }
        for (seller, counter) in self.event_seqs.iter_mut().filter(|(_, c)| c.dirty) {
            conn.prepare_cached("UPDATE seller SET event_seq = ?2 WHERE seller_id = ?1")
                .and_then(|mut st| st.execute(params![seller.as_str(), counter.seq]))
                .map_err(db_err)?;
            counter.dirty = false;
        }
        Ok(())
    }

    fn flush_skus(&mut self) -> StoreResult<()> {
        let conn = self.conn;
        // In key order: each write lands next to the previous one in the listing and
        // pool B-trees, whose pages are then still in SQLite's cache.
        let mut dirty: Vec<(&(SellerId, Sku), &mut CachedSku)> = self
            .skus
            .iter_mut()
            .filter(|(_, c)| c.stored.is_some())
            .collect();
        dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (_, cached) in dirty {
            if let Some(stored) = &cached.stored {
                write_sku_diff(conn, &mut self.held, stored, &cached.current)?;
            }
            cached.stored = None;
        }
        Ok(())
    }

    fn check_writable(&self) -> StoreResult<()> {
        if self.writable {
            Ok(())
        } else {
            Err(StoreError::Other(
                "write attempted in a read-only transaction".into(),
            ))
        }
    }

    fn cached_sku(&mut self, seller: &SellerId, sku: &Sku) -> StoreResult<&mut CachedSku> {
        let key = (seller.clone(), sku.clone());
        if !self.skus.contains_key(&key) {
            let stored = read_sku(self.conn, &mut self.held, seller, sku)?;
            self.skus.insert(key.clone(), CachedSku::clean(stored));
        }
        self.skus
            .get_mut(&key)
            .ok_or_else(|| StoreError::Other("SKU cache lost an entry".into()))
    }

    fn event_counter(&mut self, seller: &SellerId) -> StoreResult<&mut EventCounter> {
        if !self.event_seqs.contains_key(seller) {
            let seq: i64 = self
                .conn
                .prepare_cached(
                    "SELECT max(
                        coalesce((SELECT event_seq FROM seller WHERE seller_id = ?1), 0),
                        coalesce((SELECT max(seq) FROM event WHERE seller_id = ?1), 0))",
                )
                .and_then(|mut st| st.query_row([seller.as_str()], |row| row.get(0)))
                .map_err(db_err)?;
            self.event_seqs
                .insert(seller.clone(), EventCounter { seq, dirty: false });
        }
        self.event_seqs
            .get_mut(seller)
            .ok_or_else(|| StoreError::Other("event counter cache lost an entry".into()))
    }

    /// Pages selected by `sql`, whose columns are those of `PAGE_COLUMNS`, each with its
    /// identifiers.
    fn query_pages<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> StoreResult<Vec<DetailPage>> {
        let mut pages = Vec::new();
        {
            let mut st = self.conn.prepare_cached(sql).map_err(db_err)?;
            let mut rows = st.query(params).map_err(db_err)?;
            while let Some(row) = rows.next().map_err(db_err)? {
                let asin_raw: String = row.get(0).map_err(db_err)?;
                let store_raw: String = row.get(1).map_err(db_err)?;
                pages.push(DetailPage {
                    asin: codec::asin(&asin_raw)?,
                    store: codec::store(&store_raw)?,
                    title: row.get(2).map_err(db_err)?,
                    brand: row.get(3).map_err(db_err)?,
                    description: row.get(4).map_err(db_err)?,
                    language: row.get(5).map_err(db_err)?,
                    product_type: row.get(6).map_err(db_err)?,
                    identifiers: Vec::new(),
                });
            }
        }
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT kind, value FROM catalog_identifier WHERE asin = ?1 AND store = ?2
                 ORDER BY n",
            )
            .map_err(db_err)?;
        for page in &mut pages {
            let mut rows = st
                .query(params![page.asin.as_str(), page.store.as_str()])
                .map_err(db_err)?;
            while let Some(row) = rows.next().map_err(db_err)? {
                page.identifiers.push(Identifier {
                    kind: row.get(0).map_err(db_err)?,
                    value: row.get(1).map_err(db_err)?,
                });
            }
        }
        Ok(pages)
    }
}

/// The columns `query_pages` expects, in order.
macro_rules! page_columns {
    () => {
        "p.asin, p.store, p.title, p.brand, p.description, p.language, p.product_type"
    };
}

fn read_listing(row: &rusqlite::Row<'_>, first: usize) -> StoreResult<StoreListing> {
    let store_raw: String = row.get(first).map_err(db_err)?;
    let asin_raw: String = row.get(first + 1).map_err(db_err)?;
    let price_raw: String = row.get(first + 3).map_err(db_err)?;
    let fulfillment_raw: String = row.get(first + 4).map_err(db_err)?;
    let start: Option<i64> = row.get(first + 5).map_err(db_err)?;
    Ok(StoreListing {
        store: codec::store(&store_raw)?,
        asin: codec::asin(&asin_raw)?,
        pool_id: row.get(first + 2).map_err(db_err)?,
        price: codec::price(&price_raw)?,
        fulfillment: codec::fulfillment(&fulfillment_raw)?,
        start_selling_at: start.map(from_micros).transpose()?,
        closed: row.get(first + 6).map_err(db_err)?,
    })
}

fn read_pool(row: &rusqlite::Row<'_>, first: usize) -> StoreResult<Pool> {
    let condition_raw: String = row.get(first + 3).map_err(db_err)?;
    Ok(Pool {
        pool_id: row.get(first).map_err(db_err)?,
        shared: row.get(first + 1).map_err(db_err)?,
        quantity: row.get(first + 2).map_err(db_err)?,
        condition: codec::condition(&condition_raw)?,
        version: row.get(first + 4).map_err(db_err)?,
    })
}

/// The SKU as stored: its listings, then, when it has any, its pools (two indexed
/// queries). Every pool has a listing (the rules remove a pool with its last listing),
/// so a SKU without listings has no pools, and a new SKU (most rows of a catalog file)
/// costs one query, not two.
fn read_sku<'c>(
    conn: &'c Connection,
    held: &mut Held<'c>,
    seller: &SellerId,
    sku: &Sku,
) -> StoreResult<SkuState> {
    let mut state = SkuState::empty(seller.clone(), sku.clone());
    {
        let st = held.get(
            conn,
            "SELECT store, asin, pool_id, price, fulfillment, start_selling_at, closed
             FROM store_listing WHERE seller_id = ?1 AND sku = ?2",
        )?;
        let mut rows = st
            .query(params![seller.as_str(), sku.as_str()])
            .map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            state.listings.push(read_listing(row, 0)?);
        }
    }
    if state.listings.is_empty() {
        return Ok(state);
    }
    let st = held.get(
        conn,
        "SELECT pool_id, shared, quantity, condition, version
         FROM pool WHERE seller_id = ?1 AND sku = ?2",
    )?;
    let mut rows = st
        .query(params![seller.as_str(), sku.as_str()])
        .map_err(db_err)?;
    while let Some(row) = rows.next().map_err(db_err)? {
        state.pools.push(read_pool(row, 0)?);
    }
    Ok(state)
}

/// SKUs read by one statement of [`read_skus`]: bounds the statement's work and its
/// array parameter, whatever the size of the chunk that asks.
const PREFETCH_SKUS_PER_QUERY: usize = 1_000;

/// `read_sku` for many SKUs of one seller in two statements: the states as stored, in
/// SKU order, an empty state for each SKU without rows.
fn read_skus<'k>(
    conn: &Connection,
    seller: &SellerId,
    skus: impl Iterator<Item = &'k Sku>,
) -> StoreResult<Vec<SkuState>> {
    let mut states: BTreeMap<String, SkuState> = skus
        .map(|sku| {
            (
                sku.as_str().to_owned(),
                SkuState::empty(seller.clone(), sku.clone()),
            )
        })
        .collect();
    let keys: rusqlite::vtab::array::Array = std::rc::Rc::new(
        states
            .keys()
            .map(|k| rusqlite::types::Value::Text(k.clone()))
            .collect(),
    );
    fill_states(
        conn,
        &mut states,
        "SELECT sku, store, asin, pool_id, price, fulfillment, start_selling_at, closed
         FROM store_listing WHERE seller_id = ?1 AND sku IN rarray(?2)",
        "SELECT sku, pool_id, shared, quantity, condition, version
         FROM pool WHERE seller_id = ?1 AND sku IN rarray(?2)",
        params![seller.as_str(), keys],
    )?;
    Ok(states.into_values().collect())
}

/// Adds to `states` (keyed by SKU) the listing rows, then the pool rows, that the two
/// statements select with `params`; each selects the SKU first. As in `read_sku`, a SKU
/// without listings keeps no pools.
fn fill_states(
    conn: &Connection,
    states: &mut BTreeMap<String, SkuState>,
    listings_sql: &str,
    pools_sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<()> {
    {
        let mut st = conn.prepare_cached(listings_sql).map_err(db_err)?;
        let mut rows = st.query(params).map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            let sku: String = row.get(0).map_err(db_err)?;
            if let Some(state) = states.get_mut(&sku) {
                state.listings.push(read_listing(row, 1)?);
            }
        }
    }
    if states.values().all(|s| s.listings.is_empty()) {
        return Ok(());
    }
    let mut st = conn.prepare_cached(pools_sql).map_err(db_err)?;
    let mut rows = st.query(params).map_err(db_err)?;
    while let Some(row) = rows.next().map_err(db_err)? {
        let sku: String = row.get(0).map_err(db_err)?;
        if let Some(state) = states.get_mut(&sku)
            && !state.listings.is_empty()
        {
            state.pools.push(read_pool(row, 1)?);
        }
    }
    Ok(())
}

/// Makes the stored rows of `old` those of `new`, touching only rows that differ.
fn write_sku_diff<'c>(
    conn: &'c Connection,
    held: &mut Held<'c>,
    old: &SkuState,
    new: &SkuState,
) -> StoreResult<()> {
    let seller = new.seller_id.as_str();
    let sku = new.sku.as_str();
    for p in &new.pools {
        // Both statements number the pool's columns alike.
        let sql = match old.pool(p.pool_id) {
            Some(o) if o == p => continue,
            Some(_) => {
                "UPDATE pool SET shared = ?4, quantity = ?5, condition = ?6, version = ?7
                 WHERE seller_id = ?1 AND pool_id = ?2 AND sku = ?3"
            }
            None => {
                "INSERT INTO pool (seller_id, pool_id, sku, shared, quantity, condition,
                 version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            }
        };
        held.get(conn, sql)?
            .execute(params![
                seller,
                p.pool_id,
                sku,
                p.shared,
                p.quantity,
                p.condition.as_str(),
                p.version
            ])
            .map_err(db_err)?;
    }
    for l in &new.listings {
        // Both statements number the listing's columns alike.
        let sql = match old.listing(&l.store) {
            Some(o) if o == l => continue,
            Some(_) => {
                "UPDATE store_listing SET asin = ?4, pool_id = ?5, price = ?6,
                 fulfillment = ?7, start_selling_at = ?8, closed = ?9
                 WHERE seller_id = ?1 AND sku = ?2 AND store = ?3"
            }
            None => {
                "INSERT INTO store_listing (seller_id, sku, store, asin, pool_id, price,
                 fulfillment, start_selling_at, closed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            }
        };
        let start = l.start_selling_at.map(micros).transpose()?;
        held.get(conn, sql)?
            .execute(params![
                seller,
                sku,
                l.store.as_str(),
                l.asin.as_str(),
                l.pool_id,
                l.price.to_string(),
                l.fulfillment.as_str(),
                start,
                l.closed
            ])
            .map_err(db_err)?;
    }
    for l in old
        .listings
        .iter()
        .filter(|l| new.listing(&l.store).is_none())
    {
        conn.prepare_cached(
            "DELETE FROM store_listing WHERE seller_id = ?1 AND sku = ?2 AND store = ?3",
        )
        .and_then(|mut st| st.execute(params![seller, sku, l.store.as_str()]))
        .map_err(db_err)?;
    }
    for p in old.pools.iter().filter(|p| new.pool(p.pool_id).is_none()) {
        conn.prepare_cached("DELETE FROM pool WHERE seller_id = ?1 AND sku = ?2 AND pool_id = ?3")
            .and_then(|mut st| st.execute(params![seller, sku, p.pool_id]))
            .map_err(db_err)?;
    }
    Ok(())
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn read_seller(row: &rusqlite::Row<'_>) -> StoreResult<Seller> {
    Ok(Seller {
        seller_id: SellerId(row.get(0).map_err(db_err)?),
        name: row.get(1).map_err(db_err)?,
        token_sha256: row.get(2).map_err(db_err)?,
        created_at: from_micros(row.get(3).map_err(db_err)?)?,
    })
}

const UPLOAD_COLUMNS: &str = "upload_id, seller_id, store, status, path, records_processed,
    records_successful, records_failed, checkpoint, error, created_at";

fn read_upload(row: &rusqlite::Row<'_>) -> StoreResult<Upload> {
    let store_raw: String = row.get(2).map_err(db_err)?;
    let status_raw: String = row.get(3).map_err(db_err)?;
    Ok(Upload {
        upload_id: row.get(0).map_err(db_err)?,
        seller_id: SellerId(row.get(1).map_err(db_err)?),
        store: codec::store(&store_raw)?,
        status: UploadStatus::parse(&status_raw)
            .ok_or_else(|| StoreError::Other(format!("unreadable upload status {status_raw:?}")))?,
        path: row.get(4).map_err(db_err)?,
        records_processed: row.get(5).map_err(db_err)?,
        records_successful: row.get(6).map_err(db_err)?,
        records_failed: row.get(7).map_err(db_err)?,
        checkpoint: row.get(8).map_err(db_err)?,
        error: row.get(9).map_err(db_err)?,
        created_at: from_micros(row.get(10).map_err(db_err)?)?,
    })
}

fn reason(raw: &str) -> StoreResult<LedgerReason> {
    LedgerReason::parse(raw)
        .ok_or_else(|| StoreError::Other(format!("unreadable ledger reason {raw:?}")))
}

fn read_event(seller: &SellerId, row: &rusqlite::Row<'_>) -> StoreResult<Event> {
    let kind: String = row.get(2).map_err(db_err)?;
    let sku_raw: String = row.get(3).map_err(db_err)?;
    let stores_raw: String = row.get(5).map_err(db_err)?;
    let sku = codec::sku(&sku_raw)?;
    let stores = codec::stores(&stores_raw)?;
    let missing = |column: &str| StoreError::Other(format!("event {kind} without {column}"));
    let body = match kind.as_str() {
        "quantity_changed" => {
            let reason_raw: Option<String> = row.get(8).map_err(db_err)?;
            EventBody::QuantityChanged {
                sku,
                pool_id: row
                    .get::<_, Option<i64>>(4)
                    .map_err(db_err)?
                    .ok_or_else(|| missing("pool_id"))?,
                stores,
                quantity: row
                    .get::<_, Option<i64>>(6)
                    .map_err(db_err)?
                    .ok_or_else(|| missing("quantity"))?,
                delta: row
                    .get::<_, Option<i64>>(7)
                    .map_err(db_err)?
                    .ok_or_else(|| missing("delta"))?,
                reason: reason(&reason_raw.ok_or_else(|| missing("reason"))?)?,
            }
        }
        "listing_changed" => EventBody::ListingChanged {
            sku,
            stores,
            status: row
                .get::<_, Option<String>>(9)
                .map_err(db_err)?
                .ok_or_else(|| missing("status"))?,
        },
        "listing_deleted" => EventBody::ListingDeleted { sku, stores },
        _ => return Err(StoreError::Other(format!("unknown event kind {kind:?}"))),
    };
    Ok(Event {
        seller_id: seller.clone(),
        seq: row.get(0).map_err(db_err)?,
        at: from_micros(row.get(1).map_err(db_err)?)?,
        body,
    })
}

impl Tx for SqliteTx<'_> {
    fn insert_seller(&mut self, seller: &Seller) -> StoreResult<()> {
        self.check_writable()?;
        let created_at = micros(seller.created_at)?;
        self.conn
            .prepare_cached(
                "INSERT INTO seller (seller_id, name, token_sha256, created_at, event_seq)
                 VALUES (?1, ?2, ?3, ?4, 0)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    seller.seller_id.as_str(),
                    seller.name,
                    seller.token_sha256,
                    created_at
                ])
            })
            .map_err(db_err)?;
        Ok(())
    }

    fn seller_by_token(&mut self, token_sha256: &str) -> StoreResult<Option<Seller>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT seller_id, name, token_sha256, created_at FROM seller
                 WHERE token_sha256 = ?1",
            )
            .map_err(db_err)?;
        let mut rows = st.query([token_sha256]).map_err(db_err)?;
        match rows.next().map_err(db_err)? {
            Some(row) => Ok(Some(read_seller(row)?)),
            None => Ok(None),
        }
    }

    fn sellers(&mut self, after: Option<&SellerId>, limit: usize) -> StoreResult<Vec<Seller>> {
        // SQLite compares text with memcmp (BINARY), which is byte order.
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT seller_id, name, token_sha256, created_at FROM seller
                 WHERE ?1 IS NULL OR seller_id > ?1
                 ORDER BY seller_id LIMIT ?2",
            )
            .map_err(db_err)?;
        let mut rows = st
            .query(params![after.map(|s| s.as_str()), limit as i64])
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            out.push(read_seller(row)?);
        }
        Ok(out)
    }

    fn setting(&mut self, key: &str) -> StoreResult<Option<String>> {
        self.conn
            .prepare_cached("SELECT value FROM setting WHERE key = ?1")
            .and_then(|mut st| st.query_row([key], |row| row.get(0)).optional())
            .map_err(db_err)
    }

    fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.check_writable()?;
        self.conn
            .prepare_cached(
                "INSERT INTO setting (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut st| st.execute([key, value]))
            .map_err(db_err)?;
        Ok(())
    }

    /// Inserts the page, or replaces the page of the same (ASIN, store) with its
    /// identifiers and search terms.
    fn insert_page(&mut self, page: &DetailPage) -> StoreResult<()> {
        self.check_writable()?;
        self.pages.forget(page);
        let conn = self.conn;
        let asin = page.asin.as_str();
        let store = page.store.as_str();
        let existing: Option<i64> = conn
            .prepare_cached("SELECT page_id FROM catalog_page WHERE asin = ?1 AND store = ?2")
            .and_then(|mut st| st.query_row([asin, store], |row| row.get(0)).optional())
            .map_err(db_err)?;
        let brand_lower = page.brand.to_lowercase();
        let title_key = normalize_title(&page.title);
        let page_id = match existing {
            Some(page_id) => {
                conn.prepare_cached(
                    "UPDATE catalog_page SET title = ?2, brand = ?3, brand_lower = ?4,
                     description = ?5, language = ?6, product_type = ?7, title_key = ?8
                     WHERE page_id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        page_id,
                        page.title,
                        page.brand,
                        brand_lower,
                        page.description,
                        page.language,
                        page.product_type,
                        title_key
                    ])
                })
                .map_err(db_err)?;
                conn.prepare_cached("DELETE FROM catalog_search WHERE rowid = ?1")
                    .and_then(|mut st| st.execute([page_id]))
                    .map_err(db_err)?;
                conn.prepare_cached(
                    "DELETE FROM catalog_identifier WHERE asin = ?1 AND store = ?2",
                )
                .and_then(|mut st| st.execute([asin, store]))
                .map_err(db_err)?;
                page_id
            }
            None => conn
                .prepare_cached(
                    "INSERT INTO catalog_page (asin, store, title, brand, brand_lower,
                     description, language, product_type, title_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING page_id",
                )
                .and_then(|mut st| {
                    st.query_row(
                        params![
                            asin,
                            store,
                            page.title,
                            page.brand,
                            brand_lower,
                            page.description,
                            page.language,
                            page.product_type,
                            title_key
                        ],
                        |row| row.get(0),
                    )
                })
                .map_err(db_err)?,
        };
        for (n, id) in page.identifiers.iter().enumerate() {
            conn.prepare_cached(
                "INSERT INTO catalog_identifier (value, asin, store, kind, n)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![id.value, asin, store, id.kind, n]))
            .map_err(db_err)?;
        }
        let text = format!("{} {}", page.title, page.brand);
        let terms = stem_terms(&text, &page.language).join(" ");
        conn.prepare_cached("INSERT INTO catalog_search (rowid, terms) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![page_id, terms]))
            .map_err(db_err)?;
        Ok(())
    }

    fn page(&mut self, asin: &Asin, store: &StoreCode) -> StoreResult<Option<DetailPage>> {
        let key = PageQuery::Page(asin.clone(), store.clone());
        if let Some(hit) = self.pages.get(&key) {
            return Ok(hit.into_iter().next());
        }
        let pages = self.query_pages(
            concat!(
                "SELECT ",
                page_columns!(),
                " FROM catalog_page p WHERE p.asin = ?1 AND p.store = ?2"
            ),
            [asin.as_str(), store.as_str()],
        )?;
        Ok(self.pages.put(key, pages).into_iter().next())
    }

    fn pages_of_asin(&mut self, asin: &Asin) -> StoreResult<Vec<DetailPage>> {
        let key = PageQuery::OfAsin(asin.clone());
        if let Some(hit) = self.pages.get(&key) {
            return Ok(hit);
        }
        let pages = self.query_pages(
            concat!(
                "SELECT ",
                page_columns!(),
                " FROM catalog_page p WHERE p.asin = ?1 ORDER BY p.store"
            ),
            [asin.as_str()],
        )?;
        Ok(self.pages.put(key, pages))
    }

    fn pages_by_identifier(&mut self, value: &str) -> StoreResult<Vec<DetailPage>> {
        let key = PageQuery::ByIdentifier(value.to_owned());
        if let Some(hit) = self.pages.get(&key) {
            return Ok(hit);
        }
        let pages = self.query_pages(
            concat!(
                "SELECT DISTINCT ",
                page_columns!(),
                " FROM catalog_identifier i
                  JOIN catalog_page p ON p.asin = i.asin AND p.store = i.store
                  WHERE i.value = ?1 ORDER BY p.asin, p.store"
            ),
            [value],
        )?;
        Ok(self.pages.put(key, pages))
    }

    fn pages_by_brand_and_title(
        &mut self,
        store: &StoreCode,
        brand: &str,
        title_key: &str,
    ) -> StoreResult<Vec<DetailPage>> {
        self.query_pages(
            concat!(
                "SELECT ",
                page_columns!(),
                " FROM catalog_page p
                  WHERE p.store = ?1 AND p.brand_lower = ?2 AND p.title_key = ?3
                  ORDER BY p.asin"
            ),
            params![store.as_str(), brand.to_lowercase(), title_key],
        )
    }

    fn search_pages(
        &mut self,
        store: &StoreCode,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<DetailPage>> {
        let mut terms: Vec<String> = Vec::new();
        for language in SEARCH_LANGUAGES {
            for term in stem_terms(query, language) {
                if !term.is_empty() && !terms.contains(&term) {
                    terms.push(term);
                }
            }
        }
        terms.truncate(SEARCH_TERMS_MAX);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // A query with a term on very many pages is ranked with bounded work.
        let counts = super::search::bounded_counts(self.conn, &terms)?;
        if counts.iter().any(|&n| n > super::search::COMMON_TERM_PAGES) {
            let ids = match super::search::bounded(self.conn, store, &terms, &counts, limit) {
                Ok(ids) => ids,
                // As below: FTS5 refusing a term is a query that matches nothing.
                Err(StoreError::Other(why)) if why.contains("fts5") => {
                    tracing::warn!(%why, query, "search expression refused");
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            let mut pages = Vec::with_capacity(ids.len());
            for id in ids {
                pages.extend(self.query_pages(
                    concat!(
                        "SELECT ",
                        page_columns!(),
                        " FROM catalog_page p WHERE p.page_id = ?1"
                    ),
                    [id],
                )?);
            }
            return Ok(pages);
        }
        let expression = terms
            .iter()
            .map(|t| super::search::quoted(t))
            .collect::<Vec<_>>()
            .join(" OR ");
        let found = self.query_pages(
            concat!(
                "SELECT ",
                page_columns!(),
                " FROM (SELECT rowid AS page_id, rank FROM catalog_search
                        WHERE catalog_search MATCH ?1) s
                  JOIN catalog_page p ON p.page_id = s.page_id
                  WHERE p.store = ?2
                  ORDER BY s.rank, p.asin LIMIT ?3"
            ),
            params![expression, store.as_str(), limit_param(limit)],
        );
        match found {
            Ok(pages) => Ok(pages),
            // FTS5 refusing the expression is a query that matches nothing, not a
            // storage failure.
            Err(StoreError::Other(why)) if why.contains("fts5") => {
                tracing::warn!(%why, query, "search expression refused");
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn load_sku(&mut self, seller: &SellerId, sku: &Sku) -> StoreResult<SkuState> {
        Ok(self.cached_sku(seller, sku)?.current.clone())
    }

    /// An upload chunk's SKUs, most of them new: a statement per thousand SKUs instead
    /// of one per SKU (a 1,000,000-row upload made 700,000 look-ups that found nothing).
    fn prefetch_skus(&mut self, keys: &[(SellerId, Sku)]) -> StoreResult<()> {
        let mut wanted: Vec<&(SellerId, Sku)> = keys
            .iter()
            .filter(|k| !self.skus.contains_key(*k))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for seller_keys in wanted.chunk_by(|a, b| a.0 == b.0) {
            for part in seller_keys.chunks(PREFETCH_SKUS_PER_QUERY) {
                let seller = &part[0].0;
                for stored in read_skus(self.conn, seller, part.iter().map(|k| &k.1))? {
                    self.skus.insert(
                        (stored.seller_id.clone(), stored.sku.clone()),
                        CachedSku::clean(stored),
                    );
                }
            }
        }
        Ok(())
    }

    fn save_sku(&mut self, state: &SkuState) -> StoreResult<()> {
        self.check_writable()?;
        let cached = self.cached_sku(&state.seller_id, &state.sku)?;
        let before = std::mem::replace(&mut cached.current, state.clone());
        // The first change since the last flush keeps the stored state to diff against.
        if cached.stored.is_none() {
            cached.stored = Some(before);
        }
        Ok(())
    }

    fn new_pool_id(&mut self) -> StoreResult<PoolId> {
        self.check_writable()?;
        // One writer at a time: the counter is read once per transaction, counted in
        // memory and written back by `flush`.
        let next = match self.pool_counter {
            Some((_, last)) => last + 1,
            None => {
                let last: i64 = self
                    .conn
                    .prepare_cached("SELECT value FROM counter WHERE name = 'pool'")
                    .and_then(|mut st| st.query_row([], |row| row.get(0)))
                    .map_err(db_err)?;
                last + 1
            }
        };
        self.pool_counter = Some((true, next));
        Ok(next)
    }

    fn skus_from(
        &mut self,
        seller: &SellerId,
        from: Option<&Sku>,
        limit: usize,
    ) -> StoreResult<Vec<SkuState>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Saved states must be in the tables before the tables are read in bulk.
        self.flush_skus()?;
        let conn = self.conn;
        let from = from.map(Sku::as_str).unwrap_or("");
        let skus: Vec<String> = {
            let mut st = conn
                .prepare_cached(
                    "SELECT DISTINCT sku FROM store_listing WHERE seller_id = ?1 AND sku >= ?2
                     ORDER BY sku LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map(params![seller.as_str(), from, limit_param(limit)], |row| {
                    row.get(0)
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)?
        };
        let (Some(first), Some(last)) = (skus.first(), skus.last()) else {
            return Ok(Vec::new());
        };
        // String order is byte order, as SQLite's BINARY collation.
        let mut states: BTreeMap<String, SkuState> = BTreeMap::new();
        for raw in &skus {
            states.insert(
                raw.clone(),
                SkuState::empty(seller.clone(), codec::sku(raw)?),
            );
        }
        fill_states(
            conn,
            &mut states,
            "SELECT sku, store, asin, pool_id, price, fulfillment, start_selling_at, closed
             FROM store_listing WHERE seller_id = ?1 AND sku >= ?2 AND sku <= ?3",
            "SELECT sku, pool_id, shared, quantity, condition, version
             FROM pool WHERE seller_id = ?1 AND sku >= ?2 AND sku <= ?3",
            params![seller.as_str(), first, last],
        )?;
        Ok(states.into_values().collect())
    }

    fn skus_on_asin(&mut self, store: &StoreCode, asin: &Asin) -> StoreResult<Vec<SkuState>> {
        self.flush_skus()?;
        let keys: Vec<(String, String)> = {
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT DISTINCT seller_id, sku FROM store_listing
                     WHERE store = ?1 AND asin = ?2 ORDER BY seller_id, sku",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map([store.as_str(), asin.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)?
        };
        keys.into_iter()
            .map(|(seller, sku)| self.load_sku(&SellerId(seller), &codec::sku(&sku)?))
            .collect()
    }

    fn append_ledger(&mut self, entry: &LedgerEntry) -> StoreResult<()> {
        self.check_writable()?;
        let at = micros(entry.at)?;
        self.held
            .get(
                self.conn,
                "INSERT INTO ledger_entry (seller_id, sku, pool_id, at, delta, quantity_after,
                 reason, store, reference) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                entry.seller_id.as_str(),
                entry.sku.as_str(),
                entry.pool_id,
                at,
                entry.delta,
                entry.quantity_after,
                entry.reason.as_str(),
                entry.store.as_str(),
                entry.reference
            ])
            .map_err(db_err)?;
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
        let sql = if newest {
            "SELECT seq, at, pool_id, delta, quantity_after, reason, store, reference
             FROM ledger_entry WHERE seller_id = ?1 AND sku = ?2 AND seq > ?3
             ORDER BY seq DESC LIMIT ?4"
        } else {
            "SELECT seq, at, pool_id, delta, quantity_after, reason, store, reference
             FROM ledger_entry WHERE seller_id = ?1 AND sku = ?2 AND seq > ?3
             ORDER BY seq LIMIT ?4"
        };
        let mut st = self.conn.prepare_cached(sql).map_err(db_err)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = st
            .query(rusqlite::params![
                seller.as_str(),
                sku.as_str(),
                after,
                limit
            ])
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            let reason_raw: String = row.get(5).map_err(db_err)?;
            let store_raw: String = row.get(6).map_err(db_err)?;
            out.push(LedgerEntry {
                seq: row.get(0).map_err(db_err)?,
                at: from_micros(row.get(1).map_err(db_err)?)?,
                seller_id: seller.clone(),
                sku: sku.clone(),
                pool_id: row.get(2).map_err(db_err)?,
                delta: row.get(3).map_err(db_err)?,
                quantity_after: row.get(4).map_err(db_err)?,
                reason: reason(&reason_raw)?,
                store: codec::store(&store_raw)?,
                reference: row.get(7).map_err(db_err)?,
            });
        }
        Ok(out)
    }

    fn append_event(
        &mut self,
        seller: &SellerId,
        at: OffsetDateTime,
        body: &EventBody,
    ) -> StoreResult<i64> {
        self.check_writable()?;
        let seq = self.event_counter(seller)?.seq + 1;
        let at = micros(at)?;
        let (sku, pool_id, stores, quantity, delta, reason, status) = match body {
            EventBody::QuantityChanged {
                sku,
                pool_id,
                stores,
                quantity,
                delta,
                reason,
            } => (
                sku,
                Some(*pool_id),
                stores,
                Some(*quantity),
                Some(*delta),
                Some(reason.as_str()),
                None,
            ),
            EventBody::ListingChanged {
                sku,
                stores,
                status,
            } => (sku, None, stores, None, None, None, Some(status.as_str())),
            EventBody::ListingDeleted { sku, stores } => {
                (sku, None, stores, None, None, None, None)
            }
        };
        self.held
            .get(
                self.conn,
                "INSERT INTO event (seller_id, seq, at, kind, sku, pool_id, stores, quantity,
                 delta, reason, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                seller.as_str(),
                seq,
                at,
                body.kind(),
                sku.as_str(),
                pool_id,
                codec::stores_text(stores),
                quantity,
                delta,
                reason,
                status
            ])
            .map_err(db_err)?;
        let counter = self.event_counter(seller)?;
        counter.seq = seq;
        counter.dirty = true;
        Ok(seq)
    }

    fn events_after(
        &mut self,
        seller: &SellerId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<Event>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT seq, at, kind, sku, pool_id, stores, quantity, delta, reason, status
                 FROM event WHERE seller_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(db_err)?;
        let mut rows = st
            .query(params![seller.as_str(), after, limit_param(limit)])
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            out.push(read_event(seller, row)?);
        }
        Ok(out)
    }

    fn last_event_seq(&mut self, seller: &SellerId) -> StoreResult<i64> {
        Ok(self.event_counter(seller)?.seq)
    }

    fn order(&mut self, store: &StoreCode, order_id: &str) -> StoreResult<Option<OrderRecord>> {
        let st = self.held.get(
            self.conn,
            "SELECT lines, results, cancelled, at FROM customer_order
             WHERE store = ?1 AND order_id = ?2",
        )?;
        let mut rows = st.query([store.as_str(), order_id]).map_err(db_err)?;
        let Some(row) = rows.next().map_err(db_err)? else {
            return Ok(None);
        };
        let lines: String = row.get(0).map_err(db_err)?;
        let results: String = row.get(1).map_err(db_err)?;
        Ok(Some(OrderRecord {
            store: store.clone(),
            order_id: order_id.to_owned(),
            lines: codec::order_lines(&lines)?,
            results: codec::order_results(&results)?,
            cancelled: row.get(2).map_err(db_err)?,
            at: from_micros(row.get(3).map_err(db_err)?)?,
        }))
    }

    fn save_order(&mut self, order: &OrderRecord) -> StoreResult<()> {
        self.check_writable()?;
        let at = micros(order.at)?;
        self.held
            .get(
                self.conn,
                "INSERT INTO customer_order (store, order_id, lines, results, cancelled, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (store, order_id) DO UPDATE SET cancelled = excluded.cancelled",
            )?
            .execute(params![
                order.store.as_str(),
                order.order_id,
                codec::order_lines_text(&order.lines),
                codec::order_results_text(&order.results),
                order.cancelled,
                at
            ])
            .map_err(db_err)?;
        Ok(())
    }

    fn insert_upload(&mut self, upload: &Upload) -> StoreResult<()> {
        self.check_writable()?;
        let created_at = micros(upload.created_at)?;
        self.conn
            .prepare_cached(
                "INSERT INTO upload (upload_id, seller_id, store, status, path,
                 records_processed, records_successful, records_failed, checkpoint, error,
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    upload.upload_id,
                    upload.seller_id.as_str(),
                    upload.store.as_str(),
                    upload.status.as_str(),
                    upload.path,
                    upload.records_processed,
                    upload.records_successful,
                    upload.records_failed,
                    upload.checkpoint,
                    upload.error,
                    created_at
                ])
            })
            .map_err(db_err)?;
        Ok(())
    }

    fn update_upload(&mut self, upload: &Upload) -> StoreResult<()> {
        self.check_writable()?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE upload SET status = ?2, records_processed = ?3,
                 records_successful = ?4, records_failed = ?5, checkpoint = ?6, error = ?7
                 WHERE upload_id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    upload.upload_id,
                    upload.status.as_str(),
                    upload.records_processed,
                    upload.records_successful,
                    upload.records_failed,
                    upload.checkpoint,
                    upload.error
                ])
            })
            .map_err(db_err)?;
        if changed == 0 {
            return Err(StoreError::Other(format!(
                "no upload {:?} to update",
                upload.upload_id
            )));
        }
        Ok(())
    }

    fn upload(&mut self, upload_id: &str) -> StoreResult<Option<Upload>> {
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM upload WHERE upload_id = ?1");
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let mut rows = st.query([upload_id]).map_err(db_err)?;
        match rows.next().map_err(db_err)? {
            Some(row) => Ok(Some(read_upload(row)?)),
            None => Ok(None),
        }
    }

    fn uploads_of_seller(
        &mut self,
        seller: &SellerId,
        store: Option<&StoreCode>,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Upload>> {
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM upload
             WHERE seller_id = ?1 AND (?2 IS NULL OR store = ?2) AND (?3 IS NULL OR upload_id < ?3)
             ORDER BY upload_id DESC LIMIT ?4"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let mut rows = st
            .query(rusqlite::params![
                seller.0,
                store.map(|s| s.as_str()),
                before,
                limit as i64
            ])
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            out.push(read_upload(row)?);
        }
        Ok(out)
    }

    fn unfinished_uploads(&mut self) -> StoreResult<Vec<Upload>> {
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM upload WHERE status IN ('IN_QUEUE', 'IN_PROGRESS')
             ORDER BY created_at, upload_id"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let mut rows = st.query([]).map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            out.push(read_upload(row)?);
        }
        Ok(out)
    }

    fn append_report(&mut self, upload_id: &str, lines: &[ReportLine]) -> StoreResult<()> {
        self.check_writable()?;
        if lines.is_empty() {
            return Ok(());
        }
        let conn = self.conn;
        let last: i64 = conn
            .prepare_cached("SELECT coalesce(max(n), 0) FROM upload_report WHERE upload_id = ?1")
            .and_then(|mut st| st.query_row([upload_id], |row| row.get(0)))
            .map_err(db_err)?;
        let mut st = conn
            .prepare_cached(
                "INSERT INTO upload_report (upload_id, n, record, sku, code, kind, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db_err)?;
        for (i, line) in (1..).zip(lines) {
            st.execute(params![
                upload_id,
                last + i,
                line.record,
                line.sku,
                line.code,
                codec::report_kind_str(line.kind),
                line.message
            ])
            .map_err(db_err)?;
        }
        Ok(())
    }

    fn report(&mut self, upload_id: &str) -> StoreResult<Vec<ReportLine>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT record, sku, code, kind, message FROM upload_report
                 WHERE upload_id = ?1 ORDER BY record, n",
            )
            .map_err(db_err)?;
        let mut rows = st.query([upload_id]).map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            let kind_raw: String = row.get(3).map_err(db_err)?;
            out.push(ReportLine {
                record: row.get(0).map_err(db_err)?,
                sku: row.get(1).map_err(db_err)?,
                code: row.get(2).map_err(db_err)?,
                kind: codec::report_kind(&kind_raw)?,
                message: row.get(4).map_err(db_err)?,
            });
        }
        Ok(out)
    }

    fn report_page(
        &mut self,
        upload_id: &str,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> StoreResult<Vec<((i64, i64), ReportLine)>> {
        let (record, n) = after.unwrap_or((i64::MIN, i64::MIN));
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT record, n, sku, code, kind, message FROM upload_report
                 WHERE upload_id = ?1 AND (record > ?2 OR (record = ?2 AND n > ?3))
                 ORDER BY record, n LIMIT ?4",
            )
            .map_err(db_err)?;
        let mut rows = st
            .query(rusqlite::params![upload_id, record, n, limit as i64])
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            let kind_raw: String = row.get(4).map_err(db_err)?;
            let record: i64 = row.get(0).map_err(db_err)?;
            out.push((
                (record, row.get(1).map_err(db_err)?),
                ReportLine {
                    record,
                    sku: row.get(2).map_err(db_err)?,
                    code: row.get(3).map_err(db_err)?,
                    kind: codec::report_kind(&kind_raw)?,
                    message: row.get(5).map_err(db_err)?,
                },
            ));
        }
        Ok(out)
    }
}
