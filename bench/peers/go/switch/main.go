// SPDX-License-Identifier: MIT
// Bs switch, Go peer: with GOMAXPROCS=1, two goroutines call
// runtime.Gosched() in turns, 10,000,000 calls in total; prints ns per
// Gosched (each one hands the only P over to the other goroutine).
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func pingPong(total int) {
	var wg sync.WaitGroup
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < total/2; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
}

func main() {
	const n = 10000000
	runtime.GOMAXPROCS(1)
	pingPong(100000) // warm-up, not timed
	start := time.Now()
	pingPong(n)
	elapsed := time.Since(start)
	fmt.Printf("switch_ns %.2f ns/switch\n", float64(elapsed.Nanoseconds())/n)
}
