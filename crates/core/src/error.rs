//! The error codes of SPEC.md section 4.2, in one table shared by every door (HTTP
//! answers, upload reports, the command line).

use std::fmt;

/// Every code a user can be answered with. The HTTP status of each lives with the HTTP
/// door; the code itself is part of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidIdentifier,
    InvalidPrice,
    InvalidQuantity,
    LanguageNotSupported,
    LanguageMismatch,
    PriceRequired,
    CurrencyMismatch,
    SharedFieldNotEditable,
    UnknownStore,
    Unauthenticated,
    Forbidden,
    NotFound,
    SkuAsinMismatch,
    AsinNotInStore,
    PossibleMatch,
    /// R3: a cross-store match whose product information differs.
    ProductDataConflict,
    SharingNotAvailable,
    SharingModeImmutable,
    FulfillmentCannotShare,
    RestrictedInStore,
    ListingNotBuyable,
    InsufficientStock,
    OrderIdReused,
    VersionMismatch,
    PayloadTooLarge,
    RateLimited,
    /// Upload reports only, record 0.
    UnknownColumn,
    /// Not a user's fault; never carries details to the client.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "INVALID_REQUEST",
            InvalidIdentifier => "INVALID_IDENTIFIER",
            InvalidPrice => "INVALID_PRICE",
            InvalidQuantity => "INVALID_QUANTITY",
            LanguageNotSupported => "LANGUAGE_NOT_SUPPORTED",
            LanguageMismatch => "LANGUAGE_MISMATCH",
            PriceRequired => "PRICE_REQUIRED",
            CurrencyMismatch => "CURRENCY_MISMATCH",
            SharedFieldNotEditable => "SHARED_FIELD_NOT_EDITABLE",
            UnknownStore => "UNKNOWN_STORE",
            Unauthenticated => "UNAUTHENTICATED",
            Forbidden => "FORBIDDEN",
            NotFound => "NOT_FOUND",
            SkuAsinMismatch => "SKU_ASIN_MISMATCH",
            AsinNotInStore => "ASIN_NOT_IN_STORE",
            PossibleMatch => "POSSIBLE_MATCH",
            ProductDataConflict => "PRODUCT_DATA_CONFLICT",
            SharingNotAvailable => "SHARING_NOT_AVAILABLE",
            SharingModeImmutable => "SHARING_MODE_IMMUTABLE",
            FulfillmentCannotShare => "FULFILLMENT_CANNOT_SHARE",
            RestrictedInStore => "RESTRICTED_IN_STORE",
            ListingNotBuyable => "LISTING_NOT_BUYABLE",
            InsufficientStock => "INSUFFICIENT_STOCK",
            OrderIdReused => "ORDER_ID_REUSED",
            VersionMismatch => "VERSION_MISMATCH",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RateLimited => "RATE_LIMITED",
            UnknownColumn => "UNKNOWN_COLUMN",
            Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A page that R3 found too close to a new product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub asin: String,
    pub store: String,
    pub title: String,
}

/// A rule broken by a request: its code, a message that says what to do, and the
/// field at fault where there is one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Only for `POSSIBLE_MATCH` and `PRODUCT_DATA_CONFLICT`.
    pub matches: Vec<Match>,
}

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> DomainError {
        DomainError {
            code,
            message: message.into(),
            field: None,
            matches: Vec::new(),
        }
    }
    pub fn field(mut self, field: impl Into<String>) -> DomainError {
        self.field = Some(field.into());
        self
    }
    pub fn not_found(what: impl Into<String>) -> DomainError {
        DomainError::new(ErrorCode::NotFound, what)
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> DomainError {
        DomainError::new(ErrorCode::InvalidRequest, message).field(field)
    }
}
