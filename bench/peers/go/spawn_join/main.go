// SPDX-License-Identifier: MIT
// B1 spawn_join, Go peer: spawns 1,000,000 goroutines that do nothing and
// waits for all of them with a sync.WaitGroup; prints ns per goroutine.
// GOMAXPROCS is left at its default (the number of CPUs).
package main

import (
	"fmt"
	"sync"
	"time"
)

func spawnJoin(n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
	}
	wg.Wait()
}

func main() {
	const n = 1000000
	spawnJoin(10000) // warm-up, not timed
	start := time.Now()
	spawnJoin(n)
	elapsed := time.Since(start)
	fmt.Printf("spawn_join_ns %.1f ns/task\n", float64(elapsed.Nanoseconds())/n)
}
