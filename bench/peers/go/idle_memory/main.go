// SPDX-License-Identifier: MIT
// B3 idle_memory, Go peer: N goroutines (default 1,000,000; argv[1]) each
// block receiving on one shared unbuffered channel. Each bumps an atomic
// counter just before it blocks; main polls until all N have, sleeps 200 ms,
// runs the GC and reads RSS from /proc/self/statm. Prints the RSS growth
// over the pre-spawn baseline divided by N.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	var size, resident int64
	fmt.Sscan(string(data), &size, &resident)
	return resident * int64(os.Getpagesize())
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "usage: idle_memory [N]")
			os.Exit(2)
		}
		n = v
	}
	ch := make(chan int)
	var parked int64
	var wg sync.WaitGroup

	runtime.GC()
	before := rssBytes()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&parked, 1)
			<-ch
			wg.Done()
		}()
	}
	for atomic.LoadInt64(&parked) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	after := rssBytes()
	fmt.Printf("idle_memory_bytes %.0f bytes/thread\n", float64(after-before)/float64(n))

	close(ch) // release everyone
	wg.Wait()
}
