//! A box whose memory comes from, and goes back to, a per-thread stack of
//! spare blocks: the last block given back is the first taken again.
//!
//! Each HTTP/1.1 request's pipeline future (about 2 KiB) lives on the heap
//! while the request runs. From the global allocator every request got
//! another block (mimalloc hands out a page's other free blocks before the
//! ones just freed), cold in the cache, and each layer of the pipeline
//! writing its state into it missed the first-level data cache. A block
//! given back here is taken again by the next request on this thread while
//! it is still warm. Blocks are kept for one layout, a few hundred at most
//! per thread; the rest go back to the allocator.
//!
//! Unsafe code, allowed in this module only (the crate denies it): raw
//! allocation and an owning pointer, the same contract as `Box<T>`: every
//! value written once and dropped once, every block freed with the layout
//! it was allocated with.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;

// Spare blocks kept per thread: as many as the spare buffers (about as
// many as requests in flight at once on a busy worker).
use crate::proxy::h1::buffers::KEEP;

struct Spare {
    /// The layout of the blocks kept (one in practice); blocks of any
    /// other layout are freed, not kept.
    layout: Option<Layout>,
    blocks: Vec<NonNull<u8>>,
}

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            for b in self.blocks.drain(..) {
                // SAFETY: every kept block was allocated with `layout`.
                unsafe { alloc::dealloc(b.as_ptr(), layout) };
            }
        }
    }
}

thread_local! {
    static SPARE: RefCell<Spare> = const {
        RefCell::new(Spare { layout: None, blocks: Vec::new() })
    };
}

fn take(layout: Layout) -> NonNull<u8> {
    let spare = SPARE
        .try_with(|s| {
            let mut s = s.borrow_mut();
            if s.layout == Some(layout) {
                s.blocks.pop()
            } else {
                None
            }
        })
        .ok()
        .flatten();
    spare.unwrap_or_else(|| {
        // SAFETY: callers never ask for a zero-sized layout.
        let p = unsafe { alloc::alloc(layout) };
        NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    })
}

/// Keeps `block` for the next value of this layout, or frees it.
fn give_back(block: NonNull<u8>, layout: Layout) {
    let kept = SPARE
        .try_with(|s| {
            let mut s = s.borrow_mut();
            match s.layout {
                None => s.layout = Some(layout),
                Some(l) if l != layout => return false,
                Some(_) => {}
            }
            if s.blocks.len() < KEEP {
                s.blocks.push(block);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: `block` was allocated with `layout` and is not used again.
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
    }
}

/// An owned `T` at a fixed heap address (pinned for its whole life).
pub struct Recycled<T> {
    ptr: NonNull<T>,
    _owns: PhantomData<T>,
}

// SAFETY: `Recycled<T>` owns its `T` as `Box<T>` does; a block may be kept
// or freed by any thread.
unsafe impl<T: Send> Send for Recycled<T> {}
// SAFETY: as for `Box<T>`: shared access only gives `&T`.
unsafe impl<T: Sync> Sync for Recycled<T> {}

impl<T> Recycled<T> {
    /// `make` runs once the block is there, so the value can be built in
    /// it rather than built elsewhere and copied in.
    #[inline(always)]
    pub fn new_with(make: impl FnOnce() -> T) -> Recycled<T> {
        let layout = Layout::new::<T>();
        let ptr = if layout.size() == 0 {
            NonNull::<T>::dangling()
        } else {
            take(layout).cast::<T>()
        };
        // SAFETY: the block is fresh or given back (its value dropped), sized
        // and aligned for `T` (or `T` is zero-sized and the pointer aligned).
        unsafe { ptr.as_ptr().write(make()) };
        Recycled {
            ptr,
            _owns: PhantomData,
        }
    }

    /// The value, pinned: it never moves until it is dropped.
    pub fn as_mut(&mut self) -> Pin<&mut T> {
        // SAFETY: the value stays at `ptr` until `drop`, and no `&mut T`
        // that could move it is handed out.
        unsafe { Pin::new_unchecked(self.ptr.as_mut()) }
    }
}

impl<T> Drop for Recycled<T> {
    fn drop(&mut self) {
        let layout = Layout::new::<T>();
        // SAFETY: the value was written in `new_with` and is dropped only here.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
        if layout.size() != 0 {
            give_back(self.ptr.cast(), layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_block_given_back_is_the_next_one_taken() {
        let a = Recycled::new_with(|| [1u64; 64]);
        let first = a.ptr.cast::<u8>();
        drop(a);
        let b = Recycled::new_with(|| [2u64; 64]);
        assert_eq!(b.ptr.cast::<u8>(), first, "the spare block is reused");
        // SAFETY: `b` holds an initialized value.
        assert_eq!(unsafe { *b.ptr.as_ptr() }, [2u64; 64]);
        // Held at once: two blocks.
        let c = Recycled::new_with(|| [3u64; 64]);
        assert_ne!(c.ptr.cast::<u8>(), b.ptr.cast::<u8>());
    }

    #[test]
    fn values_are_dropped_once() {
        let counter = Rc::new(());
        let held = Recycled::new_with(|| (counter.clone(), [0u8; 100]));
        assert_eq!(Rc::strong_count(&counter), 2);
        drop(held);
        assert_eq!(Rc::strong_count(&counter), 1);
        // Another layout: freed rather than kept, dropped all the same.
        let other = Recycled::new_with(|| (counter.clone(), [0u8; 300]));
        drop(other);
        assert_eq!(Rc::strong_count(&counter), 1);
        drop(Recycled::new_with(|| ()));
    }

    #[tokio::test]
    async fn polls_the_future_in_place() {
        let mut fut = Recycled::new_with(|| async {
            tokio::task::yield_now().await;
            7
        });
        assert_eq!(fut.as_mut().await, 7);
    }
}
