//! Group commit for the message path: callers that want to commit while another commit is in
//! progress share one write transaction and one fsync. It must never return a caller's result
//! before the transaction holding that caller's changes is durable, and one caller's failure must
//! never fail or lose another's changes.
//!
//! Leader and followers, as in databases: the first caller to find no batch open leads a new one.
//! It begins the write transaction (waiting, in redb, for the commit in flight), and meanwhile
//! everyone who arrives joins its batch. Each caller runs its own closure, on its own thread, in
//! turn, in the batch's transaction; the leader closes the batch when every member has run, commits
//! once and tells them all. A lone caller leads a batch of one: no timer, nothing to wait for.
//!
//! redb offers no way to undo part of a transaction here (savepoints need an untouched
//! transaction and are refused in multi-writer mode), so a closure that fails aborts its batch:
//! the one that failed runs again alone, as an ungrouped write would, and the others run again in
//! a new batch. Closures must therefore be safe to run more than once (they only write to the
//! transaction they are given).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{Txn, timed_commit};

/// Most callers one transaction holds: a bound on how long the last of them waits.
const MAX_BATCH: usize = 256;
/// Batches a caller takes part in before it gives up on grouping and commits alone (each failed
/// batch has at least one caller less).
const MAX_ROUNDS: usize = 3;

#[derive(Default)]
pub(super) struct Group {
    open: Mutex<Open>,
    /// The open batch's leader waits here for its last member to have run.
    all_ran: Condvar,
    /// Callers that found the open batch full wait here for it to close.
    closed: Condvar,
    /// Batches committed, for the tests to see how callers were grouped.
    #[cfg(test)]
    commits: std::sync::atomic::AtomicUsize,
}

/// The batch taking members, if any, and how many have joined it and run so far.
#[derive(Default)]
struct Open {
    batch: Option<Arc<Batch>>,
    joined: usize,
    ran: usize,
}

#[derive(Default)]
struct Batch {
    /// The batch's transaction, passed from member to member. Its leader holds this lock from
    /// before the transaction begins until its own closure has run, so members queue on it.
    txn: Mutex<Slot>,
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

#[derive(Default)]
enum Slot {
    #[default]
    NotBegun,
    Begun(Box<Txn>),
    /// A closure failed: the transaction was aborted.
    Aborted,
    /// The transaction could not begin.
    Failed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Committed,
    /// A member's closure failed: the others run again.
    Aborted,
    /// The transaction could not begin or commit: everyone runs again alone.
    Failed,
}

/// What one round in a batch came to for one caller.
enum Round<R> {
    Done(R),
    /// Another member failed: join another batch.
    Again,
    /// Commit alone.
    Alone,
}

impl super::Store {
    /// Runs `f` in a write transaction shared with other callers of this method, and returns once
    /// it is durably committed (see the module header). `f` may run more than once, each time in
    /// a new transaction; only the run that is committed counts. On error nothing of this
    /// caller's is written, and the error is the one `f` gave when run alone.
    pub fn write_grouped<R>(
        &self,
        mut f: impl FnMut(&mut Txn) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        // Under the storage boundary's panic guard, like every other call into redb.
        self.guarded(|| {
            for _ in 0..MAX_ROUNDS {
                match self.round(&mut f) {
                    Round::Done(r) => return Ok(r),
                    Round::Again => continue,
                    Round::Alone => break,
                }
            }
            self.write(f)
        })
    }

    fn round<R>(&self, f: &mut impl FnMut(&mut Txn) -> anyhow::Result<R>) -> Round<R> {
        let g = &self.group;
        // The batch this caller leads if none is open. Its slot is locked before anyone can see
        // it, so members queue behind the leader until the transaction has begun and the leader's
        // own closure has run.
        let mine = Arc::new(Batch::default());
        let mut slot = lock(&mine.txn);
        let joined = {
            let mut open = lock(&g.open);
            // A full batch takes no one else: wait for it to close, then lead or join the next.
            while open.batch.is_some() && open.joined >= MAX_BATCH {
                open = g.closed.wait(open).unwrap_or_else(PoisonError::into_inner);
            }
            match open.batch.clone() {
                Some(batch) => {
                    open.joined += 1;
                    Some(batch)
                }
                None => {
                    *open = Open {
                        batch: Some(mine.clone()),
                        joined: 1,
                        ran: 0,
                    };
                    None
                }
            }
        };
        if let Some(batch) = joined {
            drop(slot);
            let ran = run_in(&mut lock(&batch.txn), f);
            {
                let mut open = lock(&g.open);
                open.ran += 1;
                if open.ran == open.joined {
                    g.all_ran.notify_one();
                }
            }
            return settle(ran, batch.wait());
        }

        // No batch was open: lead this one.
        let batch = &mine;
        *slot = match self.db.begin_write() {
            Ok(w) => Slot::Begun(Box::new(Txn { w })),
            Err(e) => {
                tracing::warn!(error = %e, "a grouped write transaction could not begin; each caller retries alone");
                Slot::Failed
            }
        };
        let ran = run_in(&mut slot, f);
        drop(slot);
        {
            let mut open = lock(&g.open);
            open.ran += 1;
            while open.ran < open.joined {
                open = g.all_ran.wait(open).unwrap_or_else(PoisonError::into_inner);
            }
            // Closed: whoever comes next leads the next batch, whose transaction begins once this
            // one is committed.
            *open = Open::default();
            g.closed.notify_all();
        }
        let outcome = match std::mem::take(&mut *lock(&batch.txn)) {
            Slot::Begun(txn) => match timed_commit(*txn) {
                Ok(()) => {
                    #[cfg(test)]
                    g.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Outcome::Committed
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a grouped commit failed; each caller retries alone");
                    Outcome::Failed
                }
            },
            Slot::Aborted => Outcome::Aborted,
            Slot::NotBegun | Slot::Failed => Outcome::Failed,
        };
        batch.publish(outcome);
        settle(ran, outcome)
    }
}

/// What a member's turn with the batch's transaction came to.
enum Ran<R> {
    /// There was no transaction to run in.
    NotRun,
    Returned(anyhow::Result<R>),
    /// The closure panicked: the panic goes on once the batch is settled.
    Panicked(Box<dyn std::any::Any + Send>),
}

fn run_in<R>(slot: &mut Slot, f: &mut impl FnMut(&mut Txn) -> anyhow::Result<R>) -> Ran<R> {
    let Slot::Begun(txn) = slot else {
        return Ran::NotRun;
    };
    let ran = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(txn))) {
        Ok(out) => Ran::Returned(out),
        Err(panic) => Ran::Panicked(panic),
    };
    if !matches!(ran, Ran::Returned(Ok(_))) {
        // Its writes may be half done: the whole transaction goes (dropped, so aborted).
        *slot = Slot::Aborted;
    }
    ran
}

fn settle<R>(mine: Ran<R>, outcome: Outcome) -> Round<R> {
    match (mine, outcome) {
        (Ran::Returned(Ok(r)), Outcome::Committed) => Round::Done(r),
        (Ran::Panicked(panic), _) => std::panic::resume_unwind(panic),
        // It failed here, perhaps because of what an earlier member wrote: alone, it is as if
        // there had been no batch.
        (Ran::Returned(Err(_)), _) | (_, Outcome::Failed) => Round::Alone,
        _ => Round::Again,
    }
}

impl Batch {
    fn publish(&self, outcome: Outcome) {
        *lock(&self.outcome) = Some(outcome);
        self.done.notify_all();
    }

    fn wait(&self) -> Outcome {
        let mut o = lock(&self.outcome);
        loop {
            if let Some(outcome) = *o {
                return outcome;
            }
            o = self.done.wait(o).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A poisoned lock here only means a closure panicked on another thread: the state it guards is
/// still consistent (a panicking member's batch is aborted when its transaction is dropped).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;
    use crate::core::records::{Recipient, UserState};
    use crate::store::Store;

    fn person(i: usize) -> Recipient {
        Recipient::new("test", &i.to_string())
    }

    fn named(i: usize) -> UserState {
        UserState {
            display_name: Some(format!("Person {i}")),
            failed_attempts: 1,
            ..UserState::default()
        }
    }

    /// Holds the database's write transaction until the returned sender is dropped, so that
    /// grouped callers queue up behind it.
    fn hold_the_writer(store: &Arc<Store>) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (started_tx, started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let s = store.clone();
        let holder = std::thread::spawn(move || {
            s.write(|_| {
                started_tx.send(()).unwrap();
                let _ = released.recv();
                Ok(())
            })
            .unwrap();
        });
        started.recv().unwrap();
        (release, holder)
    }

    fn wait_until_joined(store: &Store, n: usize) {
        while lock(&store.group.open).joined < n {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn callers_on_many_threads_all_commit_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.redb");
        let store = Arc::new(Store::open(&path).unwrap());
        let (threads, each) = (8, 40);
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for k in 0..each {
                        let i = t * each + k;
                        let got = store
                            .write_grouped(|txn| {
                                txn.put_user(&person(i), &named(i))?;
                                txn.next_id("test")
                            })
                            .unwrap();
                        assert!(got >= 1);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        drop(store);
        let store = Store::open(&path).unwrap();
        for i in 0..threads * each {
            assert_eq!(store.user(&person(i)).unwrap(), named(i), "person {i}");
        }
        let next = store.write(|txn| txn.peek_id("test")).unwrap();
        assert_eq!(next, (threads * each + 1) as u64, "every counter step kept");
    }

    #[test]
    fn a_failing_closure_fails_only_its_caller_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.redb");
        let store = Arc::new(Store::open(&path).unwrap());
        let (release, holder) = hold_the_writer(&store);
        let runs = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..5)
            .map(|i| {
                let (s, runs) = (store.clone(), runs.clone());
                let caller = std::thread::spawn(move || {
                    s.write_grouped(|txn| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        txn.put_user(&person(i), &named(i))?;
                        anyhow::ensure!(i != 2, "person 2's message fails");
                        Ok(i)
                    })
                });
                // One at a time, so all five are in the batch before it can begin.
                wait_until_joined(&store, i + 1);
                caller
            })
            .collect();
        drop(release);
        holder.join().unwrap();
        let results: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        for (i, r) in results.iter().enumerate() {
            if i == 2 {
                let e = r.as_ref().expect_err("the failing caller gets its error");
                assert!(e.to_string().contains("person 2"), "got {e:#}");
            } else {
                assert_eq!(*r.as_ref().unwrap(), i);
            }
        }
        assert!(
            runs.load(Ordering::Relaxed) > 5,
            "the batch was aborted and run again"
        );
        drop(store);
        let store = Store::open(&path).unwrap();
        for i in 0..5 {
            let expected = if i == 2 {
                UserState::default()
            } else {
                named(i)
            };
            assert_eq!(store.user(&person(i)).unwrap(), expected, "person {i}");
        }
    }

    #[test]
    fn a_batch_holds_many_callers_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("g.redb")).unwrap());
        let (release, holder) = hold_the_writer(&store);
        let callers: Vec<_> = (0..4)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    store.write_grouped(|txn| {
                        txn.put_user(&person(i), &named(i))?;
                        // Each sees what the earlier members of its batch wrote.
                        txn.next_id("batch")
                    })
                })
            })
            .collect();
        wait_until_joined(&store, 4);
        drop(release);
        holder.join().unwrap();
        let mut ids: Vec<u64> = callers
            .into_iter()
            .map(|c| c.join().unwrap().unwrap())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(
            store.group.commits.load(Ordering::Relaxed),
            1,
            "four callers, one commit"
        );
    }
}
