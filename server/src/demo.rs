//! Demo data: a small, realistic prefecture for `caresync serve --demo`.
