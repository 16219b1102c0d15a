//! Group commit for the message path: callers that want to commit while another commit is in
//! progress share one write transaction and one fsync. It must never return a caller's result
//! before the transaction holding that caller's changes is durable, and one caller's failure must
//! never fail or lose another's changes.
//!
//! Leader and followers, as in databases, with the leader combining: the first caller to find no
//! batch open leads a new one. It begins the write transaction (waiting, in redb, for the commit
//! in flight), and meanwhile everyone who arrives joins its batch by handing over its closure and
//! going to sleep. The leader runs its own closure and then every member's, one after another on
//! its own thread (no hand-off of the transaction between threads, so no wake-up per member on the
//! serial path); it closes the batch when no member is waiting to run, commits once and wakes them
//! all. A lone caller leads a batch of one: no timer, nothing to wait for.
//!
//! redb offers no way to undo part of a transaction here (savepoints need an untouched
//! transaction and are refused in multi-writer mode), so a closure that fails aborts its batch:
//! the one that failed runs again alone, as an ungrouped write would, and the others run again in
//! a new batch. Closures must therefore be safe to run more than once (they only write to the
//! transaction they are given). A closure that panics on the leader's thread has its panic carried
//! back to its own caller, which unwinds as if it had run the closure itself.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::Txn;

/// Most callers one transaction holds: a bound on how long the last of them waits.
const MAX_BATCH: usize = 256;
/// Batches a caller takes part in before it gives up on grouping and commits alone (each failed
/// batch has at least one caller less).
const MAX_ROUNDS: usize = 3;

#[derive(Default)]
pub(super) struct Group {
    open: Mutex<Open>,
    /// Callers that found the open batch full wait here for it to close.
    closed: Condvar,
    /// Batches committed, for the tests to see how callers were grouped.
    #[cfg(test)]
    commits: std::sync::atomic::AtomicUsize,
}

/// A member's closure as the leader runs it: true when it returned `Ok`. Its real lifetime is the
/// member's stack frame, which outlives every use (see `Runner::erase`).
type Step = dyn FnMut(&mut Txn) -> bool + Send;

struct Runner(&'static mut Step);

impl Runner {
    /// Erases the closure's lifetime so the leader's thread can hold it.
    ///
    /// # Safety
    /// The caller must not return, unwind or touch `step` until its batch's outcome is published
    /// (`Batch::wait` returns): the leader runs or drops every runner of a batch before that.
    unsafe fn erase<'a>(step: &'a mut (dyn FnMut(&mut Txn) -> bool + Send + 'a)) -> Runner {
        // SAFETY: only the lifetime changes; the caller upholds that the borrow outlives its use.
        Runner(unsafe {
            std::mem::transmute::<
                &'a mut (dyn FnMut(&mut Txn) -> bool + Send + 'a),
                &'static mut Step,
            >(step)
        })
    }
}

/// The batch taking members, if any: its members waiting to be run, and how many have joined.
#[derive(Default)]
struct Open {
    batch: Option<Arc<Batch>>,
    waiting: Vec<Runner>,
    joined: usize,
}

#[derive(Default)]
struct Batch {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
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
    /// a new transaction, and on another caller's thread; only the run that is committed counts.
    /// On error nothing of this caller's is written, and the error is the one `f` gave when run
    /// alone.
    pub fn write_grouped<R: Send>(
        &self,
        mut f: impl FnMut(&mut Txn) -> anyhow::Result<R> + Send,
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

    fn round<R: Send>(
        &self,
        f: &mut (impl FnMut(&mut Txn) -> anyhow::Result<R> + Send),
    ) -> Round<R> {
        let g = &self.group;
        let mut ran: Ran<R> = Ran::NotRun;
        let mut step = |txn: &mut Txn| {
            ran = run(txn, f);
            matches!(ran, Ran::Returned(Ok(_)))
        };
        let mine = Arc::new(Batch::default());
        let joined = {
            let mut open = lock(&g.open);
            // A full batch takes no one else: wait for it to close, then lead or join the next.
            while open.batch.is_some() && open.joined >= MAX_BATCH {
                open = g.closed.wait(open).unwrap_or_else(PoisonError::into_inner);
            }
            match open.batch.clone() {
                Some(batch) => {
                    open.joined += 1;
                    // SAFETY: this frame waits below for the batch's outcome before it returns,
                    // and neither `step` nor `ran` is touched until then.
                    open.waiting.push(unsafe { Runner::erase(&mut step) });
                    Some(batch)
                }
                None => {
                    *open = Open {
                        batch: Some(mine.clone()),
                        waiting: Vec::new(),
                        joined: 1,
                    };
                    None
                }
            }
        };
        if let Some(batch) = joined {
            let outcome = batch.wait();
            return settle(ran, outcome);
        }

        // No batch was open: lead this one.
        let batch = &mine;
        let outcome = match self.db.begin_write() {
            Ok(w) => {
                let mut txn = Txn::new(w);
                let mut ok = step(&mut txn);
                // Run the members as they come, until none is waiting; then close the batch (a
                // failure closes it at once: the rest would only be run again).
                loop {
                    let next = {
                        let mut open = lock(&g.open);
                        if !ok || open.waiting.is_empty() {
                            let left = std::mem::take(&mut *open);
                            g.closed.notify_all();
                            // Dropped without running: their members see the batch aborted.
                            drop(left);
                            break;
                        }
                        std::mem::take(&mut open.waiting)
                    };
                    for Runner(member) in next {
                        if ok {
                            ok = member(&mut txn);
                        }
                    }
                }
                if !ok {
                    // Its writes may be half done: the whole transaction goes (dropped, aborted).
                    drop(txn);
                    Outcome::Aborted
                } else {
                    match self.commit(txn) {
                        Ok(()) => {
                            #[cfg(test)]
                            g.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Outcome::Committed
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "a grouped commit failed; each caller retries alone");
                            Outcome::Failed
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a grouped write transaction could not begin; each caller retries alone");
                let left = std::mem::take(&mut *lock(&g.open));
                g.closed.notify_all();
                drop(left);
                Outcome::Failed
            }
        };
        batch.publish(outcome);
        settle(ran, outcome)
    }
}

/// What a member's closure came to.
enum Ran<R> {
    /// It was not run in the batch's transaction.
    NotRun,
    Returned(anyhow::Result<R>),
    /// The closure panicked (with this message and place): the panic goes on, in its caller,
    /// once the batch is settled.
    Panicked(String),
}

fn run<R>(txn: &mut Txn, f: &mut impl FnMut(&mut Txn) -> anyhow::Result<R>) -> Ran<R> {
    match super::panic_guard::catch(|| f(txn)) {
        Ok(out) => Ran::Returned(out),
        Err(detail) => Ran::Panicked(detail),
    }
}

fn settle<R>(mine: Ran<R>, outcome: Outcome) -> Round<R> {
    match (mine, outcome) {
        (Ran::Returned(Ok(r)), Outcome::Committed) => Round::Done(r),
        (Ran::Panicked(detail), _) => std::panic::resume_unwind(Box::new(detail)),
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

    #[test]
    fn a_panicking_closure_fails_only_its_own_caller_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.redb");
        let store = Arc::new(Store::open(&path).unwrap());
        let (release, holder) = hold_the_writer(&store);
        let callers: Vec<_> = (0..4)
            .map(|i| {
                let s = store.clone();
                let caller = std::thread::spawn(move || {
                    s.write_grouped(|txn| {
                        txn.put_user(&person(i), &named(i))?;
                        assert!(i != 1, "person 1's closure panics");
                        Ok(i)
                    })
                });
                wait_until_joined(&store, i + 1);
                caller
            })
            .collect();
        drop(release);
        holder.join().unwrap();
        // The panic reaches its own caller, whoever ran the closure, and there the storage
        // boundary's panic guard turns it into an error; nobody else's thread unwinds.
        let results: Vec<_> = callers
            .into_iter()
            .map(|c| c.join().expect("no caller's thread panics"))
            .collect();
        for (i, r) in results.iter().enumerate() {
            match r {
                Err(e) if i == 1 => assert!(format!("{e:#}").contains("person 1's closure panics")),
                Ok(got) if i != 1 => assert_eq!(*got, i),
                other => panic!("caller {i}: {other:?}"),
            }
        }
        // The guard took the panic for damage and stops this handle; the file has the others.
        assert!(store.is_damaged());
        drop(store);
        let store = Store::open_read_only(&path).unwrap();
        for i in [0, 2, 3] {
            assert_eq!(store.user(&person(i)).unwrap(), named(i), "person {i}");
        }
        assert_eq!(store.user(&person(1)).unwrap(), UserState::default());
    }
}
