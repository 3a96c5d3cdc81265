//! Tests of the rules. `support` has the fixture every test file uses.

mod checker;
mod fuzz;
mod model;
mod smoke;
mod support;
