//! Unit tests of the rules live in `tests/`.
