//! SQLite persistence of the relay.
