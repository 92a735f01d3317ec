//! Error reporting helpers: one-line cause chains and panics turned into errors.

use std::error::Error;
use std::sync::Mutex;

/// The message and location of the last panic, recorded by the panic hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs `f`, turning a panic into an error instead of the default "panicked at" report.
///
/// The storage engine (redb) panics on some corrupted database pages instead of returning an
/// error; a corrupted file must still end in one `error:` line and exit code 1. Set
/// `RUST_LOG=petrel=debug` to also log the panic's backtrace.
pub(crate) fn run_catching_panics<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let message = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
            (Some(s), _) => (*s).to_string(),
            (_, Some(s)) => s.clone(),
            _ => "unknown panic".to_string(),
        };
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!("panic backtrace:\n{}", std::backtrace::Backtrace::force_capture());
        }
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{message}{location}"));
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(default_hook);
    result.unwrap_or_else(|_| {
        let what = LAST_PANIC.lock().ok().and_then(|mut p| p.take()).unwrap_or_else(|| "unknown panic".to_string());
        Err(anyhow::anyhow!("internal error ({what}); if a database was being read, it is probably corrupted"))
    })
}

/// Joins an error and its causes into one line, `outer: cause: root`, skipping a cause whose text
/// the line already contains (many errors embed their source in their own message).
pub(crate) fn error_line<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut line = String::new();
    for e in chain {
        let text = e.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace(['\n', '\r'], " ")
}

/// The JSON line of a failed command with `--json`: `{"ok": false, "error": <error_line>}`.
pub(crate) fn failure_json(e: &anyhow::Error) -> serde_json::Value {
    serde_json::json!({ "ok": false, "error": error_line(e.chain()) })
}

/// Prints a command's JSON answer on stdout, indented or, with `json`, as one line; a failure
/// with `json` also prints its [`failure_json`] line (the caller's `error:` line and exit status
/// follow from the returned error).
pub(crate) fn print_answer(json: bool, answer: anyhow::Result<serde_json::Value>) -> anyhow::Result<()> {
    match answer {
        Ok(answer) if json => println!("{}", serde_json::to_string(&answer)?),
        Ok(answer) => println!("{}", serde_json::to_string_pretty(&answer)?),
        Err(e) => {
            if json {
                println!("{}", failure_json(&e));
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_joins_and_dedups_causes() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(io).context("cannot open x").context("cannot verify x");
        assert_eq!(error_line(e.chain()), "cannot verify x: cannot open x: disk on fire");

        // An error that repeats its source in its own message: the source is not repeated.
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "bad block 5: {}", self.0)
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Outer(std::io::Error::other("line1\nline2")));
        assert_eq!(error_line(e.chain()), "bad block 5: line1 line2");
    }

    #[test]
    fn panics_become_errors() {
        let err = run_catching_panics::<()>(|| panic!("page type byte 165")).unwrap_err();
        let text = error_line(err.chain());
        assert!(text.starts_with("internal error (page type byte 165 at "), "{text}");
        assert!(text.contains("probably corrupted"), "{text}");
        assert!(run_catching_panics(|| Ok(())).is_ok());
    }
}
