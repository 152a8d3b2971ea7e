//! Accounts' credentials and sessions: password hashing (checked on one thread), session tokens, login throttling,
//! the WebSocket Origin check, and finding the session a request carries.

pub mod origin;
pub mod password;
pub mod password_checker;
pub mod rate_limit;
pub mod session;
pub mod throttle;
pub mod token;
