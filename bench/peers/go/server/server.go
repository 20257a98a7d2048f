// SPDX-License-Identifier: MIT
// Package server is the CLI protocol the server peers (B7 http_hello, B8
// echo) share with weft's example servers: --port P (0 picks a free one) on
// 127.0.0.1, --procs N (GOMAXPROCS), --max-conns N (connections served at
// once; 0, the default, means no cap), and "listening on PORT" on stdout
// once connections are accepted.
package server

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
)

// Listen parses the command line, sets GOMAXPROCS, listens and says so.
// It exits the program if it cannot listen.
func Listen() net.Listener {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free one)")
	procs := flag.Int("procs", 2, "GOMAXPROCS")
	maxConns := flag.Int("max-conns", 0, "connections served at once (0: no cap)")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	if *maxConns > 0 {
		return &limited{ln, make(chan struct{}, *maxConns)}
	}
	return ln
}

// limited is a listener whose Accept waits while slots is full; each
// connection takes a slot and its Close gives it back.
type limited struct {
	net.Listener
	slots chan struct{}
}

type conn struct {
	net.Conn
	once  sync.Once
	slots chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &conn{Conn: c, slots: l.slots}, nil
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}
