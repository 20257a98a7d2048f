// SPDX-License-Identifier: MIT
// B5 ring, Go peer: 1,000 goroutines (main and 999 others) in a ring, each
// receiving from its own unbuffered channel and sending to the next one's.
// A token goes round 1,000 times: 1,000,000 hops (sends), each adding 1 to
// it; prints ns per hop. The 999 are started before the timed region and
// wait on their first receive; 10 laps first warm up, outside the timed
// region. GOMAXPROCS is left at its default (the number of CPUs).
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	const threads, laps, warmup = 1000, 1000, 10
	chans := make([]chan int, threads)
	for i := range chans {
		chans[i] = make(chan int)
	}
	// Member i receives from chans[i] and sends to chans[(i+1)%threads];
	// main is member 0.
	for i := 1; i < threads; i++ {
		in, out := chans[i], chans[(i+1)%threads]
		go func() {
			for lap := 0; lap < warmup+laps; lap++ {
				out <- <-in + 1
			}
		}()
	}
	in, out := chans[0], chans[1]
	token := 0
	for lap := 0; lap < warmup; lap++ {
		out <- token + 1
		token = <-in
	}
	start := time.Now()
	for lap := 0; lap < laps; lap++ {
		out <- token + 1
		token = <-in
	}
	elapsed := time.Since(start)
	if want := threads * (warmup + laps); token != want {
		fmt.Fprintf(os.Stderr, "ring: token %d, want %d\n", token, want)
		os.Exit(1)
	}
	const hops = threads * laps
	fmt.Printf("ring_ns %.1f ns/hop\n", float64(elapsed.Nanoseconds())/hops)
}
