package serve

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// MaxHeaderBytes bounds a request's header on every listener.
const MaxHeaderBytes = 8 << 10

const (
	// maxRefusing bounds the connections being refused at once; beyond
	// that a connection is closed without an answer.
	maxRefusing = 16
	// refuseLinger is how long a refused connection is given to take
	// its answer.
	refuseLinger = 200 * time.Millisecond
)

// Listener hands the server at most max connections at a time. One more
// is answered 503 with a line that says why, and closed, by a short-lived
// goroutine, so that the accept loop keeps serving the others. Refusals
// are logged at most once every 10 s, with their count.
type Listener struct {
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

// Limit wraps ln so that it hands out at most max connections at a time;
// what names the listener in the refusal and the log ("control socket").
func Limit(ln net.Listener, max int, what string, log *slog.Logger) *Listener {
	body := fmt.Sprintf("vipd: too many connections to the %s (at most %d at a time); try again later\n", what, max)
	return &Listener{
		Listener: ln,
		slots:    make(chan struct{}, max),
		refusing: make(chan struct{}, maxRefusing),
		answer: []byte(fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)),
		log:  log,
		what: what,
	}
}

// Accept returns the next connection while a slot is free, and refuses
// the others that arrive meanwhile.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &Conn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refuse(c)
		}
	}
}

// refuse answers c 503 and closes it, without waiting for it.
func (l *Listener) refuse(c net.Conn) {
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
func (l *Listener) noteRefused() {
	l.refused++
	if now := time.Now(); now.Sub(l.lastLog) >= 10*time.Second {
		l.log.Warn("refusing connections: too many open", "listener", l.what, "limit", cap(l.slots), "refused", l.refused)
		l.lastLog, l.refused = now, 0
	}
}

// Close closes the listener and waits for the refusals under way.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.closeErr = l.Listener.Close()
		l.wg.Wait()
	})
	return l.closeErr
}

// Conn is a connection a Listener handed out; it gives its slot back when
// closed.
type Conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NetConn returns the connection it wraps, for the peer's credentials.
func (c *Conn) NetConn() net.Conn { return c.Conn }
