//! Sockets the application owns, watched by a context's event loop next to
//! its connections (a pub/sub client, a database driver's socket...): the
//! loop calls the application's handler when one is ready, on the loop's
//! thread, so that such work never blocks WebSocket traffic and needs no
//! second thread.
//!
//! The loop never reads, writes or closes a watched socket. Changes made
//! from anywhere (a handler included) take effect before the loop's next
//! wait. Tokens of watched sockets have [`FOREIGN`] set, so they never
//! meet a connection id.

#[allow(unused_imports)]
use crate::prelude::*;

use super::context::{ctx_log, Context};
use super::Error;
use crate::net::{Interest, Poller, Ready, Socket};
use crate::platform::Map;
use crate::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use crate::sync::Arc;

/// Called by the loop when a watched socket is ready: (context, socket,
/// readable, writable). A hang-up or error reports as readable.
pub type FdHandler = Arc<dyn Fn(&Context, Socket, bool, bool) + Send + Sync>;

/// The token bit of a watched socket: the top bit, which no connection
/// id (a non-negative `i32`) has, even in a 32-bit token.
const FOREIGN: usize = 1 << (usize::BITS - 1);

/// What the loop knows of a context's watched sockets without a lock.
#[derive(Default)]
pub(crate) struct Watches {
    /// Set by the first [`Context::watch_fd`]: `&'static WATCH` (see
    /// [`WatchImp`]), null until then.
    imp: AtomicPtr<WatchImp>,
    /// The pending changes are not empty: the loop looks at them only
    /// then (no lock per wake-up for applications that watch nothing).
    changed: AtomicBool,
}

impl Watches {
    /// The table, once a socket was watched.
    fn imp(&self) -> Option<&'static WatchImp> {
        // SAFETY: only `watch_fd` stores here, `&WATCH`, a static.
        unsafe { self.imp.load(Ordering::Acquire).as_ref() }
    }
}

/// The watched sockets, in the context's extras (`Context::with_extras`:
/// made on first use, so a firmware that watches nothing links none of
/// it, its drop included).
#[derive(Default)]
pub(crate) struct WatchState {
    handlers: Map<Socket, FdHandler>,
    /// Socket -> new interest (`None`: stop watching), in request order.
    pending: Vec<(Socket, Option<Interest>)>,
}

/// What the loop does for watched sockets, reached only through this
/// table, which [`Context::watch_fd`] installs: a firmware that watches
/// nothing does not link it.
struct WatchImp {
    apply: fn(&Context, &mut Poller),
    serve: fn(&Context, &Ready) -> bool,
}

static WATCH: WatchImp = WatchImp {
    apply: Context::apply_watch_changes,
    serve: Context::run_fd_handler,
};

impl Context {
    /// Watches `fd` (a socket the application owns) in this context's
    /// loop: `handler` runs on the loop's thread when it is readable
    /// (`read`) or writable (`write`). Calling it again for the same socket
    /// changes the interest and the handler; both false stops watching
    /// (as [`Context::unwatch_fd`]).
    pub fn watch_fd(
        &self,
        fd: Socket,
        read: bool,
        write: bool,
        handler: FdHandler,
    ) -> Result<(), Error> {
        if fd < 0 {
            return Err(Error::InvalidArgument("negative socket"));
        }
        if !read && !write {
            self.unwatch_fd(fd);
            return Ok(());
        }
        self.with_extras(|e| {
            let w = &mut e.watches;
            w.handlers.insert(fd, handler);
            w.pending.push((fd, Some(Interest { read, write })));
        });
        let imp = &WATCH as *const WatchImp as *mut WatchImp;
        self.inner.watches.imp.store(imp, Ordering::Release);
        self.inner.watches.changed.store(true, Ordering::Release);
        self.inner.waker.wake();
        Ok(())
    }

    /// Stops watching `fd`; false if it was not watched. The socket stays
    /// the caller's (not closed).
    pub fn unwatch_fd(&self, fd: Socket) -> bool {
        let was = self.with_extras(|e| {
            let w = &mut e.watches;
            let was = w.handlers.remove(&fd).is_some();
            if was {
                w.pending.push((fd, None));
            }
            was
        });
        if was {
            self.inner.watches.changed.store(true, Ordering::Release);
            self.inner.waker.wake();
        }
        was
    }

    /// The loop: applies watch changes to its poller.
    pub(crate) fn apply_watches(&self, poller: &mut Poller) {
        if let Some(w) = self.inner.watches.imp() {
            (w.apply)(self, poller);
        }
    }

    /// [`Context::apply_watches`]' body.
    fn apply_watch_changes(&self, poller: &mut Poller) {
        if !self.inner.watches.changed.load(Ordering::Acquire) {
            return;
        }
        let pending = self.with_extras(|e| {
            self.inner.watches.changed.store(false, Ordering::Release);
            core::mem::take(&mut e.watches.pending)
        });
        for (fd, interest) in pending {
            let _ = poller.delete(fd);
            if let Some(i) = interest {
                if let Err(e) = poller.add(fd, FOREIGN | fd as usize, i) {
                    ctx_log!(
                        self,
                        Critical,
                        "cannot watch the application's socket {fd}: {e}"
                    );
                }
            }
        }
    }

    /// The loop: runs the handler of a watched socket's event; false if
    /// the event is not one of a watched socket.
    pub(crate) fn serve_watched(&self, ev: &Ready) -> bool {
        // Only a watched socket has a FOREIGN token, and the table is
        // there once a socket was watched: the token is looked at only
        // then.
        self.inner
            .watches
            .imp()
            .is_some_and(|w| (w.serve)(self, ev))
    }

    /// [`Context::serve_watched`]'s body: the handler, if still watched.
    fn run_fd_handler(&self, ev: &Ready) -> bool {
        if ev.token & FOREIGN == 0 || ev.token == usize::MAX {
            return false;
        }
        let fd = (ev.token & !FOREIGN) as Socket;
        let h = self.with_extras(|e| e.watches.handlers.get(&fd).cloned());
        if let Some(h) = h {
            h(self, fd, ev.readable || ev.hangup || ev.error, ev.writable);
        }
        true
    }
}
