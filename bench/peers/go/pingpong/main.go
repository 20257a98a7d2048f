// SPDX-License-Identifier: MIT
// B2 pingpong, Go peer: with GOMAXPROCS = procs (argv[1], default 1), the
// main goroutine and one other bounce a token through two unbuffered
// channels, 1,000,000 round trips; prints ns per round trip. The other
// goroutine is started before the timed region and waits on its first
// receive; 10,000 round trips first warm up, outside the timed region.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	const n, warmup = 1000000, 10000
	procs := 1
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "usage: pingpong [procs]")
			os.Exit(2)
		}
		procs = v
	}
	runtime.GOMAXPROCS(procs)

	ping, pong := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(done)
	}()
	token := 0
	for i := 0; i < warmup; i++ {
		ping <- token
		token = <-pong
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- token
		token = <-pong
	}
	elapsed := time.Since(start)
	close(ping)
	<-done
	if token != n+warmup {
		fmt.Fprintf(os.Stderr, "pingpong: token %d, want %d\n", token, n+warmup)
		os.Exit(1)
	}
	fmt.Printf("pingpong_ns %.1f ns/roundtrip\n", float64(elapsed.Nanoseconds())/n)
}
