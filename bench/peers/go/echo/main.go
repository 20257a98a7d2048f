// SPDX-License-Identifier: MIT
// B8 c10k, Go peer: a TCP echo server on 127.0.0.1, one goroutine per
// connection reading into its own buffer and writing back what it read,
// with the CLI of weft's examples/echo (see package server).
package main

import (
	"fmt"
	"net"
	"os"

	"weftbench/server"
)

// bufSize is the per-connection buffer: the same size as examples/echo.c's
// (there on the thread's stack, here on the heap, zeroed).
const bufSize = 16384

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	ln := server.Listen()
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go serve(c)
	}
}
