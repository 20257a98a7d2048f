// SPDX-License-Identifier: MIT
// B4 chan_throughput, Go peer: the main goroutine sends 10,000,000 ints
// through a channel of capacity 1024 to one consumer goroutine, then closes
// it; the consumer receives until the channel is closed. Prints ns per
// message, timed from the first send until the consumer has received the
// last. The consumer is started before the timed region (it waits on an
// empty channel); a 100,000-message round with its own channel and consumer
// first warms up, outside the timed region. GOMAXPROCS is left at its
// default (the number of CPUs).
package main

import (
	"fmt"
	"os"
	"time"
)

func throughput(n int) time.Duration {
	ch := make(chan int, 1024)
	sum := make(chan int)
	go func() {
		s := 0
		for v := range ch {
			s += v
		}
		sum <- s
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	s := <-sum
	elapsed := time.Since(start)
	if want := n * (n - 1) / 2; s != want {
		fmt.Fprintf(os.Stderr, "chan_throughput: sum %d, want %d\n", s, want)
		os.Exit(1)
	}
	return elapsed
}

func main() {
	const n = 10000000
	throughput(100000) // warm-up, not timed
	elapsed := throughput(n)
	fmt.Printf("chan_throughput_ns %.2f ns/msg\n",
		float64(elapsed.Nanoseconds())/n)
}
