//! Finding the session a request carries. The token is accepted three ways because clients
//! differ: `Authorization: Bearer` (native clients and the API), the HttpOnly session cookie
//! (the web app, so that page scripts never hold the token), and `?token=` on the `/sync`
//! URL (the JavaScript automerge-repo WebSocket adapter cannot set headers).

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "caresync_session";

/// The token text from the header, the cookie or the query, in that order of preference.
pub fn presented_token(headers: &HeaderMap, query_token: Option<&str>) -> Option<String> {
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    for cookies in headers.get_all(COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for pair in cookies.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == SESSION_COOKIE
            {
                return Some(value.trim().to_owned());
            }
        }
    }
    query_token.map(str::to_owned)
}

/// The `Set-Cookie` value that stores a session in the browser.
pub fn session_cookie(token: &str, max_age_seconds: u64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}"
    )
}

/// The `Set-Cookie` value that removes it.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn header_cookie_and_query_are_each_found() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_token(&headers, Some("q")), Some("q".to_owned()));
        headers.insert(
            COOKIE,
            HeaderValue::from_static("theme=dark; caresync_session=c; x=y"),
        );
        assert_eq!(presented_token(&headers, Some("q")), Some("c".to_owned()));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(presented_token(&headers, Some("q")), Some("b".to_owned()));
        assert_eq!(presented_token(&HeaderMap::new(), None), None);
    }
}
