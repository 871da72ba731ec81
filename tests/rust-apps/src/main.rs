//! rustprocs: Rust std threads and a tokio runtime, one sub-command per test, each printing
//! exact lines (no timings) so the integration tests compare stdout byte for byte.
//!
//! Sub-commands: threads sleep panic tokio httpserve

mod http;

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// 16 threads add under a Mutex, a Condvar hands a flag over, mpsc carries the results.
fn threads() -> Result<(), String> {
    let counter = Arc::new(Mutex::new(0u64));
    let (tx, rx) = mpsc::channel::<(usize, u64)>();
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let counter = Arc::clone(&counter);
            let tx = tx.clone();
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    let mut local = 0u64;
                    for k in 1..=1000u64 {
                        *counter.lock().expect("poisoned") += 1;
                        local += k;
                    }
                    assert_eq!(
                        thread::current().name(),
                        Some(format!("worker-{i}").as_str())
                    );
                    tx.send((i, local)).expect("send");
                    i * 10
                })
                .expect("spawn")
        })
        .collect();
    drop(tx);
    let mut got: Vec<(usize, u64)> = rx.iter().collect();
    got.sort();
    let joined: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
    let total = *counter.lock().map_err(|e| e.to_string())?;
    if got.len() != 16 || got.iter().any(|&(_, s)| s != 500_500) {
        return Err(format!("mpsc results wrong: {got:?}"));
    }

    // Condvar: a waiter blocks until a notifier flips the flag.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let waiter = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || {
            let (lock, cv) = &*pair;
            let mut ready = lock.lock().expect("lock");
            while !*ready {
                ready = cv.wait(ready).expect("wait");
            }
            "woken"
        })
    };
    thread::sleep(Duration::from_millis(20));
    {
        let (lock, cv) = &*pair;
        *lock.lock().expect("lock") = true;
        cv.notify_all();
    }
    let woke = waiter.join().expect("join waiter");
    // A timed wait that nobody notifies times out.
    let (lock, cv) = &*pair;
    let guard = lock.lock().expect("lock");
    let (_g, res) = cv
        .wait_timeout_while(guard, Duration::from_millis(50), |_| true)
        .expect("wait_timeout");

    // Scoped threads borrow the stack.
    let data = [1u32, 2, 3, 4, 5, 6, 7, 8];
    let scoped: u32 = thread::scope(|s| {
        let hs: Vec<_> = data
            .chunks(2)
            .map(|c| s.spawn(move || c.iter().sum::<u32>()))
            .collect();
        hs.into_iter().map(|h| h.join().expect("scoped")).sum()
    });
    println!(
        "threads: counter={total} mpsc_results={} joined_sum={joined} condvar={woke} \
         timed_out={} scoped_sum={scoped}",
        got.len(),
        res.timed_out()
    );
    Ok(())
}

fn sleep() -> Result<(), String> {
    let start = Instant::now();
    thread::sleep(Duration::from_millis(50));
    let one = start.elapsed();
    let start = Instant::now();
    let hs: Vec<_> = (0..8)
        .map(|_| thread::spawn(|| thread::sleep(Duration::from_millis(200))))
        .collect();
    for h in hs {
        h.join().map_err(|_| "sleeper panicked")?;
    }
    let many = start.elapsed();
    if one < Duration::from_millis(50) || many < Duration::from_millis(200) {
        return Err(format!("slept too little: {one:?} {many:?}"));
    }
    if many > Duration::from_millis(1200) {
        return Err(format!("8 concurrent 200 ms sleeps took {many:?}"));
    }
    println!("sleep: slept>=50ms concurrent=8 overlapped=true");
    Ok(())
}

fn panic_in_thread() -> Result<(), String> {
    let h = thread::spawn(|| -> u32 { panic!("boom in a thread") });
    let err = h.join().expect_err("the thread should have panicked");
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    // The process carries on: more threads work after the panic.
    let ok = thread::spawn(|| 41 + 1)
        .join()
        .map_err(|_| "second thread")?;
    println!("panic: caught={msg:?} after={ok}");
    Ok(())
}

fn tokio_rt() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let (tasks, sum, ticks, timed_out, msgs) = rt.block_on(async {
        let done = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..100u64 {
            let done = Arc::clone(&done);
            handles.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i % 10)).await;
                tokio::task::yield_now().await;
                done.fetch_add(1, Ordering::SeqCst);
                i
            }));
        }
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("task");
        }
        let mut iv = tokio::time::interval(Duration::from_millis(10));
        let mut ticks = 0;
        for _ in 0..5 {
            iv.tick().await;
            ticks += 1;
        }
        let timed_out = tokio::time::timeout(
            Duration::from_millis(20),
            tokio::time::sleep(Duration::from_secs(60)),
        )
        .await
        .is_err();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
        let producer = tokio::spawn(async move {
            for v in 0..50 {
                tx.send(v).await.expect("send");
            }
        });
        let mut msgs = 0;
        while let Some(v) = rx.recv().await {
            msgs += v;
        }
        producer.await.expect("producer");
        let (blocking, raced) = tokio::join!(
            async { tokio::task::spawn_blocking(|| 7).await.expect("blocking") },
            async {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => "sleep",
                    _ = tokio::time::sleep(Duration::from_secs(60)) => "late",
                }
            }
        );
        assert_eq!(raced, "sleep");
        (
            done.load(Ordering::SeqCst) * blocking / 7,
            sum,
            ticks,
            timed_out,
            msgs,
        )
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    println!(
        "tokio: tasks={tasks} sum={sum} interval_ticks={ticks} timeout_fired={timed_out} \
         mpsc_sum={msgs}"
    );
    Ok(())
}

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let result = match arg.as_str() {
        "threads" => threads(),
        "sleep" => sleep(),
        "panic" => panic_in_thread(),
        "tokio" => tokio_rt(),
        "httpserve" => http::serve(std::env::args().nth(2).unwrap_or_default()),
        other => {
            println!("unknown test {other:?}: threads|sleep|panic|tokio|httpserve");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("FAIL {arg}: {e}");
            ExitCode::FAILURE
        }
    }
}
