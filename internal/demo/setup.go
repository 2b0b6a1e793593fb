package demo

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func loadTenant(opts Options) (*cybereasontest.Tenant, string, error) {
	if opts.TenantDir != "" {
		tenant, err := cybereasontest.LoadTenant(opts.TenantDir)
		if err != nil {
			return nil, "", err
		}
		return tenant, "tenant loaded from " + opts.TenantDir, nil
	}

	tenant := cybereasontest.GenerateTenant(opts.Seed, opts.Sensors, opts.Malops, time.Now())
	label := fmt.Sprintf("generated tenant: %d sensors, %d MalOps, seed %d", opts.Sensors, opts.Malops, opts.Seed)
	return tenant, label, nil
}

// demoConfig is the `run` configuration with its defaults, as if loaded from
// an empty environment; Run fills in the console and broker addresses.
func demoConfig() *config.Config {
	return &config.Config{
		Cybereason: config.Cybereason{
			Username:        demoUser,
			Tenant:          "demo.cybereason.example",
			PageSize:        100,
			PageConcurrency: 3,
			MaxPages:        10000,
			RequestTimeout:  30 * time.Second,
		},
		Kafka: config.Kafka{
			Topics: config.Topics{
				RawSensors:         "cybereason.raw.sensors",
				RawMalops:          "cybereason.raw.malops",
				RawMalware:         "cybereason.raw.malware",
				RawPolicies:        "cybereason.raw.policies",
				NormalizedAssets:   "oversoc.normalized.assets",
				NormalizedFindings: "oversoc.normalized.findings",
				Assets:             "oversoc.assets",
				Findings:           "oversoc.findings",
				State:              "cybereason.connector.state",
				AssetSecurityState: "oversoc.asset-security-state",
			},
			EnrichGroup:             "demo-enrich",
			DedupeGroup:             "demo-dedupe",
			DedupeResyncInterval:    24 * time.Hour,
			DedupeMissedInventories: 1,
		},
		Source: config.Source{
			Feeds:            []string{"sensors", "malops", "malware", "policies"},
			MalopDetails:     true,
			SensorsInterval:  time.Hour,
			MalopsInterval:   5 * time.Minute,
			MalopsLookback:   24 * time.Hour,
			MalopsOverlap:    10 * time.Minute,
			MalwareInterval:  5 * time.Minute,
			MalwareLookback:  24 * time.Hour,
			MalwareOverlap:   10 * time.Minute,
			PoliciesInterval: time.Hour,
		},
		Stages:          []string{config.StageSource, config.StageEnrich, config.StageDedupe},
		ShutdownTimeout: 30 * time.Second,
	}
}

// topics lists every topic the stages use, with the dead-letter topics and
// the source's compacted state topic.
func topics(cfg *config.Config, partitions int) []embeddedkafka.Topic {
	t := cfg.Kafka.Topics
	inputs := []string{t.RawSensors, t.RawMalops, t.RawMalware, t.RawPolicies, t.NormalizedAssets, t.NormalizedFindings}

	var specs []embeddedkafka.Topic
	for _, name := range append(inputs, t.Assets, t.Findings, t.AssetSecurityState) {
		specs = append(specs, embeddedkafka.Topic{Name: name, Partitions: partitions})
	}
	for _, name := range inputs {
		specs = append(specs, embeddedkafka.Topic{Name: name + ".dlq", Partitions: 1})
	}
	return append(specs, embeddedkafka.Topic{Name: t.State, Partitions: 1, Compacted: true})
}

func randomPassword() (string, error) {
	buf := make([]byte, 12)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate console password: %w", err)
	}
	return hex.EncodeToString(buf), nil
}

// counters is a snapshot of every stage's counters.
type counters struct {
	enrichConsumed, enrichProduced, enrichDeadLettered, enrichInventoryEnds int64
	dedupeConsumed, dedupeForwarded, dedupeUnchanged, dedupeInventoryEnds   int64
	dedupeRemoved, dedupeSecurityStates                                     int64
}

func snapshot(stages *connector.Stages) counters {
	enrichRunner := stages.EnrichRunner.Stats()
	enrich := stages.Enrich.Stats()
	dedupeRunner := stages.DedupeRunner.Stats()
	dedupe := stages.Dedupe.Stats()
	return counters{
		enrichConsumed:       enrichRunner.Consumed,
		enrichProduced:       enrichRunner.Produced,
		enrichDeadLettered:   enrichRunner.DeadLettered,
		enrichInventoryEnds:  enrich.InventoryEnds,
		dedupeConsumed:       dedupeRunner.Consumed,
		dedupeForwarded:      dedupe.Forwarded,
		dedupeUnchanged:      dedupe.Unchanged,
		dedupeInventoryEnds:  dedupe.InventoryEnds + dedupe.IncompleteInventories + dedupe.ReplayedInventoryEnds + dedupe.InvalidInventoryEnds,
		dedupeRemoved:        dedupe.Removed,
		dedupeSecurityStates: dedupe.SecurityStates,
	}
}

// printDelta prints what each stage did since before. Inventory end events are
// counted apart from records, and dedupe's removed records and their
// tombstones apart from the records it republished, so that each line adds up.
func (c counters) printDelta(out io.Writer, before counters) {
	d := c.minus(before)
	fmt.Fprintf(out, "  enrich  consumed %d raw events, produced %d OverSOC records and %s, dead-lettered %d\n",
		d.enrichConsumed, d.enrichProduced-d.enrichInventoryEnds, plural(int(d.enrichInventoryEnds), "inventory end event"), d.enrichDeadLettered)
	fmt.Fprintf(out, "  dedupe  consumed %d records and %s, republished %d changed, dropped %d unchanged\n",
		d.dedupeConsumed-d.dedupeInventoryEnds, plural(int(d.dedupeInventoryEnds), "inventory end event"),
		d.dedupeForwarded-2*d.dedupeRemoved, d.dedupeUnchanged)
	fmt.Fprintf(out, "          removed %s (each a removed record and a tombstone), published %d security-state changes\n",
		plural(int(d.dedupeRemoved), "asset"), d.dedupeSecurityStates)
}

// minus returns the counters of c less those of before.
func (c counters) minus(before counters) counters {
	return counters{
		enrichConsumed:       c.enrichConsumed - before.enrichConsumed,
		enrichProduced:       c.enrichProduced - before.enrichProduced,
		enrichDeadLettered:   c.enrichDeadLettered - before.enrichDeadLettered,
		enrichInventoryEnds:  c.enrichInventoryEnds - before.enrichInventoryEnds,
		dedupeConsumed:       c.dedupeConsumed - before.dedupeConsumed,
		dedupeForwarded:      c.dedupeForwarded - before.dedupeForwarded,
		dedupeUnchanged:      c.dedupeUnchanged - before.dedupeUnchanged,
		dedupeInventoryEnds:  c.dedupeInventoryEnds - before.dedupeInventoryEnds,
		dedupeRemoved:        c.dedupeRemoved - before.dedupeRemoved,
		dedupeSecurityStates: c.dedupeSecurityStates - before.dedupeSecurityStates,
	}
}
