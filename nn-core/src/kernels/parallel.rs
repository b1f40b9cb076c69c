//! Large products on several threads (the `threading` feature): `C` is split into
//! column (or row) blocks, one per thread, each computed by the widest register tile
//! the CPU has (AVX-512 or AVX2, the same bits).
//!
//! The workers are started by the first large product and kept for every later one;
//! handing out a product allocates nothing. Between products a worker spins for about
//! [`SPIN`] pauses (tens to hundreds of microseconds) before it parks on a condition
//! variable, so the products of a training step, which follow each other closely, do
//! not pay for a wake-up; the caller likewise spins before it parks to wait for the
//! workers. A notification is a system call only when a thread is parked. The caller
//! computes the first part itself, then any part no worker has claimed yet, so that a
//! worker that is slow to come delays nothing. Quick jobs (a convolution of one sample,
//! a few microseconds: [`for_each_quick_part`]) are shared only with the workers that
//! are awake, and wake parked ones only when they follow each other closely. When
//! another thread's product is in flight, the product runs on the calling thread alone
//! instead of waiting.
use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, TryLockError};

use super::gemm::{threads, MatRef};
use super::{avx2, avx512};

/// Pauses (`spin_loop` hints) a thread spins for before it parks.
const SPIN: usize = 4000;

/// The work of one call of [`for_each_part`]: `run(part)` for `part` in `0..parts`,
/// each part taken by the first thread to claim it ([`Pool::next`]).
#[derive(Clone, Copy)]
struct Job {
    run: *const (dyn Fn(usize) + Sync),
    parts: usize,
    /// Whether a worker that was parked when the job came joins it ([`for_each_part`])
    /// or leaves it to the threads that were awake ([`for_each_quick_part`]).
    wake: bool,
}

// SAFETY: `run` points to a `Sync` closure that outlives the job (the caller closes the
// job and waits for every worker that joined it before returning).
unsafe impl Send for Job {}

struct State {
    /// The open job: workers join it while it is set.
    job: Option<Job>,
    /// Whether a part panicked.
    panicked: bool,
}

struct Pool {
    state: Mutex<State>,
    /// Incremented (with `state` locked) for every job.
    generation: AtomicU64,
    /// The next part of the open job not yet claimed.
    next: AtomicUsize,
    /// Workers that joined the current job (with `state` locked) and have not finished
    /// their parts.
    active: AtomicUsize,
    work: Condvar,
    /// Workers parked on `work` (changed with `state` locked).
    parked_workers: AtomicUsize,
    done: Condvar,
    /// Whether the caller is parked on `done` (changed with `state` locked).
    parked_caller: AtomicBool,
    /// Held by the thread whose job the workers are computing.
    busy: Mutex<()>,
    /// When the pool started.
    start: std::time::Instant,
    /// When (nanoseconds from `start`) the last quick job found a worker parked.
    parked_quick: AtomicU64,
    /// When a quick job last woke the workers.
    woke_quick: AtomicU64,
}

impl Pool {
    /// Whether a quick job that finds a worker parked wakes it (noting the time): when
    /// the previous quick job that found one parked came less than
    /// [`QUICK_WAKE_WINDOW_NS`] before (quick jobs then follow each other closely
    /// enough that a woken worker, spinning between them, takes a part of the later
    /// ones), and no quick job has woken the workers in the last
    /// [`QUICK_WAKE_EVERY_NS`]. A wake-up costs the caller a system call, and on a busy
    /// machine a woken worker that the scheduler puts on the caller's core delays it
    /// until the worker parks again (up to about 100 µs on the 2-core AMD EPYC Zen 4
    /// KVM guest with other builds running): so jobs further apart leave the workers
    /// parked, and the cost is paid at most once in that time.
    fn wake_for_quick_job(&self) -> bool {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let close = now.saturating_sub(self.parked_quick.swap(now, Ordering::Relaxed)) < QUICK_WAKE_WINDOW_NS;
        let wake = close && now.saturating_sub(self.woke_quick.load(Ordering::Relaxed)) >= QUICK_WAKE_EVERY_NS;
        if wake {
            self.woke_quick.store(now, Ordering::Relaxed);
        }
        wake
    }
}

/// How closely two quick jobs that find a worker parked follow each other for the
/// second to wake it ([`for_each_quick_part`]): well within the [`SPIN`] pauses a
/// worker spins for between jobs (100 to 270 µs on the AMD EPYC Zen 4 KVM guest).
const QUICK_WAKE_WINDOW_NS: u64 = 50_000;

/// The least time between two wake-ups by quick jobs (10 ms).
const QUICK_WAKE_EVERY_NS: u64 = 10_000_000;

static POOL: OnceLock<&'static Pool> = OnceLock::new();

/// The pool of `threads() - 1` workers, started on first use.
fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let workers = threads() - 1;
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            state: Mutex::new(State { job: None, panicked: false }),
            generation: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            work: Condvar::new(),
            parked_workers: AtomicUsize::new(0),
            done: Condvar::new(),
            parked_caller: AtomicBool::new(false),
            busy: Mutex::new(()),
            start: std::time::Instant::now(),
            parked_quick: AtomicU64::new(0),
            woke_quick: AtomicU64::new(0),
        }));
        for part in 1..=workers {
            std::thread::Builder::new()
                .name(format!("nn-gemm-{part}"))
                .spawn(move || worker(pool))
                .expect("cannot start a GEMM worker thread");
        }
        pool
    })
}

/// Spins until `ready()` or for [`SPIN`] pauses; whether it became ready.
fn spin_until(ready: impl Fn() -> bool) -> bool {
    for _ in 0..SPIN {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
    }
    ready()
}

/// Calls `run(part)` for every part of `job` this thread claims, until none is left;
/// whether one panicked.
fn claim_parts(pool: &Pool, job: Job) -> bool {
    let mut panicked = false;
    loop {
        let part = pool.next.fetch_add(1, Ordering::Relaxed);
        if part >= job.parts {
            return panicked;
        }
        // SAFETY: the closure lives until the job is closed and every thread that
        // joined it has finished (see `Job`).
        let run = unsafe { &*job.run };
        panicked |= std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(part))).is_err();
    }
}

fn worker(pool: &'static Pool) {
    avx2::reserve_blocks();
    reserve_scratch();
    let mut seen = 0;
    loop {
        let new_job = || pool.generation.load(Ordering::Acquire) != seen;
        let job = {
            spin_until(new_job);
            let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            let parked = !new_job();
            if parked {
                pool.parked_workers.fetch_add(1, Ordering::Relaxed);
                while !new_job() {
                    state = pool.work.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                pool.parked_workers.fetch_sub(1, Ordering::Relaxed);
            }
            seen = pool.generation.load(Ordering::Acquire);
            // Join the job if it is still open (the caller closes it, with `state`
            // locked, once it has run every part no worker claimed), unless this worker
            // was parked and the job is quick.
            let job = state.job.filter(|job| job.wake || !parked);
            if job.is_some() {
                pool.active.fetch_add(1, Ordering::Relaxed);
            }
            job
        };
        let Some(job) = job else { continue };
        if claim_parts(pool, job) {
            pool.state.lock().unwrap_or_else(|e| e.into_inner()).panicked = true;
        }
        if pool.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last worker: wake the caller if it parked (it marks itself parked and
            // checks `active` with `state` locked before it waits, so taking the lock
            // here loses no wake-up). The notification is made after the lock is
            // released, and only if the caller parked: a caller still spinning takes the
            // lock without waiting for a system call.
            let parked = {
                let _state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
                pool.parked_caller.load(Ordering::Relaxed)
            };
            if parked {
                pool.done.notify_one();
            }
        }
    }
}

/// Floats of the scratch that every thread taking parts keeps ([`with_scratch`]):
/// 64 KiB.
pub(crate) const PART_SCRATCH: usize = 16 * 1024;

std::thread_local! {
    static SCRATCH: RefCell<std::vec::Vec<f32>> = const { RefCell::new(std::vec::Vec::new()) };
}

/// Gives this thread's scratch its full size now, so that no later part allocates.
fn reserve_scratch() {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < PART_SCRATCH {
            scratch.resize(PART_SCRATCH, 0.0);
        }
    });
}

/// Calls `run` with this thread's scratch of [`PART_SCRATCH`] floats, for a part of
/// [`for_each_part`] that cannot use the caller's (the threads of the pool and the
/// callers of `for_each_part` reserve it before their first part).
///
/// # Panics
/// If `run` calls `with_scratch` itself.
pub(crate) fn with_scratch<R>(run: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < PART_SCRATCH {
            scratch.resize(PART_SCRATCH, 0.0);
        }
        run(&mut scratch[..PART_SCRATCH])
    })
}

/// Calls `run(part)` for every `part` in `0..parts` and returns when all are done:
/// part 0 on this thread, each other part on whichever thread claims it first, a
/// worker or this thread once it has finished its own (so that a worker that is
/// parked, or slowed by another process, delays nothing: this thread then runs every
/// part); all here when the pool is busy.
pub(crate) fn for_each_part(parts: usize, run: &(dyn Fn(usize) + Sync)) {
    for_each_part_by(parts, run, true)
}

/// [`for_each_part`] for work of a few microseconds: the workers that are parked are
/// woken, for the calls that follow, but take no part in this one, which the threads
/// that were awake share (a parked worker takes tens of microseconds to wake, which a
/// caller waiting for its part would pay).
pub(crate) fn for_each_quick_part(parts: usize, run: &(dyn Fn(usize) + Sync)) {
    for_each_part_by(parts, run, false)
}

/// [`for_each_part`], parked workers joining the job if `wake`.
fn for_each_part_by(parts: usize, run: &(dyn Fn(usize) + Sync), wake: bool) {
    let pool = pool();
    avx2::reserve_blocks();
    reserve_scratch();
    let _busy = match pool.busy.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            (0..parts).for_each(run);
            return;
        }
    };
    // SAFETY: only the lifetime is erased; this function does not return before the
    // job is closed and every worker that joined it has finished.
    let erased: *const (dyn Fn(usize) + Sync + 'static) = unsafe { core::mem::transmute(run) };
    let job = Job { run: erased, parts, wake };
    {
        let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        state.job = Some(job);
        state.panicked = false;
        pool.next.store(1, Ordering::Relaxed);
        pool.generation.fetch_add(1, Ordering::AcqRel);
    }
    // After the lock is released (a worker parks only after counting itself parked and
    // checking `generation` with `state` locked, so no wake-up is lost): a worker still
    // spinning sees the new job and takes the lock without waiting for this system
    // call, which is made only if a worker is parked.
    if pool.parked_workers.load(Ordering::Relaxed) > 0 && (wake || pool.wake_for_quick_job()) {
        pool.work.notify_all();
    }
    // This thread's part, then any part no worker has claimed; a panic here still
    // waits for the workers below.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(0);
        loop {
            let part = pool.next.fetch_add(1, Ordering::Relaxed);
            if part >= parts {
                break;
            }
            run(part);
        }
    }));
    // Close the job: no worker joins it after this, and those that joined finish the
    // parts they claimed.
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    state.job = None;
    let finished = || pool.active.load(Ordering::Acquire) == 0;
    if !finished() {
        drop(state);
        spin_until(finished);
        state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        if !finished() {
            pool.parked_caller.store(true, Ordering::Relaxed);
            while !finished() {
                state = pool.done.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            pool.parked_caller.store(false, Ordering::Relaxed);
        }
    }
    let panicked = state.panicked;
    drop(state);
    if let Err(payload) = caught {
        std::panic::resume_unwind(payload);
    }
    assert!(!panicked, "a GEMM worker thread panicked");
}

/// Calls `run(item)` for every item of `items` on [`threads`] threads (at most one a
/// item), each thread taking the next item not yet taken until none is left
/// ([`Claims`]): work already split into disjoint pieces, each borrowed by one thread
/// only, which a thread slowed by another process leaves to the others.
pub(crate) fn for_each_item<T: Send>(items: &mut [T], run: &(dyn Fn(&mut T) + Sync)) {
    let at = Items(items.as_mut_ptr());
    let claims = Claims::new(items.len());
    let run_part = |_part: usize| {
        claims.run(|i| {
            // SAFETY: `i < items.len()` and every index is claimed once, so the item
            // lies within `items`, which stays borrowed until every part is done, and
            // no other thread takes it.
            run(unsafe { &mut *at.get(i) })
        })
    };
    for_each_part(threads().min(items.len()), &run_part);
}

/// The items of [`for_each_item`], shared between its parts.
struct Items<T>(*mut T);

// SAFETY: each item is taken by one thread only, and the items may be sent to other
// threads.
unsafe impl<T: Send> Sync for Items<T> {}

impl<T> Items<T> {
    /// Item `i`'s pointer (a method, so that closures capture the `Sync` wrapper).
    fn get(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

/// Indices `0..count` handed out one at a time to whichever thread asks next: the
/// threads of a [`for_each_part`] call [`Claims::run`] until none is left, so that a
/// thread slowed by another process leaves its share to the others, and
/// [`Claims::wait_all`] where a second phase needs every index done.
pub(crate) struct Claims {
    next: AtomicUsize,
    done: AtomicUsize,
    count: usize,
}

impl Claims {
    /// `count` indices, none claimed.
    pub(crate) const fn new(count: usize) -> Self {
        Claims { next: AtomicUsize::new(0), done: AtomicUsize::new(0), count }
    }

    /// Calls `run(i)` for every index this thread claims, until none is left.
    pub(crate) fn run(&self, mut run: impl FnMut(usize)) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count {
                break;
            }
            run(i);
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// Spins until every index is done (`true`: their writes are visible to this
    /// thread) or `abort` is set by a part that panicked (`false`).
    pub(crate) fn wait_all(&self, abort: &AtomicBool) -> bool {
        while self.done.load(Ordering::Acquire) < self.count {
            if abort.load(Ordering::Acquire) {
                return false;
            }
            std::hint::spin_loop();
        }
        true
    }
}

/// A raw pointer to `C` that may be shared: every part writes its own block.
#[derive(Clone, Copy)]
pub(crate) struct Output(pub(crate) *mut f32);

// SAFETY: the parts write disjoint blocks of `C` (see `gemm`).
unsafe impl Sync for Output {}

impl Output {
    /// The pointer `offset` floats in (a method, so that closures capture the `Sync`
    /// wrapper rather than the raw pointer field).
    ///
    /// # Safety
    /// `offset` is within `C`.
    pub(crate) unsafe fn at(&self, offset: usize) -> *mut f32 {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(offset) }
    }
}

/// `C = alpha A B + beta C` on [`threads`] threads: `C` is split into equal blocks of
/// rows (in multiples of the tile's rows, or, when `C` has more columns than rows, of
/// columns in multiples of the tile width), and each thread computes its block with the
/// one-thread kernel, packing its own blocks of `A` and `B`.
///
/// Each thread packing all of `B` for its rows (rather than the threads packing it once
/// together into a shared buffer and taking blocks of rows from a queue) copies `B`
/// once per thread, but then no thread waits for another before the end, the block of
/// `B` a thread sweeps stays in its own L2, and no thread reads lines the other core
/// just wrote: on the 2-core Xeon, 1024^3 on two threads about 1.15 times as fast as
/// with the shared buffer, 256^3 1.2 times (`docs/speed.md`, "Threads").
///
/// The caller (`gemm::gemm`) has checked the shapes and bounds, and that the CPU has
/// AVX2 and FMA.
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, n) = (a.rows, b.cols);
    let parts = threads();
    let out = Output(c.as_mut_ptr());
    // Each thread packs all of the operand the split does not cut: `B` (`k x n`) for
    // blocks of rows, `A` (`m x k`) for blocks of columns; so rows unless `C` has more
    // columns than rows (then also when its rows are too few to give every thread
    // several tiles). For the `128 x 512 x 512` input gradient of a dense layer at
    // batch 128, columns take 0.83 times the time of rows on the 2-core AMD EPYC
    // (Zen 5) with AVX-512, 0.92 times with AVX2; where `n` and `m` are close the two
    // are within 2 %.
    let by_columns = n > m;
    // Block sizes in whole tiles (rows rounded up to the tile's rows, columns to its
    // width), so that only the last block has a partial tile.
    let (mr, nr) = if super::isa::isa().avx512() { (avx512::MR, avx512::NR) } else { (avx2::MR, avx2::NR) };
    let step = if by_columns { n.div_ceil(parts).next_multiple_of(nr) } else { m.div_ceil(parts).next_multiple_of(mr) };
    let run = |part: usize| {
        let start = part * step;
        let len = if by_columns { n } else { m };
        if start >= len {
            return;
        }
        let end = (start + step).min(len);
        let (a, b, offset) = if by_columns {
            let b = MatRef { data: &b.data[start * b.cs..], rows: b.rows, cols: end - start, rs: b.rs, cs: b.cs };
            (a, b, start)
        } else {
            let a = MatRef { data: &a.data[start * a.rs..], rows: end - start, cols: a.cols, rs: a.rs, cs: a.cs };
            (a, b, start * ldc)
        };
        // SAFETY: the CPU has AVX2 and FMA (the caller checked); the sub-views lie
        // within their slices; this part's block of `C` (its rows or columns) lies
        // within `c` and no other part writes it.
        unsafe { super::gemm::one_thread(alpha, a, b, beta, out.at(offset), ldc) };
    };
    for_each_part(parts, &run);
}

/// Sets `abort` if dropped while its thread unwinds, so that the other parts stop
/// waiting for work that will not finish (a layer norm's parameter gradients in
/// `layers::layer_norm`).
pub(crate) struct AbortOnPanic<'a>(pub(crate) &'a AtomicBool);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// [`super::gemm::gemv_batch`]'s AVX2 kernel on [`threads`] threads: the rows of `A`
/// (outputs) are split into equal blocks, each thread computing its block for every
/// vector. Every output is computed as on one thread, bit for bit.
///
/// The caller has checked the shapes and bounds, prepared `y` for `beta`, and that the
/// CPU has AVX2 and FMA.
pub fn gemv_batch(alpha: f32, a: MatRef<'_>, x: &[f32], y: &mut [f32], batch: usize) {
    let (m, n) = (a.rows, a.cols);
    let parts = threads();
    let out = Output(y.as_mut_ptr());
    let step = m.div_ceil(parts).div_ceil(4) * 4;
    let run = |part: usize| {
        let start = part * step;
        if start >= m {
            return;
        }
        let rows = (start + step).min(m) - start;
        // SAFETY: the CPU has AVX2 and FMA (the caller checked); rows `start..start +
        // rows` of `A` lie within `a.data`; this part writes only columns `start..start
        // + rows` of every vector of `y` (row stride `m`), which no other part writes.
        unsafe { gemv_batch_block(alpha, &a.data[start * a.rs..], a.rs, rows, n, x, out.at(start), m, batch) };
    };
    for_each_part(parts, &run);
}

/// [`super::gemm::gemv_batch`] with `beta = 1` on this thread, by the kernel of
/// [`gemv_batch`]: `y_s += alpha A x_s` for the `batch` vectors of `x`, `y` holding
/// `batch` vectors of `A.rows` floats; every output the bits of `gemv` for its vector
/// alone. For work already split between threads (a dense layer's batch forward, by
/// samples).
///
/// # Panics
/// If `A`'s column stride is not 1, a view reaches past its slice, the slices are too
/// short or the CPU does not have AVX2 and FMA.
pub(crate) fn gemv_batch_one_thread(alpha: f32, a: MatRef<'_>, x: &[f32], y: &mut [f32], batch: usize) {
    let (m, n) = (a.rows, a.cols);
    let y_len = batch.checked_mul(m);
    assert!(a.cs == 1 && a.in_bounds() && y_len.is_some_and(|len| y.len() >= len), "gemv_batch_one_thread: shapes");
    assert!(super::isa::isa().avx2(), "gemv_batch_one_thread: the CPU has no AVX2");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the CPU has AVX2 and FMA (asserted); the kernels assert that `a` holds
    // `m` rows and `x` `batch` vectors; `y` holds `batch` vectors of `m` floats
    // (asserted) and is borrowed mutably here.
    unsafe { gemv_batch_block(alpha, a.data, a.rs, m, n, x, y.as_mut_ptr(), m, batch) }
}

/// The one-thread kernel of [`gemv_batch`] for `m` rows of `A` (row stride `rs`, `n`
/// columns) and `batch` vectors, `y_s` at `y + s ldy`: AVX-512 from
/// `BATCH_MIN_COLUMNS` columns where the CPU has it, else AVX2 (the same bits).
///
/// # Safety
/// The CPU has AVX2 and FMA; `y + s ldy + i` is writable and not otherwise borrowed
/// for `s < batch`, `i < m` (the kernels assert the bounds of `a` and `x`).
#[allow(clippy::too_many_arguments)]
unsafe fn gemv_batch_block(
    alpha: f32,
    a: &[f32],
    rs: usize,
    m: usize,
    n: usize,
    x: &[f32],
    y: *mut f32,
    ldy: usize,
    batch: usize,
) {
    // SAFETY: the caller's contract; `avx512()` means the CPU has AVX-512 F too.
    unsafe {
        if super::isa::isa().avx512() && n >= super::avx512::BATCH_MIN_COLUMNS {
            super::avx512::gemv_batch_strided(alpha, a, rs, m, n, x, y, ldy, batch)
        } else {
            avx2::gemv_batch_strided(alpha, a, rs, m, n, x, y, ldy, batch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The threaded product gives the one-thread kernel's bits, split by rows (blocks
    /// of whole tiles, packed per thread) and by columns, for row-major and transposed
    /// operands, `beta` 0 and 1, and sizes around the tiles, the panel depth and the
    /// packed blocks.
    #[test]
    fn threaded_product_equals_one_thread_bit_for_bit() {
        if !crate::kernels::isa::isa().avx2() {
            return;
        }
        let mut rng = Rng::new(7);
        for (m, k, n) in [
            (192, 1, 1),
            (200, 257, 33),
            (389, 300, 130),
            (600, 64, 17),
            (20, 40, 300),
            (1030, 520, 70),
            (130, 300, 389),
        ] {
            let a: std::vec::Vec<f32> = (0..m * k).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let b: std::vec::Vec<f32> = (0..k * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let c0: std::vec::Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            for (transposed, beta) in [(false, 0.0), (true, 1.0)] {
                let (av, bv) = if transposed {
                    (MatRef::new(&a, k, m).t(), MatRef::new(&b, n, k).t())
                } else {
                    (MatRef::new(&a, m, k), MatRef::new(&b, k, n))
                };
                let (mut threaded, mut alone) = (c0.clone(), c0.clone());
                gemm(0.5, av, bv, beta, &mut threaded, n);
                // SAFETY: AVX2 and FMA are available; the views and `C` are in bounds.
                unsafe { avx2::gemm(0.5, av, bv, beta, alone.as_mut_ptr(), n) };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
                assert!(bits(&threaded) == bits(&alone), "{m}x{k}x{n}, transposed {transposed}");
            }
        }
    }
}
