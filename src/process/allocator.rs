//! Which allocator, and how it gives memory back.
//!
//! Rust's allocations go to mimalloc ([`Allocator`], installed by the
//! binary). Under glibc's allocator a storm of connections left most of
//! its memory resident: each socket keeps a few small blocks for its life
//! (its task, its I/O registration, its inbox), made between the larger
//! ones its upgrade and greeting use and free, so the freed space was
//! scattered over pages a few live bytes kept (19,000 idle sockets: 4.5 KiB
//! resident each). mimalloc keeps blocks of each size on pages of their own
//! and returns pages that empty, at once (`RETURN_FREED_MEMORY`) and when
//! a worker goes idle ([`collect_when_idle`]): 2.1 KiB (BENCHMARKS.md,
//! "Idle memory").
//!
//! What C code allocates (SQLite) still goes to the C library's malloc.
//! There, glibc raises its mmap threshold after a large block is freed,
//! after which blocks that size come from (and stay in) the heap; pinning
//! the threshold keeps large blocks mmapped and returned on free (argon2's
//! 19 MiB runs once left 380 MB resident after 60 registrations).

/// The allocator the binary installs (`#[global_allocator]`).
pub type Allocator = mimalloc::MiMalloc;

/// mimalloc's options by their place in its `mi_option_e` (the same in
/// its versions 2 and 3; the Rust bindings name neither).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Memory mimalloc no longer uses goes back to the system at once, and is
/// committed only as it is used: by default it commits its arenas eagerly
/// and resets (rather than returns) what it frees, after a delay, so an
/// idle server kept what a burst of sign-ins (argon2's 19 MiB each) or of
/// connections had used. Set before anything is allocated (the first
/// allocation reserves the first arena): run as the binary is loaded,
/// before Rust's runtime starts.
#[used]
#[unsafe(link_section = ".init_array")]
static RETURN_FREED_MEMORY: extern "C" fn() = return_freed_memory;

extern "C" fn return_freed_memory() {
    // SAFETY: setting an option only changes a value mimalloc reads when it
    // next reserves or purges; any value is valid for these two, and this
    // allocates nothing.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

/// How often a thread at most hands its free pages back, when it idles.
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Hands back what this thread's heap holds free, at most once per
/// `COLLECT_EVERY`: mimalloc returns an emptied page when the thread
/// that owns it next allocates or collects, so a worker that went quiet
/// after a storm of connections would keep what the storm freed until the
/// next busy moment. Called by the runtime's workers as they park.
pub fn collect_when_idle() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    LAST.with(|last| {
        let now = std::time::Instant::now();
        if last.get().is_none_or(|then| now.duration_since(then) >= COLLECT_EVERY) {
            last.set(Some(now));
            // SAFETY: collecting only frees what this thread's heap holds free.
            unsafe { libmimalloc_sys::mi_collect(false) };
        }
    });
}

/// Blocks at least this large are mmapped and unmapped on free.
const MMAP_THRESHOLD: i32 = 1024 * 1024;

/// Pins glibc's mmap threshold (a fixed value also turns off its dynamic
/// raising). Other allocators already return large blocks; nothing to do.
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts the allocator's tuning; it is safe to call
    // at any time and leaves the setting unchanged when it fails.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
