//! The support team's tables: accounts, sessions, the sign-in audit and its throttle, the
//! analytics counters and the kept declined messages. Each is byte-keyed with postcard values
//! (the counters: a plain number), so one set of typed helpers serves them all; what the records
//! mean lives in `service::accounts` and `service::analytics`, never here.

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    ANALYTICS, DECLINED, SIGN_IN_FAILURES, SIGN_INS, SUPPORT_ACCOUNTS, SUPPORT_SESSIONS, Store,
    Txn, decode_or_log, keys,
};

/// Every record table here, for creating them and for backups.
pub(super) const TABLES: [TableDefinition<'static, &'static [u8], &'static [u8]>; 5] = [
    SUPPORT_ACCOUNTS,
    SUPPORT_SESSIONS,
    SIGN_INS,
    SIGN_IN_FAILURES,
    DECLINED,
];

/// A table of records (see the definitions in `store` for what each key and value is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    SupportAccounts,
    SupportSessions,
    SignIns,
    SignInFailures,
    Declined,
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        match self {
            Table::SupportAccounts => SUPPORT_ACCOUNTS,
            Table::SupportSessions => SUPPORT_SESSIONS,
            Table::SignIns => SIGN_INS,
            Table::SignInFailures => SIGN_IN_FAILURES,
            Table::Declined => DECLINED,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Table::SupportAccounts => "support_accounts",
            Table::SupportSessions => "support_sessions",
            Table::SignIns => "sign_ins",
            Table::SignInFailures => "sign_in_failures",
            Table::Declined => "declined",
        }
    }
}

impl Store {
    /// One record, as last committed (None when missing or undecodable).
    pub fn record<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> anyhow::Result<Option<T>> {
        self.read(|r| {
            let Some(t) = missing_is_empty(r.open_table(table.def()))? else {
                return Ok(None);
            };
            Ok(t.get(key)?
                .and_then(|v| decode_or_log(table.name(), key, v.value())))
        })
    }

    /// Every record of `table` with its key, in key order (undecodable ones left out, logged).
    pub fn records<T: DeserializeOwned>(&self, table: Table) -> anyhow::Result<Vec<(Vec<u8>, T)>> {
        self.records_in(table, &[], None)
    }

    /// The records of `table` with keys from `start` up to (not including) `end`, in key order.
    pub fn records_in<T: DeserializeOwned>(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> anyhow::Result<Vec<(Vec<u8>, T)>> {
        self.read(|r| {
            let Some(t) = missing_is_empty(r.open_table(table.def()))? else {
                return Ok(Vec::new());
            };
            let rows = match end {
                Some(end) => t.range(start..end)?,
                None => t.range(start..)?,
            };
            let mut out = Vec::new();
            for row in rows {
                let (k, v) = row?;
                if let Some(rec) = decode_or_log(table.name(), k.value(), v.value()) {
                    out.push((k.value().to_vec(), rec));
                }
            }
            Ok(out)
        })
    }

    /// The analytics counters with keys from `start` up to (not including) `end`.
    pub fn counters_in(&self, start: &[u8], end: &[u8]) -> anyhow::Result<Vec<(Vec<u8>, u64)>> {
        self.read(|r| {
            let Some(t) = missing_is_empty(r.open_table(ANALYTICS))? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for row in t.range(start..end)? {
                let (k, v) = row?;
                out.push((k.value().to_vec(), v.value()));
            }
            Ok(out)
        })
    }
}

/// A table opened for reading, or None when the file predates it (opened read-only, a file from
/// before these tables has none of them: nothing is in them).
fn missing_is_empty<T>(opened: Result<T, redb::TableError>) -> anyhow::Result<Option<T>> {
    match opened {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Txn {
    /// One record as this transaction sees it. One that cannot be decoded is set aside and read
    /// as missing.
    pub fn record<T: DeserializeOwned>(
        &mut self,
        table: Table,
        key: &[u8],
    ) -> anyhow::Result<Option<T>> {
        let raw = {
            let t = self.w.open_table(table.def())?;
            t.get(key)?.map(|v| v.value().to_vec())
        };
        let Some(raw) = raw else {
            return Ok(None);
        };
        match keys::decode(&raw) {
            Ok(rec) => Ok(Some(rec)),
            Err(e) => {
                self.quarantine(table.name(), key, &raw, &e)?;
                self.w.open_table(table.def())?.remove(key)?;
                Ok(None)
            }
        }
    }

    pub fn put_record<T: Serialize>(
        &mut self,
        table: Table,
        key: &[u8],
        rec: &T,
    ) -> anyhow::Result<()> {
        self.w
            .open_table(table.def())?
            .insert(key, keys::encode(rec)?.as_slice())?;
        Ok(())
    }

    /// Removes a record; whether it was there.
    pub fn remove_record(&mut self, table: Table, key: &[u8]) -> anyhow::Result<bool> {
        Ok(self.w.open_table(table.def())?.remove(key)?.is_some())
    }

    /// Keeps only the records `keep` says yes to (undecodable ones go); returns how many went.
    pub fn retain_records<T: DeserializeOwned>(
        &mut self,
        table: Table,
        mut keep: impl FnMut(&[u8], &T) -> bool,
    ) -> anyhow::Result<usize> {
        let mut doomed = Vec::new();
        {
            let t = self.w.open_table(table.def())?;
            for row in t.iter()? {
                let (k, v) = row?;
                let ok = keys::decode::<T>(v.value()).is_ok_and(|rec| keep(k.value(), &rec));
                if !ok {
                    doomed.push(k.value().to_vec());
                }
            }
        }
        let mut t = self.w.open_table(table.def())?;
        for k in &doomed {
            t.remove(k.as_slice())?;
        }
        Ok(doomed.len())
    }

    /// Removes every record whose key sorts before `end` (the old end of a time-ordered table):
    /// a range read from the start, so it costs only what it removes.
    pub fn remove_records_before(&mut self, table: Table, end: &[u8]) -> anyhow::Result<usize> {
        let mut t = self.w.open_table(table.def())?;
        let doomed: Vec<Vec<u8>> = t
            .range(..end)?
            .map(|row| row.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<_, _>>()?;
        for k in &doomed {
            t.remove(k.as_slice())?;
        }
        Ok(doomed.len())
    }

    /// Adds each `n` to its analytics counter when the transaction commits (`write_counts`).
    pub fn count<'k>(&mut self, counts: impl IntoIterator<Item = (&'k [u8], u64)>) {
        for (key, n) in counts {
            let c = match self.counts.get_mut(key) {
                Some(c) => c,
                None => self.counts.entry(key.to_vec()).or_insert(0),
            };
            *c = c.saturating_add(n);
        }
    }

    /// Adds the counts gathered by `count` to the table: once per key and transaction, so a
    /// batch of messages committing together reads and writes each day's counter once.
    pub(super) fn write_counts(&mut self) -> anyhow::Result<()> {
        if self.counts.is_empty() {
            return Ok(());
        }
        let mut t = self.w.open_table(ANALYTICS)?;
        for (key, n) in std::mem::take(&mut self.counts) {
            let old = t.get(key.as_slice())?.map_or(0, |v| v.value());
            t.insert(key.as_slice(), old.saturating_add(n))?;
        }
        Ok(())
    }
}
