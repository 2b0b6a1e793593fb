package kafkatest_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oversoc/cybereason-connector/internal/kafkatest"
)

// Group timings of the killed-joiner test: short, so that each trial takes
// a few seconds, and long enough for a member on a loaded 2-core machine to
// rejoin within the rebalance timeout.
const (
	memberSessionTimeout   = 3 * time.Second
	memberRebalanceTimeout = 3 * time.Second
	memberHeartbeat        = 500 * time.Millisecond
)

var memberTopics = []string{"t1", "t2", "t3"}

// TestDeadMembersRemovesKilledJoiner kills a group member while its
// JoinGroup waits for an earlier killed member, as a connector killed during
// a rebalance does, and checks that the live member ends up with all 9
// partitions. On kfake the killed joiner can stay in the group with
// part of the partitions and no session timer (see DeadMembers), so each
// trial removes recorded members left after the time Kafka removes them.
// Trials repeat until one of them needed that, because the case is random.
func TestDeadMembersRemovesKilledJoiner(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for several session timeouts of killed group members; skipped with -short")
	}
	brokers := startShortSessionBroker(t)
	dead := kafkatest.NewDeadMembers(t, brokers)
	// Kafka removes the killed joiner at the latest one session timeout after
	// the join it waits in completes, and that join completes at the latest
	// when the earlier member's session or the rebalance timeout ends.
	grace := 2*memberSessionTimeout + memberRebalanceTimeout + time.Second

	const maxTrials = 12
	for trial := range maxTrials {
		group := fmt.Sprintf("killed-joiner-%d", trial)
		removed := runKilledJoinerTrial(t, brokers, dead, group, grace)
		if len(removed) > 0 {
			t.Logf("trial %d: the broker kept killed members %v past the session timeout; removing them let the live member take every partition", trial, removed)
			return
		}
	}
	t.Skipf("kfake removed the killed joiner by itself in all %d trials, so DeadMembers had nothing to remove", maxTrials)
}

// runKilledJoinerTrial runs one trial on group and returns the members that
// DeadMembers removed.
func runKilledJoinerTrial(t *testing.T, brokers []string, dead *kafkatest.DeadMembers, group string, grace time.Duration) []string {
	t.Helper()
	ctx := context.Background()

	live := startMember(t, brokers, group, nil)
	defer live.stop()
	waitFor(t, "the live member to hold 9 partitions", func() bool { return live.partitions() == 9 })

	// The first killed member is still a member when the second joins, so
	// the join waits for its session timeout.
	var first, second killableDialer
	earlier := startMember(t, brokers, group, first.dialer())
	defer earlier.stop()
	waitFor(t, "the first killed member to join", func() bool { return earlier.partitions() > 0 })
	first.kill()

	joiner := startMember(t, brokers, group, second.dialer())
	defer joiner.stop()
	var members []string
	waitFor(t, "the joiner to wait in the join", func() bool {
		var err error
		members, err = dead.Members(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		return len(members) == 3
	})
	second.kill()

	liveID := live.memberID()
	dead.Record(group, time.Now().Add(grace), slices.DeleteFunc(members, func(id string) bool { return id == liveID })...)

	var removed []string
	waitFor(t, "the live member to hold all 9 partitions again", func() bool {
		removedNow, err := dead.Remove(ctx)
		if err != nil {
			t.Fatal(err)
		}
		removed = append(removed, removedNow...)
		return live.partitions() == 9
	})
	return removed
}

// TestDeadMembersRemovesOnlyAfterDeadline checks that Remove leaves a
// recorded member alone before its deadline, removes it after, and drops
// a recorded member that is no longer in the group.
func TestDeadMembersRemovesOnlyAfterDeadline(t *testing.T) {
	brokers := startShortSessionBroker(t)
	dead := kafkatest.NewDeadMembers(t, brokers)
	ctx := context.Background()

	member := startMember(t, brokers, "deadline", nil)
	defer member.stop()
	waitFor(t, "the member to hold 9 partitions", func() bool { return member.partitions() == 9 })
	generation := member.generation()

	dead.Record("deadline", time.Now().Add(time.Hour), member.memberID())
	dead.Record("deadline", time.Now().Add(-time.Second), "gone-member")
	removed, err := dead.Remove(ctx)
	if err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if len(removed) != 0 {
		t.Errorf("Remove before the deadline removed %v, want none", removed)
	}

	dead.Record("deadline", time.Now().Add(-time.Second), member.memberID()) // keeps the first deadline
	if removed, _ := dead.Remove(ctx); len(removed) != 0 {
		t.Errorf("Remove after recording the member again removed %v, want none", removed)
	}

	dead = kafkatest.NewDeadMembers(t, brokers)
	dead.Record("deadline", time.Now().Add(-time.Second), member.memberID())
	removed, err = dead.Remove(ctx)
	if err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if want := []string{"deadline/" + member.memberID()}; !slices.Equal(removed, want) {
		t.Errorf("Remove after the deadline removed %v, want %v", removed, want)
	}
	waitFor(t, "the removed member to join a new generation", func() bool { return member.generation() > generation })
}

// startShortSessionBroker starts kfake with the topics of the tests and a
// minimum session timeout below Kafka's 6s default, so trials are short.
func startShortSessionBroker(t *testing.T) []string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	for _, topic := range memberTopics {
		if err := cluster.CreateTopic(topic, 3, nil); err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}
	return cluster.ListenAddrs()
}

// groupMember is a kafka-go ConsumerGroup member that holds every
// generation until the next rebalance and remembers the latest one.
type groupMember struct {
	group  *kafka.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	latest *kafka.Generation
}

func startMember(t *testing.T, brokers []string, groupID string, dialer *kafka.Dialer) *groupMember {
	t.Helper()
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                groupID,
		Brokers:           brokers,
		Topics:            memberTopics,
		Dialer:            dialer,
		SessionTimeout:    memberSessionTimeout,
		RebalanceTimeout:  memberRebalanceTimeout,
		HeartbeatInterval: memberHeartbeat,
		JoinGroupBackoff:  200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("create consumer group %s: %v", groupID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{group: group, cancel: cancel, done: make(chan struct{})}
	go m.run(ctx)
	return m
}

func (m *groupMember) run(ctx context.Context) {
	defer close(m.done)
	for {
		gen, err := m.group.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			continue // the ConsumerGroup joins again after its backoff
		}
		m.mu.Lock()
		m.latest = gen
		m.mu.Unlock()
		gen.Start(func(genCtx context.Context) { <-genCtx.Done() })
	}
}

func (m *groupMember) partitions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest == nil {
		return 0
	}
	n := 0
	for _, partitions := range m.latest.Assignments {
		n += len(partitions)
	}
	return n
}

func (m *groupMember) generation() int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest == nil {
		return 0
	}
	return m.latest.ID
}

func (m *groupMember) memberID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest == nil {
		return ""
	}
	return m.latest.MemberID
}

func (m *groupMember) stop() {
	m.cancel()
	_ = m.group.Close() // a killed member cannot send its LeaveGroup
	<-m.done
}

// killableDialer dials loopback TCP connections until kill, which resets
// every connection it made, as the kernel does for a killed process, and
// makes later dials fail.
type killableDialer struct {
	mu     sync.Mutex
	conns  []net.Conn
	killed bool
}

func (d *killableDialer) dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 5 * time.Second, DialFunc: d.dial}
}

func (d *killableDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.killed {
		return nil, fmt.Errorf("dial %s: the member was killed", address)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	d.conns = append(d.conns, conn)
	return conn, nil
}

func (d *killableDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killed = true
	for _, conn := range d.conns {
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // close with a reset, not a FIN after pending writes
		}
		_ = conn.Close()
	}
}

// waitFor polls cond every 50ms and fails the test when it is not true
// within kafkatest.Timeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(kafkatest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", kafkatest.Timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
