//! What a scoped child is lent: the one way shared memory the parent holds reaches a forked
//! child (see `segment::forkmap` for why nothing arrives by inheritance).
//!
//! The parent describes each borrowed slice of a lent value ([`Lend::regions`]) and finds the
//! segment file behind it ([`LendPlan::new`]); the child maps those page ranges anew, at addresses
//! nothing else in it points to, and rebuilds the value on them ([`Lend::relocate`]).

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::segment::forkmap::{self, FileRange};
use crate::sys;

/// One borrowed byte range of a lent value, as the parent sees it.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    addr: usize,
    bytes: usize,
    writable: bool,
    /// The element type's alignment: a new mapping keeps it only up to a page.
    align: usize,
}

/// New addresses for the regions of a lent value, in the child, in the order of
/// [`Lend::regions`].
#[derive(Debug)]
pub struct Relocations {
    addrs: std::vec::IntoIter<usize>,
}

impl Relocations {
    fn next(&mut self) -> usize {
        self.addrs.next().expect("one new address per region described")
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Values a [`Scope::fork_with`](crate::process::Scope::fork_with) child may be lent: borrowed slices and
/// elements of shared memory (`&[T]`, `&mut [T]`, `&T`, `&mut T` for `T: Pod`), and tuples,
/// arrays, `Vec`s and `Option`s of them, and `()`.
///
/// A slice of a [`SharedArray`](crate::SharedArray) (or of a
/// [`RawValue`](crate::RawValue)) is mapped anew in the child, so the child reaches that
/// memory, and only that memory, through the value it is handed. A shared slice of ordinary
/// (private) memory is handed over as the child's copy of it; a mutable one is refused with
/// [`Error::NotShared`], since the child's writes would never reach the parent.
///
/// The trait is sealed: what it promises (every pointer into shared memory is described, and
/// rebuilt from the new addresses) is shmpool's to keep.
///
/// ```
/// fn takes_lendable<L: shmpool::process::Lend>(_: &L) {}
/// let mut a = shmpool::SharedArray::<f32>::zeroed(8)?;
/// let (x, y) = a.split_at_mut(4);
/// takes_lendable(&(x, &*y, vec![0u8; 3].as_slice()));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub trait Lend: Send + sealed::Sealed + Sized {
    /// Appends every borrowed range, in a fixed order.
    #[doc(hidden)]
    fn regions(&self, out: &mut Vec<Region>);

    /// Rebuilds the value on the child's new addresses, visiting ranges in the order of
    /// [`regions`](Lend::regions).
    ///
    /// # Safety
    ///
    /// `at` yields, for each range `regions` described, in order, the address where the same
    /// bytes are now mapped in this process (readable, and writable for a writable range), or
    /// the original address where the bytes are this process's own copy; each mapping lives for
    /// the rest of the process.
    #[doc(hidden)]
    unsafe fn relocate(self, at: &mut Relocations) -> Self;
}

impl sealed::Sealed for () {}
impl Lend for () {
    fn regions(&self, _: &mut Vec<Region>) {}
    unsafe fn relocate(self, _: &mut Relocations) -> Self {}
}

impl<T: Pod + Sync> sealed::Sealed for &[T] {}
impl Region {
    fn of<T>(s: &[T], writable: bool) -> Region {
        Region {
            addr: s.as_ptr() as usize,
            bytes: size_of_val(s),
            writable,
            align: align_of::<T>(),
        }
    }
}

impl<T: Pod + Sync> Lend for &[T] {
    fn regions(&self, out: &mut Vec<Region>) {
        out.push(Region::of(self, false));
    }
    unsafe fn relocate(self, at: &mut Relocations) -> Self {
        let p = at.next() as *const T;
        // SAFETY: `p` holds the same `len` elements, readable, for the rest of the process
        // (caller); alignment is kept (same offset within a page). No one writes them while this
        // borrow lives: the parent's `&` borrow lasts until the child is reaped.
        unsafe { std::slice::from_raw_parts(p, self.len()) }
    }
}

impl<T: Pod + Send> sealed::Sealed for &mut [T] {}
impl<T: Pod + Send> Lend for &mut [T] {
    fn regions(&self, out: &mut Vec<Region>) {
        out.push(Region::of(self, true));
    }
    unsafe fn relocate(self, at: &mut Relocations) -> Self {
        let p = at.next() as *mut T;
        // SAFETY: as for `&[T]`, writable; the parent's `&mut` borrow keeps every other access
        // off these elements until the child is reaped, and this is the child's only pointer.
        unsafe { std::slice::from_raw_parts_mut(p, self.len()) }
    }
}

impl<T: Pod + Sync> sealed::Sealed for &T {}
impl<T: Pod + Sync> Lend for &T {
    fn regions(&self, out: &mut Vec<Region>) {
        std::slice::from_ref(*self).regions(out)
    }
    unsafe fn relocate(self, at: &mut Relocations) -> Self {
        // SAFETY: forwarded contract.
        let one = unsafe { std::slice::from_ref(self).relocate(at) };
        &one[0]
    }
}

impl<T: Pod + Send> sealed::Sealed for &mut T {}
impl<T: Pod + Send> Lend for &mut T {
    fn regions(&self, out: &mut Vec<Region>) {
        out.push(Region::of(std::slice::from_ref(&**self), true));
    }
    unsafe fn relocate(self, at: &mut Relocations) -> Self {
        // SAFETY: forwarded contract.
        let one = unsafe { std::slice::from_mut(self).relocate(at) };
        &mut one[0]
    }
}

impl<L: Lend> sealed::Sealed for Option<L> {}
impl<L: Lend> Lend for Option<L> {
    fn regions(&self, out: &mut Vec<Region>) {
        if let Some(l) = self {
            l.regions(out)
        }
    }
    unsafe fn relocate(self, at: &mut Relocations) -> Self {
        // SAFETY: forwarded contract (the same variant described its regions).
        self.map(|l| unsafe { l.relocate(at) })
    }
}

impl<L: Lend> sealed::Sealed for Vec<L> {}
impl<L: Lend> Lend for Vec<L> {
    fn regions(&self, out: &mut Vec<Region>) {
        self.iter().for_each(|l| l.regions(out))
    }
    unsafe fn relocate(self, at: &mut Relocations) -> Self {
        // SAFETY: forwarded contract, element by element in the same order.
        self.into_iter().map(|l| unsafe { l.relocate(at) }).collect()
    }
}

impl<L: Lend, const N: usize> sealed::Sealed for [L; N] {}
impl<L: Lend, const N: usize> Lend for [L; N] {
    fn regions(&self, out: &mut Vec<Region>) {
        self.iter().for_each(|l| l.regions(out))
    }
    unsafe fn relocate(self, at: &mut Relocations) -> Self {
        // SAFETY: forwarded contract, element by element in the same order.
        self.map(|l| unsafe { l.relocate(at) })
    }
}

macro_rules! lend_tuple {
    ($($name:ident),+) => {
        impl<$($name: Lend),+> sealed::Sealed for ($($name,)+) {}
        impl<$($name: Lend),+> Lend for ($($name,)+) {
            #[allow(non_snake_case)]
            fn regions(&self, out: &mut Vec<Region>) {
                let ($($name,)+) = self;
                $($name.regions(out);)+
            }
            #[allow(non_snake_case)]
            unsafe fn relocate(self, at: &mut Relocations) -> Self {
                let ($($name,)+) = self;
                // SAFETY: forwarded contract, field by field in the order `regions` used.
                unsafe { ($($name.relocate(at),)+) }
            }
        }
    };
}
lend_tuple!(A);
lend_tuple!(A, B);
lend_tuple!(A, B, C);
lend_tuple!(A, B, C, D);
lend_tuple!(A, B, C, D, E);
lend_tuple!(A, B, C, D, E, F);

/// How a lent value's regions will be mapped in the child: made in the parent, carried out in
/// the child right after the fork.
pub(crate) struct LendPlan {
    /// Per region: the file range to map anew (shared memory), or `None` (the child's own copy,
    /// or an empty range), with the region's original address.
    maps: Vec<(usize, Option<(FileRange, bool)>)>,
}

impl LendPlan {
    /// Resolves every region of `lent` against this process's fork-private mappings.
    pub(crate) fn new<L: Lend>(lent: &L) -> Result<LendPlan> {
        let mut regions = Vec::new();
        lent.regions(&mut regions);
        let maps = regions
            .iter()
            .map(|r| {
                if r.bytes == 0 {
                    return Ok((r.addr, None));
                }
                match forkmap::find(r.addr, r.bytes) {
                    // Mapped anew, at a page boundary of the kernel's choosing: the offset in
                    // the page is kept, so alignment is, up to a page (what arrays allow).
                    Some(_) if r.align > sys::map::page_size() => Err(Error::InvalidArgument {
                        what: "lent value",
                        reason: format!(
                            "its type is aligned to {} bytes, more than a page; a child maps \
                             what it is lent at page granularity, so lend it as bytes \
                             (&[u8]) and cast in the child",
                            r.align
                        ),
                    }),
                    Some(range) => Ok((r.addr, Some((range, r.writable)))),
                    None if r.writable => Err(Error::NotShared {
                        what: "a mutable slice",
                        addr: r.addr,
                        bytes: r.bytes,
                    }),
                    None => Ok((r.addr, None)),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LendPlan { maps })
    }

    /// In the child: maps every shared range anew and returns the new addresses.
    pub(crate) fn map_in_child(self) -> std::io::Result<Relocations> {
        let mut addrs = Vec::with_capacity(self.maps.len());
        for (addr, m) in self.maps {
            addrs.push(match m {
                None => addr,
                Some((r, writable)) => {
                    let base = sys::map::map_fd_range(r.fd, r.offset, r.len, writable)?;
                    // Registered like any fork-private mapping: kept from this child's own
                    // children, and lendable to them in turn.
                    forkmap::register(base, r.len, r.fd, r.offset, forkmap::Policy::Private)?;
                    base.as_ptr() as usize + r.delta
                }
            });
        }
        Ok(Relocations { addrs: addrs.into_iter() })
    }
}
