package kafkatest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeadMembers removes consumer group members of killed clients that the
// in-process broker keeps past the time a Kafka broker removes them.
//
// The broker is kfake (franz-go pkg/kfake v0.0.0-20260918054303-01f206a7e32c).
// It stops the session timer of a new member when the member's JoinGroup
// with its member ID arrives, and starts it again only when a JoinGroup or
// SyncGroup reply is handed to a live connection. A client killed while that
// JoinGroup waits for other members can therefore be left without a session
// timer once the join completes. If another member is the leader, the
// leader's SyncGroup makes the group stable with the dead member holding its
// share of the partitions, and no rebalance ever removes it. Kafka's classic
// group coordinator (GroupCoordinator.onCompleteJoin) schedules the session
// timeout of every member when a join completes, whether or not the reply
// reaches the client, so on Kafka the member goes one session timeout later.
//
// A test that kills clients records the member IDs that belong to them, and
// calls Remove while the next clients run: it sends a LeaveGroup for each
// recorded member still in its group after its deadline. It is safe for
// concurrent use.
type DeadMembers struct {
	client *kgo.Client

	mu        sync.Mutex
	deadlines map[[2]string]time.Time // (group, member ID) -> time after which Remove removes it
}

// NewDeadMembers returns a DeadMembers that talks to the broker at brokers
// and closes its client when the test ends.
func NewDeadMembers(t testing.TB, brokers []string) *DeadMembers {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("create the group admin client for %v: %v", brokers, err)
	}
	t.Cleanup(client.Close)
	return &DeadMembers{client: client, deadlines: make(map[[2]string]time.Time)}
}

// Members returns the IDs of the members that group has now, sorted.
func (d *DeadMembers) Members(ctx context.Context, group string) ([]string, error) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, d.client)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	if len(resp.Groups) != 1 {
		return nil, fmt.Errorf("describe group %s: the broker returned %d groups, want 1", group, len(resp.Groups))
	}
	described := resp.Groups[0]
	if err := kerr.ErrorForCode(described.ErrorCode); err != nil && err != kerr.GroupIDNotFound {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}

	ids := make([]string, 0, len(described.Members))
	for _, member := range described.Members {
		ids = append(ids, member.MemberID)
	}
	slices.Sort(ids)
	return ids, nil
}

// Record marks the members of group as dead: Remove removes any of them
// still in the group after deadline. Recording a member again keeps its
// first deadline.
func (d *DeadMembers) Record(group string, deadline time.Time, memberIDs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range memberIDs {
		key := [2]string{group, id}
		if _, ok := d.deadlines[key]; !ok {
			d.deadlines[key] = deadline
		}
	}
}

// Remove sends a LeaveGroup for each recorded member that is still in its
// group after its deadline, and returns them as "group/member ID". The
// broker then removes the member and starts a rebalance. A recorded member
// that is no longer in its group is forgotten.
func (d *DeadMembers) Remove(ctx context.Context) ([]string, error) {
	due := d.due(time.Now())
	var removed []string
	for group, ids := range due {
		present, err := d.Members(ctx, group)
		if err != nil {
			return removed, err
		}
		var stale []string
		for _, id := range ids {
			if slices.Contains(present, id) {
				stale = append(stale, id)
			} else {
				d.forget(group, id)
			}
		}
		if len(stale) == 0 {
			continue
		}
		if err := d.leave(ctx, group, stale); err != nil {
			return removed, err
		}
		for _, id := range stale {
			d.forget(group, id)
			removed = append(removed, group+"/"+id)
		}
	}
	return removed, nil
}

// due returns, per group, the recorded members whose deadline is before now.
func (d *DeadMembers) due(now time.Time) map[string][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	due := make(map[string][]string)
	for key, deadline := range d.deadlines {
		if now.After(deadline) {
			due[key[0]] = append(due[key[0]], key[1])
		}
	}
	return due
}

func (d *DeadMembers) forget(group, memberID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.deadlines, [2]string{group, memberID})
}

// leave sends one LeaveGroup for memberIDs of group, as Kafka's admin
// client does to remove members, and checks every member's error code.
func (d *DeadMembers) leave(ctx context.Context, group string, memberIDs []string) error {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, id := range memberIDs {
		member := kmsg.NewLeaveGroupRequestMember()
		member.MemberID = id
		req.Members = append(req.Members, member)
	}
	resp, err := req.RequestWith(ctx, d.client)
	if err != nil {
		return fmt.Errorf("remove members %v of group %s: %w", memberIDs, group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("remove members %v of group %s: %w", memberIDs, group, err)
	}
	for _, member := range resp.Members {
		// A member that left or expired since Members ran is already gone.
		if err := kerr.ErrorForCode(member.ErrorCode); err != nil && err != kerr.UnknownMemberID {
			return fmt.Errorf("remove member %s of group %s: %w", member.MemberID, group, err)
		}
	}
	return nil
}
