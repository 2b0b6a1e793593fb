package source

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// InventoryReport describes one sensor inventory.
type InventoryReport struct {
	Pages   int
	Sensors int // messages published, dead letters of unreadable objects included
	// Repeated is the number of sensors that a page listed again after the
	// page before, and that were published only once.
	Repeated int
	// Check is the outcome of the client's continuity check.
	Check cybereason.InventoryCheck
	// EndEvents is the number of inventory end events published: one per
	// partition of the sensors topic, or 0 when Config.Partitions is nil or
	// the inventory was not complete.
	EndEvents int
	Duration  time.Duration
}

// CollectSensors reads the whole sensor inventory and publishes one message
// per sensor, page by page and in page order. A sensor that a page lists
// again after the page before, because sensors registered before it during
// paging, is published once. Memory stays bounded by the client's
// PageConcurrency pages and the sensorIds of one page, besides the
// Partitioner's keys. On error the sensors of the pages already published
// stay published.
//
// With Config.Partitions set, each sensor event goes to the partition of the
// murmur2 hash of its key and carries the inventory.HeaderID header. After
// the last page was acknowledged, an inventory end event goes to every
// partition of the sensors topic, so that dedupe can tell which assets left
// the fleet. An inventory publishes none when it failed, when it sent a
// sensor to the dead-letter topic, or when the client's continuity check
// found that the fleet changed during paging so that a sensor may have been
// skipped: in each case it may not show the whole fleet.
func (s *Stage) CollectSensors(ctx context.Context) (InventoryReport, error) {
	start := s.cfg.Now()
	var report InventoryReport

	partitioner, err := s.sensorsPartitioner(ctx)
	if err != nil {
		return report, fmt.Errorf("collect sensors: %w", err)
	}
	id := inventory.ID(s.cfg.Tenant, start)
	sensors := 0 // sensor events, without dead letters
	// previous holds the sensorIds of the page before. A page lists a sensor
	// of the page before again when sensors registered before it during
	// paging. In a complete inventory only that page can be repeated: the
	// seam probe found both pages' edge sensors, so they are less than a
	// probe apart.
	var previous, current map[string]struct{}
	deadLettered := s.Stats().DeadLettered

	report.Check, err = s.client.ReadSensorInventory(ctx, func(page cybereason.SensorPage) error {
		msgs := make([]kafka.Message, 0, len(page.Sensors))
		current = make(map[string]struct{}, len(page.Sensors))
		for _, sensor := range page.Sensors {
			if sensor.Invalid != nil {
				msgs = append(msgs, s.invalidObjectLetter(s.cfg.SensorsTopic, SensorEventType, "/rest/sensors/query", sensor.Raw, sensor.Invalid))
				continue
			}
			if _, ok := previous[sensor.ID]; ok {
				report.Repeated++
				continue
			}
			current[sensor.ID] = struct{}{}
			msg := s.sensorMessage(sensor, start)
			if partitioner != nil {
				partitioner.Assign(&msg, id)
			}
			msgs = append(msgs, msg)
			sensors++
		}
		if err := s.publish(ctx, msgs); err != nil {
			return fmt.Errorf("publish sensors page %d: %w", page.Index, err)
		}

		previous = current
		report.Pages++
		report.Sensors += len(msgs)
		s.count(func(st *Stats) { st.SensorsPublished += len(msgs) })
		s.logger.Debug("sensors page published", "page", page.Index, "sensors", len(msgs), "total_results", page.TotalResults)
		return nil
	})
	if err == nil && partitioner != nil {
		report.EndEvents, err = s.endInventory(ctx, id, start, sensors, report.Check, deadLettered, partitioner)
	}
	report.Duration = s.cfg.Now().Sub(start)
	if err != nil {
		return report, fmt.Errorf("collect sensors: %w", err)
	}

	s.count(func(st *Stats) { st.Inventories++ })
	s.logger.Info("sensor inventory complete", "inventory_id", id, "sensors", report.Sensors, "pages", report.Pages,
		"repeated", report.Repeated, "seam_probes", report.Check.Probes, "end_events", report.EndEvents,
		"duration", roundDuration(report.Duration))
	return report, nil
}

// endInventory publishes the inventory end events of an inventory read to
// the end, unless it may not show the whole fleet, and returns how many it
// published. deadLettered is the DeadLettered count before the inventory.
func (s *Stage) endInventory(ctx context.Context, id string, start time.Time, sensors int, check cybereason.InventoryCheck,
	deadLettered int, partitioner *inventory.Partitioner) (int, error) {
	if !check.Complete {
		s.count(func(st *Stats) {
			if check.Reason == cybereason.GapEndedEarly {
				st.IncompleteInventories.EndedEarly++
			} else {
				st.IncompleteInventories.SeamGap++
			}
		})
		s.logger.Warn("the sensor inventory changed during paging and may have skipped sensors, so no inventory end event is published and no asset is marked removed",
			"inventory_id", id, "reason", check.Reason, "page_before", check.Page-1, "page", check.Page, "pages", check.Pages)
		return 0, nil
	}

	// NOTE: the counter is shared with the alert feeds, so a dead letter
	// of a MalOp poll running meanwhile also withholds the end events.
	// That delays a removal by one inventory and never causes one.
	if s.Stats().DeadLettered > deadLettered {
		s.logger.Warn("sensor inventory sent events to the dead-letter topic, so no inventory end event is published and no asset is marked removed",
			"inventory_id", id)
		return 0, nil
	}
	return s.publishInventoryEnd(ctx, start, sensors, partitioner)
}

// sensorsPartitioner returns a Partitioner for the current partition count of
// the sensors topic, or nil without Config.Partitions.
func (s *Stage) sensorsPartitioner(ctx context.Context) (*inventory.Partitioner, error) {
	if s.cfg.Partitions == nil {
		return nil, nil
	}
	n, err := s.cfg.Partitions.Partitions(ctx, s.cfg.SensorsTopic)
	if err != nil {
		return nil, fmt.Errorf("read the partition count of %s: %w", s.cfg.SensorsTopic, err)
	}
	if n < 1 {
		return nil, fmt.Errorf("read the partition count of %s: got %d", s.cfg.SensorsTopic, n)
	}
	return inventory.NewPartitioner(n), nil
}

// publishInventoryEnd publishes one inventory end event per partition of the
// sensors topic and returns how many. When the partition count changed during
// the inventory, the counts per partition no longer match the partitions, so
// it publishes none and logs why.
func (s *Stage) publishInventoryEnd(ctx context.Context, start time.Time, sensors int, partitioner *inventory.Partitioner) (int, error) {
	counts := partitioner.Counts()
	n, err := s.cfg.Partitions.Partitions(ctx, s.cfg.SensorsTopic)
	if err != nil {
		return 0, fmt.Errorf("read the partition count of %s: %w", s.cfg.SensorsTopic, err)
	}
	if n != len(counts) {
		s.logger.Warn("the sensors topic changed its partition count during the inventory, so no inventory end event is published",
			"topic", s.cfg.SensorsTopic, "partitions_before", len(counts), "partitions_after", n)
		return 0, nil
	}

	msgs, err := inventory.Messages(s.cfg.SensorsTopic, s.cfg.ConsoleURL+"/rest/sensors/query", s.cfg.Tenant, start, sensors, counts)
	if err != nil {
		return 0, err
	}
	if err := s.publish(ctx, msgs); err != nil {
		return 0, fmt.Errorf("publish inventory end events: %w", err)
	}
	return len(msgs), nil
}

// roundDuration formats a duration for logs: milliseconds are enough, and a
// string reads better than nanoseconds in JSON logs.
func roundDuration(d time.Duration) string { return d.Round(time.Millisecond).String() }
