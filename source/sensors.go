package source

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// InventoryReport describes one sensor inventory.
type InventoryReport struct {
	Pages    int
	Sensors  int
	Duration time.Duration
}

// CollectSensors reads the whole sensor inventory and publishes one message
// per sensor, page by page, so memory stays bounded by one page. On error the
// sensors of the pages already published stay published.
func (s *Stage) CollectSensors(ctx context.Context) (InventoryReport, error) {
	start := s.cfg.Now()
	var report InventoryReport

	err := s.client.QuerySensors(ctx, func(page cybereason.SensorPage) error {
		msgs := make([]kafka.Message, 0, len(page.Sensors))
		for _, sensor := range page.Sensors {
			if sensor.Invalid != nil {
				msgs = append(msgs, s.invalidObjectLetter(s.cfg.SensorsTopic, SensorEventType, "/rest/sensors/query", sensor.Raw, sensor.Invalid))
				continue
			}
			msgs = append(msgs, s.sensorMessage(sensor, start))
		}
		if err := s.publish(ctx, msgs); err != nil {
			return fmt.Errorf("publish sensors page %d: %w", page.Index, err)
		}

		report.Pages++
		report.Sensors += len(msgs)
		s.count(func(st *Stats) { st.SensorsPublished += len(msgs) })
		s.logger.Debug("sensors page published", "page", page.Index, "sensors", len(msgs), "total_results", page.TotalResults)
		return nil
	})
	report.Duration = s.cfg.Now().Sub(start)
	if err != nil {
		return report, fmt.Errorf("collect sensors: %w", err)
	}

	s.count(func(st *Stats) { st.Inventories++ })
	s.logger.Info("sensor inventory complete", "sensors", report.Sensors, "pages", report.Pages, "duration", roundDuration(report.Duration))
	return report, nil
}

// roundDuration formats a duration for logs: milliseconds are enough, and a
// string reads better than nanoseconds in JSON logs.
func roundDuration(d time.Duration) string { return d.Round(time.Millisecond).String() }
