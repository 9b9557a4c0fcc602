//! Plugin calls are futures; callers that are not async (job runs, hooks, deliveries,
//! claims, the tool listing at install, `capstan run`, tests) drive one to completion on
//! their own thread.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Wakes the thread driving a call.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The timers of calls driven from a thread with no tokio runtime (a WASI sleep waits on
/// a tokio timer): one small runtime for the whole process, started on first need.
static TIMERS: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("capstan-timers")
        .enable_time()
        .build()
        .expect("a one-thread tokio runtime for call timers")
});

/// Run `future` to completion on this thread, parking between polls. Unlike a runtime's
/// `block_on`, this does not mark the thread as inside a runtime, so host functions
/// may still block on their stores' own runtimes. Called on an async thread (a claim
/// handled inside a route call's `events.request`), it steps off the executor first.
pub fn drive<F: Future>(future: F) -> F::Output {
    crate::blocking::off_executor(|| {
        let _timers = match tokio::runtime::Handle::try_current() {
            Ok(_) => None,
            Err(_) => Some(TIMERS.enter()),
        };
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut context = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
            std::thread::park();
        }
    })
}
