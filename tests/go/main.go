// goprocs: the Go runtime's demands on the kernel, one sub-command per test, each printing
// exact lines. Built with CGO_ENABLED=0 (a static ET_EXEC) by the integration tests.
//
// Sub-commands: goroutines sleep ticker gc nilpanic preempt args exit panic
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

// 64 goroutines on 4 Ps send their work over a channel; a WaitGroup closes it.
func goroutines() {
	runtime.GOMAXPROCS(4)
	const n = 64
	results := make(chan int, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	shared := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sum := 0
			for k := 1; k <= 1000; k++ {
				sum += k * (i + 1)
				if k%100 == 0 {
					runtime.Gosched()
				}
			}
			mu.Lock()
			shared++
			mu.Unlock()
			results <- sum
		}(i)
	}
	go func() { wg.Wait(); close(results) }()
	total, count := 0, 0
	for r := range results {
		total += r
		count++
	}
	// Unbuffered ping-pong between two goroutines.
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for i := 0; i < 1000; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	fmt.Printf("goroutines: count=%d total=%d shared=%d gomaxprocs=%d pingpong=%d\n",
		count, total, shared, runtime.GOMAXPROCS(0), v)
}

func sleep() {
	start := time.Now()
	time.Sleep(50 * time.Millisecond)
	d := time.Since(start)
	if d < 50*time.Millisecond || d > 20*time.Second {
		fail("time.Sleep(50ms) took %v", d)
	}
	// Many goroutines sleeping at once overlap.
	var wg sync.WaitGroup
	start = time.Now()
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); time.Sleep(200 * time.Millisecond) }()
	}
	wg.Wait()
	d = time.Since(start)
	if d < 200*time.Millisecond || d > 2*time.Second {
		fail("20 concurrent 200 ms sleeps took %v", d)
	}
	select {
	case <-time.After(30 * time.Millisecond):
	case <-time.After(10 * time.Second):
		fail("time.After order")
	}
	fmt.Println("sleep: slept>=50ms concurrent=20 after=ok")
}

func ticker() {
	// start before the ticker: ticks are due 10 ms apart from its creation, so a pause of
	// the VM between the two lines cannot make 5 ticks look early.
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	ticks := 0
	for range t.C {
		ticks++
		if ticks == 5 {
			break
		}
	}
	t.Stop()
	d := time.Since(start)
	if d < 45*time.Millisecond {
		fail("5 ticks of 10 ms in %v", d)
	}
	timer := time.NewTimer(time.Hour)
	stopped := timer.Stop()
	fmt.Printf("ticker: ticks=%d timer_stopped=%v\n", ticks, stopped)
}

// 256 MiB allocated in 1 MiB pieces, 8 kept alive at a time: needs the collector.
func gc() {
	debug.SetGCPercent(50)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	keep := make([][]byte, 8)
	for i := 0; i < 256; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i)
		}
		keep[i%8] = b
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	ok := true
	for i, b := range keep {
		ok = ok && b[0] == byte(248+i)
	}
	cycles := after.NumGC - before.NumGC
	if cycles < 2 {
		fail("only %d GC cycles", cycles)
	}
	if after.HeapAlloc > 64<<20 {
		fail("heap still %d bytes after GC", after.HeapAlloc)
	}
	fmt.Printf("gc: allocated_mib=256 cycles>=2 live_ok=%v\n", ok)
}

type node struct{ v int }

func deref(p *node) int { return p.v }

func nilpanic() {
	msg := func() (msg string) {
		defer func() {
			r := recover()
			if e, ok := r.(error); ok {
				msg = e.Error()
			} else {
				msg = fmt.Sprint(r)
			}
		}()
		var p *node
		return fmt.Sprint(deref(p))
	}()
	fmt.Printf("nilpanic: recovered=%q\n", msg)
	// Twice: the signal handler must be usable again.
	msg2 := func() (msg string) {
		defer func() { msg = fmt.Sprint(recover() != nil) }()
		var m map[string]*node
		return fmt.Sprint(m["x"].v)
	}()
	fmt.Printf("nilpanic: second_recovered=%s\n", msg2)
}

var spin uint64

// A loop with no function calls can only be preempted asynchronously (SIGURG).
func preempt() {
	runtime.GOMAXPROCS(1)
	var started int32
	go func() {
		atomic.StoreInt32(&started, 1)
		for {
			spin++
		}
	}()
	for atomic.LoadInt32(&started) == 0 {
		runtime.Gosched()
	}
	time.Sleep(20 * time.Millisecond) // hands the only P to the spinner
	fmt.Println("preempt: main goroutine ran again")
}

func args() {
	keys := []string{"KILN_GO", "KILN_EMPTY", "KILN_UNSET"}
	var parts []string
	for _, k := range keys {
		v, ok := os.LookupEnv(k)
		parts = append(parts, fmt.Sprintf("%s=%q/%v", k, v, ok))
	}
	sort.Strings(parts)
	fmt.Printf("args: %q\n", os.Args[1:])
	fmt.Printf("env: %s\n", strings.Join(parts, " "))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Println("usage: goprocs goroutines|sleep|ticker|gc|nilpanic|preempt|args|exit|panic|httpserve")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "goroutines":
		goroutines()
	case "sleep":
		sleep()
	case "ticker":
		ticker()
	case "gc":
		gc()
	case "nilpanic":
		nilpanic()
	case "preempt":
		preempt()
	case "args":
		args()
	case "exit":
		fmt.Println("exiting with 3")
		os.Exit(3)
	case "httpserve":
		httpserve()
	case "panic":
		fmt.Println("about to panic")
		panic("deliberate")
	default:
		fmt.Printf("unknown test %s\n", os.Args[1])
		os.Exit(2)
	}
}
