//! `StarArgs`: the argument tuples [`Pool::starmap`](crate::Pool::starmap) unpacks, of any arity
//! from 1 to 8, each with the `fn` type that takes them one by one.

use serde::Serialize;
use serde::de::DeserializeOwned;

mod sealed {
    /// Only the tuples below implement [`StarArgs`](super::StarArgs): a worker rebuilds
    /// `Fn<R>` from a code address, which is sound only for `fn` pointer types.
    pub trait Sealed {}
}

/// A tuple of task arguments that [`Pool::starmap`](crate::Pool::starmap) spreads over the
/// parameters of `Fn<R>` (Python's `starmap`). Implemented for tuples of 1 to 8 serializable
/// values; sealed, because a worker rebuilds the `fn` pointer from its address.
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let args = [(1u8, 2u16, String::from("a")), (3, 4, String::from("bc"))];
/// let out = pool.starmap(|a: u8, b: u16, s: String| a as usize + b as usize + s.len(), &args, None)?;
/// assert_eq!(out, [4, 9]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub trait StarArgs: Serialize + DeserializeOwned + sealed::Sealed {
    /// The `fn` pointer type taking the tuple's elements as parameters and returning `R`.
    type Fn<R>: Copy;

    /// Calls `f` with the tuple's elements.
    fn call<R>(f: Self::Fn<R>, args: Self) -> R;
}

macro_rules! star_args {
    ($($t:ident $v:ident),+) => {
        impl<$($t),+> sealed::Sealed for ($($t,)+) {}
        impl<$($t: Serialize + DeserializeOwned),+> StarArgs for ($($t,)+) {
            type Fn<R> = fn($($t),+) -> R;

            fn call<R>(f: Self::Fn<R>, ($($v,)+): Self) -> R {
                f($($v),+)
            }
        }
    };
}

star_args!(A a);
star_args!(A a, B b);
star_args!(A a, B b, C c);
star_args!(A a, B b, C c, D d);
star_args!(A a, B b, C c, D d, E e);
star_args!(A a, B b, C c, D d, E e, F f);
star_args!(A a, B b, C c, D d, E e, F f, G g);
star_args!(A a, B b, C c, D d, E e, F f, G g, H h);
