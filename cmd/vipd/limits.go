package main

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Bounds on what clients can make vipd hold. A client is never allowed to
// grow the daemon without limit: the connections each listener serves at
// once, the event subscribers, and the size of a request header.
const (
	// maxControlConns is the control socket's open connections at once;
	// the operator's commands and a few watchers need far fewer.
	maxControlConns = 64
	// maxEventSubscribers is the GET /v1/events streams at once.
	maxEventSubscribers = 16
	// maxMetricsConns is the metrics listener's open connections at once:
	// a Prometheus or two, and a supervisor polling /healthz.
	maxMetricsConns = 16
	// maxHeaderBytes bounds a request's header on both listeners.
	maxHeaderBytes = 8 << 10
	// maxRefusing bounds the connections being refused at once; beyond
	// that a connection is closed without an answer.
	maxRefusing = 16
	// refuseLinger is how long a refused connection is given to take
	// its answer.
	refuseLinger = 200 * time.Millisecond
)

// limitListener hands the server at most max connections at a time. One
// more is answered 503 with a line that says why, and closed, by a
// short-lived goroutine, so that the accept loop keeps serving the others.
type limitListener struct {
	net.Listener
	slots    chan struct{}
	refusing chan struct{}
	answer   []byte
	log      *slog.Logger
	what     string

	mu       sync.Mutex
	lastLog  time.Time
	refused  uint64 // since the last log line
	closed   bool
	wg       sync.WaitGroup // the refusals under way
	closeErr error
	once     sync.Once
}

func newLimitListener(ln net.Listener, max int, what string, log *slog.Logger) *limitListener {
	body := fmt.Sprintf("vipd: too many connections to the %s (at most %d at a time); try again later\n", what, max)
	return &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, max),
		refusing: make(chan struct{}, maxRefusing),
		answer: []byte(fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)),
		log:  log,
		what: what,
	}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refuse(c)
		}
	}
}

// refuse answers c 503 and closes it, without waiting for it.
func (l *limitListener) refuse(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.noteRefused()
	if l.closed {
		c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refuseLinger))
		if _, err := c.Write(l.answer); err != nil {
			return
		}
		// Read what the client sent until it hangs up or the linger
		// runs out: closing with its request unread could reset the
		// connection before it reads the answer.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
}

// noteRefused logs refusals at most once every 10 s, with their count.
// l.mu is held.
func (l *limitListener) noteRefused() {
	l.refused++
	if now := time.Now(); now.Sub(l.lastLog) >= 10*time.Second {
		l.log.Warn("refusing connections: too many open", "listener", l.what, "limit", cap(l.slots), "refused", l.refused)
		l.lastLog, l.refused = now, 0
	}
}

// Close closes the listener and waits for the refusals under way.
func (l *limitListener) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.closeErr = l.Listener.Close()
		l.wg.Wait()
	})
	return l.closeErr
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NetConn returns the connection it wraps, for the peer's credentials.
func (c *limitConn) NetConn() net.Conn { return c.Conn }
