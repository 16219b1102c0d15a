//! How records and keys are laid out in bytes. Values are a version byte and postcard (compact,
//! varint-encoded serde); keys are built so that redb's byte order is the order the queues need:
//! a lane's entries together, earliest first. Each fact is stored once: a job's due time, kind and
//! recipient are its key, and its value is empty.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

use crate::core::records::{Job, JobKind, Recipient};

/// The version byte every value starts with. A value with another first byte is not decoded
/// (it is set aside, see `Store::quarantine`).
const VERSION: u8 = 1;

pub fn encode<T: Serialize>(v: &T) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![VERSION];
    out.extend(postcard::to_stdvec(v).context("encode record")?);
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> anyhow::Result<T> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => postcard::from_bytes(rest).context("decode record"),
        Some((v, _)) => anyhow::bail!("decode record: unknown format version {v}"),
        None => anyhow::bail!("decode record: empty value"),
    }
}

/// A recipient as key bytes: the channel, then 0x01 and eight bytes for an id that is a plain
/// decimal number (Discord's snowflakes: 8 bytes instead of 18 digits), or 0x00 and the id's text.
pub fn recipient(r: &Recipient) -> Vec<u8> {
    let (channel, id) = (r.channel(), r.id());
    let mut out = Vec::with_capacity(channel.len() + 1 + id.len().min(9));
    out.extend_from_slice(channel.as_bytes());
    match id.parse::<u64>() {
        Ok(n) if n.to_string() == id => {
            out.push(0x01);
            out.extend_from_slice(&n.to_be_bytes());
        }
        _ => {
            out.push(0x00);
            out.extend_from_slice(id.as_bytes());
        }
    }
    out
}

pub fn parse_recipient(bytes: &[u8]) -> Option<Recipient> {
    let at = bytes.iter().position(|b| *b <= 0x01)?;
    let channel = std::str::from_utf8(&bytes[..at]).ok()?;
    let rest = &bytes[at + 1..];
    let id = if bytes[at] == 0x01 {
        u64::from_be_bytes(rest.try_into().ok()?).to_string()
    } else {
        std::str::from_utf8(rest).ok()?.to_string()
    };
    Some(Recipient::new(channel, &id))
}

/// A time in eight bytes that sort in time order (the sign bit flipped).
fn time_bytes(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(bytes: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64)
}

/// The prefix every key of `lane` starts with: its length (two bytes) and its text.
fn lane_prefix(lane: &str) -> Vec<u8> {
    let bytes = &lane.as_bytes()[..lane.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(2 + bytes.len() + 8);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Keys of `lane` due at or before `ms`: `start..end`.
pub fn lane_until(lane: &str, ms: i64) -> (Vec<u8>, Vec<u8>) {
    let mut start = lane_prefix(lane);
    let mut end = start.clone();
    start.extend_from_slice(&time_bytes(i64::MIN));
    match ms.checked_add(1) {
        Some(next) => end.extend_from_slice(&time_bytes(next)),
        // Everything in the lane: the prefix with a byte past any time.
        None => end.extend_from_slice(&[0xFF; 9]),
    }
    (start, end)
}

/// Every key of `lane`.
pub fn lane_all(lane: &str) -> (Vec<u8>, Vec<u8>) {
    lane_until(lane, i64::MAX)
}

/// The lane of a lane key.
pub fn lane_of(key: &[u8]) -> Option<&str> {
    let len = usize::from(u16::from_be_bytes(key.get(..2)?.try_into().ok()?));
    std::str::from_utf8(key.get(2..2 + len)?).ok()
}

/// The due time (ms) of a lane key.
pub fn due_of(key: &[u8]) -> Option<i64> {
    let len = usize::from(u16::from_be_bytes(key.get(..2)?.try_into().ok()?));
    time_from(key.get(2 + len..2 + len + 8)?)
}

/// A job's key: lane, due time, recipient, kind. The value is empty.
pub fn job(lane: &str, job: &Job) -> Vec<u8> {
    let mut out = lane_prefix(lane);
    out.extend_from_slice(&time_bytes(job.due.timestamp_millis()));
    out.extend(recipient(&job.recipient));
    out.push(job.kind.code());
    out
}

pub fn parse_job(key: &[u8]) -> Option<Job> {
    let len = usize::from(u16::from_be_bytes(key.get(..2)?.try_into().ok()?));
    let due = DateTime::<Utc>::from_timestamp_millis(due_of(key)?)?;
    let rest = key.get(2 + len + 8..)?;
    let (kind, who) = rest.split_last()?;
    Some(Job {
        recipient: parse_recipient(who)?,
        kind: JobKind::from_code(*kind)?,
        due,
    })
}

/// An outbox entry's key: lane, due time, id.
pub fn outbox(lane: &str, due_ms: i64, id: u64) -> Vec<u8> {
    let mut out = lane_prefix(lane);
    out.extend_from_slice(&time_bytes(due_ms));
    out.extend_from_slice(&id.to_be_bytes());
    out
}

/// The id at the end of an outbox key.
pub fn outbox_id(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        key.get(key.len().checked_sub(8)?..)?.try_into().ok()?,
    ))
}

/// Bytes as hex, for naming a key in a log line.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_round_trip_compactly() {
        for r in [
            "discord:80351110224678912",
            "chat:ann",
            "discord:007",
            "web:",
            "x:1:2",
        ] {
            let r = Recipient::from(r);
            assert_eq!(parse_recipient(&recipient(&r)), Some(r.clone()), "{r}");
        }
        assert_eq!(recipient(&"discord:80351110224678912".into()).len(), 16);
    }

    #[test]
    fn job_keys_round_trip_and_sort_by_time_within_a_lane() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let early = Job::new(
            &"discord:9".into(),
            JobKind::LockOver,
            t("1960-01-01T00:00:00Z"),
        );
        let late = Job::new(
            &"discord:1".into(),
            JobKind::Purge,
            t("2026-03-02T21:00:00Z"),
        );
        let (ka, kb) = (job("discord", &early), job("discord", &late));
        assert!(ka < kb);
        assert_eq!(parse_job(&kb), Some(late.clone()));
        let (start, end) = lane_until("discord", late.due.timestamp_millis());
        assert!(start <= ka && kb < end);
        let (_, before) = lane_until("discord", late.due.timestamp_millis() - 1);
        assert!(kb >= before);
        // Another lane's keys are outside the range, even one whose name extends this one.
        let other = job("discord2", &late);
        assert!(!(start <= other && other < end));
    }

    #[test]
    fn values_carry_a_version() {
        let bytes = encode(&(1u32, "x".to_string())).unwrap();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode::<(u32, String)>(&bytes).unwrap(), (1, "x".into()));
        assert!(decode::<(u32, String)>(b"{\"json\":1}").is_err());
        assert!(decode::<(u32, String)>(b"").is_err());
    }

    /// A record written before `volunteered` was appended to escalations and people's state
    /// ends where that field would start, and still reads, with nothing volunteered; one written
    /// with it keeps it.
    #[test]
    fn records_from_before_an_appended_field_still_read() {
        use crate::core::records::{
            Escalation, EscalationKind, EscalationStatus, NumberKind, StaffNumber, UserState,
            Volunteered,
        };
        let at = DateTime::from_timestamp_millis(1_770_000_000_000).unwrap();
        let mut e = Escalation {
            reference: "ESC-00001".into(),
            kind: EscalationKind::EmailChanged,
            user: "chat:ann".into(),
            display_name: Some("Ann".into()),
            new_address: Some("ann.new@nhs.net".into()),
            problem: None,
            contact: None,
            created_at: at,
            status: EscalationStatus::Open,
            history: Vec::new(),
            volunteered: Volunteered::default(),
        };
        let state = UserState {
            failed_attempts: 2,
            ..UserState::default()
        };
        // Nothing volunteered is two empty options at the end: the older layout lacks them.
        let old_escalation = encode(&e).unwrap();
        let old_state = encode(&state).unwrap();
        let older = |b: &[u8]| b[..b.len() - 2].to_vec();
        assert_eq!(decode::<Escalation>(&older(&old_escalation)).unwrap(), e);
        assert_eq!(decode::<UserState>(&older(&old_state)).unwrap(), state);
        e.volunteered = Volunteered {
            old_address: Some("ann.old@nhs.net".into()),
            number: Some(StaffNumber {
                kind: NumberKind::Assignment,
                value: "12345678-2".into(),
            }),
        };
        assert_eq!(decode::<Escalation>(&encode(&e).unwrap()).unwrap(), e);
    }
}
