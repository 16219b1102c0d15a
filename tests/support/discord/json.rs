//! JSON payloads in the shapes serenity 0.12 deserialises. Fields marked
//! REQUIRED make serenity's deserialisation fail when absent (checked by
//! `tests/json_shapes.rs`); the rest are there to look like real Discord.

use serde_json::{Value, json};

pub const BOT_ID: u64 = 1000;
pub const APP_ID: u64 = 1000;
pub const TS: &str = "2024-01-01T00:00:00.000000+00:00";

/// User object. REQUIRED: `id`, `username`.
pub fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": bot,
    })
}

pub fn bot_user() -> Value {
    user(BOT_ID, "esr-bot", true)
}

/// Message object. REQUIRED: `id`, `channel_id`, `author`, `content`,
/// `timestamp`, `tts`, `mention_everyone`, `mentions`, `mention_roles`,
/// `attachments`, `embeds`, `pinned`, `type`.
pub fn message(id: u64, channel_id: u64, author: Value, content: &str) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": content,
        "timestamp": TS,
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
        "components": [],
    })
}

/// MESSAGE_CREATE payload for a DM (no `guild_id`, no `member`).
pub fn dm_message(id: u64, channel_id: u64, author: Value, content: &str) -> Value {
    message(id, channel_id, author, content)
}

/// MESSAGE_CREATE payload for a guild message: adds `guild_id`, a partial
/// `member` (REQUIRED inside it: `roles`) and `mentions` (user objects).
pub fn guild_message(
    id: u64,
    channel_id: u64,
    guild_id: u64,
    author: Value,
    content: &str,
    mentions: Vec<Value>,
) -> Value {
    let mut m = message(id, channel_id, author, content);
    m["guild_id"] = json!(guild_id.to_string());
    m["member"] = json!({
        "roles": [],
        "joined_at": TS,
        "deaf": false,
        "mute": false,
        "flags": 0,
    });
    m["mentions"] = Value::Array(mentions);
    m
}

/// DM channel (`POST /users/@me/channels` response). REQUIRED: `id`, `type`,
/// `recipients` (exactly one user).
pub fn dm_channel(id: u64, recipient: Value) -> Value {
    json!({
        "id": id.to_string(),
        "type": 1,
        "last_message_id": null,
        "recipients": [recipient],
    })
}

/// Guild member for interactions. REQUIRED: `user`, `roles`, `deaf`, `mute`,
/// `flags`.
pub fn member(user: Value) -> Value {
    json!({
        "user": user,
        "nick": null,
        "roles": [],
        "joined_at": TS,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "permissions": "0",
    })
}

/// READY `d`. REQUIRED: `v`, `user`, `guilds`, `session_id`,
/// `resume_gateway_url`, `application` {`id`, `flags`}.
pub fn ready(session_id: &str, resume_url: &str) -> Value {
    json!({
        "v": 10,
        "user": bot_user(),
        "guilds": [],
        "session_id": session_id,
        "resume_gateway_url": resume_url,
        "shard": [0, 1],
        "application": { "id": APP_ID.to_string(), "flags": 0 },
    })
}

/// Fields common to every interaction. REQUIRED: `id`, `application_id`,
/// `type`, `token`, `version`, `channel_id`, `locale`, `entitlements`,
/// `attachment_size_limit`.
fn interaction_base(
    id: u64,
    kind: u8,
    token: &str,
    channel_id: u64,
    guild_id: Option<u64>,
) -> Value {
    let mut v = json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": channel_id.to_string(),
        "channel": { "id": channel_id.to_string(), "type": if guild_id.is_some() { 0 } else { 1 } },
        "locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": if guild_id.is_some() { 0 } else { 1 },
        "attachment_size_limit": 10_485_760,
    });
    if let Some(g) = guild_id {
        v["guild_id"] = json!(g.to_string());
        v["guild_locale"] = json!("en-US");
    }
    v
}

fn set_invoker(v: &mut Value, user: Value, guild: bool) {
    if guild {
        v["member"] = member(user);
    } else {
        v["user"] = user;
    }
}

/// INTERACTION_CREATE type 3 (button press). REQUIRED in addition:
/// `message` (a full message object), `data` {`custom_id`, `component_type`}.
pub fn button_interaction(
    id: u64,
    token: &str,
    channel_id: u64,
    guild_id: Option<u64>,
    user: Value,
    custom_id: &str,
    message_id: u64,
) -> Value {
    let mut v = interaction_base(id, 3, token, channel_id, guild_id);
    set_invoker(&mut v, user, guild_id.is_some());
    let mut msg = message(message_id, channel_id, bot_user(), "Please acknowledge");
    msg["components"] = json!([{
        "type": 1,
        "components": [{ "type": 2, "style": 1, "label": "Ack", "custom_id": custom_id }],
    }]);
    v["message"] = msg;
    v["data"] = json!({ "custom_id": custom_id, "component_type": 2 });
    v
}

/// INTERACTION_CREATE type 2 (slash command) for `/<name> <sub>`. REQUIRED in
/// `data`: `id`, `name`, `type`; a sub-command option needs `name`, `type` 1
/// and `options`.
pub fn slash_command_interaction(
    id: u64,
    token: &str,
    channel_id: u64,
    guild_id: Option<u64>,
    user: Value,
    name: &str,
    sub: &str,
) -> Value {
    let mut v = interaction_base(id, 2, token, channel_id, guild_id);
    set_invoker(&mut v, user, guild_id.is_some());
    v["data"] = json!({
        "id": "5000",
        "name": name,
        "type": 1,
        "options": [{ "name": sub, "type": 1, "options": [] }],
    });
    v
}

/// Gives the interaction's member these roles (role ids).
pub fn with_roles(mut v: Value, roles: &[u64]) -> Value {
    let ids: Vec<String> = roles.iter().map(u64::to_string).collect();
    v["member"]["roles"] = json!(ids);
    v
}

/// Sets the sub-command's options, e.g. `[("text", "I'm locked out")]`.
pub fn with_options(mut v: Value, options: &[(&str, &str)]) -> Value {
    let opts: Vec<Value> = options
        .iter()
        .map(|(name, value)| json!({ "name": name, "type": 3, "value": value }))
        .collect();
    v["data"]["options"][0]["options"] = json!(opts);
    v
}
