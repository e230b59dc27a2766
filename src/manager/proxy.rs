//! What every proxy type shares: `Clone` and `Debug` (the key left out), and `with_timeout`,
//! written once by `proxy_common!`.

/// Implements `Clone`, `Debug`, `new` and `with_timeout` for a proxy struct holding
/// `obj: Object` and `_t: PhantomData<..>`; `$make` is the `Manager` call that makes one, for
/// the doc example.
macro_rules! proxy_common {
    ($name:ident [$($g:ident),*] $make:literal) => {
        impl<$($g),*> Clone for $name<$($g),*> {
            fn clone(&self) -> Self {
                $name { obj: self.obj.clone(), _t: std::marker::PhantomData }
            }
        }

        impl<$($g),*> std::fmt::Debug for $name<$($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("object", &self.obj).finish()
            }
        }

        impl<$($g),*> $name<$($g),*> {
            pub(crate) fn new(obj: $crate::manager::session::Object) -> Self {
                $name { obj, _t: std::marker::PhantomData }
            }

            /// This proxy with another limit on each call, beyond any wait the call asks for
            /// (default [`DEFAULT_CALL_TIMEOUT`](crate::manager::DEFAULT_CALL_TIMEOUT)).
            ///
            /// ```no_run
            /// let m = shmpool::Manager::start()?;
            #[doc = concat!("let p = m.", $make, "?.with_timeout(std::time::Duration::from_secs(1));")]
            /// # Ok::<(), shmpool::Error>(())
            /// ```
            pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.obj.timeout = timeout;
                self
            }
        }
    };
}

pub(crate) use proxy_common;
