//! Turns a panic raised inside redb into an error the caller can report. redb treats some damage
//! to the file as unreachable and panics; the store is the boundary where that stops.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside `catch` (its panics are reported, not printed).
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// What the last caught panic said, and where.
    static DETAIL: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic inside it becomes `Err` with the panic's message and location. Panics
/// elsewhere still reach the previous hook (and are printed as usual).
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.get() {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                DETAIL.set(Some(format!("{message}{at}")));
            } else {
                previous(info);
            }
        }));
    });
    let outer = CATCHING.replace(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.set(outer);
    result.map_err(|payload| {
        // A panic caught on another thread and carried here (`resume_unwind`, which skips the
        // hook) brings its detail as its payload.
        DETAIL
            .take()
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic inside the storage engine".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let err = catch(|| -> u32 { panic!("entered unreachable code") }).unwrap_err();
        assert!(err.starts_with("entered unreachable code at "), "{err}");
        assert!(err.contains("panic_guard.rs"), "{err}");
        assert_eq!(catch(|| 7), Ok(7));
    }
}
