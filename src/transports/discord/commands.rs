//! The `/esr` slash command's definition and option parsing.

use serenity::all::{
    CommandDataOption, CommandDataOptionValue, CommandOptionType, CreateCommand,
    CreateCommandOption,
};

use crate::core::records::EscalationStatus;

/// A string option of a subcommand.
pub(super) fn string_option(sub: &CommandDataOption, name: &str) -> Option<String> {
    let CommandDataOptionValue::SubCommand(opts) = &sub.value else {
        return None;
    };
    opts.iter()
        .find(|o| o.name == name)
        .and_then(|o| o.value.as_str().map(str::to_string))
}

/// `/esr ask|status|reminders|forget-me|escalations`.
pub fn esr_command() -> CreateCommand {
    let sub = |name: &str, what: &str| {
        CreateCommandOption::new(CommandOptionType::SubCommand, name, what)
    };
    let mut statuses =
        CreateCommandOption::new(CommandOptionType::String, "status", "Only this status");
    for s in EscalationStatus::ALL {
        statuses = statuses.add_string_choice(s.as_str(), s.as_str());
    }
    CreateCommand::new("esr")
        .description("Help getting back into ESR")
        .add_option(
            sub("ask", "Ask about ESR access").add_sub_option(
                CreateCommandOption::new(CommandOptionType::String, "text", "What's happening?")
                    .required(true),
            ),
        )
        .add_option(sub("status", "Your reset link and lockout times"))
        .add_option(
            sub("reminders", "Turn reminders on or off").add_sub_option(
                CreateCommandOption::new(CommandOptionType::String, "switch", "on or off")
                    .required(true)
                    .add_string_choice("on", "on")
                    .add_string_choice("off", "off"),
            ),
        )
        .add_option(sub("forget-me", "Erase everything stored about you"))
        .add_option(sub("escalations", "Support team: list escalations").add_sub_option(statuses))
}
