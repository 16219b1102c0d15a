//! Reading a message: intents and the guide's content loaded from files, cleaning and redaction,
//! time expressions and the classifier. Pure functions of the text and the loaded content.

pub mod classifier;
pub mod content;
pub mod details;
pub mod intents;
pub mod language;
pub mod model;
pub mod privacy;
pub mod spelling;
pub mod text;
pub mod timeexpr;
