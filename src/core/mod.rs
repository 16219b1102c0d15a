//! The pure core: dialogue rules, the records kept per person, escalation state changes and the
//! retry policy. No I/O, no clock reading and nothing from storage or a transport lives here: the
//! time is passed in and the service commits what the core decides.

pub mod behaviours;
pub mod calendar;
pub mod dialogue;
pub mod engine;
pub mod error;
pub mod escalation;
pub mod records;
pub mod retry;

#[cfg(test)]
pub(crate) mod tests;
