package kafkaconn_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
)

// TestConnsCloseAllEndsRequestInFlight sends a request to a listener that
// accepts connections and never responds. CloseAll must end the request at
// once, long before its own deadline.
func TestConnsCloseAllEndsRequestInFlight(t *testing.T) {
	address, accepted := silentListener(t)

	transport := &kafka.Transport{}
	conns := kafkaconn.Track(transport)
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(address), Transport: transport}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := client.Metadata(ctx, &kafka.MetadataRequest{})
		done <- err
	}()

	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the transport never connected")
	}
	defer conn.Close()
	for closed := 0; closed == 0; {
		select {
		case err := <-done:
			t.Fatalf("request ended before CloseAll: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		closed = conns.CloseAll() // the connection is tracked once the dial returns
	}

	select {
	case err := <-done:
		if err == nil {
			t.Error("request succeeded after its connection was closed, want an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("request still waiting 30s after CloseAll")
	}
	if n := conns.CloseAll(); n != 0 {
		t.Errorf("CloseAll closed %d connections the second time, want 0: closed connections must be forgotten", n)
	}
}

// TestTrackDialerCloseAllEndsRequestInFlight sends a request on a dialer's
// connection to a listener that accepts it and never responds, as a consumer
// group's join or commit waits. CloseAll must end the request at once.
func TestTrackDialerCloseAllEndsRequestInFlight(t *testing.T) {
	address, accepted := silentListener(t)

	dialer := &kafka.Dialer{Timeout: 10 * time.Second}
	conns := kafkaconn.TrackDialer(dialer)
	conn, err := dialer.Dial("tcp", address)
	if err != nil {
		t.Fatalf("dial through the tracked dialer: %v", err)
	}
	defer conn.Close()
	select {
	case server := <-accepted:
		defer server.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the listener accepted no connection")
	}

	done := make(chan error, 1)
	go func() {
		_, err := conn.ReadPartitions("events")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("request ended before CloseAll: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if n := conns.CloseAll(); n != 1 {
		t.Errorf("CloseAll closed %d connections, want 1", n)
	}

	select {
	case err := <-done:
		if err == nil {
			t.Error("request succeeded after its connection was closed, want an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("request still waiting 30s after CloseAll")
	}
}

// silentListener listens on a loopback port and keeps every connection it
// accepts open without ever responding. It returns the address and the
// accepted connections, and closes all of them when the test ends.
func silentListener(t *testing.T) (address string, accepted <-chan net.Conn) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- conn:
			default:
				conn.Close()
			}
		}
	}()
	t.Cleanup(func() {
		listener.Close()
		<-stopped
		close(conns)
		for conn := range conns {
			conn.Close()
		}
	})
	return listener.Addr().String(), conns
}
