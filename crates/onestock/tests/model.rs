//! A model-based property test of the rules of SPEC.md section 3 (R6–R21), run through
//! `rules::execute` on the real storage: a throwaway SQLite file, and a throwaway
//! PostgreSQL database when `ONESTOCK_TEST_POSTGRES_URL` is set.
//!
//! proptest makes sequences of listing, quantity, order and delete operations on two
//! SKUs in the three stores of North America. A small independent model (a few maps)
//! predicts for every operation whether it is accepted or refused and with which error
//! code, and what every pool, listing and ledger must look like afterwards; after every
//! step the database is read back and compared with the model.
//!
//! Where SPEC.md leaves a detail open the model accepts either answer ("may refuse"):
//! see `LOOSE:` comments.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::model::{
    Event, EventBody, InactiveReason, LedgerEntry, LedgerReason, OrderLine, OrderLineResult,
    SkuState,
};
use onestock_core::region::Region;
use onestock_core::rules::{
    self, Command, Ctx, ListingInput, ListingPatch, NewProduct, Outcome, PriceInput, Source,
};
use onestock_core::types::{Asin, Fulfillment, QUANTITY_MAX, SellerId, ShareMode, Sku, StoreCode};
use onestock_store::Database;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::macros::datetime;

const POSTGRES_ENV: &str = "ONESTOCK_TEST_POSTGRES_URL";
const STORES: [&str; 3] = ["US", "CA", "MX"];
const CURRENCIES: [&str; 3] = ["USD", "CAD", "MXN"];
const PRICES: [&str; 3] = ["19.99", "24.99", "349.00"];
const SKUS: [&str; 2] = ["A", "B"];
/// Every command of a case runs at this time; `LATER` is a start-selling time after it.
const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const LATER: OffsetDateTime = datetime!(2025-06-02 12:00 UTC);
/// Order ids `o0`..`o5`.
const ORDER_IDS: u8 = 6;

// ---------------------------------------------------------------------------
// Operations

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IfMatch {
    None,
    Current,
    Stale,
}

#[derive(Clone, Debug)]
enum Op {
    /// Does nothing. The first choice of the strategy, so that when proptest shrinks an
    /// operation it cannot remove it becomes this, and the minimal sequence reads clean.
    Skip,
    /// `PUT /v1/listings/{sku}/stores/{store}` with a price in the store's currency (or,
    /// with `bad_currency`, in another's), on the SKU's own product (or, with
    /// `other_asin`, on the other product).
    Put {
        sku: usize,
        store: usize,
        share: Option<ShareMode>,
        quantity: Option<i64>,
        marketplace: bool,
        other_asin: bool,
        bad_currency: bool,
    },
    /// `PATCH {quantity}`, with or without `If-Match`.
    SetQuantity {
        sku: usize,
        store: usize,
        q: i64,
        if_match: IfMatch,
    },
    /// `PATCH {quantity_delta}`.
    Delta {
        sku: usize,
        store: usize,
        d: i64,
    },
    /// `close` / `relist`.
    SetClosed {
        sku: usize,
        store: usize,
        closed: bool,
    },
    /// `PATCH {start_selling_at: LATER}` / `{start_selling_at: null}`.
    Start {
        sku: usize,
        store: usize,
        later: bool,
    },
    Order {
        store: usize,
        id: u8,
        lines: Vec<(usize, i64)>,
    },
    /// Sends again the `nth` (modulo) order sent earlier in the sequence.
    Replay {
        nth: usize,
    },
    Cancel {
        store: usize,
        id: u8,
    },
    /// Cancels the `nth` (modulo) order sent earlier in the sequence.
    CancelSent {
        nth: usize,
    },
    Delete {
        sku: usize,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Skip => write!(f, "Skip"),
            Op::Put {
                sku,
                store,
                share,
                quantity,
                marketplace,
                other_asin,
                bad_currency,
            } => {
                write!(f, "Put {}@{}", SKUS[*sku], STORES[*store])?;
                match share {
                    Some(s) => write!(f, " share={}", s.as_str())?,
                    None => write!(f, " share=-")?,
                }
                if let Some(q) = quantity {
                    write!(f, " quantity={q}")?;
                }
                if *marketplace {
                    write!(f, " fulfillment=marketplace")?;
                }
                if *other_asin {
                    write!(f, " asin=OTHER")?;
                }
                if *bad_currency {
                    write!(f, " currency=WRONG")?;
                }
                Ok(())
            }
            Op::SetQuantity {
                sku,
                store,
                q,
                if_match,
            } => {
                write!(f, "SetQuantity {}@{} = {q}", SKUS[*sku], STORES[*store])?;
                match if_match {
                    IfMatch::None => Ok(()),
                    IfMatch::Current => write!(f, " If-Match=current"),
                    IfMatch::Stale => write!(f, " If-Match=stale"),
                }
            }
            Op::Delta { sku, store, d } => {
                write!(f, "Delta {}@{} {d:+}", SKUS[*sku], STORES[*store])
            }
            Op::SetClosed { sku, store, closed } => write!(
                f,
                "{} {}@{}",
                if *closed { "Close" } else { "Relist" },
                SKUS[*sku],
                STORES[*store]
            ),
            Op::Start { sku, store, later } => write!(
                f,
                "{} {}@{}",
                if *later { "StartLater" } else { "StartNow" },
                SKUS[*sku],
                STORES[*store]
            ),
            Op::Order { store, id, lines } => {
                write!(f, "Order {} o{id} [", STORES[*store])?;
                for (i, (sku, q)) in lines.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{} x{q}", SKUS[*sku])?;
                }
                write!(f, "]")
            }
            Op::Replay { nth } => write!(f, "Replay #{nth}"),
            Op::CancelSent { nth } => write!(f, "CancelSent #{nth}"),
            Op::Cancel { store, id } => write!(f, "Cancel {} o{id}", STORES[*store]),
            Op::Delete { sku } => write!(f, "Delete {}", SKUS[*sku]),
        }
    }
}

fn put_strategy() -> impl Strategy<Value = Op> {
    let share = prop_oneof![
        3 => Just(None),
        1 => Just(Some(ShareMode::Unique)),
        2 => Just(Some(ShareMode::Existing)),
    ];
    (
        0..2usize,
        0..3usize,
        share,
        prop::option::weighted(0.6, 0..20i64),
        prop::bool::weighted(0.12),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.04),
    )
        .prop_map(
            |(sku, store, share, quantity, marketplace, other_asin, bad_currency)| Op::Put {
                sku,
                store,
                share,
                quantity,
                marketplace,
                other_asin,
                bad_currency,
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let sku = || 0..2usize;
    let store = || 0..3usize;
    let if_match = prop_oneof![
        6 => Just(IfMatch::None),
        2 => Just(IfMatch::Current),
        2 => Just(IfMatch::Stale),
    ];
    prop_oneof![
        1 => Just(Op::Skip),
        9 => put_strategy(),
        // Now and then a quantity at the cap's edge, so that orders, deltas and cancels
        // meet QUANTITY_MAX (R20, R21: the ledger still sums to the quantity there).
        3 => (sku(), store(), prop_oneof![9 => 0..20i64, 1 => Just(QUANTITY_MAX - 2)], if_match).prop_map(|(sku, store, q, if_match)| {
            Op::SetQuantity {
                sku,
                store,
                q,
                if_match,
            }
        }),
        3 => (sku(), store(), -10..10i64).prop_map(|(sku, store, d)| Op::Delta { sku, store, d }),
        2 => (sku(), store(), any::<bool>())
            .prop_map(|(sku, store, closed)| Op::SetClosed { sku, store, closed }),
        2 => (sku(), store(), any::<bool>())
            .prop_map(|(sku, store, later)| Op::Start { sku, store, later }),
        6 => (
            store(),
            0..ORDER_IDS,
            prop::collection::vec((sku(), 1..5i64), 1..=3)
        )
            .prop_map(|(store, id, lines)| Op::Order { store, id, lines }),
        2 => (0..64usize).prop_map(|nth| Op::Replay { nth }),
        1 => (store(), 0..ORDER_IDS).prop_map(|(store, id)| Op::Cancel { store, id }),
        2 => (0..64usize).prop_map(|nth| Op::CancelSent { nth }),
        1 => sku().prop_map(|sku| Op::Delete { sku }),
    ]
}

/// 1 to 40 operations, the first few of them listings so that later ones find
/// something to act on more often than not.
fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
    (
        prop::collection::vec(put_strategy(), 0..8),
        prop::collection::vec(op_strategy(), 1..36),
    )
        .prop_map(|(mut puts, ops)| {
            puts.extend(ops);
            puts
        })
}

/// The operations that do something (`Skip`s left out).
fn live_ops(ops: &[Op]) -> Vec<&Op> {
    ops.iter().filter(|op| !matches!(op, Op::Skip)).collect()
}

fn show_ops(ops: &[Op]) -> String {
    live_ops(ops)
        .into_iter()
        .enumerate()
        .map(|(i, op)| format!("  {i:>2}: {op}\n"))
        .collect()
}

// ---------------------------------------------------------------------------
// The model

#[derive(Clone, Debug, PartialEq, Eq)]
struct MListing {
    /// The real pool id (learned when the pool is made); listings with the same id share.
    pool: i64,
    closed: bool,
    later: bool,
    marketplace: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct MPool {
    shared: bool,
    qty: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MSku {
    /// Index of the product the SKU is listed on, while it has listings.
    product: Option<usize>,
    listings: BTreeMap<usize, MListing>,
    pools: BTreeMap<i64, MPool>,
}

impl MSku {
    fn shared_pool(&self) -> Option<i64> {
        self.pools.iter().find(|(_, p)| p.shared).map(|(id, _)| *id)
    }
    fn pool_stores(&self, pool: i64) -> Vec<usize> {
        self.listings
            .iter()
            .filter(|(_, l)| l.pool == pool)
            .map(|(s, _)| *s)
            .collect()
    }
    fn qty(&self, store: usize) -> i64 {
        self.listings
            .get(&store)
            .and_then(|l| self.pools.get(&l.pool))
            .map(|p| p.qty)
            .unwrap_or(0)
    }
    fn pool_mut(&mut self, store: usize) -> &mut MPool {
        let pool = self.listings[&store].pool;
        self.pools
            .get_mut(&pool)
            .expect("model: listing without pool")
    }
    /// R12: why the listing is not buyable.
    fn reasons(&self, store: usize) -> BTreeSet<&'static str> {
        let mut r = BTreeSet::new();
        if let Some(l) = self.listings.get(&store) {
            if l.closed {
                r.insert(InactiveReason::Closed.as_str());
            }
            if l.later {
                r.insert(InactiveReason::NotYetStarted.as_str());
            }
            if self.pools[&l.pool].qty <= 0 {
                r.insert(InactiveReason::OutOfStock.as_str());
            }
        }
        r
    }
}

#[derive(Clone, Debug)]
struct MOrder {
    /// Merged lines: SKU index -> quantity.
    lines: BTreeMap<usize, i64>,
    /// (SKU index, pool, quantity) taken.
    taken: Vec<(usize, i64, i64)>,
    cancelled: bool,
    /// Ledger entries the (first) cancel made.
    cancel_entries: usize,
}

#[derive(Clone, Debug, Default)]
struct Model {
    skus: [MSku; 2],
    orders: BTreeMap<(usize, u8), MOrder>,
    /// (SKU index, pool id) of pools removed by a delete (R16).
    dead: Vec<(usize, i64)>,
}

impl Model {
    fn known_pool(&self, pool: i64) -> bool {
        self.skus.iter().any(|s| s.pools.contains_key(&pool))
            || self.dead.iter().any(|(_, p)| *p == pool)
    }
}

/// What the ledger must have gained in one step.
struct LedgerExpect {
    reason: Option<LedgerReason>,
    min: usize,
    max: usize,
}

impl LedgerExpect {
    fn none() -> LedgerExpect {
        LedgerExpect {
            reason: None,
            min: 0,
            max: 0,
        }
    }
    fn exactly(reason: LedgerReason, n: usize) -> LedgerExpect {
        LedgerExpect {
            reason: Some(reason),
            min: n,
            max: n,
        }
    }
}

/// Compares the real answer with the model's prediction: `must` non-empty means the
/// command must be refused with one of these codes; `may` are codes a refusal may also
/// carry where SPEC.md leaves the answer open. Returns whether it was accepted.
fn verdict(
    must: &[ErrorCode],
    may: &[ErrorCode],
    real: &Result<Outcome, DomainError>,
) -> Result<bool, String> {
    match real {
        Ok(_) if must.is_empty() => Ok(true),
        Ok(_) => Err(format!(
            "expected a refusal with one of {must:?}, but the command was accepted"
        )),
        Err(e) if must.contains(&e.code) || may.contains(&e.code) => Ok(false),
        Err(e) if must.is_empty() => Err(format!(
            "expected acceptance, but it was refused with {} ({})",
            e.code, e.message
        )),
        Err(e) => Err(format!(
            "expected a refusal with one of {must:?}, got {} ({})",
            e.code, e.message
        )),
    }
}

fn store_index(code: &StoreCode) -> usize {
    STORES
        .iter()
        .position(|s| *s == code.as_str())
        .unwrap_or(usize::MAX)
}

fn sku_of(i: usize) -> Sku {
    Sku::parse(SKUS[i]).unwrap()
}

fn store_of(i: usize) -> StoreCode {
    StoreCode::parse(STORES[i]).unwrap()
}

fn store_names(stores: &[usize]) -> Vec<&'static str> {
    stores.iter().map(|s| STORES[*s]).collect()
}

// ---------------------------------------------------------------------------
// Setup: a seller and two products with pages in all three stores.

/// A UPC-A (12 digits) from an 11-digit body and its GS1 check digit.
fn upc(body: u64) -> String {
    let b = format!("{body:011}");
    let sum: u32 = b
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 { d * 3 } else { d }
        })
        .sum();
    format!("{b}{}", (10 - sum % 10) % 10)
}

fn write(
    db: &Database,
    region: &Region,
    cmd: &Command,
) -> Result<Result<Outcome, DomainError>, String> {
    let ctx = Ctx { region, now: NOW };
    db.write(|tx| rules::execute(tx, ctx, cmd))
        .map_err(|e| format!("storage error: {e}"))
}

fn create_product(
    db: &Database,
    region: &Region,
    store: usize,
    title: &str,
    brand: &str,
    language: &str,
    upc: &str,
) -> Result<(Asin, bool), String> {
    let cmd = Command::CreateProduct(NewProduct {
        store: STORES[store].into(),
        product_type: "KITCHEN".into(),
        title: title.into(),
        brand: brand.into(),
        description: String::new(),
        language: language.into(),
        identifiers: vec![("UPC".into(), upc.into())],
        force_new: true,
    });
    match write(db, region, &cmd)? {
        Ok(Outcome::Product { asin, matched, .. }) => Ok((asin, matched)),
        other => Err(format!(
            "setup: creating {title:?} in {} answered {other:?}",
            STORES[store]
        )),
    }
}

/// R3: creating the product in MX must be refused with `PRODUCT_DATA_CONFLICT`, naming
/// `field`, with `matches` pages.
#[allow(clippy::too_many_arguments)]
fn expect_conflict(
    db: &Database,
    region: &Region,
    title: &str,
    brand: &str,
    product_type: &str,
    identifiers: Vec<(String, String)>,
    field: &str,
    matches: usize,
) -> Result<(), String> {
    let cmd = Command::CreateProduct(NewProduct {
        store: STORES[2].into(),
        product_type: product_type.into(),
        title: title.into(),
        brand: brand.into(),
        description: String::new(),
        language: "es".into(),
        identifiers,
        force_new: true,
    });
    match write(db, region, &cmd)? {
        Err(e)
            if e.code == ErrorCode::ProductDataConflict
                && e.field.as_deref() == Some(field)
                && e.message.contains(field)
                && e.matches.len() == matches =>
        {
            count(format!(
                "create_product refused PRODUCT_DATA_CONFLICT ({field})"
            ));
            Ok(())
        }
        other => Err(format!(
            "setup (R3): {title:?} in MX with brand {brand:?}, type {product_type} should be PRODUCT_DATA_CONFLICT on {field} with {matches} matches; answered {other:?}"
        )),
    }
}

struct Fixture {
    seller: SellerId,
    /// Product 0 and product 1; SKU i lists product i.
    asins: [Asin; 2],
    /// Makes this case's order ids unique in the shared database.
    tag: String,
}

static CASES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// How often each kind of operation was accepted or refused (and with which code),
    /// for the summary each test prints: a model that never reaches a rule proves
    /// nothing. One per test thread, so the two backends count apart.
    static STATS: RefCell<BTreeMap<String, usize>> = const { RefCell::new(BTreeMap::new()) };
}

fn count(key: String) {
    STATS.with(|s| *s.borrow_mut().entry(key).or_default() += 1);
}

fn setup(db: &Database, region: &Region) -> Result<Fixture, String> {
    let case = CASES.fetch_add(1, Ordering::SeqCst);
    let nonce: u64 = rand::random();
    let tag = format!("c{case}x{:06x}", nonce & 0xff_ffff);
    let seller = match write(
        db,
        region,
        &Command::CreateSeller {
            name: format!("model seller {tag}"),
            token_sha256: format!("{nonce:016x}{case:048x}"),
        },
    )? {
        Ok(Outcome::Seller(s)) => s.seller_id,
        other => return Err(format!("setup: creating the seller answered {other:?}")),
    };
    let brand = format!("Modelbrand {tag}");
    let products = [
        [
            "Blue ceramic mug",
            "Blue ceramic mug",
            "Taza azul de cerámica",
        ],
        [
            "Green glass bottle",
            "Green glass bottle",
            "Botella verde de vidrio",
        ],
    ];
    let languages = ["en", "en", "es"];
    let mut asins = Vec::new();
    let mut codes = Vec::new();
    for (k, titles) in products.iter().enumerate() {
        // Unique per case (and per run: the nonce) so pages of earlier cases never match.
        let code =
            upc(((nonce % 1_000_000) * 10_000 + (case % 5_000) * 2 + k as u64) % 100_000_000_000);
        let (asin, matched) =
            create_product(db, region, 0, titles[0], &brand, languages[0], &code)?;
        if matched {
            return Err(format!("setup: product {k} in US matched an earlier page"));
        }
        let (again, matched) =
            create_product(db, region, 1, titles[1], &brand, languages[1], &code)?;
        if again != asin || !matched {
            return Err(format!(
                "setup (R3): the same UPC {code} in CA gave {again} matched={matched}; expected {asin} matched=true"
            ));
        }
        asins.push(asin);
        codes.push(code);
    }
    // R3, the same product information: in MX (no page yet), identifiers of two ASINs,
    // another brand or another product type are refused with every page as a match;
    // the brand written another way (case, punctuation) is the same brand.
    let both: Vec<(String, String)> = codes
        .iter()
        .map(|c| ("UPC".to_string(), c.clone()))
        .collect();
    expect_conflict(
        db,
        region,
        products[0][2],
        &brand,
        "KITCHEN",
        both,
        "identifiers",
        4,
    )?;
    for (k, titles) in products.iter().enumerate() {
        let one = vec![("UPC".to_string(), codes[k].clone())];
        let other_brand = format!("Otherbrand {tag}");
        expect_conflict(
            db,
            region,
            titles[2],
            &other_brand,
            "KITCHEN",
            one.clone(),
            "brand",
            2,
        )?;
        expect_conflict(
            db,
            region,
            titles[2],
            &brand,
            "GARDEN",
            one,
            "product_type",
            2,
        )?;
        let same_brand = format!("{}.", brand.to_uppercase());
        let (again, matched) = create_product(
            db,
            region,
            2,
            titles[2],
            &same_brand,
            languages[2],
            &codes[k],
        )?;
        if again != asins[k] || !matched {
            return Err(format!(
                "setup (R3): the same UPC {} in MX with brand {same_brand:?} gave {again} matched={matched}; expected {} matched=true",
                codes[k], asins[k]
            ));
        }
    }
    let asins: [Asin; 2] = asins.try_into().unwrap();
    Ok(Fixture { seller, asins, tag })
}

// ---------------------------------------------------------------------------
// One case: run the operations, judge each one, check the invariants after each.

/// (store, order id, lines as sent).
type SentOrder = (usize, u8, Vec<(usize, i64)>);

struct Case<'a> {
    db: &'a Database,
    region: &'a Region,
    fx: Fixture,
    model: Model,
    /// Orders sent so far (accepted or not), for `Replay` and `CancelSent`.
    sent_orders: Vec<SentOrder>,
    /// The first answer of each accepted order, which a replay must return again.
    first_answers: HashMap<(usize, u8), Vec<OrderLineResult>>,
    /// Last seen (version, quantity) of each pool.
    versions: HashMap<i64, (i64, i64)>,
    events: usize,
    ledger_len: [usize; 2],
    trace: Vec<String>,
}

struct Snapshot {
    states: Vec<SkuState>,
    ledgers: Vec<Vec<LedgerEntry>>,
    events: Vec<Event>,
}

impl<'a> Case<'a> {
    fn order_id(&self, id: u8) -> String {
        format!("{}-o{id}", self.fx.tag)
    }

    fn snapshot(&self) -> Result<Snapshot, String> {
        let seller = self.fx.seller.clone();
        self.db
            .read(|tx| {
                let mut states = Vec::new();
                let mut ledgers = Vec::new();
                for i in 0..2 {
                    states.push(tx.load_sku(&seller, &sku_of(i))?);
                    ledgers.push(tx.ledger(&seller, &sku_of(i))?);
                }
                let events = tx.events_after(&seller, 0, 100_000)?;
                Ok(Snapshot {
                    states,
                    ledgers,
                    events,
                })
            })
            .map_err(|e| format!("storage error on read: {e}"))
    }

    fn command(&self, op: &Op) -> Result<Command, String> {
        let seller = self.fx.seller.clone();
        Ok(match op {
            Op::Put {
                sku,
                store,
                share,
                quantity,
                marketplace,
                other_asin,
                bad_currency,
            } => {
                let product = if *other_asin { 1 - *sku } else { *sku };
                let currency = if *bad_currency {
                    CURRENCIES[(*store + 1) % 3]
                } else {
                    CURRENCIES[*store]
                };
                Command::PutListing {
                    seller,
                    sku: sku_of(*sku),
                    store: store_of(*store),
                    input: ListingInput {
                        asin: Some(self.fx.asins[product].clone()),
                        price: Some(PriceInput {
                            amount: PRICES[*store].parse::<Decimal>().unwrap(),
                            currency: currency.into(),
                        }),
                        share: *share,
                        condition: None,
                        quantity: *quantity,
                        fulfillment: Some(if *marketplace {
                            Fulfillment::Marketplace
                        } else {
                            Fulfillment::Merchant
                        }),
                        start_selling_at: None,
                    },
                    source: Source::Api,
                    if_match: None,
                }
            }
            Op::SetQuantity {
                sku,
                store,
                q,
                if_match,
            } => {
                let if_match = match if_match {
                    IfMatch::None => None,
                    IfMatch::Current | IfMatch::Stale => {
                        let state = self
                            .db
                            .read(|tx| tx.load_sku(&seller, &sku_of(*sku)))
                            .map_err(|e| format!("storage error on read: {e}"))?;
                        let version = state
                            .listing(&store_of(*store))
                            .and_then(|l| state.pool(l.pool_id))
                            .map(|p| p.version)
                            .unwrap_or(1);
                        Some(if *if_match == IfMatch::Stale {
                            version - 1
                        } else {
                            version
                        })
                    }
                };
                Command::PatchListing {
                    seller,
                    sku: sku_of(*sku),
                    store: store_of(*store),
                    patch: ListingPatch {
                        quantity: Some(*q),
                        ..ListingPatch::default()
                    },
                    if_match,
                }
            }
            Op::Delta { sku, store, d } => Command::PatchListing {
                seller,
                sku: sku_of(*sku),
                store: store_of(*store),
                patch: ListingPatch {
                    quantity_delta: Some(*d),
                    ..ListingPatch::default()
                },
                if_match: None,
            },
            Op::SetClosed { sku, store, closed } => Command::SetClosed {
                seller,
                sku: sku_of(*sku),
                store: store_of(*store),
                closed: *closed,
            },
            Op::Start { sku, store, later } => Command::PatchListing {
                seller,
                sku: sku_of(*sku),
                store: store_of(*store),
                patch: ListingPatch {
                    start_selling_at: Some(if *later { Some(LATER) } else { None }),
                    ..ListingPatch::default()
                },
                if_match: None,
            },
            Op::Order { store, id, lines } => Command::PlaceOrder {
                store: store_of(*store),
                order_id: self.order_id(*id),
                lines: lines
                    .iter()
                    .map(|(sku, q)| OrderLine {
                        seller_id: seller.clone(),
                        sku: sku_of(*sku),
                        quantity: *q,
                    })
                    .collect(),
            },
            Op::Cancel { store, id } => Command::CancelOrder {
                store: store_of(*store),
                order_id: self.order_id(*id),
            },
            Op::Delete { sku } => Command::DeleteSku {
                seller,
                sku: sku_of(*sku),
                source: Source::Api,
            },
            Op::Skip | Op::Replay { .. } | Op::CancelSent { .. } => {
                unreachable!("skips, replays and cancels of sent orders are resolved before")
            }
        })
    }

    /// Runs one operation and checks it; the error names what went wrong.
    fn step(&mut self, op: &Op) -> Result<(), String> {
        let op = match op {
            Op::Skip => return Ok(()),
            Op::Replay { nth } => {
                if self.sent_orders.is_empty() {
                    self.trace
                        .push(format!("{op} -> (no order sent yet: skipped)"));
                    return Ok(());
                }
                let (store, id, lines) = self.sent_orders[nth % self.sent_orders.len()].clone();
                Op::Order { store, id, lines }
            }
            Op::CancelSent { nth } => {
                if self.sent_orders.is_empty() {
                    self.trace
                        .push(format!("{op} -> (no order sent yet: skipped)"));
                    return Ok(());
                }
                let (store, id, _) = self.sent_orders[nth % self.sent_orders.len()].clone();
                Op::Cancel { store, id }
            }
            other => other.clone(),
        };
        if let Op::Order { store, id, lines } = &op {
            self.sent_orders.push((*store, *id, lines.clone()));
        }
        let cmd = self.command(&op)?;
        let real = write(self.db, self.region, &cmd)?;
        self.trace.push(format!(
            "{op} -> {}",
            match &real {
                Ok(o) => summary(o),
                Err(e) => format!("refused {}", e.code),
            }
        ));
        let kind = format!("{op}").split(' ').next().unwrap_or("").to_owned();
        count(match &real {
            Ok(Outcome::Order { replay: true, .. }) => format!("{kind} ok (replay)"),
            Ok(_) => format!("{kind} ok"),
            Err(e) => format!("{kind} {}", e.code),
        });
        let before = self.model.clone();
        let (accepted, ledger) = self.judge(&op, &real)?;
        self.check_invariants(&before, accepted, &ledger)
    }

    /// Predicts the answer from the model, compares it with `real`, and moves the model.
    fn judge(
        &mut self,
        op: &Op,
        real: &Result<Outcome, DomainError>,
    ) -> Result<(bool, LedgerExpect), String> {
        use ErrorCode::*;
        let mut must: Vec<ErrorCode> = Vec::new();
        let mut may: Vec<ErrorCode> = Vec::new();
        match op {
            Op::Put {
                sku,
                store,
                share,
                quantity,
                marketplace,
                other_asin,
                bad_currency,
            } => {
                let product = if *other_asin { 1 - *sku } else { *sku };
                let s = &self.model.skus[*sku];
                if *bad_currency {
                    must.push(CurrencyMismatch); // R10
                }
                if let Some(l) = s.listings.get(store).cloned() {
                    // An existing listing: PUT changes the fields it gives, as PATCH.
                    let mode = if s.pools[&l.pool].shared {
                        ShareMode::Existing
                    } else {
                        ShareMode::Unique
                    };
                    if s.product != Some(product) {
                        must.push(SkuAsinMismatch); // R1
                    }
                    if share.is_some_and(|sh| sh != mode) {
                        must.push(SharingModeImmutable); // R8
                        may.push(FulfillmentCannotShare);
                    }
                    if *share == Some(ShareMode::Existing) && quantity.is_some() {
                        // LOOSE: SPEC forbids quantity when a listing *joins* the pool
                        // (R6); for a listing already on it, refusing or applying it to
                        // the pool are both readings.
                        may.push(SharedFieldNotEditable);
                    }
                    if *marketplace && mode == ShareMode::Existing {
                        // R9: a listing on the shared pool cannot become marketplace-
                        // fulfilled. LOOSE: either code names it.
                        must.push(FulfillmentCannotShare);
                        may.push(SharingModeImmutable);
                    }
                    let accepted = verdict(&must, &may, real)?;
                    if !accepted {
                        return Ok((false, LedgerExpect::none()));
                    }
                    match real {
                        Ok(Outcome::Listing { created: false, .. }) => {}
                        other => {
                            return Err(format!(
                                "a PUT on an existing listing answered {}",
                                outcome_or_err(other)
                            ));
                        }
                    }
                    let s = &mut self.model.skus[*sku];
                    s.listings.get_mut(store).unwrap().marketplace = *marketplace;
                    let mut n = 0;
                    if let Some(q) = quantity {
                        let pool = s.pool_mut(*store);
                        if pool.qty != *q {
                            n = 1;
                        }
                        pool.qty = *q;
                    }
                    Ok((true, LedgerExpect::exactly(LedgerReason::Set, n)))
                } else {
                    // A new store listing: R1, R6–R9.
                    if s.product.is_some_and(|p| p != product) {
                        must.push(SkuAsinMismatch);
                    }
                    enum Plan {
                        Own { shared: bool },
                        Join(i64),
                    }
                    let shared = s.shared_pool();
                    let plan = if *marketplace {
                        if *share == Some(ShareMode::Existing) {
                            must.push(FulfillmentCannotShare);
                        }
                        Plan::Own { shared: false }
                    } else {
                        match (share, shared) {
                            (Some(ShareMode::Unique), _) => Plan::Own { shared: false },
                            (_, Some(pool)) => {
                                if quantity.is_some() {
                                    must.push(SharedFieldNotEditable);
                                }
                                Plan::Join(pool)
                            }
                            (Some(ShareMode::Existing), None) => {
                                let only_marketplace = !s.listings.is_empty()
                                    && s.listings.values().all(|l| l.marketplace);
                                must.push(if only_marketplace {
                                    FulfillmentCannotShare
                                } else {
                                    SharingNotAvailable
                                });
                                Plan::Own { shared: true }
                            }
                            (None, None) => Plan::Own { shared: true },
                        }
                    };
                    let accepted = verdict(&must, &may, real)?;
                    if !accepted {
                        return Ok((false, LedgerExpect::none()));
                    }
                    let real_pool = match real {
                        Ok(Outcome::Listing {
                            state,
                            created: true,
                            ..
                        }) => state
                            .listing(&store_of(*store))
                            .map(|l| l.pool_id)
                            .ok_or("the new listing is not in the answer")?,
                        other => {
                            return Err(format!(
                                "a PUT of a new listing answered {}",
                                outcome_or_err(other)
                            ));
                        }
                    };
                    let mut n = 0;
                    let pool = match plan {
                        Plan::Join(pool) => {
                            if real_pool != pool {
                                return Err(format!(
                                    "R6/R7: the listing should join the SKU's shared pool {pool}, it stands on pool {real_pool}"
                                ));
                            }
                            pool
                        }
                        Plan::Own { shared } => {
                            if self.model.known_pool(real_pool) {
                                return Err(format!(
                                    "R6/R7/R9: the listing should get a new pool of its own (shared: {shared}), it stands on existing pool {real_pool}"
                                ));
                            }
                            let qty = quantity.unwrap_or(0);
                            if qty != 0 {
                                n = 1;
                            }
                            self.model.skus[*sku]
                                .pools
                                .insert(real_pool, MPool { shared, qty });
                            real_pool
                        }
                    };
                    let s = &mut self.model.skus[*sku];
                    s.product = Some(product);
                    s.listings.insert(
                        *store,
                        MListing {
                            pool,
                            closed: false,
                            later: false,
                            marketplace: *marketplace,
                        },
                    );
                    Ok((true, LedgerExpect::exactly(LedgerReason::Set, n)))
                }
            }
            Op::SetQuantity {
                sku,
                store,
                q,
                if_match,
            } => {
                let s = &self.model.skus[*sku];
                if !s.listings.contains_key(store) {
                    must.push(NotFound);
                } else if *if_match == IfMatch::Stale {
                    must.push(VersionMismatch); // R21
                }
                if !verdict(&must, &may, real)? {
                    return Ok((false, LedgerExpect::none()));
                }
                let old = s.qty(*store);
                self.model.skus[*sku].pool_mut(*store).qty = *q;
                if old != *q {
                    self.check_affected(*sku, *store, real)?;
                }
                Ok((
                    true,
                    LedgerExpect::exactly(LedgerReason::Set, usize::from(old != *q)),
                ))
            }
            Op::Delta { sku, store, d } => {
                let s = &self.model.skus[*sku];
                if !s.listings.contains_key(store) {
                    must.push(NotFound);
                } else if s.qty(*store) + d < 0 {
                    must.push(InsufficientStock); // R21
                } else if s.qty(*store) + d > QUANTITY_MAX {
                    must.push(InvalidQuantity); // R21: at most QUANTITY_MAX
                }
                if !verdict(&must, &may, real)? {
                    return Ok((false, LedgerExpect::none()));
                }
                self.model.skus[*sku].pool_mut(*store).qty += d;
                if *d != 0 {
                    self.check_affected(*sku, *store, real)?;
                }
                Ok((
                    true,
                    LedgerExpect::exactly(LedgerReason::Adjust, usize::from(*d != 0)),
                ))
            }
            Op::SetClosed { sku, store, closed } => {
                if !self.model.skus[*sku].listings.contains_key(store) {
                    must.push(NotFound);
                }
                if !verdict(&must, &may, real)? {
                    return Ok((false, LedgerExpect::none()));
                }
                self.model.skus[*sku]
                    .listings
                    .get_mut(store)
                    .unwrap()
                    .closed = *closed;
                Ok((true, LedgerExpect::none()))
            }
            Op::Start { sku, store, later } => {
                if !self.model.skus[*sku].listings.contains_key(store) {
                    must.push(NotFound);
                }
                if !verdict(&must, &may, real)? {
                    return Ok((false, LedgerExpect::none()));
                }
                self.model.skus[*sku].listings.get_mut(store).unwrap().later = *later;
                Ok((true, LedgerExpect::none()))
            }
            Op::Order { store, id, lines } => {
                let mut merged: BTreeMap<usize, i64> = BTreeMap::new();
                for (sku, q) in lines {
                    *merged.entry(*sku).or_default() += q;
                }
                if let Some(first) = self.model.orders.get(&(*store, *id)) {
                    // R19: the same order again answers the first answer; other lines
                    // under the same id are refused.
                    if first.lines != merged {
                        must.push(OrderIdReused);
                    }
                    if !verdict(&must, &may, real)? {
                        return Ok((false, LedgerExpect::none()));
                    }
                    match real {
                        Ok(Outcome::Order {
                            record,
                            replay: true,
                        }) => {
                            if Some(&record.results) != self.first_answers.get(&(*store, *id)) {
                                return Err(format!(
                                    "R19: a replay must return the first answer {:?}; got {:?}",
                                    self.first_answers.get(&(*store, *id)),
                                    record.results
                                ));
                            }
                        }
                        other => {
                            return Err(format!(
                                "R19: a replay answered {}",
                                outcome_or_err(other)
                            ));
                        }
                    }
                    return Ok((true, LedgerExpect::none()));
                }
                // R18: every line must be buyable and in stock, or nothing changes.
                for (sku, q) in &merged {
                    let s = &self.model.skus[*sku];
                    match s.listings.get(store) {
                        None => must.push(ListingNotBuyable),
                        Some(l) => {
                            if l.closed || l.later {
                                must.push(ListingNotBuyable);
                            }
                            if s.pools[&l.pool].qty < *q {
                                must.push(InsufficientStock);
                            }
                        }
                    }
                }
                if !verdict(&must, &may, real)? {
                    return Ok((false, LedgerExpect::none()));
                }
                let results = match real {
                    Ok(Outcome::Order {
                        record,
                        replay: false,
                    }) => record.results.clone(),
                    other => {
                        return Err(format!("a new order answered {}", outcome_or_err(other)));
                    }
                };
                let mut taken = Vec::new();
                for (sku, q) in &merged {
                    let s = &mut self.model.skus[*sku];
                    let pool = s.listings[store].pool;
                    s.pools.get_mut(&pool).unwrap().qty -= q;
                    let after = s.pools[&pool].qty;
                    let stores = store_names(&s.pool_stores(pool));
                    taken.push((*sku, pool, *q));
                    let Some(r) = results.iter().find(|r| r.sku.as_str() == SKUS[*sku]) else {
                        return Err(format!("the order's answer has no line for {}", SKUS[*sku]));
                    };
                    let mut real_stores: Vec<&str> = r.stores.iter().map(|s| s.as_str()).collect();
                    real_stores.sort_by_key(|s| STORES.iter().position(|x| x == s));
                    if r.quantity != *q
                        || r.pool_id != pool
                        || r.quantity_after != after
                        || real_stores != stores
                    {
                        return Err(format!(
                            "R11/R18: the order line for {} should be quantity {q}, pool {pool}, quantity_after {after}, stores {stores:?}; got {r:?}",
                            SKUS[*sku]
                        ));
                    }
                }
                if results.len() != merged.len() {
                    return Err(format!(
                        "the order's answer has {} lines; merged lines: {}",
                        results.len(),
                        merged.len()
                    ));
                }
                let n = taken.len();
                self.first_answers.insert((*store, *id), results);
                self.model.orders.insert(
                    (*store, *id),
                    MOrder {
                        lines: merged,
                        taken,
                        cancelled: false,
                        cancel_entries: 0,
                    },
                );
                Ok((true, LedgerExpect::exactly(LedgerReason::Order, n)))
            }
            Op::Cancel { store, id } => {
                if !self.model.orders.contains_key(&(*store, *id)) {
                    must.push(NotFound);
                }
                if !verdict(&must, &may, real)? {
                    return Ok((false, LedgerExpect::none()));
                }
                let order = self.model.orders.get(&(*store, *id)).unwrap().clone();
                if order.cancelled {
                    // R19: once, however often the cancel is sent.
                    return Ok((true, LedgerExpect::none()));
                }
                let mut n = 0;
                for (sku, pool, q) in &order.taken {
                    // A pool deleted since (R16) gets nothing back.
                    if let Some(p) = self.model.skus[*sku].pools.get_mut(pool) {
                        // What fits under the cap comes back (the ledger says how much).
                        p.qty = (p.qty + q).min(QUANTITY_MAX);
                        n += 1;
                    }
                }
                let o = self.model.orders.get_mut(&(*store, *id)).unwrap();
                o.cancelled = true;
                o.cancel_entries = n;
                Ok((true, LedgerExpect::exactly(LedgerReason::Cancel, n)))
            }
            Op::Delete { sku } => {
                if self.model.skus[*sku].listings.is_empty() {
                    must.push(NotFound);
                }
                if !verdict(&must, &may, real)? {
                    return Ok((false, LedgerExpect::none()));
                }
                let s = std::mem::take(&mut self.model.skus[*sku]);
                let nonzero = s.pools.values().filter(|p| p.qty != 0).count();
                for pool in s.pools.keys() {
                    self.model.dead.push((*sku, *pool));
                }
                // LOOSE: whether a pool removed at quantity 0 gets a (zero) ledger entry.
                Ok((
                    true,
                    LedgerExpect {
                        reason: Some(LedgerReason::Delete),
                        min: nonzero,
                        max: s.pools.len(),
                    },
                ))
            }
            Op::Skip | Op::Replay { .. } | Op::CancelSent { .. } => unreachable!(),
        }
    }

    /// R11: a change of the pool's quantity names every store of the pool.
    fn check_affected(
        &self,
        sku: usize,
        store: usize,
        real: &Result<Outcome, DomainError>,
    ) -> Result<(), String> {
        let s = &self.model.skus[sku];
        let want: BTreeSet<&str> = store_names(&s.pool_stores(s.listings[&store].pool))
            .into_iter()
            .collect();
        match real {
            Ok(Outcome::Listing {
                affected_stores, ..
            }) => {
                let got: BTreeSet<&str> = affected_stores.iter().map(|s| s.as_str()).collect();
                if got != want {
                    return Err(format!(
                        "R11: a quantity change should name the stores {want:?}; named {got:?}"
                    ));
                }
                Ok(())
            }
            other => Err(format!("a PATCH answered {}", outcome_or_err(other))),
        }
    }

    fn check_invariants(
        &mut self,
        before: &Model,
        accepted: bool,
        expect: &LedgerExpect,
    ) -> Result<(), String> {
        let snap = self.snapshot()?;
        let m = &self.model;
        for (i, name) in SKUS.into_iter().enumerate() {
            let ms = &m.skus[i];
            let st = &snap.states[i];
            // Pools: exactly the model's, with its quantities, never below zero.
            let real_pools: BTreeSet<i64> = st.pools.iter().map(|p| p.pool_id).collect();
            let model_pools: BTreeSet<i64> = ms.pools.keys().copied().collect();
            if real_pools != model_pools {
                return Err(format!(
                    "SKU {name}: pools {real_pools:?} stored, model has {model_pools:?}"
                ));
            }
            for p in &st.pools {
                let mp = &ms.pools[&p.pool_id];
                if p.quantity < 0 {
                    return Err(format!(
                        "R18: SKU {name} pool {} is at {}",
                        p.pool_id, p.quantity
                    ));
                }
                if p.quantity != mp.qty || p.shared != mp.shared {
                    return Err(format!(
                        "SKU {name} pool {}: quantity {} shared {}; model: quantity {} shared {}",
                        p.pool_id, p.quantity, p.shared, mp.qty, mp.shared
                    ));
                }
                // R21: the version grows with every change of the pool.
                if let Some((v, q)) = self.versions.get(&p.pool_id)
                    && (p.version < *v || (p.quantity != *q && p.version <= *v))
                {
                    return Err(format!(
                        "R21: SKU {name} pool {} went from version {v} (quantity {q}) to version {} (quantity {})",
                        p.pool_id, p.version, p.quantity
                    ));
                }
                self.versions.insert(p.pool_id, (p.version, p.quantity));
            }
            // Listings and their views.
            let views = rules::sku_views(self.region, st, NOW);
            let real_stores: BTreeSet<usize> =
                views.iter().map(|v| store_index(&v.store)).collect();
            let model_stores: BTreeSet<usize> = ms.listings.keys().copied().collect();
            if real_stores != model_stores || views.len() != st.listings.len() {
                return Err(format!(
                    "SKU {name}: listings in {:?} (views {}), model has {:?}",
                    store_names(&real_stores.iter().copied().collect::<Vec<_>>()),
                    views.len(),
                    store_names(&model_stores.iter().copied().collect::<Vec<_>>()),
                ));
            }
            for v in &views {
                let si = store_index(&v.store);
                let ml = &ms.listings[&si];
                let mp = &ms.pools[&ml.pool];
                let where_ = format!("SKU {name} in {}", STORES[si]);
                let product = ms.product.expect("a listed SKU has a product");
                if v.asin != self.fx.asins[product] {
                    return Err(format!(
                        "R1: {where_} is on ASIN {}, model: product {product}",
                        v.asin
                    ));
                }
                if v.pool_id != ml.pool {
                    return Err(format!(
                        "R6/R7: {where_} stands on pool {}, model: pool {}",
                        v.pool_id, ml.pool
                    ));
                }
                if v.quantity != mp.qty {
                    return Err(format!(
                        "R11: {where_} shows quantity {}, model: {}",
                        v.quantity, mp.qty
                    ));
                }
                let share = if mp.shared {
                    ShareMode::Existing
                } else {
                    ShareMode::Unique
                };
                if v.share != share {
                    return Err(format!(
                        "R8: {where_} shows share {}, model: {}",
                        v.share.as_str(),
                        share.as_str()
                    ));
                }
                let fulfillment = if ml.marketplace {
                    Fulfillment::Marketplace
                } else {
                    Fulfillment::Merchant
                };
                if v.fulfillment != fulfillment {
                    return Err(format!(
                        "R9: {where_} is fulfilled by {}, model: {}",
                        v.fulfillment.as_str(),
                        fulfillment.as_str()
                    ));
                }
                if mp.shared && ml.marketplace {
                    return Err(format!(
                        "R9: model error: {where_} marketplace on shared pool"
                    ));
                }
                if v.closed != ml.closed || v.start_selling_at.is_some() != ml.later {
                    return Err(format!(
                        "R14/R15: {where_} closed={} start_selling_at={:?}, model: closed={} later={}",
                        v.closed, v.start_selling_at, ml.closed, ml.later
                    ));
                }
                let reasons: BTreeSet<&str> = v.reasons.iter().map(|r| r.as_str()).collect();
                let want = ms.reasons(si);
                if reasons != want
                    || v.active != want.is_empty()
                    || reasons.len() != v.reasons.len()
                {
                    return Err(format!(
                        "R12–R15: {where_} active={} reasons={reasons:?}, model: active={} reasons={want:?}",
                        v.active,
                        want.is_empty()
                    ));
                }
                let mut pool_stores: Vec<&str> = v.pool_stores.iter().map(|s| s.as_str()).collect();
                pool_stores.sort_by_key(|s| STORES.iter().position(|x| x == s));
                let want_stores = store_names(&ms.pool_stores(ml.pool));
                if pool_stores != want_stores {
                    return Err(format!(
                        "R11: {where_} pool_stores {pool_stores:?}, model: {want_stores:?}"
                    ));
                }
            }
            // R11: every listing of a pool shows the same figures.
            for a in &views {
                for b in &views {
                    if a.pool_id == b.pool_id
                        && (a.quantity != b.quantity
                            || a.pool_version != b.pool_version
                            || a.condition != b.condition)
                    {
                        return Err(format!(
                            "R11: SKU {name} pool {}: {} shows {} (v{}), {} shows {} (v{})",
                            a.pool_id,
                            a.store,
                            a.quantity,
                            a.pool_version,
                            b.store,
                            b.quantity,
                            b.pool_version
                        ));
                    }
                }
            }
            // R20: per pool, the deltas add up; each entry's quantity_after is the sum so
            // far; a removed pool's entries add up to zero.
            let ledger = &snap.ledgers[i];
            if ledger.len() < self.ledger_len[i] {
                return Err(format!(
                    "R20: SKU {name}'s ledger shrank from {} to {} entries",
                    self.ledger_len[i],
                    ledger.len()
                ));
            }
            let mut sums: BTreeMap<i64, i64> = BTreeMap::new();
            for e in ledger {
                let sum = sums.entry(e.pool_id).or_default();
                *sum += e.delta;
                if *sum != e.quantity_after || *sum < 0 {
                    return Err(format!(
                        "R20: SKU {name} ledger entry {e:?}: the deltas so far add up to {sum}"
                    ));
                }
            }
            for (pool, sum) in &sums {
                let want = if let Some(p) = ms.pools.get(pool) {
                    p.qty
                } else if m.dead.contains(&(i, *pool)) {
                    0
                } else {
                    return Err(format!(
                        "R20: SKU {name}'s ledger names pool {pool}, which the model never gave this SKU"
                    ));
                };
                if *sum != want {
                    return Err(format!(
                        "R20: SKU {name} pool {pool}: ledger deltas add up to {sum}, the pool holds {want}"
                    ));
                }
            }
            for (pool, p) in &ms.pools {
                if p.qty != 0 && !sums.contains_key(pool) {
                    return Err(format!(
                        "R20: SKU {name} pool {pool} holds {} but has no ledger entry",
                        p.qty
                    ));
                }
            }
        }
        // The entries this step added.
        let mut fresh: Vec<&LedgerEntry> = Vec::new();
        for i in 0..2 {
            fresh.extend(snap.ledgers[i][self.ledger_len[i]..].iter());
            self.ledger_len[i] = snap.ledgers[i].len();
        }
        if fresh.len() < expect.min
            || fresh.len() > expect.max
            || fresh.iter().any(|e| Some(e.reason) != expect.reason)
        {
            return Err(format!(
                "R20: this step should add {}..={} ledger entries with reason {:?}; it added {:?}",
                expect.min,
                expect.max,
                expect.reason.map(|r| r.as_str()),
                fresh
                    .iter()
                    .map(|e| (
                        e.pool_id,
                        e.delta,
                        e.reason.as_str(),
                        e.store.as_str(),
                        e.reference.as_str()
                    ))
                    .collect::<Vec<_>>()
            ));
        }
        // R19/R20: each accepted order is in the ledger once per line, each cancel once.
        let mut counts: HashMap<(String, String, &'static str), usize> = HashMap::new();
        for e in snap.ledgers.iter().flatten() {
            if matches!(e.reason, LedgerReason::Order | LedgerReason::Cancel) {
                *counts
                    .entry((e.store.to_string(), e.reference.clone(), e.reason.as_str()))
                    .or_default() += 1;
            }
        }
        let mut expected: HashMap<(String, String, &'static str), usize> = HashMap::new();
        for ((store, id), o) in &m.orders {
            expected.insert(
                (STORES[*store].to_string(), self.order_id(*id), "order"),
                o.taken.len(),
            );
            if o.cancel_entries > 0 {
                expected.insert(
                    (STORES[*store].to_string(), self.order_id(*id), "cancel"),
                    o.cancel_entries,
                );
            }
        }
        if counts != expected {
            return Err(format!(
                "R19/R20: order and cancel entries in the ledger {counts:?}, expected {expected:?}"
            ));
        }
        // Events: numbered 1..n without gaps; a refusal adds none; a visible change adds some.
        let n = snap.events.len();
        for (k, e) in snap.events.iter().enumerate() {
            if e.seq != k as i64 + 1 {
                return Err(format!(
                    "events: seq {} at position {} (expected 1..={n} without gaps)",
                    e.seq,
                    k + 1
                ));
            }
        }
        if !accepted && n != self.events {
            return Err(format!(
                "a refused command added {} event(s)",
                n as i64 - self.events as i64
            ));
        }
        if accepted && before.skus != m.skus && n <= self.events {
            return Err(format!(
                "SPEC 4.1 (every change a seller can see is one event): this command changed {} but added no event",
                model_diff(&before.skus, &m.skus)
            ));
        }
        // What the new events say (SPEC 4.1): one quantity_changed per ledger entry of a
        // quantity change, naming the pool's stores; listing_deleted names every store
        // the SKU was listed in; a one-store listing_changed carries that listing's status.
        let sku_index = |s: &Sku| SKUS.iter().position(|x| *x == s.as_str()).unwrap_or(0);
        // A pool's removal (R16) included: its quantity goes to zero in every store.
        let mut want_qty: Vec<(String, i64, i64, i64, &'static str)> = fresh
            .iter()
            .map(|e| {
                (
                    e.sku.to_string(),
                    e.pool_id,
                    e.delta,
                    e.quantity_after,
                    e.reason.as_str(),
                )
            })
            .collect();
        let mut got_qty = Vec::new();
        for e in snap.events.get(self.events..).unwrap_or(&[]) {
            match &e.body {
                EventBody::QuantityChanged {
                    sku,
                    pool_id,
                    stores,
                    quantity,
                    delta,
                    reason,
                } => {
                    got_qty.push((
                        sku.to_string(),
                        *pool_id,
                        *delta,
                        *quantity,
                        reason.as_str(),
                    ));
                    let ms = &m.skus[sku_index(sku)];
                    if ms.pools.contains_key(pool_id) {
                        let mut got: Vec<&str> = stores.iter().map(|s| s.as_str()).collect();
                        got.sort_by_key(|s| STORES.iter().position(|x| x == s));
                        let want = store_names(&ms.pool_stores(*pool_id));
                        if got != want {
                            return Err(format!(
                                "R11: quantity_changed of SKU {sku} pool {pool_id} names stores {got:?}; the pool's stores are {want:?}"
                            ));
                        }
                    }
                }
                EventBody::ListingDeleted { sku, stores } => {
                    let mut got: Vec<usize> = stores.iter().map(store_index).collect();
                    got.sort();
                    let want: Vec<usize> = before.skus[sku_index(sku)]
                        .listings
                        .keys()
                        .copied()
                        .collect();
                    if got != want || !m.skus[sku_index(sku)].listings.is_empty() {
                        return Err(format!(
                            "R16: listing_deleted of SKU {sku} names {:?}; it was listed in {:?}",
                            store_names(&got),
                            store_names(&want)
                        ));
                    }
                }
                EventBody::ListingChanged {
                    sku,
                    stores,
                    status,
                } => {
                    if let [one] = stores.as_slice() {
                        let ms = &m.skus[sku_index(sku)];
                        let si = store_index(one);
                        if ms.listings.contains_key(&si) {
                            let want = if ms.reasons(si).is_empty() {
                                "active"
                            } else {
                                "inactive"
                            };
                            if status != want {
                                return Err(format!(
                                    "R12: listing_changed of SKU {sku} in {one} says {status:?}; the listing is {want}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        want_qty.sort();
        got_qty.sort();
        if want_qty != got_qty {
            return Err(format!(
                "events: quantity_changed events {got_qty:?} do not match this step's ledger entries {want_qty:?}"
            ));
        }
        self.events = n;
        Ok(())
    }
}

/// What changed between two model states, for messages.
fn model_diff(before: &[MSku; 2], after: &[MSku; 2]) -> String {
    let mut out = Vec::new();
    for i in 0..2 {
        for (store, code) in STORES.into_iter().enumerate() {
            let (b, a) = (
                before[i].listings.get(&store),
                after[i].listings.get(&store),
            );
            if b != a {
                out.push(format!("{}@{code}: {b:?} -> {a:?}", SKUS[i]));
            }
        }
        if before[i].pools != after[i].pools {
            out.push(format!(
                "{} pools: {:?} -> {:?}",
                SKUS[i], before[i].pools, after[i].pools
            ));
        }
    }
    out.join("; ")
}

fn summary(o: &Outcome) -> String {
    match o {
        Outcome::Listing {
            created,
            affected_stores,
            ..
        } => format!(
            "ok ({}affected {:?})",
            if *created { "created, " } else { "" },
            affected_stores
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
        ),
        Outcome::Order { replay, record } => format!(
            "ok ({}{})",
            if *replay { "replay, " } else { "" },
            record
                .results
                .iter()
                .map(|r| format!("{}: pool {} -> {}", r.sku, r.pool_id, r.quantity_after))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Outcome::Cancelled { .. } => "ok (cancelled)".into(),
        Outcome::Deleted { deleted_stores, .. } => format!(
            "ok (deleted {:?})",
            deleted_stores
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
        ),
        other => format!("ok {other:?}"),
    }
}

fn outcome_or_err(r: &Result<Outcome, DomainError>) -> String {
    match r {
        Ok(o) => summary(o),
        Err(e) => format!("refused {} ({})", e.code, e.message),
    }
}

fn run_case(db: &Database, region: &Region, ops: &[Op]) -> Result<(), String> {
    let fx = setup(db, region)?;
    let mut case = Case {
        db,
        region,
        fx,
        model: Model::default(),
        sent_orders: Vec::new(),
        first_answers: HashMap::new(),
        versions: HashMap::new(),
        events: 0,
        ledger_len: [0, 0],
        trace: Vec::new(),
    };
    // Setup makes no seller events.
    case.events = case.snapshot()?.events.len();
    for (i, op) in live_ops(ops).into_iter().enumerate() {
        if let Err(why) = case.step(op) {
            let trace: String = case
                .trace
                .iter()
                .enumerate()
                .map(|(k, t)| format!("  {k:>2}: {t}\n"))
                .collect();
            return Err(format!(
                "step {i} ({op}) failed:\n  {why}\nsteps run:\n{trace}"
            ));
        }
    }
    Ok(())
}

fn run_property(db: &Database, cases: u32, label: &str) {
    let region = Region::north_america();
    // PROPTEST_CASES, where set, runs more (or fewer) cases.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 1024,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&ops_strategy(), |ops| {
        run_case(db, &region, &ops).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => {
            let table: String = STATS.with(|s| {
                s.borrow()
                    .iter()
                    .map(|(k, n)| format!("  {n:>5}  {k}\n"))
                    .collect()
            });
            eprintln!(
                "{label}: {cases} cases passed in {:.1}s; answers, shrinking included:\n{table}",
                started.elapsed().as_secs_f64()
            )
        }
        Err(TestError::Fail(why, ops)) => panic!(
            "{label}: the model and the rules disagree.\nminimal sequence ({} ops):\n{}{why}",
            live_ops(&ops).len(),
            show_ops(&ops)
        ),
        Err(e) => panic!("{label}: {e}"),
    }
}

#[test]
fn upc_check_digits() {
    assert_eq!(upc(3_600_029_145), "036000291452");
    assert_eq!(upc(1_200_016_115), "012000161155");
}

#[test]
fn rules_follow_the_model_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("model.db").display());
    let db = Database::open(&url).expect("open the SQLite database");
    run_property(&db, 48, "sqlite");
}

/// Drops the throwaway PostgreSQL database, whatever happens.
struct PgGuard {
    admin: String,
    url: String,
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        if let Err(e) = onestock_store::postgres::drop_database(&self.admin, &self.url) {
            eprintln!("could not drop {}: {e}", self.url);
        }
    }
}

#[test]
fn rules_follow_the_model_on_postgres() {
    let Ok(admin) = std::env::var(POSTGRES_ENV) else {
        eprintln!("skipped: {POSTGRES_ENV} is not set");
        return;
    };
    let url = onestock_store::postgres::create_test_database(&admin)
        .expect("create a throwaway PostgreSQL database");
    let guard = PgGuard { admin, url };
    {
        let db = Database::open(&guard.url).expect("open the PostgreSQL database");
        run_property(&db, 16, "postgres");
    }
    drop(guard);
}
