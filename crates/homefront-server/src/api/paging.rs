//! Keyset paging for list endpoints: an opaque `cursor` query parameter
//! and a `Link: <…>; rel="next"` header (RFC 8288) when more rows exist.
//!
//! Lists come newest first (highest id first). A page asks the store for
//! `limit + 1` rows older than the cursor; when the extra row comes back,
//! there is a next page, whose cursor encodes the last id shown. The body
//! of a list stays what it was (a JSON array, or the endpoint's object);
//! the next page is only in the headers:
//!
//! ```text
//! Link: </api/v1/orders?state=completed&cursor=aWQ6MTIzNA>; rel="next"
//! X-Next-Cursor: aWQ6MTIzNA
//! ```
//!
//! A cursor is base64url text that clients pass back as is; its content
//! may change between versions. Following `next` until no `Link` comes
//! back visits every row once, even while new rows are added (they have
//! higher ids and land before the first page).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ApiResult};

/// The header that carries the next page's cursor on its own (the same
/// value as in the `Link` header's URL), for clients that do not parse
/// `Link`.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// A page size checked against `default` and `max`: `limit` absent gives
/// `default`; outside `1..=max` is a 422 naming the field and the range,
/// so a larger ask is never silently cut.
///
/// # Errors
/// 422 `invalid_limit` (field `limit`).
pub fn page_size(limit: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(
            "limit",
            "invalid_limit",
            format!(
                "limit must be 1 to {max} (it was {n}); for more rows follow the next page \
                 (the Link header's rel=\"next\" URL), or use the export for a whole period"
            ),
        )),
    }
}

/// Encodes the cursor that continues after row `last_id`.
pub fn encode(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("id:{last_id}"))
}

/// The row id a `cursor` continues after: the next page holds rows with
/// smaller ids.
///
/// # Errors
/// 422 `invalid_cursor` (field `cursor`) for text this server did not hand out.
pub fn decode(cursor: &str) -> ApiResult<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("id:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            ApiError::invalid(
                "cursor",
                "invalid_cursor",
                "this cursor is not one the server handed out; start from the first page \
                 (no cursor) and follow the Link header's next URL",
            )
        })
}

/// Rejects `offset`, which keyset paging does not use: a client sending it
/// would otherwise get the first page again and again.
///
/// # Errors
/// 422 `offset_unsupported` (field `offset`) when present.
pub fn reject_offset(offset: Option<&str>) -> ApiResult<()> {
    match offset {
        None => Ok(()),
        Some(_) => Err(ApiError::invalid(
            "offset",
            "offset_unsupported",
            "lists page with a cursor, not an offset: follow the Link header's rel=\"next\" URL \
             (or pass its cursor parameter) for the next page",
        )),
    }
}

/// Cuts `rows` (fetched with `limit + 1`) to `limit` and returns the next
/// page's cursor when the extra row showed that more exist.
pub fn split<T>(rows: &mut Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|r| encode(id(r)))
}

/// The URL of the next page: `uri` (path and query as requested) with its
/// `cursor` parameter replaced by `cursor`, other parameters kept as sent.
pub fn next_url(uri: &Uri, cursor: &str) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| p.split('=').next() != Some("cursor"))
        .collect();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    format!("{}?{query}cursor={cursor}", uri.path())
}

/// The `Link` and `X-Next-Cursor` headers for a page, or none on the last one.
pub fn headers(uri: &Uri, next: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(cursor) = next {
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>; rel=\"next\"", next_url(uri, cursor)))
        {
            h.insert(header::LINK, v);
        }
        if let Ok(v) = HeaderValue::from_str(cursor) {
            h.insert(NEXT_CURSOR, v);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_others() {
        assert_eq!(decode(&encode(1234)).unwrap(), 1234);
        assert_eq!(decode("nonsense").unwrap_err().code, "invalid_cursor");
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("id:x")).unwrap_err().code,
            "invalid_cursor"
        );
    }

    #[test]
    fn page_sizes_are_checked_not_clamped() {
        assert_eq!(page_size(None, 200, 1000).unwrap(), 200);
        assert_eq!(page_size(Some(1000), 200, 1000).unwrap(), 1000);
        assert_eq!(
            page_size(Some(5000), 200, 1000)
                .unwrap_err()
                .field
                .as_deref(),
            Some("limit")
        );
        assert!(page_size(Some(0), 200, 1000).is_err());
    }

    #[test]
    fn split_keeps_the_page_and_points_after_its_last_row() {
        let mut rows = vec![9, 8, 7];
        assert_eq!(split(&mut rows, 2, |r| *r), Some(encode(8)));
        assert_eq!(rows, vec![9, 8]);
        let mut rows = vec![9, 8];
        assert_eq!(split(&mut rows, 2, |r| *r), None);
    }

    #[test]
    fn next_url_replaces_only_the_cursor() {
        let uri: Uri = "/api/v1/orders?state=a,b&cursor=old&limit=5"
            .parse()
            .unwrap();
        assert_eq!(
            next_url(&uri, "NEW"),
            "/api/v1/orders?state=a,b&limit=5&cursor=NEW"
        );
        let uri: Uri = "/api/v1/orders".parse().unwrap();
        assert_eq!(next_url(&uri, "N"), "/api/v1/orders?cursor=N");
    }
}
