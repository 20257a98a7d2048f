// SPDX-License-Identifier: MIT
// B7 http_hello, Go peer: net/http serving GET /hello with the body "hello\n"
// (HTTP/1.1, keep-alive) on 127.0.0.1, with the CLI of weft's
// examples/httpd (see package server).
package main

import (
	"fmt"
	"net/http"
	"os"

	"weftbench/server"
)

func main() {
	ln := server.Listen()
	hello := []byte("hello\n")
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Write(hello)
	})
	fmt.Fprintln(os.Stderr, http.Serve(ln, nil))
	os.Exit(1)
}
