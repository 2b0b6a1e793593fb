package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// DetailedMalop is the value of a DetailedMalopEventType event: a MalOp and
// its details, each exactly as the console returned it.
type DetailedMalop struct {
	// Malop is the MalOp object; MalopType is the event type it would have on
	// its own (MalopEventType or MalopV2EventType), which names its shape.
	Malop     json.RawMessage `json:"malop"`
	MalopType string          `json:"malopType"`
	// Details is the element for the MalOp's guid in the /rest/crimes/unified
	// response (EDR MalOps) or the /rest/detection/details response (EPP ones).
	Details         json.RawMessage `json:"details"`
	DetailsEndpoint string          `json:"detailsEndpoint"`
}

// Details endpoints, as in DetailedMalop.DetailsEndpoint.
const (
	EDRDetailsEndpoint = "/rest/crimes/unified"
	EPPDetailsEndpoint = "/rest/detection/details"
)

// MalopReport describes one MalOp poll.
type MalopReport struct {
	From, To time.Time
	Malops   int
	// API is the endpoint the MalOps came from.
	API      string
	Cursor   time.Time // the cursor after the poll
	Duration time.Duration
}

// CollectMalops publishes every MalOp updated in the next window, from the
// MalOp management API or, on consoles without it, from the detection inbox.
// The cursor moves to the newest lastUpdateTime only after every MalOp of
// the window was acknowledged and the new cursor was saved in
// Config.Checkpoints. A poll whose save fails returns an error and keeps the
// old cursor.
func (s *Stage) CollectMalops(ctx context.Context) (MalopReport, error) {
	s.malopsMu.Lock()
	defer s.malopsMu.Unlock()

	if err := s.malopsCursor.restore(ctx); err != nil {
		return MalopReport{}, err
	}
	start := s.cfg.Now()
	report := MalopReport{From: s.malopsCursor.start(start), To: start}

	malops, eventType, err := s.listMalops(ctx, report.From, report.To)
	if err != nil {
		return report, fmt.Errorf("collect malops from %s to %s: %w", report.From.Format(time.RFC3339), report.To.Format(time.RFC3339), err)
	}
	report.API = map[string]string{MalopEventType: inboxEndpoint, MalopV2EventType: malopsV2Endpoint}[eventType]

	msgs := make([]kafka.Message, 0, len(malops))
	newest := time.Time{}
	for _, malop := range malops {
		if malop.Invalid != nil {
			msgs = append(msgs, s.invalidObjectLetter(s.cfg.MalopsTopic, eventType, report.API, malop.Raw, malop.Invalid))
			continue
		}
		msg, err := s.malopMessageWithDetails(ctx, malop, eventType)
		if err != nil {
			return report, err
		}
		msgs = append(msgs, msg)
		if malop.LastUpdateTime.After(newest) {
			newest = malop.LastUpdateTime
		}
	}
	if err := s.publish(ctx, msgs); err != nil {
		return report, fmt.Errorf("publish %d malops: %w", len(msgs), err)
	}
	report.Malops = len(msgs)
	s.count(func(st *Stats) { st.MalopsPublished += len(msgs) })

	if err := s.malopsCursor.advance(ctx, newest); err != nil {
		return report, err
	}
	report.Cursor = s.malopsCursor.newest
	report.Duration = s.cfg.Now().Sub(start)
	s.count(func(st *Stats) { st.MalopPolls++ })
	s.logger.Info("malop poll complete", "malops", report.Malops, "api", report.API, "from", report.From, "to", report.To,
		"cursor", report.Cursor, "duration", roundDuration(report.Duration))
	return report, nil
}

const (
	inboxEndpoint    = "/rest/detection/inbox"
	malopsV2Endpoint = "/rest/mmng/v2/malops"
)

// listMalops requests MalOps from the MalOp management API first. A console
// without it responds 400 or 404, and from then on the stage uses the
// detection inbox and logs the switch once.
func (s *Stage) listMalops(ctx context.Context, from, to time.Time) ([]cybereason.Malop, string, error) {
	if !s.noMalopsV2 {
		malops, err := s.client.MalopsV2(ctx, from, to)
		if !errors.Is(err, cybereason.ErrNotSupported) {
			return malops, MalopV2EventType, err
		}
		s.noMalopsV2 = true
		s.logger.Warn("the console has no MalOp management API; reading MalOps from the detection inbox instead", "error", err)
	}

	malops, err := s.client.MalopsInbox(ctx, from, to)
	return malops, MalopEventType, err
}

// malopMessageWithDetails returns the MalOp's event, with its details when
// they are enabled. A MalOp whose details cannot be fetched is published
// without them, and the failure is logged and counted: the MalOp itself must
// not wait for its details. Only the end of ctx is returned as an error.
func (s *Stage) malopMessageWithDetails(ctx context.Context, malop cybereason.Malop, malopType string) (kafka.Message, error) {
	if !s.cfg.MalopDetails {
		return s.malopMessage(malop, malopType, malopType, malop.Raw), nil
	}

	fetch, endpoint := s.client.EPPMalopDetails, EPPDetailsEndpoint
	if malop.EDR {
		fetch, endpoint = s.client.EDRMalopDetails, EDRDetailsEndpoint
	}
	details, err := fetch(ctx, malop.GUID)
	if err != nil {
		if ctx.Err() != nil {
			return kafka.Message{}, fmt.Errorf("fetch details of malop %s: %w", malop.GUID, err)
		}
		s.count(func(st *Stats) { st.MalopDetailErrors++ })
		s.logger.Warn("publishing a MalOp without its details, because fetching them failed",
			"malop", malop.GUID, "endpoint", endpoint, "error", err)
		return s.malopMessage(malop, malopType, malopType, malop.Raw), nil
	}

	value, err := json.Marshal(DetailedMalop{Malop: malop.Raw, MalopType: malopType, Details: details, DetailsEndpoint: endpoint})
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode malop %s with its details: %w", malop.GUID, err)
	}
	return s.malopMessage(malop, malopType, DetailedMalopEventType, value), nil
}
