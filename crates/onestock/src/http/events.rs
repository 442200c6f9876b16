//! The seller's event feed, with long polling: a request with `wait` is answered as soon
//! as an event arrives, or empty when the wait is over.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use onestock_core::model::Event;
use serde::Deserialize;
use tokio::time::Instant;

use super::error::{ApiError, ApiResult};
use super::extract::{QueryParams, Seller};
use super::render;
use super::schema;
use crate::server::AppState;

/// Events answered per call at most; a client continues from `last_seq`.
const EVENTS_PER_CALL_MAX: usize = 500;
/// Longest wait a client may ask for, in seconds; longer asks are shortened.
const WAIT_SECONDS_MAX: f64 = 60.0;
/// How often a waiting request reads again even without a local commit: another
/// process on the same PostgreSQL database may have written.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
pub struct EventsQuery {
    after: Option<String>,
    wait: Option<String>,
}

/// `after`: a whole number, 0 or more.
pub fn parse_after(raw: Option<&str>) -> ApiResult<i64> {
    match raw {
        None => Ok(0),
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    "after",
                    format!("after is the seq of the last event you have, 0 or more; got {raw:?}."),
                )
            }),
    }
}

/// `wait`: seconds, 0 or more, shortened to 60.
pub fn parse_wait(raw: Option<&str>) -> ApiResult<Duration> {
    match raw {
        None => Ok(Duration::ZERO),
        Some(raw) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(WAIT_SECONDS_MAX)))
            .ok_or_else(|| {
                ApiError::invalid(
                    "wait",
                    format!("wait is a number of seconds from 0 to 60; got {raw:?}."),
                )
            }),
    }
}

/// The seller's events after a sequence number, oldest first; with `wait`, the answer
/// comes as soon as an event does (long polling).
///
/// Who: seller.
#[utoipa::path(get, path = "/v1/events", operation_id = "listEvents", tag = "seller",
    params(
        ("after" = Option<i64>, Query, minimum = 0, description = "The last seq already seen (0 for all)."),
        ("wait" = Option<f64>, Query, minimum = 0, description = "Seconds to wait for news when there is none (at most 60; longer asks are shortened)."),
    ),
    responses((status = 200, description = "Events, oldest first", body = schema::EventsAnswer)))]
pub async fn list(
    State(state): State<AppState>,
    Seller(seller): Seller,
    QueryParams(q): QueryParams<EventsQuery>,
) -> ApiResult<Json<schema::EventsAnswer>> {
    let after = parse_after(q.after.as_deref())?;
    let wait = parse_wait(q.wait.as_deref())?;
    let deadline = Instant::now() + wait;
    // Subscribed before the first read, so a commit between the read and the wait
    // still wakes us.
    let mut changes = state.service.event_changes();
    // A stopping server answers waits at once, so the stop does not wait for them.
    let mut stopping = state.service.stopping();
    loop {
        let s = seller.clone();
        let (events, last_seq): (Vec<Event>, i64) = state
            .service
            .read(move |tx, _| {
                let events = tx.events_after(&s, after, EVENTS_PER_CALL_MAX)?;
                let last = match events.last() {
                    Some(e) => e.seq,
                    None => tx.last_event_seq(&s)?,
                };
                Ok((events, last))
            })
            .await?;
        let now = Instant::now();
        if !events.is_empty() || now >= deadline || *stopping.borrow() {
            return Ok(Json(schema::EventsAnswer {
                events: events.iter().map(render::event).collect(),
                last_seq,
            }));
        }
        let until = deadline.min(now + POLL_INTERVAL);
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    // The service is going away: wait out the interval instead of spinning.
                    tokio::time::sleep_until(until).await;
                }
            }
            _ = tokio::time::sleep_until(until) => {}
            _ = async { let _ = stopping.wait_for(|s| *s).await; } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values() {
        assert_eq!(parse_after(None).ok(), Some(0));
        assert_eq!(parse_after(Some("12")).ok(), Some(12));
        assert!(parse_after(Some("-1")).is_err());
        assert!(parse_after(Some("x")).is_err());
        assert_eq!(parse_wait(None).ok(), Some(Duration::ZERO));
        assert_eq!(parse_wait(Some("600")).ok(), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_wait(Some("1.5")).ok(),
            Some(Duration::from_millis(1500))
        );
        assert!(parse_wait(Some("-1")).is_err());
        assert!(parse_wait(Some("soon")).is_err());
        assert!(parse_wait(Some("NaN")).is_err());
    }
}
