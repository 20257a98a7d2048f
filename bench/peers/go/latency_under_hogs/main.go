// SPDX-License-Identifier: MIT
// B6 latency_under_hogs, Go peer: with GOMAXPROCS = 2, argv[1] (2 or 4)
// goroutines spin in a tight loop with no function calls, and a ticker
// goroutine, started right after them, loops: t0 = time.Now();
// time.Sleep(1 ms); lateness = time.Since(t0) - 1 ms, for 3 s. Then main
// stops the hogs. Prints the p99, p50 and max lateness in µs: how late a
// sleeping goroutine wakes up when every P is busy with goroutines that
// never reach a scheduling point — here it is Go's asynchronous preemption
// (sysmon and signals, Go 1.14+) that gets the ticker back in.
//
// The ticker's first t0 is the moment main starts it, so a delay in its
// first run counts as lateness too. Percentiles are nearest-rank over all
// ticks (about 3,000).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	tick     = time.Millisecond
	window   = 3 * time.Second // how long the ticker measures
	maxTicks = 2 * int(window/tick)
)

var (
	stop  atomic.Bool // the hogs' cue to finish
	spins []uint64    // each hog's count, so its loop is not optimised away
)

// hog spins without a call (atomic loads are compiler intrinsics) until
// stop is set.
func hog(i int, wg *sync.WaitGroup) {
	var n uint64
	for !stop.Load() {
		n++
	}
	spins[i] = n
	wg.Done()
}

// ticker records the lateness of each 1 ms sleep from t0 (when main started
// it) until 3 s after that.
func ticker(t0 time.Time, lateness *[]time.Duration, done chan<- error) {
	end := t0.Add(window)
	for t0.Before(end) {
		time.Sleep(tick)
		now := time.Now()
		if len(*lateness) == maxTicks {
			done <- fmt.Errorf("more than %d ticks in %v: time.Sleep "+
				"returns early", maxTicks, window)
			return
		}
		*lateness = append(*lateness, now.Sub(t0)-tick)
		t0 = now
	}
	done <- nil
}

// percentileUs returns the p-th percentile (nearest rank) of the sorted v,
// in µs.
func percentileUs(v []time.Duration, p int) float64 {
	rank := (p*len(v) + 99) / 100 // ceil(p * n / 100), 1-based
	if rank < 1 {
		rank = 1
	}
	return float64(v[rank-1].Nanoseconds()) / 1000
}

func main() {
	hogs := 0
	if len(os.Args) == 2 {
		hogs, _ = strconv.Atoi(os.Args[1])
	}
	if hogs <= 0 || hogs > 1024 {
		fmt.Fprintln(os.Stderr, "usage: latency_under_hogs hogs "+
			"(the number of spinning goroutines, e.g. 2 or 4)")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(2)

	lateness := make([]time.Duration, 0, maxTicks)
	spins = make([]uint64, hogs)
	var wg sync.WaitGroup
	wg.Add(hogs)
	for i := 0; i < hogs; i++ {
		go hog(i, &wg)
	}
	done := make(chan error)
	go ticker(time.Now(), &lateness, done)
	err := <-done
	stop.Store(true)
	wg.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "latency_under_hogs: ticker:", err)
		os.Exit(1)
	}
	if len(lateness) == 0 {
		fmt.Fprintln(os.Stderr, "latency_under_hogs: no ticks recorded")
		os.Exit(1)
	}
	sort.Slice(lateness, func(i, j int) bool { return lateness[i] < lateness[j] })
	fmt.Printf("latency_p99_us %.1f us\n", percentileUs(lateness, 99))
	fmt.Printf("latency_p50_us %.1f us\n", percentileUs(lateness, 50))
	fmt.Printf("latency_max_us %.1f us\n", percentileUs(lateness, 100))
}
