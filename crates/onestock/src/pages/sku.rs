//! A SKU's page: every store listing with its status, price and pool, "List in another
//! store", the row actions, the ledger with a chart of the quantity over time drawn by
//! the server, and the quantity kept current without a reload (a long poll of the
//! seller's events, as `GET /v1/events?wait=` does).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use onestock_core::error::DomainError;
use onestock_core::model::{EventBody, LedgerEntry};
use onestock_core::region::Region;
use onestock_core::rules::{self, ListingView};
use onestock_core::types::{Sku, format_price};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::Pages;
use super::error::PageError;
use super::forms::{self, PageQuery, enc};
use super::inventory::{edit_cells, row_actions, row_key, row_message, store_name};
use super::layout::{self, Chrome, Section};
use super::session::Session;
use super::words;

/// How long one live request waits for news: well under the usual proxy timeouts.
const LIVE_WAIT: Duration = Duration::from_secs(25);
/// How often a waiting request reads again without a local commit: another process
/// on the same PostgreSQL database may have written (as the API's long poll).
const LIVE_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Events read per look while waiting.
const LIVE_EVENTS_PER_READ: usize = 500;
/// Ledger entries shown in the table, newest first (the chart draws more).
const LEDGER_ROWS_MAX: usize = 200;
/// Ledger entries the chart draws at most (the newest ones).
const CHART_POINTS_MAX: usize = 2_000;

const CHART_W: f64 = 760.0;
const CHART_H: f64 = 220.0;
const CHART_PAD_L: f64 = 48.0;
const CHART_PAD_R: f64 = 16.0;
const CHART_PAD_T: f64 = 14.0;
const CHART_PAD_B: f64 = 30.0;
/// Line colours of the chart's pools, in turn.
const CHART_COLOURS: [&str; 4] = ["#146eb4", "#e47911", "#067d62", "#8e44ad"];

#[derive(Deserialize)]
pub struct SkuQuery {
    #[serde(default)]
    sku: String,
}

struct SkuData {
    views: Vec<ListingView>,
    ledger: Vec<LedgerEntry>,
    title: Option<String>,
    last_seq: i64,
}

/// `GET /sku?sku=`
pub async fn page(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<SkuQuery>,
) -> Result<Response, PageError> {
    let sku = forms::sku(q.sku.trim())?;
    let (seller, s) = (session.seller.clone(), sku.clone());
    let data = pages
        .app
        .service
        .read(move |tx, ctx| {
            let state = tx.load_sku(&seller, &s)?;
            let views = rules::sku_views(ctx.region, &state, ctx.now);
            let title = match views.first() {
                Some(v) => tx.page(&v.asin, &v.store)?.map(|p| p.title),
                None => None,
            };
            // The newest entries only: the page's memory stays bounded however long
            // the ledger grows (the API's ledger streams all of it).
            let ledger = tx.ledger_newest(&seller, &s, CHART_POINTS_MAX + 1)?;
            let last_seq = tx.last_event_seq(&seller)?;
            Ok(SkuData {
                views,
                ledger,
                title,
                last_seq,
            })
        })
        .await?;
    if data.views.is_empty() && data.ledger.is_empty() {
        return Err(DomainError::not_found(format!("You have no listing of SKU {sku}.")).into());
    }
    let region = pages.app.service.region();
    let mut flash = pages.sessions.take_flash(&session);
    if let Some(f) = flash.as_mut()
        && let Some(t) = &f.target
        && !data.views.iter().any(|v| &row_key(&v.sku, &v.store) == t)
    {
        f.target = None;
    }
    let here = format!("/sku?sku={}", enc(sku.as_str()));
    let asin = data.views.first().map(|v| v.asin.clone());
    let missing: Vec<_> = region
        .stores
        .iter()
        .filter(|s| !data.views.iter().any(|v| v.store == s.code))
        .collect();
    let body = html! {
        h1 { "SKU " (sku.as_str()) }
        @if let Some(t) = &data.title { p.muted { (t) @if let Some(a) = &asin { " · ASIN " (a.as_str()) } } }
        div #live data-sku=(sku.as_str()) data-after=(data.last_seq) {
            @if !data.views.is_empty() {
                p.muted { span.live-dot {} "Quantities update here as they change in any store. " span #live-note {} }
            }
        }
        @if data.views.is_empty() {
            div.card { p { "This SKU has no listing now (it was deleted). Its history stays below." } }
        } @else {
            h2 { "Store listings" }
            table.listings {
                thead { tr {
                    th { "Store" } th { "Status" } th.num { "Quantity" } th { "Price" } th { "Condition" }
                    th { "Pool" } th { "Stores sharing" } th { "Fulfillment" } th { "Start selling date" }
                    th { "Change quantity and price" } th { "Actions" }
                } }
                tbody {
                    @for (i, v) in data.views.iter().enumerate() {
                        @let form_id = format!("sku-edit-{i}");
                        @let cells = edit_cells(&session, v, &form_id, &here);
                        @let key = row_key(&v.sku, &v.store);
                        tr data-store=(v.store.as_str()) {
                            td { (store_name(region, &v.store)) }
                            td class=(if v.active { "status-active" } else { "status-inactive" }) data-status-store=(v.store.as_str()) { (words::status(v)) }
                            td.num { strong data-qty-store=(v.store.as_str()) { (v.quantity) } }
                            td { (format_price(&v.price)) " " (v.currency) }
                            td { (words::condition(v.condition)) }
                            td { "Pool " (v.pool_id) div.muted { (words::sharing(v)) } }
                            td { (words::codes(&v.pool_stores)) }
                            td { (words::fulfillment(v.fulfillment)) }
                            td { @match v.start_selling_at { Some(t) => (words::date(t)), None => span.muted { "—" } } }
                            td { div.edit-cell { (cells.quantity) (cells.price) (cells.form) } (row_message(flash.as_ref(), &key, &form_id)) }
                            td { (row_actions(&session, v, &here)) }
                        }
                    }
                }
            }
            @if let Some(a) = &asin {
                @if !missing.is_empty() {
                    p.list-elsewhere {
                        @for s in &missing {
                            a.button href={ "/add-product/offer?asin=" (a.as_str()) "&store=" (s.code.as_str()) "&sku=" (enc(sku.as_str())) } {
                                "List in another store: " (s.name)
                            }
                            " "
                        }
                    }
                }
            }
        }
        h2 { "Quantity over time" }
        (chart(region, &data.ledger))
        h2 { "Ledger" }
        @if data.ledger.is_empty() {
            p.muted { "No change of quantity yet." }
        } @else {
            table.ledger {
                thead { tr { th { "Time" } th { "Store" } th { "Reason" } th.num { "Change" } th.num { "Quantity after" } th { "Reference" } } }
                tbody {
                    @for e in data.ledger.iter().rev().take(LEDGER_ROWS_MAX) {
                        tr {
                            td { (words::time(e.at)) }
                            td { (e.store.as_str()) }
                            td { (words::ledger_reason(e.reason)) }
                            td.num { @if e.delta > 0 { "+" } (e.delta) }
                            td.num { (e.quantity_after) }
                            td { @if e.reference.is_empty() { span.muted { "—" } } @else { (e.reference) } }
                        }
                    }
                }
            }
            @if data.ledger.len() > CHART_POINTS_MAX {
                p.muted { "The newest " (LEDGER_ROWS_MAX) " of more than " (CHART_POINTS_MAX) " changes; the API's ledger has them all." }
            } @else if data.ledger.len() > LEDGER_ROWS_MAX {
                p.muted { "The newest " (LEDGER_ROWS_MAX) " of " (data.ledger.len()) " changes; the API's ledger has them all." }
            }
        }
    };
    let chrome = Chrome {
        pages: &pages,
        session: &session,
        section: Section::Inventory,
        store: layout::choose_store(&pages, &session, None),
        path: "/",
        all_stores: true,
        flash: flash.clone().filter(|f| f.target.is_none()),
    };
    Ok(layout::page(&format!("SKU {sku}"), chrome, body).into_response())
}

/// The quantity of each pool over time, as steps, in an SVG drawn here.
fn chart(region: &Region, ledger: &[LedgerEntry]) -> Markup {
    let entries = &ledger[ledger.len().saturating_sub(CHART_POINTS_MAX)..];
    if entries.is_empty() {
        return html! { p.muted { "Nothing to draw yet." } };
    }
    let mut pools: Vec<i64> = Vec::new();
    for e in entries {
        if !pools.contains(&e.pool_id) {
            pools.push(e.pool_id);
        }
    }
    let t0 = entries.first().map(|e| e.at.unix_timestamp()).unwrap_or(0);
    let t1 = entries.last().map(|e| e.at.unix_timestamp()).unwrap_or(0);
    let q_max = entries
        .iter()
        .map(|e| e.quantity_after)
        .max()
        .unwrap_or(0)
        .max(1);
    let n = entries.len();
    let plot_w = CHART_W - CHART_PAD_L - CHART_PAD_R;
    let plot_h = CHART_H - CHART_PAD_T - CHART_PAD_B;
    // By time when the entries span time, else one step per entry.
    let x_of = |i: usize, e: &LedgerEntry| -> f64 {
        let f = if t1 > t0 {
            (e.at.unix_timestamp() - t0) as f64 / (t1 - t0) as f64
        } else if n > 1 {
            i as f64 / (n - 1) as f64
        } else {
            0.5
        };
        CHART_PAD_L + f * plot_w
    };
    let y_of = |q: i64| CHART_PAD_T + plot_h - (q as f64 / q_max as f64) * plot_h;
    let mut lines = String::new();
    for (k, pool) in pools.iter().enumerate() {
        let colour = CHART_COLOURS[k % CHART_COLOURS.len()];
        let mut d = String::new();
        let mut last_y: Option<f64> = None;
        for (i, e) in entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.pool_id == *pool)
        {
            let (x, y) = (x_of(i, e), y_of(e.quantity_after));
            match last_y {
                None => d.push_str(&format!("M{x:.1},{y:.1}")),
                Some(ly) => d.push_str(&format!(" L{x:.1},{ly:.1} L{x:.1},{y:.1}")),
            }
            last_y = Some(y);
        }
        if let Some(ly) = last_y {
            d.push_str(&format!(" L{:.1},{ly:.1}", CHART_PAD_L + plot_w));
        }
        lines.push_str(&format!(
            r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        ));
        for (i, e) in entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.pool_id == *pool)
        {
            lines.push_str(&format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{} {}: {}</title></circle>"#,
                x_of(i, e),
                y_of(e.quantity_after),
                maud::html! { (words::time(e.at)) }.into_string(),
                e.store.as_str(),
                e.quantity_after
            ));
        }
    }
    let pool_stores = |pool: i64| -> String {
        let mut stores: Vec<_> = entries
            .iter()
            .filter(|e| e.pool_id == pool)
            .map(|e| e.store.clone())
            .collect();
        stores.sort_by_key(|s| region.store_index(s));
        stores.dedup();
        words::codes(&stores)
    };
    let first = entries
        .first()
        .map(|e| words::time(e.at))
        .unwrap_or_default();
    let last = entries
        .last()
        .map(|e| words::time(e.at))
        .unwrap_or_default();
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" width=(CHART_W) height=(CHART_H)
            viewBox={ "0 0 " (CHART_W) " " (CHART_H) } role="img" aria-label="Quantity over time" {
            line x1=(CHART_PAD_L) y1=(CHART_PAD_T + plot_h) x2=(CHART_PAD_L + plot_w) y2=(CHART_PAD_T + plot_h) stroke="#999" {}
            line x1=(CHART_PAD_L) y1=(CHART_PAD_T) x2=(CHART_PAD_L) y2=(CHART_PAD_T + plot_h) stroke="#999" {}
            line x1=(CHART_PAD_L) y1=(CHART_PAD_T) x2=(CHART_PAD_L + plot_w) y2=(CHART_PAD_T) stroke="#eee" {}
            text x=(CHART_PAD_L - 6.0) y=(CHART_PAD_T + 4.0) text-anchor="end" { (q_max) }
            text x=(CHART_PAD_L - 6.0) y=(CHART_PAD_T + plot_h + 4.0) text-anchor="end" { "0" }
            text x=(CHART_PAD_L) y=(CHART_H - 8.0) { (first) }
            text x=(CHART_PAD_L + plot_w) y=(CHART_H - 8.0) text-anchor="end" { (last) }
            (PreEscaped(lines))
        }
        p.legend {
            @for (k, pool) in pools.iter().enumerate() {
                span { span class={ "swatch c" (k % CHART_COLOURS.len()) } {} "Pool " (pool) " (" (pool_stores(*pool)) ")" }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    sku: String,
    #[serde(default)]
    after: String,
}

fn live_answer(sku: &Sku, views: &[ListingView], last_seq: i64, changed: bool) -> Response {
    let _ = sku;
    Json(json!({
        "last_seq": last_seq,
        "changed": changed,
        "gone": views.is_empty(),
        "listings": views.iter().map(|v| json!({
            "store": v.store.as_str(),
            "quantity": v.quantity,
            "status": words::status(v),
            "active": v.active,
            "pool_version": v.pool_version,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

fn concerns(body: &EventBody, sku: &Sku) -> bool {
    match body {
        EventBody::QuantityChanged { sku: s, .. }
        | EventBody::ListingChanged { sku: s, .. }
        | EventBody::ListingDeleted { sku: s, .. } => s == sku,
    }
}

/// `GET /sku/live?sku=&after=`: waits up to 25 s for an event of this SKU after `after`,
/// then answers the SKU's current figures (for the page's script).
pub async fn live(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<LiveQuery>,
) -> Result<Response, PageError> {
    let sku = forms::sku(q.sku.trim())?;
    let mut after: i64 = q.after.trim().parse().unwrap_or(0).max(0);
    let deadline = Instant::now() + LIVE_WAIT;
    let mut changes = pages.app.service.event_changes();
    // A SKU this seller has no listing of (deleted, another seller's, never listed):
    // nothing to follow, answered at once.
    let (seller, s) = (session.seller.clone(), sku.clone());
    let listed = pages
        .app
        .service
        .read(move |tx, _| Ok(!tx.load_sku(&seller, &s)?.listings.is_empty()))
        .await?;
    if !listed {
        return Ok(live_answer(&sku, &[], after, false));
    }
    loop {
        let (seller, s) = (session.seller.clone(), sku.clone());
        let (relevant, last, views) = pages
            .app
            .service
            .read(move |tx, ctx| {
                let events = tx.events_after(&seller, after, LIVE_EVENTS_PER_READ)?;
                let last = match events.last() {
                    Some(e) => e.seq,
                    None => tx.last_event_seq(&seller)?.max(after),
                };
                let relevant = events.iter().any(|e| concerns(&e.body, &s));
                let views = if relevant {
                    let state = tx.load_sku(&seller, &s)?;
                    rules::sku_views(ctx.region, &state, ctx.now)
                } else {
                    Vec::new()
                };
                Ok((relevant, last, views))
            })
            .await?;
        after = last;
        if relevant {
            return Ok(live_answer(&sku, &views, after, true));
        }
        let now = Instant::now();
        if now >= deadline {
            let (seller, s) = (session.seller.clone(), sku.clone());
            let views = pages
                .app
                .service
                .read(move |tx, ctx| {
                    let state = tx.load_sku(&seller, &s)?;
                    Ok(rules::sku_views(ctx.region, &state, ctx.now))
                })
                .await?;
            return Ok(live_answer(&sku, &views, after, false));
        }
        let until = deadline.min(now + LIVE_POLL_INTERVAL);
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    tokio::time::sleep_until(until).await;
                }
            }
            _ = tokio::time::sleep_until(until) => {}
        }
    }
}
