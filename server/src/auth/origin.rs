//! The WebSocket Origin check. Browsers send `Origin` on every WebSocket upgrade and let
//! any page open a socket to any host, so without this check a page on another site could
//! use a logged-in phone's session cookie to sync. Native clients (node, the Rust device)
//! send no Origin and are let through: they must present a token anyway.

/// May a WebSocket upgrade with this `Origin` header proceed? Allowed: no Origin; the
/// relay's own origin (`http(s)://` + the request's `Host`); an origin in `allowed`.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|item| item.trim_end_matches('/') == origin)
    {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_relays_own_origin_and_listed_ones_pass() {
        let host = Some("127.0.0.1:8080");
        assert!(origin_allowed(None, host, &[]));
        assert!(origin_allowed(Some("http://127.0.0.1:8080"), host, &[]));
        assert!(origin_allowed(Some("https://127.0.0.1:8080"), host, &[]));
        assert!(!origin_allowed(Some("http://evil.example"), host, &[]));
        assert!(!origin_allowed(Some("http://127.0.0.1:8081"), host, &[]));
        assert!(!origin_allowed(Some("http://127.0.0.1:8080"), None, &[]));
        let listed = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(Some("https://app.example"), host, &listed));
    }
}
