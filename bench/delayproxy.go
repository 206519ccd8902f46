package bench

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// A delayProxy is a TCP proxy on a loopback port in front of one server
// that holds every chunk of bytes, in each direction, for a fixed delay
// before passing it on: a slow network, without limiting throughput (the
// chunks read meanwhile are in flight together, in order).
type delayProxy struct {
	ln       net.Listener
	upstream string
	delay    time.Duration

	wg    sync.WaitGroup // every goroutine of the proxy
	mu    sync.Mutex     // guards conns and closed
	conns map[net.Conn]struct{}

	closed bool
}

// startDelayProxy listens on a free loopback port and forwards every
// connection to upstream, delay late each way.
func startDelayProxy(upstream string, delay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, upstream: upstream, delay: delay, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// addr is the address clients connect to.
func (p *delayProxy) addr() string { return p.ln.Addr().String() }

// close stops accepting, cuts every connection and waits for the proxy's
// goroutines.
func (p *delayProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

// track registers c to be closed by close; it reports false, closing c,
// when the proxy is closed already.
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *delayProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(client) {
			return
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// serve dials upstream for client and forwards both ways until either side
// closes.
func (p *delayProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.forward(server, client); done <- struct{}{} }()
	go func() { p.forward(client, server); done <- struct{}{} }()
	<-done
	// One direction ended: cut both, so that the other ends too.
	_ = client.Close()
	_ = server.Close()
	<-done
}

// chunk is bytes read at a time, to be written delay after it.
type chunk struct {
	data []byte
	due  time.Time
}

// forward copies from src to dst, each chunk delay after it was read.
func (p *delayProxy) forward(dst, src net.Conn) {
	queue := make(chan chunk, 4096)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for c := range queue {
			if wait := time.Until(c.due); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := dst.Write(c.data); err != nil {
				_ = src.Close() // stop the reader too
				for range queue {
				}
				return
			}
		}
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{data: buf[:n], due: time.Now().Add(p.delay)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				_ = dst.Close()
			}
			break
		}
	}
	close(queue)
	<-writerDone
}
