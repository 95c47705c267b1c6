//! The one error type of the HTTP API.
//!
//! Every failure becomes `{"error": "<kind>", "message": "<what to fix>"}`
//! with a fitting status. Internal details (SQL, paths, panics) are logged,
//! never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the resource's state (ending an ended event).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    MisdirectedRequest(String),
    /// Too many costly queries at once: 503 with `Retry-After`.
    #[error("{0}")]
    Busy(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable kind, e.g. `not_found`, `invalid_request`.
    pub error: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::MisdirectedRequest(_) => (StatusCode::MISDIRECTED_REQUEST, "misdirected_request"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = self.status_and_kind();
        let busy = matches!(self, ApiError::Busy(_));
        let mut response = (status, Json(ErrorBody { error, message: self.to_string() })).into_response();
        if busy {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"lookout\""),
            );
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        use shared::store::StoreError;
        match e {
            // What the request asked for, not a failure of the database.
            DbError::Store(StoreError::NoSuchEvent(id)) => return ApiError::NotFound(format!("no event {id:?}")),
            DbError::Store(StoreError::AlreadyEnded(id)) => {
                return ApiError::Conflict(format!("event {id:?} has already ended"));
            }
            _ => {}
        }
        tracing::error!(error = %e, "database call failed");
        match e {
            DbError::Store(StoreError::Busy) => ApiError::Unavailable("the database is busy; retry shortly".into()),
            _ => ApiError::Unavailable("the database is unavailable; see the server log".into()),
        }
    }
}
