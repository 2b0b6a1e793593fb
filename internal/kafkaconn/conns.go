package kafkaconn

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Conns keeps the open connections of a transport, so that CloseAll can end requests that are
// still waiting for the broker. kafka-go's Writer.Close waits for every produce request in flight,
// up to the writer's timeout, and a transport only closes idle connections itself.
type Conns struct {
	dial func(ctx context.Context, network, address string) (net.Conn, error)

	mu   sync.Mutex
	open map[*trackedConn]struct{}
}

// Track makes transport dial its connections through the returned Conns. It keeps the transport's
// Dial function when one is set, and otherwise dials TCP within the transport's DialTimeout (3s
// when zero, as kafka-go does). Call it before the transport is used.
func Track(transport *kafka.Transport) *Conns {
	c := &Conns{dial: transport.Dial, open: make(map[*trackedConn]struct{})}
	if c.dial == nil {
		timeout := transport.DialTimeout
		if timeout == 0 {
			timeout = 3 * time.Second
		}
		c.dial = (&net.Dialer{Timeout: timeout}).DialContext
	}
	transport.Dial = c.Dial
	return c
}

// TrackDialer makes dialer open its connections through the returned Conns, so that CloseAll can
// end the requests of the readers and consumer groups that use it, which kafka-go does not let a
// context cancel. It keeps the dialer's DialFunc when one is set. Call it before the dialer is used.
func TrackDialer(dialer *kafka.Dialer) *Conns {
	c := &Conns{dial: dialer.DialFunc, open: make(map[*trackedConn]struct{})}
	if c.dial == nil {
		// kafka-go bounds the dial with the dialer's Timeout through ctx.
		c.dial = (&net.Dialer{}).DialContext
	}
	dialer.DialFunc = c.Dial
	return c
}

// Dial opens a connection and keeps it until it is closed.
func (c *Conns) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := c.dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	tracked := &trackedConn{Conn: conn, owner: c}
	c.mu.Lock()
	c.open[tracked] = struct{}{}
	c.mu.Unlock()
	return tracked, nil
}

// CloseAll closes every open connection and returns how many it closed. A request waiting on one of
// them fails at once. The transport dials new connections for later requests.
func (c *Conns) CloseAll() int {
	c.mu.Lock()
	conns := make([]*trackedConn, 0, len(c.open))
	for conn := range c.open {
		conns = append(conns, conn)
	}
	c.mu.Unlock()

	for _, conn := range conns {
		conn.Close()
	}
	return len(conns)
}

// KeepClosing closes every open connection every 100 ms until done is closed. It serves after
// CloseAll, for clients that dial again and may wait again on the new connection.
func (c *Conns) KeepClosing(done <-chan struct{}) {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			c.CloseAll()
		case <-done:
			return
		}
	}
}

// trackedConn removes itself from its owner when it is closed.
type trackedConn struct {
	net.Conn
	owner *Conns
	once  sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.owner.mu.Lock()
		delete(t.owner.open, t)
		t.owner.mu.Unlock()
	})
	return t.Conn.Close()
}
