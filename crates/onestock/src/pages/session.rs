//! Sessions of the pages: sign-in with a seller token, a cookie whose value the server
//! keeps only as a SHA-256 digest, 12 idle hours, sign-out, and the anti-forgery token
//! every changing form carries.
//!
//! Sessions live in this process's memory: they end when the server restarts (the seller
//! signs in again). On several processes behind one address a session is known only to
//! the process that made it; put a sticky balancer in front, or sign in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use onestock_core::error::ErrorCode;
use onestock_core::types::SellerId;
use serde::Deserialize;

use super::Pages;
use super::error::PageError;
use super::forms::PageForm;
use super::layout;
use crate::service::{Principal, new_token, token_digest};

/// The cookie that carries the session.
pub const SESSION_COOKIE: &str = "onestock_session";
/// A session ends after this long without a request (SPEC 7: 12 idle hours).
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most. Each costs a few hundred bytes, so this bounds the memory at a
/// few megabytes whatever the number of sign-ins; when full, the session idle longest is
/// ended to make room (its seller signs in again).
pub const SESSIONS_MAX: usize = 10_000;
/// Longest seller token the sign-in form takes: tokens are about 70 characters; longer
/// text is not a token and is not hashed.
const TOKEN_CHARS_MAX: usize = 512;
/// Longest message kept for the next page (a refusal's message is a sentence or two).
const FLASH_CHARS_MAX: usize = 2_000;

/// A message for the next page a seller sees, after a form was sent.
#[derive(Clone, Debug)]
pub struct Flash {
    pub ok: bool,
    /// The code of a refusal (`VERSION_MISMATCH`), shown with the message.
    pub code: Option<String>,
    pub text: String,
    /// Where on the page it belongs (a row's key), or the top of the page.
    pub target: Option<String>,
}

struct Entry {
    seller: SellerId,
    seller_name: String,
    csrf: String,
    last_seen: Instant,
    /// The store switcher's choice: a store code, or `all`.
    store: Option<String>,
    flash: Option<Flash>,
}

/// The sessions of this process, by the SHA-256 of their cookie value.
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

/// The signed-in seller of a request.
#[derive(Clone, Debug)]
pub struct Session {
    digest: String,
    pub seller: SellerId,
    pub seller_name: String,
    pub csrf: String,
    pub store: Option<String>,
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session; returns the cookie value (never stored) and the session.
    fn create(&self, seller: SellerId, seller_name: String) -> String {
        let value = new_token("ses");
        let digest = token_digest(&value);
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, e| now.duration_since(e.last_seen) < SESSION_IDLE);
        if map.len() >= SESSIONS_MAX
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            digest,
            Entry {
                seller,
                seller_name,
                csrf: new_token("csrf"),
                last_seen: now,
                store: None,
                flash: None,
            },
        );
        value
    }

    /// The live session of this cookie value; touching it restarts its idle time.
    fn lookup(&self, value: &str) -> Option<Session> {
        let digest = token_digest(value);
        let now = Instant::now();
        let mut map = self.lock();
        let expired = map
            .get(&digest)
            .is_some_and(|e| now.duration_since(e.last_seen) >= SESSION_IDLE);
        if expired {
            map.remove(&digest);
            return None;
        }
        let e = map.get_mut(&digest)?;
        e.last_seen = now;
        Some(Session {
            seller: e.seller.clone(),
            seller_name: e.seller_name.clone(),
            csrf: e.csrf.clone(),
            store: e.store.clone(),
            digest,
        })
    }

    fn end(&self, digest: &str) {
        self.lock().remove(digest);
    }

    pub fn set_store(&self, session: &Session, store: &str) {
        if let Some(e) = self.lock().get_mut(&session.digest) {
            e.store = Some(store.to_owned());
        }
    }

    pub fn set_flash(&self, session: &Session, mut flash: Flash) {
        if flash.text.chars().count() > FLASH_CHARS_MAX {
            flash.text = flash.text.chars().take(FLASH_CHARS_MAX).collect();
        }
        if let Some(e) = self.lock().get_mut(&session.digest) {
            e.flash = Some(flash);
        }
    }

    pub fn take_flash(&self, session: &Session) -> Option<Flash> {
        self.lock()
            .get_mut(&session.digest)
            .and_then(|e| e.flash.take())
    }
}

impl Session {
    /// Refuses (403, changing nothing) a form whose anti-forgery token is not this
    /// session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), PageError> {
        use subtle::ConstantTimeEq;
        let ok = given.len() == self.csrf.len()
            && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden.as_str(),
                "This form's anti-forgery token is missing or out of date, so nothing was changed. Go back, reload the page and send the form again.",
            ))
        }
    }
}

/// The session cookie's value in the request, if any.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// True when the request reached us over TLS, directly or through a proxy that says so.
fn over_tls(parts_headers: &HeaderMap, scheme: Option<&str>) -> bool {
    if scheme == Some("https") {
        return true;
    }
    let forwarded_https = parts_headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        });
    let forwarded = parts_headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_https || forwarded
}

/// True when the browser says the form was sent from another site (`Sec-Fetch-Site`,
/// or an `Origin` whose host is not this request's `Host`). Sign-in has no session,
/// so no anti-forgery token yet: this is its guard.
fn cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    // Behind a proxy the browser's host may arrive as X-Forwarded-Host.
    let hosts: Vec<&str> = ["host", "x-forwarded-host"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let origin_elsewhere = headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .is_some_and(|o| {
            let origin_host = o.split_once("://").map(|(_, h)| h).unwrap_or(o);
            !hosts.iter().any(|h| origin_host.eq_ignore_ascii_case(h))
        });
    fetch_site || origin_elsewhere
}

fn cookie_header(value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // The value is hex and the rest ASCII: always a valid header.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

impl FromRequestParts<Pages> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, pages: &Pages) -> Result<Session, PageError> {
        cookie_value(&parts.headers)
            .and_then(|v| pages.sessions.lookup(&v))
            .ok_or(PageError::SignIn)
    }
}

/// The session of a request, for pages that also answer without one (`/`).
pub fn current(pages: &Pages, headers: &HeaderMap) -> Option<Session> {
    cookie_value(headers).and_then(|v| pages.sessions.lookup(&v))
}

/// The sign-in page: a "Seller token" field and a "Sign in" button.
pub fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        section.card.sign-in {
            h1 { "Sign in" }
            p.muted { "Sign in to Seller Central with the seller token the marketplace gave you." }
            form method="post" action="/sign-in" {
                div.field {
                    label for="token" { "Seller token" }
                    input #token type="password" name="token" autocomplete="off" required
                        aria-invalid=[error.map(|_| "true")];
                    @if let Some(e) = error {
                        p.field-error role="alert" { (e) }
                    }
                }
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    (status, layout::bare("Sign in", body)).into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
}

/// `POST /sign-in`
pub async fn sign_in(
    State(pages): State<Pages>,
    headers: HeaderMap,
    PageForm(form): PageForm<SignInForm>,
) -> Result<Response, PageError> {
    if cross_site(&headers) {
        // Login forgery: another site signing this browser in to its own account.
        return Ok(sign_in_page(
            StatusCode::FORBIDDEN,
            Some(
                "FORBIDDEN: this sign-in came from another site. Open this page and sign in here.",
            ),
        ));
    }
    let token = form.token.trim();
    if token.is_empty() || token.chars().count() > TOKEN_CHARS_MAX || token.contains(' ') {
        return Ok(sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some("UNAUTHENTICATED: enter the seller token you were given (it has no spaces)."),
        ));
    }
    let seller = match pages.app.service.authenticate(token).await {
        Ok(Principal::Seller(id)) => id,
        Ok(Principal::Operator) => {
            return Ok(sign_in_page(
                StatusCode::FORBIDDEN,
                Some(
                    "FORBIDDEN: this is the operator's token; the pages are for sellers. Sign in with a seller token.",
                ),
            ));
        }
        Err(e) if e.code() == ErrorCode::Unauthenticated => {
            return Ok(sign_in_page(
                StatusCode::UNAUTHORIZED,
                Some("UNAUTHENTICATED: this seller token is not known. Check it and try again."),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let digest = token_digest(token);
    let name = pages
        .app
        .service
        .read(move |tx, _| tx.seller_by_token(&digest))
        .await?
        .map(|s| s.name)
        .unwrap_or_else(|| seller.to_string());
    let value = pages.sessions.create(seller, name);
    let secure = over_tls(&headers, None);
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        // No Max-Age: the browser keeps it until it closes; the server ends it after
        // 12 idle hours (an expiry in the cookie would end an active session too).
        cookie_header(&value, None, secure),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`: ends the session (a button in a form with the anti-forgery token).
pub async fn sign_out(
    State(pages): State<Pages>,
    session: Session,
    headers: HeaderMap,
    PageForm(form): PageForm<SignOutForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    pages.sessions.end(&session.digest);
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        cookie_header("", Some(0), over_tls(&headers, None)),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::new();
        let v = s.create(SellerId("sel_1".into()), "A".into());
        let found = s.lookup(&v).expect("live");
        assert_eq!(found.seller.as_str(), "sel_1");
        assert!(s.lookup("ses_other").is_none());
        // The value itself is not a key: only its digest is.
        assert!(!s.lock().contains_key(&v));
        s.lock()
            .values_mut()
            .for_each(|e| e.last_seen = Instant::now() - SESSION_IDLE);
        assert!(s.lookup(&v).is_none());
        let v2 = s.create(SellerId("sel_2".into()), "B".into());
        let found = s.lookup(&v2).expect("live");
        s.end(&found.digest);
        assert!(s.lookup(&v2).is_none());
    }

    #[test]
    fn csrf_is_checked() {
        let s = Sessions::new();
        let v = s.create(SellerId("sel_1".into()), "A".into());
        let session = s.lookup(&v).expect("live");
        assert!(session.check_csrf(&session.csrf.clone()).is_ok());
        assert!(session.check_csrf("").is_err());
        assert!(session.check_csrf("csrf_wrong").is_err());
    }

    #[test]
    fn cookie_flags() {
        let c = cookie_header("abc", Some(10), true);
        let c = c.to_str().unwrap_or_default();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_tls(&h, None));
        assert!(!over_tls(&HeaderMap::new(), None));
    }
}
