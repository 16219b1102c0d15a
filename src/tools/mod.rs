//! Commands for the people who run and improve the bot: validation, accuracy figures,
//! conversation tests, the support team's queue and accounts at the command line.

pub mod backup;
pub mod check;
pub mod convtest;
pub mod escalations;
pub mod eval;
pub mod support;
