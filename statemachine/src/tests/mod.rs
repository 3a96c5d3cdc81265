//! Tests of the rules. `support` has the fixture every test file uses.

mod smoke;
mod support;
